//! Account selection from the command line: `vault policy`, `vault switch`,
//! `vault select` and `vault history`, each a real `vault` process over a
//! real vault file.

use std::path::Path;

use authvault::model::{Provider, Snapshot, SnapshotSource, UsageWindow};
use chrono::Utc;
use serde_json::{Value, json};

use super::common::{TempVault, api_key_account, fails, oauth_account, ok, stderr};

/// Exit status of `vault select` when no account is eligible (README).
const NO_ELIGIBLE_ACCOUNT: i32 = 4;

/// `vault --json ARGS…`, which must succeed; its output as JSON.
fn json(tv: &TempVault, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(&mut tv.cmd_pw(&all));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// A vault with a Claude subscription `max` and a Claude API key `api`.
fn claude_vault() -> TempVault {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    let mut max = oauth_account("max", "T");
    max.provider = Provider::Claude;
    store.add_account(&max).expect("add max");
    store
        .add_account(&api_key_account(Provider::Claude, "api", "sk-api"))
        .expect("add api");
    tv
}

#[test]
fn policy_set_show_and_unset_round_trip() {
    let tv = claude_vault();
    let defaults = json!({
        "strategy": "prefer-claude", "task_strategies": {}, "threshold_percent": 80.0,
        "fallback": true, "rotation": false, "cooldown_seconds": 300, "pin": null,
        "provider": null,
    });
    assert_eq!(json(&tv, &["policy"]), defaults);

    ok(&mut tv.cmd_pw(&["policy", "set", "threshold", "90%"]));
    ok(&mut tv.cmd_pw(&["policy", "set", "task.quick-query", "cost-optimized"]));
    ok(&mut tv.cmd_pw(&["policy", "set", "cooldown", "2m"]));
    let mut changed = defaults.clone();
    changed["threshold_percent"] = json!(90.0);
    changed["task_strategies"] = json!({ "quick-query": "cost-optimized" });
    changed["cooldown_seconds"] = json!(120);
    assert_eq!(json(&tv, &["policy", "show"]), changed);

    for key in ["threshold", "task.quick-query", "cooldown"] {
        ok(&mut tv.cmd_pw(&["policy", "unset", key]));
    }
    assert_eq!(json(&tv, &["policy"]), defaults);

    let actions: Vec<String> = tv
        .open_passphrase()
        .audit_entries(None)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("policy."))
        .collect();
    assert_eq!(
        actions,
        [
            "policy.set",
            "policy.set",
            "policy.set",
            "policy.unset",
            "policy.unset",
            "policy.unset"
        ]
    );
}

#[test]
fn policy_rejects_bad_keys_and_values_naming_what_is_allowed() {
    let tv = claude_vault();
    let before = tv.bytes();
    let bad_value = fails(&mut tv.cmd_pw(&["policy", "set", "strategy", "fastest"]));
    assert!(
        stderr(&bad_value).contains("prefer-claude, prefer-openai, cost-optimized"),
        "{}",
        stderr(&bad_value)
    );
    let bad_key = fails(&mut tv.cmd_pw(&["policy", "set", "colour", "blue"]));
    assert!(
        stderr(&bad_key).contains("unknown policy key `colour`")
            && stderr(&bad_key).contains("threshold"),
        "{}",
        stderr(&bad_key)
    );
    let bad_unset = fails(&mut tv.cmd_pw(&["policy", "unset", "colour"]));
    assert!(
        stderr(&bad_unset).contains("unknown policy key `colour`"),
        "{}",
        stderr(&bad_unset)
    );
    assert_eq!(tv.bytes(), before, "a refused change writes nothing");
}

#[test]
fn switch_pins_an_account_that_select_then_chooses_and_clear_unpins() {
    let tv = claude_vault();
    // Unpinned, the default prefer-claude strategy ranks the subscription first.
    assert_eq!(json(&tv, &["select"])["account"], "max");

    ok(&mut tv.cmd_pw(&["switch", "api"]));
    let policy = json(&tv, &["policy"]);
    assert_eq!(
        (&policy["pin"], &policy["strategy"]),
        (&json!("api"), &json!("user-preference"))
    );
    let pinned = json(&tv, &["select"]);
    assert_eq!(
        (&pinned["account"], &pinned["strategy"]),
        (&json!("api"), &json!("user-preference"))
    );

    ok(&mut tv.cmd_pw(&["switch", "--clear"]));
    let policy = json(&tv, &["policy"]);
    assert_eq!(
        (&policy["pin"], &policy["strategy"]),
        (&Value::Null, &json!("prefer-claude"))
    );
    assert_eq!(json(&tv, &["select"])["account"], "max");
}

#[test]
fn switch_to_an_unknown_label_is_refused_and_changes_nothing() {
    let tv = claude_vault();
    let before = tv.bytes();
    let out = fails(&mut tv.cmd_pw(&["switch", "nobody"]));
    assert!(
        stderr(&out).contains("no account `nobody`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tv.bytes(), before);
}

#[test]
fn select_json_skips_a_subscription_over_the_threshold_for_the_api_key() {
    let tv = claude_vault();
    let now = Utc::now();
    let mut snapshot = Snapshot::empty(Provider::Claude, SnapshotSource::UsageEndpoint, now);
    snapshot.windows.push(UsageWindow {
        utilization_percent: Some(85.0),
        window_seconds: Some(5 * 3600),
        // Far ahead, so the reason shows one fixed date and time.
        resets_at: Some("2099-01-01T00:00:00Z".parse().expect("time")),
        ..UsageWindow::named("five_hour")
    });
    tv.open_passphrase()
        .save_snapshot("max", &snapshot)
        .expect("save snapshot");

    let decision = json(&tv, &["select", "--task", "code-generation"]);
    assert_eq!(
        decision,
        json!({
            "account": "api", "provider": "claude", "credential": "api_key",
            "strategy": "prefer-claude",
            "reason": "`api` (claude api_key) ranks first of 1 eligible",
            "candidates": [
                {
                    "account": "api", "provider": "claude", "credential": "api_key",
                    "eligible": true, "score": 1,
                    "reasons": [
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        "headroom unknown",
                        "no usage snapshot",
                    ],
                },
                {
                    "account": "max", "provider": "claude", "credential": "oauth",
                    "eligible": false, "score": null,
                    "reasons": ["5-hour window at 85 % ≥ 80 % threshold, resets 2099-01-01 00:00 UTC"],
                },
            ],
        })
    );
}

#[test]
fn select_with_every_account_disabled_exits_4_and_says_why() {
    let tv = claude_vault();
    ok(&mut tv.cmd_pw(&["accounts", "disable", "max"]));
    ok(&mut tv.cmd_pw(&["accounts", "disable", "api"]));
    let out = tv.cmd_pw(&["select"]).output().expect("spawn vault");
    assert_eq!(
        out.status.code(),
        Some(NO_ELIGIBLE_ACCOUNT),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("no account is eligible: no eligible account (2 excluded)"),
        "{}",
        stderr(&out)
    );
    // The table still says why each account was left out.
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.matches("disabled").count(), 2, "{table}");
}

#[test]
fn history_lists_the_selection_imported_from_a_legacy_file() {
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy/extended-auth.json");
    let mut migrate = tv.cmd_pw(&["migrate", "--from"]);
    migrate.arg(&fixture);
    ok(&mut migrate);
    assert_eq!(
        json(&tv, &["history"]),
        json!([{
            "at": "2026-09-01T12:00:05.000000Z", "origin": "import", "provider": "Claude",
            "reason": "max subscription under 80% of daily limit",
            "task_context": "CodeGeneration", "task_type": null, "strategy": null,
            "account": null, "agent": null, "outcome": null, "reservation": null,
            "session": null, "candidates": null,
        }])
    );
    assert_eq!(json(&tv, &["history", "--limit", "0"]), json!([]));
}

#[test]
fn select_skips_an_account_whose_budget_the_task_would_overrun() {
    let tv = claude_vault();
    ok(&mut tv.cmd_pw(&[
        "quota",
        "set",
        "--account",
        "max",
        "--tokens",
        "1000",
        "--per",
        "day",
    ]));
    let small = json(&tv, &["select", "--tokens", "500"]);
    assert_eq!(small["account"], "max", "{small:#}");
    let big = json(&tv, &["select", "--tokens", "5000"]);
    let max = &big["candidates"][1];
    assert_eq!(
        (&big["account"], &max["account"], &max["eligible"]),
        (&json!("api"), &json!("max"), &json!(false)),
        "{big:#}"
    );
    // The reset time follows the clock; the rest of the reason is fixed.
    let reasons = max["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 1, "{max:#}");
    assert!(
        reasons[0]
            .as_str()
            .expect("text")
            .starts_with("day budget 1,000 tokens: 0 used + 5,000 requested, resets "),
        "{max:#}"
    );
}
