//! The repository layer: typed methods, one per use case, each owning its
//! transaction; the only code that writes SQL against vault tables.
//!
//! [`Vault`] is an opened, still locked file: it answers what can be answered
//! without keys (format, unlock methods, counts). [`Vault::unlock`] turns it
//! into a [`Store`], which seals and opens columns itself, so no caller can
//! write an unsealed secret or read one without an audit entry.
//!
//! Architecture invariant: `store` knows nothing about HTTP or providers.

mod account_row;
mod accounts;
mod audit;
mod copy;
mod credentials;
mod health;
mod history;
mod keyops;
pub(crate) mod labels;
mod merge;
mod policy;
mod quota;
mod refresh;
mod sealed;
mod sessions;
mod time;
mod usage;
mod vault;

use time::now;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use zeroize::Zeroizing;

pub use accounts::{AccountInfo, AccountSelector, NewAccount, check_label};
pub use audit::{Actor, AuditEntry, AuditReport, ChainState};
pub use copy::{COPY_TABLES, CopyReport, CopyTable, TableCopied};
pub use credentials::Token;
pub use health::{AccountHealth, PROBES_KEPT, Probe, ProbeOutcome};
pub use history::{HistoryEntry, HistoryRow};
pub use keyops::{RekeyReport, host_label};
pub use merge::{CredentialCheck, MergeAction, MergeInput, MergeItem, MergeOutcome, MergeReport};
pub use quota::{Budget, BudgetStatus, Notice, Reservation, Settled, Target, Usage, ZONE_SETTING};
pub use refresh::{ClientRefresh, Lease, OAuthState};
pub use sealed::{SEALED_COLUMNS, SealedColumn};
pub use sessions::{GrantRecord, GrantRequest, Selection, Session, SessionEnd, SessionKind, Span};
pub use usage::{EventRow, FileMark, UsageEvent, UsageFilter, UsageWritten};
pub use vault::{Vault, VaultInfo};

use crate::crypto::{self, Key, Place};
use crate::db::{self, Conn, Tx, args};
use crate::error::{self, Error, Result};
use crate::keys::{self, Unlock};

/// How many times one operation runs again after losing its PostgreSQL
/// connection (each new connection waits up to the URL's retry budget for
/// a restarting server).
const LOST_CONNECTION_RETRIES: u32 = 3;

/// Runs one store operation: its database errors name `op`. On PostgreSQL,
/// when the connection was lost before the operation sent any COMMIT, the
/// server has rolled back everything it wrote, and nothing it did is seen
/// outside the database before a commit, so it runs again; the next
/// transaction opens a new connection. A connection lost after a COMMIT was
/// sent is reported, never retried: the write may have landed.
pub(crate) fn during<T>(op: &'static str, mut body: impl FnMut() -> Result<T>) -> Result<T> {
    let mut retries = 0;
    loop {
        let commits = db::commits_sent();
        match error::during(op, &mut body) {
            Err(e)
                if e.lost_before_commit()
                    && db::commits_sent() == commits
                    && retries < LOST_CONNECTION_RETRIES =>
            {
                retries += 1;
                tracing::warn!(op, error = %e, "retrying on a new connection");
            }
            result => return result,
        }
    }
}

/// Keys held while the vault is unlocked. Never leaves the process.
pub(crate) struct Keys {
    /// Data keys by id; the highest id seals new values.
    deks: BTreeMap<u32, Key>,
    /// KEKs known this session, by unlock method row (method, host).
    keks: BTreeMap<keyops::MethodRow, Key>,
    /// The key-check value of every unlock method as this session last saw
    /// it (at unlock, or after its own key operation). A key operation
    /// refuses to act when the file no longer agrees.
    methods_seen: keyops::MethodChecks,
    /// Keys the audit chain's MACs.
    audit: Key,
    /// Keys fingerprints of secrets and identities.
    fingerprint: Key,
    /// Keys the MAC over each account row's clear columns.
    rows: Key,
}

impl Keys {
    /// The sub-keys that must survive a data-key rotation come from the root secret.
    fn derive_from_root(&mut self, root: &Key) {
        self.audit = root.derive("audit-chain");
        self.fingerprint = root.derive("fingerprint");
        self.rows = root.derive("account-row");
    }

    /// Brings the held data keys up to date with the file: another process
    /// may have rotated them since this store was unlocked. Runs inside the
    /// caller's transaction, so what it sees is what the transaction sees.
    fn refresh(&mut self, tx: &Tx<'_>) -> Result<()> {
        let ids = tx.query_map("SELECT key_id FROM data_keys ORDER BY key_id", &[], |r| {
            r.get::<u32>(0)
        })?;
        if ids.iter().eq(self.deks.keys()) {
            return Ok(());
        }
        self.deks.retain(|id, _| ids.contains(id));
        for id in ids {
            if self.deks.contains_key(&id) {
                continue;
            }
            let mut found = None;
            for ((method, host), kek) in &self.keks {
                let wrapped: Option<Vec<u8>> = tx.query_opt(
                    "SELECT wrapped FROM key_wraps WHERE key_id = ?1 AND method = ?2 AND host = ?3",
                    args![id, method.as_str(), host],
                    |r| r.get(0),
                )?;
                if let Some(wrapped) = wrapped {
                    match keys::unwrap(kek, (*method, host), &wrapped) {
                        Ok((wid, dek)) if wid == id => found = Some(dek),
                        _ => {
                            return Err(Error::CorruptKeyWrap {
                                method: method.as_str(),
                                key_id: id,
                            });
                        }
                    }
                    break;
                }
            }
            let dek = found.ok_or_else(|| Error::DataKeyUnavailable { key_id: id })?;
            self.deks.insert(id, dek);
        }
        Ok(())
    }

    fn active(&self) -> (u32, &Key) {
        let (id, key) = self
            .deks
            .last_key_value()
            .expect("an unlocked vault holds a data key");
        (*id, key)
    }

    /// Seals `plaintext` for `place` under the active data key.
    pub(crate) fn seal(&self, place: &Place<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (id, key) = self.active();
        Ok(crypto::seal(key, id, place, plaintext)?)
    }

    /// Opens a sealed value; any failure is an integrity error naming the place.
    pub(crate) fn open(&self, place: &Place<'static>, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        crypto::open(|id| self.deks.get(&id), place, sealed).map_err(|source| Error::Integrity {
            table: place.table,
            column: place.column,
            row: place.row,
            source,
        })
    }

    /// Opens a sealed UTF-8 value into a secret string.
    pub(crate) fn open_secret(
        &self,
        place: &Place<'static>,
        sealed: &[u8],
    ) -> Result<SecretString> {
        let bytes = self.open(place, sealed)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::Malformed {
            table: place.table,
            column: place.column,
            row: place.row,
            reason: "sealed text is not UTF-8",
        })?;
        Ok(SecretString::from(text))
    }

    /// Keyed fingerprint: identifies a secret or identity without revealing it
    /// (first 16 bytes of an HMAC, hex).
    pub(crate) fn fingerprint(&self, parts: &[&[u8]]) -> String {
        crypto::hex(&self.fingerprint.mac(parts)[..16])
    }
}

const ROOT_PLACE: Place<'static> = Place {
    table: "vault_meta",
    column: "root_secret",
    row: 1,
    account: 0,
};

/// An unlocked vault: the repository every other layer uses.
pub struct Store {
    conn: Conn,
    /// As [`Vault::path`].
    path: PathBuf,
    location: db::Location,
    vault_id: String,
    keys: Keys,
    actor: Actor,
    /// This host: whose keyring row is this session's own, and the host
    /// audit entries name (see [`Store::with_host`]).
    host: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("vault_id", &self.vault_id)
            .field("actor", &self.actor)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a vault at `path` unlocked by `how`. With a keyring, the KEK is
    /// stored there first, so a keyring failure writes no file; any later
    /// failure removes the keyring entry again, unless the vault that uses
    /// it did land at `path`. The file appears at `path` only complete (see
    /// `db::create`); a stub an older build left there when killed while
    /// creating is replaced.
    ///
    /// # Errors
    /// `AlreadyExists`, keyring errors, KDF parameter errors, I/O, SQLite.
    pub fn init(path: &Path, how: &Unlock<'_>) -> Result<Self> {
        Self::init_at(&db::Location::File(path.to_path_buf()), how)
    }

    /// Creates a vault at `location`: a file as [`Store::init`] does, or in
    /// an empty PostgreSQL database (or schema): the schema, the first rows
    /// and the `vault.init` audit entry in one transaction under the vault's
    /// write lock, so the vault appears complete or not at all.
    ///
    /// # Errors
    /// As [`Store::init`]; for PostgreSQL, `AlreadyExists` for a vault and
    /// `NotAVault` for a database holding other tables (nothing written).
    pub fn init_at(location: &db::Location, how: &Unlock<'_>) -> Result<Self> {
        during("creating the vault", || {
            match location {
                db::Location::File(path) if !db::vacant(path)? => {
                    return Err(Error::AlreadyExists { path: path.clone() });
                }
                db::Location::File(_) => {}
                // Checked again inside the creating transaction.
                db::Location::Postgres(url) => {
                    let conn = Conn::Pg(db::pg_schema::connect(url)?);
                    let found = db::pg_schema::inspect(&conn.read_tx()?, url)?;
                    db::pg_schema::refuse_occupied(found, url)?;
                }
            }
            let mut id = [0u8; 16];
            crypto::fill_random(&mut id)?;
            let vault_id = crypto::hex(&id);
            let (kek, kdf_params) = match how {
                Unlock::Keyring(store) => {
                    let kek = Key::generate()?;
                    store.store(&vault_id, &kek)?;
                    (kek, None)
                }
                Unlock::Passphrase(passphrase, cost) => {
                    let params = cost.with_new_salt()?;
                    (params.derive(passphrase)?, Some(params))
                }
            };
            let first = FirstRows {
                vault_id: &vault_id,
                method: how.method(),
                host: how.host(),
                kek,
                kdf: kdf_params.as_ref(),
            };
            let created = Self::create(location, first);
            if created.is_err()
                && let Unlock::Keyring(store) = how
            {
                let landed = Vault::open_at(location).and_then(|v| v.vault_id()).ok();
                if landed.as_deref() != Some(vault_id.as_str()) {
                    let _ = store.delete(&vault_id);
                }
            }
            created
        })
    }

    fn create(location: &db::Location, first: FirstRows<'_>) -> Result<Self> {
        let vault_id = first.vault_id.to_owned();
        // The keyring's host; for a passphrase, this process's.
        let host = match first.host.as_str() {
            "" => crate::process::host(),
            host => host.to_owned(),
        };
        let actor = Actor::current(None);
        let by = audit::By {
            actor: &actor,
            host: &host,
        };
        let (conn, keys) = create_at(location, |tx| first.insert(tx, by))?;
        Ok(Self {
            conn,
            path: location
                .file()
                .map_or_else(|| PathBuf::from(location.to_string()), Path::to_path_buf),
            location: location.clone(),
            vault_id,
            keys,
            actor,
            host,
        })
    }

    /// Opens the vault at `location` and unlocks it.
    ///
    /// # Errors
    /// As [`Vault::open_at`] and [`Vault::unlock`].
    pub fn open_at(location: &db::Location, how: &Unlock<'_>) -> Result<Self> {
        during("opening the vault", || {
            Vault::open_at(location)?.unlock(how)
        })
    }

    /// Opens the vault at `path` and unlocks it.
    ///
    /// # Errors
    /// As [`Vault::open`] and [`Vault::unlock`].
    pub fn open(path: &Path, how: &Unlock<'_>) -> Result<Self> {
        during("opening the vault", || Vault::open(path)?.unlock(how))
    }

    /// Sets who is acting (recorded in every audit entry).
    #[must_use]
    pub fn with_actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Sets this host's name (default: the keyring's host when unlocked by
    /// a keyring, else [`crate::process::host`]): the host audit entries
    /// name, which keyring row `rekey` must wrap for, and which it leaves
    /// to re-enrol.
    #[must_use]
    pub fn with_host(mut self, host: String) -> Self {
        self.host = host;
        self
    }

    /// This host's name (see [`Store::with_host`]).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The vault file's path; for PostgreSQL, the URL without its password.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the vault lives.
    #[must_use]
    pub fn location(&self) -> &db::Location {
        &self.location
    }

    /// The vault id.
    #[must_use]
    pub fn vault_id(&self) -> &str {
        &self.vault_id
    }

    /// The data key ids currently held (normally one; more only mid-rotation).
    #[must_use]
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.deks.keys().copied().collect()
    }

    /// Moves committed changes into the main file (SQLite:
    /// `PRAGMA wal_checkpoint(TRUNCATE)`, which empties the WAL; nothing on
    /// PostgreSQL, whose server does this itself).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn checkpoint(&self) -> Result<()> {
        during("checkpointing the write-ahead log", || {
            self.conn.checkpoint()
        })
    }
    /// Starts a `BEGIN IMMEDIATE` transaction: concurrent writers queue on the
    /// busy timeout instead of failing mid-transaction. The data keys are
    /// refreshed inside it, so nothing is sealed under a key another process
    /// has just retired.
    fn write_tx(&mut self) -> Result<(Tx<'_>, &Keys, audit::By<'_>)> {
        let tx = self.conn.write_tx()?;
        self.keys.refresh(&tx)?;
        let by = audit::By {
            actor: &self.actor,
            host: &self.host,
        };
        Ok((tx, &self.keys, by))
    }

    /// Starts a read transaction: one consistent snapshot, keys refreshed for it.
    fn read_tx(&mut self) -> Result<(Tx<'_>, &Keys)> {
        let tx = self.conn.read_tx()?;
        self.keys.refresh(&tx)?;
        Ok((tx, &self.keys))
    }

    /// Records an event in the audit log on its own (for operations whose
    /// effect lies outside the database, such as `vault doctor --fix`).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn record(&mut self, action: &str, details: &serde_json::Value) -> Result<()> {
        during("recording an audit entry", || {
            let (tx, keys, actor) = self.write_tx()?;
            audit::append(
                &tx,
                keys,
                actor,
                &audit::Event::new(action).details(details.clone()),
            )?;
            tx.commit()?;
            Ok(())
        })
    }
}

/// Creates a new vault's schema at `location` and calls `fill` with the
/// creating transaction, which commits only if `fill` succeeds: a file
/// appears at its path only complete (`db::create`), a PostgreSQL schema is
/// created, filled and committed in one transaction under the write lock.
/// Returns the connection to the new vault and what `fill` returned.
///
/// # Errors
/// `AlreadyExists`, `NotAVault` (a database holding other tables), `fill`'s
/// error; I/O and database errors.
fn create_at<T>(
    location: &db::Location,
    fill: impl FnOnce(&Tx<'_>) -> Result<T>,
) -> Result<(Conn, T)> {
    match location {
        db::Location::File(path) => {
            let mut creating = db::create(path)?;
            let tx = creating.write_tx()?;
            let filled = fill(&tx)?;
            tx.commit()?;
            Ok((Conn::Sqlite(creating.finish()?), filled))
        }
        db::Location::Postgres(url) => {
            let mut conn = Conn::Pg(db::pg_schema::connect(url)?);
            let tx = conn.write_tx()?;
            db::pg_schema::create_schema(&tx, url)?;
            let filled = fill(&tx)?;
            tx.commit()?;
            Ok((conn, filled))
        }
    }
}

/// What a new vault's first rows need: its id and its first unlock method
/// (with the host of a keyring method; empty for the passphrase).
struct FirstRows<'a> {
    vault_id: &'a str,
    method: keys::Method,
    host: String,
    kek: Key,
    kdf: Option<&'a keys::KdfParams>,
}

impl FirstRows<'_> {
    /// Writes a new vault's first rows in `tx` (fresh data key and root
    /// secret, the unlock method, the `vault.init` audit entry); the keys
    /// of the unlocked vault.
    fn insert(self, tx: &Tx<'_>, by: audit::By<'_>) -> Result<Keys> {
        let Self {
            vault_id,
            method,
            host,
            kek,
            kdf,
        } = self;
        let dek = Key::generate()?;
        let root = Key::generate()?;
        let mut keys = Keys {
            deks: BTreeMap::from([(1, dek)]),
            keks: BTreeMap::new(),
            methods_seen: keyops::MethodChecks::new(),
            audit: Key::from_bytes([0; 32]),
            fingerprint: Key::from_bytes([0; 32]),
            rows: Key::from_bytes([0; 32]),
        };
        keys.derive_from_root(&root);
        let now = now();
        let root_sealed = keys.seal(&ROOT_PLACE, root.expose_bytes())?;
        tx.execute(
            "INSERT INTO vault_meta (id, vault_id, created_at, root_secret, audit_seq, audit_head, audit_anchor)
             VALUES (1, ?1, ?2, ?3, 0, ?4, ?5)",
            args![vault_id, now, root_sealed, [0u8; 32], audit::anchor(&keys.audit, 0, &[0; 32])],
        )?;
        tx.execute(
            "INSERT INTO data_keys (key_id, created_at) VALUES (1, ?1)",
            args![now],
        )?;
        keyops::insert_method(tx, &keys, vault_id, (method, &host), &kek, kdf)?;
        keys.methods_seen = keyops::method_checks(tx)?;
        keys.keks.insert((method, host), kek);
        audit::append(
            tx,
            &keys,
            by,
            &audit::Event::new("vault.init")
                .details(serde_json::json!({ "unlock_method": method, "vault_id": vault_id })),
        )?;
        Ok(keys)
    }
}
