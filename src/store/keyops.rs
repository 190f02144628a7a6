//! Key operations: adding and removing unlock methods, changing the
//! passphrase (rewraps key rows only), and rotating the data key (re-seals
//! every sealed value in one transaction, so a crash leaves either the old or
//! the new key in force and every value readable).
//!
//! Key operations race each other across processes (`vault rekey` while
//! `vault passphrase change` runs). Each one re-checks, inside its write
//! transaction, that the unlock methods are still exactly those its session
//! saw ([`ensure_unchanged`]); a process that lost the race stops with
//! `UnlockMethodChanged` and changes nothing. So no interleaving can wrap a
//! data key under a key-encryption key that the stored key check no longer
//! names. Before a method is removed, every remaining one is proven to open
//! the vault now ([`prove`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::audit::{self, Event};
use super::vault::{self, row_for, verified_kek};
use super::{Keys, Store, now};
use crate::crypto::{self, Key};
use crate::db::{Tx, args};
use crate::error::{Error, Result};
use crate::keys::{
    self, EnrolmentCode, KdfParams, KekCheck, KekStore, KeyringError, Method, Unlock,
};
use crate::store::during;

/// An unlock method row: the method and its host ('' for the passphrase,
/// and for the keyring of a vault made before format 11).
pub(super) type MethodRow = (Method, String);

/// The stored key-check value of each unlock method row.
pub(super) type MethodChecks = BTreeMap<MethodRow, Vec<u8>>;

/// What `vault rekey` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// Data key ids retired.
    pub from: Vec<u32>,
    /// The new data key id.
    pub to: u32,
    /// Sealed values re-sealed.
    pub values: u64,
    /// Hosts whose keyring rows were kept without a wrap of the new data
    /// key (this session does not hold their KEKs): each must re-enrol with
    /// `vault keyring add` after unlocking with the passphrase. '' is the
    /// unnamed only host of a vault made before format 11.
    pub must_re_enrol: Vec<String>,
}

/// Reads every unlock method row's key-check value.
pub(super) fn method_checks(conn: &Tx<'_>) -> Result<MethodChecks> {
    let rows = conn.query_map(
        "SELECT method, host, kek_check FROM unlock_methods",
        &[],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<Vec<u8>>(2)?,
            ))
        },
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, host, check)| Some(((Method::parse(&name)?, host), check)))
        .collect())
}

/// Inside a key operation's write transaction: the unlock methods are still
/// those this session saw, and every KEK it holds still matches its method.
/// Otherwise another process added, removed or replaced one meanwhile, and
/// acting on what this session knows could leave a data key wrapped only
/// under a key nobody has. Returns the methods as they are.
fn ensure_unchanged(tx: &Tx<'_>, keys: &Keys, vault_id: &str) -> Result<MethodChecks> {
    let current = method_checks(tx)?;
    let changed = current
        .keys()
        .chain(keys.methods_seen.keys())
        .find(|m| current.get(m) != keys.methods_seen.get(m))
        .or_else(|| {
            keys.keks.iter().find_map(|(m, kek)| {
                let fits = current
                    .get(m)
                    .is_some_and(|c| keys::verify_kek_check(kek, vault_id, c) == KekCheck::Current);
                (!fits).then_some(m)
            })
        });
    match changed {
        Some((method, _)) => Err(Error::UnlockMethodChanged {
            method: method.as_str(),
        }),
        None => Ok(current),
    }
}

/// Proves that `kek` opens the vault through `method` now: its key check
/// matches and it unwraps every data key. `removing` names the method whose
/// removal depends on this proof.
fn prove(
    tx: &Tx<'_>,
    keys: &Keys,
    vault_id: &str,
    ((method, host), kek): (&MethodRow, &Key),
    removing: Method,
) -> Result<()> {
    let method = *method;
    let fail = |reason: String| Error::UnprovenMethod {
        method: method.as_str(),
        removing: removing.as_str(),
        reason,
    };
    let check: Vec<u8> = tx.query_row(
        "SELECT kek_check FROM unlock_methods WHERE method = ?1 AND host = ?2",
        args![method.as_str(), host],
        |r| r.get(0),
    )?;
    if keys::verify_kek_check(kek, vault_id, &check) == KekCheck::Mismatch {
        return Err(fail("its key does not match the vault".into()));
    }
    for &id in keys.deks.keys() {
        let wrapped: Vec<u8> = tx
            .query_row(
                "SELECT wrapped FROM key_wraps WHERE key_id = ?1 AND method = ?2 AND host = ?3",
                args![id, method.as_str(), host],
                |r| r.get(0),
            )
            .map_err(|_| fail(format!("data key {id} is not wrapped for it")))?;
        match keys::unwrap(kek, (method, host), &wrapped) {
            Ok((wid, _)) if wid == id => {}
            _ => return Err(fail(format!("its wrap of data key {id} does not open"))),
        }
    }
    Ok(())
}

/// Inserts an unlock method row and wraps every data key held for it.
pub(super) fn insert_method(
    tx: &Tx<'_>,
    keys: &Keys,
    vault_id: &str,
    (method, host): (Method, &str),
    kek: &Key,
    kdf: Option<&KdfParams>,
) -> Result<()> {
    let kdf = kdf.map(|p| serde_json::to_string(p).expect("KDF parameters serialize"));
    tx.execute(
        "INSERT INTO unlock_methods (method, host, kdf_params, kek_check, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![
            method.as_str(),
            host,
            kdf,
            keys::kek_check(kek, vault_id),
            now()
        ],
    )?;
    wrap_all(tx, keys, (method, host), kek)
}

/// Wraps every data key held under `kek` for the row (method, host).
fn wrap_all(tx: &Tx<'_>, keys: &Keys, (method, host): (Method, &str), kek: &Key) -> Result<()> {
    for (id, dek) in &keys.deks {
        tx.execute(
            "INSERT INTO key_wraps (key_id, method, host, wrapped) VALUES (?1, ?2, ?3, ?4)",
            args![
                id,
                method.as_str(),
                host,
                keys::wrap(kek, (method, host), *id, dek)?
            ],
        )?;
    }
    Ok(())
}

/// How to show a host to people: '' is the unnamed host of an older vault.
#[must_use]
pub fn host_label(host: &str) -> &str {
    if host.is_empty() {
        "(the vault's only host before format 11)"
    } else {
        host
    }
}

fn kek_for(how: &Unlock<'_>) -> Result<(Key, Option<KdfParams>)> {
    Ok(match how {
        Unlock::Keyring(_) => (Key::generate()?, None),
        Unlock::Passphrase(passphrase, cost) => {
            let params = cost.with_new_salt()?;
            (params.derive(passphrase)?, Some(params))
        }
    })
}

/// Whether the keyring's entry for `vault_id` holds exactly `kek`. An entry
/// this vault did not write is never deleted.
pub(super) fn entry_holds(store: &dyn KekStore, vault_id: &str, kek: &Key) -> bool {
    store
        .load(vault_id)
        .is_ok_and(|found| keys::kek_check(&found, vault_id) == keys::kek_check(kek, vault_id))
}

/// Deletes the keyring entry of `vault_id` if it holds `kek`; otherwise
/// leaves it alone (it is not this vault's).
pub(super) fn delete_own_entry(store: &dyn KekStore, vault_id: &str, kek: &Key) {
    if !entry_holds(store, vault_id, kek) {
        tracing::warn!("the OS keyring entry is not the one this vault wrote; left in place");
        return;
    }
    match store.delete(vault_id) {
        Ok(()) | Err(KeyringError::NotFound) => {}
        Err(e) => tracing::warn!(error = %e, "keyring entry could not be deleted"),
    }
}

impl Store {
    /// The unlock methods this vault has (each once, whatever the hosts).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn methods(&self) -> Result<Vec<Method>> {
        during("listing unlock methods", || {
            vault::methods(&self.conn.read_tx()?)
        })
    }

    /// Every unlock method row: the method and its host ('' for the
    /// passphrase and for the keyring of a vault made before format 11).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn method_rows(&self) -> Result<Vec<(Method, String)>> {
        during("listing unlock methods", || {
            vault::rows(&self.conn.read_tx()?)
        })
    }

    /// Whether `method` has a row that applies on this store's host (see
    /// [`Store::with_host`]): the passphrase's, or this host's keyring row
    /// (or the unnamed one of a vault made before format 11).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn has_method_here(&self, method: Method) -> Result<bool> {
        during("listing unlock methods", || {
            Ok(row_for(&self.conn.read_tx()?, method, &self.host)?.is_some())
        })
    }

    /// Proves another unlock method (checks its key-check value) and keeps its
    /// KEK for this session: `rekey` needs every method's KEK, and removing a
    /// method needs proof that the others work.
    ///
    /// # Errors
    /// As [`super::Vault::unlock`].
    pub fn add_kek(&mut self, how: &Unlock<'_>) -> Result<()> {
        during("checking another unlock method", || {
            let (row, kek, check) =
                verified_kek(&self.conn.read_tx()?, &self.path, &self.vault_id, how)?;
            self.keys.keks.insert(row.clone(), kek);
            if check == KekCheck::Legacy {
                self.upgrade_kek_check(&row)?;
            }
            Ok(())
        })
    }

    /// Whether this session holds a KEK of `method` (a session holds at most
    /// its own host's keyring KEK).
    #[must_use]
    pub fn has_kek(&self, method: Method) -> bool {
        self.keys.keks.keys().any(|(m, _)| *m == method)
    }

    /// Rewrites a legacy key-check value (written before the vault id was
    /// bound into it) in its current form, for a method row whose KEK this
    /// session has just proven.
    pub(super) fn upgrade_kek_check(&mut self, row: &MethodRow) -> Result<()> {
        let vault_id = self.vault_id.clone();
        let (tx, keys, actor) = self.write_tx()?;
        let kek = &keys.keks[row];
        let stored = method_checks(&tx)?.remove(row);
        // Another process may have upgraded or replaced it meanwhile.
        if stored.is_some_and(|c| keys::verify_kek_check(kek, &vault_id, &c) == KekCheck::Legacy) {
            tx.execute(
                "UPDATE unlock_methods SET kek_check = ?1 WHERE method = ?2 AND host = ?3",
                args![keys::kek_check(kek, &vault_id), row.0.as_str(), &row.1],
            )?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("unlock_method.upgrade").details(
                    serde_json::json!({ "method": row.0, "host": row.1, "binds": "vault_id" }),
                ),
            )?;
        }
        let seen = method_checks(&tx)?;
        tx.commit()?;
        self.keys.methods_seen = seen;
        Ok(())
    }

    /// Adds an unlock method: a new KEK (stored in the keyring, or derived
    /// from a passphrase) wrapping every data key. Touches no data row. A
    /// keyring row names the keyring's host ([`KekStore::host`]), so each
    /// host enrols its own keyring.
    ///
    /// A keyring entry is written inside the write transaction, so two
    /// processes adding the keyring at once cannot overwrite each other's
    /// entry; an entry already there under this vault's id is never
    /// overwritten, and one written here is removed again if the
    /// transaction fails.
    ///
    /// Re-enrolment: when this host's keyring row is there but lacks a wrap
    /// of a data key (a `vault rekey` on another host rotated it), the
    /// entry already in the keyring is checked against the row and every
    /// data key is wrapped for it again.
    ///
    /// # Errors
    /// `MethodPresent` if present already; `UnlockMethodChanged`;
    /// `KeyringEntryExists`; `KeyringMismatch`; keyring and KDF errors.
    pub fn add_method(&mut self, how: &Unlock<'_>) -> Result<()> {
        during("adding an unlock method", || {
            let method = how.method();
            let host = how.host();
            let row = (method, host.clone());
            let vault_id = self.vault_id.clone();
            let (kek, kdf) = kek_for(how)?;
            let (tx, keys, actor) = self.write_tx()?;
            let current = ensure_unchanged(&tx, keys, &vault_id)?;
            if let Some(check) = current.get(&row) {
                let wrapped: u64 = tx.query_row(
                    "SELECT count(*) FROM key_wraps WHERE method = ?1 AND host = ?2",
                    args![method.as_str(), &host],
                    |r| r.get(0),
                )?;
                let Unlock::Keyring(store) = how else {
                    return Err(Error::MethodPresent {
                        method: method.as_str(),
                    });
                };
                if wrapped >= keys.deks.len() as u64 {
                    return Err(Error::MethodPresent {
                        method: method.as_str(),
                    });
                }
                let kek = store.load(&vault_id)?;
                if keys::verify_kek_check(&kek, &vault_id, check) == KekCheck::Mismatch {
                    return Err(Error::KeyringMismatch { vault_id });
                }
                tx.execute(
                    "DELETE FROM key_wraps WHERE method = ?1 AND host = ?2",
                    args![method.as_str(), &host],
                )?;
                tx.execute(
                    "UPDATE unlock_methods SET kek_check = ?1 WHERE method = ?2 AND host = ?3",
                    args![keys::kek_check(&kek, &vault_id), method.as_str(), &host],
                )?;
                wrap_all(&tx, keys, (method, &host), &kek)?;
                audit::append(
                    &tx,
                    keys,
                    actor,
                    &Event::new("unlock_method.reenrol")
                        .details(serde_json::json!({ "method": method, "host": host })),
                )?;
                let seen = method_checks(&tx)?;
                tx.commit()?;
                self.keys.keks.insert(row, kek);
                self.keys.methods_seen = seen;
                return Ok(());
            }
            if let Unlock::Keyring(store) = how
                && let Some(legacy) = current.get(&(Method::Keyring, String::new()))
                && store.load(&vault_id).is_ok_and(|found| {
                    keys::verify_kek_check(&found, &vault_id, legacy) != KekCheck::Mismatch
                })
            {
                // This host is the unnamed only host of a pre-11 vault.
                return Err(Error::MethodPresent {
                    method: method.as_str(),
                });
            }
            insert_method(&tx, keys, &vault_id, (method, &host), &kek, kdf.as_ref())?;
            let details = match method {
                Method::Keyring => serde_json::json!({ "method": method, "host": host }),
                Method::Passphrase => serde_json::json!({ "method": method }),
            };
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("unlock_method.add").details(details),
            )?;
            let seen = method_checks(&tx)?;
            if let Unlock::Keyring(store) = how {
                match store.load(&vault_id) {
                    Err(KeyringError::NotFound) => {}
                    Ok(_) => return Err(Error::KeyringEntryExists { vault_id }),
                    Err(e) => return Err(e.into()),
                }
                store.store(&vault_id, &kek)?;
            }
            if let Err(e) = tx.commit() {
                if let Unlock::Keyring(store) = how {
                    delete_own_entry(*store, &vault_id, &kek);
                }
                return Err(e);
            }
            self.keys.keks.insert(row, kek);
            self.keys.methods_seen = seen;
            Ok(())
        })
    }

    /// Enrols another host's OS keyring from this unlocked host: a fresh
    /// KEK for the row (keyring, `host`) wraps every data key, and comes
    /// back as an [`EnrolmentCode`] for the user to carry to that host,
    /// whose `Vault::join_keyring` keeps it in its own keyring. The KEK is
    /// not kept in this session. A host whose row a rekey left without
    /// wraps (must re-enrol) gets a new KEK the same way.
    ///
    /// # Errors
    /// `InvalidInput` for this host's own name (use [`Store::add_method`])
    /// or an empty one; `MethodPresent` when `host` is enrolled already
    /// (revoke it first); `UnlockMethodChanged`; SQLite.
    pub fn enrol_host(&mut self, host: &str) -> Result<EnrolmentCode> {
        if host.is_empty() || host == self.host {
            return Err(Error::InvalidInput {
                what: "host to enrol".into(),
                reason: format!(
                    "`{host}` is this host; run `vault keyring add` without --host here"
                ),
            });
        }
        during("enrolling a host", || {
            let vault_id = self.vault_id.clone();
            let kek = Key::generate()?;
            let (tx, keys, actor) = self.write_tx()?;
            ensure_unchanged(&tx, keys, &vault_id)?;
            let wrapped: Option<u64> = tx.query_opt(
                "SELECT (SELECT count(*) FROM key_wraps w WHERE w.method = m.method AND w.host = m.host)
                 FROM unlock_methods m WHERE m.method = 'keyring' AND m.host = ?1",
                args![host],
                |r| r.get(0),
            )?;
            let action = match wrapped {
                Some(n) if n >= keys.deks.len() as u64 => {
                    return Err(Error::MethodPresent {
                        method: Method::Keyring.as_str(),
                    });
                }
                Some(_) => {
                    tx.execute(
                        "DELETE FROM key_wraps WHERE method = 'keyring' AND host = ?1",
                        args![host],
                    )?;
                    tx.execute(
                        "UPDATE unlock_methods SET kek_check = ?1 WHERE method = 'keyring' AND host = ?2",
                        args![keys::kek_check(&kek, &vault_id), host],
                    )?;
                    wrap_all(&tx, keys, (Method::Keyring, host), &kek)?;
                    "unlock_method.reenrol"
                }
                None => {
                    insert_method(&tx, keys, &vault_id, (Method::Keyring, host), &kek, None)?;
                    "unlock_method.add"
                }
            };
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new(action).details(serde_json::json!({
                    "method": Method::Keyring,
                    "host": host,
                    "by": "enrolment code",
                })),
            )?;
            let seen = method_checks(&tx)?;
            tx.commit()?;
            self.keys.methods_seen = seen;
            Ok(EnrolmentCode {
                vault_id,
                host: host.to_owned(),
                kek,
            })
        })
    }

    /// Removes an unlock method (never the last): the passphrase, or this
    /// host's keyring row (`keyring`'s host, else the unnamed row of a
    /// vault made before format 11). See [`Store::remove_keyring_of`].
    ///
    /// # Errors
    /// As [`Store::remove_keyring_of`].
    pub fn remove_method(&mut self, method: Method, keyring: &dyn KekStore) -> Result<()> {
        let host = match method {
            Method::Passphrase => String::new(),
            Method::Keyring => {
                let own = during("removing an unlock method", || {
                    row_for(&self.conn.read_tx()?, method, &keyring.host())
                })?;
                match own {
                    Some((_, host)) => host,
                    None => keyring.host(),
                }
            }
        };
        self.remove_row(&(method, host), keyring)
    }

    /// Removes the keyring unlock method row of `host` and its wraps, which
    /// revokes that host: its keyring no longer opens the vault. No data row
    /// changes, so a host that kept the data key in memory or a copy can
    /// still read what that key sealed until a `vault rekey`.
    ///
    /// Every remaining method that can be proven here is proven to open the
    /// vault now first (the keyring's entry is loaded from `keyring` for this
    /// host's row; a passphrase must have been proven this session), and at
    /// least one must be; other hosts' keyrings can only be proven on those
    /// hosts. The keyring entry is deleted only when the row removed is this
    /// host's and the entry is the one this vault wrote.
    ///
    /// # Errors
    /// `LastUnlockMethod`, `NoSuchMethod`, `UnlockMethodChanged`,
    /// `UnprovenMethod`, SQLite.
    pub fn remove_keyring_of(&mut self, host: &str, keyring: &dyn KekStore) -> Result<()> {
        self.remove_row(&(Method::Keyring, host.to_owned()), keyring)
    }

    fn remove_row(&mut self, row: &MethodRow, keyring: &dyn KekStore) -> Result<()> {
        during("removing an unlock method", || {
            let method = row.0;
            let vault_id = self.vault_id.clone();
            // Keyring I/O before the transaction; proven against the file inside it.
            let keyring_kek = keyring.load(&vault_id);
            let (tx, keys, actor) = self.write_tx()?;
            let current = ensure_unchanged(&tx, keys, &vault_id)?;
            if !current.contains_key(row) {
                return Err(Error::NoSuchMethod {
                    method: method.as_str(),
                    have: current.keys().map(|(m, _)| m.as_str()).collect(),
                });
            }
            if current.len() == 1 {
                return Err(Error::LastUnlockMethod(method.as_str()));
            }
            let own = row_for(&tx, Method::Keyring, &keyring.host())?;
            let mut proven = 0;
            for remaining in current.keys().filter(|&r| r != row) {
                let kek = match (remaining.0, &keyring_kek) {
                    (Method::Keyring, _) if own.as_ref() != Some(remaining) => continue,
                    (Method::Keyring, Ok(kek)) => kek,
                    (Method::Keyring, Err(e)) => {
                        return Err(Error::UnprovenMethod {
                            method: remaining.0.as_str(),
                            removing: method.as_str(),
                            reason: e.to_string(),
                        });
                    }
                    (Method::Passphrase, _) => {
                        keys.keks.get(remaining).ok_or(Error::UnprovenMethod {
                            method: remaining.0.as_str(),
                            removing: method.as_str(),
                            reason: "give the passphrase, so it can be checked first".into(),
                        })?
                    }
                };
                prove(&tx, keys, &vault_id, (remaining, kek), method)?;
                proven += 1;
            }
            if proven == 0 {
                return Err(Error::UnprovenMethod {
                    method: Method::Keyring.as_str(),
                    removing: method.as_str(),
                    reason: "only other hosts' keyrings would remain, and they can be checked \
                             only on those hosts"
                        .into(),
                });
            }
            tx.execute(
                "DELETE FROM unlock_methods WHERE method = ?1 AND host = ?2",
                args![method.as_str(), &row.1],
            )?;
            let details = match method {
                Method::Keyring => serde_json::json!({ "method": method, "host": row.1 }),
                Method::Passphrase => serde_json::json!({ "method": method }),
            };
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("unlock_method.remove").details(details),
            )?;
            let seen = method_checks(&tx)?;
            let removed_check = &current[row];
            let delete_entry = own.as_ref() == Some(row)
                && keyring_kek.as_ref().is_ok_and(|kek| {
                    keys::verify_kek_check(kek, &vault_id, removed_check) != KekCheck::Mismatch
                });
            tx.commit()?;
            self.keys.keks.remove(row);
            self.keys.methods_seen = seen;
            if let (true, Ok(kek)) = (delete_entry, &keyring_kek) {
                delete_own_entry(keyring, &vault_id, kek);
            }
            Ok(())
        })
    }

    /// Changes the passphrase: new salt, new KEK, every data key rewrapped.
    /// Only `unlock_methods` and `key_wraps` rows change. Fails with
    /// `UnlockMethodChanged` when the passphrase changed since this session
    /// unlocked, so of two concurrent changes exactly one succeeds.
    ///
    /// # Errors
    /// `NoSuchMethod` without a passphrase method, `InvalidInput` when
    /// `new` is not a passphrase; `UnlockMethodChanged`;
    /// KDF errors; SQLite.
    pub fn change_passphrase(&mut self, new: &Unlock<'_>) -> Result<()> {
        during("changing the passphrase", || {
            let Unlock::Passphrase(..) = new else {
                return Err(Error::InvalidInput {
                    what: "the new unlock method of a passphrase change".into(),
                    reason: "a passphrase change needs a passphrase; to add the OS keyring, run \
                             `vault keyring add`"
                        .into(),
                });
            };
            let vault_id = self.vault_id.clone();
            let (kek, kdf) = kek_for(new)?;
            let (tx, keys, actor) = self.write_tx()?;
            let current = ensure_unchanged(&tx, keys, &vault_id)?;
            let row = (Method::Passphrase, String::new());
            if !current.contains_key(&row) {
                return Err(Error::NoSuchMethod {
                    method: Method::Passphrase.as_str(),
                    have: current.keys().map(|(m, _)| m.as_str()).collect(),
                });
            }
            tx.execute(
                "DELETE FROM unlock_methods WHERE method = 'passphrase'",
                &[],
            )?;
            insert_method(
                &tx,
                keys,
                &vault_id,
                (Method::Passphrase, ""),
                &kek,
                kdf.as_ref(),
            )?;
            audit::append(&tx, keys, actor, &Event::new("passphrase.change"))?;
            let seen = method_checks(&tx)?;
            tx.commit()?;
            self.keys.keks.insert(row, kek);
            self.keys.methods_seen = seen;
            Ok(())
        })
    }

    /// Rotates the data key: a new key wrapped for every unlock method row
    /// whose KEK this session holds, every sealed value re-sealed under it,
    /// the old keys deleted, all in one transaction. The passphrase and this
    /// host's keyring ([`Store::with_host`]) must be held (see
    /// [`Store::add_kek`]); other hosts' keyring rows are kept without a wrap
    /// of the new key and listed in [`RekeyReport::must_re_enrol`].
    ///
    /// # Errors
    /// `MissingKek` naming a method whose KEK is missing; `NoWayToReEnrol`
    /// when other hosts would have to re-enrol and there is no passphrase to
    /// do it with; `UnlockMethodChanged`; `Integrity` if a value no longer
    /// opens (nothing is changed then); SQLite.
    pub fn rekey(&mut self) -> Result<RekeyReport> {
        during("rotating the data key", || {
            let vault_id = self.vault_id.clone();
            let host = self.host.clone();
            let new_dek = Key::generate()?;
            let mut values = 0u64;
            let (tx, keys, actor) = self.write_tx()?;
            let rows: Vec<MethodRow> = ensure_unchanged(&tx, keys, &vault_id)?
                .into_keys()
                .collect();
            let own = row_for(&tx, Method::Keyring, &host)?;
            let mut must_re_enrol = Vec::new();
            for row in &rows {
                if !keys.keks.contains_key(row) {
                    if row.0 == Method::Passphrase || own.as_ref() == Some(row) {
                        return Err(Error::MissingKek {
                            method: row.0.as_str(),
                        });
                    }
                    must_re_enrol.push(row.1.clone());
                }
            }
            if !must_re_enrol.is_empty() && !rows.iter().any(|(m, _)| *m == Method::Passphrase) {
                return Err(Error::NoWayToReEnrol {
                    hosts: must_re_enrol,
                });
            }
            let from: Vec<u32> = keys.deks.keys().copied().collect();
            let to = from.last().copied().unwrap_or(0) + 1;
            tx.execute(
                "INSERT INTO data_keys (key_id, created_at) VALUES (?1, ?2)",
                args![to, now()],
            )?;
            for (method, host) in rows.iter().filter(|r| keys.keks.contains_key(*r)) {
                let kek = &keys.keks[&(*method, host.clone())];
                tx.execute(
                    "INSERT INTO key_wraps (key_id, method, host, wrapped) VALUES (?1, ?2, ?3, ?4)",
                    args![
                        to,
                        method.as_str(),
                        host,
                        keys::wrap(kek, (*method, host), to, &new_dek)?
                    ],
                )?;
            }
            for (place, sealed) in super::sealed::sealed_values(&tx)? {
                let plain = keys.open(&place, &sealed)?;
                let resealed = crypto::seal(&new_dek, to, &place, &plain)?;
                tx.execute(
                    &format!(
                        "UPDATE {} SET {} = ?1 WHERE id = ?2",
                        place.table, place.column
                    ),
                    args![resealed, place.row],
                )?;
                values += 1;
            }
            tx.execute("DELETE FROM data_keys WHERE key_id <> ?1", args![to])?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("vault.rekey").details(serde_json::json!({
                    "from": from, "to": to, "values": values, "must_re_enrol": must_re_enrol
                })),
            )?;
            tx.commit()?;
            self.keys.deks.clear();
            self.keys.deks.insert(to, new_dek);
            Ok(RekeyReport {
                from,
                to,
                values,
                must_re_enrol,
            })
        })
    }
}
