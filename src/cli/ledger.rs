//! `vault reserve`, `vault commit`, `vault release`: the quota ledger from a
//! script. `reserve` prints only the reservation id (text) so that
//! `id=$(vault reserve …)` works; budget notices go to stderr.

use std::process::ExitCode;

use anyhow::Result;
use authvault::quota;
use authvault::store::{Notice, Usage};
use chrono::TimeDelta;

use super::{Ctx, print_warn};

#[derive(Debug, clap::Args)]
pub struct ReserveArgs {
    /// The account to reserve on.
    #[arg(long, value_name = "LABEL")]
    account: String,
    /// Tokens to reserve.
    #[arg(long, value_name = "N")]
    tokens: u64,
    /// The agent reserving [default: AUTHVAULT_AGENT_ID, if set].
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,
    /// How long the reservation holds without a commit or release: 90s, 10m, 2h.
    #[arg(long, default_value = "10m", value_parser = quota::parse_ttl, value_name = "DURATION")]
    ttl: TimeDelta,
}

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The reservation id `vault reserve` printed.
    id: i64,
    /// Input tokens used.
    #[arg(long, value_name = "N")]
    input: u64,
    /// Output tokens used.
    #[arg(long, value_name = "N")]
    output: u64,
    /// Tokens read from the prompt cache.
    #[arg(long, value_name = "N", default_value_t = 0)]
    cache_read: u64,
    /// Tokens written to the prompt cache.
    #[arg(long, value_name = "N", default_value_t = 0)]
    cache_write: u64,
    /// The model used.
    #[arg(long, value_name = "M")]
    model: Option<String>,
    /// What the request cost in US dollars (counted by USD budgets).
    #[arg(long, value_name = "X", value_parser = quota::parse_usd)]
    usd: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The reservation id `vault reserve` printed.
    id: i64,
}

fn tell(notices: &[Notice]) {
    for n in notices {
        print_warn(&format!(
            "notice: {} reached {} % ({} of {})",
            n.budget, n.threshold, n.level, n.limit
        ));
    }
}

pub fn reserve(ctx: &Ctx, args: &ReserveArgs) -> Result<ExitCode> {
    let agent = args.agent.as_deref().or(ctx.config.agent_id.as_deref());
    let mut store = ctx.unlock()?;
    let r = store.reserve(&args.account, agent, args.tokens, args.ttl)?;
    tell(&r.notices);
    ctx.emit(&r, || r.id.to_string())?;
    Ok(ExitCode::SUCCESS)
}

pub fn commit(ctx: &Ctx, args: &CommitArgs) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let usage = Usage {
        input: args.input,
        output: args.output,
        cache_read: args.cache_read,
        cache_write: args.cache_write,
        model: args.model.clone(),
        usd_micros: args.usd,
    };
    let s = store.commit_reservation(args.id, &usage)?;
    tell(&s.notices);
    ctx.emit(&s, || {
        format!(
            "Committed reservation {}: {} tokens used of {} reserved.",
            s.id, s.used, s.reserved
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn release(ctx: &Ctx, args: &ReleaseArgs) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    let s = store.release_reservation(args.id)?;
    ctx.emit(&s, || {
        format!("Released reservation {} ({} tokens).", s.id, s.reserved)
    })?;
    Ok(ExitCode::SUCCESS)
}
