//! The same vault on PostgreSQL (over a Unix socket) and on SQLite.
//!
//! * `backend_token/{sqlite,postgres}`: `Store::token` on an unlocked vault
//!   (one write transaction with its audit entry, a durable commit).
//! * `backend_token_process/{sqlite,postgres}`: one whole `vault token`
//!   process (start, connect, unlock with the passphrase at the Argon2id
//!   floor, the token transaction, exit).
//! * `backend_reserve_16_processes/{sqlite,postgres}`: 16 threads each start
//!   [`PER_WORKER`] whole `vault reserve` processes one after another;
//!   criterion reports reservations per second (elements/s). Besides
//!   criterion's estimates, [`ROUNDS`] individually timed rounds give
//!   medians on stderr.
//!
//! The bench starts a PostgreSQL cluster of its own with
//! `scripts/pg-cluster.sh` (Debian's `postgresql`; as root the server runs
//! as `postgres`) and removes it at the end. Run with
//! `cargo bench --bench postgres` (no keyring needed).

#![allow(
    missing_docs,               // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr,       // the self-timed figures are reported on stderr
    clippy::missing_panics_doc, // setup failures panic on purpose
)]

mod common;

use common::{
    FLOOR_KDF, PASSPHRASE, describe, loadavg, private_tempdir, process_group, reserve_round, run,
    seed_bench_account, vault_cmd,
};

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authvault::db::Location;
use authvault::keys::Unlock;
use authvault::store::{AccountSelector, Store};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use secrecy::SecretString;

/// Processes reserving at once.
const WORKERS: usize = 16;
/// `vault reserve` processes each worker runs per round.
const PER_WORKER: usize = 4;
/// Reservations per round.
const PER_ROUND: u32 = (WORKERS * PER_WORKER) as u32;
/// Self-timed rounds or processes (median).
const ROUNDS: usize = 10;

/// A PostgreSQL cluster of the bench's own, removed when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn script(dir: &Path, command: &str) -> std::process::Output {
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster.sh"))
            .arg(command)
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/pg-cluster.sh")
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Self::script(dir.path(), "start");
        assert!(out.status.success(), "PostgreSQL: {}", describe(&out));
        Self { dir }
    }

    /// The superuser's `postgres` database, over the socket.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}",
            self.dir.path().display()
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::script(self.dir.path(), "stop");
    }
}

/// The two vaults compared: what `--vault` names, and where.
struct Vaults {
    sqlite: OsString,
    postgres: OsString,
    dir: tempfile::TempDir,
    _cluster: Cluster,
}

impl Vaults {
    /// One account `bench` (an API key) with a budget no benchmark exhausts,
    /// in a vault file and in the cluster's database.
    fn create() -> Self {
        let cluster = Cluster::start();
        let dir = private_tempdir();
        let file = dir.path().join("vault").join("vault.db");
        let passphrase = SecretString::from(PASSPHRASE);
        for location in [
            Location::File(file.clone()),
            Location::parse(&cluster.url()).expect("url"),
        ] {
            let mut store = Store::init_at(&location, &Unlock::Passphrase(&passphrase, FLOOR_KDF))
                .expect("init");
            seed_bench_account(&mut store);
        }
        Self {
            sqlite: file.into_os_string(),
            postgres: cluster.url().into(),
            dir,
            _cluster: cluster,
        }
    }

    fn each(&self) -> [(&'static str, &OsString); 2] {
        [("sqlite", &self.sqlite), ("postgres", &self.postgres)]
    }

    fn cmd(&self, vault: &OsString, args: &[&str]) -> Command {
        vault_cmd(vault, self.dir.path(), args)
    }

    /// [`WORKERS`] × [`PER_WORKER`] reservations on `vault`, each a whole
    /// process; the time until the last has exited.
    fn reserve_round(&self, vault: &OsString) -> Duration {
        reserve_round(vault, self.dir.path(), WORKERS, PER_WORKER)
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    f64::midpoint(xs[(xs.len() - 1) / 2], xs[xs.len() / 2])
}

fn backend_token(c: &mut Criterion) {
    let v = Vaults::create();
    let passphrase = SecretString::from(PASSPHRASE);
    let mut group = c.benchmark_group("backend_token");
    for (name, vault) in v.each() {
        let location = Location::parse(&vault.to_string_lossy()).expect("location");
        let mut store =
            Store::open_at(&location, &Unlock::Passphrase(&passphrase, FLOOR_KDF)).expect("open");
        group.bench_function(name, |b| {
            b.iter(|| {
                store
                    .token(AccountSelector {
                        label: Some("bench"),
                        provider: None,
                    })
                    .expect("token")
            });
        });
    }
    group.finish();
}

fn backend_token_process(c: &mut Criterion) {
    let v = Vaults::create();
    eprintln!("backend_token_process: loadavg at start {}", loadavg());
    let mut group = c.benchmark_group("backend_token_process");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for (name, vault) in v.each() {
        group.bench_function(name, |b| {
            b.iter(|| run(v.cmd(vault, &["token", "--account", "bench"])));
        });
    }
    group.finish();
    // Side by side, alternating, so a change in the machine's load hits both.
    let mut ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS * 3 {
        for (i, (_, vault)) in v.each().into_iter().enumerate() {
            let start = Instant::now();
            run(v.cmd(vault, &["token", "--account", "bench"]));
            ms[i].push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let [sqlite, postgres] = ms.map(median);
    eprintln!(
        "backend_token_process (self-timed, {} alternating runs each): median sqlite {sqlite:.1} ms, \
         postgres {postgres:.1} ms, ratio {:.2} (loadavg {})",
        ROUNDS * 3,
        postgres / sqlite,
        loadavg()
    );
}

fn backend_reserve(c: &mut Criterion) {
    let v = Vaults::create();
    eprintln!(
        "backend_reserve_16_processes: loadavg at start {}",
        loadavg()
    );
    let mut group = process_group(c, "backend_reserve_16_processes", PER_ROUND);
    for (name, vault) in v.each() {
        group.bench_function(name, |b| b.iter(|| v.reserve_round(vault)));
    }
    group.finish();
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (i, (_, vault)) in v.each().into_iter().enumerate() {
            rates[i].push(f64::from(PER_ROUND) / v.reserve_round(vault).as_secs_f64());
        }
    }
    let [sqlite, postgres] = rates.map(median);
    eprintln!(
        "backend_reserve_16_processes (self-timed, {ROUNDS} alternating rounds of {PER_ROUND}): \
         median sqlite {sqlite:.0} reservations/s, postgres {postgres:.0} reservations/s (loadavg {})",
        loadavg()
    );
}

criterion_group!(
    benches,
    backend_token,
    backend_token_process,
    backend_reserve
);
criterion_main!(benches);
