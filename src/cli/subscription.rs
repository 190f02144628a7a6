//! `vault subscription`: plan, usage windows and credits.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use authvault::model::Snapshot;
use authvault::terminal::escape;
use chrono::Utc;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One account (default: every enabled account).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Ask the provider now instead of using a snapshot younger than 15 minutes.
    #[arg(long)]
    refresh: bool,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let labels: Vec<String> = match &args.account {
        Some(l) => vec![l.clone()],
        None => manager
            .store()
            .accounts()?
            .into_iter()
            .filter(|a| a.enabled && !a.needs_login)
            .map(|a| a.label)
            .collect(),
    };
    let mut out = Vec::new();
    let mut failed = false;
    for label in labels {
        match manager.subscription(&label, args.refresh) {
            Ok(s) => out.push(serde_json::json!({ "account": label, "snapshot": s })),
            Err(e) => {
                failed = true;
                out.push(serde_json::json!({ "account": label, "error": e.to_string() }));
            }
        }
    }
    ctx.emit(&out, || {
        let mut t = String::new();
        for entry in &out {
            let label = entry["account"].as_str().unwrap_or_default();
            if let Some(e) = entry["error"].as_str() {
                let _ = writeln!(t, "{}: error: {}", escape(label), escape(e));
                continue;
            }
            if let Ok(s) = serde_json::from_value::<Snapshot>(entry["snapshot"].clone()) {
                t.push_str(&describe(label, &s));
            }
        }
        t.trim_end().to_owned()
    })?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn describe(label: &str, s: &Snapshot) -> String {
    let age = (Utc::now() - s.fetched_at).num_seconds().max(0);
    let source = s.source.as_str().to_owned();
    // Plan, status and window names are the provider's words: escaped.
    let mut t = format!(
        "{} ({}): plan {}{} — from {source}, {age} s old\n",
        escape(label),
        s.provider,
        escape(s.plan.as_deref().unwrap_or("unknown")),
        s.status
            .as_deref()
            .map(|st| format!(", status {}", escape(st)))
            .unwrap_or_default(),
    );
    for w in &s.windows {
        let used = w
            .utilization_percent
            .map_or_else(|| "?".to_owned(), |u| format!("{u:.1} %"));
        let reset = w
            .resets_at
            .map(|r| format!(", resets {r}"))
            .unwrap_or_default();
        let _ = writeln!(t, "  {:<18} {used}{reset}", escape(&w.name));
    }
    if let Some(c) = &s.credits {
        let _ = writeln!(
            t,
            "  credits            {}",
            serde_json::to_string(c).unwrap_or_default()
        );
    }
    t
}
