//! Faults on PostgreSQL: the server restarting under load (on a cluster of
//! its own: restarting the shared one would break the tests running beside
//! it), hosts whose clocks disagree, and a write lock held too long.

use std::ffi::OsString;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::suite::common::{Backend, LockHolder, OwnCluster, TempVault, ok, stderr, stdout};

/// What one `vault` call ended as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Exit 0, with nothing in its way.
    Done,
    /// Exit 0 after running its operation again on a new connection.
    DoneAfterRetry,
    /// A clean failure: the connection was lost before anything was
    /// committed, so nothing of the call was written.
    LostNothingWritten,
    /// A clean failure: the connection was lost after COMMIT was sent, so
    /// the call's write may or may not have landed (the message says so).
    LostAfterCommit,
}

/// Sorts a finished call; anything but success or a clean report of the
/// lost connection fails the test.
fn ending(what: &str, out: &Output) -> Ending {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    if out.status.success() {
        return if err.contains("on a new connection") {
            Ending::DoneAfterRetry
        } else {
            Ending::Done
        };
    }
    assert!(
        err.contains("the connection to PostgreSQL was lost"),
        "{what} failed other than by losing its connection ({}): {err}",
        out.status
    );
    if err.contains("after COMMIT was sent") {
        Ending::LostAfterCommit
    } else {
        Ending::LostNothingWritten
    }
}

/// Each successful call of the loop below writes exactly one audit entry.
const CALLS: [&str; 3] = ["reserve", "commit", "token"];

#[test]
fn restarting_postgresql_under_load_loses_no_committed_write_and_every_call_ends_cleanly() {
    const WORKERS: usize = 6;
    const MAX_RESTARTS: usize = 12;
    const USED: u64 = 500;
    let cluster = OwnCluster::started();
    let tv = TempVault::on_cluster(&cluster);
    tv.init_with_work_budget(1_000_000_000);
    let entries_before = tv.raw_db().query_i64("SELECT count(*) FROM audit_log");

    let endings: Mutex<Vec<(&str, Ending)>> = Mutex::new(Vec::new());
    let committed_ids: Mutex<Vec<i64>> = Mutex::new(Vec::new());
    let running = AtomicBool::new(true);
    let record = |what: &'static str, out: &Output| {
        let e = ending(what, out);
        endings.lock().unwrap().push((what, e));
        e
    };
    let affected = || {
        let e = endings.lock().unwrap();
        let n = |k: Ending| e.iter().filter(|(_, x)| *x == k).count();
        (
            e.len(),
            n(Ending::DoneAfterRetry),
            n(Ending::LostNothingWritten) + n(Ending::LostAfterCommit),
        )
    };
    let mut restarts = 0;
    thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while running.load(Ordering::SeqCst) {
                    let out = tv
                        .cmd_pw(&["reserve", "--account", "work", "--tokens", "800", "--json"])
                        .output()
                        .expect("spawn vault reserve");
                    if !matches!(
                        record("reserve", &out),
                        Ending::Done | Ending::DoneAfterRetry
                    ) {
                        continue;
                    }
                    let r: serde_json::Value =
                        serde_json::from_slice(&out.stdout).expect("reserve --json");
                    let id = r["id"].as_i64().expect("id");
                    let out = tv
                        .cmd_pw(&[
                            "commit",
                            &id.to_string(),
                            "--input",
                            "300",
                            "--output",
                            "200",
                        ])
                        .output()
                        .expect("spawn vault commit");
                    if matches!(
                        record("commit", &out),
                        Ending::Done | Ending::DoneAfterRetry
                    ) {
                        committed_ids.lock().unwrap().push(id);
                    }
                    let out = tv
                        .cmd_pw(&["token", "--account", "work"])
                        .output()
                        .expect("spawn vault token");
                    if matches!(record("token", &out), Ending::Done | Ending::DoneAfterRetry) {
                        assert_eq!(stdout(&out).trim(), "sk-work");
                    }
                }
            });
        }
        // Restart while calls run, until restarts have cut calls short and
        // made calls run again on a new connection; each restart waits for
        // a dozen calls to finish since the last one.
        while restarts < MAX_RESTARTS {
            let (calls, retried, failed) = affected();
            if restarts >= 3 && retried >= 1 && failed + retried >= 3 {
                break;
            }
            while affected().0 < calls + 12 {
                thread::sleep(Duration::from_millis(20));
            }
            cluster.restart();
            restarts += 1;
        }
        while affected().0 < 12 * (restarts + 1) {
            thread::sleep(Duration::from_millis(20));
        }
        running.store(false, Ordering::SeqCst);
    });

    let endings = endings.into_inner().unwrap();
    let count = |what: &str, e: Ending| endings.iter().filter(|x| **x == (what, e)).count();
    let succeeded = |what: &str| count(what, Ending::Done) + count(what, Ending::DoneAfterRetry);
    let uncertain = |what: &str| count(what, Ending::LostAfterCommit);
    let retried: usize = CALLS.iter().map(|w| count(w, Ending::DoneAfterRetry)).sum();
    let failed: usize = CALLS
        .iter()
        .map(|w| count(w, Ending::LostNothingWritten) + count(w, Ending::LostAfterCommit))
        .sum();
    eprintln!(
        "{restarts} restarts, {} calls: {retried} succeeded after a retry, {failed} failed cleanly",
        endings.len()
    );
    // The window: restarts did cut into running calls, both ways.
    assert!(retried >= 1, "no call ran again on a new connection");
    assert!(
        failed + retried >= 3,
        "restarts met only {} calls",
        failed + retried
    );

    // No committed write was lost, none half-written: every reservation and
    // commit that was reported is in the ledger, and only calls whose COMMIT
    // went unanswered may have added more.
    let db = tv.raw_db();
    let reservations = db.query_i64("SELECT count(*) FROM quota_reservations");
    let reserved = succeeded("reserve") as i64;
    assert!(
        (reserved..=reserved + uncertain("reserve") as i64).contains(&reservations),
        "{reservations} reservations stored, {reserved} reported (+{} uncertain)",
        uncertain("reserve")
    );
    for id in committed_ids.into_inner().unwrap() {
        assert_eq!(
            db.query_text(&format!(
                "SELECT state FROM quota_reservations WHERE id = {id}"
            )),
            "committed",
            "reservation {id} was reported committed"
        );
    }
    let committed =
        db.query_i64("SELECT count(*) FROM quota_reservations WHERE state = 'committed'");
    let commits = succeeded("commit") as i64;
    assert!((commits..=commits + uncertain("commit") as i64).contains(&committed));
    assert_eq!(
        db.query_i64(
            "SELECT count(*) FROM quota_reservations
             WHERE (state = 'committed') <> (used_tokens IS NOT NULL AND used_tokens = 500)"
        ),
        0,
        "a reservation is half-committed"
    );
    let out = ok(&mut tv.cmd_pw(&["quota", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("quota --json");
    let budget = &v["accounts"][0]["budgets"][0];
    assert_eq!(
        budget["used"].as_u64(),
        Some(USED * committed as u64),
        "{v}"
    );

    // One audit entry per successful call, the chain intact across the restarts.
    let entries = db.query_i64("SELECT count(*) FROM audit_log") - entries_before;
    let reported: usize = CALLS.iter().map(|w| succeeded(w)).sum();
    let maybe: usize = CALLS.iter().map(|w| uncertain(w)).sum();
    assert!(
        (reported as i64..=(reported + maybe) as i64).contains(&entries),
        "{entries} audit entries for {reported} successful calls (+{maybe} uncertain)"
    );
    let out = ok(&mut tv.cmd_pw(&["--json", "audit", "verify"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["state"], "intact", "{report}");
}

/// `c` with its clock `offset` off (libfaketime, e.g. `+1h`), as on a host
/// whose clock is wrong. Only this process's clock: the server's is right.
#[allow(clippy::disallowed_methods)] // the harness's own variable, not configuration
fn skewed(mut c: Command, offset: &str) -> Command {
    let lib = std::env::var("AUTHVAULT_TEST_FAKETIME_LIB")
        .expect("AUTHVAULT_TEST_FAKETIME_LIB: run the suite with scripts/test.sh");
    c.env("LD_PRELOAD", lib).env("FAKETIME", offset);
    c
}

#[test]
fn a_host_whose_clock_runs_an_hour_ahead_still_counts_another_hosts_open_reservation() {
    const OVER_BUDGET: i32 = 3;
    let tv = TempVault::on(Backend::Postgres);
    tv.init_with_work_budget(1_000);
    // A host with the right clock holds the whole budget for ten minutes.
    ok(&mut tv.cmd_pw(&[
        "reserve",
        "--account",
        "work",
        "--tokens",
        "1000",
        "--ttl",
        "10m",
    ]));

    // A host an hour ahead would, by its own clock, find that reservation
    // long expired and grant more; by the server's clock it is open.
    let out = skewed(
        tv.cmd_pw(&[
            "reserve",
            "--account",
            "work",
            "--tokens",
            "1",
            "--ttl",
            "10m",
        ]),
        "+1h",
    )
    .output()
    .expect("spawn vault reserve");
    assert_eq!(out.status.code(), Some(OVER_BUDGET), "{}", stderr(&out));
    assert_eq!(
        tv.raw_db()
            .query_i64("SELECT count(*) FROM quota_reservations"),
        1
    );
    // The window: that process's clock was an hour ahead (its audit entry
    // carries its own time), and the server's was not.
    let ahead = tv.raw_db().query_i64(
        "SELECT CAST(EXTRACT(EPOCH FROM (CAST(at AS timestamptz) - clock_timestamp())) AS BIGINT)
         FROM audit_log WHERE action = 'quota.reserve' AND outcome = 'over budget'",
    );
    assert!(
        (50 * 60..=70 * 60).contains(&ahead),
        "the skewed process's clock was {ahead} s ahead of the server's, not an hour"
    );
}

#[test]
fn a_write_that_waits_past_the_lock_timeout_fails_naming_it_and_writes_nothing() {
    let tv = TempVault::on(Backend::Postgres);
    tv.init_with_work_budget(1_000);
    let url = tv.location().to_str().expect("URL").to_owned();
    // The same database with a short wait for the lock (the URL's setting
    // wins over authvault's 60 s).
    let short = OsString::from(format!("{url}&options=-c%20lock_timeout%3D1s"));
    let raw = tv.raw_db();
    let written = || {
        (
            raw.query_i64("SELECT count(*) FROM audit_log"),
            raw.query_i64("SELECT count(*) FROM quota_reservations"),
        )
    };
    let before = written();

    let holder = LockHolder::take(&url);
    // The window: the lock is held, in this vault's database.
    assert_eq!(
        raw.query_i64(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        1
    );
    for args in [
        &["token", "--account", "work"][..],
        &["reserve", "--account", "work", "--tokens", "10"],
    ] {
        let out = tv
            .cmd_at(&short, args)
            .env("AUTHVAULT_PASSPHRASE", super::common::PASSPHRASE)
            .output()
            .expect("spawn vault");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("lock timeout")
                && err.contains("(usually the vault's write lock)")
                && err.contains("55P03"),
            "{args:?}: {err}"
        );
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(written(), before, "{args:?} wrote something");
    }

    // Once the lock is free, the same calls go through.
    drop(holder);
    assert_eq!(
        stdout(&ok(tv
            .cmd_at(&short, &["token", "--account", "work"])
            .env("AUTHVAULT_PASSPHRASE", super::common::PASSPHRASE))),
        "sk-work\n"
    );
    ok(tv
        .cmd_at(&short, &["reserve", "--account", "work", "--tokens", "10"])
        .env("AUTHVAULT_PASSPHRASE", super::common::PASSPHRASE));
    assert_eq!(written(), (before.0 + 2, before.1 + 1));
    ok(&mut tv.cmd_pw(&["audit", "verify"]));
}
