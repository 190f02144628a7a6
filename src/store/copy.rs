//! `vault copy`: the vault copied to a new location (a file where nothing
//! is, or an empty PostgreSQL database or schema), every row verbatim and
//! every sealed value as it is, then verified at the destination before
//! success is reported.
//!
//! Rows keep their ids and bytes: a sealed value's associated data binds
//! table, column, row id, account id and key id, and the audit MACs cover
//! each entry's exact text, so a copy that renumbered or re-encoded
//! anything would neither open nor verify. Nothing is opened to be written
//! again: no plaintext is handled on the way.
//!
//! The copy is read from one snapshot of the source and written in one
//! transaction: a file is built under a temporary name and published only
//! complete (`db::create`), a PostgreSQL schema is created and filled in one
//! transaction. Before that transaction commits, the destination is read
//! back inside it: unlocked with the keys this session holds (a copy has the
//! same vault id, key checks and wraps), every sealed value opened, the
//! audit chain walked, and a digest of every table compared with the
//! source's. After the commit the destination is opened as any vault is
//! opened and checked the same way again; only then does it get its
//! `vault.copied_from` audit entry and the source its `vault.copy` entry.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::audit::{self, ChainState, Event};
use super::vault::{self, Vault};
use super::{Keys, Store, create_at, keyops, sealed};
use crate::crypto::Key;
use crate::db::sql::Kind;
use crate::db::{self, Arg, Conn, Row, Tx, Value, catalog};
use crate::error::{Error, Result, during};

/// One table `vault copy` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyTable {
    /// Table name.
    pub table: &'static str,
    /// Its primary key: the order its rows are copied and digested in.
    pub key: &'static [&'static str],
    /// The id column whose values the database picks (an identity sequence
    /// on PostgreSQL, `AUTOINCREMENT` or the largest id on SQLite); the copy
    /// moves the destination's sequence past the ids it inserted.
    pub identity: Option<&'static str>,
}

const fn table(table: &'static str, key: &'static [&'static str]) -> CopyTable {
    CopyTable {
        table,
        key,
        identity: None,
    }
}

const fn with_id(table: &'static str) -> CopyTable {
    CopyTable {
        table,
        key: &["id"],
        identity: Some("id"),
    }
}

/// Every table of a vault, parents before the tables whose foreign keys
/// name them. `vault copy` copies exactly these and refuses a vault that
/// has any other; a test compares the list with the schema of both
/// backends.
///
/// `usage_hourly`, the rollup of `usage_events`, is copied as rows like any
/// other table: no trigger fires on an insert into `usage_events` since
/// format 10 (the code adds new events to the rollup itself), and the
/// digest comparison would catch a rollup counted twice.
pub const COPY_TABLES: &[CopyTable] = &[
    table("vault_meta", &["id"]),
    table("unlock_methods", &["method", "host"]),
    table("data_keys", &["key_id"]),
    table("key_wraps", &["key_id", "method", "host"]),
    with_id("accounts"),
    with_id("credentials"),
    table("audit_log", &["seq"]),
    table("settings", &["key"]),
    with_id("subscription_snapshots"),
    with_id("quota_budgets"),
    with_id("quota_reservations"),
    with_id("quota_notices"),
    with_id("account_health"),
    table("account_cooldowns", &["account_id"]),
    with_id("agent_sessions"),
    with_id("selection_history"),
    with_id("usage_projects"),
    with_id("usage_events"),
    table(
        "usage_hourly",
        &[
            "hour",
            "provider",
            "account_id",
            "model",
            "source",
            "agent",
            "task_type",
        ],
    ),
    table("usage_files", &["source", "fingerprint"]),
    table("usage_price_table", &["id"]),
];

/// What `vault copy` did; never a secret, and the destination without its
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// The destination (a URL without its password).
    pub to: String,
    /// The vault id, the same at both ends.
    pub vault_id: String,
    /// The format version of both ends.
    pub format_version: i64,
    /// Rows copied per table, in [`COPY_TABLES`] order.
    pub tables: Vec<TableCopied>,
    /// Rows copied in all.
    pub rows: u64,
    /// Sealed values opened at the destination.
    pub sealed_values: u64,
    /// Audit entries copied and verified at the destination (its
    /// `vault.copied_from` entry comes after them).
    pub audit_entries: u64,
}

/// Rows copied into one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCopied {
    /// Table name.
    pub table: &'static str,
    /// Rows copied, each read back with a digest equal to the source's.
    pub rows: u64,
}

/// A table's rows as the source held them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableDigest {
    table: &'static CopyTable,
    /// Its columns by name, sorted: the order each row is digested in.
    columns: Vec<String>,
    rows: u64,
    digest: [u8; 32],
}

/// What the copy must match, read from the source's snapshot.
#[derive(Debug)]
struct Expected {
    vault_id: String,
    tables: Vec<TableDigest>,
    sealed_values: u64,
    audit_entries: u64,
}

/// SHA-256 over a table's name and column names, then its rows in key
/// order, each column in name order as a type tag and length-prefixed
/// bytes: equal rows give equal digests on either backend.
struct Digester {
    hash: Sha256,
    rows: u64,
}

fn part(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_be_bytes());
    hash.update(bytes);
}

impl Digester {
    fn new(table: &str, columns: &[String]) -> Self {
        let mut hash = Sha256::new();
        part(&mut hash, b"authvault table digest v1");
        part(&mut hash, table.as_bytes());
        for column in columns {
            part(&mut hash, column.as_bytes());
        }
        Self { hash, rows: 0 }
    }

    fn row(&mut self, values: &[Value]) {
        self.rows += 1;
        self.hash.update(b"row");
        for value in values {
            match value {
                Value::Null => self.hash.update([0]),
                Value::I64(n) => {
                    self.hash.update([1]);
                    self.hash.update(n.to_be_bytes());
                }
                Value::Bool(b) => {
                    self.hash.update([1]);
                    self.hash.update(i64::from(*b).to_be_bytes());
                }
                Value::Text(s) => {
                    self.hash.update([2]);
                    part(&mut self.hash, s.as_bytes());
                }
                Value::Blob(b) => {
                    self.hash.update([3]);
                    part(&mut self.hash, b);
                }
            }
        }
    }

    fn finish(self, table: &'static CopyTable, columns: Vec<String>) -> TableDigest {
        TableDigest {
            table,
            columns,
            rows: self.rows,
            digest: self.hash.finalize().into(),
        }
    }
}

/// `"name"`, quoted for both backends.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| quoted(n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of `t`, `columns` in that order, in key order.
fn select_rows(t: &CopyTable, columns: &[String]) -> String {
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        list(columns),
        quoted(t.table),
        list(t.key)
    )
}

/// Parameters in one statement at most: below SQLite's limit (32,766) and
/// PostgreSQL's (65,535).
const MAX_PARAMS: usize = 30_000;
/// Rows in one statement at most: a copy of a million usage events takes
/// seconds, not a round trip per row.
const MAX_ROWS: usize = 500;

/// Multi-row `INSERT`s into one table, `per_batch` rows to a statement.
struct Insert {
    head: String,
    width: usize,
    kinds: Vec<Kind>,
    per_batch: usize,
    full: String,
}

impl Insert {
    fn new(table: &str, columns: &[String], kinds: Vec<Kind>) -> Self {
        let width = columns.len();
        let per_batch = (MAX_PARAMS / width.max(1)).clamp(1, MAX_ROWS);
        let mut insert = Self {
            head: format!("INSERT INTO {} ({}) VALUES ", quoted(table), list(columns)),
            width,
            kinds,
            per_batch,
            full: String::new(),
        };
        insert.full = insert.sql(per_batch);
        insert
    }

    /// The statement for `rows` rows: `(?1, …, ?w), (?w+1, …)`.
    fn sql(&self, rows: usize) -> String {
        let groups: Vec<String> = (0..rows)
            .map(|r| {
                let marks: Vec<String> = (1..=self.width)
                    .map(|c| format!("?{}", r * self.width + c))
                    .collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        format!("{}{}", self.head, groups.join(", "))
    }

    /// Inserts `values`, whole rows one after another (none: nothing).
    fn rows(&self, dst: &Tx<'_>, values: &[Value]) -> Result<()> {
        let rows = values.len() / self.width.max(1);
        if rows == 0 {
            return Ok(());
        }
        let tail;
        let sql = if rows == self.per_batch {
            &self.full
        } else {
            tail = self.sql(rows);
            &tail
        };
        let args: Vec<Arg<'_>> = values
            .iter()
            .zip(self.kinds.iter().cycle())
            .map(|(v, kind)| match v {
                Value::Null => Arg::Null(*kind),
                v => v.as_arg(),
            })
            .collect();
        dst.execute(sql, &args)?;
        Ok(())
    }
}

fn values(r: &Row<'_>, n: usize) -> Result<Vec<Value>> {
    (0..n).map(|i| r.get::<Value>(i)).collect()
}

/// Digests the rows of `expected`'s table that `tx` sees.
fn digest_table(tx: &Tx<'_>, expected: &TableDigest) -> Result<TableDigest> {
    let n = expected.columns.len();
    let mut digest = Digester::new(expected.table.table, &expected.columns);
    tx.for_each_row(&select_rows(expected.table, &expected.columns), &[], |r| {
        digest.row(&values(r, n)?);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(digest.finish(expected.table, expected.columns.clone()))
}

/// Where the copy goes, as errors name it (never with a password).
struct Destination<'a> {
    location: &'a db::Location,
    shown: String,
}

impl Destination<'_> {
    fn refused(&self, reason: impl Into<String>) -> Error {
        Error::CopyRefused {
            destination: self.shown.clone(),
            reason: reason.into(),
        }
    }

    fn not_verified(&self, reason: impl Into<String>, left_in_place: bool) -> Error {
        Error::CopyNotVerified {
            destination: self.shown.clone(),
            reason: reason.into(),
            left_in_place,
        }
    }

    /// Refuses a destination where something is: a file (other than an
    /// older build's empty stub), a vault, other tables.
    fn ensure_vacant(&self) -> Result<()> {
        let occupied = match self.location {
            db::Location::File(path) => {
                (!db::vacant(path)?).then_some("something is already there")
            }
            db::Location::Postgres(url) => {
                let conn = Conn::Pg(db::pg_schema::connect(url)?);
                match db::pg_schema::inspect(&conn.read_tx()?, url)? {
                    db::pg_schema::Found::Empty => None,
                    db::pg_schema::Found::Vault(_) => Some("a vault is already there"),
                    db::pg_schema::Found::Other => Some("the database holds other tables"),
                }
            }
        };
        match occupied {
            None => Ok(()),
            Some(what) => Err(self.refused(format!(
                "{what}; a copy goes only to a path where nothing is, or to an empty \
                 PostgreSQL database or schema"
            ))),
        }
    }

    /// The same columns by name on both sides (sorted), with the kind each
    /// binds as at the destination.
    fn columns(&self, src: &Tx<'_>, dst: &Tx<'_>, table: &str) -> Result<(Vec<String>, Vec<Kind>)> {
        let names = |cols: &[(String, String, Option<Kind>)]| {
            let mut names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
            names.sort();
            names
        };
        let theirs = catalog::columns(dst, table)?;
        let ours = names(&catalog::columns(src, table)?);
        if ours != names(&theirs) {
            return Err(self.refused(format!(
                "table {table} has the columns {} here and {} there",
                ours.join(", "),
                names(&theirs).join(", ")
            )));
        }
        let mut kinds = Vec::with_capacity(ours.len());
        for name in &ours {
            let (_, ty, kind) = theirs.iter().find(|c| &c.0 == name).expect("same names");
            kinds.push(kind.ok_or_else(|| {
                self.refused(format!(
                    "column {table}.{name} has type {ty}, which no vault has"
                ))
            })?);
        }
        Ok((ours, kinds))
    }

    /// Copies the rows of `t` from `src` into `dst` verbatim, in key order,
    /// and moves `dst`'s id sequence past them; the source's digest.
    fn copy_table(&self, src: &Tx<'_>, dst: &Tx<'_>, t: &'static CopyTable) -> Result<TableDigest> {
        let (columns, kinds) = self.columns(src, dst, t.table)?;
        let id_at =
            match t.identity {
                Some(col) => Some(columns.iter().position(|c| c == col).ok_or_else(|| {
                    self.refused(format!("table {} has no column {col}", t.table))
                })?),
                None => None,
            };
        let insert = Insert::new(t.table, &columns, kinds);
        let mut digest = Digester::new(t.table, &columns);
        let mut max_id = 0;
        let mut pending = Vec::with_capacity(insert.per_batch * columns.len());
        src.for_each_row(&select_rows(t, &columns), &[], |r| {
            let values = values(r, columns.len())?;
            digest.row(&values);
            if let Some(Value::I64(id)) = id_at.map(|i| &values[i]) {
                max_id = max_id.max(*id);
            }
            pending.extend(values);
            if pending.len() == insert.per_batch * columns.len() {
                insert.rows(dst, &pending)?;
                pending.clear();
            }
            Ok(ControlFlow::Continue(()))
        })?;
        insert.rows(dst, &pending)?;
        if let Some(col) = t.identity {
            let position = max_id.max(catalog::sequence_position(src, t.table, col)?);
            if position > 0 && !catalog::move_sequence(dst, t.table, col, position)? {
                return Err(
                    self.refused(format!("{}.{col} has no identity sequence there", t.table))
                );
            }
        }
        Ok(digest.finish(t, columns))
    }

    /// Reads the copy back through `tx`: unlocked with the KEKs `held`, every sealed
    /// value opened, the audit chain intact, every table's digest equal to
    /// the source's. The keys of the copy.
    fn verify(
        &self,
        tx: &Tx<'_>,
        held: &BTreeMap<keyops::MethodRow, Key>,
        expected: &Expected,
        left_in_place: bool,
    ) -> Result<Keys> {
        let fail = |reason: String| self.not_verified(reason, left_in_place);
        // A database error is itself; anything else means the copy is wrong.
        let wrong = |what: &str, e: Error| match e {
            Error::Sqlite { .. } | Error::Postgres { .. } => e,
            other => fail(format!("{what}: {other}")),
        };
        let path = PathBuf::from(&self.shown);
        let (vault_id, keys) = vault::keys_with(tx, &path, held)
            .map_err(|e| wrong("the keys that unlock the source do not unlock it", e))?;
        if vault_id != expected.vault_id {
            return Err(fail(format!(
                "its vault id is {vault_id}, the source's {}",
                expected.vault_id
            )));
        }
        let sealed =
            sealed::open_all(tx, &keys).map_err(|e| wrong("a sealed value does not open", e))?;
        if sealed != expected.sealed_values {
            return Err(fail(format!(
                "it holds {sealed} sealed values, the source {}",
                expected.sealed_values
            )));
        }
        let chain = audit::verify_chain(tx, &keys.audit)?;
        match chain.state {
            ChainState::Broken { first_bad, reason } => {
                return Err(fail(format!(
                    "its audit chain is broken at entry {first_bad}: {reason}"
                )));
            }
            ChainState::Intact if chain.entries != expected.audit_entries => {
                return Err(fail(format!(
                    "its audit chain has {} entries, the source's {}",
                    chain.entries, expected.audit_entries
                )));
            }
            ChainState::Intact => {}
        }
        for want in &expected.tables {
            let found = digest_table(tx, want)?;
            let table = want.table.table;
            if found.rows != want.rows {
                return Err(fail(format!(
                    "table {table} has {} rows, the source's {}",
                    found.rows, want.rows
                )));
            }
            if found.digest != want.digest {
                return Err(fail(format!(
                    "table {table} differs from the source's ({} rows each)",
                    want.rows
                )));
            }
        }
        Ok(keys)
    }
}

/// The source's snapshot is one this build can copy completely: its format
/// is this build's and it has exactly the tables of [`COPY_TABLES`]; every
/// sealed value opens and the audit chain is intact (a damaged vault is not
/// copied). The counts the copy must match.
fn check_source(src: &Tx<'_>, keys: &Keys, to: &Destination<'_>) -> Result<(u64, u64)> {
    let version = src.format_version()?;
    if version != db::format_version() {
        return Err(to.refused(format!(
            "the vault is at format {version} and this build writes format {}",
            db::format_version()
        )));
    }
    let tables = catalog::tables(src)?;
    if let Some(unknown) = tables
        .iter()
        .find(|t| !COPY_TABLES.iter().any(|c| c.table == t.as_str()))
    {
        return Err(to.refused(format!(
            "the vault has a table {unknown} that this build does not know how to copy"
        )));
    }
    if let Some(missing) = COPY_TABLES
        .iter()
        .find(|c| !tables.iter().any(|t| t == c.table))
    {
        return Err(to.refused(format!("the vault has no table {}", missing.table)));
    }
    let sealed = sealed::open_all(src, keys)?;
    let chain = audit::verify_chain(src, &keys.audit)?;
    if let ChainState::Broken { first_bad, reason } = chain.state {
        return Err(to.refused(format!(
            "its audit chain is broken at entry {first_bad} ({reason}); run `vault audit verify`"
        )));
    }
    Ok((sealed, chain.entries))
}

impl Store {
    /// Copies this vault to `to`, a new file or an empty PostgreSQL database
    /// (or schema), rows and sealed values verbatim, and verifies the copy
    /// (see the module documentation). Then records `vault.copied_from` in
    /// the copy's audit log and `vault.copy` in this vault's. The copy has
    /// this vault's id and unlock methods: the same passphrase, and on this
    /// host the same keyring entry, open it.
    ///
    /// # Errors
    /// [`Error::CopyRefused`] (something at `to`, another format, a table
    /// this build does not know, a damaged source) and
    /// [`Error::CopyNotVerified`], which says whether the copy was left in
    /// place; I/O and database errors.
    pub fn copy_to(&mut self, to: &db::Location) -> Result<CopyReport> {
        self.copy_with(to, |_| Ok(()))
    }

    /// [`Store::copy_to`], calling `before_verify` on the destination's
    /// transaction after the rows are in and before they are verified (the
    /// tests change the copy there, to see the verification refuse it).
    fn copy_with(
        &mut self,
        to: &db::Location,
        before_verify: impl FnOnce(&Tx<'_>) -> Result<()>,
    ) -> Result<CopyReport> {
        let dest = Destination {
            location: to,
            shown: to.to_string(),
        };
        let from = self.location.to_string();
        let (actor, host) = (self.actor.clone(), self.host.clone());
        during("copying the vault", || {
            dest.ensure_vacant()?;
            let (src, keys) = self.read_tx()?;
            let (sealed_values, audit_entries) = check_source(&src, keys, &dest)?;
            let vault_id: String =
                src.query_row("SELECT vault_id FROM vault_meta WHERE id = 1", &[], |r| {
                    r.get(0)
                })?;
            let written = create_at(to, |dst| {
                let mut expected = Expected {
                    vault_id,
                    tables: Vec::with_capacity(COPY_TABLES.len()),
                    sealed_values,
                    audit_entries,
                };
                for t in COPY_TABLES {
                    expected.tables.push(dest.copy_table(&src, dst, t)?);
                }
                before_verify(dst)?;
                dest.verify(dst, &keys.keks, &expected, false)?;
                Ok(expected)
            });
            let expected = match written {
                Ok((conn, expected)) => {
                    drop(conn);
                    expected
                }
                // Something appeared there since the check (the creating
                // transaction checks again).
                Err(e @ Error::AlreadyExists { .. }) => {
                    return Err(dest.refused(format!("it is no longer vacant ({e})")));
                }
                Err(e @ Error::NotAVault { .. }) if to.file().is_none() => {
                    return Err(dest.refused(format!("it is no longer vacant ({e})")));
                }
                Err(e) => return Err(e),
            };
            drop(src);

            // Committed: open it as any vault is opened, and check it again.
            let vault = Vault::open_at(to).map_err(|e| match e {
                Error::Sqlite { .. } | Error::Postgres { .. } => e,
                other => dest.not_verified(format!("it does not open: {other}"), true),
            })?;
            let mut conn = vault.into_conn();
            let copy_keys = dest.verify(&conn.read_tx()?, &keys.keks, &expected, true)?;
            let rows = expected.tables.iter().map(|t| t.rows).sum();
            let report = CopyReport {
                to: dest.shown.clone(),
                vault_id: expected.vault_id.clone(),
                format_version: db::format_version(),
                tables: expected
                    .tables
                    .iter()
                    .map(|t| TableCopied {
                        table: t.table.table,
                        rows: t.rows,
                    })
                    .collect(),
                rows,
                sealed_values,
                audit_entries,
            };
            let counts = serde_json::json!({
                "tables": report.tables.len(),
                "rows": rows,
                "sealed_values": sealed_values,
                "audit_entries": audit_entries,
            });
            let tx = conn.write_tx()?;
            audit::append(
                &tx,
                &copy_keys,
                audit::By {
                    actor: &actor,
                    host: &host,
                },
                &Event::new("vault.copied_from")
                    .details(serde_json::json!({ "from": from, "copied": counts })),
            )?;
            tx.commit()?;
            drop(conn);
            self.record(
                "vault.copy",
                &serde_json::json!({ "to": report.to, "copied": counts }),
            )?;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::Utc;
    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::keys::{MemoryKeyring, Unlock};
    use crate::model::usage::{Source, Tokens};
    use crate::model::{Credential, CredentialKind, Identity, Provider};
    use crate::store::{AccountSelector, NewAccount, UsageEvent};

    /// A vault with an account (a sealed key and e-mail), a setting and a
    /// usage event (with its hourly rollup row).
    fn populated(dir: &Path, keyring: &MemoryKeyring) -> Store {
        let mut store = Store::init(&dir.join("src/vault.db"), &Unlock::Keyring(keyring)).unwrap();
        store
            .add_account(&NewAccount {
                provider: Provider::Claude,
                label: "work".into(),
                identity: Identity {
                    email: Some("work@example.com".into()),
                    ..Identity::default()
                },
                credentials: vec![Credential::ApiKey(SecretString::from("sk-ant-unit-key"))],
                active: CredentialKind::ApiKey,
            })
            .unwrap();
        store
            .set_policy(&[("policy.strategy".into(), serde_json::json!("round-robin"))])
            .unwrap();
        let event = UsageEvent {
            at: Utc::now(),
            provider: Provider::Claude,
            account: Some("work".into()),
            model: "model-x".into(),
            agent: None,
            task_type: None,
            session: Some("s1".into()),
            project: None,
            source: Source::ClaudeCode,
            tokens: Tokens {
                input: 10,
                output: 5,
                ..Tokens::default()
            },
            cost_pico: 1_000,
            price_version: None,
            identity: "r1".into(),
        };
        store.record_usage(&[event], &[]).unwrap();
        store
    }

    fn actions(store: &Store) -> Vec<String> {
        let entries = store.audit_entries(None).unwrap();
        entries.into_iter().map(|e| e.action).collect()
    }

    #[test]
    fn a_copy_opens_with_the_same_key_and_both_ends_record_it() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = MemoryKeyring::default();
        let mut store = populated(dir.path(), &keyring);
        let before = actions(&store);
        let to = dir.path().join("dst/vault.db");
        let report = store.copy_to(&db::Location::File(to.clone())).unwrap();
        let copied: BTreeMap<&str, u64> = report.tables.iter().map(|t| (t.table, t.rows)).collect();
        assert_eq!(copied.len(), COPY_TABLES.len());
        assert_eq!(copied["accounts"], 1);
        assert_eq!(copied["usage_events"], 1);
        assert_eq!(copied["usage_hourly"], 1);
        assert_eq!(copied["audit_log"], before.len() as u64);
        assert_eq!(report.audit_entries, before.len() as u64);
        assert_eq!(report.sealed_values, 3, "root secret, e-mail, API key");

        let mut copy = Store::open(&to, &Unlock::Keyring(&keyring)).unwrap();
        assert_eq!(copy.vault_id(), store.vault_id());
        let token = copy
            .token(AccountSelector {
                label: Some("work"),
                provider: None,
            })
            .unwrap();
        assert_eq!(token.secret.expose_secret(), "sk-ant-unit-key");
        let mut want = before.clone();
        want.extend(["vault.copied_from".to_owned(), "secret.read".to_owned()]);
        assert_eq!(actions(&copy), want);
        assert_eq!(copy.verify_audit().unwrap().state, ChainState::Intact);
        let mut want = before;
        want.push("vault.copy".to_owned());
        assert_eq!(actions(&store), want);
        let entry = store.audit_entries(Some(1)).unwrap().remove(0);
        assert_eq!(entry.details["to"], to.display().to_string());
        assert_eq!(entry.details["copied"]["sealed_values"], 3);
    }

    #[test]
    fn a_copy_that_differs_from_the_source_is_refused_before_it_is_published() {
        let cases = [
            (
                "UPDATE settings SET value = '\"random\"'",
                "table settings differs from the source's (1 rows each)",
            ),
            (
                "DELETE FROM usage_hourly",
                "table usage_hourly has 0 rows, the source's 1",
            ),
            (
                "UPDATE credentials SET api_key = (SELECT email FROM accounts)",
                "a sealed value does not open: integrity error in credentials.api_key row 1",
            ),
            (
                "UPDATE audit_log SET outcome = 'forged' WHERE seq = 1",
                "its audit chain is broken at entry 1",
            ),
            (
                "UPDATE vault_meta SET vault_id = 'another'",
                "the keys that unlock the source do not unlock it",
            ),
        ];
        for (tamper, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            let keyring = MemoryKeyring::default();
            let mut store = populated(dir.path(), &keyring);
            let before = actions(&store);
            let to = dir.path().join("dst/vault.db");
            let err = store
                .copy_with(&db::Location::File(to.clone()), |tx| tx.run_script(tamper))
                .unwrap_err();
            match &err {
                Error::CopyNotVerified {
                    destination,
                    reason: found,
                    left_in_place: false,
                } => {
                    assert_eq!(destination, &to.display().to_string(), "{tamper}");
                    assert!(found.starts_with(reason), "{tamper}: {found}");
                }
                other => panic!("{tamper}: {other:?}"),
            }
            assert!(
                err.to_string().contains("nothing was written there"),
                "{err}"
            );
            assert!(!to.exists(), "{tamper}: a copy was published");
            let leftovers: Vec<_> = std::fs::read_dir(to.parent().unwrap()).unwrap().collect();
            assert!(leftovers.is_empty(), "{tamper}: {leftovers:?}");
            assert_eq!(actions(&store), before, "{tamper}: the source was written");
        }
    }

    #[test]
    fn a_vault_with_a_table_the_copy_does_not_know_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = MemoryKeyring::default();
        let mut store = populated(dir.path(), &keyring);
        let before = actions(&store);
        let tx = store.conn.write_tx().unwrap();
        tx.run_script("CREATE TABLE later_feature (id INTEGER PRIMARY KEY)")
            .unwrap();
        tx.commit().unwrap();
        let to = dir.path().join("dst/vault.db");
        let err = store.copy_to(&db::Location::File(to.clone())).unwrap_err();
        assert!(
            matches!(&err, Error::CopyRefused { reason, .. }
                if reason.contains("a table later_feature that this build does not know")),
            "{err:?}"
        );
        assert!(!to.exists());
        assert_eq!(actions(&store), before);
    }

    #[test]
    fn table_digests_are_equal_only_for_equal_rows_and_columns() {
        let digest = |columns: &[&str], rows: &[&[Value]]| {
            let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
            let mut d = Digester::new("t", &columns);
            for row in rows {
                d.row(row);
            }
            d.finish(&COPY_TABLES[0], columns).digest
        };
        let text = |s: &str| Value::Text(s.into());
        let base = digest(&["a", "b"], &[&[text("ab"), text("c")]]);
        assert_eq!(base, digest(&["a", "b"], &[&[text("ab"), text("c")]]));
        let differing = [
            digest(&["a", "b"], &[&[text("a"), text("bc")]]),
            digest(&["a", "b"], &[&[text("ab"), Value::Blob(b"c".to_vec())]]),
            digest(&["a", "b"], &[&[text("ab"), Value::Null]]),
            digest(&["a", "b"], &[&[text("ab"), text("")]]),
            digest(&["a", "c"], &[&[text("ab"), text("c")]]),
            digest(
                &["a", "b"],
                &[&[text("ab"), text("c")], &[text("ab"), text("c")]],
            ),
            digest(&["a", "b"], &[]),
        ];
        for (i, d) in differing.iter().enumerate() {
            assert_ne!(&base, d, "case {i}");
        }
        assert_eq!(
            digest(&["n"], &[&[Value::I64(1)]]),
            digest(&["n"], &[&[Value::Bool(true)]]),
            "a boolean is the integer a column of the other backend holds"
        );
        assert_ne!(
            digest(&["n"], &[&[Value::I64(1)]]),
            digest(&["n"], &[&[text("1")]])
        );
    }
}
