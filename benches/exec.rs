//! `vault exec -- true` against a bare `true` (issue 9's goal: under 15 ms
//! extra with keyring unlock), whole processes.
//!
//! * `exec/true`: spawning `true` and waiting for it, the floor.
//! * `exec/vault_exec_account_keyring`: `vault exec --account acct-50 -- true`
//!   on a vault of 100 API-key accounts unlocked by the OS keyring: unlock,
//!   close dead sessions, select (one candidate), read the token, grant
//!   (reservation, history row, session: one transaction), run `true`, end
//!   the session.
//! * `exec/vault_exec_select_keyring`: the same without `--account`: the
//!   selector ranks all 100 accounts.
//!
//! Every account has a fresh usage snapshot, so nothing reaches the network.
//! Run inside a Secret Service session:
//! `scripts/test.sh --session -- cargo bench --bench exec`. Without one, the
//! vault benchmarks are skipped with a note on stderr.

#![allow(
    missing_docs,               // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr,       // a skipped benchmark is reported on stderr
    clippy::missing_panics_doc, // setup failures panic on purpose
)]

mod common;

use common::{VAULT_BIN, describe, private_tempdir};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use authvault::keys::{KekStore, OsKeyring, Unlock};
use authvault::model::{Credential, CredentialKind, Identity, Provider, Snapshot, SnapshotSource};
use authvault::store::{NewAccount, Store};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;

const ACCOUNTS: usize = 100;

fn vault_cmd(vault: &Path) -> Command {
    let mut cmd = Command::new(VAULT_BIN);
    cmd.arg("--vault").arg(vault).stdin(Stdio::null());
    for var in [
        "AUTHVAULT_PATH",
        "AUTHVAULT_PASSPHRASE",
        "AUTHVAULT_AGENT_ID",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Nothing is fetched (fresh snapshots); were it, it would fail here.
    for var in authvault::config::ENDPOINT_VARS {
        cmd.env(var, "http://127.0.0.1:9");
    }
    cmd
}

/// 100 API-key accounts, alternating providers, each with a fresh snapshot.
fn populate(store: &mut Store) {
    for i in 0..ACCOUNTS {
        let provider = if i % 2 == 0 {
            Provider::OpenAi
        } else {
            Provider::Claude
        };
        let label = format!("acct-{i}");
        store
            .add_account(&NewAccount {
                provider,
                label: label.clone(),
                identity: Identity::default(),
                credentials: vec![Credential::ApiKey(SecretString::from(format!(
                    "sk-bench-{i:03}-0123456789abcdef0123456789abcdef"
                )))],
                active: CredentialKind::ApiKey,
            })
            .expect("add account");
        let snapshot = Snapshot::empty(provider, SnapshotSource::Headers, Utc::now());
        store.save_snapshot(&label, &snapshot).expect("snapshot");
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{}", describe(&out));
}

fn exec(c: &mut Criterion) {
    let dir = private_tempdir();
    let mut group = c.benchmark_group("exec");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("true", |b| {
        let mut cmd = Command::new("true");
        b.iter(|| run(&mut cmd));
    });

    if let Err(e) = OsKeyring.probe() {
        eprintln!(
            "note: skipping exec/vault_exec_*: {e} (run inside `scripts/test.sh --session -- cargo bench --bench exec`)"
        );
        return;
    }
    let path = dir.path().join("vault").join("vault.db");
    let out = vault_cmd(&path).arg("init").output().expect("spawn vault");
    assert!(out.status.success(), "vault init: {}", describe(&out));
    let mut store = Store::open(&path, &Unlock::Keyring(&OsKeyring)).expect("keyring unlock");
    populate(&mut store);

    let mut pinned = vault_cmd(&path);
    pinned.args(["exec", "--account", "acct-50", "--", "true"]);
    group.bench_function("vault_exec_account_keyring", |b| {
        b.iter(|| run(&mut pinned));
    });
    let mut selected = vault_cmd(&path);
    selected.args(["exec", "--", "true"]);
    group.bench_function("vault_exec_select_keyring", |b| {
        b.iter(|| run(&mut selected));
    });
    group.finish();
    if let Err(e) = OsKeyring.delete(store.vault_id()) {
        eprintln!("note: could not delete the bench vault's keyring entry: {e}");
    }
}

criterion_group!(benches, exec);
criterion_main!(benches);
