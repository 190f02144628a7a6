//! The PostgreSQL driver: one connection, driven from synchronous code.
//!
//! [`PgConn`] is a handle to a dedicated worker thread (`authvault-pg`) that
//! owns a current-thread tokio runtime and one `sqlx` connection. A call sends
//! a job over a channel and blocks on the reply, so it works from plain
//! threads and from inside a caller's tokio runtime alike (the runtime that
//! runs the I/O is never the caller's). SQL texts use SQLite's `?N`
//! placeholders; values are always bound, never spliced into the text.

mod error;
mod placeholders;
mod url;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgQueryResult, PgRow, PgSslMode};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Column, Connection, PgConnection, Postgres, Row, TypeInfo, ValueRef};

pub use self::error::PgError;
pub use self::url::DatabaseUrl;
use super::sql::{Arg, Kind, Value};

/// How long a connection attempt may keep retrying while the server starts.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// How long closing the connection may take when the handle is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A connection to PostgreSQL, served by its own worker thread.
/// Dropping it closes the connection and ends the worker. A connection found
/// lost is replaced at the next [`PgConn::begin`], never inside a
/// transaction.
pub struct PgConn {
    worker: RefCell<Worker>,
    url: DatabaseUrl,
    /// A statement found the connection gone.
    lost: Cell<bool>,
}

/// The worker thread and the channel to it.
struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// One statement (or script) for the worker.
struct Job {
    op: Op,
    sql: String,
    args: Vec<Param>,
    reply: mpsc::SyncSender<Result<Reply, PgError>>,
}

#[derive(Clone, Copy)]
enum Op {
    Execute,
    Query,
    Batch,
}

enum Reply {
    Affected(u64),
    Rows(Vec<Vec<Value>>),
}

/// What the driver answered, before the rows are converted.
enum Fetched {
    Affected(u64),
    Rows(Vec<PgRow>),
}

/// An owned [`Arg`], to cross to the worker thread. No `Debug`: text and
/// blobs may be sealed values.
enum Param {
    Null(Kind),
    I64(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&Arg<'_>> for Param {
    fn from(arg: &Arg<'_>) -> Self {
        match *arg {
            Arg::Null(kind) => Self::Null(kind),
            Arg::I64(v) => Self::I64(v),
            Arg::Text(s) => Self::Text(s.to_owned()),
            Arg::Blob(b) => Self::Blob(b.to_owned()),
        }
    }
}

impl PgConn {
    /// Connects once.
    ///
    /// # Errors
    /// [`PgError::ConnectionLost`] when the server cannot be reached,
    /// [`PgError::Database`] when it refuses the login, [`PgError::Other`]
    /// for TLS or configuration problems. Messages name the URL without its
    /// password.
    pub fn connect(url: &DatabaseUrl) -> Result<Self, PgError> {
        Self::start(url, Duration::ZERO)
    }

    /// Connects, retrying with backoff (50 ms doubling to 2 s) for up to
    /// `budget` while the server is starting, restarting or full (socket
    /// missing, connection refused, SQLSTATE 57P03 or 53300). For replacing a
    /// connection that was lost; see [`RETRY_BUDGET`].
    ///
    /// # Errors
    /// As [`PgConn::connect`], with the last attempt's error.
    pub fn connect_retrying(url: &DatabaseUrl, budget: Duration) -> Result<Self, PgError> {
        Self::start(url, budget)
    }

    fn start(url: &DatabaseUrl, budget: Duration) -> Result<Self, PgError> {
        Ok(Self {
            worker: RefCell::new(Worker::start(url, budget)?),
            url: url.clone(),
            lost: Cell::new(false),
        })
    }

    /// Starts a transaction with `begin` (a `BEGIN …` text). When an earlier
    /// statement found the connection lost, a new one replaces it first
    /// (retrying for the URL's budget while the server restarts): whatever
    /// the old one had open, the server has rolled back.
    ///
    /// # Errors
    /// See [`PgError`].
    pub fn begin(&self, begin: &str) -> Result<(), PgError> {
        if self.lost.get() {
            let fresh = Worker::start(&self.url, self.url.retry())?;
            drop(self.worker.replace(fresh));
            self.lost.set(false);
            tracing::warn!("the connection to PostgreSQL was lost; continuing on a new connection");
        }
        self.batch(begin)
    }
    /// One statement with bound args; rows affected.
    ///
    /// # Errors
    /// See [`PgError`].
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, PgError> {
        match self.run(Op::Execute, sql, args)? {
            Reply::Affected(n) => Ok(n),
            Reply::Rows(_) => unreachable!("an execute job answers with a count"),
        }
    }

    /// One statement with bound args; all rows, each a `Vec<Value>` in column
    /// order.
    ///
    /// # Errors
    /// See [`PgError`]; [`PgError::Other`] names a column whose type has no
    /// [`Value`] (CAST it to BIGINT, TEXT or BYTEA).
    pub fn query(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Vec<Value>>, PgError> {
        match self.run(Op::Query, sql, args)? {
            Reply::Rows(rows) => Ok(rows),
            Reply::Affected(_) => unreachable!("a query job answers with rows"),
        }
    }

    /// Statements without args, simple protocol (BEGIN, COMMIT, ROLLBACK,
    /// migration scripts with several statements).
    ///
    /// # Errors
    /// See [`PgError`].
    pub fn batch(&self, sql: &str) -> Result<(), PgError> {
        self.run(Op::Batch, sql, &[]).map(|_| ())
    }

    fn run(&self, op: Op, sql: &str, args: &[Arg<'_>]) -> Result<Reply, PgError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            op,
            sql: sql.to_owned(),
            args: args.iter().map(Param::from).collect(),
            reply,
        };
        let sent = self
            .worker
            .borrow()
            .jobs
            .as_ref()
            .map(|jobs| jobs.send(job));
        let answer = match sent {
            Some(Ok(())) => answer.recv().unwrap_or_else(|_| Err(worker_gone())),
            _ => Err(worker_gone()),
        };
        if answer.as_ref().is_err_and(PgError::is_connection_lost) {
            self.lost.set(true);
        }
        answer
    }
}

impl Worker {
    /// Starts the worker thread and waits until it has connected.
    fn start(url: &DatabaseUrl, budget: Duration) -> Result<Self, PgError> {
        let options = url.connect_options()?;
        let url = url.clone();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("authvault-pg".into())
            .spawn(move || serve(&options, &url, budget, &ready_tx, &jobs_rx))
            .map_err(|e| PgError::Other(format!("cannot start the PostgreSQL thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                jobs: Some(jobs_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(worker_gone())
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn worker_gone() -> PgError {
    PgError::Other("the PostgreSQL connection thread stopped unexpectedly".into())
}

/// The worker thread: connect, answer jobs until the handle is dropped, close.
fn serve(
    options: &PgConnectOptions,
    url: &DatabaseUrl,
    budget: Duration,
    ready: &mpsc::SyncSender<Result<(), PgError>>,
    jobs: &mpsc::Receiver<Job>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(PgError::Other(format!(
                "cannot start the PostgreSQL runtime: {e}"
            ))));
            return;
        }
    };
    let conn = match runtime.block_on(connect(options, budget)) {
        Ok(conn) => conn,
        Err(e)
            if !matches!(options.get_ssl_mode(), PgSslMode::Disable)
                && error::is_tls_refusal(&e) =>
        {
            // The server's certificate (or the TLS setup) was refused: no
            // retry changes that, and the connection was never up.
            let _ = ready.send(Err(PgError::Other(url.scrub(&format!(
                "cannot connect to {url}: TLS refused: {}",
                error::tls_reason(&e)
            )))));
            return;
        }
        Err(e) => {
            let err = match error::classify(e, false) {
                PgError::Database { code, message } => PgError::Database { code, message },
                PgError::ConnectionLost { reason, .. } => PgError::ConnectionLost {
                    sent_commit: false,
                    reason: url.scrub(&format!("cannot connect to {url}: {reason}")),
                },
                PgError::Other(m) => {
                    PgError::Other(url.scrub(&format!("cannot connect to {url}: {m}")))
                }
            };
            let _ = ready.send(Err(err));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut session = Session {
        conn,
        rewritten: HashMap::new(),
        lost: false,
    };
    while let Ok(job) = jobs.recv() {
        let answer = runtime.block_on(session.run(job.op, &job.sql, job.args));
        let _ = job.reply.send(answer);
    }
    // Terminate politely; a dead or stuck socket cannot hold the caller's drop.
    let _ =
        runtime.block_on(async { tokio::time::timeout(CLOSE_WAIT, session.conn.close()).await });
}

async fn connect(
    options: &PgConnectOptions,
    budget: Duration,
) -> Result<PgConnection, sqlx::Error> {
    let mut waits = error::backoff(budget);
    loop {
        match PgConnection::connect_with(options).await {
            Err(e) if error::is_transient_connect_failure(&e) => match waits.next() {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(e),
            },
            result => return result,
        }
    }
}

/// The worker's connection and what it remembers between jobs.
struct Session {
    conn: PgConnection,
    /// `?N` texts rewritten to `$N`, by original text.
    rewritten: HashMap<String, placeholders::Rewritten>,
    /// An earlier statement found the connection gone.
    lost: bool,
}

impl Session {
    async fn run(&mut self, op: Op, sql: &str, args: Vec<Param>) -> Result<Reply, PgError> {
        if self.lost {
            return Err(PgError::ConnectionLost {
                sent_commit: false,
                reason: "an earlier statement found the connection gone".into(),
            });
        }
        let affected = |done: PgQueryResult| Fetched::Affected(done.rows_affected());
        let fetched = match op {
            Op::Batch => sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut self.conn)
                .await
                .map(affected),
            Op::Execute => self
                .bound(sql, args)?
                .execute(&mut self.conn)
                .await
                .map(affected),
            Op::Query => self
                .bound(sql, args)?
                .fetch_all(&mut self.conn)
                .await
                .map(Fetched::Rows),
        };
        match fetched {
            Ok(Fetched::Affected(n)) => Ok(Reply::Affected(n)),
            Ok(Fetched::Rows(rows)) => rows
                .iter()
                .map(values)
                .collect::<Result<_, _>>()
                .map(Reply::Rows),
            Err(e) => {
                let err = error::classify(e, placeholders::commits(sql));
                self.lost |= err.is_connection_lost();
                Err(err)
            }
        }
    }

    /// The statement for `sql` (rewritten once per text) with `args` bound.
    fn bound(
        &mut self,
        sql: &str,
        args: Vec<Param>,
    ) -> Result<Query<'static, Postgres, PgArguments>, PgError> {
        if !self.rewritten.contains_key(sql) {
            let rewritten = placeholders::rewrite(sql)?;
            self.rewritten.insert(sql.to_owned(), rewritten);
        }
        let rewritten = &self.rewritten[sql];
        if rewritten.params != args.len() {
            return Err(PgError::Other(format!(
                "the statement takes {} parameters but {} were given",
                rewritten.params,
                args.len()
            )));
        }
        let mut query = sqlx::query(AssertSqlSafe(signed(&rewritten.sql, &args)));
        for arg in args {
            query = match arg {
                Param::Null(Kind::I64) => query.bind(None::<i64>),
                Param::Null(Kind::Text) => query.bind(None::<String>),
                Param::Null(Kind::Blob) => query.bind(None::<Vec<u8>>),
                Param::I64(v) => query.bind(v),
                Param::Text(s) => query.bind(s),
                Param::Blob(b) => query.bind(b),
            };
        }
        Ok(query)
    }
}

/// `sql` with the kinds of its parameters appended as a comment. The driver
/// caches a prepared statement (with its parameter types) by text alone: the
/// same text bound with other kinds would reuse the first kinds and send
/// bytes the server misreads.
fn signed(sql: &str, args: &[Param]) -> String {
    if args.is_empty() {
        return sql.to_owned();
    }
    let mut text = String::with_capacity(sql.len() + args.len() + 7);
    text.push_str(sql);
    text.push_str("\n/* ");
    text.extend(args.iter().map(|arg| match arg {
        Param::Null(Kind::I64) | Param::I64(_) => 'I',
        Param::Null(Kind::Text) | Param::Text(_) => 'T',
        Param::Null(Kind::Blob) | Param::Blob(_) => 'B',
    }));
    text.push_str(" */");
    text
}

/// One row as neutral values.
fn values(row: &PgRow) -> Result<Vec<Value>, PgError> {
    (0..row.len()).map(|i| value(row, i)).collect()
}

fn value(row: &PgRow, i: usize) -> Result<Value, PgError> {
    let decode = |e: sqlx::Error| error::classify(e, false);
    if row.try_get_raw(i).map_err(decode)?.is_null() {
        return Ok(Value::Null);
    }
    let column = row.column(i);
    Ok(match column.type_info().name() {
        "INT2" => Value::I64(row.try_get::<i16, _>(i).map_err(decode)?.into()),
        "INT4" => Value::I64(row.try_get::<i32, _>(i).map_err(decode)?.into()),
        "INT8" => Value::I64(row.try_get::<i64, _>(i).map_err(decode)?),
        "BOOL" => Value::Bool(row.try_get(i).map_err(decode)?),
        "TEXT" | "VARCHAR" | "NAME" => Value::Text(row.try_get(i).map_err(decode)?),
        "BYTEA" => Value::Blob(row.try_get(i).map_err(decode)?),
        other => {
            return Err(PgError::Other(format!(
                "column {} ('{}') has type {other}, which authvault does not read; \
                 CAST it to BIGINT, TEXT or BYTEA",
                i + 1,
                column.name()
            )));
        }
    })
}
