//! `vault usage`: usage history. `import claude-code` backfills from Claude
//! Code transcripts, `import codex` from Codex rollouts; `daily`, `weekly`,
//! `monthly` and `session` report (with `--json` in the shapes of `ccusage
//! claude daily|weekly|monthly|session --json`, or of `ccusage codex
//! daily|monthly|session --json` with `--provider openai`);
//! `prices` shows the price table, `reprice` applies it to stored usage;
//! `rebuild` recomputes the hourly rollup.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::model::Provider;
use authvault::store::{Store, UsageFilter};
use authvault::terminal::escape;
use authvault::usage::blocks::Block;
use authvault::usage::import::{self, ImportReport};
use authvault::usage::price::PriceTable;
use authvault::usage::query::{Group, Query, Report, Row, Sums, Zone};
use authvault::usage::{Tokens, pico_to_usd};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc, Weekday};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};

use super::progress::Bar;
use super::{Ctx, print_out};

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
    /// Usage per local week (starting on Sunday unless `--start-of-week`).
    Weekly(WeeklyArgs),
    /// Usage per local month.
    Monthly(ReportArgs),
    /// Usage per billing cycle: a month starting on `--start-day` (the last
    /// day of a month too short for it).
    Cycle(CycleArgs),
    /// Usage per session, most expensive first.
    Session(ReportArgs),
    /// Usage per 5-hour billing block (Claude's usage windows), with the
    /// running block's burn rate and projection.
    Blocks(BlocksArgs),
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
struct Range {
    /// First day (YYYY-MM-DD or YYYYMMDD, inclusive; sessions: of their last activity).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD or YYYYMMDD, inclusive).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    until: Option<NaiveDate>,
    /// IANA time zone of days, weeks and months [default: the system's].
    #[arg(long, value_name = "TZ", value_parser = parse_zone)]
    timezone: Option<Zone>,
    /// Only this provider (claude, openai).
    #[arg(long, value_name = "P")]
    provider: Option<Provider>,
    /// Only this account.
    #[arg(long, value_name = "L")]
    account: Option<String>,
    /// Print CSV (a header line, one line per row, no totals) instead of a table.
    #[arg(long)]
    csv: bool,
}

impl Range {
    fn query(&self, group_by: Vec<Group>) -> Query {
        Query {
            since: self.since,
            until: self.until,
            zone: self.timezone.unwrap_or_default(),
            filter: UsageFilter {
                provider: self.provider,
                account: self.account.clone(),
                ..UsageFilter::default()
            },
            group_by,
        }
    }
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    range: Range,
    /// Split each row by these dimensions (comma list or repeated).
    #[arg(long, value_name = "DIM", value_delimiter = ',')]
    by: Vec<By>,
}

#[derive(Debug, clap::Args)]
struct WeeklyArgs {
    #[command(flatten)]
    report: ReportArgs,
    /// The first day of a week (monday, sunday, …).
    #[arg(long, short = 'w', value_name = "DAY", default_value = "sunday")]
    start_of_week: Weekday,
}

#[derive(Debug, clap::Args)]
struct CycleArgs {
    #[command(flatten)]
    report: ReportArgs,
    /// The day of the month a cycle starts on (1–31).
    #[arg(long, value_name = "DAY", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=31))]
    start_day: u32,
}

#[derive(Debug, clap::Args)]
struct BlocksArgs {
    #[command(flatten)]
    range: Range,
    /// Block length in hours.
    #[arg(long, short = 'n', value_name = "HOURS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=168))]
    session_length: u32,
}

/// A dimension rows can be split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    Account,
    Provider,
    Model,
    Agent,
    Task,
    Project,
}

impl By {
    const fn group(self) -> Group {
        match self {
            Self::Account => Group::Account,
            Self::Provider => Group::Provider,
            Self::Model => Group::Model,
            Self::Agent => Group::Agent,
            Self::Task => Group::Task,
            Self::Project => Group::Project,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Provider => "provider",
            Self::Model => "model",
            Self::Agent => "agent",
            Self::Task => "task",
            Self::Project => "project",
        }
    }
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
            let mut bar = Bar::on_stderr(ctx.json);
            let report = import::import_claude_code(
                &mut store,
                &roots,
                account.as_deref(),
                &prices,
                &mut |p| bar.show(p),
            );
            drop(bar);
            let report = report?;
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
            let mut bar = Bar::on_stderr(ctx.json);
            let report =
                import::import_codex(&mut store, &roots, account.as_deref(), &prices, &mut |p| {
                    bar.show(p);
                });
            drop(bar);
            let report = report?;
            ctx.emit(&report, || describe(&report))?;
        }
        Command::Daily(r) => report(ctx, &mut store, r, Kind::Daily)?,
        Command::Weekly(w) => report(ctx, &mut store, &w.report, Kind::Weekly(w.start_of_week))?,
        Command::Monthly(r) => report(ctx, &mut store, r, Kind::Monthly)?,
        Command::Cycle(c) => report(ctx, &mut store, &c.report, Kind::Cycle(c.start_day))?,
        Command::Session(r) => report(ctx, &mut store, r, Kind::Session)?,
        Command::Blocks(b) => blocks(ctx, &mut store, b)?,
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
    Weekly(Weekday),
    Monthly,
    Cycle(u32),
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

/// The JSON shape of a report: `ccusage claude`'s, or `ccusage codex`'s
/// for `--provider openai` (Codex data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Claude,
    Codex,
}

impl Shape {
    fn of(range: &Range) -> Self {
        if range.provider == Some(Provider::OpenAi) {
            Self::Codex
        } else {
            Self::Claude
        }
    }
}

/// `ccusage codex`'s token fields: ccusage's, reasoning and the total.
fn codex_token_fields(tokens: &Tokens) -> serde_json::Map<String, Value> {
    let mut map = token_fields(tokens);
    map.insert("reasoningOutputTokens".into(), json!(tokens.reasoning));
    map.insert("totalTokens".into(), json!(tokens.total()));
    map
}

fn totals(sums: &Sums, shape: Shape) -> Value {
    let map = match shape {
        Shape::Claude => {
            let mut map = token_fields(&sums.tokens);
            map.insert("totalTokens".into(), json!(sums.tokens.total()));
            map.insert("totalCost".into(), json!(sums.cost_usd()));
            map
        }
        Shape::Codex => {
            let mut map = codex_token_fields(&sums.tokens);
            map.insert("costUSD".into(), json!(sums.cost_usd()));
            map
        }
    };
    Value::Object(map)
}

/// Models by cost, most expensive first (ccusage's `modelBreakdowns` order).
fn by_cost(row: &Row) -> Vec<(&String, &Sums)> {
    let mut models: Vec<_> = row.models.iter().collect();
    models.sort_by(|a, b| b.1.cost_pico.cmp(&a.1.cost_pico).then(a.0.cmp(b.0)));
    models
}

/// `ccusage claude`'s per-model fields: `modelBreakdowns` and `modelsUsed`.
fn claude_models(row: &Row, map: &mut serde_json::Map<String, Value>) {
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
}

/// `ccusage codex`'s `models`: tokens by model name. `isFallback` is
/// always false: the vault keeps the model a response is counted as
/// (`gpt-5` when the rollout named none), not whether it was assumed.
fn codex_models(row: &Row) -> Value {
    let models: serde_json::Map<String, Value> = row
        .models
        .iter()
        .map(|(name, sums)| {
            let mut m = codex_token_fields(&sums.tokens);
            m.insert("isFallback".into(), json!(false));
            (name.clone(), Value::Object(m))
        })
        .collect();
    Value::Object(models)
}

fn row_json(row: &Row, kind: Kind, by: &[By], shape: Shape) -> Value {
    let Value::Object(mut map) = totals(&row.sums, shape) else {
        unreachable!("totals are an object")
    };
    match shape {
        Shape::Claude => claude_models(row, &mut map),
        Shape::Codex => {
            map.insert("models".into(), codex_models(row));
        }
    }
    match kind {
        Kind::Daily => {
            map.insert("date".into(), json!(row.key[0]));
        }
        Kind::Weekly(_) => {
            map.insert("week".into(), json!(row.key[0]));
        }
        Kind::Monthly => {
            map.insert("month".into(), json!(row.key[0]));
        }
        Kind::Cycle(_) => {
            map.insert("cycle".into(), json!(row.key[0]));
        }
        Kind::Session => {
            let id = &row.key[0];
            map.insert("sessionId".into(), json!(id));
            map.insert("lastActivity".into(), json!(millis(row.last)));
            match shape {
                Shape::Claude => {
                    map.insert(
                        "projectPath".into(),
                        json!(row.project.as_deref().unwrap_or("-")),
                    );
                    map.insert("firstActivity".into(), json!(millis(row.first)));
                }
                Shape::Codex => {
                    // The rollout's directory below `sessions/` and its
                    // file name without `.jsonl`.
                    let (directory, file) = id.rsplit_once('/').unwrap_or(("", id));
                    map.insert("directory".into(), json!(directory));
                    map.insert("sessionFile".into(), json!(file));
                }
            }
        }
    }
    for (dim, value) in by.iter().zip(&row.key[1..]) {
        map.insert(dim.name().into(), json!(value));
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

impl Kind {
    const fn group(self) -> Group {
        match self {
            Self::Daily => Group::Day,
            Self::Weekly(first) => Group::Week(first),
            Self::Monthly => Group::Month,
            Self::Cycle(day) => Group::Cycle(day),
            Self::Session => Group::Session,
        }
    }

    /// ccusage's name of the rows array and of the row key.
    const fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Daily => ("daily", "date"),
            Self::Weekly(_) => ("weekly", "week"),
            Self::Monthly => ("monthly", "month"),
            Self::Cycle(_) => ("cycles", "cycle"),
            Self::Session => ("sessions", "sessionId"),
        }
    }
}

/// One CSV field, quoted when it has to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_line(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// `--csv` and `--json` together are a contradiction.
fn no_json_with_csv(ctx: &Ctx, range: &Range) -> Result<()> {
    anyhow::ensure!(
        !(range.csv && ctx.json),
        "--csv and --json cannot be used together: choose one"
    );
    Ok(())
}

const CSV_TOKENS: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_usd",
];

fn csv_tokens(s: &Sums) -> [String; 6] {
    [
        s.tokens.input.to_string(),
        s.tokens.output.to_string(),
        s.tokens.cache_write().to_string(),
        s.tokens.cache_read.to_string(),
        s.tokens.total().to_string(),
        s.cost_usd().to_string(),
    ]
}

fn report(ctx: &Ctx, store: &mut Store, args: &ReportArgs, kind: Kind) -> Result<()> {
    no_json_with_csv(ctx, &args.range)?;
    let mut group_by = vec![kind.group()];
    group_by.extend(args.by.iter().map(|b| b.group()));
    let mut result = args.range.query(group_by).run(store)?;
    let shape = Shape::of(&args.range);
    if kind == Kind::Session {
        result.rows.retain(|r| r.tokens.total() > 0);
        // ccusage claude lists sessions by cost, ccusage codex by id (the
        // query's order).
        if shape == Shape::Claude {
            result
                .rows
                .sort_by(|a, b| b.cost_pico.cmp(&a.cost_pico).then(a.key.cmp(&b.key)));
        }
    }
    let name = kind.names().0;
    if args.range.csv {
        return print_out(&report_csv(&result, kind, &args.by));
    }
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|r| row_json(r, kind, &args.by, shape))
        .collect();
    let value = json!({ name: rows, "totals": totals(&result.total, shape) });
    ctx.emit(&value, || {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let first = match kind {
            Kind::Daily => "Date",
            Kind::Weekly(_) => "Week",
            Kind::Monthly => "Month",
            Kind::Cycle(_) => "Cycle",
            Kind::Session => "Session",
        };
        let mut header = vec![first.to_owned()];
        header.extend(args.by.iter().map(|b| {
            let n = b.name();
            n[..1].to_uppercase() + &n[1..]
        }));
        header.extend(
            [
                "Models",
                "Input",
                "Output",
                "Cache create",
                "Cache read",
                "Total tokens",
                "Cost (USD)",
            ]
            .map(String::from),
        );
        table.set_header(header);
        let line = |keys: Vec<String>, models: String, s: &Sums| {
            let mut cells = keys;
            cells.extend([
                models,
                count(s.tokens.input),
                count(s.tokens.output),
                count(s.tokens.cache_write()),
                count(s.tokens.cache_read),
                count(s.tokens.total()),
                dollars(s.cost_pico),
            ]);
            cells
        };
        for r in &result.rows {
            let mut keys = vec![match kind {
                Kind::Session => format!(
                    "{}\n{}",
                    escape(&r.key[0]),
                    escape(r.project.as_deref().unwrap_or("-"))
                ),
                _ => escape(&r.key[0]).into_owned(),
            }];
            keys.extend(r.key[1..].iter().map(|k| escape(k).into_owned()));
            let models = r
                .models_used
                .iter()
                .map(|m| escape(m).into_owned())
                .collect::<Vec<_>>()
                .join("\n");
            table.add_row(line(keys, models, &r.sums));
        }
        let mut keys = vec!["Total".to_owned()];
        keys.extend(args.by.iter().map(|_| String::new()));
        table.add_row(line(keys, String::new(), &result.total));
        table.to_string()
    })
}

/// The report as CSV: a header line, then one line per row.
fn report_csv(result: &Report, kind: Kind, by: &[By]) -> String {
    let key = kind.names().1;
    let mut header: Vec<String> = vec![key.into()];
    if kind == Kind::Session {
        header.extend(["projectPath", "firstActivity", "lastActivity"].map(String::from));
    }
    header.extend(by.iter().map(|b| b.name().to_owned()));
    header.push("models".into());
    header.extend(CSV_TOKENS.map(String::from));
    let mut out = vec![csv_line(&header)];
    for r in &result.rows {
        let mut fields = vec![r.key[0].clone()];
        if kind == Kind::Session {
            fields.push(r.project.clone().unwrap_or_else(|| "-".into()));
            fields.push(millis(r.first));
            fields.push(millis(r.last));
        }
        fields.extend(r.key[1..].iter().cloned());
        fields.push(r.models_used.join(" "));
        fields.extend(csv_tokens(&r.sums));
        out.push(csv_line(&fields));
    }
    out.join("\n")
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `vault usage blocks`: with `--json`, the shape of `ccusage claude blocks
/// --json`.
fn blocks(ctx: &Ctx, store: &mut Store, args: &BlocksArgs) -> Result<()> {
    no_json_with_csv(ctx, &args.range)?;
    let query = args.range.query(Vec::new());
    let events = query.events(store)?;
    let length = TimeDelta::hours(i64::from(args.session_length));
    let list = authvault::usage::blocks::blocks(&events, length, Utc::now());
    if args.range.csv {
        return print_out(&blocks_csv(&list));
    }
    let value: Vec<Value> = list
        .iter()
        .map(|b| {
            let t = &b.sums.tokens;
            json!({
                "id": block_id(b),
                "startTime": millis(b.start),
                "endTime": millis(b.end),
                "actualEndTime": b.last.map(millis),
                "isActive": b.is_active,
                "isGap": b.is_gap,
                "entries": b.sums.events,
                "costUSD": b.sums.cost_usd(),
                "models": b.models,
                "tokenCounts": {
                    "inputTokens": t.input,
                    "outputTokens": t.output,
                    "cacheCreationInputTokens": t.cache_write(),
                    "cacheReadInputTokens": t.cache_read,
                },
                "totalTokens": t.total(),
                "burnRate": b.burn_rate.map(|r| json!({
                    "tokensPerMinute": r.tokens_per_minute,
                    "tokensPerMinuteForIndicator": r.tokens_per_minute_for_indicator,
                    "costPerHour": r.cost_per_hour,
                })),
                "projection": b.projection.map(|p| json!({
                    "remainingMinutes": p.remaining_minutes,
                    "totalTokens": p.total_tokens,
                    "totalCost": p.total_cost,
                })),
            })
        })
        .collect();
    ctx.emit(&json!({ "blocks": value }), || blocks_table(&list))
}

/// Blocks as CSV: a header line, then one line per block or gap.
fn blocks_csv(list: &[Block]) -> String {
    let mut header: Vec<String> = [
        "id",
        "startTime",
        "endTime",
        "actualEndTime",
        "isActive",
        "isGap",
        "entries",
        "models",
    ]
    .map(String::from)
    .to_vec();
    header.extend(CSV_TOKENS.map(String::from));
    let mut out = vec![csv_line(&header)];
    for b in list {
        let mut fields = vec![
            block_id(b),
            millis(b.start),
            millis(b.end),
            b.last.map(millis).unwrap_or_default(),
            b.is_active.to_string(),
            b.is_gap.to_string(),
            b.sums.events.to_string(),
            b.models.join(" "),
        ];
        fields.extend(csv_tokens(&b.sums));
        out.push(csv_line(&fields));
    }
    out.join("\n")
}

/// ccusage's `id` of a block: its start, `gap-` before it for a gap.
fn block_id(b: &Block) -> String {
    if b.is_gap {
        format!("gap-{}", millis(b.start))
    } else {
        millis(b.start)
    }
}

fn blocks_table(list: &[Block]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "Block start (UTC)",
        "Duration / status",
        "Models",
        "Tokens",
        "Cost (USD)",
    ]);
    for b in list {
        let status = if b.is_gap {
            format!("gap ({} h)", (b.end - b.start).num_hours())
        } else if b.is_active {
            let left = (b.end - Utc::now()).num_minutes().max(0);
            let mut s = format!("ACTIVE, {}h {:02}m left", left / 60, left % 60);
            if let (Some(r), Some(p)) = (b.burn_rate, b.projection) {
                let _ = write!(
                    s,
                    "\n{} tokens/min, ${:.2}/h\nprojected {} tokens, ${:.2}",
                    count(r.tokens_per_minute.round() as u64),
                    r.cost_per_hour,
                    count(p.total_tokens),
                    p.total_cost
                );
            }
            s
        } else {
            let m = b
                .last
                .zip(b.first)
                .map_or(0, |(l, f)| (l - f).num_minutes());
            format!("{}h {:02}m", m / 60, m % 60)
        };
        table.add_row([
            b.start.format("%Y-%m-%d %H:%M").to_string(),
            status,
            b.models
                .iter()
                .map(|m| escape(m).into_owned())
                .collect::<Vec<_>>()
                .join("\n"),
            count(b.sums.tokens.total()),
            dollars(b.sums.cost_pico),
        ]);
    }
    table.to_string()
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
