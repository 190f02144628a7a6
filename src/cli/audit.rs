//! `vault audit`: list entries, or verify the chain.

use std::process::ExitCode;

use anyhow::Result;
use authvault::store::{AuditEntry, ChainState};
use authvault::terminal::escape;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Show only the latest N entries.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Check every entry's MAC and the chain head; exit non-zero naming the first bad entry.
    Verify,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let store = ctx.unlock()?;
    if let Some(Action::Verify) = args.action {
        let report = store.verify_audit()?;
        let code = match &report.state {
            ChainState::Intact => ExitCode::SUCCESS,
            ChainState::Broken { .. } => ExitCode::FAILURE,
        };
        ctx.emit(&report, || match &report.state {
            ChainState::Intact => {
                format!("audit chain intact: {} entries verified", report.entries)
            }
            ChainState::Broken { first_bad, reason } => {
                format!("audit chain BROKEN: first bad entry {first_bad}: {reason}")
            }
        })?;
        return Ok(code);
    }
    let entries = store.audit_entries(args.limit)?;
    ctx.emit(&entries, || table(&entries))?;
    Ok(ExitCode::SUCCESS)
}

fn table(entries: &[AuditEntry]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "seq", "at", "actor", "action", "account", "outcome", "details",
    ]);
    for e in entries {
        let actor = format!(
            "uid {} pid {}{}{}",
            e.uid,
            e.pid,
            e.host
                .as_deref()
                .map(|h| format!(" on {h}"))
                .unwrap_or_default(),
            e.agent_id
                .as_deref()
                .map(|a| format!(" agent {a}"))
                .unwrap_or_default()
        );
        let details = if e.details.is_null() {
            String::new()
        } else {
            e.details.to_string()
        };
        // Agent ids, paths in details and failure reasons are not ours: one
        // escaped line per cell.
        t.add_row(
            [
                &e.seq.to_string(),
                &e.at,
                &actor,
                &e.action,
                e.account.as_deref().unwrap_or_default(),
                &e.outcome,
                &details,
            ]
            .map(|cell| escape(cell).into_owned()),
        );
    }
    t.to_string()
}
