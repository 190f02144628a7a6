//! One vault, many hosts: two simulated hosts `a` and `b` share one vault
//! file (`AUTHVAULT_HOST`), each with its own Secret Service: host a uses
//! the session's, host b the second one `scripts/test.sh` starts
//! (`AUTHVAULT_TEST_HOST_B_BUS`). The keyring entry's name is per vault, so
//! only separate Secret Services give the two hosts separate keyrings.

use std::process::Command;

use authvault::crypto::{self, Key, Place};
use authvault::keys::{KekStore, OsKeyring};

use super::common::{
    FAST_KDF_ARGS, PASSPHRASE, TempVault, contains, fails, keyring_lock, ok, stderr, stdout,
    with_stdin,
};

const TOKEN: &str = "sk-shared-by-two-hosts";

/// `vault ARGS…` on host `host` (`a` or `b`), without a passphrase.
#[allow(clippy::disallowed_methods)] // the harness's own variable, not configuration
fn on(tv: &TempVault, host: &str, args: &[&str]) -> Command {
    let mut c = tv.cmd(args);
    c.env("AUTHVAULT_HOST", host);
    if host == "b" {
        let bus = std::env::var("AUTHVAULT_TEST_HOST_B_BUS")
            .expect("AUTHVAULT_TEST_HOST_B_BUS: run the suite with scripts/test.sh");
        c.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    c
}

/// As [`on`], with the shared passphrase given.
fn on_pw(tv: &TempVault, host: &str, args: &[&str]) -> Command {
    let mut c = on(tv, host, args);
    c.env("AUTHVAULT_PASSPHRASE", PASSPHRASE);
    c
}

fn token(tv: &TempVault, host: &str) -> Command {
    on(tv, host, &["token", "--account", "k"])
}

/// A vault made on host a with its keyring only, API key `k` in it.
fn one_host() -> TempVault {
    let tv = TempVault::new();
    ok(&mut on(&tv, "a", &["init"]));
    let out = with_stdin(
        &mut on(
            &tv,
            "a",
            &[
                "login",
                "openai",
                "--api-key-stdin",
                "--no-validate",
                "--label",
                "k",
            ],
        ),
        TOKEN.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    tv
}

/// A vault made on host a with its keyring and the shared passphrase, one
/// API key in it, and host b enrolled with the passphrase.
fn two_hosts() -> TempVault {
    let tv = one_host();
    let mut add = vec!["passphrase", "add"];
    add.extend(FAST_KDF_ARGS);
    ok(on(&tv, "a", &add).env("AUTHVAULT_NEW_PASSPHRASE", PASSPHRASE));
    // Before enrolling, b's keyring does not open the vault.
    let err = stderr(&fails(&mut token(&tv, "b")));
    assert!(err.contains("host `b`"), "{err}");
    assert!(err.contains("vault keyring add"), "{err}");
    ok(&mut on_pw(&tv, "b", &["keyring", "add"]));
    tv
}

fn rows(tv: &TempVault) -> Vec<(String, String)> {
    let raw = tv.raw();
    let mut stmt = raw
        .prepare("SELECT method, host FROM unlock_methods ORDER BY method, host")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(Result::unwrap)
        .collect()
}

/// Every row of the tables that hold data (not keys), as text.
fn data_rows(tv: &TempVault) -> Vec<String> {
    let raw = tv.raw();
    let mut out = Vec::new();
    for table in ["accounts", "credentials"] {
        let mut stmt = raw
            .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
            .expect("prepare");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("query");
        out.extend(rows.map(|r| format!("{table}: {}", r.unwrap().join("|"))));
    }
    out
}

#[test]
fn a_second_host_enrols_with_the_passphrase_then_unlocks_with_its_own_keyring_only() {
    let _lock = keyring_lock();
    let tv = two_hosts();
    assert_eq!(
        rows(&tv),
        [
            ("keyring".into(), "a".into()),
            ("keyring".into(), "b".into()),
            ("passphrase".into(), String::new()),
        ]
    );
    // No passphrase, no terminal: each host's own keyring unlocks.
    assert_eq!(stdout(&ok(&mut token(&tv, "b"))), format!("{TOKEN}\n"));
    assert_eq!(stdout(&ok(&mut token(&tv, "a"))), format!("{TOKEN}\n"));
    let s: serde_json::Value =
        serde_json::from_slice(&ok(&mut on(&tv, "b", &["--json", "status"])).stdout).expect("json");
    let methods = s["methods"].as_array().expect("methods");
    let find = |host: &str| {
        methods
            .iter()
            .find(|m| m["method"] == "keyring" && m["host"] == host)
            .unwrap_or_else(|| panic!("no keyring row of {host}: {s}"))
    };
    assert_eq!(find("b")["usable"], true, "{s}");
    assert_eq!(find("a")["usable"], serde_json::Value::Null, "{s}");
    assert_eq!(s["audit"]["state"], "intact", "{s}");
    let audit = stdout(&ok(&mut on(&tv, "a", &["--json", "audit"])));
    assert!(
        audit.contains("\"unlock_method.add\"") && audit.contains("\"host\": \"b\""),
        "the enrolment names the host: {audit}"
    );
}

/// `vault keyring join` on `host` with `code` on stdin, which must fail;
/// its stderr.
fn join_fails(tv: &TempVault, host: &str, code: &[u8]) -> String {
    let out = with_stdin(&mut on(tv, host, &["keyring", "join"]), code);
    assert!(!out.status.success(), "joined: {}", stdout(&out));
    stderr(&out)
}

#[test]
fn a_keyring_only_vault_enrols_a_new_host_with_a_code_from_an_unlocked_host() {
    let _lock = keyring_lock();
    let tv = one_host();
    // No passphrase anywhere: b has no way in of its own.
    let err = stderr(&fails(&mut token(&tv, "b")));
    assert!(err.contains("host `b`"), "{err}");

    // Host a, unlocked by its keyring, makes b's code: the only stdout.
    let err = stderr(&fails(&mut on(
        &tv,
        "a",
        &["--json", "keyring", "add", "--host", "b"],
    )));
    assert!(err.contains("without --json"), "{err}");
    let err = stderr(&fails(&mut on(
        &tv,
        "a",
        &["keyring", "add", "--host", "a"],
    )));
    assert!(err.contains("is this host"), "{err}");
    let out = ok(&mut on(&tv, "a", &["keyring", "add", "--host", "b"]));
    let code = stdout(&out).trim().to_owned();
    assert!(code.starts_with("authvault-enrol-1."), "{code}");
    assert!(
        stderr(&out).contains("vault keyring join"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(&code));
    assert_eq!(
        rows(&tv),
        [
            ("keyring".into(), "a".into()),
            ("keyring".into(), "b".into())
        ]
    );
    // b is enrolled until revoked: a second code is refused.
    let err = stderr(&fails(&mut on(
        &tv,
        "a",
        &["keyring", "add", "--host", "b"],
    )));
    assert!(err.contains("already"), "{err}");

    // The code joins only host b, and only this vault.
    let err = join_fails(&tv, "a", code.as_bytes());
    assert!(err.contains("this host is `a`"), "{err}");
    let other = TempVault::new();
    other.init_cli_passphrase();
    let err = join_fails(&other, "b", code.as_bytes());
    assert!(err.contains("it is for vault"), "{err}");
    let err = join_fails(&tv, "b", b"authvault-enrol-1.nonsense");
    assert!(err.contains("not an authvault enrolment code"), "{err}");
    assert!(fails(&mut token(&tv, "b")).status.code().is_some());

    // b joins; from then on its own keyring opens the vault.
    let out = with_stdin(
        &mut on(&tv, "b", &["keyring", "join"]),
        format!("{code}\n").as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Host b joined"), "{}", stdout(&out));
    assert_eq!(stdout(&ok(&mut token(&tv, "b"))), format!("{TOKEN}\n"));
    assert_eq!(stdout(&ok(&mut token(&tv, "a"))), format!("{TOKEN}\n"));

    // The code is nowhere in the vault or its audit log; the log says who
    // enrolled whom and that b joined.
    let key_part = code.rsplit('.').next().unwrap().to_owned();
    assert!(!contains(&tv.bytes(), key_part.as_bytes()));
    let audit = stdout(&ok(&mut on(&tv, "b", &["--json", "audit"])));
    assert!(!audit.contains(&key_part));
    assert!(audit.contains("\"enrolment code\""), "{audit}");
    assert!(audit.contains("\"unlock_method.join\""), "{audit}");

    // Revoking b from a: b's keyring opens nothing, the old code joins nothing.
    ok(&mut on(&tv, "a", &["keyring", "remove", "--host", "b"]));
    let err = stderr(&fails(&mut token(&tv, "b")));
    assert!(err.contains("host `b`"), "{err}");
    let err = join_fails(&tv, "b", code.as_bytes());
    assert!(err.contains("ask for a new code"), "{err}");
}

#[test]
fn removing_a_hosts_keyring_revokes_that_host_only_and_touches_no_data_row() {
    let _lock = keyring_lock();
    let tv = two_hosts();
    let before = data_rows(&tv);
    assert!(!before.is_empty());
    let out = ok(&mut on_pw(&tv, "a", &["keyring", "remove", "--host", "b"]));
    assert!(stdout(&out).contains("vault rekey"), "{}", stdout(&out));
    assert_eq!(
        rows(&tv),
        [
            ("keyring".into(), "a".into()),
            ("passphrase".into(), String::new()),
        ]
    );
    let wraps: i64 = tv
        .raw()
        .query_row("SELECT count(*) FROM key_wraps WHERE host = 'b'", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(wraps, 0, "b's wraps went with its row");
    let err = stderr(&fails(&mut token(&tv, "b")));
    assert!(err.contains("host `b`"), "{err}");
    assert_eq!(stdout(&ok(&mut token(&tv, "a"))), format!("{TOKEN}\n"));
    assert_eq!(data_rows(&tv), before, "no data row changed");
}

#[test]
fn a_host_never_removes_the_last_way_in_nor_leaves_only_keyrings_it_cannot_check() {
    let _lock = keyring_lock();
    let tv = two_hosts();
    // a's own keyring is proven, so the passphrase may go.
    ok(&mut on(&tv, "a", &["passphrase", "remove"]));
    // Only b's keyring would remain, which a cannot check: refused.
    let before = tv.bytes();
    let err = stderr(&fails(&mut on(&tv, "a", &["keyring", "remove"])));
    assert!(
        err.contains("only other hosts' keyrings would remain"),
        "{err}"
    );
    assert_eq!(tv.bytes(), before);
    // b can check its own, so b may revoke a; then b's is the last way in.
    ok(&mut on(&tv, "b", &["keyring", "remove", "--host", "a"]));
    let before = tv.bytes();
    let err = stderr(&fails(&mut on(&tv, "b", &["keyring", "remove"])));
    assert!(err.contains("only unlock method"), "{err}");
    assert_eq!(tv.bytes(), before);
    assert_eq!(stdout(&ok(&mut token(&tv, "b"))), format!("{TOKEN}\n"));
}

#[test]
fn a_rekey_lists_other_hosts_as_must_re_enrol_and_they_work_again_after_enrolling() {
    let _lock = keyring_lock();
    let tv = two_hosts();
    let report: serde_json::Value =
        serde_json::from_slice(&ok(&mut on_pw(&tv, "a", &["--json", "rekey"])).stdout)
            .expect("json");
    assert_eq!(
        report["must_re_enrol"],
        serde_json::json!(["b"]),
        "{report}"
    );
    // a's keyring and the passphrase got the new key; b's row is kept.
    assert_eq!(stdout(&ok(&mut token(&tv, "a"))), format!("{TOKEN}\n"));
    assert_eq!(rows(&tv).len(), 3);
    let err = stderr(&fails(&mut token(&tv, "b")));
    assert!(err.contains("host `b`"), "{err}");
    assert!(err.contains("must re-enrol"), "{err}");
    assert!(err.contains("vault keyring add"), "{err}");

    let out = ok(&mut on_pw(&tv, "b", &["keyring", "add"]));
    assert!(stdout(&out).contains("host b"), "{}", stdout(&out));
    assert_eq!(stdout(&ok(&mut token(&tv, "b"))), format!("{TOKEN}\n"));

    // Every rotation from a leaves b to re-enrol, and says so in words too.
    let text = stdout(&ok(&mut on_pw(&tv, "a", &["rekey"])));
    assert!(text.contains("Host b must re-enrol"), "{text}");
    assert!(text.contains("vault keyring add"), "{text}");
}

#[test]
fn a_rekey_that_would_lock_other_hosts_out_for_good_is_refused() {
    let _lock = keyring_lock();
    let tv = two_hosts();
    ok(&mut on(&tv, "a", &["passphrase", "remove"]));
    let before = tv.bytes();
    let err = stderr(&fails(&mut on(&tv, "a", &["rekey"])));
    assert!(err.contains("host(s) b unable to unlock"), "{err}");
    assert!(err.contains("`vault passphrase add`"), "{err}");
    assert_eq!(tv.bytes(), before, "nothing changed");
    assert_eq!(stdout(&ok(&mut token(&tv, "b"))), format!("{TOKEN}\n"));
}

/// The keyring wraps of a vault of format 10: before hosts, a wrap's
/// associated data named only the method.
fn legacy_place() -> Place<'static> {
    Place {
        table: "key_wraps",
        column: "keyring",
        row: 0,
        account: 0,
    }
}

#[test]
fn a_format_10_vault_keeps_unlocking_with_its_keyring_after_the_upgrade_on_any_host_name() {
    let _lock = keyring_lock();
    let tv = one_host();
    // Turn it into what format 10 wrote: the 0001 tables, one wrap per
    // method with the old associated data, no audit host, user_version 10.
    // (Its entries were MACed with their host, which is kept aside and put
    // back after the upgrade: a format 10 binary would have MACed them
    // without one, which needs the audit key.)
    let raw = tv.raw();
    let vault_id: String = raw
        .query_row("SELECT vault_id FROM vault_meta", [], |r| r.get(0))
        .expect("id");
    let kek = OsKeyring.load(&vault_id).expect("a's keyring entry");
    let (key_id, wrapped): (u32, Vec<u8>) = raw
        .query_row("SELECT key_id, wrapped FROM key_wraps", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("one wrap");
    let on_a = Place {
        column: "keyring@a",
        ..legacy_place()
    };
    let dek = crypto::open(|_| Some(&kek), &on_a, &wrapped).expect("a's wrap opens");
    let dek = Key::from_bytes(dek.as_slice().try_into().expect("32 bytes"));
    let old_wrap =
        crypto::seal(&kek, key_id, &legacy_place(), dek.expose_bytes()).expect("legacy wrap");
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF;
         BEGIN;
         CREATE TABLE um (
             method TEXT NOT NULL PRIMARY KEY CHECK (method IN ('keyring', 'passphrase')),
             kdf_params TEXT, kek_check BLOB NOT NULL, created_at TEXT NOT NULL) STRICT;
         INSERT INTO um SELECT method, kdf_params, kek_check, created_at FROM unlock_methods;
         CREATE TABLE kw (
             key_id INTEGER NOT NULL REFERENCES data_keys (key_id) ON DELETE CASCADE,
             method TEXT NOT NULL REFERENCES unlock_methods (method) ON DELETE CASCADE,
             wrapped BLOB NOT NULL, PRIMARY KEY (key_id, method)) STRICT;
         DROP TABLE key_wraps;
         DROP TABLE unlock_methods;
         ALTER TABLE um RENAME TO unlock_methods;
         ALTER TABLE kw RENAME TO key_wraps;
         ALTER TABLE audit_log RENAME COLUMN host TO host_kept;
         PRAGMA user_version = 10;
         COMMIT;",
    )
    .expect("downgrade");
    raw.execute(
        "INSERT INTO key_wraps (key_id, method, wrapped) VALUES (?1, 'keyring', ?2)",
        rusqlite::params![key_id, old_wrap],
    )
    .expect("legacy wrap");
    assert!(
        raw.query_row("PRAGMA foreign_key_check", [], |_| Ok(()))
            .is_err(),
        "the format 10 file is consistent"
    );
    drop(raw);

    // Opened by host "c" (a container renamed, say): the unnamed row is the
    // only host's, whatever this host is called now.
    assert_eq!(stdout(&ok(&mut token(&tv, "c"))), format!("{TOKEN}\n"));
    let raw = tv.raw();
    let version: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, authvault::db::format_version());
    assert_eq!(rows(&tv), [("keyring".into(), String::new())]);
    let wraps: Vec<(String, String)> = raw
        .prepare("SELECT method, host FROM key_wraps")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(Result::unwrap)
        .collect();
    assert_eq!(wraps, [("keyring".into(), String::new())]);
    raw.execute_batch(
        "UPDATE audit_log SET host = host_kept WHERE host_kept IS NOT NULL;
         ALTER TABLE audit_log DROP COLUMN host_kept;",
    )
    .expect("the entries' hosts back");
    assert_eq!(stdout(&ok(&mut token(&tv, "a"))), format!("{TOKEN}\n"));
    let s: serde_json::Value =
        serde_json::from_slice(&ok(&mut on(&tv, "a", &["--json", "status"])).stdout).expect("json");
    assert_eq!(s["audit"]["state"], "intact", "{s}");
}
