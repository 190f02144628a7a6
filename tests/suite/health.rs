//! Account health: `vault health` probing every account at once against the
//! fake provider, per-probe timeouts, cooldowns after a rate limit that
//! `vault select` honours, health rows feeding performance-optimized
//! selection, and the store's health tables through the library.

use std::time::{Duration, Instant};

use authvault::config::Endpoints;
use authvault::manager::{Manager, Outcome};
use authvault::model::{Provider, Snapshot, SnapshotSource, UsageWindow};
use authvault::selector::{Cooldown, CooldownCause, Health};
use authvault::store::{PROBES_KEPT, Probe, ProbeOutcome, Store};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde_json::Value;

use super::common::{TempVault, api_key_account, ok, stderr, stdout};
use super::fake_provider::{self as fake, Ep, Fault, Prov};
use super::providers::{Env, setup};

/// `vault --json ARGS…` against the fake, which must succeed; its output.
fn json(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(&mut env.vault(&all));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Adds a subscription the fake knows.
fn subscription(env: &Env, prov: Prov, label: &str, email: &str, id: &str, plan: &str) {
    let who = fake::Identity::new(email, id, plan);
    env.tv
        .open_passphrase()
        .add_account(&env.fake.seeded_account(prov, label, &who))
        .expect("add subscription");
}

/// Adds an API key the fake accepts.
fn api_key(env: &Env, prov: Prov, label: &str, key: &str) {
    env.fake.register_api_key(prov, key);
    let provider = match prov {
        Prov::Claude => Provider::Claude,
        Prov::OpenAi => Provider::OpenAi,
    };
    env.tv
        .open_passphrase()
        .add_account(&api_key_account(provider, label, key))
        .expect("add API key");
}

/// Two Claude subscriptions, a ChatGPT subscription, a Claude and an OpenAI
/// API key; every probe of them waits one second at the fake.
fn five_slow_accounts() -> Env {
    let env = setup();
    subscription(
        &env,
        Prov::Claude,
        "claude-a",
        "a@example.com",
        "uuid-a",
        "max",
    );
    subscription(
        &env,
        Prov::Claude,
        "claude-b",
        "b@example.com",
        "uuid-b",
        "pro",
    );
    subscription(
        &env,
        Prov::OpenAi,
        "chatgpt",
        "c@example.com",
        "acct-c",
        "plus",
    );
    api_key(&env, Prov::Claude, "claude-key", "sk-ant-api03-health");
    api_key(&env, Prov::OpenAi, "openai-key", "sk-proj-health");
    let second = Fault::Delay(Duration::from_secs(1));
    for ep in [
        Ep::ClaudeUsage,
        Ep::ClaudeUsage,
        Ep::ChatGptUsage,
        Ep::AnthropicModels,
        Ep::OpenAiModels,
    ] {
        env.fake.push_fault(ep, second.clone());
    }
    env
}

/// Each row's `(account, outcome)`.
fn outcomes(rows: &Value) -> Vec<(String, String)> {
    rows.as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["account"].as_str().expect("account").to_owned(),
                r["outcome"].as_str().expect("outcome").to_owned(),
            )
        })
        .collect()
}

fn all_ok(labels: &[&str]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| ((*l).to_owned(), "ok".to_owned()))
        .collect()
}

/// In the order reports come: by provider, then label.
const FIVE: [&str; 5] = [
    "claude-a",
    "claude-b",
    "claude-key",
    "chatgpt",
    "openai-key",
];

#[test]
#[allow(clippy::print_stdout)] // the measured time, for the record
fn five_probes_of_one_second_each_are_all_in_flight_at_once() {
    let env = five_slow_accounts();
    let start = Instant::now();
    let rows = json(&env, &["health"]);
    // For the record only; what proves it is the fake's count below.
    println!("vault health, 5 accounts, 1 s each: {:?}", start.elapsed());
    assert_eq!(outcomes(&rows), all_ok(&FIVE));
    assert_eq!(
        env.fake.max_in_flight(),
        5,
        "every probe was being served while the others waited"
    );
    for row in rows.as_array().unwrap() {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "account",
                "cooldown_until",
                "credential",
                "detail",
                "latency_ms",
                "outcome",
                "provider",
                "status"
            ]
        );
        // A lower bound the fake's one-second wait enforces, never a deadline.
        assert!(row["latency_ms"].as_u64().unwrap() >= 1000, "{row}");
    }
    let kinds: Vec<(&str, &str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap(),
                r["provider"].as_str().unwrap(),
                r["credential"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("claude-a", "claude", "oauth"),
            ("claude-b", "claude", "oauth"),
            ("claude-key", "claude", "api_key"),
            ("chatgpt", "openai", "oauth"),
            ("openai-key", "openai", "api_key"),
        ]
    );
    // The subscription probes stored their snapshots.
    let mut store = env.tv.open_passphrase();
    for label in ["chatgpt", "claude-a", "claude-b"] {
        assert!(store.latest_snapshot(label).unwrap().is_some(), "{label}");
    }
}

#[test]
#[allow(clippy::print_stdout)] // the measured time, for the record
fn the_concurrency_bound_holds() {
    let env = five_slow_accounts();
    let start = Instant::now();
    let rows = json(&env, &["health", "--concurrency", "2"]);
    println!(
        "vault health --concurrency 2, 5 accounts, 1 s each: {:?}",
        start.elapsed()
    );
    assert_eq!(outcomes(&rows), all_ok(&FIVE));
    assert_eq!(env.fake.max_in_flight(), 2);
}

#[test]
fn a_probe_slower_than_the_timeout_is_a_timeout_and_the_others_still_succeed() {
    let env = setup();
    api_key(&env, Prov::Claude, "slow", "sk-ant-api03-slow");
    api_key(&env, Prov::OpenAi, "fast", "sk-proj-fast");
    subscription(&env, Prov::Claude, "sub", "s@example.com", "uuid-s", "max");
    env.fake
        .push_fault(Ep::AnthropicModels, Fault::Delay(Duration::from_secs(5)));
    let rows = json(&env, &["health", "--timeout", "1s"]);
    assert_eq!(
        outcomes(&rows),
        [
            ("slow".to_owned(), "timeout".to_owned()),
            ("sub".to_owned(), "ok".to_owned()),
            ("fast".to_owned(), "ok".to_owned()),
        ]
    );
    let slow = &rows[0];
    assert_eq!(slow["detail"], "no answer within 1 s");
    assert_eq!(slow["status"], Value::Null);
    assert_eq!(
        slow["cooldown_until"],
        Value::Null,
        "a timeout is no cooldown"
    );

    let text = ok(&mut env.vault(&["health", "--timeout", "1s"]));
    let text = String::from_utf8(text.stdout).unwrap();
    for header in [
        "account", "provider", "kind", "outcome", "latency", "cooldown",
    ] {
        assert!(text.contains(header), "{text}");
    }
}

#[test]
fn a_rate_limit_puts_the_account_in_cooldown_and_select_passes_it_over() {
    let env = setup();
    subscription(&env, Prov::Claude, "max", "m@example.com", "uuid-m", "max");
    api_key(&env, Prov::Claude, "api", "sk-ant-api03-api");
    env.fake.push_fault(
        Ep::ClaudeUsage,
        Fault::RateLimited {
            retry_after_secs: 600,
        },
    );
    let before = Utc::now();
    let out = ok(&mut env.vault(&["--json", "health"]));
    let after = Utc::now();
    let rows: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let access = env
        .fake
        .current_access(Prov::Claude, "uuid-m")
        .expect("seeded");
    let stored: Vec<String> = env
        .tv
        .raw()
        .prepare("SELECT coalesce(detail, '') FROM account_health")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for secret in [access.as_str(), "sk-ant-api03-api"] {
        assert!(!stdout(&out).contains(secret), "a secret in the output");
        assert!(!stderr(&out).contains(secret), "a secret on stderr");
        assert!(
            stored.iter().all(|d| !d.contains(secret)),
            "a secret stored"
        );
    }
    assert!(stored.iter().any(|d| d.contains("429")), "{stored:?}");
    assert_eq!(
        outcomes(&rows),
        [
            ("api".to_owned(), "ok".to_owned()),
            ("max".to_owned(), "rate_limited".to_owned()),
        ]
    );
    let max = &rows[1];
    assert_eq!(max["status"], 429);
    let until: DateTime<Utc> = max["cooldown_until"].as_str().unwrap().parse().unwrap();
    // The provider's retry-after, counted from the probe (to the second).
    assert!(
        until >= before + TimeDelta::seconds(599) && until <= after + TimeDelta::seconds(600),
        "{until} not 600 s after the probe"
    );

    // A probe that succeeds later ends nothing: the cooldown runs its course.
    let again = json(&env, &["health"]);
    assert_eq!(outcomes(&again), all_ok(&["api", "max"]));
    assert_eq!(again[1]["cooldown_until"], max["cooldown_until"]);

    let decision = json(&env, &["select"]);
    assert_eq!(decision["account"], "api");
    let reasons = decision["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["account"] == "max")
        .expect("max is a candidate")["reasons"]
        .clone();
    let reasons: Vec<&str> = reasons
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("in cooldown until ") && r.ends_with("(rate limited)")),
        "{reasons:?}"
    );

    let audit = env.tv.open_passphrase().audit_entries(None).unwrap();
    let cooldowns: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "account.cooldown")
        .map(|e| (e.account.clone(), e.details["cause"].clone()))
        .collect();
    assert_eq!(
        cooldowns,
        [(Some("max".to_owned()), Value::from("rate_limited"))]
    );
}

#[test]
fn an_api_key_rate_limit_and_an_overload_cool_down_for_their_retry_after() {
    let env = setup();
    api_key(&env, Prov::OpenAi, "openai-key", "sk-proj-limited");
    subscription(&env, Prov::Claude, "max", "m@example.com", "uuid-m", "max");
    env.fake.push_fault(
        Ep::OpenAiModels,
        Fault::RateLimited {
            retry_after_secs: 120,
        },
    );
    env.fake.push_fault(Ep::ClaudeUsage, Fault::Overloaded);
    let before = Utc::now();
    let rows = json(&env, &["health"]);
    let after = Utc::now();
    assert_eq!(
        outcomes(&rows),
        [
            ("max".to_owned(), "overloaded".to_owned()),
            ("openai-key".to_owned(), "rate_limited".to_owned()),
        ]
    );
    assert_eq!(
        (&rows[0]["status"], &rows[1]["status"]),
        (&529.into(), &429.into())
    );
    let until =
        |row: &Value| -> DateTime<Utc> { row["cooldown_until"].as_str().unwrap().parse().unwrap() };
    // No retry-after on the overload: the policy's default, 5 minutes.
    for (row, secs) in [(&rows[0], 300), (&rows[1], 120)] {
        let until = until(row);
        assert!(
            until >= before + TimeDelta::seconds(secs - 1)
                && until <= after + TimeDelta::seconds(secs),
            "{row}"
        );
    }
}

#[test]
fn probed_latency_feeds_performance_optimized_selection() {
    let env = setup();
    // By label and by the default strategy (prefer-claude), `a-slow` wins.
    api_key(&env, Prov::Claude, "a-slow", "sk-ant-api03-slow");
    api_key(&env, Prov::OpenAi, "b-fast", "sk-proj-fast");
    env.fake
        .push_fault(Ep::AnthropicModels, Fault::Delay(Duration::from_secs(2)));
    let rows = json(&env, &["health"]);
    assert_eq!(outcomes(&rows), all_ok(&["a-slow", "b-fast"]));
    assert_eq!(json(&env, &["select"])["account"], "a-slow");

    ok(&mut env.vault(&["policy", "set", "strategy", "performance-optimized"]));
    let decision = json(&env, &["select"]);
    assert_eq!(decision["account"], "b-fast", "{decision}");
    assert!(
        decision["candidates"][0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("error rate 0 %, latency ")),
        "{decision}"
    );
}

#[test]
fn health_exits_zero_when_probes_fail_and_fails_when_the_vault_cannot_be_used() {
    let env = setup();
    api_key(&env, Prov::Claude, "dead", "sk-ant-api03-refused");
    env.fake.push_fault(Ep::AnthropicModels, Fault::Status(401));
    let rows = json(&env, &["health"]);
    assert_eq!(
        outcomes(&rows),
        [("dead".to_owned(), "auth_failed".to_owned())]
    );
    assert_eq!(rows[0]["status"], 401);
    assert!(rows[0]["cooldown_until"].is_string(), "{rows}");

    let mut wrong = env.vault(&["health"]);
    wrong.env("AUTHVAULT_PASSPHRASE", "not the passphrase");
    let out = wrong.output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("error:"), "{}", stderr(&out));
}

// ---- the store and the manager, through the library ----

fn probe(at: DateTime<Utc>, latency_ms: u32, outcome: ProbeOutcome) -> Probe {
    Probe {
        probed_at: at,
        latency_ms,
        outcome,
        status: None,
        detail: None,
    }
}

fn library_vault() -> (TempVault, Store) {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::Claude, "key", "sk-ant-api03-x"))
        .unwrap();
    (tv, store)
}

#[test]
fn refresh_snapshots_fetches_every_label_at_once_and_answers_each_in_order() {
    let env = five_slow_accounts();
    let store = env.tv.open_passphrase();
    let endpoints = Endpoints::default().with_overrides(env.fake.env());
    let mut m = Manager::new(store, endpoints, Duration::from_secs(30)).unwrap();
    let labels: Vec<String> = ["chatgpt", "nobody", "claude-a", "claude-b"]
        .map(str::to_owned)
        .to_vec();
    let results = m.refresh_snapshots(&labels);
    let summary: Vec<(&str, Option<Provider>)> = results
        .iter()
        .map(|(label, r)| (label.as_str(), r.as_ref().ok().map(|s| s.provider)))
        .collect();
    assert_eq!(
        summary,
        [
            ("chatgpt", Some(Provider::OpenAi)),
            ("nobody", None),
            ("claude-a", Some(Provider::Claude)),
            ("claude-b", Some(Provider::Claude)),
        ]
    );
    assert!(
        matches!(&results[1].1, Err(authvault::Error::AccountNotFound { label, .. }) if label == "nobody"),
        "{:?}",
        results[1].1.as_ref().err()
    );
    assert_eq!(
        env.fake.max_in_flight(),
        3,
        "the three fetches ran together"
    );
    for (label, result) in &results {
        if let Ok(snapshot) = result {
            assert_eq!(
                m.store().latest_snapshot(label).unwrap().as_ref(),
                Some(snapshot),
                "{label}: stored"
            );
        }
    }
}

#[test]
fn each_account_keeps_its_newest_probes_and_they_go_with_the_account() {
    let (tv, mut store) = library_vault();
    let id = store.account("key").unwrap().id;
    let now = Utc::now();
    let total = PROBES_KEPT + 5;
    for i in 0..total {
        // Oldest first: the last is one second ago.
        let at = now - TimeDelta::seconds(i64::from(total - i));
        let outcome = if i < 5 {
            ProbeOutcome::Timeout
        } else {
            ProbeOutcome::Ok
        };
        store
            .record_probe("key", &probe(at, 100 + i, outcome))
            .unwrap();
    }
    let kept: Vec<u32> = tv
        .raw()
        .prepare("SELECT latency_ms FROM account_health ORDER BY probed_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kept,
        (105..100 + total).collect::<Vec<_>>(),
        "the five timeouts went"
    );
    assert_eq!(
        store.health(now).unwrap()[&id].health,
        Some(Health {
            latency_ms: 115, // the mean of 105..=124, rounded half up
            error_rate: 0.0,
            probed_at: (now - TimeDelta::seconds(1)).trunc_subsecs(6),
        })
    );

    store.remove_account("key").unwrap();
    let left: i64 = tv
        .raw()
        .query_row("SELECT count(*) FROM account_health", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_cooldown_keeps_the_later_end_is_audited_and_can_be_cleared() {
    let (_tv, mut store) = library_vault();
    let id = store.account("key").unwrap().id;
    let now = Utc::now();
    let long = Cooldown {
        until: now + TimeDelta::minutes(30),
        cause: CooldownCause::Overloaded,
    };
    let short = Cooldown {
        until: now + TimeDelta::minutes(5),
        cause: CooldownCause::RateLimited,
    };
    let long_stored = Cooldown {
        until: long.until.trunc_subsecs(6),
        ..long
    };
    assert_eq!(store.set_cooldown("key", long).unwrap(), long_stored);
    assert_eq!(store.set_cooldown("key", short).unwrap(), long_stored);
    assert_eq!(store.health(now).unwrap()[&id].cooldown, Some(long_stored));
    // Once it has ended, it is not reported.
    assert!(
        store
            .health(long.until + TimeDelta::seconds(1))
            .unwrap()
            .is_empty()
    );

    assert!(store.clear_cooldown("key").unwrap());
    assert!(!store.clear_cooldown("key").unwrap());
    assert!(store.health(now).unwrap().is_empty());

    let entries: Vec<(String, Value)> = store
        .audit_entries(None)
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("account.cooldown"))
        .map(|e| (e.action, e.details))
        .collect();
    let until = long_stored
        .until
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(
        entries,
        [
            (
                "account.cooldown".to_owned(),
                serde_json::json!({ "cause": "overloaded", "until": until, "kept_longer": false })
            ),
            (
                "account.cooldown".to_owned(),
                serde_json::json!({ "cause": "rate_limited", "until": until, "kept_longer": true })
            ),
            ("account.cooldown_clear".to_owned(), Value::Null),
        ]
    );
}

#[test]
fn report_outcome_cools_down_for_the_retry_after_the_window_reset_or_the_policy() {
    let (_tv, mut store) = library_vault();
    store
        .set_policy(&[("policy.cooldown".to_owned(), Value::from(90))])
        .unwrap();
    let mut m = Manager::new(store, Endpoints::default(), Duration::from_secs(30)).unwrap();
    let within = |c: Option<Cooldown>, cause, from: DateTime<Utc>, secs: i64| {
        let c = c.expect("a cooldown");
        assert_eq!(c.cause, cause);
        let want = from + TimeDelta::seconds(secs);
        assert!(
            c.until >= want - TimeDelta::seconds(1)
                && c.until <= Utc::now() + TimeDelta::seconds(secs),
            "{} is not {secs} s after {from}",
            c.until
        );
    };
    assert_eq!(m.report_outcome("key", Outcome::Ok).unwrap(), None);

    let t = Utc::now();
    let c = m.report_outcome("key", Outcome::AuthFailed).unwrap();
    within(c, CooldownCause::AuthFailed, t, 90);
    m.store().clear_cooldown("key").unwrap();

    let t = Utc::now();
    let c = m
        .report_outcome(
            "key",
            Outcome::Overloaded {
                retry_after: Some(Duration::from_secs(40)),
            },
        )
        .unwrap();
    within(c, CooldownCause::Overloaded, t, 40);
    m.store().clear_cooldown("key").unwrap();

    // A rate limit without retry-after waits for the exhausted window.
    let mut snap = Snapshot::empty(Provider::Claude, SnapshotSource::Headers, Utc::now());
    let mut w = UsageWindow::named("requests");
    w.remaining = Some(0);
    w.resets_at = Some(Utc::now() + TimeDelta::hours(2));
    snap.windows.push(w.clone());
    m.store().save_snapshot("key", &snap).unwrap();
    let c = m
        .report_outcome("key", Outcome::RateLimited { retry_after: None })
        .unwrap()
        .unwrap();
    assert_eq!(c.until, w.resets_at.unwrap().trunc_subsecs(6));
}
