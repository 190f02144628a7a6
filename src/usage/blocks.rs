//! 5-hour billing blocks: responses grouped the way Anthropic's 5-hour
//! usage windows run, as `ccusage claude blocks` counts them. A block starts
//! at the UTC hour of its first response and lasts `length`; a response more
//! than `length` after the block's start or after the previous response
//! opens a new block, and a gap longer than `length` between two responses
//! is reported as a gap block. The block still running gets a burn rate and
//! a projection to its end.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::query::Sums;
use crate::store::EventRow;

/// Claude's billing window.
pub const FIVE_HOURS: TimeDelta = TimeDelta::hours(5);

/// One block (or one gap between blocks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Block {
    /// Its first UTC hour (for a gap: the end of the block before).
    pub start: DateTime<Utc>,
    /// `start + length` (for a gap: the next response).
    pub end: DateTime<Utc>,
    /// The first response (`None` for a gap).
    pub first: Option<DateTime<Utc>>,
    /// The last response (`None` for a gap).
    pub last: Option<DateTime<Utc>>,
    /// A gap: no response for longer than the block length.
    pub is_gap: bool,
    /// The block `now` is in: its last response is less than `length` ago
    /// and it has not ended.
    pub is_active: bool,
    /// Sums over its responses.
    pub sums: Sums,
    /// Models in the order first used.
    pub models: Vec<String>,
    /// For the active block: how fast it is being used.
    pub burn_rate: Option<BurnRate>,
    /// For the active block: where it ends at that rate.
    pub projection: Option<Projection>,
}

/// Usage per unit of time over the active block so far (first to last
/// response).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BurnRate {
    /// All tokens per minute.
    pub tokens_per_minute: f64,
    /// Input and output tokens (no cache) per minute.
    pub tokens_per_minute_for_indicator: f64,
    /// Dollars per hour.
    pub cost_per_hour: f64,
}

/// The active block at its end if the burn rate holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Projection {
    /// Whole minutes until the block ends (rounded).
    pub remaining_minutes: u64,
    /// Tokens by the end.
    pub total_tokens: u64,
    /// Dollars by the end, rounded to the cent.
    pub total_cost: f64,
}

/// Groups `events` (sorted by time, as [`crate::store::Store::usage_events`]
/// returns them) into blocks of `length`, with gaps, as of `now`.
#[must_use]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // rates of token counts and minutes far below 2^52; rounded, non-negative
pub fn blocks(events: &[EventRow], length: TimeDelta, now: DateTime<Utc>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for e in events {
        let open = out.last().is_some_and(|b| {
            let last = b.last.expect("a block has responses");
            e.at - b.start <= length && e.at - last <= length
        });
        if !open {
            if let Some(last) = out.last().and_then(|b| b.last)
                && e.at - last > length
            {
                out.push(Block {
                    start: last + length,
                    end: e.at,
                    first: None,
                    last: None,
                    is_gap: true,
                    is_active: false,
                    sums: Sums::default(),
                    models: Vec::new(),
                    burn_rate: None,
                    projection: None,
                });
            }
            let start =
                e.at.duration_trunc(TimeDelta::hours(1))
                    .expect("an hour divides any timestamp");
            out.push(Block {
                start,
                end: start + length,
                first: Some(e.at),
                last: Some(e.at),
                is_gap: false,
                is_active: false,
                sums: Sums::default(),
                models: Vec::new(),
                burn_rate: None,
                projection: None,
            });
        }
        let b = out.last_mut().expect("a block was just opened");
        b.sums.add(e);
        b.last = Some(e.at);
        if e.model != "<synthetic>" && !b.models.contains(&e.model) {
            b.models.push(e.model.clone());
        }
    }
    if let Some(b) = out.last_mut()
        && let (Some(first), Some(last)) = (b.first, b.last)
        && now - last < length
        && now < b.end
    {
        b.is_active = true;
        let minutes = (last - first).num_milliseconds() as f64 / 60_000.0;
        if minutes > 0.0 {
            let total = b.sums.tokens.total() as f64;
            let cost = b.sums.cost_usd();
            let rate = BurnRate {
                tokens_per_minute: total / minutes,
                tokens_per_minute_for_indicator: (b.sums.tokens.input + b.sums.tokens.output)
                    as f64
                    / minutes,
                cost_per_hour: cost / minutes * 60.0,
            };
            let remaining = ((b.end - now).num_milliseconds() as f64 / 60_000.0)
                .round()
                .max(0.0);
            b.projection = Some(Projection {
                remaining_minutes: remaining as u64,
                total_tokens: (total + rate.tokens_per_minute * remaining).round() as u64,
                total_cost: ((cost + rate.cost_per_hour / 60.0 * remaining) * 100.0).round()
                    / 100.0,
            });
            b.burn_rate = Some(rate);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;
    use crate::usage::{Source, Tokens};

    fn event(at: &str, input: u64) -> EventRow {
        EventRow {
            at: at.parse().unwrap(),
            provider: Provider::Claude,
            account: None,
            model: "m".into(),
            agent: None,
            task_type: None,
            session: None,
            project: None,
            source: Source::ClaudeCode,
            events: 1,
            tokens: Tokens {
                input,
                ..Tokens::default()
            },
            cost_pico: input * 1_000_000,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_response_more_than_five_hours_after_the_start_or_the_last_opens_a_new_block() {
        let events = [
            event("2025-06-20T10:15:00Z", 1),
            event("2025-06-20T15:00:00Z", 2), // 4h45 after the start: same block
            event("2025-06-20T15:20:00Z", 4), // 5h05 after the start: new block at 15:00
            event("2025-06-21T01:30:00Z", 8), // 10h10 after the last: gap, then a block
        ];
        let b = blocks(&events, FIVE_HOURS, at("2026-01-01T00:00:00Z"));
        let shape: Vec<_> = b
            .iter()
            .map(|b| (b.start, b.end, b.is_gap, b.sums.tokens.input))
            .collect();
        assert_eq!(
            shape,
            [
                (
                    at("2025-06-20T10:00:00Z"),
                    at("2025-06-20T15:00:00Z"),
                    false,
                    3
                ),
                (
                    at("2025-06-20T15:00:00Z"),
                    at("2025-06-20T20:00:00Z"),
                    false,
                    4
                ),
                (
                    at("2025-06-20T20:20:00Z"),
                    at("2025-06-21T01:30:00Z"),
                    true,
                    0
                ),
                (
                    at("2025-06-21T01:00:00Z"),
                    at("2025-06-21T06:00:00Z"),
                    false,
                    8
                ),
            ]
        );
        assert!(b.iter().all(|b| !b.is_active && b.burn_rate.is_none()));
    }

    #[test]
    fn the_running_block_gets_a_burn_rate_and_a_projection() {
        let events = [
            event("2025-06-20T10:10:00Z", 600),
            event("2025-06-20T11:10:00Z", 600),
        ];
        let b = blocks(&events, FIVE_HOURS, at("2025-06-20T12:00:00Z"));
        assert!(b[0].is_active);
        let rate = b[0].burn_rate.unwrap();
        assert!((rate.tokens_per_minute - 20.0).abs() < 1e-9);
        assert!((rate.cost_per_hour - 0.0012).abs() < 1e-12);
        let p = b[0].projection.unwrap();
        assert_eq!(p.remaining_minutes, 180);
        assert_eq!(p.total_tokens, 1200 + 20 * 180);
        // $0.0012 + 3h × $0.0012/h rounds to $0.00.
        assert!(p.total_cost.abs() < 1e-12);
        // Five hours after the last response it is no longer running.
        let later = blocks(&events, FIVE_HOURS, at("2025-06-20T16:10:00Z"));
        assert!(!later[0].is_active && later[0].projection.is_none());
    }
}
