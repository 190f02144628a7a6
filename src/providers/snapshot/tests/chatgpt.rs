//! ChatGPT usage bodies → snapshots; bad bodies → errors that name the
//! field.

use super::*;
use crate::providers::snapshot::chatgpt::CHATGPT_USAGE;

#[test]
#[rustfmt::skip]
fn chatgpt_usage_bodies_become_snapshots() {
    let usage = || snapshot(Provider::OpenAi, SnapshotSource::UsageEndpoint);
    let primary = || w("primary").pct(6.0).secs(FIVE_HOURS).resets(FIVE_HOUR_RESET_AT);
    let credits = |has: bool, balance: &str| Some(Credits {
        has_credits: Some(has),
        unlimited: Some(false),
        balance: Some(balance.to_owned()),
    });
    let cases = [
        ("full, balance as a number", r#"{
            "plan_type": "plus",
            "rate_limit": {
                "allowed": true,
                "limit_reached": false,
                "primary_window": {"used_percent": 6, "limit_window_seconds": 18000, "reset_after_seconds": 14400, "reset_at": 1754409600},
                "secondary_window": {"used_percent": 24.5, "limit_window_seconds": 604800, "reset_after_seconds": 302400, "reset_at": 1754697600}
            },
            "code_review_rate_limit": {"primary_window": {"used_percent": 0}},
            "credits": {"has_credits": true, "unlimited": false, "balance": 5.39}
        }"#, Snapshot {
            plan: Some("plus".to_owned()),
            windows: vec![primary(), w("secondary").pct(24.5).secs(SEVEN_DAYS).resets(SEVEN_DAY_RESET_AT)],
            credits: credits(true, "5.39"),
            ..usage()
        }),

        ("balance as a string, reset_after_seconds only", r#"{
            "plan_type": "pro",
            "rate_limit": {"primary_window": {"used_percent": 6, "limit_window_seconds": 18000, "reset_after_seconds": 14400}},
            "credits": {"has_credits": false, "unlimited": false, "balance": "0"}
        }"#, Snapshot { plan: Some("pro".to_owned()), windows: vec![primary()], credits: credits(false, "0"), ..usage() }),

        ("nulls", r#"{
            "plan_type": null,
            "rate_limit": {
                "primary_window": {"used_percent": 6, "limit_window_seconds": 18000, "reset_at": 1754409600},
                "secondary_window": null
            },
            "credits": {"has_credits": false, "unlimited": null, "balance": null}
        }"#, Snapshot {
            windows: vec![primary()],
            credits: Some(Credits { has_credits: Some(false), ..Credits::default() }),
            ..usage()
        }),

        ("missing fields: free plan, no rate_limit, no credits", r#"{"plan_type": "free"}"#,
            Snapshot { plan: Some("free".to_owned()), ..usage() }),

        ("rate_limit and credits null", r#"{"rate_limit": null, "credits": null}"#, usage()),
    ];
    for (case, body, expected) in cases {
        assert_eq!(from_chatgpt_usage(body.as_bytes(), now()), Ok(expected), "{case}");
    }
}

#[test]
#[rustfmt::skip]
fn bad_chatgpt_usage_bodies_are_rejected_without_their_values() {
    check_rejected(from_chatgpt_usage, &[
        ("not JSON", "eyJhbGciOi.CANARY", SnapshotError::NotJson { endpoint: CHATGPT_USAGE }),
        ("null", "null", unexpected(CHATGPT_USAGE, "(body)", "an object")),
        ("plan_type is a number", r#"{"plan_type": 3}"#, unexpected(CHATGPT_USAGE, "plan_type", "a string")),
        ("used_percent is a string", r#"{"rate_limit": {"primary_window": {"used_percent": "sk-CANARY"}}}"#,
            unexpected(CHATGPT_USAGE, "rate_limit.primary_window.used_percent", "a number")),
        ("limit_window_seconds is negative", r#"{"rate_limit": {"secondary_window": {"limit_window_seconds": -1}}}"#,
            unexpected(CHATGPT_USAGE, "rate_limit.secondary_window.limit_window_seconds", "a non-negative integer")),
        ("reset_at is RFC 3339", r#"{"rate_limit": {"primary_window": {"reset_at": "2025-08-05T16:00:00Z"}}}"#,
            unexpected(CHATGPT_USAGE, "rate_limit.primary_window.reset_at", "a unix time in seconds")),
        ("secondary_window is a list", r#"{"rate_limit": {"secondary_window": ["sk-CANARY"]}}"#,
            unexpected(CHATGPT_USAGE, "rate_limit.secondary_window", "an object")),
        ("balance is a boolean", r#"{"credits": {"balance": true}}"#, unexpected(CHATGPT_USAGE, "credits.balance", "a string or a number")),
        ("has_credits is a string", r#"{"credits": {"has_credits": "sk-CANARY"}}"#,
            unexpected(CHATGPT_USAGE, "credits.has_credits", "a boolean")),
    ]);
}
