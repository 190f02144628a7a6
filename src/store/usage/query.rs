//! Reading usage back: single events (for sessions, projects and zones whose
//! offset is not whole hours) and the hourly rollup (for everything else).
//! Grouping and time zones are the library query's business
//! ([`crate::usage::query`]); this file only filters and decodes.

use std::collections::HashMap;
use std::ops::ControlFlow;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::ExposeSecret;

use super::{Keys, Store, project_place, time};
use crate::db::{Arg, Row, Tx, Value, args};
use crate::error::{Error, Result};
use crate::model::Provider;
use crate::model::usage::{Source, Tokens};
use crate::store::during;

/// Which events to read. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// One provider.
    pub provider: Option<Provider>,
    /// One account, by label.
    pub account: Option<String>,
    /// One source.
    pub source: Option<Source>,
    /// One model, by exact name.
    pub model: Option<String>,
    /// One agent.
    pub agent: Option<String>,
    /// One task type.
    pub task_type: Option<String>,
    /// One session.
    pub session: Option<String>,
    /// One project, by exact text.
    pub project: Option<String>,
}

impl UsageFilter {
    /// Whether the filter needs the events (the rollup does not keep
    /// sessions or projects).
    #[must_use]
    pub const fn needs_events(&self) -> bool {
        self.session.is_some() || self.project.is_some()
    }
}

/// One event or one hour's sum, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// When (for a rollup row: the start of its UTC hour).
    pub at: DateTime<Utc>,
    /// Provider.
    pub provider: Provider,
    /// The account's label; `None` when unattributed (or removed since).
    pub account: Option<String>,
    /// Model.
    pub model: String,
    /// Agent.
    pub agent: Option<String>,
    /// Task type.
    pub task_type: Option<String>,
    /// Session (`None` for rollup rows).
    pub session: Option<String>,
    /// Project, opened (`None` for rollup rows).
    pub project: Option<String>,
    /// Source.
    pub source: Source,
    /// Events summed in this row (1 for an event).
    pub events: u64,
    /// Tokens.
    pub tokens: Tokens,
    /// Cost in pico-dollars.
    pub cost_pico: u64,
}

/// The WHERE clause and its parameters for `filter` over a table whose
/// time column is `time_col`.
fn conditions(
    tx: &Tx<'_>,
    keys: &Keys,
    filter: &UsageFilter,
    time_col: &str,
    time_of: fn(DateTime<Utc>) -> String,
) -> Result<(String, Vec<Value>)> {
    let mut sql = vec!["1 = 1".to_owned()];
    let mut args: Vec<Value> = Vec::new();
    // `?N` in a condition becomes its argument's number.
    let mut push = |cond: String, arg: Value| {
        args.push(arg);
        sql.push(cond.replace("?N", &format!("?{}", args.len())));
    };
    if let Some(t) = filter.from {
        push(format!("u.{time_col} >= ?N"), Value::Text(time_of(t)));
    }
    if let Some(t) = filter.until {
        push(format!("u.{time_col} < ?N"), Value::Text(time_of(t)));
    }
    if let Some(p) = filter.provider {
        push("u.provider = ?N".into(), Value::Text(p.as_str().to_owned()));
    }
    if let Some(label) = &filter.account {
        let id = super::find_account(tx, keys, label)?.id;
        push("u.account_id = ?N".into(), Value::I64(id));
    }
    if let Some(s) = filter.source {
        push("u.source = ?N".into(), Value::Text(s.as_str().to_owned()));
    }
    if let Some(m) = &filter.model {
        push("u.model = ?N".into(), Value::Text(m.clone()));
    }
    if let Some(a) = &filter.agent {
        push("u.agent = ?N".into(), Value::Text(a.clone()));
    }
    if let Some(t) = &filter.task_type {
        push("u.task_type = ?N".into(), Value::Text(t.clone()));
    }
    if let Some(s) = &filter.session {
        push("u.session = ?N".into(), Value::Text(s.clone()));
    }
    if let Some(p) = &filter.project {
        let fingerprint = keys.fingerprint(&[b"usage-project", p.as_bytes()]);
        push(
            "u.project_id = (SELECT id FROM usage_projects WHERE fingerprint = ?N)".into(),
            Value::Text(fingerprint),
        );
    }
    Ok((sql.join(" AND "), args))
}

/// The start of a rollup hour, `YYYY-MM-DDTHH` (read per row: no format
/// string parser).
fn hour_start(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let field = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if b.len() != 13 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(field(0..4)?).ok()?,
        field(5..7)?,
        field(8..10)?,
    )?;
    Some(date.and_hms_opt(field(11..13)?, 0, 0)?.and_utc())
}

fn count(r: &Row<'_>, i: usize) -> Result<u64> {
    Ok(r.get::<i64>(i)?.cast_unsigned())
}

fn tokens(r: &Row<'_>, first: usize) -> Result<Tokens> {
    Ok(Tokens {
        input: count(r, first)?,
        cache_read: count(r, first + 1)?,
        cache_write_5m: count(r, first + 2)?,
        cache_write_1h: count(r, first + 3)?,
        output: count(r, first + 4)?,
        reasoning: count(r, first + 5)?,
    })
}

fn malformed(table: &'static str, column: &'static str, reason: &'static str) -> Error {
    Error::Malformed {
        table,
        column,
        row: 0,
        reason,
    }
}

fn provider_of(text: &str, table: &'static str) -> Result<Provider> {
    text.parse()
        .map_err(|_| malformed(table, "provider", "unknown provider name"))
}

fn source_of(text: &str, table: &'static str) -> Result<Source> {
    text.parse()
        .map_err(|_| malformed(table, "source", "unknown usage source"))
}

fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

const TOKEN_COLUMNS: &str = "u.input_tokens, u.cache_read_tokens, u.cache_write_5m_tokens, \
     u.cache_write_1h_tokens, u.output_tokens, u.reasoning_tokens, u.cost_pusd";

impl Store {
    /// Every event `filter` selects, oldest first, projects opened.
    ///
    /// # Errors
    /// `AccountNotFound` for an unknown label, `Integrity` when a project's
    /// sealed text was altered, `Malformed` for a row no build writes, SQLite.
    pub fn usage_events(&mut self, filter: &UsageFilter) -> Result<Vec<EventRow>> {
        during("reading usage events", || {
            let (tx, keys) = self.read_tx()?;
            let (cond, args) = conditions(&tx, keys, filter, "at", time::encode)?;
            let args: Vec<Arg<'_>> = args.iter().map(Value::as_arg).collect();
            let mut projects: HashMap<i64, String> = HashMap::new();
            let mut out = Vec::new();
            let sql = format!(
                "SELECT u.id, u.at, u.provider, a.label, u.model, u.agent, u.task_type,
                        u.session, u.project_id, u.source, {TOKEN_COLUMNS}
                 FROM usage_events u LEFT JOIN accounts a ON a.id = u.account_id
                 WHERE {cond} ORDER BY u.at, u.id"
            );
            tx.for_each_row(&sql, &args, |r| {
                let id: i64 = r.get(0)?;
                let at: String = r.get(1)?;
                let project = match r.get::<Option<i64>>(8)? {
                    None => None,
                    Some(pid) => Some(if let Some(p) = projects.get(&pid) {
                        p.clone()
                    } else {
                        let sealed: Vec<u8> = tx.query_row(
                            "SELECT path FROM usage_projects WHERE id = ?1",
                            args![pid],
                            |r| r.get(0),
                        )?;
                        let text = keys
                            .open_secret(&project_place(pid), &sealed)?
                            .expose_secret()
                            .to_owned();
                        projects.insert(pid, text.clone());
                        text
                    }),
                };
                out.push(EventRow {
                    at: time::decode(&at, "usage_events", "at", id)?,
                    provider: provider_of(&r.get::<String>(2)?, "usage_events")?,
                    account: r.get(3)?,
                    model: r.get(4)?,
                    agent: r.get(5)?,
                    task_type: r.get(6)?,
                    session: r.get(7)?,
                    project,
                    source: source_of(&r.get::<String>(9)?, "usage_events")?,
                    events: 1,
                    tokens: tokens(r, 10)?,
                    cost_pico: count(r, 16)?,
                });
                Ok(ControlFlow::Continue(()))
            })?;
            Ok(out)
        })
    }

    /// The account the newest attributed event of `session` belongs to (for
    /// the status line: one index lookup, not the session's events).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn usage_session_account(&mut self, session: &str) -> Result<Option<String>> {
        during("reading usage events", || {
            let (tx, _) = self.read_tx()?;
            tx.query_opt(
                "SELECT a.label FROM usage_events u JOIN accounts a ON a.id = u.account_id
                     WHERE u.session = ?1 ORDER BY u.at DESC LIMIT 1",
                args![session],
                |r| r.get(0),
            )
        })
    }

    /// The hourly rollup rows `filter` selects (whole hours: `from` and
    /// `until` are rounded down to the hour), oldest first.
    ///
    /// # Errors
    /// `InvalidInput` when the filter names a session or project (the
    /// rollup does not keep them: use [`Store::usage_events`]),
    /// `AccountNotFound`, SQLite.
    pub fn usage_hours(&mut self, filter: &UsageFilter) -> Result<Vec<EventRow>> {
        if filter.needs_events() {
            return Err(Error::InvalidInput {
                what: "usage rollup query".into(),
                reason: "the hourly rollup has no sessions or projects; read the events".into(),
            });
        }
        during("reading the usage rollup", || {
            let (tx, keys) = self.read_tx()?;
            let (cond, args) = conditions(&tx, keys, filter, "hour", |t| {
                t.format("%Y-%m-%dT%H").to_string()
            })?;
            let mut out = Vec::new();
            tx.for_each_row(
                &format!(
                    "SELECT u.hour, u.provider, a.label, u.model, u.agent, u.task_type, u.source,
                        u.events, {TOKEN_COLUMNS}
                 FROM usage_hourly u LEFT JOIN accounts a ON a.id = u.account_id
                 WHERE {cond} ORDER BY u.hour"
                ),
                &args.iter().map(Value::as_arg).collect::<Vec<_>>(),
                |r| {
                    let at = hour_start(&r.get::<String>(0)?)
                        .ok_or_else(|| malformed("usage_hourly", "hour", "not YYYY-MM-DDTHH"))?;
                    out.push(EventRow {
                        at,
                        provider: provider_of(&r.get::<String>(1)?, "usage_hourly")?,
                        account: r.get(2)?,
                        model: r.get(3)?,
                        agent: none_if_empty(r.get(4)?),
                        task_type: none_if_empty(r.get(5)?),
                        session: None,
                        project: None,
                        source: source_of(&r.get::<String>(6)?, "usage_hourly")?,
                        events: count(r, 7)?,
                        tokens: tokens(r, 8)?,
                        cost_pico: count(r, 14)?,
                    });
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
    }
}
