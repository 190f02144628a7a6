//! Canary scan: secrets carrying a marker never show up in logs, errors,
//! `Debug` output or `--json`, except `vault token`'s output.

use authvault::keys::{KdfCost, MemoryKeyring, Unlock};
use authvault::model::{Credential, CredentialKind};
use authvault::store::AccountSelector;
use secrecy::SecretString;

use super::common::{
    FAST_KDF_ARGS, PASSPHRASE, TempVault, memory_vault, oauth_account, stderr, stdout, with_stdin,
};

const MARKER: &str = "CANARY9f3b";

#[test]
fn no_command_prints_or_logs_a_secret() {
    let tv = TempVault::new();
    let key = format!("sk-{MARKER}-api");
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = tv.cmd_pw(args);
        cmd.env("RUST_LOG", "trace");
        let out = with_stdin(&mut cmd, stdin.unwrap_or(b""));
        (args.join(" "), out)
    };
    let mut init = vec!["init", "--passphrase"];
    init.extend(FAST_KDF_ARGS);
    let mut outputs = vec![run(&init, None)];
    outputs.push(run(
        &[
            "--json",
            "login",
            "openai",
            "--api-key-stdin",
            "--label",
            "c",
        ],
        Some(key.as_bytes()),
    ));
    outputs.push(run(
        &[
            "login",
            "claude",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "d",
        ],
        Some(format!("sk-ant-{MARKER}").as_bytes()),
    ));
    // A rejected key is not echoed back.
    outputs.push(run(
        &[
            "login",
            "openai",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "e",
        ],
        Some(format!("sk-{MARKER} with spaces").as_bytes()),
    ));
    // Nor is a rejected label that looks like a secret.
    outputs.push(run(
        &[
            "login",
            "openai",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "bad label",
        ],
        Some(key.as_bytes()),
    ));
    for args in [
        &["--json", "accounts"][..],
        &["accounts"],
        &["--json", "status"],
        &["status"],
        &["--json", "audit"],
        &["audit"],
        &["--json", "audit", "verify"],
        &["--json", "doctor"],
        &["--json", "rekey"],
        &["token", "--account", "missing"],
        &["token"],
        &["--json", "health", "--timeout", "2s"],
        &["health", "--timeout", "2s"],
        &["exec", "--account", "d", "--", "true"],
        &["exec", "--account", "c", "--", "no-such-command"],
        &["--json", "sessions"],
        &["--json", "history"],
        &["history"],
        &["accounts", "rename", "c", "c2"],
        &["--json", "accounts", "disable", "c2"],
        &["token", "--account", "c2"],
    ] {
        outputs.push(run(args, None));
    }
    // A legacy file whose unknown `auth_mode` is a secret: the error names
    // the field and its position, not the value.
    let src = tempfile::tempdir().expect("tempdir");
    let legacy = src.path().join("auth.json");
    std::fs::write(
        &legacy,
        format!(r#"{{"auth_mode": "sk-{MARKER}-mode", "OPENAI_API_KEY": "sk-{MARKER}-legacy"}}"#),
    )
    .expect("write legacy file");
    let legacy = legacy.to_str().expect("UTF-8 path");
    outputs.push(run(&["migrate", "--from", legacy], None));
    outputs.push(run(
        &["--json", "migrate", "--dry-run", "--from", legacy],
        None,
    ));
    for (what, out) in &outputs {
        assert!(
            !stdout(out).contains(MARKER),
            "`vault {what}` stdout: {}",
            stdout(out)
        );
        assert!(
            !stderr(out).contains(MARKER),
            "`vault {what}` stderr: {}",
            stderr(out)
        );
        assert!(
            !stderr(out).contains(PASSPHRASE),
            "`vault {what}` printed the passphrase"
        );
    }
    assert!(
        outputs
            .iter()
            .any(|(_, o)| stderr(o).contains("TRACE") || stderr(o).contains("DEBUG")),
        "trace logging was on"
    );
    // The commands whose job is to print a secret do, and only on stdout.
    let mut cmd = tv.cmd_pw(&["token", "--account", "d"]);
    cmd.env("RUST_LOG", "trace");
    let out = with_stdin(&mut cmd, b"");
    assert_eq!(stdout(&out), format!("sk-ant-{MARKER}\n"));
    assert!(!stderr(&out).contains(MARKER));
    let mut cmd = tv.cmd_pw(&["env", "--account", "d"]);
    cmd.env("RUST_LOG", "trace");
    let out = with_stdin(&mut cmd, b"");
    assert!(
        stdout(&out).contains(&format!("export ANTHROPIC_API_KEY='sk-ant-{MARKER}'")),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(MARKER));
}

#[test]
fn debug_output_of_public_types_is_redacted() {
    let ring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&ring);
    let new = oauth_account("dbg", MARKER);
    let info = store.add_account(&new).expect("add");
    let (_, credential) = store
        .credential("dbg", CredentialKind::OAuth, "test")
        .expect("read");
    let token = store
        .token(AccountSelector {
            label: Some("dbg"),
            provider: None,
        })
        .expect("token");
    let pw = SecretString::from(format!("pw-{MARKER}"));
    let unlock = Unlock::Passphrase(&pw, KdfCost::default());
    let key = authvault::crypto::Key::generate().expect("key");
    let api = Credential::ApiKey(SecretString::from(format!("sk-{MARKER}")));
    let debugs = [
        format!("{new:?}"),
        format!("{info:?}"),
        format!("{credential:?}"),
        format!("{token:?}"),
        format!("{store:?}"),
        format!("{unlock:?}"),
        format!("{key:?}"),
        format!("{api:?}"),
        format!("{ring:?}"),
        format!("{pw:?}"),
    ];
    for d in &debugs {
        assert!(!d.contains(MARKER), "Debug leaks: {d}");
    }
    assert!(debugs[2].contains("REDACTED"), "{}", debugs[2]);
}
