//! ChatGPT's `/backend-api/wham/usage` body.

use chrono::{DateTime, TimeDelta, Utc};

use super::SnapshotError;
use super::body::{Object, parse_json};
use crate::model::{Credits, Provider, Snapshot, SnapshotSource, UsageWindow};

pub(super) const CHATGPT_USAGE: &str = "ChatGPT usage";

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
