//! `vault doctor`: modes, file integrity, keyring, sealed values, audit chain;
//! `--fix` repairs modes (audited).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use authvault::db::{self, Location, ModePolicy, ModeProblem};
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
    #[serde(rename = "check")]
    name: &'static str,
    ok: bool,
    detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let location = &ctx.config.location;
    let (problems, fixed, modes_check) = match location {
        Location::File(path) => {
            let fixed = if args.fix {
                db::fix_modes(path)?
            } else {
                Vec::new()
            };
            let problems = db::mode_problems(path)?;
            let check = modes(&problems, &fixed);
            (problems, fixed, check)
        }
        Location::Postgres(_) => {
            if args.fix {
                anyhow::bail!(
                    "`vault doctor --fix` repairs file modes, and the PostgreSQL vault at {location} \
                     has none; nothing was changed (run `vault doctor` to check it)"
                );
            }
            let check = Check::new("modes", true, "not applicable (PostgreSQL)");
            (Vec::new(), Vec::new(), check)
        }
    };
    let mut checks = vec![modes_check];

    let vault = Vault::open_with_at(location, ModePolicy::Allow)?;
    let integrity = vault.integrity_check()?;
    checks.push(Check::new(
        "integrity",
        integrity == ["ok"],
        integrity.join("; "),
    ));
    checks.push(keyring(&vault.methods()?, &vault.vault_id()?));
    drop(vault);

    if problems.is_empty() {
        unlocked_checks(ctx, &fixed, &mut checks);
    } else {
        checks.push(Check::new(
            "audit",
            false,
            "not verified until the modes are fixed",
        ));
    }

    let ok = checks.iter().all(|c| c.ok);
    let file_modes = match location {
        Location::File(_) => "checked",
        Location::Postgres(_) => "not_applicable",
    };
    let report = serde_json::json!({
        "ok": ok,
        "location": location.to_string(),
        "file_modes": file_modes,
        "checks": checks,
    });
    ctx.emit(&report, || {
        let lines: Vec<_> = checks
            .iter()
            .map(|c| {
                format!(
                    "{} {:<10} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                )
            })
            .collect();
        format!("vault      {}\n{}", location, lines.join("\n"))
    })?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(p: &ModeProblem) -> String {
    format!("{} {:04o} → {:04o}", p.path.display(), p.mode, p.want)
}

/// A problem `--fix` leaves alone, with the fix for the user to apply.
fn describe_manual(p: &ModeProblem) -> String {
    let path = p.path.display();
    let how = if p.what == "directory" {
        format!(
            "not made for the vault alone (shared, sticky or a link), so left as it is: \
             run `chmod {:o} {path}` yourself if nothing else needs it, or move the vault \
             into a private directory (`--vault`)",
            p.want
        )
    } else {
        format!("a symbolic link: remove `{path}`")
    };
    format!("{} ({how})", describe(p))
}

fn modes(problems: &[ModeProblem], fixed: &[ModeProblem]) -> Check {
    if !problems.is_empty() {
        let mut list: Vec<_> = problems
            .iter()
            .map(|p| {
                if p.fixable {
                    describe(p)
                } else {
                    describe_manual(p)
                }
            })
            .collect();
        if problems.iter().any(|p| p.fixable) {
            list.push("run `vault doctor --fix`".into());
        }
        if !fixed.is_empty() {
            let repaired: Vec<_> = fixed.iter().map(describe).collect();
            list.push(format!("repaired: {}", repaired.join(", ")));
        }
        return Check::new("modes", false, list.join("; "));
    }
    if fixed.is_empty() {
        Check::new("modes", true, "directory 0700, files 0600")
    } else {
        let list: Vec<_> = fixed.iter().map(describe).collect();
        Check::new("modes", true, format!("repaired: {}", list.join(", ")))
    }
}

fn keyring(methods: &[Method], vault_id: &str) -> Check {
    let uses_keyring = methods.contains(&Method::Keyring);
    match OsKeyring.probe() {
        Err(e) => Check::new("keyring", !uses_keyring, e.to_string()),
        Ok(()) if !uses_keyring => Check::new("keyring", true, "usable (not used by this vault)"),
        Ok(()) => match OsKeyring.load(vault_id) {
            Ok(_) => Check::new("keyring", true, "usable; holds this vault's key"),
            Err(KeyringError::NotFound) => Check::new(
                "keyring",
                false,
                "usable, but this vault's entry is missing: unlock with the passphrase, then run \
                 `vault keyring remove` and `vault keyring add`",
            ),
            Err(e) => Check::new("keyring", false, e.to_string()),
        },
    }
}

/// Checks that need the vault unlocked; records the mode repair first.
fn unlocked_checks(ctx: &Ctx, fixed: &[ModeProblem], checks: &mut Vec<Check>) {
    let mut store = match ctx.unlock() {
        Ok(store) => store,
        Err(e) => {
            checks.push(Check::new("audit", false, format!("not verified: {e:#}")));
            return;
        }
    };
    if !fixed.is_empty() {
        let details: Vec<_> = fixed
            .iter()
            .map(|p| fix_details(&p.path, p.mode, p.want))
            .collect();
        if let Err(e) = store.record("doctor.fix_modes", &serde_json::json!({ "fixed": details })) {
            checks.push(Check::new(
                "audit",
                false,
                format!("the repair could not be recorded: {e}"),
            ));
            return;
        }
    }
    checks.push(match store.verify_sealed() {
        Ok(n) => Check::new("sealed", true, format!("all {n} sealed values open")),
        Err(e) => Check::new("sealed", false, e.to_string()),
    });
    checks.push(match store.verify_audit() {
        Ok(r) => match r.state {
            ChainState::Intact => Check::new(
                "audit",
                true,
                format!("{} entries, chain intact", r.entries),
            ),
            ChainState::Broken { first_bad, reason } => Check::new(
                "audit",
                false,
                format!("chain broken at entry {first_bad}: {reason}"),
            ),
        },
        Err(e) => Check::new("audit", false, e.to_string()),
    });
}

fn fix_details(path: &Path, from: u32, to: u32) -> serde_json::Value {
    serde_json::json!({ "path": path, "from": format!("{from:04o}"), "to": format!("{to:04o}") })
}
