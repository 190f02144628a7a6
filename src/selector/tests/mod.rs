//! The strategy table: every strategy and candidate mix, with the account
//! chosen and every candidate's place and reasons, compared exactly.
//! The cases live in `strategies.rs`, `exclusions.rs` and `order.rs`.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;

mod exclusions;
mod order;
mod strategies;
use crate::model::{Snapshot, SnapshotSource, UsageWindow};

use CredentialKind::{ApiKey, OAuth};
use Provider::{Claude, OpenAi};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn minutes(m: i64) -> DateTime<Utc> {
    now() + TimeDelta::minutes(m)
}

/// A usage window at `used` percent that resets at 14:05.
fn window(name: &str, used: f64) -> UsageWindow {
    UsageWindow {
        utilization_percent: Some(used),
        resets_at: Some(minutes(65)),
        ..UsageWindow::named(name)
    }
}

fn snapshot(provider: Provider, age_minutes: i64, windows: Vec<UsageWindow>) -> Snapshot {
    Snapshot {
        windows,
        ..Snapshot::empty(provider, SnapshotSource::Headers, minutes(-age_minutes))
    }
}

/// A subscription with a fresh snapshot whose 5-hour window is at `used` %.
fn sub(label: &str, provider: Provider, used: f64) -> Candidate {
    let name = match provider {
        Claude => "five_hour",
        OpenAi => "primary",
    };
    let mut w = window(name, used);
    w.window_seconds = Some(18_000);
    Candidate {
        snapshot: Some(snapshot(provider, 1, vec![w])),
        ..Candidate::new(label, provider, OAuth)
    }
}

fn key(label: &str, provider: Provider) -> Candidate {
    Candidate::new(label, provider, ApiKey)
}

/// The usual mix: one subscription and one API key of each provider.
fn mix() -> Vec<Candidate> {
    vec![
        sub("claude-max", Claude, 30.0),
        key("claude-key", Claude),
        sub("openai-plus", OpenAi, 10.0),
        key("openai-key", OpenAi),
    ]
}

fn with(
    mut candidates: Vec<Candidate>,
    label: &str,
    change: impl FnOnce(&mut Candidate),
) -> Vec<Candidate> {
    change(
        candidates
            .iter_mut()
            .find(|c| c.label == label)
            .expect("a label of the mix"),
    );
    candidates
}

fn policy(strategy: Strategy) -> Policy {
    Policy {
        strategy,
        ..Policy::default()
    }
}

fn task() -> TaskContext {
    TaskContext {
        task_type: "code-generation".to_owned(),
        estimated_tokens: Some(5_000),
        ..TaskContext::default()
    }
}

struct Case {
    name: &'static str,
    task: TaskContext,
    policy: Policy,
    candidates: Vec<Candidate>,
    chosen: Option<&'static str>,
    /// Every candidate in report order: label, score, reasons.
    report: Vec<(&'static str, Option<u32>, Vec<&'static str>)>,
    /// `Decision::reason`, when the case is about it.
    reason: Option<&'static str>,
}

const CM: &str = "headroom 70 % (5-hour window at 30 %)";
const OP: &str = "headroom 90 % (5-hour window at 10 %)";
const NONE: &str = "headroom unknown";
const NOSNAP: &str = "no usage snapshot";

#[test]
fn the_strategy_table() {
    let cases: Vec<Case> = [strategies::cases(), exclusions::cases(), order::cases()]
        .into_iter()
        .flatten()
        .collect();
    assert!(cases.len() >= 25, "the table lost cases: {}", cases.len());
    for case in cases {
        let decision = select(&case.task, &case.candidates, &case.policy, now());
        let got: Vec<(&str, Option<u32>, Vec<&str>)> = decision
            .candidates
            .iter()
            .map(|c| {
                (
                    c.account.as_str(),
                    c.score,
                    c.reasons.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            (decision.account.as_deref(), &got),
            (case.chosen, &case.report),
            "{}",
            case.name
        );
        for c in &decision.candidates {
            assert_eq!(
                c.eligible,
                c.score.is_some(),
                "{}: {}",
                case.name,
                c.account
            );
        }
        if let Some(reason) = case.reason {
            assert_eq!(decision.reason, reason, "{}", case.name);
        }
        assert_eq!(
            decision.strategy,
            case.policy.strategy_for(&case.task.task_type),
            "{}",
            case.name
        );
        let mut reversed = case.candidates.clone();
        reversed.reverse();
        assert_eq!(
            select(&case.task, &reversed, &case.policy, now()),
            decision,
            "{}: the order of the candidates changed the decision",
            case.name
        );
    }
}

#[test]
fn a_decision_serializes_to_the_select_json_shape() {
    let candidates = vec![sub("claude-max", Claude, 85.0), key("openai-key", OpenAi)];
    let decision = select(&task(), &candidates, &Policy::default(), now());
    assert_eq!(
        serde_json::to_value(&decision).unwrap(),
        serde_json::json!({
            "account": "openai-key",
            "provider": "openai",
            "credential": "api_key",
            "strategy": "prefer-claude",
            "reason": "`openai-key` (openai api_key) ranks first of 1 eligible",
            "candidates": [
                {
                    "account": "openai-key",
                    "provider": "openai",
                    "credential": "api_key",
                    "eligible": true,
                    "score": 1,
                    "reasons": ["openai API key: step 4 of 4 in the prefer-claude chain", NONE, NOSNAP]
                },
                {
                    "account": "claude-max",
                    "provider": "claude",
                    "credential": "oauth",
                    "eligible": false,
                    "score": null,
                    "reasons": ["5-hour window at 85 % ≥ 80 % threshold, resets 14:05 UTC"]
                }
            ]
        })
    );
    let none = select(&task(), &[], &Policy::default(), now());
    let json = serde_json::to_value(&none).unwrap();
    assert_eq!(
        (&json["account"], &json["provider"], &json["credential"]),
        (
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::Value::Null
        )
    );
}

#[test]
fn stale_or_missing_snapshots_that_could_change_the_decision_need_a_refresh() {
    let candidates = vec![
        // Stale and over the threshold: a refresh may show the window lower.
        Candidate {
            snapshot: Some(snapshot(Claude, 42, vec![window("five_hour", 85.0)])),
            ..Candidate::new("stale-over", Claude, OAuth)
        },
        // Stale, over the threshold and disabled: a refresh changes nothing.
        Candidate {
            enabled: false,
            snapshot: Some(snapshot(Claude, 42, vec![window("five_hour", 85.0)])),
            ..Candidate::new("stale-disabled", Claude, OAuth)
        },
        // Missing and eligible.
        key("no-snapshot", OpenAi),
        // Missing and in cooldown.
        Candidate {
            cooldown: Some(Cooldown {
                until: minutes(5),
                cause: CooldownCause::Overloaded,
            }),
            ..key("cooling", OpenAi)
        },
        // Fresh.
        sub("fresh", Claude, 10.0),
    ];
    let decision = select(&task(), &candidates, &Policy::default(), now());
    let refresh: Vec<(&str, Freshness)> = decision
        .needs_refresh()
        .map(|c| (c.account.as_str(), c.freshness))
        .collect();
    assert_eq!(
        refresh,
        [
            ("no-snapshot", Freshness::Missing),
            ("stale-over", Freshness::Stale(TimeDelta::minutes(42)))
        ]
    );
}

#[test]
fn a_cooldown_lasts_until_the_providers_time_else_the_policys() {
    let policy = Policy {
        cooldown: TimeDelta::minutes(5),
        ..Policy::default()
    };
    let cases = [
        (None, None, minutes(5)),
        (Some(minutes(2)), None, minutes(2)),
        (Some(minutes(2)), Some(minutes(65)), minutes(65)),
        (None, Some(minutes(65)), minutes(65)),
        // A time already past is no guidance.
        (Some(minutes(-1)), None, minutes(5)),
    ];
    for (retry_after, reset, want) in cases {
        assert_eq!(
            policy.cooldown_until(now(), retry_after, reset),
            want,
            "{retry_after:?} {reset:?}"
        );
    }
}
