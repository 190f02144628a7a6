//! Claude's files: `claude_auth.json` (and the `claude_auth` object of the
//! extended `auth.json`), and Claude Code's `.credentials.json`.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::document::{Reader, Seg, child};
use super::{CLAUDE_CODE_KEY, ImportedAccount, ParseError};
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};

impl Reader<'_> {
    /// `claude_auth.json`: an API-key account and/or a subscription account.
    pub(super) fn claude_auth(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Vec<ImportedAccount>, ParseError> {
        let api_key = self.secret(root, &[], "ANTHROPIC_API_KEY")?;
        let last_refresh = self.datetime(root, &[], "last_refresh")?;
        let info_tier = self.subscription_info(root, &[])?;
        self.string(root, &[], "preferred_mode")?;
        let oauth = match self.object(root, &[], "oauth_tokens")? {
            Some(o) => Some(self.claude_oauth(o, &[Seg::Key("oauth_tokens")], last_refresh)?),
            None => None,
        };
        Ok(claude_accounts(api_key, oauth, info_tier))
    }

    /// The `claude_auth` object of an extended `auth.json`.
    pub(super) fn extended_claude(
        &mut self,
        c: &mut Map<String, Value>,
    ) -> Result<Vec<ImportedAccount>, ParseError> {
        const P: &[Seg] = &[Seg::Key("claude_auth")];
        self.string(c, P, "auth_mode")?;
        let api_key = self.secret(c, P, "api_key")?;
        self.datetime(c, P, "last_subscription_check")?;
        let info_tier = self.subscription_info(c, P)?;
        let oauth = match self.object(c, P, "oauth_tokens")? {
            Some(o) => Some(self.claude_oauth(
                o,
                &[Seg::Key("claude_auth"), Seg::Key("oauth_tokens")],
                None,
            )?),
            None => None,
        };
        let known = [
            "auth_mode",
            "api_key",
            "oauth_tokens",
            "subscription_info",
            "last_subscription_check",
        ];
        self.unknown_fields(P, c, &known);
        Ok(claude_accounts(api_key, oauth, info_tier))
    }

    /// An `oauth_tokens` object of the multi-provider design.
    fn claude_oauth(
        &mut self,
        o: &mut Map<String, Value>,
        path: &[Seg],
        last_refresh: Option<DateTime<Utc>>,
    ) -> Result<ClaudeOAuth, ParseError> {
        let mut scopes = self.scopes(o, path, "scopes")?;
        if scopes.is_empty() {
            scopes = self.scopes(o, path, "scope")?;
        }
        let oauth = ClaudeOAuth {
            tokens: OAuthTokens {
                access_token: self.required_secret(o, path, "access_token")?,
                refresh_token: self.secret(o, path, "refresh_token")?,
                id_token: None,
                expires_at: self.expires_at(o, path, "expires_at")?,
                scopes,
                last_refresh,
            },
            tier: self.string(o, path, "subscription_tier")?,
            account_id: self.string(o, path, "account_id")?,
        };
        let known = [
            "access_token",
            "refresh_token",
            "expires_at",
            "subscription_tier",
            "account_id",
            "scope",
            "scopes",
        ];
        self.unknown_fields(path, o, &known);
        Ok(oauth)
    }

    /// Type-checks `subscription_info` and returns its `tier`.
    fn subscription_info(
        &mut self,
        parent_map: &mut Map<String, Value>,
        parent: &[Seg],
    ) -> Result<Option<String>, ParseError> {
        let Some(info) = self.object(parent_map, parent, "subscription_info")? else {
            return Ok(None);
        };
        let path = &child(parent, "subscription_info");
        let tier = self.string(info, path, "tier")?;
        self.number(info, path, "daily_limit")?;
        self.number(info, path, "current_usage")?;
        self.datetime(info, path, "reset_time")?;
        self.scopes(info, path, "features")?;
        self.unknown_fields(
            path,
            info,
            &[
                "tier",
                "daily_limit",
                "current_usage",
                "reset_time",
                "features",
            ],
        );
        Ok(tier)
    }

    /// Claude Code's `.credentials.json`.
    pub(super) fn claude_code(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Option<ImportedAccount>, ParseError> {
        const P: &[Seg] = &[Seg::Key(CLAUDE_CODE_KEY)];
        let Some(o) = self.object(root, &[], CLAUDE_CODE_KEY)? else {
            return Ok(None);
        };
        let tokens = OAuthTokens {
            access_token: self.required_secret(o, P, "accessToken")?,
            refresh_token: self.secret(o, P, "refreshToken")?,
            id_token: None,
            expires_at: self.unix_millis(o, P, "expiresAt")?,
            scopes: self.scopes(o, P, "scopes")?,
            last_refresh: None,
        };
        let identity = Identity {
            plan: self.string(o, P, "subscriptionType")?,
            rate_limit_tier: self.string(o, P, "rateLimitTier")?,
            ..Identity::default()
        };
        let known = [
            "accessToken",
            "refreshToken",
            "expiresAt",
            "scopes",
            "subscriptionType",
            "rateLimitTier",
        ];
        self.unknown_fields(P, o, &known);
        Ok(Some(ImportedAccount {
            provider: Provider::Claude,
            identity,
            credentials: vec![Credential::OAuth(tokens)],
            active: CredentialKind::OAuth,
        }))
    }
}

struct ClaudeOAuth {
    tokens: OAuthTokens,
    tier: Option<String>,
    account_id: Option<String>,
}

fn claude_accounts(
    api_key: Option<SecretString>,
    oauth: Option<ClaudeOAuth>,
    info_tier: Option<String>,
) -> Vec<ImportedAccount> {
    let mut accounts = Vec::new();
    if let Some(key) = api_key {
        accounts.push(ImportedAccount {
            provider: Provider::Claude,
            identity: Identity::default(),
            credentials: vec![Credential::ApiKey(key)],
            active: CredentialKind::ApiKey,
        });
    }
    if let Some(o) = oauth {
        accounts.push(ImportedAccount {
            provider: Provider::Claude,
            identity: Identity {
                provider_account_id: o.account_id,
                plan: o.tier.or(info_tier),
                ..Identity::default()
            },
            credentials: vec![Credential::OAuth(o.tokens)],
            active: CredentialKind::OAuth,
        });
    }
    accounts
}
