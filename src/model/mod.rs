//! Plain data shared by every layer: providers, credential kinds, accounts,
//! the credentials they hold, and subscription snapshots (`snapshot.rs`).
//!
//! Secret fields are [`SecretString`]s, whose `Debug` prints `[REDACTED]`, so
//! the `Debug` derives here cannot leak a token.

mod snapshot;
pub mod usage;

pub use snapshot::{Credits, Snapshot, SnapshotSource, UsageWindow};

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The company whose accounts a credential belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI: ChatGPT subscriptions (Codex login) and platform API keys.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic: Claude Pro/Max subscriptions (Claude Code login) and API keys.
    Claude,
}

impl Provider {
    /// Every provider, in display order.
    pub const ALL: [Self; 2] = [Self::OpenAi, Self::Claude];

    /// The stable lowercase name used in the database, the CLI and `--json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Claude => "claude",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(Self::OpenAi),
            "claude" | "anthropic" => Ok(Self::Claude),
            other => Err(UnknownName {
                what: "provider",
                name: other.to_owned(),
                expected: "openai, claude",
            }),
        }
    }
}

/// Which kind of credential an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A platform API key (`sk-…`, `sk-ant-api…`).
    ApiKey,
    /// A subscription login: OAuth access / refresh (/ id) tokens.
    #[serde(rename = "oauth")]
    OAuth,
}

impl CredentialKind {
    /// The stable name used in the database, the CLI and `--json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::OAuth => "oauth",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api_key" => Ok(Self::ApiKey),
            "oauth" => Ok(Self::OAuth),
            other => Err(UnknownName {
                what: "credential kind",
                name: other.to_owned(),
                expected: "api_key, oauth",
            }),
        }
    }
}

/// A name that is not one of the known values of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` (expected one of: {expected})")]
pub struct UnknownName {
    /// What was being named ("provider", …).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names.
    pub expected: &'static str,
}

/// Subscription OAuth tokens of one account.
#[derive(Debug, Clone)]
pub struct OAuthTokens {
    /// Bearer token sent to the provider.
    pub access_token: SecretString,
    /// Single-use, rotating refresh token, when the provider issued one.
    pub refresh_token: Option<SecretString>,
    /// OpenID Connect id token (OpenAI), carrying identity and plan claims.
    pub id_token: Option<SecretString>,
    /// When the access token expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When these tokens were obtained or last refreshed, if known.
    pub last_refresh: Option<DateTime<Utc>>,
}

/// One credential, as handed to or read from the store.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A platform API key.
    ApiKey(SecretString),
    /// Subscription OAuth tokens.
    OAuth(OAuthTokens),
}

impl Credential {
    /// The kind of this credential.
    #[must_use]
    pub const fn kind(&self) -> CredentialKind {
        match self {
            Self::ApiKey(_) => CredentialKind::ApiKey,
            Self::OAuth(_) => CredentialKind::OAuth,
        }
    }
}

/// Who an account is at the provider. Every field is optional because legacy
/// files and API keys often say nothing about it. `email` and
/// `provider_account_id` identify a person and are sealed at rest, so `Debug`
/// shows only whether they are known.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The login e-mail address.
    pub email: Option<String>,
    /// The provider's id for the account (ChatGPT account id, Claude account uuid).
    pub provider_account_id: Option<String>,
    /// Plan or tier as the provider names it (`plus`, `pro`, `team`, `max`…), kept as free text.
    pub plan: Option<String>,
    /// Claude's rate-limit tier (`default_claude_max_20x`…), when known.
    pub rate_limit_tier: Option<String>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sealed = |value: &Option<String>| value.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("Identity")
            .field("email", &sealed(&self.email))
            .field("provider_account_id", &sealed(&self.provider_account_id))
            .field("plan", &self.plan)
            .field("rate_limit_tier", &self.rate_limit_tier)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_debug_hides_what_is_sealed_at_rest() {
        let identity = Identity {
            email: Some("ada@example.com".into()),
            provider_account_id: Some("acct-7f3e9c".into()),
            plan: Some("max".into()),
            rate_limit_tier: Some("default_claude_max_20x".into()),
        };
        let shown = format!("{identity:?}");
        assert!(!shown.contains("ada@example.com"), "{shown}");
        assert!(!shown.contains("acct-7f3e9c"), "{shown}");
        assert_eq!(
            shown,
            "Identity { email: Some(\"[REDACTED]\"), provider_account_id: Some(\"[REDACTED]\"), \
             plan: Some(\"max\"), rate_limit_tier: Some(\"default_claude_max_20x\") }"
        );
        assert_eq!(
            format!("{:?}", Identity::default()),
            "Identity { email: None, provider_account_id: None, plan: None, rate_limit_tier: None }"
        );
    }
}
