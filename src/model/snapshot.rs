//! Subscription snapshots: what a provider said about an account's plan,
//! usage windows and credits at one moment.
//!
//! Plain data: the store persists a [`Snapshot`] (as JSON) and returns it,
//! the CLI shows it. Reading one from a provider's headers or bodies is
//! `providers::snapshot`'s job. Utilization is always a percentage and
//! resets are always absolute UTC times.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Provider;

/// One usage window (5-hour, 7-day, per-model 7-day, or an API rate limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageWindow {
    /// Which window: `five_hour`, `seven_day`, `seven_day_opus`,
    /// `seven_day_sonnet` (Claude subscriptions); `primary`, `secondary`
    /// (ChatGPT subscriptions); `requests`, `tokens`, `input_tokens`,
    /// `output_tokens` (API rate limits).
    pub name: String,
    /// How much of the window is used, in percent (0–100; above 100 when the
    /// provider reports overage).
    pub utilization_percent: Option<f64>,
    /// Size of an API rate limit (requests or tokens per window).
    pub limit: Option<u64>,
    /// What is left of an API rate limit.
    pub remaining: Option<u64>,
    /// Length of the window, when the provider says or the window's name
    /// implies it (five hours, seven days).
    pub window_seconds: Option<u64>,
    /// When the window resets.
    pub resets_at: Option<DateTime<Utc>>,
}

impl UsageWindow {
    /// A window with only its name set.
    #[must_use]
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            utilization_percent: None,
            limit: None,
            remaining: None,
            window_seconds: None,
            resets_at: None,
        }
    }

    /// Whether any field besides the name and `window_seconds` is known.
    #[must_use]
    pub fn has_data(&self) -> bool {
        self.utilization_percent.is_some()
            || self.limit.is_some()
            || self.remaining.is_some()
            || self.resets_at.is_some()
    }
}

/// What a provider said about an account's plan and usage at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Whose account this is.
    pub provider: Provider,
    /// Plan or tier as the provider names it (`plus`, `pro`, `max`,
    /// `default_claude_max_20x`…), kept as free text.
    pub plan: Option<String>,
    /// Claude's overall rate-limit status (`allowed`, `allowed_warning`,
    /// `rejected`), kept as free text.
    pub status: Option<String>,
    /// Usage windows, in the order their source lists them.
    pub windows: Vec<UsageWindow>,
    /// Prepaid credits (ChatGPT), when given.
    pub credits: Option<Credits>,
    /// Where the snapshot came from.
    pub source: SnapshotSource,
    /// When the response this snapshot was read from arrived.
    pub fetched_at: DateTime<Utc>,
}

impl Snapshot {
    /// An empty snapshot of `provider` from `source` at `now`.
    #[must_use]
    pub fn empty(provider: Provider, source: SnapshotSource, now: DateTime<Utc>) -> Self {
        Self {
            provider,
            plan: None,
            status: None,
            windows: Vec::new(),
            credits: None,
            source,
            fetched_at: now,
        }
    }
}

/// Prepaid credits of a ChatGPT account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credits {
    /// Whether the account has credits to spend beyond its plan.
    pub has_credits: Option<bool>,
    /// Whether credits are unlimited.
    pub unlimited: Option<bool>,
    /// Balance as the provider wrote it. Kept as text because it arrives both
    /// as a string (`"12.50"`) and as a JSON number (`5.39`, stored as
    /// `"5.39"`), and text keeps the provider's precision and formatting.
    pub balance: Option<String>,
}

/// Where a [`Snapshot`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotSource {
    /// Rate-limit headers of an ordinary API response.
    Headers,
    /// A usage endpoint (Claude `/api/oauth/usage`, ChatGPT `/wham/usage`).
    UsageEndpoint,
    /// Claude's profile endpoint (`/api/oauth/profile`).
    ProfileEndpoint,
    /// Claims of an OpenAI id token.
    IdToken,
    /// The rate limits a Codex rollout logged (`token_count` events).
    CodexLog,
}

impl SnapshotSource {
    /// The stable name used in the database and `--json` (same as serde's).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Headers => "headers",
            Self::UsageEndpoint => "usage_endpoint",
            Self::ProfileEndpoint => "profile_endpoint",
            Self::IdToken => "id_token",
            Self::CodexLog => "codex_log",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_serialize_with_stable_names() {
        let fetched_at = DateTime::parse_from_rfc3339("2025-08-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let snapshot = Snapshot {
            plan: Some("plus".to_owned()),
            windows: vec![UsageWindow {
                utilization_percent: Some(7.0),
                ..UsageWindow::named("primary")
            }],
            credits: Some(Credits {
                balance: Some("1".to_owned()),
                ..Credits::default()
            }),
            ..Snapshot::empty(Provider::OpenAi, SnapshotSource::UsageEndpoint, fetched_at)
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
            SnapshotSource::CodexLog,
        ] {
            assert_eq!(serde_json::to_value(source).unwrap(), source.as_str());
        }
    }
}
