//! Header dumps of every family → the snapshots expected, and the duration
//! format of OpenAI's reset headers.

use reqwest::header::HeaderValue;

use super::*;
use crate::providers::snapshot::headers::parse_duration;

fn check_headers(provider: Provider, cases: &[(&str, String, Option<Snapshot>)]) {
    for (case, dump, expected) in cases {
        let actual = from_headers(provider, &headers(dump), now());
        assert_eq!(&actual, expected, "{case}");
    }
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
