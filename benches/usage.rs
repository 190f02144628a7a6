//! Usage history against ccusage 20.0.24 on the same generated Claude Code
//! history, whole processes (issue 10's goals in brackets):
//!
//! * `usage/first_import`: `vault usage import claude-code` into a fresh
//!   vault [no slower than one `ccusage claude daily` over the same logs].
//! * `usage/import_nothing_new`: the same import again [≤ 50 ms].
//! * `usage/vault_daily_json` and `usage/ccusage_daily_json`: the daily
//!   report as JSON [vault ≥ 100× faster, ≤ 25 MiB peak; measure the
//!   peak with `/usr/bin/time -v vault --json usage daily`, not here].
//! * `usage/vault_statusline` and `usage/ccusage_statusline`: Claude Code's
//!   status line for one session of the history [vault ≤ 10 ms and faster].
//! * `usage/unlock_only`: `vault usage prices`, which unlocks the vault and
//!   reads one row: the floor under every vault process above.
//!
//! `USAGE_BENCH_EVENTS` sets the number of responses (default 100,000; try
//! 1,000,000). The vaults of the read benchmarks unlock with the OS keyring
//! when a Secret Service answers (run inside `scripts/test.sh --session --
//! cargo bench --bench usage`), else with a passphrase at the Argon2id floor
//! (a note says so); the first import writes into fresh passphrase vaults
//! at the floor (its unlock is a small share of it). ccusage runs offline,
//! without network, from the test suite's npm cache
//! (`~/.cache/authvault-tests/npm/ccusage@20.0.24`, installed by
//! `cargo test --test all suite::ccusage`); without it those benchmarks are
//! skipped with a note. Run in release: `cargo bench --bench usage`.

#![allow(
    missing_docs,               // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr,       // skipped benchmarks are reported on stderr
    clippy::missing_panics_doc, // setup failures panic on purpose
)]

mod common;

use common::{FLOOR_KDF, PASSPHRASE, VAULT_BIN, describe, private_tempdir};

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use authvault::keys::{KekStore as _, OsKeyring, Unlock};
use authvault::store::Store;
use chrono::{TimeDelta, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use secrecy::SecretString;

const SESSIONS: usize = 200;

#[allow(clippy::disallowed_methods)] // the bench's own size knob, not the vault's configuration
fn events() -> usize {
    std::env::var("USAGE_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// `n` responses in `SESSIONS` transcripts over 30 projects, the last ones
/// in the current hour (so a block is running for the status line).
/// Returns the path of the newest session's transcript.
fn generate(root: &Path, n: usize) -> PathBuf {
    let models = [
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-haiku-4-5-20251001",
    ];
    let now = Utc::now();
    let per = n.div_ceil(SESSIONS);
    let mut last = PathBuf::new();
    for s in 0..SESSIONS {
        let file = root.join(format!(
            "projects/-home-u-proj{}/{s:04}aaaa-2222-3333-4444-555555555555.jsonl",
            s % 30
        ));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut text = String::new();
        for k in (s * per)..((s + 1) * per).min(n) {
            // Spread over 60 days, oldest first, ending now.
            let ago =
                TimeDelta::seconds(i64::try_from((n - k) * (60 * 86_400) / n.max(1)).unwrap());
            let at = (now - ago).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let _ = writeln!(
                text,
                r#"{{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/u/p","sessionId":"s{s}","version":"2.1.0","message":{{"id":"msg_{k}","type":"message","role":"assistant","model":"{}","content":[{{"type":"text","text":"ok"}}],"usage":{{"input_tokens":{},"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"cache_creation":{{"ephemeral_5m_input_tokens":{},"ephemeral_1h_input_tokens":0}},"output_tokens":{}}}}},"requestId":"req_{k}","type":"assistant","uuid":"u{k}","timestamp":"{at}"}}"#,
                models[k % 3],
                k % 5000,
                k % 20_000,
                k % 100_000,
                k % 20_000,
                k % 4000
            );
        }
        std::fs::write(&file, text).unwrap();
        last = file;
    }
    last
}

fn vault_cmd(vault: &Path, root: &Path) -> Command {
    let mut cmd = Command::new(VAULT_BIN);
    cmd.arg("--vault")
        .arg(vault)
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE)
        .env("CLAUDE_CONFIG_DIR", root)
        .env_remove("AUTHVAULT_PATH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for var in authvault::config::ENDPOINT_VARS {
        cmd.env(var, "http://127.0.0.1:9");
    }
    cmd
}

fn new_vault(dir: &Path) -> PathBuf {
    let path = dir.join("vault").join("vault.db");
    let pw = SecretString::from(PASSPHRASE);
    drop(Store::init(&path, &Unlock::Passphrase(&pw, FLOOR_KDF)).expect("init"));
    path
}

/// A vault that unlocks with the OS keyring and its id (to delete the
/// entry after), or `None` after a note when no Secret Service answers.
fn keyring_vault(dir: &Path) -> Option<(PathBuf, String)> {
    if let Err(e) = OsKeyring.probe() {
        eprintln!(
            "note: the read benchmarks unlock with a passphrase at the Argon2id floor: {e} (run inside `scripts/test.sh --session -- cargo bench --bench usage` for the OS keyring)"
        );
        return None;
    }
    let path = dir.join("keyring-vault").join("vault.db");
    let store = Store::init(&path, &Unlock::Keyring(&OsKeyring)).expect("keyring init");
    Some((path, store.vault_id().to_owned()))
}

fn run(cmd: &mut Command) {
    let out = cmd.stdout(Stdio::piped()).output().expect("spawn");
    assert!(out.status.success(), "{}", describe(&out));
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", describe(&out));
}

/// ccusage from the test suite's npm cache, run offline without network.
fn ccusage(root: &Path, home: &Path, args: &[&str]) -> Option<Command> {
    let bin = dirs::home_dir()?
        .join(".cache/authvault-tests/npm/ccusage@20.0.24/node_modules/.bin/ccusage");
    if !bin.exists() {
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-rn", "--"])
        .arg(bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("CLAUDE_CONFIG_DIR", root)
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    Some(cmd)
}

fn usage(c: &mut Criterion) {
    let n = events();
    let dir = private_tempdir();
    let root = dir.path().join("claude");
    let transcript = generate(&root, n);
    let mut group = c.benchmark_group("usage");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));

    group.bench_function("first_import", |b| {
        b.iter_batched(
            || {
                let d = tempfile::tempdir_in(dir.path()).unwrap();
                let v = new_vault(d.path());
                (d, v)
            },
            |(_d, v)| run(vault_cmd(&v, &root).args(["usage", "import", "claude-code"])),
            BatchSize::PerIteration,
        );
    });

    let keyring = keyring_vault(dir.path());
    let vault = keyring
        .as_ref()
        .map_or_else(|| new_vault(dir.path()), |(path, _)| path.clone());
    run(vault_cmd(&vault, &root).args(["usage", "import", "claude-code"]));
    group.bench_function("unlock_only", |b| {
        let mut cmd = vault_cmd(&vault, &root);
        cmd.args(["usage", "prices"]);
        b.iter(|| run(&mut cmd));
    });
    group.bench_function("import_nothing_new", |b| {
        let mut cmd = vault_cmd(&vault, &root);
        cmd.args(["usage", "import", "claude-code"]);
        b.iter(|| run(&mut cmd));
    });
    group.bench_function("vault_daily_json", |b| {
        let mut cmd = vault_cmd(&vault, &root);
        cmd.args(["--json", "usage", "daily", "--timezone", "UTC"]);
        b.iter(|| run(&mut cmd));
    });
    let status = serde_json::json!({
        "session_id": transcript.file_stem().unwrap().to_str().unwrap(),
        "transcript_path": transcript,
        "cwd": "/home/u/p",
        "model": {"id": "claude-sonnet-4-20250514", "display_name": "Sonnet 4"},
        "workspace": {"current_dir": "/home/u/p", "project_dir": "/home/u/p"},
        "version": "2.1.0",
    })
    .to_string();
    group.bench_function("vault_statusline", |b| {
        let mut cmd = vault_cmd(&vault, &root);
        cmd.arg("statusline");
        b.iter(|| run_with_stdin(&mut cmd, status.as_bytes()));
    });

    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let daily = [
        "claude",
        "daily",
        "--json",
        "--offline",
        "--timezone",
        "UTC",
    ];
    match ccusage(&root, &home, &daily) {
        None => eprintln!(
            "note: skipping usage/ccusage_*: ccusage 20.0.24 is not in the npm cache (run `cargo test --test all suite::ccusage` once)"
        ),
        Some(mut cmd) => {
            group.bench_function("ccusage_daily_json", |b| b.iter(|| run(&mut cmd)));
            let mut line = ccusage(&root, &home, &["claude", "statusline", "--offline"])
                .expect("ccusage is there");
            group.bench_function("ccusage_statusline", |b| {
                b.iter(|| run_with_stdin(&mut line, status.as_bytes()));
            });
        }
    }
    group.finish();
    // Leave nothing behind in the keyring (it may be a real one).
    if let Some((_, id)) = keyring
        && let Err(e) = OsKeyring.delete(&id)
    {
        eprintln!("note: could not delete the bench vault's keyring entry: {e}");
    }
}

criterion_group!(benches, usage);
criterion_main!(benches);
