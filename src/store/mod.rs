//! The repository layer: typed methods, one per use case, each owning its
//! transaction; the only code that writes SQL against vault tables.
//!
//! [`Vault`] is an opened, still locked file: it answers what can be answered
//! without keys (format, unlock methods, counts). [`Vault::unlock`] turns it
//! into a [`Store`], which seals and opens columns itself, so no caller can
//! write an unsealed secret or read one without an audit entry.
//!
//! Architecture invariant: `store` knows nothing about HTTP or providers.

mod accounts;
mod audit;
mod keyops;
pub(crate) mod labels;
mod merge;
mod quota;
mod refresh;
mod time;

use time::now;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use secrecy::SecretString;
use zeroize::Zeroizing;

pub use accounts::{AccountInfo, AccountSelector, NewAccount, Token, check_label};
pub use audit::{Actor, AuditEntry, AuditReport, ChainState};
pub use keyops::RekeyReport;
pub use merge::{
    CredentialCheck, HistoryEntry, HistoryRow, MergeAction, MergeInput, MergeItem, MergeOutcome,
    MergeReport,
};
pub use quota::{Budget, BudgetStatus, Notice, Reservation, Settled, Target, Usage, ZONE_SETTING};
pub use refresh::{Lease, OAuthState};

use crate::crypto::{self, Key, Place};
use crate::db::{self, ModePolicy};
use crate::error::{Error, Result};
use crate::keys::{self, Method, Unlock};

/// One sealed column: where it lives and which column names its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// SQL expression giving the owning account id (`0` when none).
    pub account_expr: &'static str,
    /// SQL expression giving the row id bound into the associated data.
    pub row_expr: &'static str,
}

/// Every column sealed with the data key. `vault rekey` re-seals exactly these;
/// SECURITY.md lists them with the reason each is sealed.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "vault_meta",
        column: "root_secret",
        account_expr: "0",
        row_expr: "id",
    },
    SealedColumn {
        table: "accounts",
        column: "email",
        account_expr: "id",
        row_expr: "id",
    },
    SealedColumn {
        table: "accounts",
        column: "provider_account_id",
        account_expr: "id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "api_key",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "access_token",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "refresh_token",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "id_token",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "selection_history",
        column: "task_context",
        account_expr: "0",
        row_expr: "id",
    },
];

/// Every sealed value in the vault, with the place it is bound to.
fn sealed_values(conn: &Connection) -> Result<Vec<(Place<'static>, Vec<u8>)>> {
    let mut out = Vec::new();
    for col in SEALED_COLUMNS {
        let mut stmt = conn.prepare(&format!(
            "SELECT {row}, {acct}, {c} FROM {t} WHERE {c} IS NOT NULL",
            row = col.row_expr,
            acct = col.account_expr,
            c = col.column,
            t = col.table
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                Place {
                    table: col.table,
                    column: col.column,
                    row: r.get(0)?,
                    account: r.get(1)?,
                },
                r.get(2)?,
            ))
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// Keys held while the vault is unlocked. Never leaves the process.
pub(crate) struct Keys {
    /// Data keys by id; the highest id seals new values.
    deks: BTreeMap<u32, Key>,
    /// KEKs known this session, by unlock method.
    keks: BTreeMap<Method, Key>,
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
    fn refresh(&mut self, conn: &Connection) -> Result<()> {
        let mut stmt = conn.prepare_cached("SELECT key_id FROM data_keys ORDER BY key_id")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, u32>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if ids.iter().eq(self.deks.keys()) {
            return Ok(());
        }
        self.deks.retain(|id, _| ids.contains(id));
        for id in ids {
            if self.deks.contains_key(&id) {
                continue;
            }
            let mut found = None;
            for (method, kek) in &self.keks {
                let wrapped: Option<Vec<u8>> = conn
                    .query_row(
                        "SELECT wrapped FROM key_wraps WHERE key_id = ?1 AND method = ?2",
                        params![id, method.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(wrapped) = wrapped {
                    match keys::unwrap(kek, *method, &wrapped) {
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
            let dek = found.ok_or_else(|| {
                Error::UnlockMethodState(format!(
                    "data key {id} is not wrapped for the unlock method this session used; unlock again"
                ))
            })?;
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

/// What can be known of a vault without unlocking it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VaultInfo {
    /// The vault file.
    pub path: PathBuf,
    /// Random id naming this vault (and its keyring entry).
    pub vault_id: String,
    /// Format version of the file.
    pub format_version: i64,
    /// When it was created.
    pub created_at: String,
    /// Unlock methods present.
    pub unlock_methods: Vec<Method>,
    /// Number of accounts per provider name.
    pub accounts: BTreeMap<String, u64>,
    /// Number of audit entries.
    pub audit_entries: u64,
}

/// An opened, locked vault file.
pub struct Vault {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault at `path`, refusing loose modes, foreign files and
    /// newer formats (untouched).
    ///
    /// # Errors
    /// See [`Error`]: `NoVault`, `InsecureMode`, `NotAVault`, `NewerFormat`, SQLite.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, ModePolicy::Refuse)
    }

    /// Opens the vault even when its modes are loose (for `vault doctor`).
    ///
    /// # Errors
    /// As [`Vault::open`], except loose modes.
    pub fn open_with(path: &Path, policy: ModePolicy) -> Result<Self> {
        let conn = db::open(path, policy)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The vault file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The vault id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn vault_id(&self) -> Result<String> {
        vault_id(&self.conn)
    }

    /// The unlock methods this vault has.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn methods(&self) -> Result<Vec<Method>> {
        methods(&self.conn)
    }

    /// Format, methods and counts, without unlocking.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn info(&self) -> Result<VaultInfo> {
        let (vault_id, created_at) = self.conn.query_row(
            "SELECT vault_id, created_at FROM vault_meta WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut accounts = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT provider, count(*) FROM accounts GROUP BY provider")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (p, n) = row?;
            accounts.insert(p, n as u64);
        }
        Ok(VaultInfo {
            path: self.path.clone(),
            vault_id,
            format_version: self
                .conn
                .pragma_query_value(None, "user_version", |r| r.get(0))?,
            created_at,
            unlock_methods: self.methods()?,
            accounts,
            audit_entries: self
                .conn
                .query_row("SELECT count(*) FROM audit_log", [], |r| r.get::<_, i64>(0))?
                as u64,
        })
    }

    /// `PRAGMA integrity_check`: `["ok"]` when the file is sound.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Checks, without unlocking or writing anything, that `how` opens this
    /// vault now: its key matches the stored key check and unwraps every
    /// data key. `vault status` uses it, so a keyring method whose entry is
    /// gone is not reported as usable.
    ///
    /// # Errors
    /// As [`Vault::unlock`].
    pub fn check(&self, how: &Unlock<'_>) -> Result<()> {
        let snapshot = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let vault_id = vault_id(&snapshot)?;
        let (kek, _) = verified_kek(&snapshot, &self.path, &vault_id, how)?;
        unwrap_all(&snapshot, &self.path, how.method(), &kek)?;
        Ok(())
    }

    /// Unlocks with `how`. Reads only: a failed unlock changes nothing.
    /// (A successful one rewrites a legacy key check in its current form.)
    ///
    /// # Errors
    /// `WrongPassphrase`, `KeyringMismatch`, `CorruptKeyWrap`, `Integrity`,
    /// keyring errors, or `UnlockMethodState` when the vault lacks that method.
    pub fn unlock(self, how: &Unlock<'_>) -> Result<Store> {
        let method = how.method();
        // One read snapshot: the key check, the wraps and the method list agree.
        let snapshot = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let vault_id = vault_id(&snapshot)?;
        let (kek, check) = verified_kek(&snapshot, &self.path, &vault_id, how)?;
        let methods_seen = keyops::method_checks(&snapshot)?;
        let deks = unwrap_all(&snapshot, &self.path, method, &kek)?;
        let root_sealed: Vec<u8> =
            snapshot.query_row("SELECT root_secret FROM vault_meta WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        snapshot.finish()?;
        let mut keys = Keys {
            deks,
            keks: BTreeMap::from([(method, kek)]),
            methods_seen,
            audit: Key::from_bytes([0; 32]),
            fingerprint: Key::from_bytes([0; 32]),
            rows: Key::from_bytes([0; 32]),
        };
        let root = open_root(&keys, &root_sealed)?;
        keys.derive_from_root(&root);
        let mut store = Store {
            conn: self.conn,
            path: self.path,
            vault_id,
            keys,
            actor: Actor::current(None),
        };
        if check == keys::KekCheck::Legacy {
            store.upgrade_kek_check(method)?;
        }
        Ok(store)
    }
}

/// Opens every data key wrapped for `method` with `kek`.
fn unwrap_all(
    conn: &Connection,
    path: &Path,
    method: Method,
    kek: &Key,
) -> Result<BTreeMap<u32, Key>> {
    let mut deks = BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT key_id, wrapped FROM key_wraps WHERE method = ?1 ORDER BY key_id")?;
    let wraps = stmt
        .query_map([method.as_str()], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (key_id, wrapped) in wraps {
        match keys::unwrap(kek, method, &wrapped) {
            Ok((id, dek)) if id == key_id => {
                deks.insert(key_id, dek);
            }
            _ => {
                return Err(Error::CorruptKeyWrap {
                    method: method.as_str(),
                    key_id,
                });
            }
        }
    }
    if deks.is_empty() {
        return Err(Error::NotAVault {
            path: path.to_path_buf(),
            reason: format!("no data key is wrapped for the {method} method"),
        });
    }
    Ok(deks)
}

fn vault_id(conn: &Connection) -> Result<String> {
    Ok(
        conn.query_row("SELECT vault_id FROM vault_meta WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

const ROOT_PLACE: Place<'static> = Place {
    table: "vault_meta",
    column: "root_secret",
    row: 1,
    account: 0,
};

fn open_root(keys: &Keys, sealed: &[u8]) -> Result<Key> {
    let bytes = keys.open(&ROOT_PLACE, sealed)?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| Error::Malformed {
        table: "vault_meta",
        column: "root_secret",
        row: 1,
        reason: "root secret is not 32 bytes",
    })?;
    Ok(Key::from_bytes(arr))
}

fn methods(conn: &Connection) -> Result<Vec<Method>> {
    let mut stmt = conn.prepare("SELECT method FROM unlock_methods ORDER BY method")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.iter().filter_map(|n| Method::parse(n)).collect())
}

/// Obtains the KEK for `how` and checks it against the stored key-check
/// value (which binds the vault id). Says whether the check is still in its
/// legacy form, written before the vault id was bound.
fn verified_kek(
    conn: &Connection,
    path: &Path,
    vault_id: &str,
    how: &Unlock<'_>,
) -> Result<(Key, keys::KekCheck)> {
    let method = how.method();
    let row: Option<(Option<String>, Vec<u8>)> = conn
        .query_row(
            "SELECT kdf_params, kek_check FROM unlock_methods WHERE method = ?1",
            [method.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((params, check)) = row else {
        let have = methods(conn)?
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::UnlockMethodState(format!(
            "this vault has no {method} unlock method (it has: {have})"
        )));
    };
    let kek = match how {
        Unlock::Keyring(store) => store.load(vault_id)?,
        Unlock::Passphrase(passphrase, _) => {
            let params: keys::KdfParams =
                serde_json::from_str(params.as_deref().unwrap_or_default())
                    .map_err(|e| Error::KdfParams(format!("stored parameters unreadable: {e}")))?;
            params.derive(passphrase)?
        }
    };
    match keys::verify_kek_check(&kek, vault_id, &check) {
        keys::KekCheck::Mismatch => Err(match method {
            Method::Passphrase => Error::WrongPassphrase {
                path: path.to_path_buf(),
            },
            Method::Keyring => Error::KeyringMismatch {
                vault_id: vault_id.to_owned(),
            },
        }),
        found => Ok((kek, found)),
    }
}

/// An unlocked vault: the repository every other layer uses.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    vault_id: String,
    keys: Keys,
    actor: Actor,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("vault_id", &self.vault_id)
            .field("actor", &self.actor)
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
        if !db::vacant(path)? {
            return Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            });
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
        let created = Self::create(path, &vault_id, how.method(), kek, kdf_params.as_ref());
        if created.is_err()
            && let Unlock::Keyring(store) = how
        {
            let landed = Vault::open(path).and_then(|v| v.vault_id()).ok();
            if landed.as_deref() != Some(vault_id.as_str()) {
                let _ = store.delete(&vault_id);
            }
        }
        created
    }

    fn create(
        path: &Path,
        vault_id: &str,
        method: Method,
        kek: Key,
        kdf: Option<&keys::KdfParams>,
    ) -> Result<Self> {
        let mut creating = db::create(path)?;
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
        let actor = Actor::current(None);
        let tx = creating
            .conn()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now();
        let root_sealed = keys.seal(&ROOT_PLACE, root.expose_bytes())?;
        tx.execute(
            "INSERT INTO vault_meta (id, vault_id, created_at, root_secret, audit_seq, audit_head, audit_anchor)
             VALUES (1, ?1, ?2, ?3, 0, ?4, ?5)",
            params![vault_id, now, root_sealed, [0u8; 32], audit::anchor(&keys.audit, 0, &[0; 32])],
        )?;
        tx.execute(
            "INSERT INTO data_keys (key_id, created_at) VALUES (1, ?1)",
            [&now],
        )?;
        keyops::insert_method(&tx, &keys, vault_id, method, &kek, kdf)?;
        keys.methods_seen = keyops::method_checks(&tx)?;
        keys.keks.insert(method, kek);
        audit::append(
            &tx,
            &keys,
            &actor,
            &audit::Event::new("vault.init")
                .details(serde_json::json!({ "unlock_method": method, "vault_id": vault_id })),
        )?;
        tx.commit()?;
        Ok(Self {
            conn: creating.finish()?,
            path: path.to_path_buf(),
            vault_id: vault_id.to_owned(),
            keys,
            actor,
        })
    }

    /// Opens the vault at `path` and unlocks it.
    ///
    /// # Errors
    /// As [`Vault::open`] and [`Vault::unlock`].
    pub fn open(path: &Path, how: &Unlock<'_>) -> Result<Self> {
        Vault::open(path)?.unlock(how)
    }

    /// Sets who is acting (recorded in every audit entry).
    #[must_use]
    pub fn with_actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// The vault file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
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

    /// Runs `PRAGMA wal_checkpoint(TRUNCATE)`: moves the WAL into the main file.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Opens every sealed value in the vault (returning none of them) and
    /// counts them: proof that every value is readable under the keys held.
    ///
    /// # Errors
    /// The first `Integrity` error met, naming table, column and row.
    pub fn verify_sealed(&mut self) -> Result<u64> {
        let (tx, keys) = self.read_tx()?;
        let values = sealed_values(&tx)?;
        for (place, sealed) in &values {
            keys.open(place, sealed)?;
        }
        Ok(values.len() as u64)
    }

    /// Starts a `BEGIN IMMEDIATE` transaction: concurrent writers queue on the
    /// busy timeout instead of failing mid-transaction. The data keys are
    /// refreshed inside it, so nothing is sealed under a key another process
    /// has just retired.
    fn write_tx(&mut self) -> Result<(Transaction<'_>, &Keys, &Actor)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.keys.refresh(&tx)?;
        Ok((tx, &self.keys, &self.actor))
    }

    /// Starts a read transaction: one consistent snapshot, keys refreshed for it.
    fn read_tx(&mut self) -> Result<(Transaction<'_>, &Keys)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        self.keys.refresh(&tx)?;
        Ok((tx, &self.keys))
    }

    /// Records an event in the audit log on its own (for operations whose
    /// effect lies outside the database, such as `vault doctor --fix`).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn record(&mut self, action: &str, details: serde_json::Value) -> Result<()> {
        let (tx, keys, actor) = self.write_tx()?;
        audit::append(
            &tx,
            keys,
            actor,
            &audit::Event::new(action).details(details),
        )?;
        tx.commit()?;
        Ok(())
    }
}
