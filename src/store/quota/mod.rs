//! The quota ledger: budgets, reservations and the usage committed against
//! them. Every public method that changes something is one `BEGIN
//! IMMEDIATE` transaction with exactly one audit entry (a refused
//! reservation or commit records its refusal), so concurrent processes queue
//! on the write lock and no check can be overtaken between reading the
//! budget and writing the reservation. The arithmetic lives in
//! [`crate::quota`].

mod ledger;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::accounts::find_account;
use super::audit::{self, By, Event};
use super::{Keys, Store, time};
use crate::db::{Tx, args};
use crate::error::{Error, Result};
use crate::model::Provider;
use crate::quota::{self, Period, Scope, Unit, Zone};
use crate::store::during;
pub use ledger::ZONE_SETTING;
use ledger::{
    all_budgets, applicable, check_name, check_open, event, find_budget, held, label_of, measure,
    notices, read_zone, refusal, resolve_target, to_i64,
};

/// Whom a budget is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The account with this label.
    Account(&'a str),
    /// Every account of a provider.
    Provider(Provider),
    /// An agent id, on any account.
    Agent(&'a str),
}

/// A budget as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// Account, provider or agent.
    pub scope: Scope,
    /// The account's label, the provider's name or the agent id.
    pub subject: String,
    /// Tokens, USD or requests.
    pub unit: Unit,
    /// The window.
    pub period: Period,
    /// The limit: tokens, requests, or micro-dollars.
    pub limit: u64,
}

impl Budget {
    /// Names the budget for people: ``account `work` tokens per day``.
    #[must_use]
    pub fn describe(&self) -> String {
        let subject = crate::terminal::escape(&self.subject);
        let who = match self.scope {
            Scope::Provider => format!("provider {subject}"),
            scope => format!("{scope} `{subject}`"),
        };
        let unit = match self.unit {
            Unit::Usd => "micro-USD",
            unit => unit.as_str(),
        };
        format!("{who} {unit} per {}", self.period)
    }
}

/// A budget with where it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// The budget.
    #[serde(flatten)]
    pub budget: Budget,
    /// Committed in the current window (reservations made, for requests).
    pub used: u64,
    /// Held by open, unexpired reservations.
    pub reserved: u64,
    /// What is left of the limit.
    pub remaining: u64,
    /// Where the current window starts.
    pub window_start: DateTime<Utc>,
    /// When the window ends (calendar) or frees its oldest usage (rolling);
    /// `None` for a rolling window with nothing in it.
    pub resets_at: Option<DateTime<Utc>>,
}

/// A budget that crossed 80 % or 95 %: told once per window, and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The budget, described.
    pub budget: String,
    /// 80 or 95.
    pub threshold: u8,
    /// Used + reserved when it was noticed.
    pub level: u64,
    /// The budget's limit.
    pub limit: u64,
}

/// A reservation made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// The id to commit or release it with.
    pub id: i64,
    /// The account's label.
    pub account: String,
    /// Its provider.
    pub provider: Provider,
    /// The agent it was made for.
    pub agent: Option<String>,
    /// Tokens reserved.
    pub tokens: u64,
    /// When it counts as released if neither committed nor released.
    pub expires_at: DateTime<Utc>,
    /// Budgets that crossed a threshold with it.
    pub notices: Vec<Notice>,
}

/// What a request actually used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Tokens read from the prompt cache.
    pub cache_read: u64,
    /// Tokens written to the prompt cache.
    pub cache_write: u64,
    /// The model, when given.
    pub model: Option<String>,
    /// The cost in micro-dollars, when the caller knows it.
    pub usd_micros: Option<u64>,
}

impl Usage {
    /// The tokens a budget counts: input + output + cache read + cache write.
    #[must_use]
    pub const fn tokens(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }
}

/// A reservation committed or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settled {
    /// The reservation id.
    pub id: i64,
    /// The account's label (`None` once the account was removed).
    pub account: Option<String>,
    /// Tokens it had reserved.
    pub reserved: u64,
    /// Tokens used (0 for a release).
    pub used: u64,
    /// Budgets that crossed a threshold with it.
    pub notices: Vec<Notice>,
}

impl Store {
    /// Sets (or replaces) a budget.
    ///
    /// # Errors
    /// `AccountNotFound`, `InvalidInput` for a bad agent id or a limit too
    /// large, SQLite.
    pub fn set_budget(
        &mut self,
        target: Target<'_>,
        unit: Unit,
        period: Period,
        limit: u64,
    ) -> Result<Budget> {
        during("setting a budget", || {
            let limit_i = to_i64(limit, "budget limit")?;
            let (tx, keys, actor) = self.write_tx()?;
            let t = resolve_target(&tx, keys, target)?;
            let now = time::now();
            tx.execute(
            "INSERT INTO quota_budgets (scope, account_id, subject, unit, period, limit_value, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (scope, subject, unit, period)
             DO UPDATE SET limit_value = excluded.limit_value, updated_at = excluded.updated_at",
            args![t.scope.as_str(), t.account.as_ref().map(|a| a.0), t.subject, unit.as_str(), period.as_str(), limit_i, now],
        )?;
            let budget = find_budget(&tx, t.scope, &t.subject, unit, period)?
                .expect("the budget was just written");
            audit::append(
                &tx,
                keys,
                actor,
                &event("quota.set", t.audit_account())
                    .details(serde_json::json!({ "budget": budget })),
            )?;
            tx.commit()?;
            Ok(budget)
        })
    }

    /// Removes a budget.
    ///
    /// # Errors
    /// `InvalidInput` when no such budget is set, `AccountNotFound`, SQLite.
    pub fn unset_budget(
        &mut self,
        target: Target<'_>,
        unit: Unit,
        period: Period,
    ) -> Result<Budget> {
        during("removing a budget", || {
            let (tx, keys, actor) = self.write_tx()?;
            let t = resolve_target(&tx, keys, target)?;
            let Some(budget) = find_budget(&tx, t.scope, &t.subject, unit, period)? else {
                let shown = Budget {
                    id: 0,
                    scope: t.scope,
                    subject: t.shown(),
                    unit,
                    period,
                    limit: 0,
                };
                return Err(Error::InvalidInput {
                    what: shown.describe(),
                    reason: "no such budget is set; `vault quota` lists them".into(),
                });
            };
            tx.execute("DELETE FROM quota_budgets WHERE id = ?1", args![budget.id])?;
            audit::append(
                &tx,
                keys,
                actor,
                &event("quota.unset", t.audit_account())
                    .details(serde_json::json!({ "budget": budget })),
            )?;
            tx.commit()?;
            Ok(budget)
        })
    }

    /// Every budget and where it stands now, read in one snapshot.
    ///
    /// # Errors
    /// `InvalidInput` for an unreadable time-zone setting, SQLite.
    pub fn budgets(&mut self) -> Result<Vec<BudgetStatus>> {
        during("reading the budgets", || {
            let (tx, _) = self.read_tx()?;
            let zone = read_zone(&tx)?;
            let now = tx.now()?;
            all_budgets(&tx)?
                .into_iter()
                .map(|b| {
                    let m = measure(&tx, &b, zone, now)?;
                    Ok(BudgetStatus {
                        used: m.used,
                        reserved: m.reserved,
                        remaining: quota::remaining(m.used, m.reserved, b.budget.limit),
                        window_start: m.window.start,
                        resets_at: m.resets_at(b.budget.period),
                        budget: b.budget,
                    })
                })
                .collect()
        })
    }

    /// The time zone calendar windows follow.
    ///
    /// # Errors
    /// `InvalidInput` for an unreadable setting, SQLite.
    pub fn quota_zone(&mut self) -> Result<Zone> {
        during("reading the quota time zone", || {
            let (tx, _) = self.read_tx()?;
            read_zone(&tx)
        })
    }

    /// Sets the time zone calendar windows follow.
    ///
    /// # Errors
    /// SQLite.
    pub fn set_quota_zone(&mut self, zone: Zone) -> Result<()> {
        during("setting the quota time zone", || {
            let (tx, keys, actor) = self.write_tx()?;
            let value = serde_json::Value::String(zone.to_string());
            tx.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            args![ZONE_SETTING, value.to_string(), time::now()],
        )?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("quota.timezone").details(serde_json::json!({ "timezone": value })),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Reserves `tokens` on an account for `ttl`, when every budget that
    /// applies (the account's, its provider's, the agent's) has room:
    /// committed in the window + open reservations + `tokens` ≤ limit.
    /// A refusal is recorded in the audit log too.
    ///
    /// # Errors
    /// `OverBudget` naming the first budget without room; `AccountNotFound`,
    /// `InvalidInput`, SQLite.
    pub fn reserve(
        &mut self,
        label: &str,
        agent: Option<&str>,
        tokens: u64,
        ttl: TimeDelta,
    ) -> Result<Reservation> {
        during("reserving quota", || {
            let (tx, keys, actor) = self.write_tx()?;
            let reserved = reserve_in(&tx, keys, actor, label, agent, tokens, ttl)?;
            // A refusal is recorded too: commit either way.
            tx.commit()?;
            reserved
        })
    }

    /// Records what a reservation actually used and frees the rest. Usage
    /// above the reservation is accepted only when every token budget has
    /// room for the excess; an expired reservation cannot be committed.
    ///
    /// # Errors
    /// `ReservationNotFound`, `ReservationClosed`, `OverBudget`,
    /// `InvalidInput`, SQLite.
    pub fn commit_reservation(&mut self, id: i64, usage: &Usage) -> Result<Settled> {
        during("committing a reservation", || {
            if let Some(model) = &usage.model {
                check_name("model", model)?;
            }
            let used = usage.tokens();
            let numbers = [
                to_i64(usage.input, "input tokens")?,
                to_i64(usage.output, "output tokens")?,
                to_i64(usage.cache_read, "cache read tokens")?,
                to_i64(usage.cache_write, "cache write tokens")?,
                to_i64(used, "tokens used")?,
            ];
            let cost_micros = usage
                .usd_micros
                .map(|u| to_i64(u, "USD amount"))
                .transpose()?;
            let (tx, keys, actor) = self.write_tx()?;
            let now = tx.now()?;
            let h = held(&tx, id)?;
            check_open(id, &h, now, "committed")?;
            let label = label_of(&tx, h.account_id)?;
            let account = h.account_id.zip(label.as_deref());
            let budgets = match h.account_id {
                Some(account_id) => applicable(&tx, account_id, h.provider, h.agent.as_deref())?,
                None => Vec::new(),
            };
            let zone = read_zone(&tx)?;
            let excess = used.saturating_sub(h.tokens);
            if excess > 0
                && let Some(err) = refusal(&tx, &budgets, zone, now, excess, true)?
            {
                audit::append(
                &tx,
                keys,
                actor,
                &event("quota.commit", account).outcome("over budget").details(
                    serde_json::json!({ "reservation": id, "reserved": h.tokens, "used": used, "refused": err.to_string() }),
                ),
            )?;
                tx.commit()?;
                return Err(err);
            }
            tx.execute(
                "UPDATE quota_reservations SET state = 'committed', ended_at = ?2,
                input_tokens = ?3, output_tokens = ?4, cache_read_tokens = ?5,
                cache_write_tokens = ?6, used_tokens = ?7, usd_micros = ?8, model = ?9
             WHERE id = ?1",
                args![
                    id,
                    time::encode(now),
                    numbers[0],
                    numbers[1],
                    numbers[2],
                    numbers[3],
                    numbers[4],
                    cost_micros,
                    usage.model
                ],
            )?;
            super::usage::record_ledger(
                &tx,
                keys,
                id,
                h.provider,
                label.as_deref(),
                h.agent.as_deref(),
                usage,
                now,
            )?;
            let notices = notices(&tx, &budgets, zone, now)?;
            audit::append(
            &tx,
            keys,
            actor,
            &event("quota.commit", account).details(serde_json::json!({
                "reservation": id, "reserved": h.tokens, "usage": usage, "used": used, "notices": notices,
            })),
        )?;
            tx.commit()?;
            Ok(Settled {
                id,
                account: label,
                reserved: h.tokens,
                used,
                notices,
            })
        })
    }

    /// Frees a reservation. Releasing one that has expired (and so already
    /// counts as released) is allowed and marks it released.
    ///
    /// # Errors
    /// `ReservationNotFound`, `ReservationClosed`, SQLite.
    pub fn release_reservation(&mut self, id: i64) -> Result<Settled> {
        during("releasing a reservation", || {
            let (tx, keys, actor) = self.write_tx()?;
            let now = tx.now()?;
            let h = held(&tx, id)?;
            check_open(id, &h, now, "released")?;
            let label = label_of(&tx, h.account_id)?;
            tx.execute(
                "UPDATE quota_reservations SET state = 'released', ended_at = ?2 WHERE id = ?1",
                args![id, time::encode(now)],
            )?;
            audit::append(
                &tx,
                keys,
                actor,
                &event("quota.release", h.account_id.zip(label.as_deref()))
                    .details(serde_json::json!({ "reservation": id, "tokens": h.tokens })),
            )?;
            tx.commit()?;
            Ok(Settled {
                id,
                account: label,
                reserved: h.tokens,
                used: 0,
                notices: Vec::new(),
            })
        })
    }
}

/// Reserves inside the caller's transaction (see [`Store::reserve`]). The
/// outer error is a failure to be rolled back; the inner one a refusal,
/// already recorded in the audit log, for the caller to commit and return.
pub(super) fn reserve_in(
    tx: &Tx<'_>,
    keys: &Keys,
    actor: By<'_>,
    label: &str,
    agent: Option<&str>,
    tokens: u64,
    ttl: TimeDelta,
) -> Result<Result<Reservation>> {
    if let Some(agent) = agent {
        check_name("agent id", agent)?;
    }
    let tokens_i = to_i64(tokens, "tokens")?;
    let account = find_account(tx, keys, label)?;
    let zone = read_zone(tx)?;
    let now = tx.now()?;
    let budgets = applicable(tx, account.id, account.provider, agent)?;
    if let Some(err) = refusal(tx, &budgets, zone, now, tokens, false)? {
        audit::append(
            tx,
            keys,
            actor,
            &event("quota.reserve", Some((account.id, &account.label)))
                .outcome("over budget")
                .details(serde_json::json!({ "tokens": tokens, "agent": agent, "refused": err.to_string() })),
        )?;
        return Ok(Err(err));
    }
    let expires_at = time::canonical(now + ttl);
    let id: i64 = tx.query_row("INSERT INTO quota_reservations (account_id, provider, agent, tokens, created_at, expires_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open') RETURNING id", args![
        account.id,
        account.provider.as_str(),
        agent,
        tokens_i,
        time::encode(now),
        time::encode(expires_at)
    ], |r| r.get(0))?;
    let notices = notices(tx, &budgets, zone, now)?;
    audit::append(
        tx,
        keys,
        actor,
        &event("quota.reserve", Some((account.id, &account.label))).details(serde_json::json!({
            "reservation": id, "tokens": tokens, "agent": agent,
            "expires_at": time::encode(expires_at), "notices": notices,
        })),
    )?;
    Ok(Ok(Reservation {
        id,
        account: account.label,
        provider: account.provider,
        agent: agent.map(str::to_owned),
        tokens,
        expires_at,
        notices,
    }))
}
