//! The quota ledger: many real `vault` processes against one budget, a
//! reservation whose holder was killed, and the ledger's rules through the
//! library.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use authvault::Error;
use authvault::keys::MemoryKeyring;
use authvault::model::Provider;
use authvault::quota::{Period, Unit};
use authvault::store::{BudgetStatus, Store, Target, Usage};
use chrono::{TimeDelta, Utc};

use super::common::{
    Backend, TempVault, api_key_account, memory_vault_on, ok, on_both_backends, stderr, stdout,
    wait_or_kill,
};

/// Exit status of `vault reserve` refused as over budget (README).
pub(super) const OVER_BUDGET: i32 = 3;

/// The one budget of `label` of this unit and period.
fn budget(store: &mut Store, label: &str, unit: Unit, period: Period) -> BudgetStatus {
    store
        .budgets()
        .expect("budgets")
        .into_iter()
        .find(|b| b.budget.subject == label && b.budget.unit == unit && b.budget.period == period)
        .expect("the budget is set")
}

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input,
        output,
        ..Usage::default()
    }
}

/// A passphrase vault on `backend` with one Claude account `work` and a
/// daily token budget, made through the CLI.
fn process_vault(backend: Backend, limit: u64) -> TempVault {
    let tv = TempVault::on(backend);
    tv.init_with_work_budget(limit);
    tv
}

/// `(used, reserved, remaining)` of the one budget of `work`, from `vault quota --json`.
fn work_budget(tv: &TempVault) -> (u64, u64, u64) {
    work_budget_of(&mut tv.cmd_pw(&["quota", "--json"]))
}

/// As [`work_budget`], from the output of `quota` (a `vault quota --json`).
pub(super) fn work_budget_of(quota: &mut Command) -> (u64, u64, u64) {
    let out = ok(quota);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("quota --json");
    let work = &v["accounts"][0];
    assert_eq!(work["account"], "work");
    let budgets = work["budgets"].as_array().expect("budgets");
    assert_eq!(budgets.len(), 1, "{budgets:?}");
    let n = |k: &str| budgets[0][k].as_u64().expect("a number");
    (n("used"), n("reserved"), n("remaining"))
}

on_both_backends!(
    eight_processes_reserving_against_one_budget_get_exactly_what_fits,
    a_reservation_whose_holder_was_killed_is_free_again_after_its_ttl,
    the_cli_sets_shows_and_unsets_budgets,
);

fn eight_processes_reserving_against_one_budget_get_exactly_what_fits(backend: Backend) {
    const WORKERS: usize = 8;
    const CYCLES: usize = 200;
    const LIMIT: u64 = 100_000;
    let tv = process_vault(backend, LIMIT);
    let granted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let running = AtomicBool::new(true);
    let mut samples = 0u32;
    thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (tv, granted, refused) = (&tv, &granted, &refused);
                s.spawn(move || {
                    for c in 0..CYCLES {
                        let out = tv
                            .cmd_pw(&["reserve", "--account", "work", "--tokens", "500", "--json"])
                            .output()
                            .expect("spawn vault reserve");
                        if out.status.code() == Some(OVER_BUDGET) {
                            assert!(stderr(&out).contains("over budget"), "{}", stderr(&out));
                            refused.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        assert!(
                            out.status.success(),
                            "worker {w} cycle {c}: {}",
                            stderr(&out)
                        );
                        let r: serde_json::Value =
                            serde_json::from_slice(&out.stdout).expect("reserve --json");
                        let id = r["id"].as_i64().expect("id").to_string();
                        ok(&mut tv.cmd_pw(&["commit", &id, "--input", "300", "--output", "200"]));
                        granted.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let sampler = s.spawn(|| {
            let mut n = 0u32;
            while running.load(Ordering::SeqCst) {
                let (used, reserved, _) = work_budget(&tv);
                assert!(
                    used + reserved <= LIMIT,
                    "sample {n}: used {used} + reserved {reserved} over {LIMIT}"
                );
                n += 1;
                thread::sleep(Duration::from_millis(20));
            }
            n
        });
        for w in workers {
            w.join().expect("worker");
        }
        running.store(false, Ordering::SeqCst);
        samples = sampler.join().expect("sampler");
    });
    assert_eq!(
        (granted.into_inner(), refused.into_inner()),
        (200, WORKERS * CYCLES - 200)
    );
    assert!(
        samples >= 20,
        "the reader took only {samples} samples during the run"
    );
    assert_eq!(work_budget(&tv), (LIMIT, 0, 0));
    let out = ok(&mut tv.cmd_pw(&["--json", "audit", "verify"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["state"], "intact");
}

/// `c` run by a shell that then sleeps an hour (as `c`'s own process
/// would, holding what it got): same program, arguments and environment.
fn then_sleep(c: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(r#""$0" "$@" && exec sleep 3600"#)
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

fn a_reservation_whose_holder_was_killed_is_free_again_after_its_ttl(backend: Backend) {
    const LIMIT: u64 = 100_000;
    let tv = process_vault(backend, LIMIT);
    // The holder: a shell that reserves the whole budget, prints the answer
    // and would release it an hour later, but is killed first.
    let mut holder = then_sleep(&tv.cmd_pw(&[
        "reserve",
        "--account",
        "work",
        "--tokens",
        "100000",
        "--ttl",
        "2s",
        "--json",
    ]));
    holder
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut holder = holder.spawn().expect("spawn holder");
    let mut answer = String::new();
    {
        use std::io::Read as _;
        let mut out = holder.stdout.take().expect("stdout");
        let mut buf = [0u8; 4096];
        while !answer.trim_end().ends_with('}') {
            let n = out.read(&mut buf).expect("read holder");
            assert!(n > 0, "the holder ended without a reservation: {answer}");
            answer.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&holder),
        rustix::process::Signal::KILL,
    )
    .expect("SIGKILL the holder");
    assert!(wait_or_kill(&mut holder, Duration::from_secs(30)).is_some());
    let r: serde_json::Value = serde_json::from_str(&answer).expect("reserve --json");
    let expires_at: chrono::DateTime<Utc> = r["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("a time");
    assert_eq!(
        (r["account"].as_str(), r["tokens"].as_u64()),
        (Some("work"), Some(LIMIT))
    );

    // Held: nothing more fits while it lasts.
    let out = tv
        .cmd_pw(&["reserve", "--account", "work", "--tokens", "1"])
        .output()
        .expect("spawn");
    if Utc::now() < expires_at {
        assert_eq!(out.status.code(), Some(OVER_BUDGET), "{}", stderr(&out));
    }
    // Past its TTL, with no process alive to release it, the whole budget is free.
    while Utc::now() <= expires_at {
        thread::sleep(Duration::from_millis(100));
    }
    let out = ok(&mut tv.cmd_pw(&["reserve", "--account", "work", "--tokens", "100000"]));
    assert!(
        stdout(&out).trim().parse::<i64>().is_ok(),
        "{}",
        stdout(&out)
    );
}

on_both_backends!(
    a_commit_records_the_usage_and_frees_the_rest_of_the_reservation,
    a_refusal_names_the_budget_and_every_applicable_budget_is_checked,
    requests_per_minute_limit_reservations_whatever_their_size,
    usage_above_the_reservation_must_fit_and_an_expired_reservation_cannot_be_committed,
    crossing_80_and_95_percent_is_noticed_once_per_window_and_recorded,
    each_ledger_change_writes_one_audit_entry,
);

fn library_vault(backend: Backend, keyring: &MemoryKeyring) -> (TempVault, Store) {
    let (tv, mut store) = memory_vault_on(backend, keyring);
    for (provider, label) in [
        (Provider::Claude, "work"),
        (Provider::Claude, "play"),
        (Provider::OpenAi, "oa"),
    ] {
        store
            .add_account(&api_key_account(provider, label, &format!("sk-{label}")))
            .expect("add");
    }
    (tv, store)
}

fn a_commit_records_the_usage_and_frees_the_rest_of_the_reservation(backend: Backend) {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = library_vault(backend, &keyring);
    store
        .set_budget(Target::Account("work"), Unit::Tokens, Period::Day, 1000)
        .expect("set");
    let r = store
        .reserve("work", None, 800, TimeDelta::minutes(10))
        .expect("reserve");
    let b = budget(&mut store, "work", Unit::Tokens, Period::Day);
    assert_eq!((b.used, b.reserved, b.remaining), (0, 800, 200));
    let done = store
        .commit_reservation(
            r.id,
            &Usage {
                input: 100,
                output: 50,
                cache_read: 30,
                cache_write: 20,
                model: Some("claude-sonnet".into()),
                usd_micros: None,
            },
        )
        .expect("commit");
    assert_eq!((done.reserved, done.used), (800, 200));
    let b = budget(&mut store, "work", Unit::Tokens, Period::Day);
    assert_eq!((b.used, b.reserved, b.remaining), (200, 0, 800));
    // Settled once: a second commit or a release is refused.
    for err in [
        store.commit_reservation(r.id, &usage(1, 1)).unwrap_err(),
        store.release_reservation(r.id).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::ReservationClosed {
                    state: "committed",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(matches!(
        store.release_reservation(9999),
        Err(Error::ReservationNotFound(9999))
    ));
}

fn a_refusal_names_the_budget_and_every_applicable_budget_is_checked(backend: Backend) {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = library_vault(backend, &keyring);
    store
        .set_budget(Target::Account("work"), Unit::Tokens, Period::Week, 10_000)
        .expect("set");
    store
        .set_budget(
            Target::Provider(Provider::Claude),
            Unit::Tokens,
            Period::Day,
            1_000,
        )
        .expect("set");
    store
        .set_budget(Target::Agent("bot"), Unit::Tokens, Period::FiveHours, 300)
        .expect("set");
    let ttl = TimeDelta::minutes(10);
    // The provider budget is shared by `work` and `play`.
    let held = store
        .reserve("play", None, 600, ttl)
        .expect("reserve on play");
    let err = store.reserve("work", None, 500, ttl).unwrap_err();
    match &err {
        Error::OverBudget {
            budget,
            used,
            reserved,
            requested,
            limit,
            resets_at,
        } => {
            assert_eq!(
                (budget.as_str(), *used, *reserved, *requested, *limit),
                ("provider claude tokens per day", 0, 600, 500, 1_000)
            );
            assert!(resets_at.is_some());
        }
        other => panic!("expected over budget, got {other}"),
    }
    // The agent budget applies on any account, the provider's does not reach OpenAI.
    store
        .reserve("oa", Some("bot"), 300, ttl)
        .expect("agent budget fits exactly");
    let err = store.reserve("oa", Some("bot"), 1, ttl).unwrap_err();
    assert!(
        err.to_string().contains("agent `bot` tokens per 5h"),
        "{err}"
    );
    store
        .reserve("oa", Some("other"), 5_000, ttl)
        .expect("no budget for other on oa");
    // Releasing frees the provider budget.
    store.release_reservation(held.id).expect("release");
    store
        .reserve("work", None, 1_000, ttl)
        .expect("the whole provider budget");
}

fn requests_per_minute_limit_reservations_whatever_their_size(backend: Backend) {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = library_vault(backend, &keyring);
    store
        .set_budget(Target::Agent("bot"), Unit::Requests, Period::Minute, 3)
        .expect("set");
    let ttl = TimeDelta::minutes(10);
    for _ in 0..3 {
        let r = store
            .reserve("work", Some("bot"), 1, ttl)
            .expect("within the rate");
        store.release_reservation(r.id).expect("release");
    }
    let err = store.reserve("oa", Some("bot"), 1, ttl).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::OverBudget {
                used: 3,
                requested: 1,
                limit: 3,
                ..
            }
        ),
        "{err}"
    );
    store
        .reserve("work", Some("another"), 1, ttl)
        .expect("another agent");
}

fn usage_above_the_reservation_must_fit_and_an_expired_reservation_cannot_be_committed(
    backend: Backend,
) {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = library_vault(backend, &keyring);
    store
        .set_budget(Target::Account("work"), Unit::Tokens, Period::Month, 1_000)
        .expect("set");
    let a = store
        .reserve("work", None, 400, TimeDelta::minutes(10))
        .expect("a");
    let b = store
        .reserve("work", None, 400, TimeDelta::minutes(10))
        .expect("b");
    let err = store
        .commit_reservation(a.id, &usage(500, 200))
        .unwrap_err();
    assert!(
        matches!(err, Error::OverBudget { requested: 300, .. }),
        "{err}"
    );
    store
        .commit_reservation(a.id, &usage(500, 100))
        .expect("200 over fits");
    let st = budget(&mut store, "work", Unit::Tokens, Period::Month);
    assert_eq!((st.used, st.reserved, st.remaining), (600, 400, 0));
    store.release_reservation(b.id).expect("release");

    let short = store
        .reserve("work", None, 10, TimeDelta::seconds(1))
        .expect("short");
    while Utc::now() <= short.expires_at {
        thread::sleep(Duration::from_millis(50));
    }
    let err = store
        .commit_reservation(short.id, &usage(5, 5))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReservationClosed {
                state: "expired",
                ..
            }
        ),
        "{err}"
    );
    store
        .release_reservation(short.id)
        .expect("an expired one may be released");
}

fn crossing_80_and_95_percent_is_noticed_once_per_window_and_recorded(backend: Backend) {
    let keyring = MemoryKeyring::default();
    let (tv, mut store) = library_vault(backend, &keyring);
    store
        .set_budget(Target::Account("work"), Unit::Tokens, Period::Day, 100)
        .expect("set");
    let ttl = TimeDelta::minutes(10);
    let thresholds =
        |n: &[authvault::store::Notice]| n.iter().map(|n| n.threshold).collect::<Vec<_>>();
    let r = store.reserve("work", None, 70, ttl).expect("70");
    assert_eq!(thresholds(&r.notices), Vec::<u8>::new());
    let r = store.reserve("work", None, 15, ttl).expect("85");
    assert_eq!(thresholds(&r.notices), [80]);
    let r = store.reserve("work", None, 5, ttl).expect("90");
    assert_eq!(thresholds(&r.notices), Vec::<u8>::new());
    store.release_reservation(r.id).expect("back to 85");
    let r = store.reserve("work", None, 12, ttl).expect("97");
    assert_eq!(thresholds(&r.notices), [95]);
    let r = store.reserve("work", None, 1, ttl).expect("98");
    assert!(r.notices.is_empty());
    let recorded = tv.raw_db().query_text(
        "SELECT string_agg(CAST(threshold AS TEXT) || ':' || CAST(level AS TEXT), ' ' ORDER BY id)
         FROM quota_notices",
    );
    assert_eq!(recorded, "80:85 95:97");
}

fn each_ledger_change_writes_one_audit_entry(backend: Backend) {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = library_vault(backend, &keyring);
    let count = |s: &Store| s.audit_entries(None).expect("audit").len();
    let before = count(&store);
    store
        .set_budget(Target::Account("work"), Unit::Tokens, Period::Day, 100)
        .expect("set");
    let r = store
        .reserve("work", Some("bot"), 60, TimeDelta::minutes(1))
        .expect("reserve");
    store
        .commit_reservation(r.id, &usage(10, 10))
        .expect("commit");
    let r = store
        .reserve("work", None, 50, TimeDelta::minutes(1))
        .expect("reserve");
    store.release_reservation(r.id).expect("release");
    store
        .reserve("work", None, 500, TimeDelta::minutes(1))
        .unwrap_err();
    store
        .unset_budget(Target::Account("work"), Unit::Tokens, Period::Day)
        .expect("unset");
    let entries = store.audit_entries(None).expect("audit");
    let actions: Vec<(&str, &str)> = entries[before..]
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("quota.set", "ok"),
            ("quota.reserve", "ok"),
            ("quota.commit", "ok"),
            ("quota.reserve", "ok"),
            ("quota.release", "ok"),
            ("quota.reserve", "over budget"),
            ("quota.unset", "ok"),
        ]
    );
    assert_eq!(count(&store), before + 7);
    assert!(store.budgets().expect("budgets").is_empty());
    let err = store
        .unset_budget(Target::Account("work"), Unit::Tokens, Period::Day)
        .unwrap_err();
    assert!(err.to_string().contains("no such budget"), "{err}");
}

fn the_cli_sets_shows_and_unsets_budgets(backend: Backend) {
    let tv = process_vault(backend, 100_000);
    ok(&mut tv.cmd_pw(&[
        "quota",
        "set",
        "--agent",
        "bot",
        "--requests",
        "60",
        "--per",
        "minute",
    ]));
    ok(&mut tv.cmd_pw(&[
        "quota",
        "set",
        "--provider",
        "claude",
        "--usd",
        "12.5",
        "--per",
        "month",
    ]));
    ok(&mut tv.cmd_pw(&["quota", "timezone", "+02:00"]));
    let id = stdout(&ok(&mut tv.cmd_pw(&[
        "reserve",
        "--account",
        "work",
        "--tokens",
        "1000",
        "--agent",
        "bot",
    ])));
    ok(&mut tv.cmd_pw(&[
        "commit",
        id.trim(),
        "--input",
        "600",
        "--output",
        "100",
        "--cache-read",
        "200",
        "--model",
        "m",
        "--usd",
        "0.25",
    ]));
    let out = ok(&mut tv.cmd_pw(&["quota", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["timezone"], "+02:00");
    let work = &v["accounts"][0];
    assert_eq!(
        (work["account"].as_str(), work["provider"].as_str()),
        (Some("work"), Some("claude"))
    );
    let budgets: Vec<(String, String, u64, u64)> = work["budgets"]
        .as_array()
        .expect("budgets")
        .iter()
        .map(|b| {
            (
                b["scope"].as_str().unwrap().to_owned(),
                b["unit"].as_str().unwrap().to_owned(),
                b["used"].as_u64().unwrap(),
                b["remaining"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        budgets,
        [
            ("account".into(), "tokens".into(), 900, 99_100),
            ("provider".into(), "usd".into(), 250_000, 12_250_000),
        ]
    );
    assert_eq!(v["other_budgets"][0]["subject"], "bot");
    assert_eq!(v["other_budgets"][0]["used"], 1);
    let text = stdout(&ok(&mut tv.cmd_pw(&["quota"])));
    assert!(
        text.contains("account `work` tokens per day") && text.contains("99100 tokens"),
        "{text}"
    );
    ok(&mut tv.cmd_pw(&[
        "quota",
        "unset",
        "--provider",
        "claude",
        "--usd",
        "--per",
        "month",
    ]));
    let out = tv
        .cmd_pw(&[
            "quota",
            "unset",
            "--provider",
            "claude",
            "--usd",
            "--per",
            "month",
        ])
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = tv
        .cmd_pw(&[
            "reserve",
            "--account",
            "work",
            "--tokens",
            "1",
            "--ttl",
            "1d",
        ])
        .output()
        .expect("spawn");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
