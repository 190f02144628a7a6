//! `vault token`: print one valid secret (refreshed first when due), for
//! agents and scripts.

use std::process::ExitCode;

use anyhow::Result;
use authvault::model::Provider;
use authvault::store::AccountSelector;
use secrecy::ExposeSecret;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account's label (default: the single account of --provider, or of the vault).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Restrict to one provider (openai, claude).
    #[arg(long)]
    provider: Option<Provider>,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let served = manager.token(AccountSelector {
        label: args.account.as_deref(),
        provider: args.provider,
    })?;
    for w in &served.warnings {
        super::print_warn(&format!("warning: {w}"));
    }
    let token = &served.token;
    if ctx.json {
        // This command's whole purpose is to print the secret.
        let out = serde_json::json!({
            "account": token.account.label,
            "provider": token.account.provider,
            "kind": token.kind,
            "token": token.secret.expose_secret(),
            "expires_at": token.expires_at,
            "refreshed": served.refreshed,
        });
        super::print_out(&out.to_string())?;
    } else {
        super::print_out(token.secret.expose_secret())?;
    }
    Ok(ExitCode::SUCCESS)
}
