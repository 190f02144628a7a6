//! What every whole-process benchmark shares: the `vault` binary, a private
//! temporary directory, the Argon2id floor, the machine's load for the
//! report. Included by each bench with `mod common;`.
#![allow(dead_code)] // each bench uses the part it needs

use std::ffi::OsStr;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use authvault::keys::KdfCost;
use authvault::model::{Credential, CredentialKind, Identity, Provider};
use authvault::quota::{Period, Unit};
use authvault::store::{NewAccount, Store, Target};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use secrecy::SecretString;

/// The `vault` binary Cargo built for this bench (same profile).
pub const VAULT_BIN: &str = env!("CARGO_BIN_EXE_vault");
/// Passphrase of the benchmarked vaults (throw-away, not a secret).
pub const PASSPHRASE: &str = "bench-passphrase-not-a-secret";
/// Argon2id at its floor: the same code path, a small share of the time.
pub const FLOOR_KDF: KdfCost = KdfCost {
    m_kib: 19456,
    t: 2,
    p: 1,
};

/// A temp dir of mode 0700 (tempfile creates `0777 & !umask` by default).
/// Vaults go in a subdirectory that `Store::init` / `vault init` create
/// themselves, as in real use.
pub fn private_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("authvault-bench.")
        .permissions(Permissions::from_mode(0o700))
        .tempdir()
        .expect("temp dir")
}

/// The machine's load averages, for the report.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |e| format!("unknown ({e})"),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// A failed child's status and stderr, for a panic message.
pub fn describe(out: &Output) -> String {
    format!(
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// One account `bench` (an API key, `sk-bench`) with a budget no benchmark
/// exhausts.
pub fn seed_bench_account(store: &mut Store) {
    store
        .add_account(&NewAccount {
            provider: Provider::Claude,
            label: "bench".into(),
            identity: Identity::default(),
            credentials: vec![Credential::ApiKey(SecretString::from("sk-bench"))],
            active: CredentialKind::ApiKey,
        })
        .expect("seed account");
    store
        .set_budget(Target::Account("bench"), Unit::Tokens, Period::Day, 1 << 50)
        .expect("budget");
}

/// `vault --vault VAULT ARGS…` with the bench passphrase, local state and a
/// missing configuration file in `dir`, and no inherited authvault setting.
pub fn vault_cmd(vault: &OsStr, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(VAULT_BIN);
    cmd.arg("--vault")
        .arg(vault)
        .args(args)
        .env_remove("AUTHVAULT_PATH")
        .env_remove("AUTHVAULT_DATABASE_URL")
        .env_remove("AUTHVAULT_AGENT_ID")
        .env_remove("RUST_LOG")
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE)
        .env("AUTHVAULT_STATE_DIR", dir.join("state"))
        .env("AUTHVAULT_CONFIG", dir.join("no-config.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd`; panics naming its stderr unless it succeeds.
pub fn run(mut cmd: Command) {
    let out = cmd.output().expect("spawn vault");
    assert!(out.status.success(), "vault: {}", describe(&out));
}

/// `workers` threads each running `per_worker` `vault reserve --account
/// bench --tokens 500` processes on `vault`; the time until the last has
/// exited.
pub fn reserve_round(vault: &OsStr, dir: &Path, workers: usize, per_worker: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                for _ in 0..per_worker {
                    run(vault_cmd(
                        vault,
                        dir,
                        &["reserve", "--account", "bench", "--tokens", "500"],
                    ));
                }
            });
        }
    });
    start.elapsed()
}

/// A benchmark group for rounds of whole processes: 10 flat samples, 1 s
/// warm-up, 10 s of measurement, throughput in `elements` per round.
pub fn process_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    elements: u32,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(u64::from(elements)));
    group
}
