//! Hardening of the files authvault touches: `vault doctor --fix` changes
//! modes only on a vault it recognises, a configuration file others could
//! write is refused, `vault migrate` never blocks on a FIFO, and a vault
//! creation killed at any point leaves nothing that blocks the next one.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::common::{FAST_KDF_ARGS, TempVault, stderr, stdout, wait_or_kill};

fn init(tv: &TempVault) {
    drop(tv.init_passphrase());
}

// ---------------------------------------------------------------------------
// `vault migrate --from` a FIFO

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

#[test]
fn migrate_from_a_fifo_fails_naming_it_without_waiting_for_a_writer() {
    let tv = TempVault::new();
    init(&tv);
    let before = tv.bytes();
    let src = tempfile::tempdir().expect("tempdir");
    let fifo = src.path().join("auth.json");
    mkfifo(&fifo);
    let in_dir = tempfile::tempdir().expect("tempdir");
    let dir_fifo = in_dir.path().join("pipe.json");
    mkfifo(&dir_fifo);
    for (from, named) in [(&fifo, &fifo), (&in_dir.path().to_path_buf(), &dir_fifo)] {
        let mut child = tv
            .cmd_pw(&["migrate"])
            .arg("--from")
            .arg(from)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = wait_or_kill(&mut child, Duration::from_mins(1));
        let out = child.wait_with_output().expect("output");
        let status = status.unwrap_or_else(|| panic!("{}: vault migrate hung", from.display()));
        assert!(!status.success(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&named.display().to_string()) && err.contains("not a regular file"),
            "{err}"
        );
        assert_eq!(tv.bytes(), before, "the vault is unchanged");
    }
    // Without a vault, nothing is created either.
    let fresh = TempVault::new();
    let mut args = vec!["migrate", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    let mut child = fresh
        .cmd_pw(&args)
        .arg("--from")
        .arg(&fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status = wait_or_kill(&mut child, Duration::from_mins(1)).expect("vault migrate hung");
    assert!(!status.success());
    assert!(!fresh.path.exists());
}
