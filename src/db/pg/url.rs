//! `DatabaseUrl`: a `postgres://` URL held as a secret, shown without its
//! password, with the transport security decided once at parse time.
//!
//! The driver's own options type (`PgConnectOptions`) derives a `Debug` that
//! prints the password, so it is built only on the way into a connection
//! (`DatabaseUrl::connect_options`) and never stored.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ::url::Url;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::PgError;

/// Prepared statements kept per connection (the store has ~130 SQL texts).
const STATEMENT_CACHE: usize = 256;

/// Session settings sent with the startup message.
const SESSION_OPTIONS: [(&str, &str); 2] = [
    // = the SQLite busy timeout: a writer waits this long for the vault lock.
    ("lock_timeout", "60s"),
    // A host that vanished mid-transaction cannot hold the vault lock forever.
    ("idle_in_transaction_session_timeout", "60s"),
];

/// The names of the settings a startup `options` string sets, as the
/// server reads them: words split on whitespace (`\` escapes a character),
/// each setting given as `-c name=value`, `-cname=value` or
/// `--name=value`; names compared lowercase with `-` as `_`.
fn settings_named(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut names = Vec::new();
    let mut words = words.iter().map(String::as_str);
    while let Some(w) = words.next() {
        let setting = match w {
            "-c" => words.next(),
            w => w.strip_prefix("--").or_else(|| w.strip_prefix("-c")),
        };
        if let Some((name, _)) = setting.and_then(|s| s.split_once('=')) {
            names.push(name.to_lowercase().replace('-', "_"));
        }
    }
    names
}

/// Query parameters the driver understands; anything else is refused (the
/// driver would log an unknown parameter together with its value).
const KNOWN_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// A PostgreSQL connection URL (libpq form,
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]`).
///
/// `Display` and `Debug` show it with any password (`user:pw@` and
/// `?password=`) removed. A TCP host without `sslmode` gets `verify-full`;
/// a Unix-socket host (`?host=/dir` or a percent-encoded path as the host)
/// uses no TLS.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// The URL exactly as given.
    url: SecretString,
    /// The passwords it carries, raw and percent-decoded, to scrub them from
    /// any message the driver produces.
    passwords: Vec<SecretString>,
    /// The URL without passwords.
    shown: String,
    /// The transport security to ask the driver for.
    ssl_mode: PgSslMode,
    /// How long opening the vault keeps retrying while the server is
    /// (re)starting or refuses connections.
    retry: Duration,
}

impl DatabaseUrl {
    /// Parses a `postgres://` / `postgresql://` URL (libpq form). Errors name
    /// the problem, never echo the password.
    ///
    /// # Errors
    /// [`PgError::Other`] when the URL is malformed, has another scheme, names
    /// no user or no server, has an unknown parameter, or asks for TLS over a
    /// Unix socket.
    pub fn parse(url: &str) -> Result<Self, PgError> {
        const FORM: &str = "expected postgres://USER@HOST/DATABASE";
        let bad = |what: String| PgError::Other(format!("the database URL {what}"));
        let parsed = Url::parse(url).map_err(|e| bad(format!("is not valid ({e}); {FORM}")))?;
        if !Self::is_postgres(url) {
            return Err(bad(format!("has scheme '{}'; {FORM}", parsed.scheme())));
        }
        let mut passwords: Vec<SecretString> = Vec::new();
        if let Some(raw) = parsed.password() {
            passwords.push(SecretString::from(raw));
            passwords.push(SecretString::from(decode(raw).map_err(|()| {
                bad("has a password that is not valid percent-encoded UTF-8".into())
            })?));
        }
        let mut user = decode(parsed.username()).unwrap_or_default();
        let mut host = parsed
            .host_str()
            .map(decode)
            .transpose()
            .map_err(|()| bad("has a host that is not valid percent-encoded UTF-8".into()))?;
        let mut asked_mode = None;
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "password" => passwords.push(SecretString::from(value.into_owned())),
                "user" => user = value.into_owned(),
                "host" | "hostaddr" => host = Some(value.into_owned()),
                "sslmode" | "ssl-mode" => asked_mode = Some(ssl_mode(&value).map_err(bad)?),
                k if KNOWN_PARAMS.contains(&k) => {}
                k => {
                    return Err(bad(format!(
                        "has the unknown parameter '{k}' (known: {})",
                        KNOWN_PARAMS.join(", ")
                    )));
                }
            }
        }
        if user.is_empty() {
            return Err(bad(format!(
                "names no user (the driver would guess one); {FORM}"
            )));
        }
        let host = host.filter(|h| !h.is_empty()).ok_or_else(|| {
            bad(format!(
                "names no server; {FORM} or postgres://USER@localhost/DATABASE?host=/socket/dir"
            ))
        })?;
        let ssl_mode = if host.starts_with('/') {
            match asked_mode {
                None | Some(PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer) => {
                    PgSslMode::Disable
                }
                Some(_) => {
                    return Err(bad(format!(
                        "asks for TLS over the Unix socket in {host}, where PostgreSQL offers none; \
                         remove sslmode or connect over TCP"
                    )));
                }
            }
        } else {
            asked_mode.unwrap_or(PgSslMode::VerifyFull)
        };
        Ok(Self {
            url: SecretString::from(url),
            passwords,
            shown: without_passwords(parsed),
            ssl_mode,
            retry: super::RETRY_BUDGET,
        })
    }

    /// This URL, opening with a retry budget of `retry` instead of
    /// [`RETRY_BUDGET`](super::RETRY_BUDGET) (`AUTHVAULT_DATABASE_RETRY_SECS`).
    #[must_use]
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry = retry;
        self
    }

    /// How long opening the vault keeps retrying a server that is starting,
    /// restarting or refusing connections.
    #[must_use]
    pub fn retry(&self) -> Duration {
        self.retry
    }

    /// True for strings that select PostgreSQL (scheme postgres/postgresql).
    #[must_use]
    pub fn is_postgres(s: &str) -> bool {
        let lower = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
        lower("postgres://") || lower("postgresql://")
    }

    /// The driver's options for this URL plus authvault's session settings,
    /// except those the URL's `options` (or `PGOPTIONS`) set itself: a
    /// `-c lock_timeout=5s` there is the user's choice and wins.
    /// The result prints the password in its `Debug`: use it at once, never
    /// store it.
    pub(super) fn connect_options(&self) -> Result<PgConnectOptions, PgError> {
        let options = PgConnectOptions::from_str(self.url.expose_secret()).map_err(|e| {
            PgError::Other(self.scrub(&format!("the database URL {self} is not valid: {e}")))
        })?;
        let given = settings_named(options.get_options().unwrap_or_default());
        let ours = SESSION_OPTIONS
            .into_iter()
            .filter(|(name, _)| !given.iter().any(|g| g == name));
        Ok(options
            .ssl_mode(self.ssl_mode)
            .statement_cache_capacity(STATEMENT_CACHE)
            .application_name("authvault")
            .options(ours)
            .disable_statement_logging())
    }

    /// `text` with every password of this URL replaced: for messages that
    /// come from the driver or the server.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for password in &self.passwords {
            let password = password.expose_secret();
            if !password.is_empty() {
                text = text.replace(password, "[REDACTED]");
            }
        }
        text
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}

/// Percent-decodes one URL component.
fn decode(s: &str) -> Result<String, ()> {
    percent_decode_str(s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| ())
}

/// libpq's `sslmode` names.
fn ssl_mode(value: &str) -> Result<PgSslMode, String> {
    Ok(match value {
        "disable" => PgSslMode::Disable,
        "allow" => PgSslMode::Allow,
        "prefer" => PgSslMode::Prefer,
        "require" => PgSslMode::Require,
        "verify-ca" => PgSslMode::VerifyCa,
        "verify-full" => PgSslMode::VerifyFull,
        other => {
            return Err(format!(
                "has sslmode '{other}'; use disable, allow, prefer, require, verify-ca or verify-full"
            ));
        }
    })
}

/// The URL with `user:pw@` reduced to `user@` and `password=` dropped.
fn without_passwords(mut url: Url) -> String {
    // Cannot fail: the URL has a host (checked before) or a password to remove.
    let _ = url.set_password(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "s3cr3t-pa55";

    fn parse(url: &str) -> DatabaseUrl {
        DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn refusal(url: &str) -> String {
        match DatabaseUrl::parse(url) {
            Ok(u) => panic!("{u} was accepted"),
            Err(e) => format!("{e} {e:?}"),
        }
    }

    #[test]
    fn display_and_debug_drop_the_password_of_user_info_and_query() {
        let cases = [
            (
                format!("postgres://av:{PW}@db.example.com:5433/vault"),
                "postgres://av@db.example.com:5433/vault",
            ),
            (
                format!("postgresql://av@db.example.com/vault?password={PW}&sslmode=require"),
                "postgresql://av@db.example.com/vault?sslmode=require",
            ),
            (
                format!("postgres://av:{PW}@localhost/vault?host=/run/pg&password={PW}"),
                "postgres://av@localhost/vault?host=%2Frun%2Fpg",
            ),
        ];
        for (url, shown) in cases {
            let parsed = parse(&url);
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(format!("{parsed:?}"), format!("DatabaseUrl({shown:?})"));
        }
    }

    #[test]
    fn tcp_hosts_default_to_verify_full_and_sockets_to_no_tls() {
        let cases = [
            ("postgres://av@db.example.com/v", PgSslMode::VerifyFull),
            ("postgres://av@127.0.0.1/v", PgSslMode::VerifyFull),
            (
                "postgres://av@db.example.com/v?sslmode=require",
                PgSslMode::Require,
            ),
            (
                "postgres://av@db.example.com/v?sslmode=disable",
                PgSslMode::Disable,
            ),
            ("postgres://av@x/v?hostaddr=10.0.0.1", PgSslMode::VerifyFull),
            ("postgres://av@localhost/v?host=/run/pg", PgSslMode::Disable),
            ("postgres://av@%2Frun%2Fpg/v", PgSslMode::Disable),
            (
                "postgres://av@localhost/v?host=/run/pg&sslmode=prefer",
                PgSslMode::Disable,
            ),
        ];
        for (url, mode) in cases {
            assert_eq!(
                format!("{:?}", parse(url).ssl_mode),
                format!("{mode:?}"),
                "{url}"
            );
        }
    }

    #[test]
    fn refusals_say_what_is_wrong_and_never_show_the_password() {
        let cases = [
            (
                format!("postgres://:{PW}@db.example.com/v"),
                "names no user",
            ),
            (
                format!("postgres://db.example.com/v?password={PW}"),
                "names no user",
            ),
            (
                format!("postgres:///v?user=av&password={PW}"),
                "names no server",
            ),
            (
                format!("mysql://av:{PW}@db.example.com/v"),
                "has scheme 'mysql'",
            ),
            (
                format!("postgres://av:{PW}@h/v?sslmode=on"),
                "has sslmode 'on'",
            ),
            (
                format!("postgres://av:{PW}@h/v?passwd={PW}"),
                "unknown parameter 'passwd'",
            ),
            (
                format!("postgres://av:{PW}@h/v?host=/run/pg&sslmode=verify-full"),
                "asks for TLS over the Unix socket in /run/pg",
            ),
            (format!("postgres://av:{PW}@h:99999/v"), "is not valid"),
        ];
        for (url, expected) in cases {
            let message = refusal(&url);
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains(PW), "{url}: {message}");
        }
    }

    #[test]
    fn a_user_given_as_a_parameter_counts() {
        assert_eq!(
            parse("postgres://db.example.com/v?user=av").to_string(),
            "postgres://db.example.com/v?user=av"
        );
    }

    #[test]
    fn driver_options_carry_the_session_settings_and_the_tls_choice() {
        let options = parse("postgres://av:pw@db.example.com/v?sslrootcert=/etc/ca.pem")
            .connect_options()
            .unwrap();
        assert_eq!(options.get_username(), "av");
        assert_eq!(options.get_host(), "db.example.com");
        assert_eq!(options.get_application_name(), Some("authvault"));
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        let settings = options.get_options().unwrap_or_default();
        assert!(
            settings.contains("lock_timeout=60s")
                && settings.contains("idle_in_transaction_session_timeout=60s"),
            "{settings}"
        );
    }

    #[test]
    fn a_session_setting_given_in_the_url_wins_over_the_default() {
        let settings = |url: &str| {
            parse(url)
                .connect_options()
                .unwrap()
                .get_options()
                .unwrap_or_default()
                .to_owned()
        };
        for given in ["-c%20lock_timeout%3D2s", "--Lock-Timeout%3D2s"] {
            let s = settings(&format!("postgres://av@h/v?options={given}"));
            assert!(
                !s.contains("lock_timeout=60s")
                    && s.contains("idle_in_transaction_session_timeout=60s"),
                "{s}"
            );
        }
        // A setting that only ends alike leaves ours in place.
        let s = settings("postgres://av@h/v?options=-c%20deadlock_timeout%3D2s");
        assert!(s.contains("-c lock_timeout=60s"), "{s}");
    }

    #[test]
    fn settings_are_named_in_every_form_the_server_reads_and_only_those() {
        assert_eq!(
            settings_named(
                "-c lock_timeout=1s -cSearch_Path=a\\ b --idle-in-transaction-session-timeout=5s"
            ),
            [
                "lock_timeout",
                "search_path",
                "idle_in_transaction_session_timeout"
            ]
        );
        // Another setting whose name ends alike is not ours.
        assert_eq!(
            settings_named("-c deadlock_timeout=1s"),
            ["deadlock_timeout"]
        );
        assert!(settings_named("").is_empty());
    }

    #[test]
    fn scrub_removes_raw_and_decoded_passwords() {
        let url = parse("postgres://av:p%40ss-word@h/v?password=other-one");
        assert_eq!(
            url.scrub("a p%40ss-word b p@ss-word c other-one"),
            "a [REDACTED] b [REDACTED] c [REDACTED]"
        );
    }

    #[test]
    fn is_postgres_looks_at_the_scheme_only() {
        for (s, expected) in [
            ("postgres://h/v", true),
            ("PostgreSQL://h/v", true),
            ("postgresql:/h", false),
            ("/var/lib/vault.db", false),
            ("postgres", false),
        ] {
            assert_eq!(DatabaseUrl::is_postgres(s), expected, "{s}");
        }
    }
}
