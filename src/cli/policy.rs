//! `vault policy` (show, set, unset) and `vault switch` (pin an account).

use std::process::ExitCode;

use anyhow::Result;
use authvault::selector::Policy;
use authvault::store::{AccountInfo, Store};
use authvault::terminal::escape;
use clap::Subcommand;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Show the policy in effect (the default).
    Show,
    /// Set a policy key: strategy, task.TYPE, threshold, fallback,
    /// rotation, cooldown, pin, provider.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove a policy key (its default, or an imported preference, applies again).
    Unset {
        /// The key.
        key: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// The account to pin.
    #[arg(required_unless_present = "clear", conflicts_with = "clear")]
    label: Option<String>,
    /// Unpin: remove the pin and the strategy `vault switch` set.
    #[arg(long)]
    clear: bool,
}

/// The policy the vault's settings describe.
pub fn load(store: &mut Store) -> Result<Policy> {
    Ok(authvault::manager::policy(store)?)
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    match args.action.as_ref().unwrap_or(&Action::Show) {
        Action::Show => {
            let policy = load(&mut store)?;
            let json = serde_json::json!({
                "strategy": policy.strategy,
                "task_strategies": policy.task_strategies,
                "threshold_percent": policy.threshold_percent,
                "fallback": policy.fallback,
                "rotation": policy.rotation,
                "cooldown_seconds": policy.cooldown.num_seconds(),
                "pin": policy.pin,
                "provider": policy.provider,
            });
            ctx.emit(&json, || show(&policy))?;
        }
        Action::Set { key, value } => {
            let row = Policy::set(key, value)?;
            store.set_policy(&[(row.key.clone(), row.value.clone())])?;
            ctx.emit(
                &serde_json::json!({ "set": { row.key.clone(): row.value } }),
                || {
                    format!(
                        "Set {} = {}.",
                        escape(&row.key),
                        escape(&row.value.to_string())
                    )
                },
            )?;
        }
        Action::Unset { key } => {
            let key = Policy::unset(key)?;
            let removed = store.unset_policy(std::slice::from_ref(&key))?;
            ctx.emit(&serde_json::json!({ "unset": removed }), || {
                if removed.is_empty() {
                    format!("{} was not set; nothing was changed.", escape(&key))
                } else {
                    format!("Unset {}.", escape(&key))
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(policy: &Policy) -> String {
    let mut lines = vec![
        format!("strategy   {}", policy.strategy.as_str()),
        format!("threshold  {}%", policy.threshold_percent),
        format!("fallback   {}", on_off(policy.fallback)),
        format!("rotation   {}", on_off(policy.rotation)),
        format!("cooldown   {}s", policy.cooldown.num_seconds()),
        format!(
            "pin        {}",
            policy.pin.as_deref().map_or_else(|| "none".into(), escape)
        ),
        format!(
            "provider   {}",
            policy
                .provider
                .map_or_else(|| "none".into(), |p| p.to_string())
        ),
    ];
    for (task, strategy) in &policy.task_strategies {
        lines.push(format!("task.{}  {}", escape(task), strategy.as_str()));
    }
    lines.join("\n")
}

const fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Pins the account `label`: `pin` and `strategy user-preference` in one
/// transaction (`vault switch LABEL`, the dashboard's `p`).
pub fn pin(store: &mut Store, label: &str) -> Result<AccountInfo> {
    // The label must name an account: `AccountNotFound` otherwise.
    let account = store.account(label)?;
    let rows: Vec<_> = [
        Policy::set("pin", &account.label)?,
        Policy::set("strategy", "user-preference")?,
    ]
    .into_iter()
    .map(|s| (s.key, s.value))
    .collect();
    store.set_policy(&rows)?;
    Ok(account)
}

pub fn switch(ctx: &Ctx, args: &SwitchArgs) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let Some(label) = args.label.as_deref().filter(|_| !args.clear) else {
        let keys = [Policy::unset("pin")?, Policy::unset("strategy")?];
        let removed = store.unset_policy(&keys)?;
        ctx.emit(&serde_json::json!({ "unset": removed }), || {
            "Unpinned: the policy's strategy applies again.".into()
        })?;
        return Ok(ExitCode::SUCCESS);
    };
    let account = pin(&mut store, label)?;
    ctx.emit(&serde_json::json!({ "pinned": account.label }), || {
        format!(
            "Pinned {} account `{}` (strategy user-preference).",
            account.provider,
            escape(&account.label)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
