//! `vault keyring add|remove`.

use std::process::ExitCode;

use anyhow::Result;
use authvault::keys::{KekStore, Method, Unlock};
use authvault::store::host_label;
use clap::Subcommand;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Keep a key-encryption key in this host's OS keyring, so no passphrase
    /// is needed here. On a new host of a shared vault: unlock with the
    /// passphrase (AUTHVAULT_PASSPHRASE or the prompt) and run this.
    Add,
    /// Delete a host's keyring unlock method (never the last method): this
    /// host's, and its keyring entry, or with --host another host's
    /// (revokes that host; run `vault rekey` afterwards).
    Remove {
        /// The host to revoke (default: this host, `AUTHVAULT_HOST` or the
        /// node name).
        #[arg(long)]
        host: Option<String>,
    },
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let keyring = ctx.keyring();
    let done = match &args.action {
        Action::Add => {
            keyring.probe()?;
            store.add_method(&Unlock::Keyring(&keyring))?;
            format!(
                "Added the OS keyring unlock method for host {}.",
                host_label(&keyring.host)
            )
        }
        Action::Remove { host: None } => {
            // The passphrase stays the only way in: prove it first.
            ctx.gather_keks(&mut store, Some(Method::Keyring))?;
            store.remove_method(Method::Keyring, &keyring)?;
            "Removed this host's OS keyring unlock method and its keyring entry.".to_owned()
        }
        Action::Remove { host: Some(host) } => {
            ctx.gather_keks(&mut store, Some(Method::Keyring))?;
            store.remove_keyring_of(host, &keyring)?;
            format!(
                "Removed the OS keyring unlock method of host {}: its keyring no longer opens \
                 the vault. Run `vault rekey` so the data key it may have kept no longer opens \
                 anything.",
                host_label(host)
            )
        }
    };
    ctx.emit(
        &serde_json::json!({
            "unlock_methods": store.methods()?,
            "unlock_method_rows": rows(&store)?,
        }),
        || done,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn rows(store: &authvault::store::Store) -> Result<Vec<serde_json::Value>> {
    Ok(store
        .method_rows()?
        .into_iter()
        .map(|(method, host)| serde_json::json!({ "method": method, "host": host }))
        .collect())
}
