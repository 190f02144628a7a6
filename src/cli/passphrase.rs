//! `vault passphrase add|change|remove`.

use std::process::ExitCode;

use anyhow::Result;
use authvault::config::ENV_NEW_PASSPHRASE;
use authvault::keys::{Method, Unlock};
use clap::Subcommand;

use super::{Ctx, KdfArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Add a passphrase unlock method (new passphrase from AUTHVAULT_NEW_PASSPHRASE or a prompt).
    Add(KdfArgs),
    /// Change the passphrase; rewraps the key rows only.
    Change(KdfArgs),
    /// Remove the passphrase unlock method (never the last method).
    Remove,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let done = match &args.action {
        Action::Add(kdf) => {
            let cost = kdf.cost()?;
            let p = Ctx::new_passphrase(ctx.config.new_passphrase.as_ref(), ENV_NEW_PASSPHRASE)?;
            store.add_method(&Unlock::Passphrase(&p, cost))?;
            "Added a passphrase unlock method."
        }
        Action::Change(kdf) => {
            let cost = kdf.cost()?;
            let p = Ctx::new_passphrase(ctx.config.new_passphrase.as_ref(), ENV_NEW_PASSPHRASE)?;
            store.change_passphrase(&Unlock::Passphrase(&p, cost))?;
            "Changed the passphrase."
        }
        Action::Remove => {
            store.remove_method(Method::Passphrase, &ctx.keyring())?;
            "Removed the passphrase unlock method."
        }
    };
    ctx.emit(
        &serde_json::json!({ "unlock_methods": store.methods()? }),
        || done.to_owned(),
    )?;
    Ok(ExitCode::SUCCESS)
}
