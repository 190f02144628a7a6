//! Rate-limit headers of any response: `anthropic-ratelimit-unified-*`,
//! `anthropic-ratelimit-*`, `x-ratelimit-*` and `x-codex-*`. Read leniently:
//! a malformed value is ignored on its own.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::HeaderMap;

use super::{FIVE_HOURS, SEVEN_DAYS, rfc3339, unix_seconds};
use crate::model::{Credits, Provider, Snapshot, SnapshotSource, UsageWindow};

const NANOS_PER_SECOND: u128 = 1_000_000_000;

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

/// `now + after`, `None` on overflow.
fn add(now: DateTime<Utc>, after: std::time::Duration) -> Option<DateTime<Utc>> {
    now.checked_add_signed(TimeDelta::from_std(after).ok()?)
}

/// Parses a Go-style duration as OpenAI's `x-ratelimit-reset-*` headers give
/// it: one or more `<decimal><unit>` terms, units `ns`, `us` (`µs`), `ms`,
/// `s`, `m`, `h`, `d`: `6s`, `1m`, `12ms`, `6m0s`, `1h2m3.5s`, `0.5s`.
/// A bare number, a sign, spaces or an unknown unit give `None`.
pub(super) fn parse_duration(text: &str) -> Option<std::time::Duration> {
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
