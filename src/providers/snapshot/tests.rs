//! Tables of real-shaped header sets and bodies → the snapshots expected.
//!
//! Tables are kept one case per line where they fit (`rustfmt::skip`), so
//! that each reads as "this response → this snapshot".

use chrono::TimeZone;
use reqwest::header::{HeaderName, HeaderValue};

use super::*;

/// When every test response arrives.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 8, 5, 12, 0, 0).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Headers from a dump, one `Name: value` per line.
fn headers(dump: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in dump.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    map
}

fn snapshot(provider: Provider, source: SnapshotSource) -> Snapshot {
    Snapshot::empty(provider, source, now())
}

fn claude() -> Snapshot {
    snapshot(Provider::Claude, SnapshotSource::Headers)
}

fn openai() -> Snapshot {
    snapshot(Provider::OpenAi, SnapshotSource::Headers)
}

/// Builders for expected windows: `w("tokens").limits(100, 75).pct(25.0)`.
fn w(name: &str) -> UsageWindow {
    UsageWindow::named(name)
}

impl UsageWindow {
    fn pct(self, percent: f64) -> Self {
        Self {
            utilization_percent: Some(percent),
            ..self
        }
    }

    fn limits(self, limit: u64, remaining: u64) -> Self {
        Self {
            limit: Some(limit),
            remaining: Some(remaining),
            ..self
        }
    }

    fn secs(self, seconds: u64) -> Self {
        Self {
            window_seconds: Some(seconds),
            ..self
        }
    }

    fn resets(self, time: &str) -> Self {
        Self {
            resets_at: Some(at(time)),
            ..self
        }
    }
}

/// Unix seconds of [`FIVE_HOUR_RESET_AT`] and [`SEVEN_DAY_RESET_AT`].
const FIVE_HOUR_RESET: &str = "1754409600";
const SEVEN_DAY_RESET: &str = "1754697600";
const FIVE_HOUR_RESET_AT: &str = "2025-08-05T16:00:00Z";
const SEVEN_DAY_RESET_AT: &str = "2025-08-09T00:00:00Z";

fn five_hour(percent: f64) -> UsageWindow {
    w("five_hour")
        .pct(percent)
        .secs(FIVE_HOURS)
        .resets(FIVE_HOUR_RESET_AT)
}

fn seven_day(name: &str, percent: f64) -> UsageWindow {
    w(name)
        .pct(percent)
        .secs(SEVEN_DAYS)
        .resets(SEVEN_DAY_RESET_AT)
}

fn check_headers(provider: Provider, cases: &[(&str, String, Option<Snapshot>)]) {
    for (case, dump, expected) in cases {
        let actual = from_headers(provider, &headers(dump), now());
        assert_eq!(&actual, expected, "{case}");
    }
}

#[test]
fn reset_constants_agree() {
    assert_eq!(
        unix_seconds(FIVE_HOUR_RESET.parse().unwrap()),
        Some(at(FIVE_HOUR_RESET_AT))
    );
    assert_eq!(
        unix_seconds(SEVEN_DAY_RESET.parse().unwrap()),
        Some(at(SEVEN_DAY_RESET_AT))
    );
}

#[test]
#[rustfmt::skip]
fn anthropic_api_headers_become_snapshots() {
    let cases = [
        ("API key response: four limits, RFC 3339 resets, retry-after ignored", "
            anthropic-ratelimit-requests-limit: 50
            anthropic-ratelimit-requests-remaining: 49
            anthropic-ratelimit-requests-reset: 2025-08-05T12:00:01Z
            anthropic-ratelimit-tokens-limit: 48000
            anthropic-ratelimit-tokens-remaining: 36000
            anthropic-ratelimit-tokens-reset: 2025-08-05T12:00:06Z
            anthropic-ratelimit-input-tokens-limit: 40000
            anthropic-ratelimit-input-tokens-remaining: 30000
            anthropic-ratelimit-input-tokens-reset: 2025-08-05T12:00:06+00:00
            anthropic-ratelimit-output-tokens-limit: 8000
            anthropic-ratelimit-output-tokens-remaining: 8000
            anthropic-ratelimit-output-tokens-reset: 2025-08-05T14:00:00+02:00
            retry-after: 7
            request-id: req_011CQ
        ".to_owned(), Some(Snapshot { windows: vec![
            w("requests").limits(50, 49).pct(2.0).resets("2025-08-05T12:00:01Z"),
            w("tokens").limits(48000, 36000).pct(25.0).resets("2025-08-05T12:00:06Z"),
            w("input_tokens").limits(40000, 30000).pct(25.0).resets("2025-08-05T12:00:06Z"),
            w("output_tokens").limits(8000, 8000).pct(0.0).resets("2025-08-05T12:00:00Z"),
        ], ..claude() })),

        ("API key response on a 429: nothing remaining", "
            anthropic-ratelimit-requests-limit: 50
            anthropic-ratelimit-requests-remaining: 0
            anthropic-ratelimit-requests-reset: 2025-08-05T12:00:30.5Z
            retry-after: 30
        ".to_owned(), Some(Snapshot { windows: vec![
            w("requests").limits(50, 0).pct(100.0).resets("2025-08-05T12:00:30.500Z"),
        ], ..claude() })),

        ("remaining above limit counts as nothing used", "
            anthropic-ratelimit-tokens-limit: 100
            anthropic-ratelimit-tokens-remaining: 150
        ".to_owned(), Some(Snapshot { windows: vec![w("tokens").limits(100, 150).pct(0.0)], ..claude() })),

        ("OpenAI's headers say nothing about a Claude account", "
            x-ratelimit-limit-requests: 5000
            x-codex-primary-used-percent: 7
            retry-after: 1
        ".to_owned(), None),

        ("no headers", String::new(), None),
    ];
    check_headers(Provider::Claude, &cases);
}

#[test]
#[rustfmt::skip]
fn claude_subscription_headers_become_snapshots() {
    let cases = [
        ("subscription, allowed: fractions become percents, epoch resets", format!("
            anthropic-ratelimit-unified-status: allowed
            anthropic-ratelimit-unified-5h-status: allowed
            anthropic-ratelimit-unified-5h-reset: {FIVE_HOUR_RESET}
            anthropic-ratelimit-unified-5h-utilization: 0.37
            anthropic-ratelimit-unified-7d-status: allowed
            anthropic-ratelimit-unified-7d-reset: {SEVEN_DAY_RESET}
            anthropic-ratelimit-unified-7d-utilization: 0.12
            anthropic-ratelimit-unified-representative-claim: five_hour
            anthropic-ratelimit-unified-fallback-percentage: 0.5
            anthropic-ratelimit-unified-reset: {FIVE_HOUR_RESET}
            anthropic-ratelimit-unified-overage-status: rejected
        "), Some(Snapshot {
            status: Some("allowed".to_owned()),
            windows: vec![five_hour(37.0), seven_day("seven_day", 12.0)],
            ..claude()
        })),

        ("subscription, warning, per-model weekly windows", format!("
            anthropic-ratelimit-unified-status: allowed_warning
            anthropic-ratelimit-unified-5h-utilization: 0.02
            anthropic-ratelimit-unified-5h-reset: {FIVE_HOUR_RESET}
            anthropic-ratelimit-unified-7d-utilization: 0.91
            anthropic-ratelimit-unified-7d-reset: {SEVEN_DAY_RESET}
            anthropic-ratelimit-unified-7d_opus-utilization: 0.8
            anthropic-ratelimit-unified-7d_opus-reset: {SEVEN_DAY_RESET}
            anthropic-ratelimit-unified-7d_sonnet-utilization: 0.055
            anthropic-ratelimit-unified-7d_sonnet-reset: {SEVEN_DAY_RESET}
            anthropic-ratelimit-unified-representative-claim: seven_day
        "), Some(Snapshot {
            status: Some("allowed_warning".to_owned()),
            windows: vec![
                five_hour(2.0),
                seven_day("seven_day", 91.0),
                seven_day("seven_day_opus", 80.0),
                seven_day("seven_day_sonnet", 5.5),
            ],
            ..claude()
        })),

        ("subscription, rejected on a 429, names in mixed case", format!("
            Anthropic-Ratelimit-Unified-Status: rejected
            Anthropic-Ratelimit-Unified-5h-Utilization: 1.0
            Anthropic-Ratelimit-Unified-5h-Reset: {FIVE_HOUR_RESET}
            Anthropic-Ratelimit-Unified-7d-Utilization: 0.4
            Retry-After: 14400
        "), Some(Snapshot {
            status: Some("rejected".to_owned()),
            windows: vec![five_hour(100.0), w("seven_day").pct(40.0).secs(SEVEN_DAYS)],
            ..claude()
        })),

        ("malformed values are ignored one by one", format!("
            anthropic-ratelimit-unified-status:
            anthropic-ratelimit-unified-5h-utilization: 37%
            anthropic-ratelimit-unified-5h-reset: {FIVE_HOUR_RESET}
            anthropic-ratelimit-unified-7d-utilization: NaN
            anthropic-ratelimit-unified-7d-reset: 2025-08-09T00:00:00Z
            anthropic-ratelimit-unified-7d_opus-utilization: -0.5
            anthropic-ratelimit-unified-7d_opus-reset: 99999999999999999999
            anthropic-ratelimit-requests-limit: fifty
            anthropic-ratelimit-requests-remaining: -1
            anthropic-ratelimit-requests-reset: {FIVE_HOUR_RESET}
            anthropic-ratelimit-tokens-limit: 0
            anthropic-ratelimit-tokens-remaining: 0
            anthropic-ratelimit-tokens-reset: tomorrow
        "), Some(Snapshot { windows: vec![
            w("five_hour").secs(FIVE_HOURS).resets(FIVE_HOUR_RESET_AT),
            w("tokens").limits(0, 0),
        ], ..claude() })),
    ];
    check_headers(Provider::Claude, &cases);
}

#[test]
#[rustfmt::skip]
fn openai_headers_become_snapshots() {
    let cases = [
        ("API key response: duration resets", "
            x-ratelimit-limit-requests: 5000
            x-ratelimit-remaining-requests: 4999
            x-ratelimit-reset-requests: 12ms
            x-ratelimit-limit-tokens: 800000
            x-ratelimit-remaining-tokens: 799200
            x-ratelimit-reset-tokens: 6m0s
            openai-processing-ms: 341
        ".to_owned(), Some(Snapshot { windows: vec![
            w("requests").limits(5000, 4999).pct(0.02).resets("2025-08-05T12:00:00.012Z"),
            w("tokens").limits(800_000, 799_200).pct(0.1).resets("2025-08-05T12:06:00Z"),
        ], ..openai() })),

        ("API key response on a 429: fractional and compound durations", "
            x-ratelimit-limit-requests: 500
            x-ratelimit-remaining-requests: 0
            x-ratelimit-reset-requests: 1m30.5s
            x-ratelimit-limit-tokens: 30000
            x-ratelimit-remaining-tokens: 10000
            x-ratelimit-reset-tokens: 0.5s
            retry-after: 90
        ".to_owned(), Some(Snapshot { windows: vec![
            w("requests").limits(500, 0).pct(100.0).resets("2025-08-05T12:01:30.5Z"),
            w("tokens").limits(30000, 10000).pct(66.666_667).resets("2025-08-05T12:00:00.5Z"),
        ], ..openai() })),

        ("ChatGPT backend: plan, both windows, credits", format!("
            x-codex-plan-type: plus
            x-codex-active-limit: premium
            x-codex-primary-used-percent: 7
            x-codex-primary-window-minutes: 300
            x-codex-primary-reset-at: {FIVE_HOUR_RESET}
            x-codex-secondary-used-percent: 49.5
            x-codex-secondary-window-minutes: 10080
            x-codex-secondary-reset-at: {SEVEN_DAY_RESET}
            x-codex-primary-over-secondary-limit-percent: 0
            x-codex-credits-has-credits: false
            x-codex-credits-unlimited: false
            x-codex-credits-balance: 0
        "), Some(Snapshot {
            plan: Some("plus".to_owned()),
            windows: vec![
                w("primary").pct(7.0).secs(FIVE_HOURS).resets(FIVE_HOUR_RESET_AT),
                w("secondary").pct(49.5).secs(SEVEN_DAYS).resets(SEVEN_DAY_RESET_AT),
            ],
            credits: Some(Credits { has_credits: Some(false), unlimited: Some(false), balance: Some("0".to_owned()) }),
            ..openai()
        })),

        ("ChatGPT backend, older form: resets in seconds from now", "
            x-codex-primary-used-percent: 42
            x-codex-primary-window-minutes: 300
            x-codex-primary-reset-after-seconds: 3600
            x-codex-secondary-used-percent: 85
            x-codex-secondary-window-minutes: 10080
            x-codex-secondary-reset-after-seconds: 120.25
        ".to_owned(), Some(Snapshot { windows: vec![
            w("primary").pct(42.0).secs(FIVE_HOURS).resets("2025-08-05T13:00:00Z"),
            w("secondary").pct(85.0).secs(SEVEN_DAYS).resets("2025-08-05T12:02:00.25Z"),
        ], ..openai() })),

        ("reset-at wins over reset-after-seconds", format!("
            x-codex-primary-used-percent: 1
            x-codex-primary-reset-at: {FIVE_HOUR_RESET}
            x-codex-primary-reset-after-seconds: 60
        "), Some(Snapshot { windows: vec![w("primary").pct(1.0).resets(FIVE_HOUR_RESET_AT)], ..openai() })),

        ("credits only, unlimited, 1 and TRUE as booleans", "
            X-Codex-Credits-Has-Credits: 1
            X-Codex-Credits-Unlimited: TRUE
            X-Codex-Credits-Balance: 12.50
        ".to_owned(), Some(Snapshot {
            credits: Some(Credits { has_credits: Some(true), unlimited: Some(true), balance: Some("12.50".to_owned()) }),
            ..openai()
        })),

        ("malformed values are ignored one by one", "
            x-codex-plan-type:
            x-codex-primary-used-percent: lots
            x-codex-primary-window-minutes: -300
            x-codex-primary-reset-at: soon
            x-codex-primary-reset-after-seconds: -5
            x-codex-secondary-used-percent: inf
            x-codex-secondary-window-minutes: 10080
            x-codex-secondary-reset-after-seconds: 1e3
            x-codex-credits-has-credits: yes
            x-codex-credits-balance:
            x-ratelimit-limit-requests: 5000
            x-ratelimit-remaining-requests: 4999.5
            x-ratelimit-reset-requests: 6
            x-ratelimit-limit-tokens: x
            x-ratelimit-remaining-tokens: y
            x-ratelimit-reset-tokens: 1 m
        ".to_owned(), Some(Snapshot { windows: vec![
            w("secondary").secs(SEVEN_DAYS),
            UsageWindow { limit: Some(5000), ..w("requests") },
        ], ..openai() })),

        ("Claude's headers say nothing about an OpenAI account", "
            anthropic-ratelimit-unified-status: allowed
            anthropic-ratelimit-requests-limit: 50
        ".to_owned(), None),

        ("only retry-after", "retry-after: 20".to_owned(), None),
    ];
    check_headers(Provider::OpenAi, &cases);
}

#[test]
fn opaque_header_values_are_ignored() {
    let mut map = headers("anthropic-ratelimit-unified-5h-utilization: 0.5");
    map.insert(
        "anthropic-ratelimit-unified-status",
        HeaderValue::from_bytes(b"allow\xffed").unwrap(),
    );
    let expected = Snapshot {
        windows: vec![w("five_hour").pct(50.0).secs(FIVE_HOURS)],
        ..claude()
    };
    assert_eq!(from_headers(Provider::Claude, &map, now()), Some(expected));
}

#[test]
#[rustfmt::skip]
fn durations_parse_like_openai_writes_them() {
    use std::time::Duration;
    let ms = Duration::from_millis;
    let cases = [
        ("6s", Some(ms(6_000))),
        ("1m", Some(ms(60_000))),
        ("12ms", Some(ms(12))),
        ("1h2m3.5s", Some(ms(3_723_500))),
        ("0.5s", Some(ms(500))),
        (".5s", Some(ms(500))),
        ("6m0s", Some(ms(360_000))),
        ("1m30s", Some(ms(90_000))),
        ("2d3h", Some(ms(51 * 3_600_000))),
        ("250us", Some(Duration::from_micros(250))),
        ("250µs", Some(Duration::from_micros(250))),
        ("7ns", Some(Duration::from_nanos(7))),
        ("1.000000001s", Some(Duration::new(1, 1))),
        ("0s", Some(ms(0))),
        (" 6s ", Some(ms(6_000))),
        ("", None),
        ("6", None),
        ("s", None),
        ("-6s", None),
        ("6 s", None),
        ("1.2.3s", None),
        ("6sec", None),
        ("soon", None),
        ("99999999999999999999999999999999999999h", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text), expected, "{text:?}");
    }
}

/// Marks values in bad bodies that must never reach an error message.
const CANARY: &str = "CANARY";

/// Each bad body must fail with exactly `expected`, whose message does not
/// quote the canary the body carries.
fn check_rejected<T: std::fmt::Debug>(
    parse: impl Fn(&[u8], DateTime<Utc>) -> Result<T, SnapshotError>,
    cases: &[(&str, &str, SnapshotError)],
) {
    for (case, body, expected) in cases {
        let error = parse(body.as_bytes(), now()).expect_err(case);
        assert_eq!(&error, expected, "{case}");
        assert!(!error.to_string().contains(CANARY), "{case}: {error}");
    }
}

fn unexpected(endpoint: &'static str, field: &str, expected: &'static str) -> SnapshotError {
    SnapshotError::UnexpectedType {
        endpoint,
        field: field.to_owned(),
        expected,
    }
}

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

#[test]
fn error_messages_name_endpoint_field_and_next_step() {
    let cases = [
        (
            SnapshotError::NotJson {
                endpoint: CLAUDE_USAGE,
            },
            "the Claude usage response is not JSON; check that the configured URL points at the \
             provider's API",
        ),
        (
            unexpected(
                CHATGPT_USAGE,
                "rate_limit.primary_window.used_percent",
                "a number",
            ),
            "the ChatGPT usage response field `rate_limit.primary_window.used_percent` is not a \
             number; the provider may have changed its format: update authvault, or report it if \
             the latest version fails too",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn snapshots_serialize_with_stable_names() {
    let snapshot = Snapshot {
        plan: Some("plus".to_owned()),
        windows: vec![w("primary").pct(7.0)],
        credits: Some(Credits {
            balance: Some("1".to_owned()),
            ..Credits::default()
        }),
        ..snapshot(Provider::OpenAi, SnapshotSource::UsageEndpoint)
    };
    let json = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "provider": "openai",
            "plan": "plus",
            "status": null,
            "windows": [{
                "name": "primary",
                "utilization_percent": 7.0,
                "limit": null,
                "remaining": null,
                "window_seconds": null,
                "resets_at": null
            }],
            "credits": {"has_credits": null, "unlimited": null, "balance": "1"},
            "source": "usage_endpoint",
            "fetched_at": "2025-08-05T12:00:00Z"
        })
    );
    assert_eq!(serde_json::from_value::<Snapshot>(json).unwrap(), snapshot);
    for source in [
        SnapshotSource::Headers,
        SnapshotSource::UsageEndpoint,
        SnapshotSource::ProfileEndpoint,
        SnapshotSource::IdToken,
    ] {
        assert_eq!(serde_json::to_value(source).unwrap(), source.as_str());
    }
}
