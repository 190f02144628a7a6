//! `vault copy --to LOCATION`: the vault copied to a new file or an empty
//! PostgreSQL database, sealed values as they are, verified there.

use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::db::Location;
use authvault::store::CopyReport;
use authvault::terminal::escape;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the copy goes: a path where nothing is yet, or an empty
    /// PostgreSQL database as postgres://USER@HOST/DB (given like --vault;
    /// prefer ~/.pgpass or PGPASSWORD to a password in the URL).
    #[arg(long, value_name = "PATH|URL")]
    to: String,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    // The parse error names the problem, never the password.
    let to = Location::parse(&args.to).context("--to")?;
    let mut store = ctx.unlock()?;
    let report = store.copy_to(&to)?;
    ctx.emit(&report, || text(&report))?;
    Ok(ExitCode::SUCCESS)
}

fn text(report: &CopyReport) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["table", "rows"]);
    for table in &report.tables {
        t.add_row([table.table.to_owned(), table.rows.to_string()]);
    }
    format!(
        "Copied vault {} to {} (format {}): {} rows in {} tables.\n\
         Verified there: sealed values opened: {}; audit entries copied: {}, chain \
         intact; every table equal to the source's.\n{t}\n\
         The copy has this vault's id and unlock methods: the same passphrase, and on this \
         host the same keyring entry, open it. Keep using one of the two; keep the other \
         only as a backup.",
        report.vault_id,
        escape(&report.to),
        report.format_version,
        report.rows,
        report.tables.len(),
        report.sealed_values,
        report.audit_entries,
    )
}
