//! Shared test fixtures: temp vaults, the `vault` binary, deadlines, a seeded RNG.

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

/// A vault path in a fresh private temp directory.
pub struct TempVault {
    /// Held for its `Drop`: the directory lives as long as the vault.
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempVault {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault").join("vault.db");
        Self { _dir: dir, path }
    }

    /// `vault --vault <path> ARGS…` with no inherited authvault settings.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
        c.arg("--vault").arg(&self.path).args(args);
        for var in [
            "AUTHVAULT_PATH",
            "AUTHVAULT_DATABASE_URL",
            "AUTHVAULT_STATE_DIR",
            "AUTHVAULT_PASSPHRASE",
            "AUTHVAULT_NEW_PASSPHRASE",
            "AUTHVAULT_AGENT_ID",
            "AUTHVAULT_HOST",
            "AUTHVAULT_REFRESH_LEASE_SECS",
            "RUST_LOG",
            "DISPLAY",
            "WAYLAND_DISPLAY",
        ] {
            c.env_remove(var);
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

    pub fn vault_dir(&self) -> &Path {
        self.path.parent().expect("vault dir")
    }

    /// Creates the vault through the library with the test passphrase (fast KDF).
    pub fn init_passphrase(&self) -> Store {
        let pw = SecretString::from(PASSPHRASE);
        Store::init(&self.path, &Unlock::Passphrase(&pw, FAST_KDF)).expect("init")
    }

    pub fn open_passphrase(&self) -> Store {
        let pw = SecretString::from(PASSPHRASE);
        Store::open(&self.path, &Unlock::Passphrase(&pw, FAST_KDF)).expect("open")
    }

    /// The main vault file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        fs::read(&self.path).expect("read vault")
    }

    /// A plain SQLite connection to the file (for tampering), bypassing authvault.
    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).expect("raw open")
    }
}

/// A vault with a memory keyring, for library-level tests.
pub fn memory_vault(keyring: &MemoryKeyring) -> (TempVault, Store) {
    let tv = TempVault::new();
    let store = Store::init(&tv.path, &Unlock::Keyring(keyring)).expect("init");
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
