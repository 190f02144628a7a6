//! Account selection: which account serves a task, and why.
//!
//! A pure function, [`select`]: (task, candidates, policy, now) →
//! [`Decision`]. No I/O, no clock, no randomness: the same inputs give the
//! same decision, whatever order the candidates come in. The manager gathers
//! the inputs (accounts, their newest snapshots, cooldowns, health, quota
//! budgets) and acts on the decision; the selector only decides.
//!
//! # How a decision is made
//!
//! 1. **Exclusion.** A candidate is excluded, with every reason that
//!    applies, when it is disabled, needs login, is
//!    [`unavailable`](Candidate::unavailable) to the caller, is in cooldown, has a usage
//!    window at or over the [`Policy::threshold_percent`], has an API rate
//!    limit with fewer tokens left than the task's estimate, has a budget the
//!    task would overrun, or — with [`Policy::fallback`] off — is not the
//!    pinned account or of the preferred provider.
//! 2. **Pin.** The task's account, else the policy's `pin`, goes first when
//!    it is eligible. When it is not, the decision falls back to the ranking
//!    below (and says so), or chooses nothing when fallback is off.
//! 3. **Ranking** by the [`Strategy`] (see its variants), then ties broken by
//!    headroom (more first), priority (higher first), label.
//! 4. **Subscriptions of one provider are used in turn.** Several
//!    subscription accounts of one provider form a queue that the ranking
//!    never reorders: without [`Policy::rotation`] in account order (priority,
//!    then label), so the first is used until it is excluded, then the next;
//!    with rotation, least recently used first (never used before used),
//!    which spreads the load. The queue's head competes with the other
//!    candidates by the ranking above.
//!
//! # Stale and missing snapshots
//!
//! A snapshot older than [`SNAPSHOT_TTL`] is stale. The documented rule:
//! staleness never excludes by itself. A window whose `resets_at` has passed
//! is ignored (it has reset), stale or not; the other windows of a stale
//! snapshot still count, because usage within a window only grows until it
//! resets. A candidate without a snapshot has unknown headroom, which ranks
//! after every known headroom. Each candidate's [`Freshness`] is in its
//! report (and its reasons say so in words), so the manager can refresh the
//! stale ones ([`Decision::needs_refresh`]) and select again.

mod format;
mod policy;
mod price;
mod score;
#[cfg(test)]
mod tests;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::model::{CredentialKind, Provider, Snapshot};

pub use policy::{Policy, PolicyError, Setting, Strategy};
pub use price::{Price, price_per_million};

/// How old a snapshot may be before the manager should refresh it.
pub const SNAPSHOT_TTL: TimeDelta = TimeDelta::minutes(15);

/// How old a health probe may be and still count for
/// [`Strategy::PerformanceOptimized`].
pub const HEALTH_TTL: TimeDelta = TimeDelta::hours(1);

/// What the task needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskContext {
    /// `code-generation`, `analysis`, `quick-query`, `validation`, or any
    /// word; picks a per-task strategy from the policy.
    pub task_type: String,
    /// How many tokens the task is expected to use, when known.
    pub estimated_tokens: Option<u64>,
    /// A provider the caller prefers: its accounts rank first.
    pub provider: Option<Provider>,
    /// An account the caller pins (overrides the policy's `pin`).
    pub account: Option<String>,
    /// The model, when known: picks per-model windows and prices.
    pub model: Option<String>,
    /// Who asks (an agent id), for the caller's records.
    pub agent: Option<String>,
}

/// One account that could serve the task, with what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The account's label.
    pub label: String,
    /// Whose account it is.
    pub provider: Provider,
    /// Subscription login or API key.
    pub credential: CredentialKind,
    /// Whether the user enabled the account.
    pub enabled: bool,
    /// Whether the account's login must be renewed by the user.
    pub needs_login: bool,
    /// Selection priority (higher first), as stored with the account.
    pub priority: i64,
    /// The newest usage snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// A cooldown after a failure, if one was recorded.
    pub cooldown: Option<Cooldown>,
    /// The newest health probe, if any.
    pub health: Option<Health>,
    /// Quota budgets that apply to this account and task.
    pub budgets: Vec<BudgetView>,
    /// When the account last served a task (for rotation).
    pub last_used: Option<DateTime<Utc>>,
    /// Why the caller cannot use the account now, if it cannot (its token
    /// refresh just failed, or the way the grant is handed out does not
    /// suit its credential): excluded with this reason.
    pub unavailable: Option<String>,
}

impl Candidate {
    /// An enabled candidate that needs no login, with nothing else known.
    #[must_use]
    pub fn new(label: &str, provider: Provider, credential: CredentialKind) -> Self {
        Self {
            label: label.to_owned(),
            provider,
            credential,
            enabled: true,
            needs_login: false,
            priority: 0,
            snapshot: None,
            cooldown: None,
            health: None,
            budgets: Vec::new(),
            last_used: None,
            unavailable: None,
        }
    }
}

/// A pause after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// Until when the account is not used.
    pub until: DateTime<Utc>,
    /// What happened.
    pub cause: CooldownCause,
}

/// Why an account cools down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CooldownCause {
    /// The provider answered 429.
    RateLimited,
    /// The provider said it is overloaded (529, 503).
    Overloaded,
    /// The provider refused the credential (401, 403).
    AuthFailed,
}

impl CooldownCause {
    /// Words for reasons.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limited",
            Self::Overloaded => "overloaded",
            Self::AuthFailed => "authentication failed",
        }
    }
}

/// The newest health probe of an account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// Latency of recent probes, in milliseconds.
    pub latency_ms: u32,
    /// Share of recent requests that failed, 0.0–1.0.
    pub error_rate: f64,
    /// When the probe ran.
    pub probed_at: DateTime<Utc>,
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    /// Tokens: the task requests its estimated tokens.
    Tokens,
    /// US dollars: the task requests its estimated price (nothing for a
    /// subscription, which is already paid for).
    Usd,
    /// Requests: the task requests one.
    Requests,
}

/// One quota budget as the ledger sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetView {
    /// Whose budget beyond the account itself (`agent ci-bot`), if anyone's.
    pub scope: Option<String>,
    /// The budget's window, in words (`daily`, `monthly`).
    pub window: String,
    /// What it counts.
    pub unit: BudgetUnit,
    /// The limit.
    pub limit: f64,
    /// Committed use.
    pub used: f64,
    /// Open reservations.
    pub reserved: f64,
    /// When the window resets, if known.
    pub resets_at: Option<DateTime<Utc>>,
}

/// The outcome of [`select`]; serializes to the `vault select --json` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The chosen account's label, or `None`.
    pub account: Option<String>,
    /// The chosen account's provider.
    pub provider: Option<Provider>,
    /// The chosen account's credential kind.
    pub credential: Option<CredentialKind>,
    /// The strategy that ranked the candidates.
    pub strategy: Strategy,
    /// Why this account, or why none, in one sentence.
    pub reason: String,
    /// Every candidate: eligible ones in rank order, then excluded ones by
    /// label.
    pub candidates: Vec<CandidateReport>,
}

impl Decision {
    /// The candidates to refresh before trusting the decision, in report
    /// order: those whose snapshot is stale or missing and that are eligible
    /// or excluded only by usage windows.
    pub fn needs_refresh(&self) -> impl Iterator<Item = &CandidateReport> {
        self.candidates.iter().filter(|c| c.needs_refresh)
    }
}

/// One candidate's place in a [`Decision`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateReport {
    /// The label.
    pub account: String,
    /// The provider.
    pub provider: Provider,
    /// The credential kind.
    pub credential: CredentialKind,
    /// Whether it could serve the task.
    pub eligible: bool,
    /// Place in the fallback order (1 = chosen, 2 = the next fallback…);
    /// `None` when excluded.
    pub score: Option<u32>,
    /// Why it was excluded, or what ranked it.
    pub reasons: Vec<String>,
    /// How fresh its snapshot is (not in `--json`: the reasons say it).
    #[serde(skip)]
    pub freshness: Freshness,
    /// Whether a refresh of its snapshot could change the decision: stale or
    /// missing, and eligible or excluded only by usage windows (not in
    /// `--json`).
    #[serde(skip)]
    pub needs_refresh: bool,
}

/// How fresh a candidate's snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than [`SNAPSHOT_TTL`].
    Fresh,
    /// Older than [`SNAPSHOT_TTL`], by this age.
    Stale(TimeDelta),
    /// No snapshot at all.
    Missing,
}

impl Freshness {
    fn of(snapshot: Option<&Snapshot>, now: DateTime<Utc>) -> Self {
        match snapshot {
            None => Self::Missing,
            Some(s) if now - s.fetched_at > SNAPSHOT_TTL => Self::Stale(now - s.fetched_at),
            Some(_) => Self::Fresh,
        }
    }
}

/// Chooses the account for `task` among `candidates`.
#[must_use]
pub fn select(
    task: &TaskContext,
    candidates: &[Candidate],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    score::decide(task, candidates, policy, now)
}

/// A count as a float, for percentages, prices and the words of reasons.
#[allow(clippy::cast_precision_loss)] // exact below 2^53; token counts stay far below
fn approx(n: u64) -> f64 {
    n as f64
}
