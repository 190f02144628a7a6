//! Where the key-encryption key (KEK) comes from, and how it wraps data keys.
//!
//! ```text
//! OS keyring entry (32 random bytes) ─┐
//!                                     ├─ KEK ── wraps ──> DEK (per key id) ── seals ──> columns
//! passphrase ── Argon2id(salt, cost) ─┘
//! ```
//!
//! The seam that truly varies is where a keyring-held KEK lives: the OS
//! keyring in production ([`OsKeyring`]), a process-local map in unit tests
//! and benchmarks ([`MemoryKeyring`]).

pub mod enrol;
pub mod os_keyring;
pub mod passphrase;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use secrecy::SecretString;

use crate::crypto::{self, CryptoError, Key, Place};
pub use enrol::{BadEnrolmentCode, EnrolmentCode};
pub use os_keyring::KeyringError;
pub use passphrase::{KdfCost, KdfParams};

/// What can go wrong in the key layer outside the keyring (the keyring's own
/// failures are [`KeyringError`]). Never holds key or passphrase bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// Argon2id parameters outside the accepted range, or unknown.
    #[error("invalid passphrase key-derivation parameters: {0}")]
    KdfParams(String),
    /// The random source failed while making a salt.
    #[error("cryptography failed: {0}")]
    Crypto(#[from] CryptoError),
}

/// A way to unlock the vault; each one wraps every data key once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A random KEK held by the OS keyring.
    Keyring,
    /// A KEK derived from a passphrase with Argon2id.
    Passphrase,
}

impl Method {
    /// Stable name stored in `unlock_methods.method`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Keyring => "keyring",
            Self::Passphrase => "passphrase",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "keyring" => Some(Self::Keyring),
            "passphrase" => Some(Self::Passphrase),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a keyring-held KEK lives. One implementation talks to the OS, one
/// keeps keys in memory for tests.
pub trait KekStore: Send + Sync {
    /// Whether the store can hold a KEK right now; `Unavailable` says why not.
    ///
    /// # Errors
    /// Why the store is not usable.
    fn probe(&self) -> Result<(), KeyringError>;
    /// Stores the KEK of vault `vault_id`.
    ///
    /// # Errors
    /// When the store refuses or does not answer.
    fn store(&self, vault_id: &str, kek: &Key) -> Result<(), KeyringError>;
    /// Loads the KEK of vault `vault_id`.
    ///
    /// # Errors
    /// `NotFound` when absent, or why the store failed.
    fn load(&self, vault_id: &str) -> Result<Key, KeyringError>;
    /// Deletes the KEK of vault `vault_id`.
    ///
    /// # Errors
    /// `NotFound` when absent, or why the store failed.
    fn delete(&self, vault_id: &str) -> Result<(), KeyringError>;
    /// The host whose keyring this is: it names the keyring unlock method
    /// row and the wraps this keyring's KEK opens. The machine's node name
    /// unless [`OnHost`] says otherwise.
    fn host(&self) -> String {
        crate::process::host()
    }
}

/// A keyring as the keyring of host `host` (`AUTHVAULT_HOST` in the CLI:
/// containers share node names, and tests simulate two hosts on one machine).
pub struct OnHost<'a> {
    /// The keyring itself.
    pub keyring: &'a dyn KekStore,
    /// The host it belongs to.
    pub host: String,
}

impl KekStore for OnHost<'_> {
    fn probe(&self) -> Result<(), KeyringError> {
        self.keyring.probe()
    }

    fn store(&self, vault_id: &str, kek: &Key) -> Result<(), KeyringError> {
        self.keyring.store(vault_id, kek)
    }

    fn load(&self, vault_id: &str) -> Result<Key, KeyringError> {
        self.keyring.load(vault_id)
    }

    fn delete(&self, vault_id: &str) -> Result<(), KeyringError> {
        self.keyring.delete(vault_id)
    }

    fn host(&self) -> String {
        self.host.clone()
    }
}

/// The platform keyring (Secret Service on Linux), every call bounded by a timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsKeyring;

impl KekStore for OsKeyring {
    fn probe(&self) -> Result<(), KeyringError> {
        os_keyring::probe()
    }

    fn store(&self, vault_id: &str, kek: &Key) -> Result<(), KeyringError> {
        os_keyring::store_kek(vault_id, kek.expose_bytes())
    }

    fn load(&self, vault_id: &str) -> Result<Key, KeyringError> {
        os_keyring::load_kek(vault_id).map(|bytes| Key::from_bytes(*bytes))
    }

    fn delete(&self, vault_id: &str) -> Result<(), KeyringError> {
        os_keyring::delete_kek(vault_id)
    }
}

/// A process-local keyring for unit tests and benchmarks. It does not
/// persist, so the CLI never uses it.
#[derive(Default)]
pub struct MemoryKeyring {
    keys: Mutex<HashMap<String, Key>>,
}

impl fmt::Debug for MemoryKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryKeyring([REDACTED])")
    }
}

impl KekStore for MemoryKeyring {
    fn probe(&self) -> Result<(), KeyringError> {
        Ok(())
    }

    fn store(&self, vault_id: &str, kek: &Key) -> Result<(), KeyringError> {
        self.keys
            .lock()
            .expect("memory keyring lock")
            .insert(vault_id.to_owned(), Key::from_bytes(*kek.expose_bytes()));
        Ok(())
    }

    fn load(&self, vault_id: &str) -> Result<Key, KeyringError> {
        self.keys
            .lock()
            .expect("memory keyring lock")
            .get(vault_id)
            .map(|kek| Key::from_bytes(*kek.expose_bytes()))
            .ok_or(KeyringError::NotFound)
    }

    fn delete(&self, vault_id: &str) -> Result<(), KeyringError> {
        self.keys
            .lock()
            .expect("memory keyring lock")
            .remove(vault_id)
            .map(drop)
            .ok_or(KeyringError::NotFound)
    }
}

/// How to obtain a KEK when unlocking or creating a vault.
#[derive(Clone, Copy)]
pub enum Unlock<'a> {
    /// From a keyring.
    Keyring(&'a dyn KekStore),
    /// From a passphrase. `cost` applies only when creating a wrap.
    Passphrase(&'a SecretString, KdfCost),
}

impl Unlock<'_> {
    /// The method this unlocks with.
    #[must_use]
    pub const fn method(&self) -> Method {
        match self {
            Self::Keyring(_) => Method::Keyring,
            Self::Passphrase(..) => Method::Passphrase,
        }
    }

    /// The host whose unlock method row this is: the keyring's host, or ''
    /// for the passphrase (one passphrase serves every host).
    #[must_use]
    pub fn host(&self) -> String {
        match self {
            Self::Keyring(store) => store.host(),
            Self::Passphrase(..) => String::new(),
        }
    }
}

impl fmt::Debug for Unlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unlock::{}", self.method())
    }
}

/// The key-check value stored per method: tells a wrong KEK from a corrupt
/// wrap, and binds the vault id, so a file whose id was edited (to point at
/// another vault's keyring entry) no longer unlocks.
pub(crate) fn kek_check(kek: &Key, vault_id: &str) -> [u8; 32] {
    kek.mac(&[b"authvault kek-check v2", vault_id.as_bytes()])
}

/// How a stored key-check value matched a KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KekCheck {
    /// The current form, bound to the vault id.
    Current,
    /// The form written before the vault id was bound (upgraded on unlock).
    Legacy,
    /// Not this KEK (or not this vault id).
    Mismatch,
}

/// Checks `kek` against a stored key-check value, in constant time.
pub(crate) fn verify_kek_check(kek: &Key, vault_id: &str, stored: &[u8]) -> KekCheck {
    if kek.verify_mac(&[b"authvault kek-check v2", vault_id.as_bytes()], stored) {
        KekCheck::Current
    } else if kek.verify_mac(&[b"authvault kek-check v1"], stored) {
        KekCheck::Legacy
    } else {
        KekCheck::Mismatch
    }
}

/// The associated data's column of a wrap: the method, and for a named host
/// `method@host`, so a wrap cannot be moved to another host's row. Host ''
/// (a vault made before format 11, or the passphrase) keeps the old form.
fn wrap_column(method: Method, host: &str) -> String {
    if host.is_empty() {
        method.as_str().to_owned()
    } else {
        format!("{method}@{host}")
    }
}

fn wrap_place(column: &str) -> Place<'_> {
    Place {
        table: "key_wraps",
        column,
        row: 0,
        account: 0,
    }
}

/// Seals data key `key_id` under `kek` for `method` on `host`.
pub(crate) fn wrap(
    kek: &Key,
    (method, host): (Method, &str),
    key_id: u32,
    dek: &Key,
) -> Result<Vec<u8>, CryptoError> {
    let column = wrap_column(method, host);
    crypto::seal(kek, key_id, &wrap_place(&column), dek.expose_bytes())
}

/// Opens a wrap made by [`wrap`] for the same method and host.
pub(crate) fn unwrap(
    kek: &Key,
    (method, host): (Method, &str),
    wrapped: &[u8],
) -> Result<(u32, Key), CryptoError> {
    let key_id = crypto::sealed_key_id(wrapped)?;
    let column = wrap_column(method, host);
    let bytes = crypto::open(|_| Some(kek), &wrap_place(&column), wrapped)?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Authentication)?;
    Ok((key_id, Key::from_bytes(arr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_method_binding() {
        let kek = Key::generate().unwrap();
        let dek = Key::generate().unwrap();
        let w = wrap(&kek, (Method::Keyring, ""), 3, &dek).unwrap();
        let (id, back) = unwrap(&kek, (Method::Keyring, ""), &w).unwrap();
        assert_eq!((id, &back), (3, &dek));
        assert!(unwrap(&kek, (Method::Passphrase, ""), &w).is_err());
        assert!(unwrap(&Key::generate().unwrap(), (Method::Keyring, ""), &w).is_err());
    }

    #[test]
    fn a_wrap_is_bound_to_its_host_and_a_legacy_wrap_to_none() {
        let kek = Key::generate().unwrap();
        let dek = Key::generate().unwrap();
        let on_a = wrap(&kek, (Method::Keyring, "a"), 1, &dek).unwrap();
        assert!(unwrap(&kek, (Method::Keyring, "a"), &on_a).is_ok());
        assert!(unwrap(&kek, (Method::Keyring, "b"), &on_a).is_err());
        assert!(unwrap(&kek, (Method::Keyring, ""), &on_a).is_err());
        // A wrap written before format 11 (column `keyring`) still opens as host ''.
        let legacy = crypto::seal(&kek, 1, &wrap_place("keyring"), dek.expose_bytes()).unwrap();
        assert!(unwrap(&kek, (Method::Keyring, ""), &legacy).is_ok());
        assert!(unwrap(&kek, (Method::Keyring, "a"), &legacy).is_err());
    }

    #[test]
    fn the_key_check_binds_the_vault_id_and_knows_the_legacy_form() {
        let kek = Key::generate().unwrap();
        let check = kek_check(&kek, "aa");
        assert_eq!(verify_kek_check(&kek, "aa", &check), KekCheck::Current);
        assert_eq!(verify_kek_check(&kek, "ab", &check), KekCheck::Mismatch);
        let other = Key::generate().unwrap();
        assert_eq!(verify_kek_check(&other, "aa", &check), KekCheck::Mismatch);
        let legacy = kek.mac(&[b"authvault kek-check v1"]);
        assert_eq!(verify_kek_check(&kek, "ab", &legacy), KekCheck::Legacy);
        assert_eq!(verify_kek_check(&other, "ab", &legacy), KekCheck::Mismatch);
    }

    #[test]
    fn memory_keyring_behaves_like_a_keyring() {
        let ring = MemoryKeyring::default();
        assert_eq!(ring.load("v").unwrap_err(), KeyringError::NotFound);
        let kek = Key::generate().unwrap();
        ring.store("v", &kek).unwrap();
        assert_eq!(ring.load("v").unwrap(), kek);
        ring.delete("v").unwrap();
        assert_eq!(ring.delete("v").unwrap_err(), KeyringError::NotFound);
        assert_eq!(format!("{ring:?}"), "MemoryKeyring([REDACTED])");
    }
}
