//! `vault keyring add|remove`.

use std::process::ExitCode;

use anyhow::Result;
use authvault::keys::{KekStore, Method, OsKeyring, Unlock};
use clap::Subcommand;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Keep a key-encryption key in the OS keyring, so no passphrase is needed.
    Add,
    /// Delete the OS keyring entry and its unlock method (never the last method).
    Remove,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let done = match args.action {
        Action::Add => {
            OsKeyring.probe()?;
            store.add_method(&Unlock::Keyring(&OsKeyring))?;
            "Added the OS keyring unlock method."
        }
        Action::Remove => {
            // The passphrase stays the only way in: prove it first.
            ctx.gather_keks(&mut store, Some(Method::Keyring))?;
            store.remove_method(Method::Keyring, &OsKeyring)?;
            "Removed the OS keyring unlock method and its keyring entry."
        }
    };
    ctx.emit(
        &serde_json::json!({ "unlock_methods": store.methods()? }),
        || done.to_owned(),
    )?;
    Ok(ExitCode::SUCCESS)
}
