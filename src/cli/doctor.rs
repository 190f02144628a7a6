//! `vault doctor`: modes, file integrity, keyring, audit chain; `--fix` repairs modes.

use std::process::ExitCode;

use anyhow::Result;
use authvault::db::{self, ModePolicy};
use authvault::keys::{KekStore, KeyringError, Method, OsKeyring};
use authvault::store::{ChainState, Vault};
use serde::Serialize;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repair loose file and directory modes (audited).
    #[arg(long)]
    fix: bool,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let path = &ctx.config.vault_path;
    let mut checks = Vec::new();

    let mut fixed = Vec::new();
    if args.fix {
        fixed = db::fix_modes(path)?;
    }
    let problems = db::mode_problems(path)?;
    checks.push(Check {
        check: "modes",
        ok: problems.is_empty(),
        detail: if problems.is_empty() {
            let repaired = fixed
                .iter()
                .map(|p| format!("{} {:04o} → {:04o}", p.path.display(), p.mode, p.want));
            let repaired: Vec<_> = repaired.collect();
            if repaired.is_empty() {
                "directory 0700, files 0600".into()
            } else {
                format!("repaired: {}", repaired.join(", "))
            }
        } else {
            let list: Vec<_> = problems
                .iter()
                .map(|p| {
                    format!(
                        "{} is {:04o}, want {:04o}",
                        p.path.display(),
                        p.mode,
                        p.want
                    )
                })
                .collect();
            format!("{}; run `vault doctor --fix`", list.join(", "))
        },
    });

    let vault = Vault::open_with(path, ModePolicy::Allow)?;
    let integrity = vault.integrity_check()?;
    checks.push(Check {
        check: "integrity",
        ok: integrity == ["ok"],
        detail: integrity.join("; "),
    });

    let methods = vault.methods()?;
    let vault_id = vault.vault_id()?;
    drop(vault);
    let keyring = match OsKeyring.probe() {
        Err(e) => Check {
            check: "keyring",
            ok: !methods.contains(&Method::Keyring),
            detail: e.to_string(),
        },
        Ok(()) if methods.contains(&Method::Keyring) => match OsKeyring.load(&vault_id) {
            Ok(_) => Check { check: "keyring", ok: true, detail: "usable; holds this vault's key".into() },
            Err(KeyringError::NotFound) => Check {
                check: "keyring",
                ok: false,
                detail: "usable, but this vault's entry is missing: unlock with the passphrase, then `vault keyring remove` and `vault keyring add`".into(),
            },
            Err(e) => Check { check: "keyring", ok: false, detail: e.to_string() },
        },
        Ok(()) => Check { check: "keyring", ok: true, detail: "usable (not used by this vault)".into() },
    };
    checks.push(keyring);

    // The audit chain, and the record of any repair, need the vault unlocked.
    let audit = if problems.is_empty() {
        match ctx.unlock() {
            Ok(mut store) => {
                if !fixed.is_empty() {
                    let details: Vec<_> = fixed
                        .iter()
                        .map(|p| serde_json::json!({ "path": p.path, "from": format!("{:04o}", p.mode), "to": format!("{:04o}", p.want) }))
                        .collect();
                    store.record("doctor.fix_modes", serde_json::json!({ "fixed": details }))?;
                }
                let report = store.verify_audit()?;
                match report.state {
                    ChainState::Intact => Check {
                        check: "audit",
                        ok: true,
                        detail: format!("{} entries, chain intact", report.entries),
                    },
                    ChainState::Broken { first_bad, reason } => Check {
                        check: "audit",
                        ok: false,
                        detail: format!("chain broken at entry {first_bad}: {reason}"),
                    },
                }
            }
            Err(e) => Check {
                check: "audit",
                ok: false,
                detail: format!("not verified: {e:#}"),
            },
        }
    } else {
        Check {
            check: "audit",
            ok: false,
            detail: "not verified until the modes are fixed".into(),
        }
    };
    checks.push(audit);

    let ok = checks.iter().all(|c| c.ok);
    ctx.emit(&serde_json::json!({ "ok": ok, "checks": checks }), || {
        checks
            .iter()
            .map(|c| {
                format!(
                    "{} {:<10} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.check,
                    c.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
