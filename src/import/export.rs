//! Rendering vault credentials as the files other tools read
//! (`vault export codex` / `vault export claude-code`).
//!
//! The output goes straight from the exposed secrets into one pre-sized,
//! zeroed-on-drop buffer: no intermediate `String` or `serde_json::Value`
//! holds a copy, and the buffer never reallocates (which would free a copy
//! without zeroing it).
//!
//! What each format can carry (and so what survives import → export →
//! import):
//!
//! - Codex `auth.json`: access, refresh and id token, account id, last
//!   refresh, API key, active credential. E-mail, plan, expiry and scopes
//!   live in the id / access token JWTs and so survive with them.
//! - Claude Code `.credentials.json`: access and refresh token, expiry
//!   (millisecond precision), scopes, plan (`subscriptionType`) and
//!   rate-limit tier. No id token, account id, e-mail or last refresh; no API
//!   key (Claude Code keeps those elsewhere).

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::model::{CredentialKind, OAuthTokens};

/// Renders a Codex `auth.json` in the current (2026) schema, pretty-printed:
/// `auth_mode`, `OPENAI_API_KEY` (a key or `null`), `tokens` (when `oauth`
/// is given) and `last_refresh` (when known).
///
/// `auth_mode` follows `active` when that credential is given, else the one
/// that is. Codex requires `tokens.id_token` and `tokens.refresh_token`: a
/// missing one is written as `""`, which authvault's importer reads back as
/// absent. `account_id` is written when given (Codex otherwise takes it
/// from the id token).
#[must_use]
pub fn codex_auth_json(
    oauth: Option<&OAuthTokens>,
    api_key: Option<&SecretString>,
    account_id: Option<&str>,
    active: CredentialKind,
) -> Zeroizing<String> {
    let mode = match (active, oauth.is_some(), api_key.is_some()) {
        (CredentialKind::OAuth, true, _) | (CredentialKind::ApiKey, true, false) => "chatgpt",
        _ => "apikey",
    };
    let tokens = oauth.map(|t| CodexTokens {
        id_token: t.id_token.as_ref().map_or("", |s| s.expose_secret()),
        access_token: t.access_token.expose_secret(),
        refresh_token: t.refresh_token.as_ref().map_or("", |s| s.expose_secret()),
        account_id,
    });
    let file = CodexAuth {
        auth_mode: mode,
        openai_api_key: api_key.map(ExposeSecret::expose_secret),
        last_refresh: oauth.and_then(|t| t.last_refresh),
        tokens,
    };
    let secrets = [
        file.openai_api_key.unwrap_or(""),
        file.tokens.as_ref().map_or("", |t| t.id_token),
        file.tokens.as_ref().map_or("", |t| t.access_token),
        file.tokens.as_ref().map_or("", |t| t.refresh_token),
        account_id.unwrap_or(""),
    ];
    render(&file, &secrets)
}

/// Renders a Claude Code `.credentials.json`, pretty-printed:
/// `{"claudeAiOauth": {accessToken, refreshToken, expiresAt (unix ms),
/// scopes, subscriptionType, rateLimitTier}}`. A missing refresh token or
/// expiry is left out; a missing plan or tier is `null`.
#[must_use]
pub fn claude_code_credentials_json(
    oauth: &OAuthTokens,
    plan: Option<&str>,
    rate_limit_tier: Option<&str>,
) -> Zeroizing<String> {
    let inner = ClaudeAiOauth {
        access_token: oauth.access_token.expose_secret(),
        refresh_token: oauth
            .refresh_token
            .as_ref()
            .map(ExposeSecret::expose_secret),
        expires_at: oauth.expires_at.map(|t| t.timestamp_millis()),
        scopes: &oauth.scopes,
        subscription_type: plan,
        rate_limit_tier,
    };
    let mut secrets = vec![
        inner.access_token,
        inner.refresh_token.unwrap_or(""),
        plan.unwrap_or(""),
        rate_limit_tier.unwrap_or(""),
    ];
    secrets.extend(oauth.scopes.iter().map(String::as_str));
    render(
        &ClaudeCodeCredentials {
            claude_ai_oauth: inner,
        },
        &secrets,
    )
}

#[derive(Serialize)]
struct CodexAuth<'a> {
    auth_mode: &'a str,
    #[serde(rename = "OPENAI_API_KEY")]
    openai_api_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<CodexTokens<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_refresh: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct CodexTokens<'a> {
    id_token: &'a str,
    access_token: &'a str,
    refresh_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ClaudeCodeCredentials<'a> {
    #[serde(rename = "claudeAiOauth")]
    claude_ai_oauth: ClaudeAiOauth<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaudeAiOauth<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    scopes: &'a [String],
    subscription_type: Option<&'a str>,
    rate_limit_tier: Option<&'a str>,
}

/// Pretty JSON of `value` in a buffer sized so it never reallocates:
/// 1 KiB of structure plus the worst case of escaping every string of
/// `strings` (`\u00XX`, 6 bytes per byte).
fn render<T: Serialize>(value: &T, strings: &[&str]) -> Zeroizing<String> {
    let capacity = 1024 + strings.iter().map(|s| 6 * s.len() + 16).sum::<usize>();
    let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
    let mut out = Zeroizing::new(String::new());
    if serde_json::to_writer_pretty(&mut *buf, value).is_err() {
        // Serializing these plain structs cannot fail; render nothing rather than panic.
        return out;
    }
    buf.push(b'\n');
    // Moves the buffer (no copy); serde_json only writes UTF-8.
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(s) => *out = s,
        Err(e) => drop(Zeroizing::new(e.into_bytes())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::formats::tests::{AccountView, CredentialView, FIXTURES, view, views};
    use crate::import::formats::{ImportedAccount, parse};
    use crate::jwt::unsigned_jwt;
    use crate::model::{Credential, Identity, Provider};
    use proptest::prelude::*;
    use std::path::Path;

    /// Exports an account the way `vault export` would: OpenAI accounts as
    /// Codex `auth.json`, Claude subscription accounts as Claude Code
    /// `.credentials.json`. Claude API keys have no export format.
    fn export(account: &ImportedAccount) -> Option<Zeroizing<String>> {
        let oauth = account.credentials.iter().find_map(|c| match c {
            Credential::OAuth(t) => Some(t),
            Credential::ApiKey(_) => None,
        });
        let api_key = account.credentials.iter().find_map(|c| match c {
            Credential::ApiKey(k) => Some(k),
            Credential::OAuth(_) => None,
        });
        let id = &account.identity;
        match account.provider {
            Provider::OpenAi => Some(codex_auth_json(
                oauth,
                api_key,
                id.provider_account_id.as_deref(),
                account.active,
            )),
            Provider::Claude => oauth.map(|t| {
                claude_code_credentials_json(t, id.plan.as_deref(), id.rate_limit_tier.as_deref())
            }),
        }
    }

    /// What survives a trip through the account's export format.
    fn carried(mut account: AccountView) -> AccountView {
        if account.provider == Provider::Claude {
            account.identity = Identity {
                email: None,
                provider_account_id: None,
                ..account.identity
            };
            for c in &mut account.credentials {
                if let CredentialView::OAuth {
                    id_token,
                    last_refresh,
                    ..
                } = c
                {
                    *id_token = None;
                    *last_refresh = None;
                }
            }
        }
        account
    }

    #[test]
    fn every_fixture_survives_import_export_import() {
        let mut exported = 0;
        for (name, bytes) in FIXTURES {
            let first = parse(Path::new(name), bytes).unwrap();
            for account in &first.accounts {
                let Some(file) = export(account) else {
                    assert_eq!(
                        (account.provider, account.active),
                        (Provider::Claude, CredentialKind::ApiKey),
                        "{name}"
                    );
                    continue;
                };
                exported += 1;
                let again = parse(Path::new("exported"), file.as_bytes())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(views(&again), vec![carried(view(account))], "{name}");
                assert_eq!(again.notes, Vec::<String>::new(), "{name}");
            }
        }
        assert_eq!(exported, 8);
    }

    fn token() -> impl Strategy<Value = String> {
        // Any non-empty text, including quotes, escapes and control characters.
        "(?s).{1,40}"
    }

    fn name() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-z0-9_.@-]{1,20}")
    }

    fn time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        proptest::option::of(
            (0i64..4_102_444_800_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
        )
    }

    proptest! {
        #[test]
        fn claude_code_round_trip(
            access in token(), refresh in proptest::option::of(token()), expires_at in time(),
            scopes in proptest::collection::vec("[a-z:_]{1,12}", 0..4), plan in name(), tier in name(),
        ) {
            let tokens = OAuthTokens {
                access_token: SecretString::from(access.clone()),
                refresh_token: refresh.clone().map(SecretString::from),
                id_token: None,
                expires_at,
                scopes: scopes.clone(),
                last_refresh: None,
            };
            let file = claude_code_credentials_json(&tokens, plan.as_deref(), tier.as_deref());
            let parsed = parse(Path::new("c"), file.as_bytes()).unwrap();
            let want = AccountView {
                provider: Provider::Claude,
                identity: Identity { plan, rate_limit_tier: tier, ..Identity::default() },
                credentials: vec![CredentialView::OAuth {
                    access_token: access, refresh_token: refresh, id_token: None, expires_at, scopes, last_refresh: None,
                }],
                active: CredentialKind::OAuth,
            };
            prop_assert_eq!(views(&parsed), vec![want]);
        }

        #[test]
        fn codex_round_trip(
            email in name(), plan in name(), account_id in name(), exp in proptest::option::of(0i64..4_102_444_800),
            scopes in proptest::collection::vec("[a-z:_]{1,12}", 0..4), refresh in proptest::option::of(token()),
            api_key in proptest::option::of(token()), last_refresh in time(), prefer_key in any::<bool>(),
        ) {
            let id_token = unsigned_jwt(&serde_json::json!({
                "email": email,
                "https://api.openai.com/auth": {"chatgpt_plan_type": plan, "chatgpt_account_id": account_id},
            }));
            let access = unsigned_jwt(&serde_json::json!({"exp": exp, "scp": scopes}));
            let tokens = OAuthTokens {
                access_token: SecretString::from(access.clone()),
                refresh_token: refresh.clone().map(SecretString::from),
                id_token: Some(SecretString::from(id_token.clone())),
                expires_at: exp.and_then(|s| DateTime::from_timestamp(s, 0)),
                scopes: scopes.clone(),
                last_refresh,
            };
            let key = api_key.clone().map(SecretString::from);
            let active = if prefer_key && key.is_some() { CredentialKind::ApiKey } else { CredentialKind::OAuth };
            let file = codex_auth_json(Some(&tokens), key.as_ref(), account_id.as_deref(), active);
            let parsed = parse(Path::new("c"), file.as_bytes()).unwrap();
            let mut credentials = vec![CredentialView::OAuth {
                access_token: access, refresh_token: refresh, id_token: Some(id_token),
                expires_at: tokens.expires_at, scopes, last_refresh,
            }];
            credentials.extend(api_key.map(CredentialView::ApiKey));
            let want = AccountView {
                provider: Provider::OpenAi,
                identity: Identity { email, provider_account_id: account_id, plan, rate_limit_tier: None },
                credentials,
                active,
            };
            prop_assert_eq!(views(&parsed), vec![want]);
        }
    }

    fn tokens() -> OAuthTokens {
        OAuthTokens {
            access_token: SecretString::from("acc\"ess\n\u{1}"),
            refresh_token: Some(SecretString::from("refresh")),
            id_token: None,
            expires_at: DateTime::from_timestamp_millis(1_795_000_000_123),
            scopes: vec!["user:inference".into(), "user:profile".into()],
            last_refresh: DateTime::from_timestamp(1_751_000_000, 0),
        }
    }

    #[test]
    fn codex_golden() {
        let key = SecretString::from("sk-key");
        let out = codex_auth_json(
            Some(&tokens()),
            Some(&key),
            Some("acc-1"),
            CredentialKind::OAuth,
        );
        let expected = r#"{
  "auth_mode": "chatgpt",
  "OPENAI_API_KEY": "sk-key",
  "tokens": {
    "id_token": "",
    "access_token": "acc\"ess\n\u0001",
    "refresh_token": "refresh",
    "account_id": "acc-1"
  },
  "last_refresh": "2025-06-27T04:53:20Z"
}
"#;
        assert_eq!(out.as_str(), expected);
    }

    #[test]
    fn codex_auth_mode_follows_active_when_present() {
        let key = SecretString::from("sk-key");
        let t = tokens();
        let cases = [
            (Some(&t), Some(&key), CredentialKind::OAuth, "chatgpt"),
            (Some(&t), Some(&key), CredentialKind::ApiKey, "apikey"),
            (Some(&t), None, CredentialKind::ApiKey, "chatgpt"),
            (None, Some(&key), CredentialKind::OAuth, "apikey"),
            (None, None, CredentialKind::OAuth, "apikey"),
        ];
        for (oauth, api_key, active, mode) in cases {
            let out = codex_auth_json(oauth, api_key, None, active);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                v["auth_mode"],
                mode,
                "{active:?} oauth={} key={}",
                oauth.is_some(),
                api_key.is_some()
            );
        }
        let key_only = codex_auth_json(None, Some(&key), None, CredentialKind::ApiKey);
        assert_eq!(
            key_only.as_str(),
            "{\n  \"auth_mode\": \"apikey\",\n  \"OPENAI_API_KEY\": \"sk-key\"\n}\n"
        );
    }

    #[test]
    fn claude_code_golden() {
        let out = claude_code_credentials_json(&tokens(), Some("max"), None);
        let expected = r#"{
  "claudeAiOauth": {
    "accessToken": "acc\"ess\n\u0001",
    "refreshToken": "refresh",
    "expiresAt": 1795000000123,
    "scopes": [
      "user:inference",
      "user:profile"
    ],
    "subscriptionType": "max",
    "rateLimitTier": null
  }
}
"#;
        assert_eq!(out.as_str(), expected);
    }

    #[test]
    fn buffer_never_reallocates_even_when_everything_is_escaped() {
        let nasty = "\u{1}".repeat(10_000);
        let t = OAuthTokens {
            access_token: SecretString::from(nasty.clone()),
            refresh_token: Some(SecretString::from(nasty.clone())),
            id_token: Some(SecretString::from(nasty.clone())),
            expires_at: None,
            scopes: vec![nasty.clone(); 3],
            last_refresh: None,
        };
        let key = SecretString::from(nasty.clone());
        let strings = [nasty.as_str(); 5];
        let capacity = 1024 + strings.iter().map(|s| 6 * s.len() + 16).sum::<usize>();
        let out = codex_auth_json(Some(&t), Some(&key), Some(&nasty), CredentialKind::OAuth);
        assert!(
            out.len() <= capacity && out.capacity() == capacity,
            "{} {}",
            out.len(),
            out.capacity()
        );
        let out = claude_code_credentials_json(&t, Some(&nasty), Some(&nasty));
        assert!(out.len() < out.capacity());
    }
}
