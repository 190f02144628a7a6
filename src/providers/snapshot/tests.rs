//! Tables of real-shaped header sets and bodies → the snapshots expected:
//! one file per source (`tests/headers.rs`, `tests/claude.rs`,
//! `tests/chatgpt.rs`); this file holds what they share.
//!
//! Tables are kept one case per line where they fit (`rustfmt::skip`), so
//! that each reads as "this response → this snapshot".

use chrono::TimeZone;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::chatgpt::CHATGPT_USAGE;
use super::claude::CLAUDE_USAGE;
use super::*;
use crate::model::{Credits, Provider, Snapshot, SnapshotSource, UsageWindow};

mod chatgpt;
mod claude;
mod headers;

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
