//! `vault quota`: provider windows and local budgets per account; `set`,
//! `unset` and `timezone` manage the budgets.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use authvault::model::{Provider, UsageWindow};
use authvault::quota::{self, Period, Scope, Unit, Zone};
use authvault::store::{BudgetStatus, Target};
use authvault::terminal::escape;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Set (or change) a budget.
    Set {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        amount: AmountArgs,
        /// The window: 5h and minute are rolling, day, week and month follow the calendar.
        #[arg(long, value_name = "5h|day|week|month|minute")]
        per: Period,
    },
    /// Remove a budget.
    Unset {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        unit: UnitArgs,
        /// The budget's window.
        #[arg(long, value_name = "5h|day|week|month|minute")]
        per: Period,
    },
    /// Show or set the time zone of calendar windows: local, UTC or +HH:MM.
    Timezone {
        /// The new zone; without it, the current one is shown.
        zone: Option<Zone>,
    },
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// A budget for one account.
    #[arg(long, value_name = "LABEL")]
    account: Option<String>,
    /// A budget shared by every account of a provider.
    #[arg(long, value_name = "openai|claude")]
    provider: Option<Provider>,
    /// A budget for one agent id, on any account.
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> Target<'_> {
        match (&self.account, self.provider, &self.agent) {
            (Some(label), _, _) => Target::Account(label),
            (_, Some(p), _) => Target::Provider(p),
            (_, _, agent) => Target::Agent(agent.as_deref().expect("clap requires one target")),
        }
    }
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct AmountArgs {
    /// Tokens (input + output + cache read + cache write).
    #[arg(long, value_name = "N")]
    tokens: Option<u64>,
    /// US dollars, as committed with `vault commit --usd`.
    #[arg(long, value_name = "X", value_parser = quota::parse_usd)]
    usd: Option<u64>,
    /// Requests (reservations made).
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct UnitArgs {
    /// The tokens budget.
    #[arg(long)]
    tokens: bool,
    /// The USD budget.
    #[arg(long)]
    usd: bool,
    /// The requests budget.
    #[arg(long)]
    requests: bool,
}

impl UnitArgs {
    fn unit(&self) -> Unit {
        if self.tokens {
            Unit::Tokens
        } else if self.usd {
            Unit::Usd
        } else {
            Unit::Requests
        }
    }
}

/// One account in `vault quota`.
#[derive(Debug, Serialize)]
struct AccountQuota {
    account: String,
    provider: Provider,
    /// When the newest snapshot was read (`None` without one).
    snapshot_fetched_at: Option<DateTime<Utc>>,
    provider_windows: Vec<UsageWindow>,
    /// The account's budgets, then its provider's.
    budgets: Vec<BudgetStatus>,
}

#[derive(Debug, Serialize)]
struct Report {
    timezone: String,
    accounts: Vec<AccountQuota>,
    /// Agent budgets, and provider budgets of providers without accounts.
    other_budgets: Vec<BudgetStatus>,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    match &args.action {
        None => {
            let report = report(&mut store)?;
            ctx.emit(&report, || text(&report))?;
        }
        Some(Action::Set {
            target,
            amount,
            per,
        }) => {
            let (unit, limit) = match (amount.tokens, amount.usd, amount.requests) {
                (Some(n), _, _) => (Unit::Tokens, n),
                (_, Some(x), _) => (Unit::Usd, x),
                (_, _, n) => (Unit::Requests, n.expect("clap requires one amount")),
            };
            let budget = store.set_budget(target.target(), unit, *per, limit)?;
            ctx.emit(&serde_json::json!({ "budget": budget }), || {
                format!("Set {}: {}.", budget.describe(), amount_text(unit, limit))
            })?;
        }
        Some(Action::Unset { target, unit, per }) => {
            let budget = store.unset_budget(target.target(), unit.unit(), *per)?;
            ctx.emit(&serde_json::json!({ "budget": budget }), || {
                format!("Removed {}.", budget.describe())
            })?;
        }
        Some(Action::Timezone { zone }) => {
            if let Some(zone) = zone {
                store.set_quota_zone(*zone)?;
            }
            let zone = store.quota_zone()?;
            ctx.emit(&serde_json::json!({ "timezone": zone.to_string() }), || {
                format!("Calendar windows follow the time zone: {zone}.")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(store: &mut authvault::store::Store) -> Result<Report> {
    let timezone = store.quota_zone()?.to_string();
    let mut budgets = store.budgets()?;
    let mut accounts = Vec::new();
    for a in store.accounts()? {
        let snapshot = store.latest_snapshot(&a.label)?;
        let mine = budgets
            .iter()
            .filter(|b| {
                (b.budget.scope == Scope::Account && b.budget.subject == a.label)
                    || (b.budget.scope == Scope::Provider
                        && b.budget.subject == a.provider.as_str())
            })
            .cloned()
            .collect();
        accounts.push(AccountQuota {
            snapshot_fetched_at: snapshot.as_ref().map(|s| s.fetched_at),
            provider_windows: snapshot.map(|s| s.windows).unwrap_or_default(),
            account: a.label,
            provider: a.provider,
            budgets: mine,
        });
    }
    budgets.retain(|b| match b.budget.scope {
        Scope::Account => false,
        Scope::Provider => !accounts
            .iter()
            .any(|a| a.provider.as_str() == b.budget.subject),
        Scope::Agent => true,
    });
    Ok(Report {
        timezone,
        accounts,
        other_budgets: budgets,
    })
}

fn amount_text(unit: Unit, n: u64) -> String {
    match unit {
        Unit::Usd => format!("${}", quota::format_usd(n)),
        Unit::Tokens => format!("{n} tokens"),
        Unit::Requests => format!("{n} requests"),
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn budget_table(budgets: &[BudgetStatus]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "budget",
        "limit",
        "used",
        "reserved",
        "remaining",
        "resets at",
    ]);
    for b in budgets {
        let n = |v| amount_text(b.budget.unit, v);
        t.add_row([
            b.budget.describe(),
            n(b.budget.limit),
            n(b.used),
            n(b.reserved),
            n(b.remaining),
            when(b.resets_at),
        ]);
    }
    t.to_string()
}

fn text(r: &Report) -> String {
    let mut out = format!("Calendar windows follow the time zone: {}.\n", r.timezone);
    if r.accounts.is_empty() {
        out.push_str("No accounts yet: add one with `vault login` or `vault migrate`.\n");
    }
    for a in &r.accounts {
        let _ = writeln!(out, "\n{} ({})", escape(&a.account), a.provider);
        if a.provider_windows.is_empty() {
            out.push_str("  no provider windows known (see `vault subscription --refresh`)\n");
        } else {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED).set_header([
                "provider window",
                "utilization",
                "resets at",
            ]);
            for w in &a.provider_windows {
                t.add_row([
                    escape(&w.name).into_owned(),
                    w.utilization_percent
                        .map_or_else(|| "?".to_owned(), |u| format!("{u:.1} %")),
                    when(w.resets_at),
                ]);
            }
            let _ = writeln!(out, "{t}\n(read {})", when(a.snapshot_fetched_at));
        }
        if a.budgets.is_empty() {
            out.push_str("  no local budgets (set one with `vault quota set`)\n");
        } else {
            out.push_str(&budget_table(&a.budgets));
            out.push('\n');
        }
    }
    if !r.other_budgets.is_empty() {
        out.push_str("\nOther budgets\n");
        out.push_str(&budget_table(&r.other_budgets));
        out.push('\n');
    }
    out.trim_end().to_owned()
}
