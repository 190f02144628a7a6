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
//! [`SecretString`](secrecy::SecretString)s without a copy.
//!
//! Input is capped at [`MAX_SOURCE_BYTES`] and `serde_json`'s recursion limit
//! (on by default: at most 127 levels; a test checks it) bounds nesting, so
//! memory and stack stay bounded for any input.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Credential, CredentialKind, Identity, Provider};

mod claude;
mod codex;
mod document;
mod settings;
mod text;

use document::{Reader, kind, shown_name};
use text::{line_column, read_document, trailing_bytes};

/// Largest source file [`parse`] reads; a credential file is a few KiB.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

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

#[cfg(test)]
mod fuzz;
#[cfg(test)]
pub(crate) mod tests;
