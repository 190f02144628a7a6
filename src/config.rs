//! Configuration: the one place that reads the process environment.
//!
//! Everything below takes its settings as values, so tests pass them directly
//! and never mutate the environment (clippy's `disallowed-methods` enforces
//! this: `std::env::var` is allowed only here).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use crate::db::Location;
use crate::db::pg::DatabaseUrl;

pub use crate::endpoints::{ENDPOINT_VARS, Endpoints};

/// Environment variable naming the vault file (or, as `--vault`, a
/// PostgreSQL URL).
pub const ENV_PATH: &str = "AUTHVAULT_PATH";
/// Environment variable selecting a PostgreSQL vault by URL (below
/// `--vault` and `AUTHVAULT_PATH`).
pub const ENV_DATABASE_URL: &str = "AUTHVAULT_DATABASE_URL";
/// Environment variable naming the directory for local state of a
/// PostgreSQL vault.
pub const ENV_STATE_DIR: &str = "AUTHVAULT_STATE_DIR";
/// Environment variable: how many seconds opening a PostgreSQL vault keeps
/// retrying a server that is starting or refusing connections (default 30).
pub const ENV_DATABASE_RETRY_SECS: &str = "AUTHVAULT_DATABASE_RETRY_SECS";
/// Environment variable holding the passphrase for non-interactive use.
pub const ENV_PASSPHRASE: &str = "AUTHVAULT_PASSPHRASE";
/// Environment variable holding the new passphrase for `vault passphrase add|change`.
pub const ENV_NEW_PASSPHRASE: &str = "AUTHVAULT_NEW_PASSPHRASE";
/// Environment variable naming the agent on whose behalf the process acts.
pub const ENV_AGENT_ID: &str = "AUTHVAULT_AGENT_ID";
/// Environment variable naming this host (default: the node name). It
/// names this host's keyring unlock method row in a vault many hosts share.
pub const ENV_HOST: &str = "AUTHVAULT_HOST";

/// Names of the `AUTHVAULT_*` variables set in this process's environment:
/// what a child process (the browser opener) must not inherit, since they
/// include the passphrase and the database URL (which may hold a password).
#[must_use]
#[allow(clippy::disallowed_methods)] // the one place allowed to read the environment
pub fn own_variables() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| is_own_variable(name))
        .collect()
}

/// Whether `name` is one of authvault's variables (`AUTHVAULT_*`).
#[must_use]
pub fn is_own_variable(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"AUTHVAULT_")
}

/// A setting that cannot be used; the message names where it came from and
/// never holds a database password.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The flag or variable, e.g. `--vault` or `AUTHVAULT_DATABASE_URL`.
    pub source_name: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Where the vault is: `--vault` (a `postgres://`/`postgresql://` URL or a
/// path), else `AUTHVAULT_PATH` (read the same way), else
/// `AUTHVAULT_DATABASE_URL` (a URL only), else [`default_vault_path`].
///
/// # Errors
/// A URL that does not parse, or a non-URL in `AUTHVAULT_DATABASE_URL`;
/// the error names the flag or variable, never the password.
pub fn choose_location(
    flag: Option<&str>,
    path_var: Option<&str>,
    url_var: Option<&str>,
) -> Result<Location, ConfigError> {
    let parse = |source_name, text: &str| {
        if !DatabaseUrl::is_postgres(text) {
            return Ok(Location::File(PathBuf::from(text)));
        }
        DatabaseUrl::parse(text)
            .map(Location::Postgres)
            .map_err(|e| ConfigError {
                source_name,
                message: e.to_string(),
            })
    };
    if let Some(text) = flag {
        return parse("--vault", text);
    }
    if let Some(text) = path_var {
        return parse(ENV_PATH, text);
    }
    if let Some(text) = url_var {
        if !DatabaseUrl::is_postgres(text) {
            return Err(ConfigError {
                source_name: ENV_DATABASE_URL,
                message: "is not a postgres:// or postgresql:// URL (a vault file goes in \
                          AUTHVAULT_PATH or --vault)"
                    .into(),
            });
        }
        return parse(ENV_DATABASE_URL, text);
    }
    Ok(Location::File(default_vault_path()))
}

/// The directory for local state (Codex homes of `vault exec`, the browser
/// login page): the vault file's directory; for PostgreSQL, `state_var`
/// (`AUTHVAULT_STATE_DIR`) when set, else `<platform data dir>/authvault/state`.
#[must_use]
pub fn choose_state_dir(location: &Location, state_var: Option<&str>) -> PathBuf {
    match location {
        Location::File(path) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        },
        Location::Postgres(_) => state_var.map_or_else(
            || {
                dirs::data_dir()
                    .unwrap_or_else(home)
                    .join("authvault")
                    .join("state")
            },
            PathBuf::from,
        ),
    }
}

/// Settings gathered from flags and the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the vault is: a file or a PostgreSQL database.
    pub location: Location,
    /// The directory for local state: Codex homes of `vault exec`, the
    /// browser login page. See [`choose_state_dir`]; [`Config::local_state`]
    /// creates it.
    pub state_dir: PathBuf,
    /// Passphrase from `AUTHVAULT_PASSPHRASE`.
    pub passphrase: Option<SecretString>,
    /// New passphrase from `AUTHVAULT_NEW_PASSPHRASE`.
    pub new_passphrase: Option<SecretString>,
    /// Agent id from `AUTHVAULT_AGENT_ID`.
    pub agent_id: Option<String>,
    /// This host: `AUTHVAULT_HOST`, else the node name
    /// ([`crate::process::node_name`]). Names this host's keyring unlock
    /// method; the CLI makes it the process's ([`crate::process::set_host`]).
    pub host: String,
    /// Log filter from `RUST_LOG` (`tracing` directives), e.g. `trace`.
    pub log_filter: Option<String>,
    /// Codex's home: `CODEX_HOME`, else `~/.codex`.
    pub codex_home: PathBuf,
    /// Claude Code's configuration directory: `CLAUDE_CONFIG_DIR`, else `~/.claude`.
    pub claude_config_dir: PathBuf,
    /// Where `vault usage import claude-code` looks by default (ccusage's
    /// rules): `CLAUDE_CONFIG_DIR` split on commas, `~` expanded, when set;
    /// else `${XDG_CONFIG_HOME:-~/.config}/claude` and `~/.claude`.
    pub claude_usage_roots: Vec<PathBuf>,
    /// Provider endpoints: defaults, then the config file, then the environment.
    pub endpoints: Endpoints,
    /// A configuration file that could not be used (unreadable, invalid, or
    /// writable by others): commands that reach a provider refuse to run.
    pub config_error: Option<String>,
    /// How long a refresh lease lasts (`AUTHVAULT_REFRESH_LEASE_SECS`, default 30 s).
    pub refresh_lease: Duration,
    /// Whether a graphical session exists to open a browser in.
    pub has_display: bool,
    /// `NO_COLOR` is set (to anything but the empty string): nothing the
    /// binary draws is coloured (<https://no-color.org>).
    pub no_color: bool,
}

impl Config {
    /// Reads the environment; `vault` (from `--vault`) wins over
    /// `AUTHVAULT_PATH`, then `AUTHVAULT_DATABASE_URL`, then
    /// [`default_vault_path`] (see [`choose_location`]).
    ///
    /// # Errors
    /// A vault location that cannot be used (see [`choose_location`]).
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the environment
    pub fn from_env(vault: Option<&str>) -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut location = choose_location(
            vault,
            var(ENV_PATH).as_deref(),
            var(ENV_DATABASE_URL).as_deref(),
        )?;
        if let (Location::Postgres(url), Some(secs)) = (
            &mut location,
            var(ENV_DATABASE_RETRY_SECS).and_then(|s| s.parse().ok()),
        ) {
            *url = url.clone().with_retry(Duration::from_secs(secs));
        }
        let state_dir = choose_state_dir(&location, var(ENV_STATE_DIR).as_deref());
        let mut config = Self {
            location,
            state_dir,
            passphrase: var(ENV_PASSPHRASE).map(SecretString::from),
            new_passphrase: var(ENV_NEW_PASSPHRASE).map(SecretString::from),
            agent_id: var(ENV_AGENT_ID),
            host: var(ENV_HOST).unwrap_or_else(crate::process::node_name),
            log_filter: var("RUST_LOG"),
            codex_home: var("CODEX_HOME").map_or_else(|| home().join(".codex"), PathBuf::from),
            claude_config_dir: var("CLAUDE_CONFIG_DIR")
                .map_or_else(|| home().join(".claude"), PathBuf::from),
            claude_usage_roots: var("CLAUDE_CONFIG_DIR").map_or_else(
                || {
                    let xdg = var("XDG_CONFIG_HOME")
                        .map_or_else(|| home().join(".config"), PathBuf::from);
                    vec![xdg.join("claude"), home().join(".claude")]
                },
                |list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| match p.strip_prefix('~') {
                            Some(rest) => home().join(rest.trim_start_matches('/')),
                            None => PathBuf::from(p),
                        })
                        .collect()
                },
            ),
            endpoints: Endpoints::default(),
            config_error: None,
            refresh_lease: var("AUTHVAULT_REFRESH_LEASE_SECS")
                .and_then(|s| s.parse().ok())
                .map_or(Duration::from_secs(30), Duration::from_secs),
            has_display: var("DISPLAY").is_some() || var("WAYLAND_DISPLAY").is_some(),
            no_color: var("NO_COLOR").is_some(),
        };
        let file = var("AUTHVAULT_CONFIG").map_or_else(
            || {
                dirs::config_dir()
                    .unwrap_or_else(home)
                    .join("authvault")
                    .join("config.json")
            },
            PathBuf::from,
        );
        let base = match Endpoints::from_file(&file) {
            Ok(found) => found.unwrap_or_default(),
            Err(e) => {
                config.config_error = Some(e);
                Endpoints::default()
            }
        };
        config.endpoints =
            base.with_overrides(ENDPOINT_VARS.iter().filter_map(|n| var(n).map(|v| (*n, v))));
        Ok(config)
    }

    /// The directory for local state, created (0700, with any missing
    /// parent) for a PostgreSQL vault. A file vault's directory is the
    /// vault's own, which exists once the vault does.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn local_state(&self) -> crate::Result<&Path> {
        use std::os::unix::fs::DirBuilderExt as _;
        if matches!(self.location, Location::Postgres(_)) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.state_dir)
                .map_err(crate::Error::io("create directory", &self.state_dir))?;
        }
        Ok(&self.state_dir)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_defaults_then_file_then_variables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        assert_eq!(
            Endpoints::from_file(&file),
            Ok(None),
            "a missing file is no error"
        );
        std::fs::write(
            &file,
            r#"{"endpoints": {"claude_token_url": "http://127.0.0.1:1/token"}}"#,
        )
        .unwrap();
        // Whatever the umask: a group-writable file would be refused.
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let from_file = Endpoints::from_file(&file).unwrap().unwrap();
        assert_eq!(from_file.claude_token_url, "http://127.0.0.1:1/token");
        assert_eq!(
            from_file.openai_token_url,
            Endpoints::default().openai_token_url,
            "others keep their defaults"
        );
        let both = from_file.with_overrides([
            (
                "AUTHVAULT_CLAUDE_TOKEN_URL",
                "http://127.0.0.1:2/token".to_owned(),
            ),
            ("AUTHVAULT_OPENAI_API_URL", "http://127.0.0.1:3/".to_owned()),
            ("UNRELATED", "x".to_owned()),
        ]);
        assert_eq!(both.claude_token_url, "http://127.0.0.1:2/token");
        assert_eq!(
            both.openai_api_url, "http://127.0.0.1:3",
            "trailing slash dropped from bases"
        );
        std::fs::write(&file, r#"{"endpoints": {"claude_tokn_url": "x"}}"#).unwrap();
        let err = Endpoints::from_file(&file).unwrap_err();
        assert!(
            err.contains("config.json") && err.contains("claude_tokn_url"),
            "{err}"
        );
    }

    const PG_URL: &str = "postgres://app:pg-s3cret@db.example/vault";

    #[test]
    fn the_flag_wins_then_authvault_path_then_the_database_url_then_the_default() {
        let chosen = |flag, path, url| choose_location(flag, path, url).unwrap().to_string();
        assert_eq!(
            chosen(Some("/a/flag.db"), Some("/b/env.db"), Some(PG_URL)),
            "/a/flag.db"
        );
        assert_eq!(chosen(None, Some("/b/env.db"), Some(PG_URL)), "/b/env.db");
        let pg = choose_location(None, None, Some(PG_URL)).unwrap();
        assert!(matches!(pg, Location::Postgres(_)), "{pg}");
        assert!(!pg.to_string().contains("pg-s3cret"), "{pg}");
        assert!(matches!(
            choose_location(Some(PG_URL), None, None).unwrap(),
            Location::Postgres(_)
        ));
        assert_eq!(
            choose_location(None, None, None).unwrap().file(),
            Some(default_vault_path().as_path())
        );
    }

    #[test]
    fn a_bad_url_names_its_source_and_never_its_password() {
        let bad = "postgres://app:pg-s3cret@db.example/vault?nonsense=1";
        for (flag, path, url, source) in [
            (Some(bad), None, None, "--vault"),
            (None, Some(bad), None, ENV_PATH),
            (None, None, Some(bad), ENV_DATABASE_URL),
        ] {
            let err = choose_location(flag, path, url).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{source}: ")), "{err}");
            assert!(err.contains("nonsense"), "names the problem: {err}");
            assert!(!err.contains("pg-s3cret"), "{err}");
        }
        let err = choose_location(None, None, Some("/a/file.db"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("AUTHVAULT_DATABASE_URL: ") && err.contains("postgres://"),
            "{err}"
        );
    }

    #[test]
    fn local_state_is_beside_a_file_vault_and_apart_for_postgres() {
        let file = Location::File(PathBuf::from("/srv/vaults/vault.db"));
        assert_eq!(
            choose_state_dir(&file, Some("/ignored")),
            Path::new("/srv/vaults")
        );
        let bare = Location::File(PathBuf::from("vault.db"));
        assert_eq!(choose_state_dir(&bare, None), Path::new("."));
        let pg = Location::parse(PG_URL).unwrap();
        assert_eq!(
            choose_state_dir(&pg, Some("/run/me/av")),
            Path::new("/run/me/av")
        );
        let default = choose_state_dir(&pg, None);
        assert!(
            default.ends_with("authvault/state"),
            "{}",
            default.display()
        );
    }

    #[test]
    fn children_never_inherit_the_database_url_or_the_state_dir() {
        for name in [ENV_DATABASE_URL, ENV_STATE_DIR, "AUTHVAULT_HOST", ENV_PATH] {
            assert!(is_own_variable(name.as_ref()), "{name}");
        }
        assert!(!is_own_variable("DATABASE_URL".as_ref()));
        assert!(!is_own_variable("PGPASSWORD".as_ref()));
    }
}
