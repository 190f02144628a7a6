//! `vault health`: probe every enabled account at once and show the outcome,
//! latency and cooldown of each. Probes that fail are results (exit 0); only
//! a vault that cannot be used is an error.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use authvault::manager::{
    DEFAULT_PROBE_CONCURRENCY, DEFAULT_PROBE_TIMEOUT, ProbeOptions, ProbeReport,
};
use authvault::model::{CredentialKind, Provider};
use authvault::quota;
use authvault::store::ProbeOutcome;
use authvault::terminal::escape;
use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Longest one probe may take (`10s`, `1m`); a slower probe is reported
    /// as `timeout` [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// How many probes run at once (1 to 256) [default: 8].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    concurrency: Option<usize>,
}

fn parse_concurrency(s: &str) -> std::result::Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| format!("`{}` is not a number from 1 to 256", escape(s)))
}

fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    quota::parse_ttl(s)?
        .to_std()
        .map_err(|_| format!("`{}` is not a duration", escape(s)))
}

/// One row of `vault health --json` (the field names are stable).
#[derive(Debug, Serialize)]
struct Row<'a> {
    account: &'a str,
    provider: Provider,
    credential: CredentialKind,
    outcome: ProbeOutcome,
    latency_ms: u32,
    status: Option<u16>,
    detail: Option<&'a str>,
    cooldown_until: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let reports = manager.probe_all(ProbeOptions {
        timeout: args.timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT),
        concurrency: args.concurrency.unwrap_or(DEFAULT_PROBE_CONCURRENCY),
    })?;
    let rows: Vec<Row<'_>> = reports
        .iter()
        .map(|r| Row {
            account: &r.account,
            provider: r.provider,
            credential: r.credential,
            outcome: r.probe.outcome,
            latency_ms: r.probe.latency_ms,
            status: r.probe.status,
            detail: r.probe.detail.as_deref(),
            cooldown_until: r.cooldown.map(|c| rfc3339(c.until)),
        })
        .collect();
    ctx.emit(&rows, || table(&reports))?;
    Ok(ExitCode::SUCCESS)
}

fn table(reports: &[ProbeReport]) -> String {
    if reports.is_empty() {
        return "No enabled accounts to probe: add one with `vault login` or `vault migrate`."
            .into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "account", "provider", "kind", "outcome", "latency", "cooldown",
    ]);
    for r in reports {
        let outcome = match (&r.probe.status, &r.probe.detail) {
            (_, None) => r.probe.outcome.as_str().to_owned(),
            (_, Some(detail)) => format!("{}: {}", r.probe.outcome.as_str(), escape(detail)),
        };
        t.add_row([
            escape(&r.account).into_owned(),
            r.provider.to_string(),
            r.credential.to_string(),
            outcome,
            format!("{} ms", r.probe.latency_ms),
            r.cooldown.map_or_else(String::new, |c| {
                format!("until {} ({})", rfc3339(c.until), c.cause.as_str())
            }),
        ]);
    }
    t.to_string()
}
