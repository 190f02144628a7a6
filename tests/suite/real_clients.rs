//! The real clients, installed from the npm registry inside the test and run
//! with no network (`unshare -n`): they accept the files and variables the
//! vault hands an agent.
//!
//! - Codex reads a ChatGPT login only from `$CODEX_HOME/auth.json`: a
//!   private `CodexHome` made from `vault export codex`-style bytes makes
//!   `codex login status` report a ChatGPT login.
//! - Claude Code reads `CLAUDE_CODE_OAUTH_TOKEN` (a subscription) and
//!   `ANTHROPIC_API_KEY` (an API key): `claude auth status` reports which.
//!
//! The packages are pinned to exact versions and installed once into
//! `$XDG_CACHE_HOME/authvault-tests/npm/<name>@<version>` (default
//! `~/.cache`); later runs reuse them. A client runs with nothing of this
//! machine's environment or configuration: only `PATH` (to reach `node`), a
//! private `HOME` and the variables the test gives. A missing `npm` or
//! `unshare` fails the test; it never skips.
//!
//! Each test builds the client's environment itself, as `vault exec` will;
//! [`run_offline`] takes any program, so running `vault exec --account L --
//! codex login status` instead is a change of arguments.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use authvault::agent::CodexHome;
use authvault::import::export::codex_auth_json;
use authvault::model::{Credential, CredentialKind};
use authvault::store::{AccountSelector, Store};
use secrecy::ExposeSecret;

use super::common::{TempVault, api_key_account, stderr, stdout, wait_or_kill};
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

/// The secret `vault token` would hand out for `label`.
fn token(store: &mut Store, label: &str) -> String {
    let token = store
        .token(AccountSelector {
            label: Some(label),
            provider: None,
        })
        .expect("token");
    token.secret.expose_secret().to_owned()
}

#[test]
fn codex_login_status_reports_a_chatgpt_login_from_a_private_codex_home() {
    let codex = CODEX.installed();
    let tv = TempVault::new();
    let fake = FakeProvider::start();
    let who = fake::Identity::new("ada@example.com", "acct-ada", "plus");
    let mut store = tv.init_passphrase();
    store
        .add_account(&fake.seeded_chatgpt_account("chatgpt", &who))
        .expect("seed");
    let Ok((_, Credential::OAuth(tokens))) =
        store.credential("chatgpt", CredentialKind::OAuth, "export codex")
    else {
        panic!("a ChatGPT login")
    };
    let auth = codex_auth_json(
        Some(&tokens),
        None,
        Some(&who.account_id),
        CredentialKind::OAuth,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, real) = (dir.path().join("home"), dir.path().join("real-codex"));
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&real).expect("real CODEX_HOME");
    std::fs::write(real.join("config.toml"), b"").expect("config");

    // Without the private home: not logged in (the check can fail).
    let empty = run_offline(
        &home,
        &codex,
        &["login", "status"],
        &[("CODEX_HOME", real.as_os_str())],
    );
    assert_eq!(codex_login(&empty), CodexLogin::NotLoggedIn);

    let private = CodexHome::create(&tv.vault_dir().join("run"), &real, auth.as_bytes())
        .expect("private CODEX_HOME");
    let out = run_offline(
        &home,
        &codex,
        &["login", "status"],
        &[("CODEX_HOME", private.path().as_os_str())],
    );
    assert_eq!(codex_login(&out), CodexLogin::ChatGpt);
    assert_eq!(
        private.read_auth().expect("auth.json").as_slice(),
        auth.as_bytes(),
        "a status check rewrites nothing"
    );
}

#[test]
fn claude_auth_status_reports_an_oauth_token_from_claude_code_oauth_token() {
    let claude = CLAUDE_CODE.installed();
    let tv = TempVault::new();
    let fake = FakeProvider::start();
    let who = fake::Identity::new("grace@example.com", "acct-grace", "max");
    let mut store = tv.init_passphrase();
    store
        .add_account(&fake.seeded_account(Prov::Claude, "max", &who))
        .expect("seed");
    let secret = token(&mut store, "max");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("claude-config");

    let none = run_offline(
        dir.path(),
        &claude,
        &["auth", "status"],
        &[("CLAUDE_CONFIG_DIR", config.as_os_str())],
    );
    assert_eq!(claude_auth(&none), (false, "none".to_owned()));

    let out = run_offline(
        dir.path(),
        &claude,
        &["auth", "status"],
        &[
            ("CLAUDE_CONFIG_DIR", config.as_os_str()),
            ("CLAUDE_CODE_OAUTH_TOKEN", OsStr::new(&secret)),
        ],
    );
    assert_eq!(claude_auth(&out), (true, "oauth_token".to_owned()));
}

#[test]
fn claude_auth_status_reports_an_api_key_from_anthropic_api_key() {
    let claude = CLAUDE_CODE.installed();
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(
            authvault::model::Provider::Claude,
            "claude-key",
            "sk-ant-api03-real-clients-test",
        ))
        .expect("seed");
    let secret = token(&mut store, "claude-key");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("claude-config");
    let out = run_offline(
        dir.path(),
        &claude,
        &["auth", "status"],
        &[
            ("CLAUDE_CONFIG_DIR", config.as_os_str()),
            ("ANTHROPIC_API_KEY", OsStr::new(&secret)),
            ("CLAUDE_API_KEY", OsStr::new(&secret)),
        ],
    );
    assert_eq!(claude_auth(&out), (true, "api_key".to_owned()));
}
