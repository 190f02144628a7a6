//! Usage history rows: events written in batches (one transaction each,
//! the hourly rollup kept in the same transaction), how far each log file
//! was read, and the hourly rollup's rebuild. Queries are in `query.rs`.
//!
//! An event is stored once however often it is imported: its identity (for
//! Claude Code `message.id` + `requestId`, for Codex the session and the
//! cumulative position) becomes a keyed fingerprint in a UNIQUE column.
//! A second copy replaces the stored one only when it counts more tokens
//! (ccusage keeps the larger copy too).

mod prices;
mod query;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::accounts::find_account;
use super::{Keys, Store, now, time};
use crate::crypto::Place;
use crate::db::{Tx, args};
use crate::error::{Error, Result};
use crate::model::Provider;
use crate::model::usage::{GIVEN_COST, Source, Tokens};
use crate::store::during;
pub use query::{EventRow, UsageFilter};

/// One model response's usage, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// When the response was made.
    pub at: DateTime<Utc>,
    /// Whose model served it.
    pub provider: Provider,
    /// The account's label, when known (unknown is allowed, wrong is not).
    pub account: Option<String>,
    /// The model name as the source wrote it.
    pub model: String,
    /// The agent id, when known.
    pub agent: Option<String>,
    /// The task type, when known.
    pub task_type: Option<String>,
    /// The session id (Claude Code's transcript name, Codex's rollout path).
    pub session: Option<String>,
    /// The project (sealed at rest).
    pub project: Option<String>,
    /// Where it came from.
    pub source: Source,
    /// Tokens used.
    pub tokens: Tokens,
    /// Cost in pico-dollars (1e-12 USD).
    pub cost_pico: u64,
    /// The price table the cost came from.
    pub price_version: Option<String>,
    /// What makes two copies the same event (message and request ids,
    /// session and position); stored only as a keyed fingerprint.
    pub identity: String,
}

/// How far a log file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMark {
    /// The device of the file read.
    pub device: u64,
    /// Its inode: another inode at the same path is another file.
    pub inode: u64,
    /// Its size when read.
    pub size: u64,
    /// The byte offset just past the last complete line read.
    pub read_to: u64,
    /// Complete lines up to `read_to` (to number the next ones).
    pub lines: u64,
}

/// What a batch of events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageWritten {
    /// New events.
    pub added: u64,
    /// Events already stored, replaced by a copy that counts more tokens.
    pub replaced: u64,
    /// Events already stored as they are.
    pub unchanged: u64,
}

impl UsageWritten {
    /// Adds another batch's counts.
    pub const fn add(&mut self, other: Self) {
        self.added += other.added;
        self.replaced += other.replaced;
        self.unchanged += other.unchanged;
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::InvalidInput {
        what: what.to_owned(),
        reason: format!("{n} is larger than the vault can store"),
    })
}

/// The key of a log file's import mark: its source, host and path. The
/// host is part of it because the same path on two hosts of a shared vault
/// is two files. (A mark written before marks named their host is not
/// found: that file is read once more, and its events, already stored, are
/// recognised and not added twice.)
fn file_key(keys: &Keys, host: &str, source: Source, path: &Path) -> String {
    keys.fingerprint(&[
        b"usage-file",
        source.as_str().as_bytes(),
        host.as_bytes(),
        path.as_os_str().as_encoded_bytes(),
    ])
}

/// Where a project's sealed path lives: its row, no account.
const fn project_place(row: i64) -> Place<'static> {
    Place {
        table: "usage_projects",
        column: "path",
        row,
        account: 0,
    }
}

/// The id of `project`'s row, created (path sealed) when new.
fn project_id(tx: &Tx<'_>, keys: &Keys, project: &str) -> Result<i64> {
    let fingerprint = keys.fingerprint(&[b"usage-project", project.as_bytes()]);
    let found: Option<i64> = tx.query_opt(
        "SELECT id FROM usage_projects WHERE fingerprint = ?1",
        args![&fingerprint],
        |r| r.get(0),
    )?;
    if let Some(id) = found {
        return Ok(id);
    }
    let id: i64 = tx.query_row(
        "INSERT INTO usage_projects (fingerprint, path) VALUES (?1, ?2) RETURNING id",
        args![fingerprint, [0u8; 0]],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE usage_projects SET path = ?1 WHERE id = ?2",
        args![keys.seal(&project_place(id), project.as_bytes())?, id],
    )?;
    Ok(id)
}

/// Ids of accounts and projects met in one transaction.
#[derive(Default)]
struct Ids {
    accounts: HashMap<String, i64>,
    projects: HashMap<String, i64>,
}

impl Ids {
    fn account(&mut self, tx: &Tx<'_>, keys: &Keys, label: &str) -> Result<i64> {
        if let Some(id) = self.accounts.get(label) {
            return Ok(*id);
        }
        let id = find_account(tx, keys, label)?.id;
        self.accounts.insert(label.to_owned(), id);
        Ok(id)
    }

    fn project(&mut self, tx: &Tx<'_>, keys: &Keys, project: &str) -> Result<i64> {
        if let Some(id) = self.projects.get(project) {
            return Ok(*id);
        }
        let id = project_id(tx, keys, project)?;
        self.projects.insert(project.to_owned(), id);
        Ok(id)
    }
}

/// A write of usage events inside one transaction. New events' shares of
/// the hourly rollup are summed here and added with one upsert per hour and
/// dimension in [`EventWriter::finish`] (an insert trigger cost one upsert
/// per event, half the time of a large import); replacements and removals
/// keep their triggers (`0010_usage_rollup_in_code.sql`). Every insert into
/// `usage_events` goes through [`EventWriter::write`].
struct EventWriter<'t> {
    tx: &'t Tx<'t>,
    keys: &'t Keys,
    ids: Ids,
    hours: HashMap<HourKey, [i64; 8]>,
    written: UsageWritten,
}

/// A row of `usage_hourly`: hour, provider, account id (0: none), model,
/// source, agent and task type (empty: none).
#[derive(PartialEq, Eq, Hash)]
struct HourKey {
    hour: String,
    provider: Provider,
    account: i64,
    model: String,
    source: Source,
    agent: String,
    task_type: String,
}

impl<'t> EventWriter<'t> {
    fn new(tx: &'t Tx<'t>, keys: &'t Keys) -> Self {
        Self {
            tx,
            keys,
            ids: Ids::default(),
            hours: HashMap::new(),
            written: UsageWritten::default(),
        }
    }

    fn write(&mut self, e: &UsageEvent) -> Result<()> {
        let (tx, keys) = (self.tx, self.keys);
        let key = keys.fingerprint(&[
            b"usage-event",
            e.source.as_str().as_bytes(),
            e.identity.as_bytes(),
        ]);
        let t = &e.tokens;
        let account = e
            .account
            .as_deref()
            .map(|l| self.ids.account(tx, keys, l))
            .transpose()?;
        let project = e
            .project
            .as_deref()
            .map(|p| self.ids.project(tx, keys, p))
            .transpose()?;
        let at = time::encode(e.at);
        let counts = [
            1,
            to_i64(t.input, "input tokens")?,
            to_i64(t.cache_read, "cache read tokens")?,
            to_i64(t.cache_write_5m, "cache write tokens")?,
            to_i64(t.cache_write_1h, "cache write tokens")?,
            to_i64(t.output, "output tokens")?,
            to_i64(t.reasoning, "reasoning tokens")?,
            to_i64(e.cost_pico, "cost")?,
        ];
        let (provider, source) = (e.provider.as_str(), e.source.as_str());
        let values = args![
            at,
            provider,
            account,
            e.model,
            e.agent,
            e.task_type,
            e.session,
            project,
            source,
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5],
            counts[6],
            counts[7],
            e.price_version,
            key,
        ];
        // Most events are new: insert first, and only for a copy already
        // stored compare totals. A larger copy without an account or agent
        // keeps the ones the stored copy was attributed to.
        let inserted = tx.execute(
            "INSERT INTO usage_events (at, provider, account_id, model, agent, task_type,
                    session, project_id, source, input_tokens, cache_read_tokens,
                    cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens,
                    cost_pusd, price_version, dedupe_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18)
                 ON CONFLICT (dedupe_key) DO NOTHING",
            values,
        )?;
        if inserted == 1 {
            self.count_new(e, &at, account, counts);
            return Ok(());
        }
        let stored: i64 = tx.query_row(
            "SELECT input_tokens + output_tokens + cache_read_tokens
                            + cache_write_5m_tokens + cache_write_1h_tokens
                 FROM usage_events WHERE dedupe_key = ?1",
            args![&key],
            |r| r.get(0),
        )?;
        if stored >= to_i64(t.total(), "usage tokens")? {
            self.written.unchanged += 1;
            return Ok(());
        }
        // The update trigger moves the stored copy's values out of the
        // rollup: they must be there first.
        self.add_hours()?;
        tx.execute(
            "UPDATE usage_events SET at = ?1, provider = ?2,
                account_id = coalesce(?3, account_id), model = ?4,
                agent = coalesce(?5, agent), task_type = ?6, session = ?7, project_id = ?8,
                source = ?9,
                input_tokens = ?10, cache_read_tokens = ?11, cache_write_5m_tokens = ?12,
                cache_write_1h_tokens = ?13, output_tokens = ?14, reasoning_tokens = ?15,
                cost_pusd = ?16, price_version = ?17
             WHERE dedupe_key = ?18",
            values,
        )?;
        self.written.replaced += 1;
        Ok(())
    }

    /// Counts a new event into its hour's sums (`at` encoded, `account` its
    /// row id).
    fn count_new(&mut self, e: &UsageEvent, at: &str, account: Option<i64>, counts: [i64; 8]) {
        let hour = HourKey {
            hour: at[..13].to_owned(),
            provider: e.provider,
            account: account.unwrap_or(0),
            model: e.model.clone(),
            source: e.source,
            agent: e.agent.clone().unwrap_or_default(),
            task_type: e.task_type.clone().unwrap_or_default(),
        };
        let sums = self.hours.entry(hour).or_default();
        for (sum, n) in sums.iter_mut().zip(counts) {
            *sum += n;
        }
        self.written.added += 1;
    }

    /// Adds the new events' sums to the rollup.
    fn add_hours(&mut self) -> Result<()> {
        for (k, n) in self.hours.drain() {
            self.tx.execute(
                "INSERT INTO usage_hourly (hour, provider, account_id, model, source, agent,
                    task_type, events, input_tokens, cache_read_tokens, cache_write_5m_tokens,
                    cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_pusd)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (hour, provider, account_id, model, source, agent, task_type)
                 DO UPDATE SET
                    events = usage_hourly.events + excluded.events,
                    input_tokens = usage_hourly.input_tokens + excluded.input_tokens,
                    cache_read_tokens = usage_hourly.cache_read_tokens + excluded.cache_read_tokens,
                    cache_write_5m_tokens =
                        usage_hourly.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
                    cache_write_1h_tokens =
                        usage_hourly.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
                    output_tokens = usage_hourly.output_tokens + excluded.output_tokens,
                    reasoning_tokens = usage_hourly.reasoning_tokens + excluded.reasoning_tokens,
                    cost_pusd = usage_hourly.cost_pusd + excluded.cost_pusd",
                args![
                    k.hour,
                    k.provider.as_str(),
                    k.account,
                    k.model,
                    k.source.as_str(),
                    k.agent,
                    k.task_type,
                    n[0],
                    n[1],
                    n[2],
                    n[3],
                    n[4],
                    n[5],
                    n[6],
                    n[7],
                ],
            )?;
        }
        Ok(())
    }

    /// Brings the rollup up to date; the caller then commits.
    fn finish(mut self) -> Result<UsageWritten> {
        self.add_hours()?;
        Ok(self.written)
    }
}

/// Records what a quota reservation used as a `ledger` usage event, inside
/// the commit's transaction: its account, provider and agent, the model
/// (`unknown` when not given), cache writes as 5-minute writes, and the
/// caller's cost when given (else 0 until `vault usage reprice`).
#[allow(clippy::too_many_arguments)] // one call site, the commit's own values
pub(in crate::store) fn record_ledger(
    tx: &Tx<'_>,
    keys: &Keys,
    reservation: i64,
    provider: Provider,
    account: Option<&str>,
    agent: Option<&str>,
    usage: &super::Usage,
    at: DateTime<Utc>,
) -> Result<()> {
    let event = UsageEvent {
        at,
        provider,
        account: account.map(str::to_owned),
        model: usage.model.clone().unwrap_or_else(|| "unknown".to_owned()),
        agent: agent.map(str::to_owned),
        task_type: None,
        session: None,
        project: None,
        source: Source::Ledger,
        tokens: Tokens {
            input: usage.input,
            cache_read: usage.cache_read,
            cache_write_5m: usage.cache_write,
            output: usage.output,
            ..Tokens::default()
        },
        cost_pico: usage.usd_micros.map_or(0, |m| m.saturating_mul(1_000_000)),
        price_version: usage.usd_micros.map(|_| GIVEN_COST.to_owned()),
        identity: format!("reservation\0{reservation}"),
    };
    let mut writer = EventWriter::new(tx, keys);
    writer.write(&event)?;
    writer.finish()?;
    Ok(())
}

impl Store {
    /// Records a batch of usage events and, in the same transaction, how far
    /// each log file they came from was read: a crash leaves either both or
    /// neither. Events already stored are kept (or replaced by a copy that
    /// counts more tokens); the hourly rollup follows in the same
    /// transaction.
    ///
    /// # Errors
    /// `AccountNotFound` for an unknown label (nothing is written),
    /// `InvalidInput` for counts beyond 2^63, SQLite errors.
    pub fn record_usage(
        &mut self,
        events: &[UsageEvent],
        files: &[(Source, PathBuf, FileMark)],
    ) -> Result<UsageWritten> {
        during("recording usage", || self.write_usage(events, files))
    }

    /// Runs `write` (an import's batches of [`Store::record_usage`]) with a
    /// page cache of 256 MiB instead of SQLite's 2 MiB: the dedupe index of
    /// a large history takes writes all over the file, and with the cache
    /// kept from one batch to the next its pages are read once. Back to
    /// 2 MiB after.
    ///
    /// # Errors
    /// `write`'s, SQLite errors.
    pub fn bulk_usage<T>(&mut self, write: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.conn.set_cache_kib(262_144)?;
        let result = write(self);
        self.conn.set_cache_kib(2000)?;
        result
    }

    fn write_usage(
        &mut self,
        events: &[UsageEvent],
        files: &[(Source, PathBuf, FileMark)],
    ) -> Result<UsageWritten> {
        {
            let host = self.host.clone();
            let (tx, keys, _) = self.write_tx()?;
            let mut writer = EventWriter::new(&tx, keys);
            for e in events {
                writer.write(e)?;
            }
            let written = writer.finish()?;
            let at = now();
            for (source, path, mark) in files {
                tx.execute(
                    "INSERT INTO usage_files
                        (source, fingerprint, device, inode, size, read_to, lines, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (source, fingerprint) DO UPDATE SET
                        device = excluded.device, inode = excluded.inode, size = excluded.size,
                        read_to = excluded.read_to, lines = excluded.lines,
                        updated_at = excluded.updated_at",
                    args![
                        source.as_str(),
                        file_key(keys, &host, *source, path),
                        to_i64(mark.device, "device")?,
                        to_i64(mark.inode, "inode")?,
                        to_i64(mark.size, "file size")?,
                        to_i64(mark.read_to, "file offset")?,
                        to_i64(mark.lines, "line count")?,
                        at,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(written)
        }
    }

    /// Attributes the stored events of `source`'s session `session` made
    /// from `from` to `to` (inclusive) that have no account yet to account
    /// `label`, and to `agent` those without one; an event already
    /// attributed is left as it is. One transaction; the rollup follows.
    /// Returns how many events were attributed.
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite errors.
    pub fn attribute_usage(
        &mut self,
        source: Source,
        session: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        label: &str,
        agent: Option<&str>,
    ) -> Result<u64> {
        during("attributing usage", || {
            let (tx, keys, _) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?.id;
            let n = tx.execute(
                "UPDATE usage_events SET account_id = ?1, agent = coalesce(agent, ?2)
                 WHERE source = ?3 AND session = ?4 AND at BETWEEN ?5 AND ?6
                   AND account_id IS NULL",
                args![
                    account,
                    agent,
                    source.as_str(),
                    session,
                    time::encode(from),
                    time::encode(to)
                ],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
    }

    /// How far each of `paths` was read, in order (`None`: never).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn usage_file_marks(
        &mut self,
        source: Source,
        paths: &[PathBuf],
    ) -> Result<Vec<Option<FileMark>>> {
        let host = self.host.clone();
        during("reading usage import state", || {
            let (tx, keys) = self.read_tx()?;
            let mut out = Vec::with_capacity(paths.len());
            for path in paths {
                let mark = tx.query_opt(
                    "SELECT device, inode, size, read_to, lines FROM usage_files
                         WHERE source = ?1 AND fingerprint = ?2",
                    args![source.as_str(), file_key(keys, &host, source, path)],
                    |r| {
                        Ok(FileMark {
                            device: r.get::<i64>(0)?.cast_unsigned(),
                            inode: r.get::<i64>(1)?.cast_unsigned(),
                            size: r.get::<i64>(2)?.cast_unsigned(),
                            read_to: r.get::<i64>(3)?.cast_unsigned(),
                            lines: r.get::<i64>(4)?.cast_unsigned(),
                        })
                    },
                )?;
                out.push(mark);
            }
            Ok(out)
        })
    }

    /// Recomputes stored costs with `price` (source, model, tokens → cost in
    /// pico-dollars, `None` when the model is not priced), recording
    /// `version`. Costs the source gave itself ([`GIVEN_COST`]) are kept. One
    /// transaction; the rollup follows. Returns (events priced, costs changed).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn reprice_usage(
        &mut self,
        version: &str,
        price: impl Fn(Source, &str, &Tokens) -> Option<u64>,
    ) -> Result<(u64, u64)> {
        during("repricing usage", || {
            let (tx, _, _) = self.write_tx()?;
            let mut changes = Vec::new();
            let mut seen = 0;
            {
                tx.for_each_row(
                    "SELECT id, source, model, input_tokens, cache_read_tokens,
                            cache_write_5m_tokens, cache_write_1h_tokens, output_tokens,
                            reasoning_tokens, cost_pusd, price_version
                     FROM usage_events WHERE price_version IS DISTINCT FROM ?1",
                    args![GIVEN_COST],
                    |r| {
                        seen += 1;
                        let id: i64 = r.get(0)?;
                        let source: String = r.get(1)?;
                        let Ok(source) = source.parse::<Source>() else {
                            return Ok(ControlFlow::Continue(()));
                        };
                        let model: String = r.get(2)?;
                        let n = |i: usize| r.get::<i64>(i).map(i64::cast_unsigned);
                        let tokens = Tokens {
                            input: n(3)?,
                            cache_read: n(4)?,
                            cache_write_5m: n(5)?,
                            cache_write_1h: n(6)?,
                            output: n(7)?,
                            reasoning: n(8)?,
                        };
                        let old: (u64, Option<String>) = (n(9)?, r.get(10)?);
                        let new = price(source, &model, &tokens)
                            .map_or((0, None), |c| (c, Some(version.to_owned())));
                        if new != old {
                            changes.push((id, new));
                        }
                        Ok(ControlFlow::Continue(()))
                    },
                )?;
            }
            for (id, (cost, version)) in &changes {
                tx.execute(
                    "UPDATE usage_events SET cost_pusd = ?1, price_version = ?2 WHERE id = ?3",
                    args![to_i64(*cost, "cost")?, version, id],
                )?;
            }
            tx.commit()?;
            Ok((seen, changes.len() as u64))
        })
    }

    /// Recomputes the hourly rollup from the events (`vault usage rebuild`);
    /// returns the number of rollup rows.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn rebuild_usage_rollups(&mut self) -> Result<u64> {
        during("rebuilding usage rollups", || {
            let (tx, _, _) = self.write_tx()?;
            tx.execute("DELETE FROM usage_hourly", &[])?;
            let rows = tx.execute(
                "INSERT INTO usage_hourly
                 SELECT substr(at, 1, 13), provider, coalesce(account_id, 0), model, source,
                        coalesce(agent, ''), coalesce(task_type, ''), count(*),
                        sum(input_tokens), sum(cache_read_tokens), sum(cache_write_5m_tokens),
                        sum(cache_write_1h_tokens), sum(output_tokens), sum(reasoning_tokens),
                        sum(cost_pusd)
                 FROM usage_events
                 GROUP BY 1, 2, 3, 4, 5, 6, 7",
                &[],
            )?;
            tx.commit()?;
            Ok(rows)
        })
    }
}
