//! Claude usage and profile bodies → snapshots and identities; bad bodies →
//! errors that name the field.

use super::*;
use crate::providers::snapshot::claude::{CLAUDE_PROFILE, CLAUDE_USAGE};

#[test]
#[rustfmt::skip]
fn claude_usage_bodies_become_snapshots() {
    let usage = || snapshot(Provider::Claude, SnapshotSource::UsageEndpoint);
    let cases = [
        ("full", r#"{
            "five_hour": {"utilization": 37.0, "resets_at": "2025-08-05T16:00:00.412345+00:00"},
            "seven_day": {"utilization": 12, "resets_at": "2025-08-09T00:00:00+00:00"},
            "seven_day_oauth_apps": null,
            "seven_day_opus": {"utilization": 80.5, "resets_at": "2025-08-09T00:00:00Z"},
            "seven_day_sonnet": {"utilization": 0, "resets_at": "2025-08-09T02:00:00+02:00"},
            "extra_usage": {"is_enabled": false}
        }"#, Snapshot { windows: vec![
            five_hour(37.0).resets("2025-08-05T16:00:00.412345Z"),
            seven_day("seven_day", 12.0),
            seven_day("seven_day_opus", 80.5),
            seven_day("seven_day_sonnet", 0.0),
        ], ..usage() }),

        ("nulls: a null window is left out, null fields are None", r#"{
            "five_hour": {"utilization": 4.0, "resets_at": null},
            "seven_day": null,
            "seven_day_opus": {"utilization": null, "resets_at": null},
            "seven_day_sonnet": null
        }"#, Snapshot { windows: vec![
            w("five_hour").pct(4.0).secs(FIVE_HOURS),
            w("seven_day_opus").secs(SEVEN_DAYS),
        ], ..usage() }),

        ("missing fields", r#"{"seven_day": {"utilization": 3.5}}"#,
            Snapshot { windows: vec![w("seven_day").pct(3.5).secs(SEVEN_DAYS)], ..usage() }),

        ("empty object", "{}", usage()),
    ];
    for (case, body, expected) in cases {
        assert_eq!(from_claude_usage(body.as_bytes(), now()), Ok(expected), "{case}");
    }
}

#[test]
#[rustfmt::skip]
fn bad_claude_usage_bodies_are_rejected_without_their_values() {
    check_rejected(from_claude_usage, &[
        ("not JSON", "<html>sk-ant-oat01-CANARY</html>", SnapshotError::NotJson { endpoint: CLAUDE_USAGE }),
        ("truncated", r#"{"five_hour": {"utilization": "sk-ant-oat01-CANARY"#, SnapshotError::NotJson { endpoint: CLAUDE_USAGE }),
        ("an array", r#"["sk-ant-oat01-CANARY"]"#, unexpected(CLAUDE_USAGE, "(body)", "an object")),
        ("window is a string", r#"{"five_hour": "sk-ant-oat01-CANARY"}"#, unexpected(CLAUDE_USAGE, "five_hour", "an object")),
        ("utilization is a string", r#"{"five_hour": {"utilization": "sk-ant-oat01-CANARY"}}"#,
            unexpected(CLAUDE_USAGE, "five_hour.utilization", "a number")),
        ("resets_at is a number", r#"{"seven_day_sonnet": {"utilization": 1, "resets_at": 1754697600}}"#,
            unexpected(CLAUDE_USAGE, "seven_day_sonnet.resets_at", "an RFC 3339 timestamp")),
        ("resets_at is not RFC 3339", r#"{"seven_day": {"resets_at": "sk-ant-oat01-CANARY"}}"#,
            unexpected(CLAUDE_USAGE, "seven_day.resets_at", "an RFC 3339 timestamp")),
    ]);
}

/// A profile body in the shape the endpoint returns.
fn profile_body(max: &str, pro: &str, tier: &str) -> String {
    format!(
        r#"{{
            "account": {{
                "uuid": "4a1c0f7e-0000-4000-8000-000000000001",
                "full_name": "Ada Lovelace",
                "display_name": "Ada",
                "email": "ada@example.com",
                "has_claude_max": {max},
                "has_claude_pro": {pro},
                "created_at": "2024-03-01T10:00:00Z"
            }},
            "organization": {{
                "uuid": "9b2d1e3f-0000-4000-8000-000000000002",
                "name": "ada@example.com's Organization",
                "organization_type": "claude_max",
                "billing_type": "stripe_subscription",
                "rate_limit_tier": {tier}
            }}
        }}"#
    )
}

#[test]
#[rustfmt::skip]
fn claude_profile_bodies_become_snapshots_and_identities() {
    let plan = |plan: Option<&str>| Snapshot {
        plan: plan.map(str::to_owned),
        ..snapshot(Provider::Claude, SnapshotSource::ProfileEndpoint)
    };
    let ada = |tier: Option<&str>| ClaudeProfile {
        account_uuid: Some("4a1c0f7e-0000-4000-8000-000000000001".to_owned()),
        email: Some("ada@example.com".to_owned()),
        organization_uuid: Some("9b2d1e3f-0000-4000-8000-000000000002".to_owned()),
        rate_limit_tier: tier.map(str::to_owned),
    };
    let cases = [
        ("max", profile_body("true", "false", r#""default_claude_max_20x""#),
            plan(Some("max")), ada(Some("default_claude_max_20x"))),
        ("pro", profile_body("false", "true", r#""default_claude_ai""#),
            plan(Some("pro")), ada(Some("default_claude_ai"))),
        ("team: the tier is the plan", profile_body("false", "false", r#""default_claude_team""#),
            plan(Some("default_claude_team")), ada(Some("default_claude_team"))),
        ("nulls", profile_body("null", "null", "null"), plan(None), ada(None)),
        ("no organization", r#"{"account": {"uuid": "u-1", "email": "b@example.com", "has_claude_pro": true}}"#.to_owned(),
            plan(Some("pro")),
            ClaudeProfile { account_uuid: Some("u-1".to_owned()), email: Some("b@example.com".to_owned()), ..ClaudeProfile::default() }),
        ("empty object", "{}".to_owned(), plan(None), ClaudeProfile::default()),
    ];
    for (case, body, snapshot, profile) in cases {
        assert_eq!(from_claude_profile(body.as_bytes(), now()), Ok((snapshot, profile)), "{case}");
    }
}

#[test]
#[rustfmt::skip]
fn bad_claude_profile_bodies_are_rejected_without_their_values() {
    check_rejected(from_claude_profile, &[
        ("not JSON", "sk-ant-oat01-CANARY", SnapshotError::NotJson { endpoint: CLAUDE_PROFILE }),
        ("a string", r#""sk-ant-oat01-CANARY""#, unexpected(CLAUDE_PROFILE, "(body)", "an object")),
        ("account is a string", r#"{"account": "sk-ant-oat01-CANARY"}"#, unexpected(CLAUDE_PROFILE, "account", "an object")),
        ("email is a number", r#"{"account": {"email": 42}}"#, unexpected(CLAUDE_PROFILE, "account.email", "a string")),
        ("has_claude_max is a string", r#"{"account": {"has_claude_max": "sk-ant-oat01-CANARY"}}"#,
            unexpected(CLAUDE_PROFILE, "account.has_claude_max", "a boolean")),
        ("rate_limit_tier is an object", r#"{"organization": {"rate_limit_tier": {"token": "sk-ant-oat01-CANARY"}}}"#,
            unexpected(CLAUDE_PROFILE, "organization.rate_limit_tier", "a string")),
    ]);
}
