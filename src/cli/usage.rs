//! `vault usage`: usage history. `import claude-code` backfills from Claude
//! Code transcripts; `daily`, `monthly` and `session` report (with `--json`
//! in the shapes of `ccusage claude daily|monthly|session --json`);
//! `prices` shows the price table, `reprice` applies it to stored usage;
//! `rebuild` recomputes the hourly rollup.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::model::Provider;
use authvault::store::{Store, UsageFilter};
use authvault::terminal::escape;
use authvault::usage::import::{self, ImportReport};
use authvault::usage::price::PriceTable;
use authvault::usage::query::{Group, Query, Row, Sums, Zone};
use authvault::usage::{Tokens, pico_to_usd};
use chrono::{NaiveDate, SecondsFormat};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Read usage from agent logs into the vault (only what is new).
    Import(ImportArgs),
    /// Usage per local day.
    Daily(ReportArgs),
    /// Usage per local month.
    Monthly(ReportArgs),
    /// Usage per session, most expensive first.
    Session(ReportArgs),
    /// Recompute the hourly rollup from the stored events.
    Rebuild,
    /// Show the price table in use (version, date, models priced); `load
    /// FILE` to use a newer LiteLLM table, `reset` for the built-in one.
    Prices(PricesArgs),
    /// Recompute stored costs with the price table in use.
    Reprice,
}

#[derive(Debug, clap::Args)]
struct PricesArgs {
    #[command(subcommand)]
    action: Option<PricesAction>,
}

#[derive(Debug, clap::Subcommand)]
enum PricesAction {
    /// Use the LiteLLM price table in FILE (model_prices_and_context_window.json
    /// or a part of it) from now on; `vault usage reprice` applies it to
    /// stored usage.
    Load {
        /// The table.
        file: PathBuf,
        /// Its version, recorded with every cost [default: the table's
        /// `authvault_price_table.version`, else `loaded-DATE`].
        #[arg(long, value_name = "V")]
        version: Option<String>,
    },
    /// Forget the loaded table: the one built into this release applies.
    Reset,
}

/// The largest price table `prices load` reads (LiteLLM's whole file is
/// about 1.5 MiB).
const MAX_TABLE: u64 = 32 << 20;

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// First day (YYYY-MM-DD or YYYYMMDD, inclusive; sessions: of their last activity).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD or YYYYMMDD, inclusive).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    until: Option<NaiveDate>,
    /// IANA time zone of days and months [default: the system's].
    #[arg(long, value_name = "TZ", value_parser = parse_zone)]
    timezone: Option<Zone>,
    /// Only this provider (claude, openai).
    #[arg(long, value_name = "P")]
    provider: Option<Provider>,
    /// Only this account.
    #[arg(long, value_name = "L")]
    account: Option<String>,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
        .map_err(|_| format!("`{s}` is not a date: write YYYY-MM-DD"))
}

fn parse_zone(s: &str) -> Result<Zone, String> {
    Zone::named(s).ok_or_else(|| {
        format!("`{s}` is not an IANA time zone: write for example UTC or Europe/Berlin")
    })
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    #[command(subcommand)]
    from: From,
}

#[derive(Debug, clap::Subcommand)]
enum From {
    /// Claude Code transcripts: DIR… (each a config directory or its
    /// `projects/`), else CLAUDE_CONFIG_DIR (comma list), else
    /// ~/.config/claude and ~/.claude.
    ClaudeCode {
        /// Directories to read instead of the defaults.
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Attribute every event to this account.
        #[arg(long, value_name = "L")]
        account: Option<String>,
    },
    /// Codex rollouts: DIR… (each a CODEX_HOME, read through its
    /// `sessions/` and `archived_sessions/`), else CODEX_HOME or ~/.codex.
    Codex {
        /// Directories to read instead of the default.
        #[arg(value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Attribute every event to this account.
        #[arg(long, value_name = "L")]
        account: Option<String>,
    },
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let mut store = ctx.unlock()?;
    match &args.command {
        Command::Import(ImportArgs {
            from: From::ClaudeCode { dirs, account },
        }) => {
            let configured = if dirs.is_empty() {
                &ctx.config.claude_usage_roots
            } else {
                dirs
            };
            let roots = import::claude_code_roots(configured, &[]);
            if roots.is_empty() {
                anyhow::bail!(
                    "no Claude Code `projects/` directory in {}; name one: `vault usage import claude-code DIR`",
                    configured
                        .iter()
                        .map(|p| escape(&p.display().to_string()).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let prices = authvault::usage::price_table(&mut store)?;
            let report =
                import::import_claude_code(&mut store, &roots, account.as_deref(), &prices)?;
            ctx.emit(&report, || describe(&report))?;
        }
        Command::Import(ImportArgs {
            from: From::Codex { dirs, account },
        }) => {
            let homes = if dirs.is_empty() {
                std::slice::from_ref(&ctx.config.codex_home)
            } else {
                dirs.as_slice()
            };
            let roots = import::codex_roots(homes);
            if roots.is_empty() {
                anyhow::bail!(
                    "no Codex sessions directory in {}; name one: `vault usage import codex DIR`",
                    homes
                        .iter()
                        .map(|p| escape(&p.display().to_string()).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let prices = authvault::usage::price_table(&mut store)?;
            let report = import::import_codex(&mut store, &roots, account.as_deref(), &prices)?;
            ctx.emit(&report, || describe(&report))?;
        }
        Command::Daily(r) => report(ctx, &mut store, r, Kind::Daily)?,
        Command::Monthly(r) => report(ctx, &mut store, r, Kind::Monthly)?,
        Command::Session(r) => report(ctx, &mut store, r, Kind::Session)?,
        Command::Prices(PricesArgs { action }) => prices(ctx, &mut store, action.as_ref())?,
        Command::Reprice => {
            let t = &authvault::usage::price_table(&mut store)?;
            let (events, changed) = store.reprice_usage(t.version(), |source, model, tokens| {
                t.event_cost(source, model, tokens)
            })?;
            let value = json!({ "version": t.version(), "events": events, "changed": changed });
            ctx.emit(&value, || {
                format!(
                    "Priced {events} events with table {}: {changed} costs changed.",
                    t.version()
                )
            })?;
        }
        Command::Rebuild => {
            let rows = store.rebuild_usage_rollups()?;
            ctx.emit(&serde_json::json!({ "rollup_rows": rows }), || {
                format!("Rebuilt the hourly rollup: {rows} rows.")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(r: &ImportReport) -> String {
    let mut out = format!(
        "Read {} new lines from {} of {} files: {} usage events, {} new, {} replaced by a larger copy, {} already stored.",
        r.lines,
        r.files_read,
        r.files,
        r.events,
        r.written.added,
        r.written.replaced,
        r.written.unchanged
    );
    if r.files_reread > 0 {
        let _ = write!(
            out,
            "\n{} replaced or shrunk files were read again from the start.",
            r.files_reread
        );
    }
    for bad in &r.bad {
        let _ = write!(
            out,
            "\n{}: {} lines could not be read",
            escape(&bad.path.display().to_string()),
            bad.count
        );
        for l in &bad.lines {
            let _ = write!(out, "\n  line {}: {}", l.line, escape(&l.reason));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Daily,
    Monthly,
    Session,
}

/// ccusage's token fields for `tokens` (cache creation = both cache writes).
fn token_fields(tokens: &Tokens) -> serde_json::Map<String, Value> {
    let Value::Object(map) = json!({
        "inputTokens": tokens.input,
        "outputTokens": tokens.output,
        "cacheCreationTokens": tokens.cache_write(),
        "cacheReadTokens": tokens.cache_read,
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

fn totals(sums: &Sums) -> Value {
    let mut map = token_fields(&sums.tokens);
    map.insert("totalTokens".into(), json!(sums.tokens.total()));
    map.insert("totalCost".into(), json!(sums.cost_usd()));
    Value::Object(map)
}

/// Models by cost, most expensive first (ccusage's `modelBreakdowns` order).
fn by_cost(row: &Row) -> Vec<(&String, &Sums)> {
    let mut models: Vec<_> = row.models.iter().collect();
    models.sort_by(|a, b| b.1.cost_pico.cmp(&a.1.cost_pico).then(a.0.cmp(b.0)));
    models
}

fn row_json(row: &Row, kind: Kind) -> Value {
    let Value::Object(mut map) = totals(&row.sums) else {
        unreachable!("totals are an object")
    };
    let breakdowns: Vec<Value> = by_cost(row)
        .into_iter()
        .map(|(name, sums)| {
            let mut m = token_fields(&sums.tokens);
            m.insert("modelName".into(), json!(name));
            m.insert("cost".into(), json!(sums.cost_usd()));
            Value::Object(m)
        })
        .collect();
    map.insert("modelBreakdowns".into(), Value::Array(breakdowns));
    map.insert("modelsUsed".into(), json!(row.models_used));
    let millis = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    match kind {
        Kind::Daily => {
            map.insert("date".into(), json!(row.key[0]));
        }
        Kind::Monthly => {
            map.insert("month".into(), json!(row.key[0]));
        }
        Kind::Session => {
            map.insert("sessionId".into(), json!(row.key[0]));
            map.insert(
                "projectPath".into(),
                json!(row.project.as_deref().unwrap_or("-")),
            );
            map.insert("firstActivity".into(), json!(millis(row.first)));
            map.insert("lastActivity".into(), json!(millis(row.last)));
        }
    }
    Value::Object(map)
}

/// A count with thousands separators.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn dollars(pico: u64) -> String {
    format!("${:.2}", pico_to_usd(pico))
}

fn report(ctx: &Ctx, store: &mut Store, args: &ReportArgs, kind: Kind) -> Result<()> {
    let query = Query {
        since: args.since,
        until: args.until,
        zone: args.timezone.unwrap_or_default(),
        filter: UsageFilter {
            provider: args.provider,
            account: args.account.clone(),
            ..UsageFilter::default()
        },
        group_by: vec![match kind {
            Kind::Daily => Group::Day,
            Kind::Monthly => Group::Month,
            Kind::Session => Group::Session,
        }],
    };
    let mut result = query.run(store)?;
    if kind == Kind::Session {
        result.rows.retain(|r| r.tokens.total() > 0);
        result
            .rows
            .sort_by(|a, b| b.cost_pico.cmp(&a.cost_pico).then(a.key.cmp(&b.key)));
    }
    let rows: Vec<Value> = result.rows.iter().map(|r| row_json(r, kind)).collect();
    let name = match kind {
        Kind::Daily => "daily",
        Kind::Monthly => "monthly",
        Kind::Session => "sessions",
    };
    let value = json!({ name: rows, "totals": totals(&result.total) });
    ctx.emit(&value, || {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let first = match kind {
            Kind::Daily => "Date",
            Kind::Monthly => "Month",
            Kind::Session => "Session",
        };
        table.set_header([
            first,
            "Models",
            "Input",
            "Output",
            "Cache create",
            "Cache read",
            "Total tokens",
            "Cost (USD)",
        ]);
        let line = |key: String, models: String, s: &Sums| {
            vec![
                key,
                models,
                count(s.tokens.input),
                count(s.tokens.output),
                count(s.tokens.cache_write()),
                count(s.tokens.cache_read),
                count(s.tokens.total()),
                dollars(s.cost_pico),
            ]
        };
        for r in &result.rows {
            let key = match kind {
                Kind::Session => format!(
                    "{}\n{}",
                    escape(&r.key[0]),
                    escape(r.project.as_deref().unwrap_or("-"))
                ),
                _ => escape(&r.key[0]).into_owned(),
            };
            let models = r
                .models_used
                .iter()
                .map(|m| escape(m).into_owned())
                .collect::<Vec<_>>()
                .join("\n");
            table.add_row(line(key, models, &r.sums));
        }
        table.add_row(line("Total".into(), String::new(), &result.total));
        table.to_string()
    })
}

fn prices(ctx: &Ctx, store: &mut Store, action: Option<&PricesAction>) -> Result<()> {
    match action {
        None => {}
        Some(PricesAction::Reset) => {
            store.reset_price_table()?;
        }
        Some(PricesAction::Load { file, version }) => {
            let shown = escape(&file.display().to_string()).into_owned();
            let size = std::fs::metadata(file)
                .with_context(|| format!("reading {shown}"))?
                .len();
            anyhow::ensure!(
                size <= MAX_TABLE,
                "{shown} is {size} bytes; a price table has at most {MAX_TABLE}"
            );
            let body = std::fs::read_to_string(file).with_context(|| format!("reading {shown}"))?;
            let fallback = version
                .clone()
                .unwrap_or_else(|| format!("loaded-{}", chrono::Utc::now().format("%Y-%m-%d")));
            let table = PriceTable::from_json(&body, &fallback)
                .with_context(|| format!("{shown} was not loaded"))?;
            anyhow::ensure!(
                !table.is_empty(),
                "{shown} was not loaded: it prices no model (entries need input_cost_per_token and output_cost_per_token)"
            );
            let version = version.as_deref().unwrap_or(table.version());
            store.load_price_table(version, &body)?;
        }
    }
    let t = authvault::usage::price_table(store)?;
    let value = json!({ "version": t.version(), "date": t.date(), "models": t.len() });
    ctx.emit(&value, || {
            format!(
                "Price table {} ({}), {} models. Nothing is fetched: `vault usage prices load FILE` takes a newer LiteLLM table; `vault usage reprice` applies it to stored usage.",
                escape(t.version()),
                escape(t.date().unwrap_or("undated")),
                t.len()
            )
        })?;
    Ok(())
}
