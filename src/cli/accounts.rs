//! `vault accounts`: list, rename, disable, enable, remove.

use std::process::ExitCode;

use anyhow::Result;
use authvault::store::AccountInfo;
use authvault::terminal::escape;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List accounts (the default).
    List,
    /// Give an account a new label.
    Rename {
        /// Current label.
        name: String,
        /// New label.
        new_name: String,
    },
    /// Stop handing out an account's credentials.
    Disable {
        /// Label.
        name: String,
    },
    /// Hand out an account's credentials again.
    Enable {
        /// Label.
        name: String,
    },
    /// Delete an account and its credentials.
    Remove {
        /// Label.
        name: String,
    },
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let (info, verb) = match args.action.as_ref().unwrap_or(&Action::List) {
        Action::List => {
            let accounts = store.accounts()?;
            ctx.emit(&accounts, || table(&accounts))?;
            return Ok(ExitCode::SUCCESS);
        }
        Action::Rename { name, new_name } => (store.rename_account(name, new_name)?, "Renamed"),
        Action::Disable { name } => (store.set_enabled(name, false)?, "Disabled"),
        Action::Enable { name } => (store.set_enabled(name, true)?, "Enabled"),
        Action::Remove { name } => (store.remove_account(name)?, "Removed"),
    };
    ctx.emit(&serde_json::json!({ "account": info }), || {
        format!(
            "{verb} {} account `{}`.",
            info.provider,
            escape(&info.label)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn table(accounts: &[AccountInfo]) -> String {
    if accounts.is_empty() {
        return "No accounts yet: add one with `vault login` or `vault migrate`.".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "label", "provider", "kind", "plan", "email", "state", "expires",
    ]);
    for a in accounts {
        let state = match (a.enabled, a.needs_login) {
            (false, _) => "disabled",
            (true, true) => "needs login",
            (true, false) => "ok",
        };
        // Plan and e-mail come from files and providers: escaped, so a cell
        // holds one line and drives nothing.
        t.add_row([
            escape(&a.label).into_owned(),
            a.provider.to_string(),
            a.credentials
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("+"),
            escape(a.plan.as_deref().unwrap_or_default()).into_owned(),
            escape(a.email.as_deref().unwrap_or_default()).into_owned(),
            state.to_owned(),
            a.expires_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
        ]);
    }
    t.to_string()
}
