//! Usage history's plain data, shared by the store and the `usage` module:
//! where an event came from, its tokens in one meaning, costs in
//! pico-dollars.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where a usage event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Source {
    /// Committed through the quota ledger.
    #[serde(rename = "ledger")]
    Ledger,
    /// A Claude Code transcript (`~/.claude/projects/…/*.jsonl`).
    #[serde(rename = "claude-code")]
    ClaudeCode,
    /// A Codex rollout (`~/.codex/sessions/…/rollout-*.jsonl`).
    #[serde(rename = "codex")]
    Codex,
    /// Given by a program through the library.
    #[serde(rename = "api")]
    Api,
}

impl Source {
    /// The stable name used in the database, the CLI and `--json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ledger => "ledger",
            Self::ClaudeCode => "claude-code",
            Self::Codex => "codex",
            Self::Api => "api",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = super::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Ledger, Self::ClaudeCode, Self::Codex, Self::Api]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| super::UnknownName {
                what: "usage source",
                name: s.to_owned(),
                expected: "ledger, claude-code, codex or api",
            })
    }
}

/// Tokens of one response (or a sum), in one meaning for every provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    /// Input not read from the cache (Codex's `input − cached`).
    pub input: u64,
    /// Input read from the prompt cache.
    pub cache_read: u64,
    /// Input written to the cache for 5 minutes (all cache writes when the
    /// log does not split them).
    pub cache_write_5m: u64,
    /// Input written to the cache for 1 hour.
    pub cache_write_1h: u64,
    /// Output, reasoning included.
    pub output: u64,
    /// The reasoning part of `output`.
    pub reasoning: u64,
}

impl Tokens {
    /// Every cache write.
    #[must_use]
    pub const fn cache_write(&self) -> u64 {
        self.cache_write_5m + self.cache_write_1h
    }

    /// Input + output + cache writes + cache reads (ccusage's `totalTokens`;
    /// reasoning is inside output).
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.input + self.output + self.cache_write() + self.cache_read
    }

    /// Adds `other` in place.
    pub const fn add(&mut self, other: &Self) {
        self.input += other.input;
        self.cache_read += other.cache_read;
        self.cache_write_5m += other.cache_write_5m;
        self.cache_write_1h += other.cache_write_1h;
        self.output += other.output;
        self.reasoning += other.reasoning;
    }
}

/// The price version of a cost the source gave itself (a Claude Code log's
/// `costUSD`, a ledger commit's `--usd`) rather than one computed from a
/// price table; `vault usage reprice` keeps such costs.
pub const GIVEN_COST: &str = "given";

/// Pico-dollars (1e-12 USD) per dollar: costs are kept as whole pico-dollars,
/// which hold every LiteLLM per-token price exactly.
pub const PICO_PER_USD: f64 = 1e12;

/// Pico-dollars as dollars.
#[must_use]
#[allow(clippy::cast_precision_loss)] // a cost above 2^53 pico-dollars ($9,007) loses sub-nano digits only
pub fn pico_to_usd(pico: u64) -> f64 {
    pico as f64 / PICO_PER_USD
}
