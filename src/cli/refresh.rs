//! `vault refresh`: force a refresh of an account's OAuth tokens.

use std::process::ExitCode;

use anyhow::Result;
use authvault::store::AccountSelector;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account (default: the vault's single account).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let served = manager.refresh(AccountSelector {
        label: args.account.as_deref(),
        provider: None,
    })?;
    for w in &served.warnings {
        super::print_warn(&format!("warning: {w}"));
    }
    let t = &served.token;
    ctx.emit(
        &serde_json::json!({ "account": t.account.label, "refreshed": served.refreshed, "expires_at": t.expires_at }),
        || {
            let until = t.expires_at.map(|e| format!(", valid until {e}")).unwrap_or_default();
            if served.refreshed {
                format!("Refreshed `{}`{until}.", t.account.label)
            } else if !served.warnings.is_empty() {
                format!("`{}` was not refreshed; its current token is still valid{until}.", t.account.label)
            } else {
                format!("`{}` was just refreshed by another process{until}.", t.account.label)
            }
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
