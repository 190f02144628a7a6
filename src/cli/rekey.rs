//! `vault rekey`: rotate the data key.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    ctx.gather_keks(&mut store, None)?;
    let report = store.rekey()?;
    ctx.emit(&report, || {
        format!(
            "Rotated the data key ({:?} → {}); re-sealed {} values.",
            report.from, report.to, report.values
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
