//! The `vault` binary end to end, with the passphrase unlock method.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use authvault::keys::{MemoryKeyring, Unlock};
use authvault::store::Store;

use super::common::{
    FAST_KDF_ARGS, TempVault, contains, fails, files_below, mode, ok, stderr, stdout, with_stdin,
};

fn init(tv: &TempVault) {
    let mut args = vec!["init", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    ok(&mut tv.cmd_pw(&args));
}

fn login(tv: &TempVault, provider: &str, label: &str, key: &str) {
    tv.login_api_key(provider, label, key);
}

#[test]
fn a_stored_key_comes_back_byte_exact_and_is_never_on_disk_in_clear() {
    let tv = TempVault::new();
    init(&tv);
    let key = "sk-proj-Zx8$q!CANARYkey/+=~`'\"end";
    // A connection held open keeps the WAL from being checkpointed away, so the
    // scan sees the write-ahead log as the writer left it.
    let raw = tv.raw();
    let _: i64 = raw
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .expect("read");
    login(&tv, "openai", "work", key);
    let out = ok(&mut tv.cmd_pw(&["token", "--account", "work"]));
    assert_eq!(out.stdout, format!("{key}\n").into_bytes());

    let scan = |when: &str| {
        let files = files_below(tv.vault_dir());
        assert!(!files.is_empty());
        for f in files {
            let bytes = fs::read(&f).expect("read");
            assert!(
                !contains(&bytes, key.as_bytes()),
                "{when}: key bytes found in {}",
                f.display()
            );
            assert!(
                !contains(&bytes, b"CANARYkey"),
                "{when}: key fragment found in {}",
                f.display()
            );
        }
    };
    assert!(
        files_below(tv.vault_dir())
            .iter()
            .any(|f| f.to_string_lossy().ends_with("-wal")),
        "WAL present before checkpoint"
    );
    scan("before checkpoint");
    raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    scan("after checkpoint");
}

#[test]
fn token_without_account_picks_the_single_account_or_lists_candidates() {
    let tv = TempVault::new();
    init(&tv);
    let out = fails(&mut tv.cmd_pw(&["token"]));
    assert!(stderr(&out).contains("has no accounts"), "{}", stderr(&out));
    login(&tv, "openai", "one", "sk-one");
    assert_eq!(stdout(&ok(&mut tv.cmd_pw(&["token"]))), "sk-one\n");
    login(&tv, "openai", "two", "sk-two");
    login(&tv, "claude", "c1", "sk-ant-c1");
    let out = fails(&mut tv.cmd_pw(&["token", "--provider", "openai"]));
    assert!(
        stderr(&out).contains("one, two") && stderr(&out).contains("--account"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&ok(&mut tv.cmd_pw(&["token", "--provider", "claude"]))),
        "sk-ant-c1\n"
    );
    let out = fails(&mut tv.cmd_pw(&["token", "--account", "nope"]));
    assert!(
        stderr(&out).contains("no account `nope`") && stderr(&out).contains("c1, one, two"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn accounts_can_be_renamed_disabled_enabled_and_removed() {
    let tv = TempVault::new();
    init(&tv);
    login(&tv, "openai", "a", "sk-a");
    ok(&mut tv.cmd_pw(&["accounts", "rename", "a", "b"]));
    ok(&mut tv.cmd_pw(&["accounts", "disable", "b"]));
    let out = fails(&mut tv.cmd_pw(&["token", "--account", "b"]));
    assert!(
        stderr(&out).contains("vault accounts enable b"),
        "{}",
        stderr(&out)
    );
    ok(&mut tv.cmd_pw(&["accounts", "enable", "b"]));
    assert_eq!(
        stdout(&ok(&mut tv.cmd_pw(&["token", "--account", "b"]))),
        "sk-a\n"
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "accounts"])).stdout).expect("json");
    assert_eq!(listed[0]["label"], "b");
    assert_eq!(listed[0]["provider"], "openai");
    assert_eq!(listed[0]["enabled"], true);
    ok(&mut tv.cmd_pw(&["accounts", "remove", "b"]));
    let listed: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "accounts"])).stdout).expect("json");
    assert_eq!(listed, serde_json::json!([]));
    // Re-login replaces the key of an existing account.
    login(&tv, "claude", "c", "sk-old");
    let out = with_stdin(
        &mut tv.cmd_pw(&[
            "login",
            "claude",
            "--api-key-stdin",
            "--no-validate",
            "--account",
            "c",
        ]),
        b"sk-new",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&ok(&mut tv.cmd_pw(&["token", "--account", "c"]))),
        "sk-new\n"
    );
    // A taken label is refused, naming the fix.
    let out = with_stdin(
        &mut tv.cmd_pw(&[
            "login",
            "claude",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "c",
        ]),
        b"sk-x",
    );
    assert!(
        !out.status.success() && stderr(&out).contains("--account c"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_api_key_input_is_refused_and_changes_nothing() {
    let tv = TempVault::new();
    init(&tv);
    let before = tv.bytes();
    for input in [&b""[..], b"  \n", b"sk a b", b"\xff\xfe"] {
        let out = with_stdin(
            &mut tv.cmd_pw(&[
                "login",
                "openai",
                "--api-key-stdin",
                "--no-validate",
                "--label",
                "x",
            ]),
            input,
        );
        assert!(!out.status.success(), "{input:?} accepted");
        assert!(
            stderr(&out).contains("API key on stdin"),
            "{}",
            stderr(&out)
        );
    }
    let out = with_stdin(
        &mut tv.cmd_pw(&[
            "login",
            "openai",
            "--api-key-stdin",
            "--label",
            "bad label!",
        ]),
        b"sk-ok",
    );
    assert!(stderr(&out).contains("invalid label"), "{}", stderr(&out));
    assert_eq!(tv.bytes(), before);
}

#[test]
fn a_wrong_passphrase_is_its_own_error_and_changes_no_byte() {
    let tv = TempVault::new();
    init(&tv);
    login(&tv, "openai", "w", "sk-w");
    let before = tv.bytes();
    let out = fails(
        tv.cmd(&["token"])
            .env("AUTHVAULT_PASSPHRASE", "not the passphrase"),
    );
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tv.bytes(), before);
    // Corrupting the wrapped key instead is reported as corruption, not as a wrong passphrase.
    let raw = tv.raw();
    let mut wrapped: Vec<u8> = raw
        .query_row("SELECT wrapped FROM key_wraps", [], |r| r.get(0))
        .expect("read wrap");
    wrapped[40] ^= 0x55;
    raw.execute("UPDATE key_wraps SET wrapped = ?1", [wrapped])
        .expect("tamper");
    let out = fails(&mut tv.cmd_pw(&["token"]));
    assert!(
        stderr(&out).contains("corrupted") && !stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
}

fn sealed_values(tv: &TempVault) -> Vec<Vec<u8>> {
    let raw = tv.raw();
    let mut all = Vec::new();
    for col in authvault::store::SEALED_COLUMNS {
        let mut stmt = raw
            .prepare(&format!(
                "SELECT {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid",
                c = col.column,
                t = col.table
            ))
            .expect("prepare");
        all.extend(
            stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
                .expect("query")
                .map(Result::unwrap),
        );
    }
    all
}

#[test]
fn a_passphrase_change_rewraps_keys_only() {
    let tv = TempVault::new();
    init(&tv);
    login(&tv, "openai", "a", "sk-a");
    login(&tv, "claude", "b", "sk-b");
    let before = sealed_values(&tv);
    assert_eq!(before.len(), 3, "root secret + two keys");
    let mut args = vec!["passphrase", "change"];
    args.extend(FAST_KDF_ARGS);
    ok(tv
        .cmd_pw(&args)
        .env("AUTHVAULT_NEW_PASSPHRASE", "a brand new passphrase"));
    assert_eq!(sealed_values(&tv), before);
    let out = fails(&mut tv.cmd_pw(&["token", "--account", "a"]));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    let out = ok(tv
        .cmd(&["token", "--account", "a"])
        .env("AUTHVAULT_PASSPHRASE", "a brand new passphrase"));
    assert_eq!(stdout(&out), "sk-a\n");
}

#[test]
fn a_vault_from_a_newer_version_is_refused_untouched() {
    let tv = TempVault::new();
    init(&tv);
    tv.raw()
        .pragma_update(None, "user_version", 99)
        .expect("stamp");
    let before = tv.bytes();
    let out = fails(&mut tv.cmd_pw(&["token"]));
    assert!(
        stderr(&out).contains("format version 99") && stderr(&out).contains("upgrade authvault"),
        "{}",
        stderr(&out)
    );
    let out = fails(&mut tv.cmd_pw(&["status"]));
    assert!(stderr(&out).contains("newer"), "{}", stderr(&out));
    assert_eq!(tv.bytes(), before);
}

#[test]
fn loose_modes_are_refused_then_repaired_by_doctor_fix_with_an_audit_entry() {
    let tv = TempVault::new();
    init(&tv);
    fs::set_permissions(&tv.path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = fails(&mut tv.cmd_pw(&["token"]));
    let err = stderr(&out);
    assert!(
        err.contains(&tv.path.display().to_string())
            && err.contains("0644")
            && err.contains("chmod 600"),
        "{err}"
    );
    assert!(err.contains("vault doctor --fix"), "{err}");
    let out = fails(&mut tv.cmd_pw(&["doctor"]));
    assert!(stdout(&out).contains("FAIL modes"), "{}", stdout(&out));
    fs::set_permissions(tv.vault_dir(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let out = ok(&mut tv.cmd_pw(&["--json", "doctor", "--fix"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(mode(&tv.path), 0o600);
    assert_eq!(mode(tv.vault_dir()), 0o700);
    let audit: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "audit"])).stdout).expect("json");
    let fixes: Vec<_> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == "doctor.fix_modes")
        .collect();
    assert_eq!(fixes.len(), 1, "{audit}");
    assert_eq!(
        fixes[0]["details"]["fixed"]
            .as_array()
            .expect("fixed")
            .len(),
        2
    );
    ok(&mut tv.cmd_pw(&["audit", "verify"]));
}

#[test]
fn every_audit_entry_names_the_host_that_wrote_it() {
    let tv = TempVault::new();
    let mut args = vec!["init", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    ok(tv.cmd_pw(&args).env("AUTHVAULT_HOST", "build-1"));
    login(&tv, "openai", "a", "sk-a");
    ok(tv
        .cmd_pw(&["token", "--account", "a"])
        .env("AUTHVAULT_HOST", "build-7"));
    let audit: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "audit"])).stdout).expect("json");
    let hosts: Vec<(&str, &str)> = audit
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["host"].as_str().expect("every entry has a host"),
            )
        })
        .collect();
    // The first entry, written as the vault is made, names the host too;
    // without AUTHVAULT_HOST, entries name the node.
    let node = authvault::process::node_name();
    assert_eq!(
        hosts,
        [
            ("vault.init", "build-1"),
            ("account.create", node.as_str()),
            ("secret.read", "build-7"),
        ],
        "{audit}"
    );
    let table = stdout(&ok(&mut tv.cmd_pw(&["audit"])));
    assert!(table.contains("on build-7"), "{table}");
    ok(&mut tv.cmd_pw(&["audit", "verify"]));
}

#[test]
fn a_failing_audit_write_means_no_secret_is_returned() {
    let tv = TempVault::new();
    init(&tv);
    login(&tv, "openai", "a", "sk-AUDITCANARY");
    tv.raw()
        .execute_batch("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END;")
        .expect("trigger");
    let out = fails(&mut tv.cmd_pw(&["token", "--account", "a"]));
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(&out));
    assert!(!stderr(&out).contains("AUDITCANARY"));
    assert!(
        stderr(&out).contains("audit log is read-only"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_and_doctor_describe_the_vault() {
    let tv = TempVault::new();
    let out = fails(&mut tv.cmd_pw(&["status"]));
    assert!(stderr(&out).contains("vault init"), "{}", stderr(&out));
    init(&tv);
    login(&tv, "openai", "a", "sk-a");
    login(&tv, "openai", "b", "sk-b");
    login(&tv, "claude", "c", "sk-c");
    let s: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "status"])).stdout).expect("json");
    assert_eq!(s["format_version"], authvault::db::format_version());
    assert_eq!(s["unlock_methods"], serde_json::json!(["passphrase"]));
    assert_eq!(s["accounts"], serde_json::json!({"claude": 1, "openai": 2}));
    assert_eq!(s["audit_entries"], 4);
    assert_eq!(s["audit"]["chain"], "verified");
    assert_eq!(s["audit"]["state"], "intact");
    assert!(s["keyring"]["usable"].is_boolean());
    let d: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "doctor"])).stdout).expect("json");
    let names: Vec<_> = d["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["check"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["modes", "integrity", "keyring", "sealed", "audit"]);
    assert_eq!(d["ok"], true, "{d}");
}

#[test]
fn init_refuses_an_existing_path_and_weak_kdf_parameters() {
    let tv = TempVault::new();
    init(&tv);
    let before = tv.bytes();
    let mut args = vec!["init", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    let out = fails(&mut tv.cmd_pw(&args));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(tv.bytes(), before);
    let other = TempVault::new();
    let out = fails(&mut other.cmd_pw(&["init", "--passphrase", "--kdf-memory-kib", "1024"]));
    assert!(stderr(&out).contains("memory 1024 KiB"), "{}", stderr(&out));
    assert!(!other.path.exists());
}

#[test]
fn a_database_failure_names_what_was_being_done() {
    let tv = TempVault::new();
    init(&tv);
    login(&tv, "openai", "a", "sk-a");
    tv.raw()
        .execute_batch("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END;")
        .expect("trigger");
    for (args, op) in [
        (&["accounts", "rename", "a", "b"][..], "renaming an account"),
        (&["token", "--account", "a"][..], "reading a token"),
    ] {
        let out = fails(&mut tv.cmd_pw(args));
        let expected = format!("vault database, {op}: audit log is read-only");
        assert!(
            stderr(&out).contains(&expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn adding_an_unlock_method_the_vault_has_names_the_command_that_replaces_it() {
    let tv = TempVault::new();
    init(&tv);
    let before = tv.bytes();
    let mut args = vec!["passphrase", "add"];
    args.extend(FAST_KDF_ARGS);
    let out = fails(
        tv.cmd_pw(&args)
            .env("AUTHVAULT_NEW_PASSPHRASE", "a second passphrase"),
    );
    let err = stderr(&out);
    assert!(
        err.contains("already has a passphrase unlock method"),
        "{err}"
    );
    assert!(err.contains("`vault passphrase change`"), "{err}");
    assert_eq!(tv.bytes(), before);
}

#[test]
fn unlocking_with_a_method_the_vault_lacks_names_the_command_that_adds_it() {
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let ring = MemoryKeyring::default();
    let err = Store::open(&tv.path, &Unlock::Keyring(&ring))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("this vault has no keyring unlock method (it has: passphrase)"),
        "{err}"
    );
    assert!(err.contains("`vault keyring add`"), "{err}");
}

#[test]
fn a_rekey_without_every_unlock_method_says_which_one_is_missing() {
    let tv = TempVault::new();
    let ring = MemoryKeyring::default();
    tv.init_passphrase()
        .add_method(&Unlock::Keyring(&ring))
        .expect("add keyring");
    let err = tv.open_passphrase().rekey().unwrap_err().to_string();
    assert!(err.contains("needs the keyring unlock method too"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
}
