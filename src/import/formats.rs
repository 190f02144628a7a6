//! Parsing the legacy credential files `vault migrate` imports.
//!
//! [`parse`] detects the format from the content (never the file name) and
//! turns the file into [`ImportedAccount`]s plus, for the extended
//! `auth.json`, the provider preferences and the last provider selection. It
//! is pure: no I/O, no clock, no store.
//!
//! | format | recognised by the top-level key(s) |
//! |---|---|
//! | [`LegacyFormat::ExtendedAuth`] | `claude_auth`, `provider_preferences` or `last_provider_selection` |
//! | [`LegacyFormat::CodexAuth`] | `OPENAI_API_KEY`, `tokens` or `auth_mode` |
//! | [`LegacyFormat::ClaudeCodeCredentials`] | `claudeAiOauth` |
//! | [`LegacyFormat::ClaudeAuth`] | `ANTHROPIC_API_KEY`, `oauth_tokens`, `subscription_info` or `preferred_mode` |
//!
//! (checked in that order; the keys of the other formats are then unknown
//! fields and listed as notes).
//!
//! # Choices
//!
//! - **OpenAI:** a file holding ChatGPT tokens *and* an `OPENAI_API_KEY` is
//!   one account with two credentials, OAuth first. `auth_mode` decides the
//!   active one; without it the old CLI's rule applies: the API key was used
//!   when the id token's plan is missing or not one of `free`, `plus`, `pro`,
//!   `team` (compared exactly, as the old CLI did). An `auth_mode` naming a
//!   credential the file does not hold is an error. The account id is
//!   `tokens.account_id`, else the id token's `chatgpt_account_id`; expiry
//!   and scopes come from the access token's `exp` / `scp` claims when it is a
//!   JWT.
//! - **Claude:** a `claude_auth.json` (or an extended `claude_auth`) holding
//!   both an API key and OAuth tokens becomes **two accounts**, the API-key
//!   account first: an API key is billed to an organisation and a
//!   subscription to a person, they rate-limit separately, and the vault's
//!   selector can then use either; `preferred_mode` / `claude_auth.auth_mode`
//!   only said which one the old tool tried first, so they are type-checked
//!   and otherwise not imported. A numeric `expires_at` is unix milliseconds
//!   when ≥ 10¹¹, else seconds; Claude Code's `expiresAt` is always
//!   milliseconds.
//! - An empty string where a token is expected counts as absent (the exporter
//!   writes `""` for a missing Codex refresh / id token); an empty access
//!   token is an error.
//!
//! # Security
//!
//! No error or note ever contains a value from the file: messages are built
//! here from field paths and JSON type names, never from `serde_json`'s
//! data messages (which quote values); an unknown `auth_mode` is named by
//! its position only. Names of unknown keys are shown only when short and
//! plain (letters, digits and `_-.:/@$`), since a mangled file can turn a
//! secret into a key. The parsed JSON tree is
//! zeroed before it is freed; secrets move out of it into
//! [`SecretString`]s without a copy.
//!
//! Input is capped at [`MAX_SOURCE_BYTES`] and `serde_json`'s recursion limit
//! (on by default: at most 127 levels; a test checks it) bounds nesting, so
//! memory and stack stay bounded for any input.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::jwt;
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};

mod document;

use document::{Reader, Seg, child, kind, line_column, read_document, shown_name, trailing_bytes};

/// Largest source file [`parse`] reads; a credential file is a few KiB.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// ChatGPT plans with which the old Codex CLI used the tokens rather than an
/// exchanged API key (when `auth_mode` is absent).
const TOKEN_PLANS: [&str; 4] = ["free", "plus", "pro", "team"];

/// Which kind of legacy file a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegacyFormat {
    /// Codex CLI `auth.json`, any schema (2025-06, 2025-07+, 2026 with `auth_mode`).
    CodexAuth,
    /// The multi-provider `auth.json`: Codex fields plus `claude_auth`,
    /// `provider_preferences`, `last_provider_selection`.
    ExtendedAuth,
    /// `claude_auth.json` of the multi-provider design.
    ClaudeAuth,
    /// Claude Code `.credentials.json`.
    ClaudeCodeCredentials,
}

impl LegacyFormat {
    /// The stable name used in reports and `--json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CodexAuth => "codex-auth",
            Self::ExtendedAuth => "extended-auth",
            Self::ClaudeAuth => "claude-auth",
            Self::ClaudeCodeCredentials => "claude-code-credentials",
        }
    }
}

impl fmt::Display for LegacyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one source file yields.
#[derive(Debug, Clone)]
pub struct ParsedSource {
    /// The detected format.
    pub format: LegacyFormat,
    /// The accounts, in file order (OpenAI before Claude; a Claude API-key
    /// account before the subscription account of the same file).
    pub accounts: Vec<ImportedAccount>,
    /// `provider_preferences` of an extended `auth.json`.
    pub preferences: Option<ProviderPreferences>,
    /// `last_provider_selection` of an extended `auth.json`.
    pub last_selection: Option<LastSelection>,
    /// Things the user should know (unknown fields, trailing bytes, keys left
    /// alone). Never contains a secret.
    pub notes: Vec<String>,
    /// The file also holds data of other tools that is not imported (Claude
    /// Code's MCP tokens, …): deleting it would lose that data.
    pub holds_other_data: bool,
}

/// One account found in a source file.
#[derive(Debug, Clone)]
pub struct ImportedAccount {
    /// Whose account it is.
    pub provider: Provider,
    /// What the file says about who the account is.
    pub identity: Identity,
    /// One credential, or two (ChatGPT tokens first, then the exchanged API key).
    pub credentials: Vec<Credential>,
    /// Which of `credentials` the old tool used.
    pub active: CredentialKind,
}

/// `provider_preferences` of the extended `auth.json`, values as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProviderPreferences {
    /// `preferred_provider` (`"Claude"`, `"OpenAI"`, …).
    pub preferred_provider: Option<String>,
    /// `fallback_enabled`.
    pub fallback_enabled: Option<bool>,
    /// `selection_strategy` (`"CostOptimized"`, …).
    pub selection_strategy: Option<String>,
    /// `cost_optimization`.
    pub cost_optimization: Option<bool>,
}

/// `last_provider_selection` of the extended `auth.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LastSelection {
    /// `last_used_provider`.
    pub provider: Option<String>,
    /// `selection_reason`.
    pub reason: Option<String>,
    /// `timestamp`.
    pub timestamp: Option<DateTime<Utc>>,
    /// `task_context`.
    pub task_context: Option<String>,
}

/// A source that cannot be imported, with the spot that shows why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}:{}: {}", crate::terminal::escape(&.file.display().to_string()), .line, .column, .message)]
pub struct ParseError {
    /// The file, as given to [`parse`].
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (a UTF-8 BOM is not counted).
    pub column: usize,
    /// What was found and what was expected; never a value from the file.
    pub message: String,
}

impl ParseError {
    fn at(file: &Path, text: &[u8], offset: usize, message: String) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    }
}

/// Parses one legacy credential file. `file` is only used in messages.
///
/// # Errors
///
/// A [`ParseError`] naming line, column and what was expected when the input
/// is larger than [`MAX_SOURCE_BYTES`], empty, not UTF-8, not JSON or
/// truncated, not an object, of no known format, has a known field of the
/// wrong type, an unknown Codex `auth_mode`, or an `auth_mode` naming a
/// credential the file does not hold.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<ParsedSource, ParseError> {
    if bytes.len() > MAX_SOURCE_BYTES {
        let message = format!(
            "file is {} bytes, larger than the {MAX_SOURCE_BYTES} bytes a credential file can be; \
             check that this is the right file",
            bytes.len()
        );
        return Err(ParseError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message,
        });
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let (mut doc, end) = read_document(file, text)?;
    let mut r = Reader {
        file,
        text: &text[..end],
        notes: Vec::new(),
    };
    let Value::Object(root) = &mut doc.0 else {
        let message = format!(
            "expected a JSON object at the top level, found {}",
            kind(&doc.0)
        );
        return Err(r.error(&[], message));
    };
    let format = detect(root).ok_or_else(|| r.error(&[], UNKNOWN_FORMAT.to_owned()))?;
    let mut source = ParsedSource {
        format,
        accounts: Vec::new(),
        preferences: None,
        last_selection: None,
        notes: Vec::new(),
        holds_other_data: false,
    };
    match format {
        LegacyFormat::CodexAuth => {
            source.accounts.extend(r.openai(root)?);
            r.unknown_fields(&[], root, &CODEX_KEYS);
        }
        LegacyFormat::ExtendedAuth => {
            source.accounts.extend(r.openai(root)?);
            if let Some(claude) = r.object(root, &[], "claude_auth")? {
                source.accounts.extend(r.extended_claude(claude)?);
            }
            source.preferences = r.preferences(root)?;
            source.last_selection = r.last_selection(root)?;
            r.unknown_fields(&[], root, &[&CODEX_KEYS[..], &EXTENDED_KEYS[..]].concat());
        }
        LegacyFormat::ClaudeAuth => {
            source.accounts.extend(r.claude_auth(root)?);
            r.unknown_fields(&[], root, &CLAUDE_AUTH_KEYS);
        }
        LegacyFormat::ClaudeCodeCredentials => {
            source.accounts.extend(r.claude_code(root)?);
            for key in root.keys().filter(|k| k.as_str() != CLAUDE_CODE_KEY) {
                source.holds_other_data = true;
                r.notes.push(format!(
                    "top-level key `{}` is not imported and was left untouched in the file",
                    shown_name(key)
                ));
            }
        }
    }
    if source.accounts.is_empty() {
        r.notes
            .push("no credential in this file (logged out?)".to_owned());
    }
    let trailing = trailing_bytes(&text[end..]);
    if trailing > 0 {
        r.notes.push(format!(
            "{trailing} trailing bytes after the JSON document ignored"
        ));
    }
    source.notes = r.notes;
    Ok(source)
}

const CODEX_KEYS: [&str; 4] = ["OPENAI_API_KEY", "tokens", "auth_mode", "last_refresh"];
const EXTENDED_KEYS: [&str; 3] = [
    "claude_auth",
    "provider_preferences",
    "last_provider_selection",
];
const CLAUDE_AUTH_KEYS: [&str; 5] = [
    "ANTHROPIC_API_KEY",
    "oauth_tokens",
    "subscription_info",
    "last_refresh",
    "preferred_mode",
];
const CLAUDE_CODE_KEY: &str = "claudeAiOauth";
const UNKNOWN_FORMAT: &str = "not a known credential file: expected a JSON object with \
    `OPENAI_API_KEY`, `tokens` or `auth_mode` (Codex auth.json), `claude_auth` (extended \
    auth.json), `ANTHROPIC_API_KEY` or `oauth_tokens` (claude_auth.json), or `claudeAiOauth` \
    (Claude Code .credentials.json)";

fn detect(root: &Map<String, Value>) -> Option<LegacyFormat> {
    let has_any = |keys: &[&str]| keys.iter().any(|k| root.contains_key(*k));
    if has_any(&EXTENDED_KEYS) {
        Some(LegacyFormat::ExtendedAuth)
    } else if has_any(&CODEX_KEYS[..3]) {
        Some(LegacyFormat::CodexAuth)
    } else if root.contains_key(CLAUDE_CODE_KEY) {
        Some(LegacyFormat::ClaudeCodeCredentials)
    } else if has_any(&[
        "ANTHROPIC_API_KEY",
        "oauth_tokens",
        "subscription_info",
        "preferred_mode",
    ]) {
        Some(LegacyFormat::ClaudeAuth)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Formats

/// The ChatGPT tokens of a Codex `auth.json`.
struct CodexTokens {
    id_token: Option<SecretString>,
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    account_id: Option<String>,
}

impl Reader<'_> {
    /// The OpenAI account of a Codex or extended `auth.json`, if it holds one.
    fn openai(
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

    /// `claude_auth.json`: an API-key account and/or a subscription account.
    fn claude_auth(
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
    fn extended_claude(
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
    fn claude_code(
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

    fn preferences(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Option<ProviderPreferences>, ParseError> {
        const P: &[Seg] = &[Seg::Key("provider_preferences")];
        let Some(p) = self.object(root, &[], "provider_preferences")? else {
            return Ok(None);
        };
        let prefs = ProviderPreferences {
            preferred_provider: self.string(p, P, "preferred_provider")?,
            fallback_enabled: self.boolean(p, P, "fallback_enabled")?,
            selection_strategy: self.string(p, P, "selection_strategy")?,
            cost_optimization: self.boolean(p, P, "cost_optimization")?,
        };
        let known = [
            "preferred_provider",
            "fallback_enabled",
            "selection_strategy",
            "cost_optimization",
        ];
        self.unknown_fields(P, p, &known);
        Ok(Some(prefs))
    }

    fn last_selection(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Option<LastSelection>, ParseError> {
        const P: &[Seg] = &[Seg::Key("last_provider_selection")];
        let Some(s) = self.object(root, &[], "last_provider_selection")? else {
            return Ok(None);
        };
        let selection = LastSelection {
            provider: self.string(s, P, "last_used_provider")?,
            reason: self.string(s, P, "selection_reason")?,
            timestamp: self.datetime(s, P, "timestamp")?,
            task_context: self.string(s, P, "task_context")?,
        };
        let known = [
            "last_used_provider",
            "selection_reason",
            "timestamp",
            "task_context",
        ];
        self.unknown_fields(P, s, &known);
        Ok(Some(selection))
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

#[cfg(test)]
mod fuzz;
#[cfg(test)]
pub(crate) mod tests;
