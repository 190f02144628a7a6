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

pub mod os_keyring;
pub mod passphrase;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use secrecy::SecretString;

use crate::crypto::{self, CryptoError, Key, Place};
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

fn wrap_place(method: Method) -> Place<'static> {
    Place {
        table: "key_wraps",
        column: method.as_str(),
        row: 0,
        account: 0,
    }
}

/// Seals data key `key_id` under `kek` for `method`.
pub(crate) fn wrap(
    kek: &Key,
    method: Method,
    key_id: u32,
    dek: &Key,
) -> Result<Vec<u8>, CryptoError> {
    crypto::seal(kek, key_id, &wrap_place(method), dek.expose_bytes())
}

/// Opens a wrap made by [`wrap`].
pub(crate) fn unwrap(kek: &Key, method: Method, wrapped: &[u8]) -> Result<(u32, Key), CryptoError> {
    let key_id = crypto::sealed_key_id(wrapped)?;
    let bytes = crypto::open(|_| Some(kek), &wrap_place(method), wrapped)?;
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
        let w = wrap(&kek, Method::Keyring, 3, &dek).unwrap();
        let (id, back) = unwrap(&kek, Method::Keyring, &w).unwrap();
        assert_eq!((id, &back), (3, &dek));
        assert!(unwrap(&kek, Method::Passphrase, &w).is_err());
        assert!(unwrap(&Key::generate().unwrap(), Method::Keyring, &w).is_err());
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
