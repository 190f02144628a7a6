//! Task-level authentication: the place for `authenticate_for_task`, which
//! will choose an account for an agent's task (the selector, writing
//! `selection_history` rows with origin `selector`), reserve the task's share
//! in the quota ledger, and hand out that account's credential.
//!
//! Until it exists, [`candidates`] gathers the selector's inputs from the
//! store (for `vault select`, which only shows a decision), and callers name
//! an account themselves and use [`Manager::token`](super::Manager::token).

use crate::error::Result;
use crate::quota::{Scope, Unit};
use crate::selector::{BudgetUnit, BudgetView, Candidate, TaskContext};
use crate::store::{BudgetStatus, Store};

/// Every account as a selector [`Candidate`]: its kind, provider, state and
/// priority, its newest snapshot, and the budgets that apply to it and to
/// `task`'s agent, its health over the last hour and its running cooldown.
/// No last use is stored yet: that is `None`.
///
/// # Errors
/// Store errors (SQLite, `Integrity`).
pub fn candidates(store: &mut Store, task: &TaskContext) -> Result<Vec<Candidate>> {
    let budgets = store.budgets()?;
    let accounts = store.accounts()?;
    let health = store.health(chrono::Utc::now())?;
    let mut out = Vec::with_capacity(accounts.len());
    for a in accounts {
        let mut c = Candidate::new(&a.label, a.provider, a.kind);
        c.enabled = a.enabled;
        c.needs_login = a.needs_login;
        c.priority = a.priority;
        c.snapshot = store.latest_snapshot(&a.label)?;
        if let Some(h) = health.get(&a.id) {
            c.health = h.health;
            c.cooldown = h.cooldown;
        }
        c.budgets = budgets
            .iter()
            .filter_map(|b| budget_view(b, &a.label, a.provider.as_str(), task))
            .collect();
        out.push(c);
    }
    Ok(out)
}

/// `b` as the selector sees it, when it applies to the account `label` of
/// `provider` serving `task`.
fn budget_view(
    b: &BudgetStatus,
    label: &str,
    provider: &str,
    task: &TaskContext,
) -> Option<BudgetView> {
    let subject = b.budget.subject.as_str();
    let scope = match b.budget.scope {
        Scope::Account if subject == label => None,
        Scope::Provider if subject == provider => Some(format!("provider {subject}")),
        Scope::Agent if task.agent.as_deref() == Some(subject) => Some(format!("agent {subject}")),
        _ => return None,
    };
    // USD budgets are kept in micro-dollars; the selector counts dollars.
    let (unit, per) = match b.budget.unit {
        Unit::Tokens => (BudgetUnit::Tokens, 1.0),
        Unit::Usd => (BudgetUnit::Usd, 1_000_000.0),
        Unit::Requests => (BudgetUnit::Requests, 1.0),
    };
    #[allow(clippy::cast_precision_loss)] // exact below 2^53; budgets stay far below
    let amount = |n: u64| n as f64 / per;
    Some(BudgetView {
        scope,
        window: b.budget.period.to_string(),
        unit,
        limit: amount(b.budget.limit),
        used: amount(b.used),
        reserved: amount(b.reserved),
        resets_at: b.resets_at,
    })
}
