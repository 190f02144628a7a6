//! Modes whatever the umask. A separate test binary (not part of `all`)
//! because the umask is process-wide: setting it to 000 inside the shared
//! suite would loosen the files other tests create at the same time.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use authvault::keys::{KdfCost, Unlock};
use authvault::model::{Credential, CredentialKind, Identity, Provider};
use authvault::store::{NewAccount, Store};
use rustix::fs::Mode;
use secrecy::SecretString;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn with_umask_000_the_directory_is_0700_and_every_file_0600() {
    rustix::process::umask(Mode::empty());
    let dir = tempfile::tempdir().expect("tempdir");

    // Through the binary (which inherits the umask).
    let cli_path = dir.path().join("cli").join("vault.db");
    let out = Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(["--vault"])
        .arg(&cli_path)
        .args([
            "init",
            "--passphrase",
            "--kdf-memory-kib",
            "19456",
            "--kdf-iterations",
            "2",
            "--kdf-parallelism",
            "1",
        ])
        .env("AUTHVAULT_PASSPHRASE", "umask test passphrase")
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(cli_path.parent().expect("dir")), 0o700);
    assert_eq!(mode(&cli_path), 0o600);

    // Through the library, with the store open so the WAL and shared-memory files exist.
    let path = dir.path().join("lib").join("vault.db");
    let pw = SecretString::from("umask test passphrase");
    let mut store = Store::init(
        &path,
        &Unlock::Passphrase(
            &pw,
            KdfCost {
                m_kib: 19456,
                t: 2,
                p: 1,
            },
        ),
    )
    .expect("init");
    store
        .add_account(&NewAccount {
            provider: Provider::OpenAi,
            label: "u".into(),
            identity: Identity::default(),
            credentials: vec![Credential::ApiKey(SecretString::from("sk-umask"))],
            active: CredentialKind::ApiKey,
        })
        .expect("add");
    assert_eq!(mode(path.parent().expect("dir")), 0o700);
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(path.parent().expect("dir")).expect("read_dir") {
        let p = entry.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        seen.push(p.file_name().expect("name").to_string_lossy().into_owned());
    }
    seen.sort();
    assert_eq!(seen, ["vault.db", "vault.db-shm", "vault.db-wal"]);
}
