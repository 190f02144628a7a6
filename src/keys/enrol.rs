//! The enrolment code that carries a new host's key-encryption key from a
//! host that is already unlocked to the new host's own OS keyring.
//!
//! Text form: `authvault-enrol-1.<vault id>.<host>.<KEK>`, host and KEK in
//! unpadded base64url. The code opens the vault as the new host's keyring
//! entry will (together with access to the database), so it is a secret:
//! [`EnrolmentCode`] has a redacted `Debug`, its text is a [`SecretString`],
//! and no parse error repeats any of it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::Key;

const PREFIX: &str = "authvault-enrol-1";

/// A KEK for the keyring row of `host` in the vault `vault_id`.
pub struct EnrolmentCode {
    /// The vault it enrols into.
    pub vault_id: String,
    /// The host it enrols.
    pub host: String,
    /// The key-encryption key that host's keyring will hold.
    pub kek: Key,
}

impl fmt::Debug for EnrolmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrolmentCode")
            .field("vault_id", &self.vault_id)
            .field("host", &self.host)
            .field("kek", &"[redacted]")
            .finish()
    }
}

/// Why a text is not an enrolment code (never quoting it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an authvault enrolment code: {0}")]
pub struct BadEnrolmentCode(&'static str);

impl EnrolmentCode {
    /// The code's text, to print for the user to carry to the new host.
    #[must_use]
    pub fn encode(&self) -> SecretString {
        SecretString::from(format!(
            "{PREFIX}.{}.{}.{}",
            self.vault_id,
            URL_SAFE_NO_PAD.encode(self.host.as_bytes()),
            URL_SAFE_NO_PAD.encode(self.kek.expose_bytes())
        ))
    }

    /// Reads a code (surrounding white space ignored).
    ///
    /// # Errors
    /// [`BadEnrolmentCode`] saying which part is wrong.
    pub fn parse(text: &SecretString) -> Result<Self, BadEnrolmentCode> {
        let mut parts = text.expose_secret().trim().split('.');
        if parts.next() != Some(PREFIX) {
            return Err(BadEnrolmentCode(
                "it does not start with `authvault-enrol-1.`",
            ));
        }
        let (Some(vault_id), Some(host), Some(kek), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadEnrolmentCode(
                "it does not have four parts separated by `.`",
            ));
        };
        if vault_id.is_empty()
            || !vault_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(BadEnrolmentCode("its vault id is malformed"));
        }
        let host = URL_SAFE_NO_PAD
            .decode(host)
            .ok()
            .and_then(|h| String::from_utf8(h).ok())
            .filter(|h| !h.is_empty())
            .ok_or(BadEnrolmentCode("its host part is malformed"))?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(kek)
            .map_err(|_| BadEnrolmentCode("its key part is not base64url"))?;
        let kek = <[u8; 32]>::try_from(bytes.as_slice())
            .map(Key::from_bytes)
            .map_err(|_| BadEnrolmentCode("its key part is not 32 bytes"));
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(Self {
            vault_id: vault_id.to_owned(),
            host,
            kek: kek?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> EnrolmentCode {
        EnrolmentCode {
            vault_id: "0f3c-vault".into(),
            host: "build.example:b".into(),
            kek: Key::from_bytes([7; 32]),
        }
    }

    #[test]
    fn a_code_reads_back_as_written() {
        let text = code().encode();
        let back = EnrolmentCode::parse(&text).unwrap();
        assert_eq!(
            (back.vault_id.as_str(), back.host.as_str()),
            ("0f3c-vault", "build.example:b")
        );
        assert_eq!(back.kek.expose_bytes(), &[7; 32]);
        let padded = SecretString::from(format!("  {}\n", text.expose_secret()));
        assert!(EnrolmentCode::parse(&padded).is_ok());
    }

    #[test]
    fn a_malformed_code_is_refused_without_quoting_it() {
        let good = code().encode().expose_secret().to_owned();
        let key_part = good.rsplit('.').next().unwrap().to_owned();
        let cases = [
            good.replace("authvault-enrol-1", "authvault-enrol-2"),
            format!("{good}.extra"),
            good.replace(&key_part, &key_part[..20]),
            good.replace(&key_part, "!!!!"),
            good.replace("0f3c-vault", "0f3c vault"),
            String::new(),
        ];
        for bad in cases {
            let err = EnrolmentCode::parse(&SecretString::from(bad.clone())).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&key_part), "{shown}");
            assert!(shown.contains("enrolment code"), "{shown}");
        }
        assert!(!format!("{:?}", code()).contains("7, 7"));
    }
}
