//! Configuration: the one place that reads the process environment.
//!
//! Everything below takes its settings as values, so tests pass them directly
//! and never mutate the environment (clippy's `disallowed-methods` enforces
//! this: `std::env::var` is allowed only here).

use std::path::PathBuf;

use secrecy::SecretString;

/// Environment variable naming the vault file.
pub const ENV_PATH: &str = "AUTHVAULT_PATH";
/// Environment variable holding the passphrase for non-interactive use.
pub const ENV_PASSPHRASE: &str = "AUTHVAULT_PASSPHRASE";
/// Environment variable holding the new passphrase for `vault passphrase add|change`.
pub const ENV_NEW_PASSPHRASE: &str = "AUTHVAULT_NEW_PASSPHRASE";
/// Environment variable naming the agent on whose behalf the process acts.
pub const ENV_AGENT_ID: &str = "AUTHVAULT_AGENT_ID";

/// Settings gathered from flags and the environment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The vault file.
    pub vault_path: PathBuf,
    /// Passphrase from `AUTHVAULT_PASSPHRASE`.
    pub passphrase: Option<SecretString>,
    /// New passphrase from `AUTHVAULT_NEW_PASSPHRASE`.
    pub new_passphrase: Option<SecretString>,
    /// Agent id from `AUTHVAULT_AGENT_ID`.
    pub agent_id: Option<String>,
    /// Log filter from `RUST_LOG` (`tracing` directives), e.g. `trace`.
    pub log_filter: Option<String>,
    /// Codex's home: `CODEX_HOME`, else `~/.codex`.
    pub codex_home: PathBuf,
    /// Claude Code's configuration directory: `CLAUDE_CONFIG_DIR`, else `~/.claude`.
    pub claude_config_dir: PathBuf,
}

impl Config {
    /// Reads the environment; `vault_path` (from `--vault`) wins over
    /// `AUTHVAULT_PATH`, which wins over [`default_vault_path`].
    #[must_use]
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the environment
    pub fn from_env(vault_path: Option<PathBuf>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            vault_path: vault_path
                .or_else(|| var(ENV_PATH).map(PathBuf::from))
                .unwrap_or_else(default_vault_path),
            passphrase: var(ENV_PASSPHRASE).map(SecretString::from),
            new_passphrase: var(ENV_NEW_PASSPHRASE).map(SecretString::from),
            agent_id: var(ENV_AGENT_ID),
            log_filter: var("RUST_LOG"),
            codex_home: var("CODEX_HOME").map_or_else(|| home().join(".codex"), PathBuf::from),
            claude_config_dir: var("CLAUDE_CONFIG_DIR")
                .map_or_else(|| home().join(".claude"), PathBuf::from),
        }
    }
}

fn home() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("."))
}

impl Config {
    /// The legacy credential files `vault migrate` reads by default: Codex's
    /// `auth.json` and `claude_auth.json`, and Claude Code's `.credentials.json`.
    #[must_use]
    pub fn legacy_sources(&self) -> Vec<PathBuf> {
        vec![
            self.codex_home.join("auth.json"),
            self.codex_home.join("claude_auth.json"),
            self.claude_config_dir.join(".credentials.json"),
        ]
    }
}

/// `<platform data dir>/authvault/vault.db` (`~/.local/share/authvault/vault.db`
/// on Linux), or `./authvault/vault.db` when the platform has none.
#[must_use]
pub fn default_vault_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("authvault")
        .join("vault.db")
}
