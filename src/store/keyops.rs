//! Key operations: adding and removing unlock methods, changing the
//! passphrase (rewraps key rows only), and rotating the data key (re-seals
//! every sealed value in one transaction, so a crash leaves either the old or
//! the new key in force and every value readable).

use rusqlite::{Transaction, params};
use serde::Serialize;

use super::audit::{self, Event};
use super::{Keys, Store, now, verified_kek};
use crate::crypto::{self, Key};
use crate::error::{Error, Result};
use crate::keys::{self, KdfParams, Method, Unlock};

/// What `vault rekey` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// Data key ids retired.
    pub from: Vec<u32>,
    /// The new data key id.
    pub to: u32,
    /// Sealed values re-sealed.
    pub values: u64,
}

/// Inserts an unlock method and wraps every data key held for it.
pub(super) fn insert_method(
    tx: &Transaction<'_>,
    keys: &Keys,
    method: Method,
    kek: &Key,
    kdf: Option<&KdfParams>,
) -> Result<()> {
    let kdf = kdf.map(|p| serde_json::to_string(p).expect("KDF parameters serialize"));
    tx.execute(
        "INSERT INTO unlock_methods (method, kdf_params, kek_check, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![method.as_str(), kdf, keys::kek_check(kek), now()],
    )?;
    for (id, dek) in &keys.deks {
        tx.execute(
            "INSERT INTO key_wraps (key_id, method, wrapped) VALUES (?1, ?2, ?3)",
            params![id, method.as_str(), keys::wrap(kek, method, *id, dek)?],
        )?;
    }
    Ok(())
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

impl Store {
    /// The unlock methods this vault has.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn methods(&self) -> Result<Vec<Method>> {
        super::methods(&self.conn)
    }

    /// Proves another unlock method (checks its key-check value) and keeps its
    /// KEK for this session, as `rekey` needs every method's KEK.
    ///
    /// # Errors
    /// As [`super::Vault::unlock`].
    pub fn add_kek(&mut self, how: &Unlock<'_>) -> Result<()> {
        let kek = verified_kek(&self.conn, &self.path, &self.vault_id, how)?;
        self.keys.keks.insert(how.method(), kek);
        Ok(())
    }

    /// Whether this session holds the KEK of `method`.
    #[must_use]
    pub fn has_kek(&self, method: Method) -> bool {
        self.keys.keks.contains_key(&method)
    }

    /// Adds an unlock method: a new KEK (stored in the keyring, or derived
    /// from a passphrase) wrapping every data key. Touches no data row.
    ///
    /// # Errors
    /// `UnlockMethodState` if present already; keyring and KDF errors.
    pub fn add_method(&mut self, how: &Unlock<'_>) -> Result<()> {
        let method = how.method();
        if self.methods()?.contains(&method) {
            return Err(Error::UnlockMethodState(format!(
                "this vault already has a {method} unlock method"
            )));
        }
        let (kek, kdf) = kek_for(how)?;
        if let Unlock::Keyring(store) = how {
            store.store(&self.vault_id, &kek)?;
        }
        let result = (|| {
            let (tx, keys, actor) = self.write_tx()?;
            insert_method(&tx, keys, method, &kek, kdf.as_ref())?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("unlock_method.add").details(serde_json::json!({ "method": method })),
            )?;
            tx.commit()?;
            Ok(())
        })();
        match (&result, how) {
            (Err(_), Unlock::Keyring(store)) => {
                let _ = store.delete(&self.vault_id);
            }
            (Ok(()), _) => {
                self.keys.keks.insert(method, kek);
            }
            _ => {}
        }
        result
    }

    /// Removes an unlock method (never the last). With `keyring`, `store`
    /// also loses its entry.
    ///
    /// # Errors
    /// `LastUnlockMethod`, `UnlockMethodState`, SQLite.
    pub fn remove_method(
        &mut self,
        method: Method,
        keyring: Option<&dyn keys::KekStore>,
    ) -> Result<()> {
        let methods = self.methods()?;
        if !methods.contains(&method) {
            return Err(Error::UnlockMethodState(format!(
                "this vault has no {method} unlock method"
            )));
        }
        if methods.len() == 1 {
            return Err(Error::LastUnlockMethod(method.as_str()));
        }
        let (tx, keys, actor) = self.write_tx()?;
        tx.execute(
            "DELETE FROM unlock_methods WHERE method = ?1",
            [method.as_str()],
        )?;
        audit::append(
            &tx,
            keys,
            actor,
            &Event::new("unlock_method.remove").details(serde_json::json!({ "method": method })),
        )?;
        tx.commit()?;
        self.keys.keks.remove(&method);
        if let (Method::Keyring, Some(store)) = (method, keyring) {
            match store.delete(&self.vault_id) {
                Ok(()) | Err(keys::KeyringError::NotFound) => {}
                Err(e) => tracing::warn!(error = %e, "keyring entry could not be deleted"),
            }
        }
        Ok(())
    }

    /// Changes the passphrase: new salt, new KEK, every data key rewrapped.
    /// Only `unlock_methods` and `key_wraps` rows change.
    ///
    /// # Errors
    /// `UnlockMethodState` without a passphrase method; KDF errors; SQLite.
    pub fn change_passphrase(&mut self, new: &Unlock<'_>) -> Result<()> {
        let Unlock::Passphrase(..) = new else {
            return Err(Error::UnlockMethodState(
                "a passphrase change needs a passphrase".into(),
            ));
        };
        if !self.methods()?.contains(&Method::Passphrase) {
            return Err(Error::UnlockMethodState(
                "this vault has no passphrase; add one with `vault passphrase add`".into(),
            ));
        }
        let (kek, kdf) = kek_for(new)?;
        let (tx, keys, actor) = self.write_tx()?;
        tx.execute("DELETE FROM unlock_methods WHERE method = 'passphrase'", [])?;
        insert_method(&tx, keys, Method::Passphrase, &kek, kdf.as_ref())?;
        audit::append(&tx, keys, actor, &Event::new("passphrase.change"))?;
        tx.commit()?;
        self.keys.keks.insert(Method::Passphrase, kek);
        Ok(())
    }

    /// Rotates the data key: a new key wrapped for every unlock method, every
    /// sealed value re-sealed under it, the old keys deleted, all in one
    /// transaction. Needs the KEK of every method (see [`Store::add_kek`]).
    ///
    /// # Errors
    /// `UnlockMethodState` naming a method whose KEK is missing; `Integrity`
    /// if a value no longer opens (nothing is changed then); SQLite.
    pub fn rekey(&mut self) -> Result<RekeyReport> {
        let new_dek = Key::generate()?;
        let mut values = 0u64;
        let (tx, keys, actor) = self.write_tx()?;
        // Read inside the transaction: a method added concurrently gets its wrap too.
        let methods = super::methods(&tx)?;
        if let Some(missing) = methods.iter().find(|m| !keys.keks.contains_key(m)) {
            return Err(Error::UnlockMethodState(format!(
                "rekey wraps the new data key for every unlock method; the {missing} is needed too"
            )));
        }
        let from: Vec<u32> = keys.deks.keys().copied().collect();
        let to = from.last().copied().unwrap_or(0) + 1;
        {
            tx.execute(
                "INSERT INTO data_keys (key_id, created_at) VALUES (?1, ?2)",
                params![to, now()],
            )?;
            for method in &methods {
                let kek = &keys.keks[method];
                tx.execute(
                    "INSERT INTO key_wraps (key_id, method, wrapped) VALUES (?1, ?2, ?3)",
                    params![to, method.as_str(), keys::wrap(kek, *method, to, &new_dek)?],
                )?;
            }
            for (place, sealed) in super::sealed_values(&tx)? {
                let plain = keys.open(&place, &sealed)?;
                let resealed = crypto::seal(&new_dek, to, &place, &plain)?;
                tx.execute(
                    &format!(
                        "UPDATE {} SET {} = ?1 WHERE id = ?2",
                        place.table, place.column
                    ),
                    params![resealed, place.row],
                )?;
                values += 1;
            }
            tx.execute("DELETE FROM data_keys WHERE key_id <> ?1", [to])?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("vault.rekey")
                    .details(serde_json::json!({ "from": from, "to": to, "values": values })),
            )?;
            tx.commit()?;
        }
        self.keys.deks.clear();
        self.keys.deks.insert(to, new_dek);
        Ok(RekeyReport { from, to, values })
    }
}
