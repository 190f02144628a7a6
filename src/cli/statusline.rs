//! `vault statusline`: Claude Code's `statusLine` command. Reads the JSON
//! Claude Code writes on stdin, imports what is new in that session's
//! transcript, and prints one line: the account (when known), today's cost,
//! the running 5-hour block's cost and time left, and the account's 5-hour
//! and 7-day utilization from its newest snapshot.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::model::Provider;
use authvault::store::{Store, UsageFilter};
use authvault::terminal::escape;
use authvault::usage::blocks::{FIVE_HOURS, blocks};
use authvault::usage::import;
use authvault::usage::query::{Query, Zone};
use chrono::{TimeDelta, Utc};
use serde::Deserialize;

use super::{Ctx, print_out};

/// The most of stdin read (Claude Code's object is a few hundred bytes).
const MAX_INPUT: u64 = 1 << 20;

/// How far back the running block is looked for: blocks chain only
/// through continuous use, so a day of history places it.
const BLOCK_HISTORY: TimeDelta = TimeDelta::hours(24);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account this Claude Code uses (attributes the transcript's new
    /// lines to it) [default: the account the session's usage is
    /// attributed to, if any].
    #[arg(long, value_name = "L")]
    account: Option<String>,
}

/// The part of Claude Code's status-line input used here.
#[derive(Debug, Deserialize)]
struct Input {
    session_id: Option<String>,
    transcript_path: Option<PathBuf>,
    model: Option<Model>,
}

#[derive(Debug, Deserialize)]
struct Model {
    display_name: Option<String>,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut text)
        .context("reading Claude Code's status JSON on stdin")?;
    let input: Input = serde_json::from_str(&text)
        .context("stdin is not Claude Code's status JSON (an object with transcript_path)")?;
    let mut store = ctx.unlock_with(false)?;
    if let Some(path) = input.transcript_path.as_deref().filter(|p| p.exists()) {
        let prices = authvault::usage::price_table(&mut store)?;
        import::import_claude_transcript(&mut store, path, args.account.as_deref(), &prices)?;
    }
    let account = match &args.account {
        Some(a) => Some(a.clone()),
        None => session_account(&mut store, input.session_id.as_deref())?,
    };
    let mut parts = Vec::new();
    if let Some(name) = input.model.and_then(|m| m.display_name) {
        parts.push(escape(&name).into_owned());
    }
    if let Some(a) = &account {
        parts.push(escape(a).into_owned());
    }
    let now = Utc::now();
    let zone = Zone::default();
    let today = zone.date(now);
    let day = Query {
        since: Some(today),
        until: Some(today),
        zone,
        ..Query::default()
    }
    .run(&mut store)?;
    parts.push(format!("today ${:.2}", day.total.cost_usd()));
    let recent = store.usage_events(&UsageFilter {
        from: Some(now - BLOCK_HISTORY),
        provider: Some(Provider::Claude),
        ..UsageFilter::default()
    })?;
    match blocks(&recent, FIVE_HOURS, now)
        .into_iter()
        .find(|b| b.is_active)
    {
        Some(b) => {
            let left = (b.end - now).num_minutes().max(0);
            parts.push(format!(
                "block ${:.2} ({}h{:02}m left)",
                b.sums.cost_usd(),
                left / 60,
                left % 60
            ));
        }
        None => parts.push("no active block".into()),
    }
    if let Some(a) = &account
        && let Some(snapshot) = store.latest_snapshot(a)?
    {
        for (shown, names) in [
            ("5h", ["five_hour", "primary"]),
            ("7d", ["seven_day", "secondary"]),
        ] {
            if let Some(p) = snapshot
                .windows
                .iter()
                .find(|w| names.contains(&w.name.as_str()))
                .and_then(|w| w.utilization_percent)
            {
                parts.push(format!("{shown} {p:.0}%"));
            }
        }
    }
    print_out(&parts.join(" · "))?;
    Ok(ExitCode::SUCCESS)
}

/// The account the session's newest attributed event belongs to.
fn session_account(store: &mut Store, session: Option<&str>) -> Result<Option<String>> {
    Ok(match session {
        Some(s) => store.usage_session_account(s)?,
        None => None,
    })
}
