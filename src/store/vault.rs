//! The opened, still locked vault file: what can be known without keys, and
//! the unlock that turns it into a [`Store`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Actor, Keys, ROOT_PLACE, Store, keyops};
use crate::crypto::Key;
use crate::db::{self, Conn, ModePolicy, Tx, args};
use crate::error::{self, Error, Result};
use crate::keys::{self, EnrolmentCode, KekStore, KeyringError, Method, Unlock};
use crate::store::during;

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

    /// Every unlock method row: the method and its host ('' for the
    /// passphrase and for the keyring of a vault made before format 11).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn method_rows(&self) -> Result<Vec<(Method, String)>> {
        during("listing unlock methods", || rows(&self.conn.read_tx()?))
    }

    /// The host of the row `method` uses on `host` (its own keyring row,
    /// else the unnamed one of a vault made before format 11; '' for the
    /// passphrase), or `None` when there is none.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn row_host(&self, method: Method, host: &str) -> Result<Option<String>> {
        during("listing unlock methods", || {
            Ok(row_for(&self.conn.read_tx()?, method, host)?.map(|(_, h)| h))
        })
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
            let (row, kek, _) = verified_kek(&snapshot, &self.path, &vault_id, how)?;
            unwrap_all(&snapshot, &self.path, &row, &kek)?;
            Ok(())
        })
    }

    /// Joins this host to the vault with an enrolment code made on an
    /// unlocked host ([`Store::enrol_host`]): the code must name this vault
    /// and `keyring`'s host and match that host's stored key check; its KEK
    /// then goes into `keyring` (an entry already holding it is fine, one
    /// holding another key is never replaced) and the vault unlocks with it.
    /// If that unlock fails, the entry written here is removed again.
    ///
    /// # Errors
    /// `InvalidInput` for a code of another vault or host, or one that does
    /// not match (superseded by a newer code, or revoked);
    /// `KeyringNeedsEnrol` when this host has no keyring row;
    /// `KeyringEntryExists`; keyring errors; SQLite.
    pub fn join_keyring(self, keyring: &dyn KekStore, code: &EnrolmentCode) -> Result<Store> {
        let host = keyring.host();
        let refused = |reason: String| Error::InvalidInput {
            what: "enrolment code".into(),
            reason,
        };
        let (vault_id, check) = during("joining the vault", || {
            let snapshot = self.conn.read_tx()?;
            let vault_id = vault_id(&snapshot)?;
            let check: Option<Vec<u8>> = snapshot.query_opt(
                "SELECT kek_check FROM unlock_methods WHERE method = 'keyring' AND host = ?1",
                args![&host],
                |r| r.get(0),
            )?;
            snapshot.commit()?;
            Ok((vault_id, check))
        })?;
        if code.vault_id != vault_id {
            return Err(refused(format!(
                "it is for vault {}, this is vault {vault_id}",
                code.vault_id
            )));
        }
        if code.host != host {
            return Err(refused(format!(
                "it enrols host `{}`, this host is `{host}` (set AUTHVAULT_HOST if this is `{}`)",
                code.host, code.host
            )));
        }
        let Some(check) = check else {
            return Err(Error::KeyringNeedsEnrol {
                host,
                reason: "this host's enrolment was removed; ask for a new code",
            });
        };
        if keys::verify_kek_check(&code.kek, &vault_id, &check) == keys::KekCheck::Mismatch {
            return Err(refused(
                "it no longer matches this host's enrolment (a newer code replaced it, or a \
                 rekey did); ask for a new code"
                    .into(),
            ));
        }
        let written = match keyring.load(&vault_id) {
            Ok(_) if keyops::entry_holds(keyring, &vault_id, &code.kek) => false,
            Ok(_) => return Err(Error::KeyringEntryExists { vault_id }),
            Err(KeyringError::NotFound) => {
                keyring.store(&vault_id, &code.kek)?;
                true
            }
            Err(e) => return Err(e.into()),
        };
        let joined = self
            .unlock(&Unlock::Keyring(keyring))
            .and_then(|mut store| {
                store.record(
                    "unlock_method.join",
                    &serde_json::json!({ "method": Method::Keyring, "host": host }),
                )?;
                Ok(store)
            });
        if joined.is_err() && written {
            keyops::delete_own_entry(keyring, &vault_id, &code.kek);
        }
        joined
    }

    /// Unlocks with `how`. Reads only: a failed unlock changes nothing.
    /// (A successful one rewrites a legacy key check in its current form.)
    ///
    /// # Errors
    /// `WrongPassphrase`, `KeyringMismatch`, `CorruptKeyWrap`, `Integrity`,
    /// keyring errors, or `NoSuchMethod` when the vault lacks that method.
    pub fn unlock(self, how: &Unlock<'_>) -> Result<Store> {
        // One read snapshot: the key check, the wraps and the method list agree.
        let (vault_id, row, kek, check, methods_seen, deks, root_sealed) =
            during("unlocking the vault", || {
                let snapshot = self.conn.read_tx()?;
                let vault_id = vault_id(&snapshot)?;
                let (row, kek, check) = verified_kek(&snapshot, &self.path, &vault_id, how)?;
                let methods_seen = keyops::method_checks(&snapshot)?;
                let deks = unwrap_all(&snapshot, &self.path, &row, &kek)?;
                let root_sealed: Vec<u8> = snapshot.query_row(
                    "SELECT root_secret FROM vault_meta WHERE id = 1",
                    &[],
                    |r| r.get(0),
                )?;
                snapshot.commit()?;
                Ok((vault_id, row, kek, check, methods_seen, deks, root_sealed))
            })?;
        error::during("unlocking the vault", || {
            let mut keys = Keys {
                deks,
                keks: BTreeMap::from([(row.clone(), kek)]),
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
                host: match how {
                    Unlock::Keyring(keyring) => keyring.host(),
                    Unlock::Passphrase(..) => crate::process::host(),
                },
            };
            if check == keys::KekCheck::Legacy {
                store.upgrade_kek_check(&row)?;
            }
            Ok(store)
        })
    }
}

impl Vault {
    /// The connection, for a caller in `store` that checks a vault it has
    /// just written (`vault copy`).
    pub(super) fn into_conn(self) -> Conn {
        self.conn
    }
}

/// The id and the keys of the vault `tx` reads, unlocked with KEKs this
/// process holds already (a copy of a vault has its id, key checks and
/// wraps): every one of `held` must match its row's key check and unwrap
/// every data key wrapped for it. Reads only.
///
/// # Errors
/// `NoSuchMethod` for a row the vault lacks, `WrongPassphrase` /
/// `KeyringMismatch` for a KEK that does not fit, `CorruptKeyWrap`,
/// `Integrity` of the root secret.
pub(super) fn keys_with(
    tx: &Tx<'_>,
    path: &Path,
    held: &BTreeMap<keyops::MethodRow, Key>,
) -> Result<(String, Keys)> {
    let vault_id = vault_id(tx)?;
    let mut deks = BTreeMap::new();
    for (row, kek) in held {
        let (method, host) = (row.0, &row.1);
        let check: Option<Vec<u8>> = tx.query_opt(
            "SELECT kek_check FROM unlock_methods WHERE method = ?1 AND host = ?2",
            args![method.as_str(), host],
            |r| r.get(0),
        )?;
        let Some(check) = check else {
            return Err(Error::NoSuchMethod {
                method: method.as_str(),
                have: methods(tx)?.iter().map(|m| m.as_str()).collect(),
            });
        };
        if keys::verify_kek_check(kek, &vault_id, &check) == keys::KekCheck::Mismatch {
            return Err(match method {
                Method::Passphrase => Error::WrongPassphrase {
                    path: path.to_path_buf(),
                },
                Method::Keyring => Error::KeyringMismatch {
                    vault_id: vault_id.clone(),
                },
            });
        }
        deks.extend(unwrap_all(tx, path, row, kek)?);
    }
    let root_sealed: Vec<u8> = tx.query_row(
        "SELECT root_secret FROM vault_meta WHERE id = 1",
        &[],
        |r| r.get(0),
    )?;
    let mut keys = Keys {
        deks,
        keks: BTreeMap::new(),
        methods_seen: keyops::method_checks(tx)?,
        audit: Key::from_bytes([0; 32]),
        fingerprint: Key::from_bytes([0; 32]),
        rows: Key::from_bytes([0; 32]),
    };
    let root = open_root(&keys, &root_sealed)?;
    keys.derive_from_root(&root);
    Ok((vault_id, keys))
}

/// Opens every data key wrapped for the unlock method row `row` with `kek`.
fn unwrap_all(
    tx: &Tx<'_>,
    path: &Path,
    (method, host): &keyops::MethodRow,
    kek: &Key,
) -> Result<BTreeMap<u32, Key>> {
    let method = *method;
    let mut deks = BTreeMap::new();
    let wraps = tx.query_map(
        "SELECT key_id, wrapped FROM key_wraps WHERE method = ?1 AND host = ?2 ORDER BY key_id",
        args![method.as_str(), host],
        |r| Ok((r.get::<u32>(0)?, r.get::<Vec<u8>>(1)?)),
    )?;
    for (key_id, wrapped) in wraps {
        match keys::unwrap(kek, (method, host), &wrapped) {
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
    if deks.is_empty() && method == Method::Keyring {
        // `vault rekey` on another host kept this row but could not wrap the
        // new data key for it.
        return Err(Error::KeyringNeedsEnrol {
            host: host.clone(),
            reason: "`vault rekey` rotated the data key on another host, so this host must re-enrol",
        });
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
        "SELECT DISTINCT method FROM unlock_methods ORDER BY method",
        &[],
        |r| r.get::<String>(0),
    )?;
    Ok(names.iter().filter_map(|n| Method::parse(n)).collect())
}

/// Every unlock method row (method, host), in order.
pub(super) fn rows(tx: &Tx<'_>) -> Result<Vec<keyops::MethodRow>> {
    let rows = tx.query_map(
        "SELECT method, host FROM unlock_methods ORDER BY method, host",
        &[],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, host)| Some((Method::parse(&m)?, host)))
        .collect())
}

/// The unlock method row that `method` uses on `host`: the passphrase's
/// single row; for a keyring, the host's row, else the row of host '' (a vault made
/// before format 11 had one host, whatever its name). `None` when neither
/// exists.
pub(super) fn row_for(
    tx: &Tx<'_>,
    method: Method,
    host: &str,
) -> Result<Option<keyops::MethodRow>> {
    let found: Option<String> = tx.query_opt(
        "SELECT host FROM unlock_methods WHERE method = ?1 AND host IN (?2, '') \
         ORDER BY host DESC LIMIT 1",
        args![method.as_str(), host],
        |r| r.get(0),
    )?;
    Ok(found.map(|host| (method, host)))
}

/// Obtains the KEK for `how` and checks it against the stored key-check
/// value (which binds the vault id) of the row it uses ([`row_for`]).
/// Says whether the check is still in its legacy form, written before the
/// vault id was bound.
pub(super) fn verified_kek(
    tx: &Tx<'_>,
    path: &Path,
    vault_id: &str,
    how: &Unlock<'_>,
) -> Result<(keyops::MethodRow, Key, keys::KekCheck)> {
    let method = how.method();
    let found = match row_for(tx, method, &how.host())? {
        Some(row) => tx
            .query_opt(
                "SELECT kdf_params, kek_check FROM unlock_methods WHERE method = ?1 AND host = ?2",
                args![method.as_str(), &row.1],
                |r| Ok((r.get::<Option<String>>(0)?, r.get::<Vec<u8>>(1)?)),
            )?
            .map(|found| (row, found)),
        None => None,
    };
    let Some((row, (params, check))) = found else {
        let have = methods(tx)?;
        if have.contains(&method) {
            // Other hosts have a keyring row; this one has not enrolled.
            return Err(Error::KeyringNeedsEnrol {
                host: how.host(),
                reason: "this host is not enrolled",
            });
        }
        return Err(Error::NoSuchMethod {
            method: method.as_str(),
            have: have.iter().map(|m| m.as_str()).collect(),
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
        found => Ok((row, kek, found)),
    }
}
