//! Quota ledger benchmarks.
//!
//! * `quota_process/reserve_8_processes`: 8 threads each start
//!   [`PER_WORKER`] whole `vault reserve` processes one after another on a
//!   passphrase vault (Argon2id at its floor) with one account and a daily
//!   token budget that never runs out; criterion reports the throughput in
//!   reservations per second (elements/s). Besides criterion's estimate,
//!   [`ROUNDS`] individually timed rounds give the median rate on stderr.
//! * `quota_library/reserve_commit`: one reservation and its commit through
//!   the library on an unlocked vault (two transactions, each with its
//!   audit entry and a durable commit).
//!
//! Run with `cargo bench --bench quota` (no keyring needed).

#![allow(
    missing_docs,               // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr,       // the self-timed rates are reported on stderr
    clippy::missing_panics_doc, // setup failures panic on purpose
)]

mod common;

use common::{
    FLOOR_KDF, PASSPHRASE, loadavg, private_tempdir, process_group, reserve_round,
    seed_bench_account,
};

use authvault::keys::{MemoryKeyring, Unlock};
use authvault::store::{Store, Usage};
use chrono::TimeDelta;
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;

/// Processes reserving at once.
const WORKERS: usize = 8;
/// `vault reserve` processes each worker runs per round.
const PER_WORKER: usize = 5;
/// Reservations per round.
const PER_ROUND: u32 = (WORKERS * PER_WORKER) as u32;
/// Self-timed rounds (median rate).
const ROUNDS: usize = 10;

fn quota_process(c: &mut Criterion) {
    let dir = private_tempdir();
    let path = dir.path().join("vault").join("vault.db");
    let passphrase = SecretString::from(PASSPHRASE);
    let mut store = Store::init(&path, &Unlock::Passphrase(&passphrase, FLOOR_KDF)).expect("init");
    seed_bench_account(&mut store);
    drop(store);
    eprintln!("quota_process: loadavg at start {}", loadavg());
    let mut group = process_group(c, "quota_process", PER_ROUND);
    group.bench_function("reserve_8_processes", |b| {
        b.iter(|| reserve_round(path.as_os_str(), dir.path(), WORKERS, PER_WORKER));
    });
    group.finish();
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            f64::from(PER_ROUND)
                / reserve_round(path.as_os_str(), dir.path(), WORKERS, PER_WORKER).as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    eprintln!(
        "quota_process/reserve_8_processes (self-timed): {ROUNDS} rounds of {} reservations, \
         median {:.0} reservations/s, min {:.0}, max {:.0} (loadavg {})",
        PER_ROUND,
        f64::midpoint(rates[ROUNDS / 2 - 1], rates[ROUNDS / 2]),
        rates[0],
        rates[ROUNDS - 1],
        loadavg()
    );
}

fn quota_library(c: &mut Criterion) {
    let dir = private_tempdir();
    let keyring = MemoryKeyring::default();
    let path = dir.path().join("vault").join("vault.db");
    let mut store = Store::init(&path, &Unlock::Keyring(&keyring)).expect("init");
    seed_bench_account(&mut store);
    let usage = Usage {
        input: 300,
        output: 200,
        ..Usage::default()
    };
    let mut group = c.benchmark_group("quota_library");
    group.bench_function("reserve_commit", |b| {
        b.iter(|| {
            let r = store
                .reserve("bench", None, 500, TimeDelta::minutes(10))
                .expect("reserve");
            store.commit_reservation(r.id, &usage).expect("commit")
        });
    });
    group.finish();
}

criterion_group!(benches, quota_library, quota_process);
criterion_main!(benches);
