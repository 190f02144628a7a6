//! `vault init`: create a vault, protected by the OS keyring or a passphrase.

use std::process::ExitCode;

use anyhow::Result;
use authvault::keys::{KekStore, OsKeyring, Unlock};
use authvault::store::{Store, Vault, VaultInfo};
use authvault::terminal::escape;
use serde::Serialize;

use super::{Ctx, KdfArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Protect the vault with a passphrase (AUTHVAULT_PASSPHRASE, or a prompt)
    /// instead of the OS keyring.
    #[arg(long)]
    passphrase: bool,
    #[command(flatten)]
    kdf: KdfArgs,
}

/// `vault init --json`: the vault's info (with `path`) and its location.
#[derive(Debug, Serialize)]
struct Created {
    /// The file, or the PostgreSQL URL without its password.
    location: String,
    #[serde(flatten)]
    info: VaultInfo,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let location = &ctx.config.location;
    let store = create(ctx, args.passphrase, &args.kdf)?;
    let info = Vault::open_at(location)?.info()?;
    let created = Created {
        location: location.to_string(),
        info,
    };
    ctx.emit(&created, || {
        format!(
            "Created vault {} at {} (unlock: {})",
            store.vault_id(),
            escape(&created.location),
            if args.passphrase {
                "passphrase"
            } else {
                "OS keyring"
            }
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Creates the vault: with the OS keyring unless `passphrase`. Shared with
/// `vault migrate`'s first use.
pub fn create(ctx: &Ctx, passphrase: bool, kdf: &KdfArgs) -> Result<Store> {
    let location = &ctx.config.location;
    let store = if passphrase {
        let cost = kdf.cost()?;
        let p = Ctx::new_passphrase(
            ctx.config.passphrase.as_ref(),
            authvault::config::ENV_PASSPHRASE,
        )?;
        Store::init_at(location, &Unlock::Passphrase(&p, cost))?
    } else {
        if let Err(e) = OsKeyring.probe() {
            anyhow::bail!(
                "{e}; no vault was created. Run `vault init --passphrase` to protect the vault with a \
                 passphrase instead (set AUTHVAULT_PASSPHRASE for non-interactive use)"
            );
        }
        Store::init_at(location, &Unlock::Keyring(&ctx.keyring())).map_err(|e| match e {
            authvault::Error::Keyring(k) => anyhow::anyhow!(
                "{k}; no vault was created. Run `vault init --passphrase` to use a passphrase instead \
                 (set AUTHVAULT_PASSPHRASE for non-interactive use)"
            ),
            other => other.into(),
        })?
    };
    Ok(store.with_actor(ctx.actor()))
}
