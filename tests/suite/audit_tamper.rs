//! Every kind of tampering with the audit log is detected and the first bad
//! entry is named.

use authvault::store::{AuditReport, ChainState};

use super::common::{Backend, TempVault, fails, ok, on_both_backends, stdout, with_stdin};

/// A passphrase vault on `backend` with exactly `n` audit entries, made
/// through the CLI, as a template copied per case.
fn template(backend: Backend, n: i64) -> TempVault {
    let tv = TempVault::on(backend);
    tv.init_cli_passphrase();
    let out = with_stdin(
        &mut tv.cmd_pw(&[
            "login",
            "openai",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "a",
        ]),
        b"sk-a",
    );
    assert!(out.status.success(), "{}", super::common::stderr(&out));
    let entries = || tv.raw_db().query_i64("SELECT count(*) FROM audit_log");
    while entries() < n {
        ok(&mut tv.cmd_pw(&["token", "--account", "a"]));
    }
    assert_eq!(entries(), n);
    tv
}

/// `vault --json audit verify`: the report, whatever the exit status.
fn verify(tv: &TempVault) -> serde_json::Value {
    let out = tv
        .cmd_pw(&["--json", "audit", "verify"])
        .output()
        .expect("spawn vault");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", super::common::stderr(&out)))
}

fn first_bad(report: &serde_json::Value) -> i64 {
    assert_eq!(
        report["state"], "broken",
        "tampering went unnoticed: {report}"
    );
    report["first_bad"].as_i64().expect("first_bad")
}

const N: i64 = 8;
/// Each column of an entry and an edit of it (`mac`, a blob, per backend below).
const FIELDS: [(&str, &str); 12] = [
    ("at", "'2020-01-01T00:00:00.000000Z'"),
    ("uid", "uid + 1"),
    ("pid", "pid + 1"),
    ("exe", "'/usr/bin/evil'"),
    ("agent_id", "'someone-else'"),
    ("action", "'account.enable'"),
    ("account_id", "coalesce(account_id, 0) + 1"),
    ("account", "'other'"),
    ("outcome", "'denied'"),
    ("details", "'{}'"),
    ("host", "'other-host'"),
    // A host removed makes the entry look older than format 12 (v1 MAC).
    ("host", "NULL"),
];

on_both_backends!(
    every_tampering_is_detected_naming_the_first_bad_entry,
    vault_audit_verify_exits_non_zero_naming_the_entry_and_appends_refuse_a_forged_head,
);

fn every_tampering_is_detected_naming_the_first_bad_entry(backend: Backend) {
    let t = template(backend, N);
    assert_eq!(verify(&t)["state"], "intact");
    let zero_mac = t.raw_db().blob_literal(&[0; 32]);
    let mut cases: Vec<(String, String, i64)> = Vec::new();
    for seq in 1..=N {
        for (field, value) in FIELDS.into_iter().chain([("mac", zero_mac.as_str())]) {
            cases.push((
                format!("modify {field} of {seq}"),
                format!("UPDATE audit_log SET {field} = {value} WHERE seq = {seq}"),
                seq,
            ));
        }
        cases.push((
            format!("delete {seq}"),
            format!("DELETE FROM audit_log WHERE seq = {seq}"),
            seq,
        ));
    }
    for (a, b) in [(1, 2), (2, 5), (3, 8), (7, 8)] {
        let cols =
            "at, uid, pid, exe, agent_id, action, account_id, account, outcome, details, mac, host";
        cases.push((
            format!("swap {a} and {b}"),
            format!(
                "CREATE TEMP TABLE x AS SELECT * FROM audit_log WHERE seq IN ({a}, {b});
                 UPDATE audit_log SET ({cols}) = (SELECT {cols} FROM x WHERE x.seq = {b}) WHERE seq = {a};
                 UPDATE audit_log SET ({cols}) = (SELECT {cols} FROM x WHERE x.seq = {a}) WHERE seq = {b};"
            ),
            a,
        ));
    }
    for k in [1, 3, 4] {
        cases.push((
            format!("insert a copy of {k} at the end"),
            format!("INSERT INTO audit_log SELECT {} , at, uid, pid, exe, agent_id, action, account_id, account, outcome, details, mac, host FROM audit_log WHERE seq = {k}", N + 1),
            N + 1,
        ));
    }
    cases.push((
        "insert between entries by renumbering".into(),
        String::from(
            "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4; UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100;
             INSERT INTO audit_log SELECT 4, at, uid, pid, exe, agent_id, 'vault.init', account_id, account, outcome, details, mac, host FROM audit_log WHERE seq = 1;"
        ),
        4,
    ));
    for k in 1..=3 {
        cases.push((
            format!("truncate last {k}"),
            format!("DELETE FROM audit_log WHERE seq > {}", N - k),
            N - k + 1,
        ));
    }
    cases.push((
        "truncate and rewrite the head".into(),
        format!("DELETE FROM audit_log WHERE seq = {N}; UPDATE vault_meta SET audit_seq = {}, audit_head = (SELECT mac FROM audit_log WHERE seq = {})", N - 1, N - 1),
        N,
    ));
    cases.push(("empty the log".into(), "DELETE FROM audit_log".into(), 1));
    let total = cases.len();
    for (name, sql, expected) in cases {
        let tv = t.copy();
        tv.raw_db().exec(&sql);
        let report = verify(&tv);
        assert_eq!(first_bad(&report), expected, "{name}: {report:?}");
    }
    assert!(total >= 100, "{total} cases");
}

fn vault_audit_verify_exits_non_zero_naming_the_entry_and_appends_refuse_a_forged_head(
    backend: Backend,
) {
    let t = template(backend, 5);
    let tv = t.copy();
    ok(&mut tv.cmd_pw(&["audit", "verify"]));
    tv.raw_db()
        .exec("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3");
    let out = fails(&mut tv.cmd_pw(&["audit", "verify"]));
    assert!(
        stdout(&out).contains("first bad entry 3"),
        "{}",
        stdout(&out)
    );
    let out = fails(&mut tv.cmd_pw(&["--json", "audit", "verify"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["state"], "broken");
    assert_eq!(report["first_bad"], 3);

    // Truncation plus a forged head: no new entry may paper over it.
    let tv = t.copy();
    tv.raw_db()
        .exec("DELETE FROM audit_log WHERE seq = 5; UPDATE vault_meta SET audit_seq = 4, audit_head = (SELECT mac FROM audit_log WHERE seq = 4);");
    let out = fails(&mut tv.cmd_pw(&["token", "--account", "a"]));
    assert!(out.stdout.is_empty());
    assert_eq!(first_bad(&verify(&tv)), 5);
}

/// `vault audit verify` while another connection keeps writing: the head
/// and the entries are read from one snapshot, so a write landing between
/// the two reads is not taken for tampering. The test verifies until 200
/// verifications have seen the log grow since the one before (the window
/// it is about), and fails if that never happens. SQLite only: it drives
/// two library stores in one process.
#[test]
fn a_chain_verified_while_it_grows_is_intact_every_time() {
    const GROWN: usize = 200;
    let tv = template(Backend::Sqlite, 2);
    let writing = std::sync::atomic::AtomicBool::new(true);
    let reports = std::thread::scope(|s| {
        s.spawn(|| {
            let mut store = tv.open_passphrase();
            let mut n = 0u32;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                store
                    .record("test.write", &serde_json::json!({ "n": n }))
                    .expect("append");
                n += 1;
                // Keep the log short: each verification reads all of it.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        let store = tv.open_passphrase();
        let mut reports: Vec<AuditReport> = Vec::new();
        let mut grown = 0;
        while grown < GROWN && reports.len() < 3000 {
            let report = store.verify_audit().expect("verify");
            if reports.last().is_some_and(|r| report.entries > r.entries) {
                grown += 1;
            }
            reports.push(report);
        }
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        reports
    });
    let grown = reports
        .windows(2)
        .filter(|w| w[1].entries > w[0].entries)
        .count();
    assert_eq!(
        grown,
        GROWN,
        "the writes did not interleave with the verifications ({} verifications)",
        reports.len()
    );
    let broken: Vec<&AuditReport> = reports
        .iter()
        .filter(|r| r.state != ChainState::Intact)
        .collect();
    assert!(
        broken.is_empty(),
        "{} of {} verifications during writes reported a broken chain, first: {:?}",
        broken.len(),
        reports.len(),
        broken[0]
    );
}
