//! `vault usage`: usage history. `import claude-code` backfills from Claude
//! Code transcripts; `rebuild` recomputes the hourly rollup.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use authvault::terminal::escape;
use authvault::usage::import::{self, ImportReport};
use authvault::usage::price::PriceTable;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Read usage from agent logs into the vault (only what is new).
    Import(ImportArgs),
    /// Recompute the hourly rollup from the stored events.
    Rebuild,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    #[command(subcommand)]
    from: From,
}

#[derive(Debug, clap::Subcommand)]
enum From {
    /// Claude Code transcripts: DIR… (each a config directory or its
    /// `projects/`), else CLAUDE_CONFIG_DIR (comma list), else
    /// ~/.config/claude and ~/.claude.
    ClaudeCode {
        /// Directories to read instead of the defaults.
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Attribute every event to this account.
        #[arg(long, value_name = "L")]
        account: Option<String>,
    },
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    match &args.command {
        Command::Import(ImportArgs {
            from: From::ClaudeCode { dirs, account },
        }) => {
            let configured = if dirs.is_empty() {
                &ctx.config.claude_usage_roots
            } else {
                dirs
            };
            let roots = import::claude_code_roots(configured, &[]);
            if roots.is_empty() {
                anyhow::bail!(
                    "no Claude Code `projects/` directory in {}; name one: `vault usage import claude-code DIR`",
                    configured
                        .iter()
                        .map(|p| escape(&p.display().to_string()).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let report = import::import_claude_code(
                &mut store,
                &roots,
                account.as_deref(),
                PriceTable::builtin(),
            )?;
            ctx.emit(&report, || describe(&report))?;
        }
        Command::Rebuild => {
            let rows = store.rebuild_usage_rollups()?;
            ctx.emit(&serde_json::json!({ "rollup_rows": rows }), || {
                format!("Rebuilt the hourly rollup: {rows} rows.")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(r: &ImportReport) -> String {
    let mut out = format!(
        "Read {} new lines from {} of {} files: {} usage events, {} new, {} replaced by a larger copy, {} already stored.",
        r.lines,
        r.files_read,
        r.files,
        r.events,
        r.written.added,
        r.written.replaced,
        r.written.unchanged
    );
    if r.files_reread > 0 {
        let _ = write!(
            out,
            "\n{} replaced or shrunk files were read again from the start.",
            r.files_reread
        );
    }
    for bad in &r.bad {
        let _ = write!(
            out,
            "\n{}: {} lines could not be read",
            escape(&bad.path.display().to_string()),
            bad.count
        );
        for l in &bad.lines {
            let _ = write!(out, "\n  line {}: {}", l.line, escape(&l.reason));
        }
    }
    out
}
