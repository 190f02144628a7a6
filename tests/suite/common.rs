//! Shared test fixtures: temp vaults, the `vault` binary, deadlines, a seeded RNG.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use authvault::keys::{KdfCost, MemoryKeyring, Unlock};
use authvault::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};
use authvault::store::{NewAccount, Store};
use secrecy::SecretString;

/// Argon2id at its floor: real code path, test-friendly cost.
pub const FAST_KDF: KdfCost = KdfCost {
    m_kib: 19 * 1024,
    t: 2,
    p: 1,
};
pub const FAST_KDF_ARGS: [&str; 6] = [
    "--kdf-memory-kib",
    "19456",
    "--kdf-iterations",
    "2",
    "--kdf-parallelism",
    "1",
];
pub const PASSPHRASE: &str = "correct horse battery staple";

/// Tests that add or count OS keyring items hold this, so counts are exact.
pub fn keyring_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a test vault lives: a SQLite file, or a PostgreSQL database on the
/// private cluster `scripts/test.sh` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Turns each named `fn scenario(backend: Backend)` of the enclosing module
/// into `mod scenario { #[test] fn sqlite() … #[test] fn postgres() … }`, so
/// test names read `suite::quota::scenario::postgres` and
/// `cargo test --test all postgres` selects the PostgreSQL half.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::suite::common::Backend::Sqlite);
            }

            #[test]
            fn postgres() {
                super::$name($crate::suite::common::Backend::Postgres);
            }
        }
    )+};
}
pub(crate) use on_both_backends;

/// The private cluster's superuser URL (a Unix socket). Missing → the test fails.
#[allow(clippy::disallowed_methods)] // the harness's own variable, not configuration
fn cluster_url() -> String {
    std::env::var("AUTHVAULT_TEST_PG_URL")
        .expect("AUTHVAULT_TEST_PG_URL is not set: run under scripts/test.sh (it starts a private PostgreSQL)")
}

/// A PostgreSQL client program (`psql`, `pg_dump`) of the cluster's
/// binaries, else the one on `PATH`.
#[allow(clippy::disallowed_methods)] // the harness's own variable, not configuration
pub fn pg_program(name: &str) -> PathBuf {
    std::env::var_os("AUTHVAULT_TEST_PGBIN")
        .map(|dir| Path::new(&dir).join(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs one SQL text through `psql` on `url`, stopping at the first error;
/// returns the unaligned, tuples-only output.
fn psql(url: &str, sql: &str) -> String {
    let out = Command::new(pg_program("psql"))
        .args(["-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("spawn psql (install postgresql-client; run under scripts/test.sh)");
    assert!(
        out.status.success(),
        "psql failed ({}) on: {sql}\n{}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

/// A PostgreSQL cluster of a test's own, started and removed by
/// `scripts/pg-cluster.sh` (for tests that stop or restart the server).
pub struct OwnCluster {
    dir: tempfile::TempDir,
    /// The server's port when not the default (it names the socket too).
    port: Option<u16>,
}

impl OwnCluster {
    /// A directory for the cluster; nothing runs until [`OwnCluster::start`].
    pub fn new() -> Self {
        let _ = cluster_url(); // the binaries come from the harness too
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            port: None,
        }
    }

    /// A running cluster.
    pub fn started() -> Self {
        let cluster = Self::new();
        let out = cluster.script("start");
        assert!(out.status.success(), "{}", stderr(&out));
        cluster
    }

    /// A running cluster that also takes connections on 127.0.0.1:`port`,
    /// with TLS only, presenting the certificate chain `cert` (key `key`).
    pub fn started_with_tls(port: u16, cert: &Path, key: &Path) -> Self {
        let mut cluster = Self::new();
        cluster.port = Some(port);
        let port = port.to_string();
        let out = cluster.script_with(
            "start-tls",
            &[port.as_ref(), cert.as_os_str(), key.as_os_str()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        cluster
    }

    /// Runs `scripts/pg-cluster.sh COMMAND DIR`.
    pub fn script(&self, command: &str) -> Output {
        self.script_with(command, &[])
    }

    /// Runs `scripts/pg-cluster.sh COMMAND DIR ARGS…`.
    fn script_with(&self, command: &str, args: &[&OsStr]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster.sh");
        Command::new(script)
            .arg(command)
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/pg-cluster.sh")
    }

    /// An immediate restart: the server drops every connection, recovers
    /// from its WAL as after a crash, and takes connections again.
    pub fn restart(&self) {
        let out = self.script("restart");
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// The superuser URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "postgres://postgres@localhost{port}/postgres?host={}",
            self.dir.path().display()
        )
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

/// A `psql` session on `url` that holds the vault's write lock (the
/// advisory key every store write transaction takes first) until dropped.
pub struct LockHolder {
    psql: Child,
}

impl LockHolder {
    /// Takes the lock in the schema `url` selects; returns once it is held.
    pub fn take(url: &str) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let mut psql = Command::new(pg_program("psql"))
            .args(["-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn psql");
        writeln!(
            psql.stdin.as_mut().expect("stdin"),
            "SELECT pg_advisory_lock(1096111700, hashtext(coalesce(current_schema(), '')));
             SELECT 'held';"
        )
        .expect("write to psql");
        let mut lines = BufReader::new(psql.stdout.take().expect("stdout")).lines();
        assert!(
            lines.any(|l| l.expect("psql output") == "held"),
            "psql never took the lock"
        );
        Self { psql }
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        // End of input: psql disconnects, and the server releases the lock.
        drop(self.psql.stdin.take());
        let _ = self.psql.wait();
    }
}

/// A PostgreSQL database of its own on a cluster.
struct PgDatabase {
    name: String,
    url: String,
    cluster: String,
}

impl PgDatabase {
    /// `CREATE DATABASE av_<16 hex>` on the shared cluster, empty, or a copy
    /// of `template`.
    fn create(template: Option<&PgDatabase>) -> Self {
        Self::create_on(cluster_url(), template)
    }

    /// As [`PgDatabase::create`], on the cluster whose superuser URL is `cluster`.
    fn create_on(cluster: String, template: Option<&PgDatabase>) -> Self {
        let mut b = [0u8; 8];
        authvault::crypto::fill_random(&mut b).expect("random");
        let name = format!("av_{:016x}", u64::from_le_bytes(b));
        let mut sql = format!("CREATE DATABASE {name}");
        if let Some(t) = template {
            write!(sql, " TEMPLATE {}", t.name).expect("write");
        }
        psql(&cluster, &sql);
        let mut url = url::Url::parse(&cluster).expect("AUTHVAULT_TEST_PG_URL is a URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
            cluster,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new(pg_program("psql"))
            .args(["-X", "-Atq", "-d", &self.cluster, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .stdin(Stdio::null())
            .output();
    }
}

/// A vault in a fresh private temp directory: a SQLite file in it, or a
/// fresh PostgreSQL database with the directory as its local state.
pub struct TempVault {
    /// The directory lives as long as the vault; for PostgreSQL it holds the
    /// local state.
    dir: tempfile::TempDir,
    /// The SQLite vault file (SQLite only: for PostgreSQL nothing is there).
    pub path: PathBuf,
    /// The database, on PostgreSQL; dropped with the vault.
    pg: Option<PgDatabase>,
}

impl TempVault {
    /// A SQLite vault.
    pub fn new() -> Self {
        Self::on(Backend::Sqlite)
    }

    /// A vault on `backend`: nothing is created until `vault init` (the
    /// PostgreSQL database exists, empty).
    pub fn on(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault").join("vault.db");
        let pg = (backend == Backend::Postgres).then(|| PgDatabase::create(None));
        Self { dir, path, pg }
    }

    /// A vault in a fresh database on `cluster` (a cluster of the test's own).
    pub fn on_cluster(cluster: &OwnCluster) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault").join("vault.db");
        let pg = Some(PgDatabase::create_on(cluster.url(), None));
        Self { dir, path, pg }
    }

    /// What `--vault` names: the file path, or the database URL.
    pub fn location(&self) -> &OsStr {
        match &self.pg {
            Some(db) => OsStr::new(&db.url),
            None => self.path.as_os_str(),
        }
    }

    /// A separate vault holding a copy of this one's database as it is now
    /// (no `vault` process may be running on it).
    pub fn copy(&self) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault").join("vault.db");
        let pg = self.pg.as_ref().map(|db| PgDatabase::create(Some(db)));
        if pg.is_none() {
            std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
                .create(path.parent().expect("vault dir"))
                .expect("vault dir");
            fs::copy(&self.path, &path).expect("copy vault file");
        }
        Self { dir, path, pg }
    }

    /// `vault --vault <location> ARGS…` with no inherited authvault settings;
    /// for PostgreSQL, the temp directory holds the local state.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_at(self.location(), args)
    }

    /// As [`TempVault::cmd`] with `--vault location` (this vault's database
    /// under another URL, say).
    pub fn cmd_at(&self, location: &OsStr, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
        c.arg("--vault").arg(location).args(args);
        for var in [
            "AUTHVAULT_PATH",
            "AUTHVAULT_DATABASE_URL",
            "AUTHVAULT_STATE_DIR",
            "AUTHVAULT_HOST",
            "AUTHVAULT_PASSPHRASE",
            "AUTHVAULT_NEW_PASSPHRASE",
            "AUTHVAULT_AGENT_ID",
            "AUTHVAULT_REFRESH_LEASE_SECS",
            "PGOPTIONS",
            "RUST_LOG",
            "DISPLAY",
            "WAYLAND_DISPLAY",
        ] {
            c.env_remove(var);
        }
        if self.pg.is_some() {
            // The temp directory is also the working directory: a URL taken
            // for a relative file path would land there, not in the tree.
            c.env("AUTHVAULT_STATE_DIR", self.dir.path())
                .current_dir(self.dir.path());
        }
        // Hermetic: no test reaches the internet (every provider URL points at a
        // closed local port unless a test points it at the fake provider), and
        // none reads the user's configuration or legacy credential files.
        for var in authvault::config::ENDPOINT_VARS {
            c.env(var, "http://127.0.0.1:9");
        }
        let nowhere = self.path.with_file_name("no-such-dir");
        c.env("AUTHVAULT_CONFIG", nowhere.join("config.json"));
        c.env("CODEX_HOME", nowhere.join("codex"));
        c.env("CLAUDE_CONFIG_DIR", nowhere.join("claude"));
        c.stdin(Stdio::null());
        c
    }

    /// As [`TempVault::cmd`], with the test passphrase in the environment.
    pub fn cmd_pw(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(args);
        c.env("AUTHVAULT_PASSPHRASE", PASSPHRASE);
        c
    }

    /// `vault init --passphrase` with the test passphrase (fast KDF), through
    /// the CLI: works on both backends.
    pub fn init_cli_passphrase(&self) {
        let mut args = vec!["init", "--passphrase"];
        args.extend(FAST_KDF_ARGS);
        ok(&mut self.cmd_pw(&args));
        if self.pg.is_some() {
            // The vault is in the database, not in some file named like the URL.
            assert_eq!(
                self.raw_db()
                    .query_i64("SELECT count(*) FROM authvault_format"),
                1
            );
        }
    }

    /// Stores `key` as account `label` of `provider` (`claude`, `openai`),
    /// with the test passphrase (see [`login_api_key`](fn@login_api_key)).
    pub fn login_api_key(&self, provider: &str, label: &str, key: &str) {
        login_api_key(|a| self.cmd_pw(a), provider, label, key);
    }

    /// A passphrase vault (made here) with one Claude API-key account
    /// `work` and a daily budget of `limit` tokens on it, through the CLI.
    pub fn init_with_work_budget(&self, limit: u64) {
        self.init_cli_passphrase();
        self.login_api_key("claude", "work", "sk-work");
        set_work_budget(|a| self.cmd_pw(a), limit);
    }

    /// The directory of the SQLite vault file.
    pub fn vault_dir(&self) -> &Path {
        self.sqlite_only("vault_dir");
        self.path.parent().expect("vault dir")
    }

    fn sqlite_only(&self, what: &str) {
        assert!(
            self.pg.is_none(),
            "TempVault::{what} is SQLite-only; on PostgreSQL go through the CLI and raw_db()"
        );
    }

    /// Creates the vault through the library with the test passphrase (fast KDF).
    pub fn init_passphrase(&self) -> Store {
        self.sqlite_only("init_passphrase");
        let pw = SecretString::from(PASSPHRASE);
        Store::init(&self.path, &Unlock::Passphrase(&pw, FAST_KDF)).expect("init")
    }

    pub fn open_passphrase(&self) -> Store {
        self.sqlite_only("open_passphrase");
        let pw = SecretString::from(PASSPHRASE);
        Store::open(&self.path, &Unlock::Passphrase(&pw, FAST_KDF)).expect("open")
    }

    /// The main vault file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.sqlite_only("bytes");
        fs::read(&self.path).expect("read vault")
    }

    /// A plain SQLite connection to the file (for tampering), bypassing authvault.
    pub fn raw(&self) -> rusqlite::Connection {
        self.sqlite_only("raw");
        rusqlite::Connection::open(&self.path).expect("raw open")
    }

    /// A plain connection to the vault's database on either backend, bypassing
    /// authvault (for reading and tampering).
    pub fn raw_db(&self) -> RawDb {
        match &self.pg {
            Some(db) => RawDb::Postgres {
                url: db.url.clone(),
            },
            None => RawDb::Sqlite(self.raw()),
        }
    }
}

/// The vault's database without authvault: rusqlite on SQLite, `psql` on
/// PostgreSQL. Each call is one SQL text (several statements allowed in
/// `exec`), run on its own; a failure panics with the SQL.
pub enum RawDb {
    Sqlite(rusqlite::Connection),
    Postgres { url: String },
}

impl RawDb {
    /// Runs `sql` (one or more statements) to the end.
    pub fn exec(&self, sql: &str) {
        match self {
            Self::Sqlite(c) => c
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{e} on: {sql}")),
            Self::Postgres { url } => drop(psql(url, sql)),
        }
    }

    /// The one integer `sql` selects.
    pub fn query_i64(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(c) => c
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{e} on: {sql}")),
            Self::Postgres { url } => {
                let text = psql(url, sql);
                text.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}: {text:?} from: {sql}"))
            }
        }
    }

    /// `bytes` as a literal of this backend's blob type (BLOB, BYTEA).
    pub fn blob_literal(&self, bytes: &[u8]) -> String {
        let hex = authvault::crypto::hex(bytes);
        match self {
            Self::Sqlite(_) => format!("X'{hex}'"),
            Self::Postgres { .. } => format!("'\\x{hex}'::bytea"),
        }
    }

    /// An expression for the lowercase hex of the blob expression `expr`.
    pub fn hex_of(&self, expr: &str) -> String {
        match self {
            Self::Sqlite(_) => format!("lower(hex({expr}))"),
            Self::Postgres { .. } => format!("encode({expr}, 'hex')"),
        }
    }

    /// The one text `sql` selects (a single-line value).
    pub fn query_text(&self, sql: &str) -> String {
        match self {
            Self::Sqlite(c) => c
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{e} on: {sql}")),
            Self::Postgres { url } => {
                let text = psql(url, sql);
                text.strip_suffix('\n').unwrap_or(&text).to_owned()
            }
        }
    }
}

/// Stores `key` as account `label` of `provider` through `vault login
/// --api-key-stdin --no-validate`, run as `vault` (a command builder:
/// which vault, host and passphrase is the caller's).
pub fn login_api_key(
    vault: impl FnOnce(&[&str]) -> Command,
    provider: &str,
    label: &str,
    key: &str,
) {
    let out = with_stdin(
        &mut vault(&[
            "login",
            provider,
            "--api-key-stdin",
            "--no-validate",
            "--label",
            label,
        ]),
        key.as_bytes(),
    );
    assert!(out.status.success(), "login {label}: {}", stderr(&out));
}

/// Sets a daily budget of `limit` tokens on account `work`, run as `vault`.
pub fn set_work_budget(vault: impl FnOnce(&[&str]) -> Command, limit: u64) {
    ok(&mut vault(&[
        "quota",
        "set",
        "--account",
        "work",
        "--tokens",
        &limit.to_string(),
        "--per",
        "day",
    ]));
}

/// A vault with a memory keyring, for library-level tests.
pub fn memory_vault(keyring: &MemoryKeyring) -> (TempVault, Store) {
    memory_vault_on(Backend::Sqlite, keyring)
}

/// As [`memory_vault`], on `backend`.
pub fn memory_vault_on(backend: Backend, keyring: &MemoryKeyring) -> (TempVault, Store) {
    let tv = TempVault::on(backend);
    let location =
        authvault::db::Location::parse(&tv.location().to_string_lossy()).expect("location");
    let store = Store::init_at(&location, &Unlock::Keyring(keyring)).expect("init");
    (tv, store)
}

pub fn api_key_account(provider: Provider, label: &str, key: &str) -> NewAccount {
    NewAccount {
        provider,
        label: label.into(),
        identity: Identity::default(),
        credentials: vec![Credential::ApiKey(SecretString::from(key))],
        active: CredentialKind::ApiKey,
    }
}

/// An OAuth account with every sealed field set; secrets contain `marker`.
pub fn oauth_account(label: &str, marker: &str) -> NewAccount {
    NewAccount {
        provider: Provider::OpenAi,
        label: label.into(),
        identity: Identity {
            email: Some(format!("{label}@example.com")),
            provider_account_id: Some(format!("acct-{label}")),
            plan: Some("pro".into()),
            rate_limit_tier: None,
        },
        credentials: vec![
            Credential::OAuth(OAuthTokens {
                access_token: SecretString::from(format!("at-{marker}-{label}")),
                refresh_token: Some(SecretString::from(format!("rt-{marker}-{label}"))),
                id_token: Some(SecretString::from(format!("id-{marker}-{label}"))),
                expires_at: Some(chrono::DateTime::from_timestamp(1_900_000_000, 0).expect("ts")),
                scopes: vec!["openid".into(), "offline_access".into()],
                last_refresh: Some(chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("ts")),
            }),
            Credential::ApiKey(SecretString::from(format!("sk-{marker}-{label}"))),
        ],
        active: CredentialKind::OAuth,
    }
}

/// Runs to completion; panics with stderr when it fails.
pub fn ok(c: &mut Command) -> Output {
    let out = c.output().expect("spawn vault");
    assert!(
        out.status.success(),
        "{c:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs expecting failure; returns the output.
pub fn fails(c: &mut Command) -> Output {
    let out = c.output().expect("spawn vault");
    assert!(
        !out.status.success(),
        "{c:?} unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Runs `c` with `input` on stdin.
pub fn with_stdin(c: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn vault");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait vault")
}

/// Waits for `child`, killing it if it has not exited by `deadline`: the
/// check is that the process ends on its own (a hang), not how fast it is.
pub fn wait_or_kill(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A small seeded xorshift generator: reproducible runs, seed printed on failure.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A seed from the OS, printed so a failing run can be replayed.
pub fn seed(name: &str) -> u64 {
    let mut b = [0u8; 8];
    authvault::crypto::fill_random(&mut b).expect("random");
    let seed = u64::from_le_bytes(b);
    eprintln!("{name}: seed {seed}");
    seed
}

/// Items in the Secret Service's default collection (object paths).
pub fn keyring_items() -> Vec<String> {
    let out = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply=literal",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets/aliases/default",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Items",
        ])
        .output()
        .expect("dbus-send (install dbus; run under scripts/test.sh)");
    assert!(
        out.status.success(),
        "the Secret Service is not reachable (run the suite with scripts/test.sh): {}",
        stderr(&out)
    );
    stdout(&out)
        .split_whitespace()
        .filter(|w| w.starts_with("/org/freedesktop/secrets/collection/"))
        .map(str::to_owned)
        .collect()
}
