//! What every whole-process benchmark shares: the `vault` binary, a private
//! temporary directory, the Argon2id floor, the machine's load for the
//! report. Included by each bench with `mod common;`.
#![allow(dead_code)] // each bench uses the part it needs

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use authvault::keys::KdfCost;

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
