//! Subscription snapshots: plan, usage windows and credits of one account, as
//! read from a provider's rate-limit headers or its usage and profile
//! endpoints.
//!
//! Every function here is pure: it takes the bytes or headers of a response
//! and the time `now` (the moment the response arrived), and returns a
//! [`Snapshot`](crate::model::Snapshot). Nothing here speaks HTTP or touches
//! the store.
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
//! In a snapshot utilization is always a percentage and resets are always
//! absolute UTC times.
//!
//! Header values are read leniently: a malformed value is ignored on its own
//! and never fails the rest. Endpoint bodies are read strictly: a field of the
//! wrong type is an error, because a silent `None` would hide a format change.
//! Errors name the field and the expected type, never the value found: a
//! misrouted response may carry a token.
//!
//! One file per source: `headers.rs` (every rate-limit header family),
//! `claude.rs` (usage and profile bodies), `chatgpt.rs` (the usage body);
//! `body.rs` reads JSON bodies with field paths for the errors.

mod body;
mod chatgpt;
mod claude;
mod headers;

use chrono::{DateTime, Utc};

pub use chatgpt::from_chatgpt_usage;
pub use claude::{ClaudeProfile, from_claude_profile, from_claude_usage};
pub use headers::from_headers;

/// Length of the five-hour window, in seconds.
const FIVE_HOURS: u64 = 5 * 3600;
/// Length of the seven-day windows, in seconds.
const SEVEN_DAYS: u64 = 7 * 24 * 3600;

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

/// A unix time in seconds; `None` when out of chrono's range.
fn unix_seconds(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
