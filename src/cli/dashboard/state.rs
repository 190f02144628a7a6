//! What the dashboard shows: [`Loaded`] is read from the vault by the
//! worker (never on the UI thread), [`DashboardState`] is what the view
//! draws. Only labels, plans, states and numbers are kept: no credential
//! ever reaches this module.

use std::collections::BTreeMap;

use anyhow::Result;
use authvault::manager::{self, Manager};
use authvault::model::{CredentialKind, Provider, Snapshot, UsageWindow};
use authvault::selector::{self, BudgetUnit, Candidate, Strategy, TaskContext};
use authvault::store::{EventRow, UsageFilter};
use authvault::usage::blocks::{FIVE_HOURS, blocks};
use authvault::usage::query::{Group, Query, Zone};
use chrono::{DateTime, Days, TimeDelta, Utc};

/// Days the usage panel covers, today included.
pub const USAGE_DAYS: usize = 30;

/// One usage window of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Utilization in percent, when the provider gave it.
    pub percent: Option<f64>,
    /// When it resets.
    pub resets_at: Option<DateTime<Utc>>,
}

/// One local quota budget of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// `daily`, `monthly`…, with whose budget it is when not the account's.
    pub name: String,
    /// What it counts.
    pub unit: BudgetUnit,
    /// Committed plus reserved.
    pub spent: f64,
    /// The limit.
    pub limit: f64,
}

/// Whether an account can serve now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// Usable.
    Ok,
    /// Its login died.
    NeedsLogin,
    /// The user disabled it.
    Disabled,
    /// In cooldown after a failure, until then.
    Cooldown(DateTime<Utc>),
}

/// One account row.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    /// Its label.
    pub label: String,
    /// Whose account.
    pub provider: Provider,
    /// Subscription or API key.
    pub credential: CredentialKind,
    /// The plan, from the newest snapshot or the login.
    pub plan: Option<String>,
    /// Whether it can serve.
    pub state: AccountState,
    /// The 5-hour window of the newest snapshot.
    pub five_hour: Option<Window>,
    /// The 7-day window of the newest snapshot.
    pub seven_day: Option<Window>,
    /// When the newest snapshot was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Local budgets that apply to it.
    pub budgets: Vec<Budget>,
}

/// One live agent session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The agent.
    pub agent: String,
    /// The account it was granted.
    pub account: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Tokens its open reservation holds.
    pub reserved_tokens: Option<u64>,
}

/// What the usage panel breaks the last 30 days down by (`u` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageBy {
    /// Account label; unattributed usage is its own entry.
    #[default]
    Account,
    /// Model name.
    Model,
}

/// The active 5-hour usage block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageBlock {
    /// Its start, a whole UTC hour.
    pub start: DateTime<Utc>,
    /// Its end, five hours after the start.
    pub end: DateTime<Utc>,
    /// Its cost in pico-dollars.
    pub cost_pico: u64,
}

/// Usage history of the last [`USAGE_DAYS`] local days; costs in
/// pico-dollars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSummary {
    /// Cost per local day, oldest first, today last.
    pub days: Vec<u64>,
    /// Today's cost.
    pub today: u64,
    /// The active 5-hour block, if any.
    pub block: Option<UsageBlock>,
    /// Cost per account over the days, largest first; `None` is
    /// unattributed usage.
    pub by_account: Vec<(Option<String>, u64)>,
    /// Cost per model over the days, largest first.
    pub by_model: Vec<(String, u64)>,
}

/// Everything the worker reads from the vault in one go.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Accounts by provider, then label.
    pub accounts: Vec<AccountRow>,
    /// Live sessions, oldest first.
    pub sessions: Vec<SessionRow>,
    /// The policy's strategy.
    pub strategy: Strategy,
    /// The pinned account.
    pub pin: Option<String>,
    /// The utilization threshold, percent.
    pub threshold: f64,
    /// The account the selector would pick now for the default task.
    pub pick: Option<String>,
    /// Why (or why none).
    pub reason: String,
    /// Usage history.
    pub usage: UsageSummary,
}

/// Reads what the dashboard shows: accounts with their newest snapshot,
/// budgets, cooldowns and state; the live sessions (closing dead ones, as
/// `vault sessions` does); the policy; the selector's pick for the default
/// task. Store only: nothing is fetched from a provider.
///
/// # Errors
/// Store and policy errors.
pub fn load(manager: &mut Manager) -> Result<Loaded> {
    let task = TaskContext::default();
    let policy = manager::policy(manager.store())?;
    let plans: BTreeMap<String, Option<String>> = manager
        .store()
        .accounts()?
        .into_iter()
        .map(|a| (a.label, a.plan))
        .collect();
    let candidates = manager::candidates(manager.store(), &task)?;
    let now = Utc::now();
    let decision = selector::select(&task, &candidates, &policy, now);
    let mut accounts: Vec<AccountRow> = candidates
        .iter()
        .map(|c| row(c, plans.get(&c.label).cloned().flatten(), now))
        .collect();
    accounts.sort_by(|a, b| (a.provider.as_str(), &a.label).cmp(&(b.provider.as_str(), &b.label)));
    let sessions = manager
        .sessions()?
        .into_iter()
        .map(|s| SessionRow {
            agent: s.agent,
            account: s.account,
            started_at: s.started_at,
            reserved_tokens: s.reserved_tokens,
        })
        .collect();
    let usage = usage(manager, Zone::default(), now)?;
    Ok(Loaded {
        accounts,
        sessions,
        strategy: policy.strategy,
        pin: policy.pin,
        threshold: policy.threshold_percent,
        pick: decision.account,
        reason: decision.reason,
        usage,
    })
}

/// Reads the usage panel's data: the last [`USAGE_DAYS`] local days of
/// `zone` per day, per account and per model, from the hourly rollup where
/// it can answer; the active block from the events of the last day, or of
/// more days while activity without a five-hour gap reaches further back.
///
/// # Errors
/// Store errors.
pub fn usage(manager: &mut Manager, zone: Zone, now: DateTime<Utc>) -> Result<UsageSummary> {
    let today = zone.date(now);
    let first = today - Days::new(USAGE_DAYS as u64 - 1);
    let report = |manager: &mut Manager, group: Group| {
        Query {
            since: Some(first),
            until: Some(today),
            zone,
            group_by: vec![group],
            ..Query::default()
        }
        .run(manager.store())
    };
    let per_day: BTreeMap<String, u64> = report(manager, Group::Day)?
        .rows
        .into_iter()
        .map(|r| (r.key[0].clone(), r.cost_pico))
        .collect();
    let days: Vec<u64> = first
        .iter_days()
        .take(USAGE_DAYS)
        .map(|d| {
            let key = d.format("%Y-%m-%d").to_string();
            per_day.get(&key).copied().unwrap_or(0)
        })
        .collect();
    let largest_first = |mut v: Vec<(String, u64)>| {
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let by_account = largest_first(
        report(manager, Group::Account)?
            .rows
            .into_iter()
            .map(|r| (r.key[0].clone(), r.cost_pico))
            .collect(),
    );
    // The account query keys unattributed usage `-`, which no label can be.
    let by_account = by_account
        .into_iter()
        .map(|(label, cost)| ((label != "-").then_some(label), cost))
        .collect();
    let by_model = largest_first(
        report(manager, Group::Model)?
            .rows
            .into_iter()
            .map(|r| (r.key[0].clone(), r.cost_pico))
            .collect(),
    );
    // The events of the last day, or as many more days (up to the panel's)
    // as it takes to see where the active block's chain of blocks starts.
    let mut days_back = 1;
    let recent = loop {
        let from = now - TimeDelta::days(days_back);
        let events = manager.store().usage_events(&UsageFilter {
            from: Some(from),
            ..UsageFilter::default()
        })?;
        let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
        if days_back >= USAGE_DAYS as i64 || blocks_settled(from, &times, now) {
            break events;
        }
        days_back *= 2;
    };
    let block = current_block(&recent, now);
    Ok(UsageSummary {
        today: days.last().copied().unwrap_or(0),
        days,
        block,
        by_account,
        by_model,
    })
}

/// Whether the events at `times` (oldest first) since `from` are enough to
/// find the block active at `now`: none is active (no event in the last
/// five hours), or somewhere since `from` (its start included) there is a
/// gap of more than five hours, after which blocks start as they would
/// with every earlier event known.
pub fn blocks_settled(from: DateTime<Utc>, times: &[DateTime<Utc>], now: DateTime<Utc>) -> bool {
    times.last().is_none_or(|last| now - *last >= FIVE_HOURS)
        || std::iter::once(&from)
            .chain(times)
            .zip(times)
            .any(|(before, at)| *at - *before > FIVE_HOURS)
}

/// The block active at `now` among `events` (oldest first), as `vault
/// usage blocks` finds it (`usage::blocks`, ccusage's rule).
pub fn current_block(events: &[EventRow], now: DateTime<Utc>) -> Option<UsageBlock> {
    blocks(events, FIVE_HOURS, now)
        .into_iter()
        .find(|b| b.is_active)
        .map(|b| UsageBlock {
            start: b.start,
            end: b.end,
            cost_pico: b.sums.cost_pico,
        })
}

fn row(c: &Candidate, plan: Option<String>, now: DateTime<Utc>) -> AccountRow {
    let state = if !c.enabled {
        AccountState::Disabled
    } else if c.needs_login {
        AccountState::NeedsLogin
    } else if let Some(cd) = c.cooldown.filter(|cd| cd.until > now) {
        AccountState::Cooldown(cd.until)
    } else {
        AccountState::Ok
    };
    let snapshot = c.snapshot.as_ref();
    AccountRow {
        label: c.label.clone(),
        provider: c.provider,
        credential: c.credential,
        plan: snapshot.and_then(|s| s.plan.clone()).or(plan),
        state,
        five_hour: window(snapshot, &["five_hour", "primary"]),
        seven_day: window(snapshot, &["seven_day", "secondary"]),
        fetched_at: snapshot.map(|s| s.fetched_at),
        budgets: c
            .budgets
            .iter()
            .map(|b| Budget {
                name: b
                    .scope
                    .as_ref()
                    .map_or_else(|| b.window.clone(), |s| format!("{s} {}", b.window)),
                unit: b.unit,
                spent: b.used + b.reserved,
                limit: b.limit,
            })
            .collect(),
    }
}

/// The first window of `snapshot` named one of `names` that has data.
fn window(snapshot: Option<&Snapshot>, names: &[&str]) -> Option<Window> {
    snapshot?
        .windows
        .iter()
        .find(|w: &&UsageWindow| names.contains(&w.name.as_str()) && w.has_data())
        .map(|w| Window {
            percent: w.utilization_percent,
            resets_at: w.resets_at,
        })
}

/// What the view draws: the newest [`Loaded`] plus the UI's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardState {
    /// The newest data, `None` until the first load arrives.
    pub loaded: Option<Loaded>,
    /// The selected account row.
    pub selected: usize,
    /// Whether the key help is shown.
    pub help: bool,
    /// Work the worker is doing now (`health check of 4 accounts`).
    pub busy: Option<String>,
    /// The last action's outcome or error, one line.
    pub message: Option<String>,
    /// Draw without colour (`NO_COLOR`).
    pub no_color: bool,
    /// The time countdowns count from.
    pub now: DateTime<Utc>,
    /// What the usage panel breaks the days down by.
    pub usage_by: UsageBy,
    /// Whether `l` asked which provider to log in to.
    pub login_choice: bool,
}

impl DashboardState {
    /// Nothing loaded yet.
    pub fn new(no_color: bool, now: DateTime<Utc>) -> Self {
        Self {
            loaded: None,
            selected: 0,
            help: false,
            busy: None,
            message: None,
            no_color,
            now,
            usage_by: UsageBy::default(),
            login_choice: false,
        }
    }

    /// Takes a new load, keeping the same account selected when it is
    /// still there.
    pub fn apply(&mut self, loaded: Loaded) {
        let label = self.selected_label().map(str::to_owned);
        self.selected = label
            .and_then(|l| loaded.accounts.iter().position(|a| a.label == l))
            .unwrap_or(self.selected)
            .min(loaded.accounts.len().saturating_sub(1));
        self.loaded = Some(loaded);
    }

    /// The selected account's label.
    pub fn selected_label(&self) -> Option<&str> {
        self.loaded
            .as_ref()?
            .accounts
            .get(self.selected)
            .map(|a| a.label.as_str())
    }

    /// Moves the selection by `delta` rows, within the list.
    pub fn select_by(&mut self, delta: isize) {
        let len = self.loaded.as_ref().map_or(0, |l| l.accounts.len());
        if len > 0 {
            self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
        }
    }
}
