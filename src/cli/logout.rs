//! `vault logout`: remove an account's OAuth tokens locally.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account.
    #[arg(long, value_name = "NAME")]
    account: String,
    /// Also revoke the refresh token at the provider (OpenAI). This logs out
    /// every other copy of the login, too.
    #[arg(long)]
    revoke: bool,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let (info, note) = manager.logout(&args.account, args.revoke)?;
    ctx.emit(
        &serde_json::json!({ "account": info, "revocation": note }),
        || {
            let revocation = note
                .as_deref()
                .map(|n| format!(" Revocation: {n}."))
                .unwrap_or_default();
            format!("Removed the OAuth tokens of `{}`.{revocation}", info.label)
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
