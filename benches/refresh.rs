//! Refresh benchmarks for authvault (issue 4, "Benchmarks").
//!
//! Every figure is a whole `vault token --account bench` process against the
//! in-process fake provider of the integration suite (real HTTP on
//! 127.0.0.1), on a passphrase vault holding one Claude OAuth account:
//!
//! * `token_process/valid_no_network`: the stored access token is valid, so no
//!   request is made (checked with the fake's counters, outside the timing).
//! * `token_process/refresh_needed`: before each run the stored `expires_at`
//!   is moved into the past (raw SQL, not timed); the run refreshes against
//!   the fake. Besides criterion's estimate, 100 individually timed runs give
//!   the median and p99 printed on stderr.
//! * `token_process/refresh_16_concurrent`: expire, then 16 `vault token`
//!   processes at once, timed until the last has exited; median and p99 over
//!   20 rounds on stderr, each round checked to have made exactly one refresh.
//!
//! These vaults use Argon2id at its floor (m = 19 MiB, t = 2, p = 1) so the
//! figures show the refresh rather than the KDF;
//! `token_process/valid_no_network_default_kdf` repeats the first case with
//! the default cost (m = 64 MiB, t = 3, p = 4): the real whole-process figure
//! of a passphrase vault.
//!
//! Run with `cargo bench --bench refresh` (no keyring needed).

// Pedantic lints that make no sense in a benchmark binary:
#![allow(
    missing_docs,         // criterion_group! generates an undocumented `pub fn`
    clippy::print_stderr, // the self-collected percentiles are reported on stderr
    clippy::missing_panics_doc, // setup failures panic on purpose: a bench has no caller to report to
)]

mod common;

use common::{FLOOR_KDF, PASSPHRASE, VAULT_BIN, describe, loadavg, private_tempdir};

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use authvault::keys::{KdfCost, Unlock};
use authvault::store::Store;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use secrecy::SecretString;

/// The fake provider of the integration suite, compiled from its own source.
///
/// `#[path = "../tests/suite/fake_provider.rs"] mod fake_provider;` alone does
/// not build: a file loaded through a file `#[path]` looks for its own
/// `mod http;` next to itself (`tests/suite/http.rs`, E0583) instead of in
/// `tests/suite/fake_provider/`. A directory `#[path]` on an inline module
/// restores the layout the test crate has, so its submodules resolve as there.
#[path = "../tests/suite"]
#[allow(
    dead_code,            // the bench uses a few of the fake's knobs, the suite uses them all
    unused_imports,       // clippy passes `--cfg test`, so the fake's self-tests module is compiled, without its `#[test]` functions
)]
mod suite {
    pub mod fake_provider;
}

use suite::fake_provider::{self as fake, Ep, FakeProvider, Prov};

/// The one account of every benchmarked vault.
const LABEL: &str = "bench";
/// Processes started at once in `refresh_16_concurrent`.
const CONCURRENT: usize = 16;
/// Individually timed runs of `valid_no_network` (median and p99).
const VALID_RUNS: usize = 100;
/// Individually timed runs of `valid_no_network_default_kdf` (median).
const DEFAULT_KDF_RUNS: usize = 10;
/// Individually timed runs of `refresh_needed` (median and p99).
const REFRESH_RUNS: usize = 100;
/// Rounds of `refresh_16_concurrent` (median and p99).
const CONCURRENT_ROUNDS: usize = 20;

// ----------------------------------------------------------------- setup --

/// A passphrase vault with one Claude OAuth account whose login the fake
/// knows (as `Env::seed` in tests/suite/providers.rs does), valid for an hour.
struct Bench<'f> {
    /// Held for its `Drop`: the directory lives as long as the vault.
    dir: tempfile::TempDir,
    path: PathBuf,
    fake: &'f FakeProvider,
    who: fake::Identity,
}

impl<'f> Bench<'f> {
    fn new(fake: &'f FakeProvider, cost: KdfCost) -> Self {
        let dir = private_tempdir();
        let path = dir.path().join("vault").join("vault.db");
        let passphrase = SecretString::from(PASSPHRASE);
        let mut store = Store::init(&path, &Unlock::Passphrase(&passphrase, cost)).expect("init");
        let who = fake::Identity::new("bench@example.com", "uuid-bench", "max");
        store
            .add_account(&fake.seeded_account(Prov::Claude, LABEL, &who))
            .expect("seed account");
        Self {
            dir,
            path,
            fake,
            who,
        }
    }

    /// `vault --vault <path> token --account bench`, the passphrase and every
    /// endpoint passed to the child only (this process's environment is left
    /// alone), nothing inherited that would change what is measured.
    fn token_cmd(&self) -> Command {
        let mut cmd = Command::new(VAULT_BIN);
        cmd.arg("--vault")
            .arg(&self.path)
            .args(["token", "--account", LABEL])
            .env_remove("AUTHVAULT_PATH")
            .env_remove("AUTHVAULT_NEW_PASSPHRASE")
            .env_remove("AUTHVAULT_AGENT_ID")
            .env_remove("AUTHVAULT_REFRESH_LEASE_SECS")
            .env_remove("RUST_LOG")
            .env("AUTHVAULT_PASSPHRASE", PASSPHRASE)
            // No user configuration file: the endpoints below are the only ones.
            .env("AUTHVAULT_CONFIG", self.dir.path().join("no-config.json"))
            .envs(self.fake.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// What every `vault token` must print: the newest access token the fake issued.
    fn expected(&self) -> Vec<u8> {
        let token = self
            .fake
            .current_access(Prov::Claude, &self.who.account_id)
            .expect("the fake issued a token");
        format!("{token}\n").into_bytes()
    }

    fn refreshes(&self) -> usize {
        self.fake.refreshes(Prov::Claude)
    }

    /// Moves the stored expiry a minute into the past (as `Env::expire`).
    fn expire(&self) {
        let at = (chrono::Utc::now() - chrono::Duration::minutes(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true); // the vault's one time form
        let raw = rusqlite::Connection::open(&self.path).expect("raw open");
        raw.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let n = raw
            .execute(
                "UPDATE credentials SET expires_at = ?1 WHERE kind = 'oauth'
                 AND account_id = (SELECT id FROM accounts WHERE label = ?2)",
                rusqlite::params![at, LABEL],
            )
            .expect("expire");
        assert_eq!(n, 1, "exactly one OAuth credential expired");
    }
}

/// Runs `cmd` to completion; returns its stdout (the token and a newline).
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn vault");
    assert!(out.status.success(), "vault token: {}", describe(&out));
    out.stdout
}

// ----------------------------------------------------------------- stats --

/// Nearest-rank percentile of sorted timings.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (percent * sorted.len()).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Prints median, p99 (nearest rank: the maximum below 100 timings), min and max.
fn report(name: &str, mut timings: Vec<Duration>) {
    timings.sort_unstable();
    let n = timings.len();
    let median = if n.is_multiple_of(2) {
        (timings[n / 2 - 1] + timings[n / 2]) / 2
    } else {
        timings[n / 2]
    };
    eprintln!(
        "{name}: n = {n}, median {}, p99 {}, min {}, max {} (loadavg {})",
        ms(median),
        ms(percentile(&timings, 99)),
        ms(timings[0]),
        ms(timings[n - 1]),
        loadavg(),
    );
}

// ------------------------------------------------------------ the cases --

/// `n` individually timed runs of a `vault token` that needs no setup.
fn timed_runs(cmd: &mut Command, expected: &[u8], n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            let out = run(cmd);
            let elapsed = start.elapsed();
            assert_eq!(out, expected);
            elapsed
        })
        .collect()
}

/// One `vault token` that must refresh: expire (not timed), run (timed),
/// then check (not timed) that exactly one refresh reached the fake.
fn timed_refresh(bench: &Bench<'_>, cmd: &mut Command) -> Duration {
    bench.expire();
    let before = bench.refreshes();
    let start = Instant::now();
    let out = cmd.output().expect("spawn vault");
    let elapsed = start.elapsed();
    assert!(out.status.success(), "vault token: {}", describe(&out));
    assert_eq!(bench.refreshes() - before, 1, "one refresh per run");
    assert_eq!(
        out.stdout,
        bench.expected(),
        "the refreshed token is printed"
    );
    elapsed
}

/// Expire, start 16 `vault token` at once, time until the last has exited;
/// checks every output and that the fake saw exactly one refresh.
fn concurrent_round(bench: &Bench<'_>, cmd: &mut Command) -> Duration {
    bench.expire();
    let before = bench.refreshes();
    let start = Instant::now();
    let children: Vec<Child> = (0..CONCURRENT)
        .map(|_| cmd.spawn().expect("spawn vault"))
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait vault"))
        .collect();
    let elapsed = start.elapsed();
    let expected = bench.expected();
    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "process {i}: {}", describe(out));
        assert_eq!(out.stdout, expected, "process {i} prints the new token");
    }
    assert_eq!(
        bench.refreshes() - before,
        1,
        "{CONCURRENT} processes at once refresh exactly once"
    );
    elapsed
}

fn token_process(c: &mut Criterion) {
    let fake = FakeProvider::start();
    eprintln!("token_process: loadavg at start {}", loadavg());
    let mut group = c.benchmark_group("token_process");
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // 1. Valid token: no request reaches the fake.
    let valid = Bench::new(&fake, FLOOR_KDF);
    let mut cmd = valid.token_cmd();
    let requests = fake.count(Ep::ClaudeToken);
    assert_eq!(run(&mut cmd), valid.expected());
    assert_eq!(
        fake.count(Ep::ClaudeToken),
        requests,
        "a valid token is served without a network call"
    );
    group.bench_function("valid_no_network", |b| b.iter(|| run(&mut cmd)));
    let timings = timed_runs(&mut cmd, &valid.expected(), VALID_RUNS);
    report("token_process/valid_no_network (self-timed)", timings);
    assert_eq!(
        fake.count(Ep::ClaudeToken),
        requests,
        "still no network call"
    );

    // 1b. The same with the default Argon2id cost: what a user really waits.
    let default_kdf = Bench::new(&fake, KdfCost::default());
    let mut cmd = default_kdf.token_cmd();
    assert_eq!(run(&mut cmd), default_kdf.expected());
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("valid_no_network_default_kdf", |b| {
        b.iter(|| run(&mut cmd));
    });
    let timings = timed_runs(&mut cmd, &default_kdf.expected(), DEFAULT_KDF_RUNS);
    report(
        "token_process/valid_no_network_default_kdf (self-timed)",
        timings,
    );

    // 2. Refresh needed: only the `vault token` process is timed.
    let refresh = Bench::new(&fake, FLOOR_KDF);
    let mut cmd = refresh.token_cmd();
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("refresh_needed", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| timed_refresh(&refresh, &mut cmd)).sum());
    });
    let timings = (0..REFRESH_RUNS)
        .map(|_| timed_refresh(&refresh, &mut cmd))
        .collect();
    report("token_process/refresh_needed (self-timed)", timings);

    // 3. Sixteen processes at once on an expired token.
    let fleet = Bench::new(&fake, FLOOR_KDF);
    let mut cmd = fleet.token_cmd();
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("refresh_16_concurrent", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| concurrent_round(&fleet, &mut cmd)).sum());
    });
    let rounds = (0..CONCURRENT_ROUNDS)
        .map(|_| concurrent_round(&fleet, &mut cmd))
        .collect();
    report("token_process/refresh_16_concurrent (self-timed)", rounds);
    group.finish();

    assert_eq!(
        fake.invalid_grants(Prov::Claude),
        0,
        "no refresh was refused"
    );
    assert_eq!(fake.revoked(Prov::Claude), 0, "no refresh token was reused");
    eprintln!("token_process: loadavg at end {}", loadavg());
}

criterion_group!(benches, token_process);
criterion_main!(benches);
