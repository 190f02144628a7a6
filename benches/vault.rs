//! Benchmarks for authvault (issue 2, "Benchmarks"; DESIGN.md §10).
//!
//! * `seal_open/{seal,open}/{64B,4KiB}`: one XChaCha20-Poly1305 seal / open.
//! * `token_read/*`: reading a token through the library on an unlocked vault
//!   of 100 API-key accounts, plus the pieces it is made of (a read-only
//!   lookup without audit entry and commit, and a bare 4 KiB append +
//!   `fdatasync` on the same file system) so the report can say what dominates.
//! * `process/*`: a whole `vault token` process (keyring and passphrase
//!   unlock) against reading and parsing a plaintext Codex `auth.json`, both
//!   in-process (the lower bound) and through a spawned `cat` (the cost of
//!   spawning any process at all).
//!
//! Run the keyring benchmark inside a Secret Service session:
//! `scripts/test.sh --session -- cargo bench --bench vault`. Without a
//! reachable Secret Service `process/token_keyring` is skipped with a note on
//! stderr; every other benchmark runs anywhere.

// Pedantic lints that make no sense in a benchmark binary:
#![allow(
    missing_docs,         // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr, // a skipped benchmark is reported on stderr
    clippy::missing_panics_doc, // setup failures panic on purpose: a bench has no caller to report to
)]

mod common;

use common::{PASSPHRASE, VAULT_BIN, describe, private_tempdir};

use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use authvault::crypto::{self, Key, Place};
use authvault::keys::{KdfCost, KekStore, MemoryKeyring, OsKeyring, Unlock};
use authvault::model::{Credential, CredentialKind, Identity, Provider};
use authvault::store::{AccountSelector, NewAccount, Store};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Accounts in every benchmarked vault.
const ACCOUNTS: usize = 100;
/// The account every token read selects.
const LABEL: &str = "acct-50";

const PLACE: Place<'static> = Place {
    table: "credentials",
    column: "api_key",
    row: 7,
    account: 3,
};

/// A Codex `auth.json` of the 2026 shape (fake tokens of realistic length).
const CODEX_AUTH_JSON: &str = r#"{
  "auth_mode": "chatgpt",
  "OPENAI_API_KEY": null,
  "tokens": {
    "id_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoLWtleSJ9.eyJpc3MiOiJodHRwczovL2F1dGgub3BlbmFpLmNvbSIsImF1ZCI6WyJhcHBfQkVOQ0giXSwic3ViIjoiYXV0aDB8dXNlci1iZW5jaCIsImVtYWlsIjoiYmVuY2hAZXhhbXBsZS5vcmciLCJlbWFpbF92ZXJpZmllZCI6dHJ1ZSwiaWF0IjoxNzgwMDAwMDAwLCJleHAiOjE3ODAwMDM2MDAsImh0dHBzOi8vYXBpLm9wZW5haS5jb20vYXV0aCI6eyJjaGF0Z3B0X3BsYW5fdHlwZSI6InRlYW0iLCJjaGF0Z3B0X2FjY291bnRfaWQiOiJiZW5jaCJ9fQ.BENCHsignatureBENCHsignatureBENCHsignatureBENCHsignatureBENCHsignatureBENCHsig",
    "access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoLWtleSJ9.eyJpc3MiOiJodHRwczovL2F1dGgub3BlbmFpLmNvbSIsImF1ZCI6WyJodHRwczovL2FwaS5vcGVuYWkuY29tL3YxIl0sImV4cCI6MTc4MTAwMDAwMCwiaWF0IjoxNzgwMTM2MDAwLCJzY3AiOlsib3BlbmlkIiwicHJvZmlsZSIsImVtYWlsIiwib2ZmbGluZV9hY2Nlc3MiXSwiY2xpZW50X2lkIjoiYXBwX0JFTkNIIiwianRpIjoiYmVuY2gifQ.BENCHsignatureBENCHsignatureBENCHsignatureBENCHsignatureBENCHsignatureBENCHsig",
    "refresh_token": "rt_BENCHrefreshBENCHrefreshBENCHrefreshBENCHrefreshBENCH",
    "account_id": "00000000-0000-4000-8000-00000000be9c"
  },
  "last_refresh": "2026-05-28T08:00:00.5Z"
}"#;

// ------------------------------------------------------------- seal_open --

fn seal_open(c: &mut Criterion) {
    let key = Key::generate().expect("OS random source");
    let mut group = c.benchmark_group("seal_open");
    for (name, len) in [("64B", 64_usize), ("4KiB", 4096)] {
        let plaintext = vec![0x5a_u8; len];
        let sealed = crypto::seal(&key, 1, &PLACE, &plaintext).expect("seal");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("seal", name), |b| {
            b.iter(|| crypto::seal(&key, 1, &PLACE, black_box(&plaintext)).expect("seal"));
        });
        group.bench_function(BenchmarkId::new("open", name), |b| {
            b.iter(|| {
                crypto::open(|id| (id == 1).then_some(&key), &PLACE, black_box(&sealed))
                    .expect("open")
            });
        });
    }
    group.finish();
}

// ------------------------------------------------------------ token_read --

/// Adds `ACCOUNTS` API-key accounts `acct-0` … `acct-99` (with a sealed e-mail
/// each, so listing opens something), alternating providers.
fn populate(store: &mut Store) {
    for i in 0..ACCOUNTS {
        let provider = if i % 2 == 0 {
            Provider::OpenAi
        } else {
            Provider::Claude
        };
        store
            .add_account(&NewAccount {
                provider,
                label: format!("acct-{i}"),
                identity: Identity {
                    email: Some(format!("user{i}@example.org")),
                    ..Identity::default()
                },
                credentials: vec![Credential::ApiKey(SecretString::from(format!(
                    "sk-bench-{i:03}-0123456789abcdef0123456789abcdef0123456789abcdef"
                )))],
                active: CredentialKind::ApiKey,
            })
            .expect("add account");
    }
}

fn selector() -> AccountSelector<'static> {
    AccountSelector {
        label: Some(LABEL),
        provider: None,
    }
}

fn token_read(c: &mut Criterion) {
    let dir = private_tempdir();
    let ring = MemoryKeyring::default();
    let path = dir.path().join("vault").join("vault.db");
    let mut store = Store::init(&path, &Unlock::Keyring(&ring)).expect("init vault");
    populate(&mut store);

    let mut group = c.benchmark_group("token_read");
    group.measurement_time(Duration::from_secs(3));
    // The real thing: lookup + open + audit append + COMMIT (synchronous=FULL).
    group.bench_function("library", |b| {
        b.iter(|| {
            let token = store.token(selector()).expect("token");
            black_box(token.secret.expose_secret().len())
        });
    });
    // Same lookup in a read transaction: no audit entry, no commit, no fsync.
    group.bench_function("library_account_lookup", |b| {
        b.iter(|| store.account(black_box(LABEL)).expect("account"));
    });
    // Every account, each row MAC checked and e-mail opened.
    group.bench_function("library_accounts_list", |b| {
        b.iter(|| store.accounts().expect("accounts"));
    });
    // What one durable write costs on this file system: append 4 KiB and
    // fdatasync (a WAL commit under synchronous=FULL appends frames to the
    // WAL and syncs it once).
    let mut file = File::create_new(dir.path().join("fsync-probe")).expect("probe file");
    let page = [0_u8; 4096];
    group.bench_function("fdatasync_append_4KiB", |b| {
        b.iter(|| {
            file.write_all(&page).expect("write");
            file.sync_data().expect("fdatasync");
        });
    });
    group.finish();
}

// --------------------------------------------------------------- process --

fn vault_cmd(vault: &Path) -> Command {
    let mut cmd = Command::new(VAULT_BIN);
    cmd.arg("--vault")
        .arg(vault)
        .env_remove("AUTHVAULT_PATH")
        .env_remove("AUTHVAULT_PASSPHRASE")
        .env_remove("AUTHVAULT_AGENT_ID")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Runs `vault token` and returns its stdout (the secret and a newline).
fn run_token(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn vault");
    assert!(out.status.success(), "vault token: {}", describe(&out));
    out.stdout
}

fn token_cmd(vault: &Path, passphrase: Option<&str>) -> Command {
    let mut cmd = vault_cmd(vault);
    cmd.args(["token", "--account", LABEL]);
    if let Some(p) = passphrase {
        cmd.env("AUTHVAULT_PASSPHRASE", p);
    }
    cmd
}

/// `vault init` with the OS keyring, or `None` (after a note) when no Secret
/// Service answers. The caller deletes the keyring entry afterwards.
fn init_keyring_vault(dir: &Path) -> Option<(PathBuf, Store)> {
    if let Err(e) = OsKeyring.probe() {
        eprintln!(
            "note: skipping process/token_keyring: {e} (run inside `scripts/test.sh --session -- cargo bench --bench vault`)"
        );
        return None;
    }
    let path = dir.join("keyring-vault").join("vault.db");
    let out = vault_cmd(&path).arg("init").output().expect("spawn vault");
    if !out.status.success() {
        eprintln!(
            "note: skipping process/token_keyring: `vault init` failed ({})",
            describe(&out)
        );
        return None;
    }
    let mut store = Store::open(&path, &Unlock::Keyring(&OsKeyring)).expect("keyring unlock");
    populate(&mut store);
    Some((path, store))
}

/// `vault init --passphrase` with the default Argon2id cost (m=64 MiB, t=3, p=4).
fn init_passphrase_vault(dir: &Path) -> PathBuf {
    let path = dir.join("passphrase-vault").join("vault.db");
    let out = vault_cmd(&path)
        .args(["init", "--passphrase"])
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE)
        .output()
        .expect("spawn vault");
    assert!(
        out.status.success(),
        "vault init --passphrase: {}",
        describe(&out)
    );
    let passphrase = SecretString::from(PASSPHRASE);
    let mut store = Store::open(&path, &Unlock::Passphrase(&passphrase, KdfCost::default()))
        .expect("passphrase unlock");
    populate(&mut store);
    path
}

#[derive(Deserialize)]
struct CodexAuth {
    #[serde(rename = "OPENAI_API_KEY")]
    api_key: Option<String>,
    tokens: Option<CodexTokens>,
}

#[derive(Deserialize)]
struct CodexTokens {
    access_token: String,
}

/// What an agent does without a vault: take the access token (or API key)
/// out of the parsed `auth.json` text.
fn token_from_auth_json(text: &[u8]) -> String {
    let auth: CodexAuth = serde_json::from_slice(text).expect("auth.json parses");
    auth.tokens
        .map(|t| t.access_token)
        .or(auth.api_key)
        .expect("auth.json holds a token")
}

fn process(c: &mut Criterion) {
    let dir = private_tempdir();
    let auth_json = dir.path().join("auth.json");
    fs::write(&auth_json, CODEX_AUTH_JSON).expect("write auth.json");
    let expected = token_from_auth_json(CODEX_AUTH_JSON.as_bytes());

    let mut group = c.benchmark_group("process");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));

    // Lower bound: open + read + parse, no process at all.
    group.bench_function(BenchmarkId::new("plaintext_auth_json", "in_process"), |b| {
        b.iter(|| {
            let mut text = Vec::with_capacity(4096);
            std::io::Read::read_to_end(
                &mut File::open(black_box(&auth_json)).expect("open"),
                &mut text,
            )
            .expect("read");
            token_from_auth_json(&text)
        });
    });
    // Process-spawn baseline: `cat auth.json`, its output parsed here.
    group.bench_function(BenchmarkId::new("plaintext_auth_json", "cat"), |b| {
        b.iter(|| {
            let out = Command::new("cat")
                .arg(&auth_json)
                .stdin(Stdio::null())
                .output()
                .expect("spawn cat");
            assert!(out.status.success());
            let token = token_from_auth_json(&out.stdout);
            assert_eq!(token, expected);
            token
        });
    });

    if let Some((path, store)) = init_keyring_vault(dir.path()) {
        let mut cmd = token_cmd(&path, None);
        assert!(run_token(&mut cmd).starts_with(b"sk-bench-050-"));
        group.measurement_time(Duration::from_secs(5));
        group.bench_function("token_keyring", |b| b.iter(|| run_token(&mut cmd)));
        // Leave nothing behind in the keyring (it may be a real one).
        if let Err(e) = OsKeyring.delete(store.vault_id()) {
            eprintln!("note: could not delete the bench vault's keyring entry: {e}");
        }
    }

    let path = init_passphrase_vault(dir.path());
    let mut cmd = token_cmd(&path, Some(PASSPHRASE));
    assert!(run_token(&mut cmd).starts_with(b"sk-bench-050-"));
    // Argon2id dominates (hundreds of ms): ten single-run samples.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("token_passphrase", |b| b.iter(|| run_token(&mut cmd)));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal_open, token_read, process
}
criterion_main!(benches);
