//! Claude's `/api/oauth/usage` and `/api/oauth/profile` bodies.

use chrono::{DateTime, Utc};

use super::body::{Object, parse_json};
use super::{FIVE_HOURS, SEVEN_DAYS, SnapshotError};
use crate::model::{Provider, Snapshot, SnapshotSource, UsageWindow};

pub(super) const CLAUDE_USAGE: &str = "Claude usage";
pub(super) const CLAUDE_PROFILE: &str = "Claude profile";

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
