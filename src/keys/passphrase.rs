//! Passphrase unlock: Argon2id with stored, range-checked parameters.

use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::KeysError;
use crate::crypto::{Key, fill_random, hex};

/// Lowest memory cost accepted, KiB (OWASP's floor: 19 MiB).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// Highest memory cost accepted, KiB (4 GiB): refuses a file that would make us allocate absurdly.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Lowest iteration count accepted (OWASP's floor at 19 MiB).
pub const MIN_ITERATIONS: u32 = 2;
/// Highest iteration count accepted.
pub const MAX_ITERATIONS: u32 = 64;
/// Highest lane count accepted.
pub const MAX_PARALLELISM: u32 = 64;

/// Argon2id cost parameters and salt, stored beside each passphrase wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `argon2id`.
    pub alg: String,
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// 16-byte random salt, hex.
    pub salt: String,
}

/// Cost parameters without a salt, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfCost {
    /// RFC 9106's second recommendation: m = 64 MiB, t = 3, p = 4.
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 4,
        }
    }
}

impl KdfCost {
    /// Checks the cost against the floors and ceilings, before anything is allocated.
    ///
    /// # Errors
    /// [`KeysError::KdfParams`] naming the parameter out of range.
    pub fn check(self) -> Result<Self, KeysError> {
        let bad = |what: String| Err(KeysError::KdfParams(what));
        if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&self.m_kib) {
            return bad(format!(
                "memory {} KiB is outside {MIN_MEMORY_KIB}..={MAX_MEMORY_KIB} KiB",
                self.m_kib
            ));
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&self.t) {
            return bad(format!(
                "iterations {} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}",
                self.t
            ));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.p) {
            return bad(format!(
                "parallelism {} outside 1..={MAX_PARALLELISM}",
                self.p
            ));
        }
        Ok(self)
    }

    /// Fresh parameters with a random salt.
    ///
    /// # Errors
    /// Out-of-range cost, or a failing random source.
    pub fn with_new_salt(self) -> Result<KdfParams, KeysError> {
        self.check()?;
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        Ok(KdfParams {
            alg: "argon2id".into(),
            m_kib: self.m_kib,
            t: self.t,
            p: self.p,
            salt: hex(&salt),
        })
    }
}

impl KdfParams {
    /// Derives the key-encryption key from `passphrase`.
    ///
    /// # Errors
    /// [`KeysError::KdfParams`] when the stored parameters are unknown or out of
    /// range (checked before any memory is allocated).
    pub fn derive(&self, passphrase: &SecretString) -> Result<Key, KeysError> {
        if self.alg != "argon2id" {
            return Err(KeysError::KdfParams(format!(
                "unknown algorithm `{}`",
                self.alg
            )));
        }
        KdfCost {
            m_kib: self.m_kib,
            t: self.t,
            p: self.p,
        }
        .check()?;
        let salt = unhex(&self.salt)
            .filter(|s| s.len() >= 16)
            .ok_or_else(|| KeysError::KdfParams("salt is not 16+ hex bytes".into()))?;
        let params = Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| KeysError::KdfParams(e.to_string()))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.expose_secret().as_bytes(), &salt, &mut out)
            .map_err(|e| KeysError::KdfParams(e.to_string()))?;
        let key = Key::from_bytes(out);
        zeroize::Zeroize::zeroize(&mut out);
        Ok(key)
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfCost = KdfCost {
        m_kib: MIN_MEMORY_KIB,
        t: MIN_ITERATIONS,
        p: 1,
    };

    #[test]
    fn same_passphrase_and_salt_same_key_else_different() {
        let params = FAST.with_new_salt().unwrap();
        let pw = SecretString::from("correct horse");
        let a = params.derive(&pw).unwrap();
        assert_eq!(a, params.derive(&pw).unwrap());
        assert_ne!(
            a,
            params.derive(&SecretString::from("wrong horse")).unwrap()
        );
        assert_ne!(a, FAST.with_new_salt().unwrap().derive(&pw).unwrap());
    }

    #[test]
    fn out_of_range_costs_are_refused_before_allocating() {
        let cases = [
            KdfCost {
                m_kib: MIN_MEMORY_KIB - 1,
                ..FAST
            },
            KdfCost {
                m_kib: MAX_MEMORY_KIB + 1,
                ..FAST
            },
            KdfCost { t: 1, ..FAST },
            KdfCost {
                t: MAX_ITERATIONS + 1,
                ..FAST
            },
            KdfCost { p: 0, ..FAST },
            KdfCost {
                p: MAX_PARALLELISM + 1,
                ..FAST
            },
        ];
        for cost in cases {
            assert!(
                matches!(cost.check(), Err(KeysError::KdfParams(_))),
                "{cost:?}"
            );
        }
        // A stored file claiming 4 TiB is refused, not attempted.
        let mut params = FAST.with_new_salt().unwrap();
        params.m_kib = u32::MAX;
        assert!(matches!(
            params.derive(&SecretString::from("x")),
            Err(KeysError::KdfParams(_))
        ));
    }

    #[test]
    fn default_is_rfc_9106_second_recommendation() {
        assert_eq!(
            KdfCost::default(),
            KdfCost {
                m_kib: 65536,
                t: 3,
                p: 4
            }
        );
        assert!(KdfCost::default().check().is_ok());
    }
}
