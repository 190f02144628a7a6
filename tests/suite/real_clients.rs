//! The real clients, installed from the npm registry inside the test and run
//! with no network (`unshare -n`): they accept the files and variables the
//! vault hands an agent.
//!
//! - Codex reads a ChatGPT login only from `$CODEX_HOME/auth.json`: `vault
//!   exec --account <ChatGPT login> -- codex login status` reports a ChatGPT
//!   login from the private `CODEX_HOME` the vault makes (and removes).
//! - Claude Code reads `CLAUDE_CODE_OAUTH_TOKEN` (a subscription) and
//!   `ANTHROPIC_API_KEY` (an API key): `vault exec … -- claude auth status`
//!   reports which, for a subscription and for an API-key account.
//!
//! The packages are pinned to exact versions and installed once into
//! `$XDG_CACHE_HOME/authvault-tests/npm/<name>@<version>` (default
//! `~/.cache`); later runs reuse them. A client runs with nothing of this
//! machine's environment or configuration: only `PATH` (to reach `node`), a
//! private `HOME` and the variables the test gives. A missing `npm` or
//! `unshare` fails the test; it never skips.
//!
//! `vault exec` runs inside the same network namespace: accounts have fresh
//! snapshots and valid tokens, so it needs no network either.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use authvault::model::{Credential, CredentialKind, Provider, Snapshot, SnapshotSource};
use authvault::store::Store;
use secrecy::ExposeSecret;

use super::common::{PASSPHRASE, TempVault, api_key_account, stderr, stdout, wait_or_kill};
use super::fake_provider::{self as fake, FakeProvider, Prov};

/// `@openai/codex`, pinned.
const CODEX: Package = Package {
    name: "@openai/codex",
    version: "0.171.0",
    bin: "codex",
};
/// `@anthropic-ai/claude-code`, pinned.
const CLAUDE_CODE: Package = Package {
    name: "@anthropic-ai/claude-code",
    version: "2.1.332",
    bin: "claude",
};

/// A hang, not a speed limit: an install downloads a few hundred MB.
const INSTALL_DEADLINE: Duration = Duration::from_mins(15);
const RUN_DEADLINE: Duration = Duration::from_mins(2);

/// An npm package that provides a command.
struct Package {
    name: &'static str,
    version: &'static str,
    bin: &'static str,
}

/// Installs run one at a time in this process (tests run in parallel).
static INSTALLING: Mutex<()> = Mutex::new(());

impl Package {
    /// The command, installed on first use into the cache.
    fn installed(&self) -> PathBuf {
        let _one = INSTALLING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = dirs::cache_dir()
            .expect("a cache directory ($XDG_CACHE_HOME or ~/.cache)")
            .join("authvault-tests")
            .join("npm");
        let dir = root.join(format!("{}@{}", self.name, self.version));
        let bin = dir.join("node_modules").join(".bin").join(self.bin);
        if bin.exists() {
            return bin;
        }
        // Into a fresh directory, then renamed into place: a killed install
        // leaves no half package, and another process racing us is fine.
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("create the npm cache");
        let partial = tempfile::Builder::new()
            .prefix(".installing-")
            .tempdir_in(&root)
            .expect("temporary install directory");
        let start = Instant::now();
        let mut npm = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(partial.path())
            .arg(format!("{}@{}", self.name, self.version))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run npm ({e}): install Node.js and npm"));
        let status = wait_or_kill(&mut npm, INSTALL_DEADLINE)
            .unwrap_or_else(|| panic!("npm install {} did not finish", self.name));
        assert!(
            status.success(),
            "npm install {}@{}: {status}",
            self.name,
            self.version
        );
        eprintln!(
            "installed {}@{} in {:.1} s",
            self.name,
            self.version,
            start.elapsed().as_secs_f64()
        );
        match std::fs::rename(partial.path(), &dir) {
            Ok(()) => {}
            Err(_) if bin.exists() => {} // another process was first
            Err(e) => panic!("moving the install to {}: {e}", dir.display()),
        }
        assert!(bin.exists(), "{} has no {}", self.name, bin.display());
        bin
    }
}

/// The directory of `node`, for the clients' `PATH`.
fn node_dir() -> PathBuf {
    let out = Command::new("node")
        .args(["-p", "process.execPath"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js"));
    assert!(out.status.success(), "node: {}", stderr(&out));
    PathBuf::from(stdout(&out).trim())
        .parent()
        .expect("node's directory")
        .to_path_buf()
}

/// Runs `program args` in a new network namespace with no interface but
/// loopback, with an environment of only `PATH` (node's directory first),
/// `HOME` = `home` and `env`.
fn run_offline(home: &Path, program: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Output {
    let path = format!("{}:/usr/bin:/bin", node_dir().display());
    let mut cmd = Command::new("unshare");
    cmd.arg("--net")
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run unshare ({e}): install util-linux"));
    // A status report is a few lines: the pipes never fill while we wait.
    let status = wait_or_kill(&mut child, RUN_DEADLINE)
        .unwrap_or_else(|| panic!("{} {args:?} did not finish", program.display()));
    let read = |pipe: Option<&mut dyn Read>| {
        let mut bytes = Vec::new();
        pipe.expect("piped").read_to_end(&mut bytes).expect("read");
        bytes
    };
    let out = Output {
        status,
        stdout: read(child.stdout.as_mut().map(|p| p as &mut dyn Read)),
        stderr: read(child.stderr.as_mut().map(|p| p as &mut dyn Read)),
    };
    assert!(
        !stderr(&out).contains("unshare failed"),
        "unshare needs to be root (or allowed user namespaces): {}",
        stderr(&out)
    );
    out
}

/// What `codex login status` says.
#[derive(Debug, PartialEq, Eq)]
enum CodexLogin {
    ChatGpt,
    ApiKey,
    NotLoggedIn,
}

fn codex_login(out: &Output) -> CodexLogin {
    let text = format!("{}{}", stdout(out), stderr(out));
    let said = |line: &str| text.lines().any(|l| l.trim() == line);
    let login = if said("Logged in using ChatGPT") {
        CodexLogin::ChatGpt
    } else if text.lines().any(|l| l.starts_with("API key configured")) {
        CodexLogin::ApiKey
    } else if said("Not logged in") {
        CodexLogin::NotLoggedIn
    } else {
        panic!("unexpected `codex login status` output: {text}")
    };
    assert_eq!(
        out.status.success(),
        login != CodexLogin::NotLoggedIn,
        "{text}"
    );
    login
}

/// `loggedIn` and `authMethod` of `claude auth status` (JSON on stdout).
fn claude_auth(out: &Output) -> (bool, String) {
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`claude auth status` is not JSON ({e}): {}", stdout(out)));
    let logged_in = status["loggedIn"].as_bool().expect("loggedIn");
    assert_eq!(out.status.success(), logged_in, "{status}");
    (
        logged_in,
        status["authMethod"]
            .as_str()
            .expect("authMethod")
            .to_owned(),
    )
}

/// A fresh, empty snapshot: `vault exec` then has nothing to fetch, and
/// needs no network.
fn fresh_snapshot(store: &mut Store, label: &str, provider: Provider) {
    let snapshot = Snapshot::empty(provider, SnapshotSource::UsageEndpoint, chrono::Utc::now());
    store.save_snapshot(label, &snapshot).expect("snapshot");
}

/// `vault --vault PATH exec --account LABEL -- CLIENT ARGS…` as run by
/// [`run_offline`]: the vault opens with the test passphrase, its provider
/// URLs point at a closed port, and `env` is added.
fn vault_exec(
    tv: &TempVault,
    home: &Path,
    label: &str,
    client: &Path,
    args: &[&str],
    env: &[(&str, &OsStr)],
) -> Output {
    let vault = Path::new(env!("CARGO_BIN_EXE_vault"));
    let mut all = vec![
        "--vault",
        tv.path.to_str().expect("UTF-8 path"),
        "exec",
        "--account",
        label,
        "--",
        client.to_str().expect("UTF-8 path"),
    ];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("AUTHVAULT_PASSPHRASE", OsStr::new(PASSPHRASE)));
    for var in authvault::config::ENDPOINT_VARS {
        env.push((var, OsStr::new("http://127.0.0.1:9")));
    }
    run_offline(home, vault, &all, &env)
}

#[test]
fn vault_exec_gives_codex_a_chatgpt_login_in_a_private_codex_home() {
    let codex = CODEX.installed();
    let tv = TempVault::new();
    let fake = FakeProvider::start();
    let who = fake::Identity::new("ada@example.com", "acct-ada", "plus");
    let mut store = tv.init_passphrase();
    store
        .add_account(&fake.seeded_chatgpt_account("chatgpt", &who))
        .expect("seed");
    fresh_snapshot(&mut store, "chatgpt", Provider::OpenAi);
    let before = oauth_tokens(&mut store, "chatgpt");
    drop(store);
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, real) = (dir.path().join("home"), dir.path().join("real-codex"));
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&real).expect("real CODEX_HOME");
    std::fs::write(real.join("config.toml"), b"").expect("config");

    // Without the vault: not logged in (the check can fail).
    let empty = run_offline(
        &home,
        &codex,
        &["login", "status"],
        &[("CODEX_HOME", real.as_os_str())],
    );
    assert_eq!(codex_login(&empty), CodexLogin::NotLoggedIn);

    let out = vault_exec(
        &tv,
        &home,
        "chatgpt",
        &codex,
        &["login", "status"],
        &[("CODEX_HOME", real.as_os_str())],
    );
    assert_eq!(codex_login(&out), CodexLogin::ChatGpt, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(tv.vault_dir().join("run"))
            .expect("run directory")
            .count(),
        0,
        "the private CODEX_HOME is gone"
    );
    assert!(
        !real.join("auth.json").exists(),
        "the real CODEX_HOME got no login"
    );
    assert_eq!(
        oauth_tokens(&mut tv.open_passphrase(), "chatgpt"),
        before,
        "a status check rotates nothing"
    );
}

#[test]
fn vault_exec_gives_claude_code_a_subscription_as_an_oauth_token() {
    let claude = CLAUDE_CODE.installed();
    let tv = TempVault::new();
    let fake = FakeProvider::start();
    let who = fake::Identity::new("grace@example.com", "acct-grace", "max");
    let mut store = tv.init_passphrase();
    store
        .add_account(&fake.seeded_account(Prov::Claude, "max", &who))
        .expect("seed");
    fresh_snapshot(&mut store, "max", Provider::Claude);
    drop(store);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("claude-config");

    let none = run_offline(
        dir.path(),
        &claude,
        &["auth", "status"],
        &[("CLAUDE_CONFIG_DIR", config.as_os_str())],
    );
    assert_eq!(claude_auth(&none), (false, "none".to_owned()));

    // A stale API key in the caller's environment would win over the OAuth
    // token: `vault exec` removes it.
    let out = vault_exec(
        &tv,
        dir.path(),
        "max",
        &claude,
        &["auth", "status"],
        &[
            ("CLAUDE_CONFIG_DIR", config.as_os_str()),
            ("ANTHROPIC_API_KEY", OsStr::new("sk-ant-stale-inherited")),
        ],
    );
    assert_eq!(
        claude_auth(&out),
        (true, "oauth_token".to_owned()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn vault_exec_gives_claude_code_an_api_key_account_as_an_api_key() {
    let claude = CLAUDE_CODE.installed();
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(
            Provider::Claude,
            "claude-key",
            "sk-ant-api03-real-clients-test",
        ))
        .expect("seed");
    fresh_snapshot(&mut store, "claude-key", Provider::Claude);
    drop(store);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("claude-config");
    let out = vault_exec(
        &tv,
        dir.path(),
        "claude-key",
        &claude,
        &["auth", "status"],
        &[("CLAUDE_CONFIG_DIR", config.as_os_str())],
    );
    assert_eq!(
        claude_auth(&out),
        (true, "api_key".to_owned()),
        "{}",
        stderr(&out)
    );
}

/// The account's OAuth tokens, to compare whole.
fn oauth_tokens(store: &mut Store, label: &str) -> [Option<String>; 3] {
    let Ok((_, Credential::OAuth(t))) = store.credential(label, CredentialKind::OAuth, "test")
    else {
        panic!("an OAuth login")
    };
    let s = |v: Option<&secrecy::SecretString>| v.map(|v| v.expose_secret().to_owned());
    [
        s(Some(&t.access_token)),
        s(t.refresh_token.as_ref()),
        s(t.id_token.as_ref()),
    ]
}
