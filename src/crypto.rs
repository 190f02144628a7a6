//! Sealing and keyed hashing: the only place that touches ciphers.
//!
//! A sealed value is
//! `version (1) | key id (4, big endian) | nonce (24) | ciphertext | tag (16)`,
//! XChaCha20-Poly1305 with a random nonce. The associated data binds the value
//! to where it lives ([`Place`]): format version, table, column, row id,
//! account id and key id. A value copied to another row, column or account, or
//! opened with another key, fails to open.

use std::fmt;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Version byte of the sealed-value format.
pub const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// A 32-byte symmetric key: data key, key-encryption key or a derived key.
///
/// Not `Copy`, not `Clone` (a copy is made only through the loudly named
/// [`Key::expose_bytes`]), not `Serialize`; `Debug` prints `Key([REDACTED])`;
/// `==` compares in constant time; zeroed on drop.
///
/// ```
/// let key = authvault::crypto::Key::generate().unwrap();
/// assert_eq!(format!("{key:?}"), "Key([REDACTED])");
/// ```
///
/// ```compile_fail,E0599
/// let key = authvault::crypto::Key::generate().unwrap();
/// let copy = key.clone(); // no `Clone`
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 32]);

/// Constant time: how many leading bytes two keys share never shows in the
/// time a comparison takes.
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key {}

impl Key {
    /// Wraps raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key from the operating system's generator.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The raw key bytes. Named loudly: every caller is a place a key leaves
    /// its type (wrapping it, storing it in the OS keyring).
    #[must_use]
    pub const fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derives an independent sub-key for `purpose` (HMAC-SHA256 as a PRF).
    #[must_use]
    pub fn derive(&self, purpose: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.mac(&[b"authvault derive v1", purpose.as_bytes()]));
        Self(out)
    }

    /// HMAC-SHA256 over the length-prefixed `parts` (so `["ab","c"]` and
    /// `["a","bc"]` differ).
    #[must_use]
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a MAC made by [`Key::mac`].
    #[must_use]
    pub fn verify_mac(&self, parts: &[&[u8]], expected: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.verify_slice(expected).is_ok()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([REDACTED])")
    }
}

/// Where a sealed value lives; becomes the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// Row id (or another row discriminator such as a key id).
    pub row: i64,
    /// Account the row belongs to (0 when none).
    pub account: i64,
}

impl Place<'_> {
    fn associated_data(&self, key_id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        aad.push(SEAL_VERSION);
        for part in [self.table.as_bytes(), self.column.as_bytes()] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad.extend_from_slice(&self.row.to_be_bytes());
        aad.extend_from_slice(&self.account.to_be_bytes());
        aad.extend_from_slice(&key_id.to_be_bytes());
        aad
    }
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} row {}", self.table, self.column, self.row)
    }
}

/// Why a sealed value could not be made or opened. Never holds key or
/// plaintext bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Shorter than header plus tag.
    #[error("sealed value is truncated ({len} bytes)")]
    Truncated {
        /// Length found.
        len: usize,
    },
    /// Unknown format version byte.
    #[error("sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    /// Sealed under a key id this vault does not hold.
    #[error("sealed value names data key {0}, which this vault does not hold")]
    UnknownKey(u32),
    /// Authentication failed: the value was altered, moved, or the key is wrong.
    #[error("authentication failed (value altered, moved to another place, or wrong key)")]
    Authentication,
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

/// Fills `buf` from the OS random source.
///
/// # Errors
/// When the OS random source fails.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// Seals `plaintext` for `place` under `key`, recorded as `key_id`.
///
/// # Errors
/// When the OS random source fails.
pub fn seal(
    key: &Key,
    key_id: u32,
    place: &Place<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new_from_slice(key.expose_bytes())
        .map_err(|_| CryptoError::Authentication)?;
    let aad = place.associated_data(key_id);
    let body = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&key_id.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the key id from a sealed value's header.
///
/// # Errors
/// When the value is too short or of an unknown version.
pub fn sealed_key_id(sealed: &[u8]) -> Result<u32, CryptoError> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Truncated { len: sealed.len() });
    }
    if sealed[0] != SEAL_VERSION {
        return Err(CryptoError::UnknownVersion(sealed[0]));
    }
    Ok(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

/// Opens a value made by [`seal`]; `key_for` maps the header's key id to a key.
///
/// # Errors
/// [`CryptoError`] when the value is malformed, names an unknown key, or fails
/// authentication; never returns unauthenticated bytes.
pub fn open<'k>(
    key_for: impl FnOnce(u32) -> Option<&'k Key>,
    place: &Place<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key_id = sealed_key_id(sealed)?;
    let key = key_for(key_id).ok_or(CryptoError::UnknownKey(key_id))?;
    let nonce: [u8; NONCE_LEN] = sealed[5..HEADER_LEN]
        .try_into()
        .expect("length checked above");
    let cipher = XChaCha20Poly1305::new_from_slice(key.expose_bytes())
        .map_err(|_| CryptoError::Authentication)?;
    let aad = place.associated_data(key_id);
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: &sealed[HEADER_LEN..],
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Authentication)
}

/// Lower-case hexadecimal.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: Place<'static> = Place {
        table: "credentials",
        column: "api_key",
        row: 7,
        account: 3,
    };

    #[test]
    fn keys_are_equal_only_when_every_byte_is() {
        let bytes = [7u8; 32];
        assert_eq!(Key::from_bytes(bytes), Key::from_bytes(bytes));
        for at in [0, 15, 31] {
            let mut other = bytes;
            other[at] ^= 1;
            assert_ne!(Key::from_bytes(bytes), Key::from_bytes(other), "byte {at}");
        }
    }

    #[test]
    fn seal_then_open_gives_the_plaintext_back() {
        let key = Key::generate().unwrap();
        let sealed = seal(&key, 1, &PLACE, b"sk-secret").unwrap();
        assert_eq!(sealed.len(), HEADER_LEN + 9 + TAG_LEN);
        let opened = open(|id| (id == 1).then_some(&key), &PLACE, &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"sk-secret");
    }

    #[test]
    fn a_value_opened_anywhere_else_fails() {
        let key = Key::generate().unwrap();
        let sealed = seal(&key, 1, &PLACE, b"sk-secret").unwrap();
        let elsewhere = [
            Place { row: 8, ..PLACE },
            Place {
                account: 4,
                ..PLACE
            },
            Place {
                column: "access_token",
                ..PLACE
            },
            Place {
                table: "accounts",
                ..PLACE
            },
        ];
        for place in elsewhere {
            assert_eq!(
                open(|_| Some(&key), &place, &sealed).unwrap_err(),
                CryptoError::Authentication,
                "{place}"
            );
        }
        let other = Key::generate().unwrap();
        assert_eq!(
            open(|_| Some(&other), &PLACE, &sealed).unwrap_err(),
            CryptoError::Authentication
        );
    }

    #[test]
    fn header_damage_is_named() {
        let key = Key::generate().unwrap();
        let mut sealed = seal(&key, 1, &PLACE, b"x").unwrap();
        assert_eq!(
            open(|_| Some(&key), &PLACE, &sealed[..10]).unwrap_err(),
            CryptoError::Truncated { len: 10 }
        );
        sealed[0] = 9;
        assert_eq!(
            open(|_| Some(&key), &PLACE, &sealed).unwrap_err(),
            CryptoError::UnknownVersion(9)
        );
        sealed[0] = SEAL_VERSION;
        sealed[4] = 2;
        assert_eq!(
            open(|id| (id == 1).then_some(&key), &PLACE, &sealed).unwrap_err(),
            CryptoError::UnknownKey(2)
        );
    }

    #[test]
    fn macs_are_length_prefixed_and_keyed() {
        let key = Key::from_bytes([1; 32]);
        assert_ne!(key.mac(&[b"ab", b"c"]), key.mac(&[b"a", b"bc"]));
        assert_ne!(key.mac(&[b"x"]), Key::from_bytes([2; 32]).mac(&[b"x"]));
        let tag = key.mac(&[b"x"]);
        assert!(key.verify_mac(&[b"x"], &tag));
        assert!(!key.verify_mac(&[b"y"], &tag));
        assert_ne!(
            key.derive("audit").expose_bytes(),
            key.derive("fingerprint").expose_bytes()
        );
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
