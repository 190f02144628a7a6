//! `vault select` (which account would serve a task, and why) and
//! `vault history` (past selections).

use std::process::ExitCode;

use anyhow::Result;
use authvault::Error;
use authvault::model::Provider;
use authvault::selector::{self, CandidateReport, TaskContext};
use authvault::store::HistoryRow;
use authvault::terminal::escape;
use chrono::Utc;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct SelectArgs {
    /// Task type: code-generation, analysis, quick-query, validation, or any word.
    #[arg(long = "task", value_name = "T", default_value = "")]
    task: String,
    /// Prefer this provider's accounts (claude, openai).
    #[arg(long, value_name = "P")]
    provider: Option<Provider>,
    /// Use this account when it is eligible (overrides the policy's pin).
    #[arg(long, value_name = "L")]
    account: Option<String>,
    /// Tokens the task is expected to use.
    #[arg(long, value_name = "N")]
    tokens: Option<u64>,
    /// The model, for per-model windows and prices.
    #[arg(long, value_name = "M")]
    model: Option<String>,
    /// The agent asking (its budgets apply).
    #[arg(long, value_name = "A")]
    agent: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Show only the newest N entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

pub fn select(ctx: &Ctx, args: &SelectArgs) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let policy = super::policy::load(&mut store)?;
    let task = TaskContext {
        task_type: args.task.clone(),
        estimated_tokens: args.tokens,
        provider: args.provider,
        account: args.account.clone(),
        model: args.model.clone(),
        agent: args.agent.clone(),
    };
    let candidates = authvault::manager::candidates(&mut store, &task)?;
    let decision = selector::select(&task, &candidates, &policy, Utc::now());
    ctx.emit(&decision, || {
        let head = match (&decision.account, decision.provider) {
            (Some(label), Some(provider)) => format!(
                "Selected {provider} account `{}` ({}): {}",
                escape(label),
                decision.strategy.as_str(),
                escape(&decision.reason)
            ),
            _ => format!("No account selected: {}", escape(&decision.reason)),
        };
        format!("{head}\n{}", table(&decision.candidates))
    })?;
    if decision.account.is_none() {
        return Err(Error::NoEligibleAccount {
            reason: decision.reason,
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

fn table(candidates: &[CandidateReport]) -> String {
    if candidates.is_empty() {
        return "No accounts yet: add one with `vault login` or `vault migrate`.".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["rank", "account", "provider", "kind", "eligible", "reasons"]);
    for c in candidates {
        t.add_row([
            c.score.map(|s| s.to_string()).unwrap_or_default(),
            escape(&c.account).into_owned(),
            c.provider.to_string(),
            c.credential.to_string(),
            if c.eligible { "yes" } else { "no" }.to_owned(),
            c.reasons
                .iter()
                .map(|r| escape(r).into_owned())
                .collect::<Vec<_>>()
                .join("; "),
        ]);
    }
    t.to_string()
}

pub fn history(ctx: &Ctx, args: &HistoryArgs) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let mut rows = store.selection_history()?;
    if let Some(n) = args.limit {
        rows.drain(..rows.len().saturating_sub(n));
    }
    ctx.emit(&rows, || history_table(&rows))?;
    Ok(ExitCode::SUCCESS)
}

fn history_table(rows: &[HistoryRow]) -> String {
    if rows.is_empty() {
        return "No selections recorded yet.".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["at", "origin", "provider", "reason", "task"]);
    for r in rows {
        let cell = |v: &Option<String>| escape(v.as_deref().unwrap_or_default()).into_owned();
        t.add_row([
            escape(&r.at).into_owned(),
            r.origin.clone(),
            cell(&r.provider),
            cell(&r.reason),
            cell(&r.task_context),
        ]);
    }
    t.to_string()
}
