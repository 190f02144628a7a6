//! `vault rekey`: rotate the data key.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use authvault::store::host_label;

use super::Ctx;

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    ctx.gather_keks(&mut store, None)?;
    let report = store.rekey()?;
    ctx.emit(&report, || {
        let mut text = format!(
            "Rotated the data key ({:?} → {}); re-sealed {} values.",
            report.from, report.to, report.values
        );
        for host in &report.must_re_enrol {
            let _ = write!(
                text,
                "\nHost {} must re-enrol: its keyring has no wrap of the new data key. On that \
                 host, unlock with the passphrase and run `vault keyring add`.",
                host_label(host)
            );
        }
        text
    })?;
    Ok(ExitCode::SUCCESS)
}
