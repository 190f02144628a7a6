//! Codex `auth.json` (and the OpenAI part of the extended `auth.json`): the
//! ChatGPT tokens, the API key, and which of them is active.

use chrono::DateTime;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};

use super::document::{Reader, Seg};
use super::{ImportedAccount, ParseError};
use crate::jwt;
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};

/// ChatGPT plans with which the old Codex CLI used the tokens rather than an
/// exchanged API key (when `auth_mode` is absent).
const TOKEN_PLANS: [&str; 4] = ["free", "plus", "pro", "team"];

/// The ChatGPT tokens of a Codex `auth.json`.
struct CodexTokens {
    id_token: Option<SecretString>,
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    account_id: Option<String>,
}

impl Reader<'_> {
    /// The OpenAI account of a Codex or extended `auth.json`, if it holds one.
    pub(super) fn openai(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Option<ImportedAccount>, ParseError> {
        let mode = match self.string(root, &[], "auth_mode")? {
            None => None,
            Some(m) if m == "apikey" => Some(CredentialKind::ApiKey),
            Some(m) if m == "chatgpt" => Some(CredentialKind::OAuth),
            Some(_) => {
                // The value is not shown: a mangled file can put a secret here.
                let message = "field `auth_mode`: unknown value (not shown); expected \"apikey\" \
                     or \"chatgpt\" (a newer Codex may have written this file: update authvault)"
                    .to_owned();
                return Err(self.error(&[Seg::Key("auth_mode")], message));
            }
        };
        let api_key = self.secret(root, &[], "OPENAI_API_KEY")?;
        let tokens = match self.object(root, &[], "tokens")? {
            Some(t) => Some(self.codex_tokens(t)?),
            None => None,
        };
        let last_refresh = self.datetime(root, &[], "last_refresh")?;

        let missing = |what: &str| {
            let message = format!(
                "field `auth_mode` is \"{}\" but the file holds no {what}",
                mode.map_or("", |m| if m == CredentialKind::ApiKey {
                    "apikey"
                } else {
                    "chatgpt"
                })
            );
            self.error(&[Seg::Key("auth_mode")], message)
        };
        match mode {
            Some(CredentialKind::ApiKey) if api_key.is_none() => {
                return Err(missing("`OPENAI_API_KEY`"));
            }
            Some(CredentialKind::OAuth) if tokens.is_none() => return Err(missing("`tokens`")),
            _ => {}
        }

        let mut identity = Identity::default();
        let mut credentials = Vec::new();
        let mut plan_uses_tokens = false;
        if let Some(t) = tokens {
            let claims = t
                .id_token
                .as_ref()
                .and_then(|id| jwt::decode_claims(id.expose_secret()));
            if t.id_token.is_some() && claims.is_none() {
                self.notes.push(
                    "`tokens.id_token` is not a readable JWT: e-mail and plan are unknown"
                        .to_owned(),
                );
            }
            let claims = claims.unwrap_or_default();
            if let (Some(file_id), Some(claim_id)) = (&t.account_id, &claims.chatgpt_account_id)
                && file_id != claim_id
            {
                self.notes.push(
                    "`tokens.account_id` differs from the id token's ChatGPT account id; \
                     using `tokens.account_id`"
                        .to_owned(),
                );
            }
            plan_uses_tokens = claims
                .plan
                .as_deref()
                .is_some_and(|p| TOKEN_PLANS.contains(&p));
            identity = Identity {
                email: claims.email,
                provider_account_id: t.account_id.or(claims.chatgpt_account_id),
                plan: claims.plan,
                rate_limit_tier: None,
            };
            let access = jwt::decode_claims(t.access_token.expose_secret());
            credentials.push(Credential::OAuth(OAuthTokens {
                expires_at: access
                    .as_ref()
                    .and_then(|c| DateTime::from_timestamp(c.exp?, 0)),
                scopes: access.map(|c| c.scopes).unwrap_or_default(),
                access_token: t.access_token,
                refresh_token: t.refresh_token,
                id_token: t.id_token,
                last_refresh,
            }));
        }
        if let Some(key) = api_key {
            credentials.push(Credential::ApiKey(key));
        }
        let active = match (mode, credentials.as_slice()) {
            (Some(mode), _) => mode,
            (None, []) => return Ok(None),
            (None, [only]) => only.kind(),
            (None, _) if plan_uses_tokens => CredentialKind::OAuth,
            (None, _) => CredentialKind::ApiKey,
        };
        Ok(Some(ImportedAccount {
            provider: Provider::OpenAi,
            identity,
            credentials,
            active,
        }))
    }

    fn codex_tokens(&mut self, t: &mut Map<String, Value>) -> Result<CodexTokens, ParseError> {
        const P: &[Seg] = &[Seg::Key("tokens")];
        let tokens = CodexTokens {
            id_token: self.secret(t, P, "id_token")?,
            access_token: self.required_secret(t, P, "access_token")?,
            refresh_token: self.secret(t, P, "refresh_token")?,
            account_id: self.string(t, P, "account_id")?,
        };
        self.unknown_fields(
            P,
            t,
            &["id_token", "access_token", "refresh_token", "account_id"],
        );
        Ok(tokens)
    }
}
