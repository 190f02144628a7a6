//! `vault export codex|claude-code`: write a legacy credential file for tools
//! that still read one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::import::{export, write_private_atomic};
use authvault::model::{Credential, CredentialKind, Provider};
use authvault::store::AccountSelector;
use authvault::terminal::escape;
use clap::ValueEnum;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which file to write.
    format: Format,
    /// The account (default: the provider's single account).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Where to write (default: $CODEX_HOME/auth.json or $CLAUDE_CONFIG_DIR/.credentials.json).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Replace an existing file (Claude Code's other keys, such as MCP tokens, are kept).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Codex's `auth.json` (current schema).
    Codex,
    /// Claude Code's `.credentials.json`.
    ClaudeCode,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let (provider, name, default_out) = match args.format {
        Format::Codex => (
            Provider::OpenAi,
            "codex",
            ctx.config.codex_home.join("auth.json"),
        ),
        Format::ClaudeCode => (
            Provider::Claude,
            "claude-code",
            ctx.config.claude_config_dir.join(".credentials.json"),
        ),
    };
    let out = args.out.clone().unwrap_or(default_out);
    if !args.force && out.exists() {
        return Err(authvault::Error::ExportTargetExists(out).into());
    }
    let mut store = ctx.unlock()?;
    let account = store.select(AccountSelector {
        label: args.account.as_deref(),
        provider: Some(provider),
    })?;
    let purpose = format!("export {name}");
    let mut read = |kind: CredentialKind| -> Result<Option<Credential>> {
        if account.credentials.contains(&kind) {
            Ok(Some(store.credential(&account.label, kind, &purpose)?.1))
        } else {
            Ok(None)
        }
    };
    let oauth = match read(CredentialKind::OAuth)? {
        Some(Credential::OAuth(t)) => Some(t),
        _ => None,
    };
    let text = match args.format {
        Format::Codex => {
            let api_key = match read(CredentialKind::ApiKey)? {
                Some(Credential::ApiKey(k)) => Some(k),
                _ => None,
            };
            export::codex_auth_json(
                oauth.as_ref(),
                api_key.as_ref(),
                account.provider_account_id.as_deref(),
                account.kind,
            )
        }
        Format::ClaudeCode => {
            let oauth = oauth.with_context(|| {
                format!(
                    "account `{}` has no subscription login; Claude Code's file holds only OAuth tokens",
                    account.label
                )
            })?;
            let fresh = export::claude_code_credentials_json(
                &oauth,
                account.plan.as_deref(),
                account.rate_limit_tier.as_deref(),
            );
            if args.force && out.exists() {
                keep_other_keys(&out, &fresh)?
            } else {
                fresh
            }
        }
    };
    write_private_atomic(&out, text.as_bytes(), args.force)?;
    store.record(
        "export.write",
        &serde_json::json!({ "format": name, "path": out, "account": account.label }),
    )?;
    ctx.emit(
        &serde_json::json!({ "format": name, "path": out, "account": account.label }),
        || {
            format!(
                "Wrote {} for {} account `{}` to {} (mode 0600).",
                name,
                account.provider,
                escape(&account.label),
                escape(&out.display().to_string())
            )
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Replaces only `claudeAiOauth` in an existing `.credentials.json`, so other
/// tools' entries (MCP tokens, …) survive.
fn keep_other_keys(path: &std::path::Path, fresh: &str) -> Result<zeroize::Zeroizing<String>> {
    let existing = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let Ok(serde_json::Value::Object(mut map)) =
        serde_json::from_str::<serde_json::Value>(&existing)
    else {
        return Ok(zeroize::Zeroizing::new(fresh.to_owned()));
    };
    let serde_json::Value::Object(new) = serde_json::from_str::<serde_json::Value>(fresh)? else {
        anyhow::bail!("internal: rendered credentials are not an object");
    };
    map.extend(new);
    Ok(zeroize::Zeroizing::new(
        serde_json::to_string_pretty(&map)? + "\n",
    ))
}
