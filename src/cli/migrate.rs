//! `vault migrate`: import every legacy credential file once, safely.

use std::process::ExitCode;

use anyhow::Result;
use authvault::import::{self, MigrateOptions, MigrateReport};
use authvault::keys::{KekStore, MemoryKeyring, OsKeyring, Unlock};
use authvault::store::{MergeAction, Store};
use authvault::terminal::escape;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Ctx, KdfArgs};

#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // independent command-line flags
pub struct Args {
    /// A legacy file (or a directory of *.json files) to import; repeatable.
    /// Default: $CODEX_HOME/auth.json, $CODEX_HOME/claude_auth.json and
    /// $CLAUDE_CONFIG_DIR/.credentials.json (missing ones are skipped).
    #[arg(long, value_name = "PATH")]
    from: Vec<PathBuf>,
    /// Print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import the valid sources even when others fail (they are listed).
    #[arg(long)]
    skip_invalid: bool,
    /// Delete each source after its credentials were read back from the vault.
    /// Never calls a provider's logout or revoke.
    #[arg(long)]
    remove_source: bool,
    /// When this creates the vault: protect it with a passphrase, not the OS keyring.
    #[arg(long)]
    passphrase: bool,
    #[command(flatten)]
    kdf: KdfArgs,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let options = MigrateOptions {
        from: args.from.clone(),
        defaults: ctx.config.legacy_sources(),
        dry_run: args.dry_run,
        skip_invalid: args.skip_invalid,
        remove_source: args.remove_source,
    };
    let location = &ctx.config.location;
    let mut created = None;
    let report = if !ctx.vacant()? {
        import::migrate(&mut ctx.unlock()?, &options)?
    } else if args.dry_run {
        // Plan against a throw-away vault: exactly what a first import would do.
        let dir = scratch_dir()?;
        let keyring = MemoryKeyring::default();
        let result = Store::init(&dir.join("plan.db"), &Unlock::Keyring(&keyring))
            .map_err(anyhow::Error::from)
            .and_then(|mut s| Ok(import::migrate(&mut s, &options)?));
        let _ = std::fs::remove_dir_all(&dir);
        result?
    } else {
        import::preflight(&options)?;
        let use_passphrase = args.passphrase || OsKeyring.probe().is_err();
        let mut store = super::init::create(ctx, use_passphrase, &args.kdf)?;
        created = Some(if use_passphrase {
            "passphrase"
        } else {
            "OS keyring"
        });
        import::migrate(&mut store, &options)?
    };
    ctx.emit(
        &serde_json::json!({
            "vault_created": created.is_some(),
            "location": location.to_string(),
            "report": report,
        }),
        || {
            let mut text = String::new();
            if let Some(how) = created {
                let _ = writeln!(
                    text,
                    "Created a new vault at {} (unlock: {how}).",
                    escape(&location.to_string())
                );
            }
            text + &describe(&report)
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn scratch_dir() -> Result<PathBuf> {
    let mut suffix = [0u8; 8];
    authvault::crypto::fill_random(&mut suffix)?;
    let dir = std::env::temp_dir().join(format!(
        "authvault-plan-{}",
        authvault::crypto::hex(&suffix)
    ));
    std::fs::DirBuilder::new().create(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(dir)
}

/// The report for humans. Paths, e-mails, plans and messages may carry
/// anything a file held: each is escaped onto its own line.
fn describe(r: &MigrateReport) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "Sources:");
    for s in &r.sources {
        let format = s.format.map(|f| f.to_string()).unwrap_or_default();
        let path = s.path.display().to_string();
        let _ = writeln!(t, "  {:<10} {:<24} {}", s.status, format, escape(&path));
        for line in s.error.iter().chain(&s.warnings).chain(&s.notes) {
            let _ = writeln!(t, "             - {}", escape(line));
        }
        if s.removed {
            let _ = writeln!(t, "             - removed after verification");
        }
        if let Some(why) = &s.kept_because {
            let _ = writeln!(t, "             - kept: {}", escape(why));
        }
    }
    if !r.accounts.is_empty() {
        let _ = writeln!(t, "Accounts:");
    }
    for a in &r.accounts {
        let action = match a.action {
            MergeAction::Create if r.dry_run => "would create",
            MergeAction::Update if r.dry_run => "would update",
            MergeAction::Create => "created",
            MergeAction::Update => "updated",
            MergeAction::Unchanged => "unchanged",
        };
        let kinds: Vec<_> = a.credentials.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            t,
            "  {action:<12} {:<18} {:<6} {} (active {}) {} {}",
            escape(&a.label),
            a.provider,
            kinds.join("+"),
            a.active,
            escape(a.email.as_deref().unwrap_or("-")),
            escape(a.plan.as_deref().unwrap_or("-")),
        );
        for c in &a.changes {
            let _ = writeln!(t, "               - {}", escape(c));
        }
    }
    if !r.settings_changed.is_empty() {
        let _ = writeln!(t, "Settings: {}", escape(&r.settings_changed.join(", ")));
    }
    if r.history_added > 0 {
        let _ = writeln!(
            t,
            "Selection history: {} entr{} {}",
            r.history_added,
            if r.history_added == 1 { "y" } else { "ies" },
            if r.dry_run { "would be added" } else { "added" }
        );
    }
    let _ = write!(
        t,
        "{} created, {} updated, {} unchanged",
        r.created, r.updated, r.unchanged
    );
    if r.dry_run {
        t.push_str(" (dry run: nothing was written)");
    }
    t
}
