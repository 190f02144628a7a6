//! Dashboard benchmark (issue "`vault dashboard`": startup to first frame
//! on a vault with 50 accounts, goal ≤ 50 ms).
//!
//! `dashboard/first_frame_50_accounts`: what the dashboard does between an
//! unlocked vault and its first full frame, through the same code: the
//! worker's `load` (accounts, newest snapshots, budgets, health, policy,
//! the selector's pick, live sessions) from a real SQLite vault of 50
//! accounts with a snapshot each, then the view drawn into a 120×40
//! `TestBackend`. `dashboard/draw_50_accounts` is the redraw alone (what
//! every key press and tick costs the UI thread). Unlocking (Argon2id or the
//! keyring) comes before and is measured by `benches/vault.rs`.
//!
//! The whole process, self-timed and printed on stderr (needs `tmux`;
//! skipped with a note without it): from starting `vault dashboard` in a
//! 120×40 tmux pane on a passphrase vault of 50 accounts (Argon2id floor)
//! until `capture-pane` shows the accounts panel filled in, polled every
//! 2 ms; includes tmux, process start and unlock. Run with
//! `cargo bench --bench dashboard`.

#![allow(
    missing_docs,         // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr, // the self-timed process runs are reported on stderr
)]

mod common;

// The dashboard lives in the binary; its state and view modules are pure
// enough to be compiled into this bench as they are.
#[allow(dead_code, clippy::all, clippy::pedantic)]
#[path = "../src/cli/dashboard/state.rs"]
mod state;
#[allow(dead_code, clippy::all, clippy::pedantic)]
#[path = "../src/cli/dashboard/view.rs"]
mod view;

use std::hint::black_box;
use std::time::Duration;

use authvault::config::Endpoints;
use authvault::keys::{MemoryKeyring, Unlock};
use authvault::manager::Manager;
use authvault::model::{
    Credential, CredentialKind, Identity, Provider, Snapshot, SnapshotSource, UsageWindow,
};
use authvault::store::{NewAccount, Store};
use chrono::{TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use secrecy::SecretString;

use common::{FLOOR_KDF, PASSPHRASE, VAULT_BIN, loadavg, private_tempdir};

const ACCOUNTS: usize = 50;

fn seed(store: &mut Store) {
    let now = Utc::now();
    for i in 0..ACCOUNTS as u32 {
        let provider = if i % 2 == 0 {
            Provider::Claude
        } else {
            Provider::OpenAi
        };
        let label = format!("account-{i:02}");
        store
            .add_account(&NewAccount {
                provider,
                label: label.clone(),
                identity: Identity::default(),
                credentials: vec![Credential::ApiKey(SecretString::from(format!(
                    "sk-bench-{i}"
                )))],
                active: CredentialKind::ApiKey,
            })
            .expect("add account");
        let window = |name: &str, used: f64, hours: i64| UsageWindow {
            utilization_percent: Some(used),
            resets_at: Some(now + TimeDelta::hours(hours)),
            ..UsageWindow::named(name)
        };
        let mut snap = Snapshot::empty(provider, SnapshotSource::UsageEndpoint, now);
        snap.plan = Some("max".into());
        snap.windows = vec![
            window("five_hour", f64::from(i * 7 % 100), 3),
            window("seven_day", f64::from(i * 3 % 100), 100),
        ];
        store.save_snapshot(&label, &snap).expect("snapshot");
    }
}

fn dashboard(c: &mut Criterion) {
    let dir = private_tempdir();
    let keyring = MemoryKeyring::default();
    let path = dir.path().join("vault").join("vault.db");
    let mut store = Store::init(&path, &Unlock::Keyring(&keyring)).expect("init");
    seed(&mut store);
    let mut manager =
        Manager::new(store, Endpoints::default(), Duration::from_secs(30)).expect("manager");
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut group = c.benchmark_group("dashboard");
    group.bench_function("first_frame_50_accounts", |b| {
        b.iter(|| {
            let mut s = state::DashboardState::new(false, Utc::now());
            s.apply(state::load(&mut manager).expect("load"));
            term.draw(|f| view::draw(f, &s)).expect("draw");
            black_box(term.backend().buffer().area);
        });
    });
    let mut s = state::DashboardState::new(false, Utc::now());
    s.apply(state::load(&mut manager).expect("load"));
    assert_eq!(s.loaded.as_ref().map(|l| l.accounts.len()), Some(ACCOUNTS));
    group.bench_function("draw_50_accounts", |b| {
        b.iter(|| {
            term.draw(|f| view::draw(f, black_box(&s))).expect("draw");
        });
    });
    group.finish();
}

/// Whole `vault dashboard` processes: start to the first frame with the
/// accounts in it, median and max of `RUNS`, on stderr; and the same for a
/// shell that only prints the awaited text, which is what tmux and the
/// polling cost.
fn whole_process() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("dashboard/process: skipped, no tmux");
        return;
    }
    let dir = private_tempdir();
    let path = dir.path().join("vault").join("vault.db");
    let passphrase = SecretString::from(PASSPHRASE);
    let mut store = Store::init(&path, &Unlock::Passphrase(&passphrase, FLOOR_KDF)).expect("init");
    seed(&mut store);
    drop(store);
    let dashboard = format!("{VAULT_BIN} --vault {} dashboard", path.display());
    let baseline = "echo 'Accounts (50)'; exec sleep 60";
    for (name, command) in [
        ("vault_dashboard", dashboard.as_str()),
        ("baseline_echo", baseline),
    ] {
        let (median, max) = first_frame(command);
        eprintln!(
            "dashboard/process/{name}: start to first frame with 50 accounts, {RUNS} runs: median {median:.1} ms, max {max:.1} ms (loadavg {})",
            loadavg()
        );
    }
}

/// Self-timed runs of [`whole_process`].
const RUNS: usize = 10;

/// Median and max milliseconds from starting `command` in a new 120×40
/// tmux pane until the pane shows `Accounts (50)`.
fn first_frame(command: &str) -> (f64, f64) {
    // A server per run: a new session on a server being killed can fail.
    let tmux = |run: usize, args: &[&str]| {
        let socket = format!("authvault-bench-{}-{run}", std::process::id());
        std::process::Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .env("AUTHVAULT_PASSPHRASE", PASSPHRASE)
            .env_remove("AUTHVAULT_PATH")
            .env_remove("RUST_LOG")
            .output()
            .expect("run tmux")
    };
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let start = std::time::Instant::now();
        let size = ["-x", "120", "-y", "40"];
        let mut args = vec!["new-session", "-d", "-s", "b"];
        args.extend(size);
        args.push(command);
        let out = tmux(run, &args);
        assert!(out.status.success(), "tmux: {}", common::describe(&out));
        loop {
            let screen = tmux(run, &["capture-pane", "-p", "-t", "b"]);
            if String::from_utf8_lossy(&screen.stdout).contains("Accounts (50)") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no first frame");
            std::thread::sleep(Duration::from_millis(2));
        }
        times.push(start.elapsed());
        tmux(run, &["kill-server"]);
    }
    times.sort();
    (
        (times[RUNS / 2 - 1] + times[RUNS / 2]).as_secs_f64() * 500.0,
        times[RUNS - 1].as_secs_f64() * 1000.0,
    )
}

fn benches(c: &mut Criterion) {
    dashboard(c);
    whole_process();
}

criterion_group!(dashboard_benches, benches);
criterion_main!(dashboard_benches);
