//! `vault login`: add an account, or replace an account's credential.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::model::{Credential, CredentialKind, Identity, Provider};
use authvault::store::{AccountInfo, NewAccount};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// openai or claude.
    provider: Provider,
    /// Read an API key from standard input.
    #[arg(long)]
    api_key_stdin: bool,
    /// Label of the new account (default: `<provider>-api-key`, numbered if taken).
    #[arg(long, value_name = "NAME", conflicts_with = "account")]
    label: Option<String>,
    /// Replace the credential of this existing account instead.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
}

/// Longest API key accepted.
const MAX_KEY_LEN: usize = 4096;

fn read_api_key() -> Result<SecretString> {
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin()
        .take(MAX_KEY_LEN as u64 + 2)
        .read_to_end(&mut raw)
        .context("reading the API key from stdin")?;
    let invalid = |reason: &str| authvault::Error::InvalidInput {
        what: "API key on stdin".into(),
        reason: reason.into(),
    };
    let text = std::str::from_utf8(&raw).map_err(|_| invalid("not UTF-8 text"))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(invalid("empty; pipe the key in, e.g. `printf %s \"$KEY\" | vault login openai --api-key-stdin`").into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid("longer than 4096 bytes").into());
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters inside the key").into());
    }
    Ok(SecretString::from(key))
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    if !args.api_key_stdin {
        anyhow::bail!(
            "subscription (OAuth) login is not available yet; store an API key with \
             `vault login {} --api-key-stdin --label NAME`",
            args.provider
        );
    }
    let key = read_api_key()?;
    let mut store = ctx.unlock()?;
    let credential = Credential::ApiKey(key);
    let info = if let Some(label) = &args.account {
        let existing = store.account(label)?;
        if existing.provider != args.provider {
            anyhow::bail!(
                "account `{label}` is a {} account, not {}",
                existing.provider,
                args.provider
            );
        }
        store.set_credential(label, &credential)?
    } else {
        let label = match &args.label {
            Some(l) => l.clone(),
            None => free_label(&store.accounts()?, &format!("{}-api-key", args.provider)),
        };
        store.add_account(&NewAccount {
            provider: args.provider,
            label,
            identity: Identity::default(),
            credentials: vec![credential],
            active: CredentialKind::ApiKey,
        })?
    };
    ctx.emit(&serde_json::json!({ "account": info }), || {
        format!(
            "Stored the API key of {} account `{}`.",
            info.provider, info.label
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `base`, or `base-2`, `base-3`… whichever is free.
pub fn free_label(accounts: &[AccountInfo], base: &str) -> String {
    let taken = |l: &str| accounts.iter().any(|a| a.label == l);
    if !taken(base) {
        return base.to_owned();
    }
    // Among len + 1 candidates at least one is free.
    (2..=accounts.len() + 2)
        .map(|n| format!("{base}-{n}"))
        .find(|l| !taken(l))
        .expect("pigeonhole: more candidates than accounts")
}
