//! Subscription snapshots: plan, usage windows and credits of one account, as
//! read from a provider's rate-limit headers or its usage and profile
//! endpoints.
//!
//! Every function here is pure: it takes the bytes or headers of a response
//! and the time `now` (the moment the response arrived), and returns a
//! [`Snapshot`]. Nothing here speaks HTTP or touches the store.
//!
//! Providers express the same facts in several ways, and this module is where
//! they become one:
//!
//! | source | utilization | reset |
//! |---|---|---|
//! | `anthropic-ratelimit-unified-*` headers | fraction 0–1 | unix seconds |
//! | `anthropic-ratelimit-*` headers (API key) | limit / remaining | RFC 3339 |
//! | `x-ratelimit-*` headers (OpenAI API) | limit / remaining | duration (`6s`, `1m30s`, `12ms`) |
//! | `x-codex-*` headers (ChatGPT backend) | percent 0–100 | unix seconds, or seconds from now |
//! | Claude `/api/oauth/usage` | percent 0–100 | RFC 3339 |
//! | ChatGPT `/wham/usage` | percent 0–100 | unix seconds |
//!
//! In a [`Snapshot`] utilization is always a percentage and resets are always
//! absolute UTC times.
//!
//! Header values are read leniently: a malformed value is ignored on its own
//! and never fails the rest. Endpoint bodies are read strictly: a field of the
//! wrong type is an error, because a silent `None` would hide a format change.
//! Errors name the field and the expected type, never the value found: a
//! misrouted response may carry a token.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

use crate::model::{Credits, Provider, Snapshot, SnapshotSource, UsageWindow};

/// Length of the five-hour window, in seconds.
const FIVE_HOURS: u64 = 5 * 3600;
/// Length of the seven-day windows, in seconds.
const SEVEN_DAYS: u64 = 7 * 24 * 3600;
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Who a Claude OAuth token belongs to, from `/api/oauth/profile`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaudeProfile {
    /// `account.uuid`.
    pub account_uuid: Option<String>,
    /// `account.email`.
    pub email: Option<String>,
    /// `organization.uuid`.
    pub organization_uuid: Option<String>,
    /// `organization.rate_limit_tier` (`default_claude_max_20x`…).
    pub rate_limit_tier: Option<String>,
}

/// A usage or profile response that cannot be read.
///
/// Messages name the endpoint and the field, never a value from the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The body is not JSON (an HTML error page, a proxy's answer…).
    #[error(
        "the {endpoint} response is not JSON; check that the configured URL points at the provider's API"
    )]
    NotJson {
        /// Which endpoint answered (`Claude usage`, `ChatGPT usage`…).
        endpoint: &'static str,
    },
    /// A field has another type than the provider's format gives it.
    #[error(
        "the {endpoint} response field `{field}` is not {expected}; the provider may have changed its format: update authvault, or report it if the latest version fails too"
    )]
    UnexpectedType {
        /// Which endpoint answered.
        endpoint: &'static str,
        /// Dotted path of the field (`five_hour.utilization`); `(body)` for
        /// the whole body.
        field: String,
        /// What was expected (`a number`, `an RFC 3339 timestamp`…).
        expected: &'static str,
    },
}

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/// Parses the rate-limit headers of one response from `provider`.
///
/// Reads, for [`Provider::Claude`], `anthropic-ratelimit-unified-*`
/// (subscriptions) and `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*`
/// (API keys); for [`Provider::OpenAi`], `x-codex-*` (ChatGPT backend) and
/// `x-ratelimit-*` (API keys). Another provider's families are ignored, and so
/// are `retry-after` and any malformed value. `now` is when the response
/// arrived: relative resets count from it and it becomes `fetched_at`.
///
/// Returns `None` when the headers carry nothing known.
#[must_use]
pub fn from_headers(
    provider: Provider,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<Snapshot> {
    let mut snapshot = Snapshot::empty(provider, SnapshotSource::Headers, now);
    match provider {
        Provider::Claude => {
            snapshot.status =
                header_str(headers, "anthropic-ratelimit-unified-status").map(str::to_owned);
            snapshot.windows.extend(claude_unified_windows(headers));
            snapshot.windows.extend(anthropic_api_windows(headers));
        }
        Provider::OpenAi => {
            snapshot.plan = header_str(headers, "x-codex-plan-type").map(str::to_owned);
            snapshot.windows.extend(codex_windows(headers, now));
            snapshot.credits = codex_credits(headers);
            snapshot.windows.extend(openai_api_windows(headers, now));
        }
    }
    let known = snapshot.plan.is_some()
        || snapshot.status.is_some()
        || snapshot.credits.is_some()
        || !snapshot.windows.is_empty();
    known.then_some(snapshot)
}

/// `anthropic-ratelimit-unified-{5h,7d,7d_opus,7d_sonnet}-{utilization,reset}`.
fn claude_unified_windows(headers: &HeaderMap) -> impl Iterator<Item = UsageWindow> + '_ {
    const WINDOWS: [(&str, &str, u64); 4] = [
        ("5h", "five_hour", FIVE_HOURS),
        ("7d", "seven_day", SEVEN_DAYS),
        ("7d_opus", "seven_day_opus", SEVEN_DAYS),
        ("7d_sonnet", "seven_day_sonnet", SEVEN_DAYS),
    ];
    WINDOWS.into_iter().filter_map(|(key, name, seconds)| {
        let prefix = format!("anthropic-ratelimit-unified-{key}");
        let window = UsageWindow {
            utilization_percent: header_f64(headers, &format!("{prefix}-utilization"))
                .map(|fraction| round_percent(fraction * 100.0))
                .filter(|percent| percent.is_finite()),
            resets_at: header_i64(headers, &format!("{prefix}-reset")).and_then(unix_seconds),
            window_seconds: Some(seconds),
            ..UsageWindow::named(name)
        };
        window.has_data().then_some(window)
    })
}

/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`.
fn anthropic_api_windows(headers: &HeaderMap) -> impl Iterator<Item = UsageWindow> + '_ {
    const WINDOWS: [(&str, &str); 4] = [
        ("requests", "requests"),
        ("tokens", "tokens"),
        ("input-tokens", "input_tokens"),
        ("output-tokens", "output_tokens"),
    ];
    WINDOWS.into_iter().filter_map(|(key, name)| {
        let prefix = format!("anthropic-ratelimit-{key}");
        let reset = header_str(headers, &format!("{prefix}-reset"));
        limit_window(
            name,
            header_u64(headers, &format!("{prefix}-limit")),
            header_u64(headers, &format!("{prefix}-remaining")),
            reset.and_then(rfc3339),
        )
    })
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
fn openai_api_windows(
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> impl Iterator<Item = UsageWindow> + '_ {
    ["requests", "tokens"].into_iter().filter_map(move |name| {
        let reset = header_str(headers, &format!("x-ratelimit-reset-{name}"));
        limit_window(
            name,
            header_u64(headers, &format!("x-ratelimit-limit-{name}")),
            header_u64(headers, &format!("x-ratelimit-remaining-{name}")),
            reset
                .and_then(parse_duration)
                .and_then(|after| add(now, after)),
        )
    })
}

/// A window of an API rate limit given as limit and remaining.
fn limit_window(
    name: &str,
    limit: Option<u64>,
    remaining: Option<u64>,
    resets_at: Option<DateTime<Utc>>,
) -> Option<UsageWindow> {
    let window = UsageWindow {
        utilization_percent: limit.zip(remaining).and_then(used_percent),
        limit,
        remaining,
        resets_at,
        ..UsageWindow::named(name)
    };
    window.has_data().then_some(window)
}

/// `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-at,reset-after-seconds}`.
fn codex_windows(
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> impl Iterator<Item = UsageWindow> + '_ {
    ["primary", "secondary"]
        .into_iter()
        .filter_map(move |name| {
            let prefix = format!("x-codex-{name}");
            let reset_at =
                header_i64(headers, &format!("{prefix}-reset-at")).and_then(unix_seconds);
            let reset_after = || {
                header_str(headers, &format!("{prefix}-reset-after-seconds"))
                    .and_then(|text| decimal_nanos(text, NANOS_PER_SECOND))
                    .and_then(nanos_duration)
                    .and_then(|after| add(now, after))
            };
            let window = UsageWindow {
                utilization_percent: header_f64(headers, &format!("{prefix}-used-percent")),
                window_seconds: header_u64(headers, &format!("{prefix}-window-minutes"))
                    .and_then(|minutes| minutes.checked_mul(60)),
                resets_at: reset_at.or_else(reset_after),
                ..UsageWindow::named(name)
            };
            (window.has_data() || window.window_seconds.is_some()).then_some(window)
        })
}

/// `x-codex-credits-{has-credits,unlimited,balance}`.
fn codex_credits(headers: &HeaderMap) -> Option<Credits> {
    let credits = Credits {
        has_credits: header_bool(headers, "x-codex-credits-has-credits"),
        unlimited: header_bool(headers, "x-codex-credits-unlimited"),
        balance: header_str(headers, "x-codex-credits-balance").map(str::to_owned),
    };
    (credits != Credits::default()).then_some(credits)
}

/// A header's value as trimmed, non-empty text.
fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    (!text.is_empty()).then_some(text)
}

/// A finite, non-negative number.
fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    header_str(headers, name)?
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && *value >= 0.0)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name)?.parse().ok()
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    header_str(headers, name)?.parse().ok()
}

/// `true` / `false` in any case, or `1` / `0`.
fn header_bool(headers: &HeaderMap, name: &str) -> Option<bool> {
    let text = header_str(headers, name)?;
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// Percent used of a limit: `100 × (1 − remaining / limit)`, clamped to
/// 0–100; `None` for a zero limit.
fn used_percent((limit, remaining): (u64, u64)) -> Option<f64> {
    if limit == 0 {
        return None;
    }
    let used = limit - remaining.min(limit);
    #[expect(
        clippy::cast_precision_loss,
        reason = "rate limits are far below 2^52; a percentage needs no more precision"
    )]
    let percent = used as f64 * 100.0 / limit as f64;
    Some(round_percent(percent))
}

/// Rounds a computed percentage to 6 decimals, so that `0.37` becomes `37.0`
/// and not `37.00000000000001` in `--json` output and comparisons.
fn round_percent(percent: f64) -> f64 {
    (percent * 1e6).round() / 1e6
}

/// A unix time in seconds; `None` when out of chrono's range.
fn unix_seconds(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// `now + after`, `None` on overflow.
fn add(now: DateTime<Utc>, after: std::time::Duration) -> Option<DateTime<Utc>> {
    now.checked_add_signed(TimeDelta::from_std(after).ok()?)
}

/// Parses a Go-style duration as OpenAI's `x-ratelimit-reset-*` headers give
/// it: one or more `<decimal><unit>` terms, units `ns`, `us` (`µs`), `ms`,
/// `s`, `m`, `h`, `d`: `6s`, `1m`, `12ms`, `6m0s`, `1h2m3.5s`, `0.5s`.
/// A bare number, a sign, spaces or an unknown unit give `None`.
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3_600 * NANOS_PER_SECOND,
            "d" => 86_400 * NANOS_PER_SECOND,
            _ => return None,
        };
        total = total.checked_add(decimal_nanos(number, unit_nanos)?)?;
        rest = next;
    }
    nanos_duration(total)
}

/// `number × unit_nanos` for an unsigned decimal (`12`, `3.5`, `.5`), exactly
/// (fraction digits past the 18th are dropped).
fn decimal_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let scale = 10_u128.pow(u32::try_from(fraction.len()).ok()?);
        let fraction: u128 = fraction.parse().ok()?;
        nanos = nanos.checked_add(fraction * unit_nanos / scale)?;
    }
    Some(nanos)
}

fn nanos_duration(nanos: u128) -> Option<std::time::Duration> {
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).ok()?;
    let subsec = u32::try_from(nanos % NANOS_PER_SECOND).ok()?;
    Some(std::time::Duration::new(seconds, subsec))
}

// ---------------------------------------------------------------------------
// Endpoint bodies
// ---------------------------------------------------------------------------

const CLAUDE_USAGE: &str = "Claude usage";
const CLAUDE_PROFILE: &str = "Claude profile";
const CHATGPT_USAGE: &str = "ChatGPT usage";

/// Parses the body of Claude's `GET /api/oauth/usage`.
///
/// Reads `five_hour`, `seven_day`, `seven_day_opus` and `seven_day_sonnet`,
/// each `{utilization: percent 0–100, resets_at: RFC 3339}`. A window that is
/// `null` or absent is left out; a `null` or absent field is `None`; other
/// keys are ignored.
///
/// # Errors
///
/// [`SnapshotError::NotJson`] when the body is not JSON,
/// [`SnapshotError::UnexpectedType`] when the body or a field read has
/// another type (a timestamp that is not RFC 3339 counts as one).
pub fn from_claude_usage(body: &[u8], now: DateTime<Utc>) -> Result<Snapshot, SnapshotError> {
    const WINDOWS: [(&str, u64); 4] = [
        ("five_hour", FIVE_HOURS),
        ("seven_day", SEVEN_DAYS),
        ("seven_day_opus", SEVEN_DAYS),
        ("seven_day_sonnet", SEVEN_DAYS),
    ];
    let value = parse_json(body, CLAUDE_USAGE)?;
    let root = Object::root(&value, CLAUDE_USAGE)?;
    let mut snapshot = Snapshot::empty(Provider::Claude, SnapshotSource::UsageEndpoint, now);
    for (name, seconds) in WINDOWS {
        if let Some(window) = root.object(name)? {
            snapshot.windows.push(UsageWindow {
                utilization_percent: window.f64("utilization")?,
                resets_at: window.rfc3339("resets_at")?,
                window_seconds: Some(seconds),
                ..UsageWindow::named(name)
            });
        }
    }
    Ok(snapshot)
}

/// Parses the body of Claude's `GET /api/oauth/profile`.
///
/// Reads `account {uuid, email, has_claude_max, has_claude_pro}` and
/// `organization {uuid, rate_limit_tier}`. The plan is `max` when
/// `has_claude_max` is true, else `pro` when `has_claude_pro` is true, else
/// the rate-limit tier as given (team and enterprise organizations).
///
/// # Errors
///
/// [`SnapshotError::NotJson`] when the body is not JSON,
/// [`SnapshotError::UnexpectedType`] when the body or a field read has
/// another type.
pub fn from_claude_profile(
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(Snapshot, ClaudeProfile), SnapshotError> {
    let value = parse_json(body, CLAUDE_PROFILE)?;
    let root = Object::root(&value, CLAUDE_PROFILE)?;
    let mut profile = ClaudeProfile::default();
    let (mut max, mut pro) = (None, None);
    if let Some(account) = root.object("account")? {
        profile.account_uuid = account.string("uuid")?;
        profile.email = account.string("email")?;
        max = account.bool("has_claude_max")?;
        pro = account.bool("has_claude_pro")?;
    }
    if let Some(organization) = root.object("organization")? {
        profile.organization_uuid = organization.string("uuid")?;
        profile.rate_limit_tier = organization.string("rate_limit_tier")?;
    }
    let mut snapshot = Snapshot::empty(Provider::Claude, SnapshotSource::ProfileEndpoint, now);
    snapshot.plan = if max == Some(true) {
        Some("max".to_owned())
    } else if pro == Some(true) {
        Some("pro".to_owned())
    } else {
        profile.rate_limit_tier.clone()
    };
    Ok((snapshot, profile))
}

/// Parses the body of ChatGPT's `GET /backend-api/wham/usage`.
///
/// Reads `plan_type`; `rate_limit.primary_window` and `secondary_window`,
/// each `{used_percent, limit_window_seconds, reset_at (unix seconds)}` with
/// `reset_after_seconds` as a fallback for `reset_at`; and `credits
/// {has_credits, unlimited, balance (string or number)}`. `null` or absent
/// parts are left out; other keys (`code_review_rate_limit`…) are ignored.
///
/// # Errors
///
/// [`SnapshotError::NotJson`] when the body is not JSON,
/// [`SnapshotError::UnexpectedType`] when the body or a field read has
/// another type.
pub fn from_chatgpt_usage(body: &[u8], now: DateTime<Utc>) -> Result<Snapshot, SnapshotError> {
    let value = parse_json(body, CHATGPT_USAGE)?;
    let root = Object::root(&value, CHATGPT_USAGE)?;
    let mut snapshot = Snapshot::empty(Provider::OpenAi, SnapshotSource::UsageEndpoint, now);
    snapshot.plan = root.string("plan_type")?;
    if let Some(rate_limit) = root.object("rate_limit")? {
        for (key, name) in [
            ("primary_window", "primary"),
            ("secondary_window", "secondary"),
        ] {
            let Some(window) = rate_limit.object(key)? else {
                continue;
            };
            let reset_at = window.unix_seconds("reset_at")?;
            let reset_after = window.u64("reset_after_seconds")?;
            snapshot.windows.push(UsageWindow {
                utilization_percent: window.f64("used_percent")?,
                window_seconds: window.u64("limit_window_seconds")?,
                resets_at: reset_at.or_else(|| {
                    let after = TimeDelta::try_seconds(i64::try_from(reset_after?).ok()?)?;
                    now.checked_add_signed(after)
                }),
                ..UsageWindow::named(name)
            });
        }
    }
    if let Some(credits) = root.object("credits")? {
        snapshot.credits = Some(Credits {
            has_credits: credits.bool("has_credits")?,
            unlimited: credits.bool("unlimited")?,
            balance: credits.string_or_number("balance")?,
        });
    }
    Ok(snapshot)
}

/// Parses JSON without letting serde's message (which may quote the body)
/// into the error.
fn parse_json(body: &[u8], endpoint: &'static str) -> Result<Value, SnapshotError> {
    serde_json::from_slice(body).map_err(|_| SnapshotError::NotJson { endpoint })
}

/// A JSON object of a response body, with the path that led to it, so that
/// errors can name fields.
struct Object<'v> {
    endpoint: &'static str,
    /// Dotted path of this object; empty for the body itself.
    path: String,
    map: &'v Map<String, Value>,
}

impl<'v> Object<'v> {
    /// The body itself, which must be an object.
    fn root(value: &'v Value, endpoint: &'static str) -> Result<Self, SnapshotError> {
        match value {
            Value::Object(map) => Ok(Self {
                endpoint,
                path: String::new(),
                map,
            }),
            _ => Err(SnapshotError::UnexpectedType {
                endpoint,
                field: "(body)".to_owned(),
                expected: "an object",
            }),
        }
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn unexpected(&self, key: &str, expected: &'static str) -> SnapshotError {
        SnapshotError::UnexpectedType {
            endpoint: self.endpoint,
            field: self.path_of(key),
            expected,
        }
    }

    /// The value under `key`; `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// Reads `key` with `read`, which returns `None` for a wrong type.
    fn read<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'v Value) -> Option<T>,
    ) -> Result<Option<T>, SnapshotError> {
        self.get(key)
            .map(|value| read(value).ok_or_else(|| self.unexpected(key, expected)))
            .transpose()
    }

    fn object(&self, key: &str) -> Result<Option<Self>, SnapshotError> {
        let map = self.read(key, "an object", Value::as_object)?;
        Ok(map.map(|map| Self {
            endpoint: self.endpoint,
            path: self.path_of(key),
            map,
        }))
    }

    fn string(&self, key: &str) -> Result<Option<String>, SnapshotError> {
        self.read(key, "a string", |value| value.as_str().map(str::to_owned))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, SnapshotError> {
        self.read(key, "a boolean", Value::as_bool)
    }

    fn f64(&self, key: &str) -> Result<Option<f64>, SnapshotError> {
        self.read(key, "a number", Value::as_f64)
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, SnapshotError> {
        self.read(key, "a non-negative integer", Value::as_u64)
    }

    fn string_or_number(&self, key: &str) -> Result<Option<String>, SnapshotError> {
        self.read(key, "a string or a number", |value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    }

    fn rfc3339(&self, key: &str) -> Result<Option<DateTime<Utc>>, SnapshotError> {
        self.read(key, "an RFC 3339 timestamp", |value| {
            rfc3339(value.as_str()?)
        })
    }

    fn unix_seconds(&self, key: &str) -> Result<Option<DateTime<Utc>>, SnapshotError> {
        self.read(key, "a unix time in seconds", |value| {
            unix_seconds(value.as_i64()?)
        })
    }
}

#[cfg(test)]
mod tests;
