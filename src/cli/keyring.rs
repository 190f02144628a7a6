//! `vault keyring add [--host NAME]|join|remove [--host NAME]`.

use std::process::ExitCode;

use anyhow::Result;
use authvault::keys::{EnrolmentCode, KekStore, Method, Unlock};
use authvault::store::Vault;
use authvault::store::host_label;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

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
    /// passphrase (AUTHVAULT_PASSPHRASE or the prompt) and run this; or,
    /// on a host that is unlocked, run it with --host NEW to print an
    /// enrolment code for `vault keyring join` on NEW.
    Add {
        /// Enrol another host: wrap the data key for its keyring and print
        /// the enrolment code (a secret: it opens the vault as that host's
        /// keyring will) on standard output.
        #[arg(long)]
        host: Option<String>,
    },
    /// On a new host: read an enrolment code (from `vault keyring add
    /// --host THIS-HOST` on an unlocked host) from standard input and keep
    /// its key in this host's OS keyring.
    Join,
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

/// Longest enrolment code accepted on standard input.
const MAX_CODE_LEN: usize = 4096;

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    match &args.action {
        Action::Add { host: Some(host) } => return enrol(ctx, host),
        Action::Join => return join(ctx),
        _ => {}
    }
    let mut store = ctx.unlock()?;
    let keyring = ctx.keyring();
    let done = match &args.action {
        Action::Add { host: Some(_) } | Action::Join => unreachable!("handled above"),
        Action::Add { host: None } => {
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

/// `vault keyring add --host HOST`: the enrolment code on stdout, nothing
/// else there; what to do with it on stderr.
fn enrol(ctx: &Ctx, host: &str) -> Result<ExitCode> {
    if ctx.json {
        anyhow::bail!(
            "`vault keyring add --host` prints an enrolment code, a secret, as plain text only; \
             run it without --json"
        );
    }
    let mut store = ctx.unlock()?;
    let code = store.enrol_host(host)?;
    super::print_out(code.encode().expose_secret())?;
    super::print_warn(&format!(
        "Enrolment code for host {} printed. It opens this vault as that host's keyring will: \
         carry it privately, then on that host run `vault keyring join` and give it on \
         standard input. A newer code for the host replaces this one; `vault keyring remove \
         --host` revokes it.",
        host_label(host)
    ));
    Ok(ExitCode::SUCCESS)
}

/// `vault keyring join`: the code from stdin into this host's keyring.
fn join(ctx: &Ctx) -> Result<ExitCode> {
    let raw = super::login::read_stdin("enrolment code on stdin", MAX_CODE_LEN, true)?;
    let text = std::str::from_utf8(&raw).map_err(|_| authvault::Error::InvalidInput {
        what: "enrolment code on stdin".into(),
        reason: "not UTF-8; nothing was stored".into(),
    })?;
    let code = EnrolmentCode::parse(&SecretString::from(text.to_owned()))?;
    let keyring = ctx.keyring();
    keyring.probe()?;
    let vault = Vault::open_at(&ctx.config.location)?;
    let store = vault.join_keyring(&keyring, &code)?;
    ctx.emit(
        &serde_json::json!({
            "joined": keyring.host,
            "unlock_methods": store.methods()?,
            "unlock_method_rows": rows(&store)?,
        }),
        || {
            format!(
                "Host {} joined: its OS keyring now opens the vault.",
                host_label(&keyring.host)
            )
        },
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
