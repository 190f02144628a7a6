//! Codex's write-back: after a Codex run with a ChatGPT login, the tokens
//! it refreshed and wrote into its (private) `auth.json` go back into the
//! vault. OpenAI rotates refresh tokens: a refresh inside Codex revokes the
//! one the vault holds, so without this the vault's login would be lost.
//!
//! Only tokens of the account's own identity are taken, and only when they
//! are newer than the vault's; the comparison and the write are one store
//! transaction (`Store::store_client_refresh`).

use std::path::Path;

use super::{Manager, identity_differs};
use crate::error::{Error, Result};
use crate::import::formats::{LegacyFormat, parse};
use crate::model::{Credential, Provider};
use crate::store::ClientRefresh;

/// What the write-back of a Codex `auth.json` did. Nothing but
/// [`WriteBack::Updated`] changed the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteBack {
    /// The file held newer tokens of the account: they are the vault's now.
    Updated,
    /// The file holds the tokens the vault handed out: nothing to do.
    Unchanged,
    /// The vault holds newer tokens than the file (refreshed meanwhile by
    /// another process): the vault's were kept.
    VaultNewer,
    /// The file holds no ChatGPT tokens (Codex was logged out, or switched
    /// to an API key): nothing was taken.
    NoTokens,
    /// The file's tokens are not this account's: refused, nothing changed.
    /// Worth a warning.
    RefusedOtherIdentity {
        /// What differs ("ChatGPT account id", "e-mail", "provider"), or
        /// "ChatGPT account id or e-mail" when the file names neither.
        field: &'static str,
    },
}

impl Manager {
    /// Merges the Codex `auth.json` a child left behind (`bytes`, read from
    /// `file`, which is named in messages) into account `label`: its OAuth
    /// tokens are stored when the file's identity (ChatGPT account id,
    /// e-mail) is the account's and the tokens are newer than the vault's.
    ///
    /// # Errors
    /// `CredentialFile` (the file cannot be parsed; nothing changed),
    /// `AccountNotFound`, `NoCredential`, store errors.
    pub fn write_back_codex(
        &mut self,
        label: &str,
        file: &Path,
        bytes: &[u8],
    ) -> Result<WriteBack> {
        let parsed = parse(file, bytes).map_err(|e| Error::CredentialFile(e.to_string()))?;
        let found = parsed
            .accounts
            .into_iter()
            .filter(|_| parsed.format == LegacyFormat::CodexAuth)
            .find_map(|a| {
                a.credentials.into_iter().find_map(|c| match c {
                    Credential::OAuth(tokens) => Some((a.identity.clone(), tokens)),
                    Credential::ApiKey(_) => None,
                })
            });
        let Some((identity, tokens)) = found else {
            return Ok(WriteBack::NoTokens);
        };
        let account = self.store.account(label)?;
        if account.provider != Provider::OpenAi {
            return Ok(WriteBack::RefusedOtherIdentity { field: "provider" });
        }
        if let Some(field) = identity_differs(&account, &identity) {
            return Ok(WriteBack::RefusedOtherIdentity { field });
        }
        let comparable = |a: &Option<String>, b: &Option<String>| a.is_some() && b.is_some();
        if !comparable(&account.provider_account_id, &identity.provider_account_id)
            && !comparable(&account.email, &identity.email)
        {
            return Ok(WriteBack::RefusedOtherIdentity {
                field: "ChatGPT account id or e-mail",
            });
        }
        Ok(
            match self.store.store_client_refresh(label, &tokens, "codex")? {
                ClientRefresh::Stored => WriteBack::Updated,
                ClientRefresh::Same => WriteBack::Unchanged,
                ClientRefresh::Older => WriteBack::VaultNewer,
            },
        )
    }
}
