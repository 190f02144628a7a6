//! The opened, still locked vault file: what can be known without keys, and
//! the unlock that turns it into a [`Store`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Actor, Keys, ROOT_PLACE, Store, keyops};
use crate::crypto::Key;
use crate::db::{self, Conn, ModePolicy, Tx, args};
use crate::error::{Error, Result, during};
use crate::keys::{self, Method, Unlock};

/// What can be known of a vault without unlocking it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VaultInfo {
    /// The vault file; for PostgreSQL, the URL without its password.
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
    conn: Conn,
    /// The file; for PostgreSQL, the URL without its password (what
    /// messages name).
    path: PathBuf,
    location: db::Location,
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
        during("opening the vault", || {
            Self::open_with(path, ModePolicy::Refuse)
        })
    }

    /// Opens the vault at `location` (a file as [`Vault::open`] does).
    ///
    /// # Errors
    /// As [`Vault::open`]; for PostgreSQL, connection errors.
    pub fn open_at(location: &db::Location) -> Result<Self> {
        Self::open_with_at(location, ModePolicy::Refuse)
    }

    /// [`Vault::open_with`] for any location; `policy` applies to files only.
    ///
    /// # Errors
    /// As [`Vault::open_at`].
    pub fn open_with_at(location: &db::Location, policy: ModePolicy) -> Result<Self> {
        match location {
            db::Location::File(path) => Self::open_with(path, policy),
            db::Location::Postgres(url) => during("opening the vault", || {
                Ok(Self {
                    conn: db::pg_schema::open(url)?,
                    path: PathBuf::from(location.to_string()),
                    location: location.clone(),
                })
            }),
        }
    }

    /// Opens the vault even when its modes are loose (for `vault doctor`).
    ///
    /// # Errors
    /// As [`Vault::open`], except loose modes.
    pub fn open_with(path: &Path, policy: ModePolicy) -> Result<Self> {
        during("opening the vault", || {
            let conn = db::open(path, policy)?;
            Ok(Self {
                conn: Conn::Sqlite(conn),
                path: path.to_path_buf(),
                location: db::Location::File(path.to_path_buf()),
            })
        })
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
    ///
    /// # Errors
    /// SQLite errors.
    pub fn vault_id(&self) -> Result<String> {
        during("reading the vault id", || vault_id(&self.conn.read_tx()?))
    }

    /// The unlock methods this vault has.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn methods(&self) -> Result<Vec<Method>> {
        during("listing unlock methods", || methods(&self.conn.read_tx()?))
    }

    /// Format, methods and counts, without unlocking.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn info(&self) -> Result<VaultInfo> {
        during("reading the vault's status", || {
            // One read snapshot: the counts and the methods agree.
            let snapshot = self.conn.read_tx()?;
            let (vault_id, created_at) = snapshot.query_row(
                "SELECT vault_id, created_at FROM vault_meta WHERE id = 1",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let accounts = snapshot
                .query_map(
                    "SELECT provider, count(*) FROM accounts GROUP BY provider",
                    &[],
                    |r| Ok((r.get::<String>(0)?, r.get::<u64>(1)?)),
                )?
                .into_iter()
                .collect();
            Ok(VaultInfo {
                path: self.path.clone(),
                vault_id,
                format_version: snapshot.format_version()?,
                created_at,
                unlock_methods: methods(&snapshot)?,
                accounts,
                audit_entries: snapshot
                    .query_row("SELECT count(*) FROM audit_log", &[], |r| r.get::<u64>(0))?,
            })
        })
    }

    /// The database's own consistency check (SQLite: `PRAGMA
    /// integrity_check`): `["ok"]` when the file is sound.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        during("checking the database's integrity", || {
            self.conn.integrity_check()
        })
    }

    /// Checks, without unlocking or writing anything, that `how` opens this
    /// vault now: its key matches the stored key check and unwraps every
    /// data key. `vault status` uses it, so a keyring method whose entry is
    /// gone is not reported as usable.
    ///
    /// # Errors
    /// As [`Vault::unlock`].
    pub fn check(&self, how: &Unlock<'_>) -> Result<()> {
        during("checking an unlock method", || {
            let snapshot = self.conn.read_tx()?;
            let vault_id = vault_id(&snapshot)?;
            let (kek, _) = verified_kek(&snapshot, &self.path, &vault_id, how)?;
            unwrap_all(&snapshot, &self.path, how.method(), &kek)?;
            Ok(())
        })
    }

    /// Unlocks with `how`. Reads only: a failed unlock changes nothing.
    /// (A successful one rewrites a legacy key check in its current form.)
    ///
    /// # Errors
    /// `WrongPassphrase`, `KeyringMismatch`, `CorruptKeyWrap`, `Integrity`,
    /// keyring errors, or `NoSuchMethod` when the vault lacks that method.
    pub fn unlock(self, how: &Unlock<'_>) -> Result<Store> {
        during("unlocking the vault", || {
            let method = how.method();
            // One read snapshot: the key check, the wraps and the method list agree.
            let snapshot = self.conn.read_tx()?;
            let vault_id = vault_id(&snapshot)?;
            let (kek, check) = verified_kek(&snapshot, &self.path, &vault_id, how)?;
            let methods_seen = keyops::method_checks(&snapshot)?;
            let deks = unwrap_all(&snapshot, &self.path, method, &kek)?;
            let root_sealed: Vec<u8> = snapshot.query_row(
                "SELECT root_secret FROM vault_meta WHERE id = 1",
                &[],
                |r| r.get(0),
            )?;
            snapshot.commit()?;
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
                location: self.location,
                vault_id,
                keys,
                actor: Actor::current(None),
            };
            if check == keys::KekCheck::Legacy {
                store.upgrade_kek_check(method)?;
            }
            Ok(store)
        })
    }
}

/// Opens every data key wrapped for `method` with `kek`.
fn unwrap_all(tx: &Tx<'_>, path: &Path, method: Method, kek: &Key) -> Result<BTreeMap<u32, Key>> {
    let mut deks = BTreeMap::new();
    let wraps = tx.query_map(
        "SELECT key_id, wrapped FROM key_wraps WHERE method = ?1 ORDER BY key_id",
        args![method.as_str()],
        |r| Ok((r.get::<u32>(0)?, r.get::<Vec<u8>>(1)?)),
    )?;
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

fn vault_id(tx: &Tx<'_>) -> Result<String> {
    tx.query_row("SELECT vault_id FROM vault_meta WHERE id = 1", &[], |r| {
        r.get(0)
    })
}

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

pub(super) fn methods(tx: &Tx<'_>) -> Result<Vec<Method>> {
    let names = tx.query_map(
        "SELECT method FROM unlock_methods ORDER BY method",
        &[],
        |r| r.get::<String>(0),
    )?;
    Ok(names.iter().filter_map(|n| Method::parse(n)).collect())
}

/// Obtains the KEK for `how` and checks it against the stored key-check
/// value (which binds the vault id). Says whether the check is still in its
/// legacy form, written before the vault id was bound.
pub(super) fn verified_kek(
    tx: &Tx<'_>,
    path: &Path,
    vault_id: &str,
    how: &Unlock<'_>,
) -> Result<(Key, keys::KekCheck)> {
    let method = how.method();
    let row: Option<(Option<String>, Vec<u8>)> = tx.query_opt(
        "SELECT kdf_params, kek_check FROM unlock_methods WHERE method = ?1",
        args![method.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some((params, check)) = row else {
        return Err(Error::NoSuchMethod {
            method: method.as_str(),
            have: methods(tx)?.iter().map(|m| m.as_str()).collect(),
        });
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
