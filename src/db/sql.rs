//! The neutral SQL layer between the store and a database backend: bound
//! arguments ([`Arg`]), column values ([`Value`]), a connection ([`Conn`]), a
//! transaction ([`Tx`]) and a row ([`Row`]). The store speaks only these, so a
//! second backend is one more enum variant; on SQLite each call is one `match`
//! and then the rusqlite call the store made before (statements cached,
//! arguments borrowed, columns read through rusqlite's `FromSql`).
//!
//! Architecture invariant: one SQL text for every backend, with numbered
//! placeholders (`?1`, `?2`, …) only; data statements never issue `PRAGMA`
//! (backend-specific administration is a method here instead).

use std::cell::Cell;
use std::fmt;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Transaction, TransactionBehavior, params_from_iter};

use super::pg::{PgConn, PgError};
use crate::error::{Error, Result};

/// The key of the vault-wide PostgreSQL write lock ("AUVT"), paired with a
/// hash of the schema so two vaults in two schemas of one database do not
/// contend.
const PG_BEGIN_WRITE: &str = "BEGIN; SELECT pg_advisory_xact_lock(1096111700, \
     hashtext(coalesce(current_schema(), '')))";

/// The declared type of a parameter; a NULL must carry one (PostgreSQL
/// cannot infer the type of `$3 IS NULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit signed integer (also booleans, as 0/1).
    I64,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Blob,
}

/// One bound parameter. Borrowed: zero-copy on SQLite. Its `Debug` shows the
/// kind and length only, never contents (they may be sealed values or secrets).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// NULL of a declared type.
    Null(Kind),
    /// An integer.
    I64(i64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null(kind) => write!(f, "Null({kind:?})"),
            Self::I64(_) => f.write_str("I64"),
            Self::Text(s) => write!(f, "Text(len {})", s.len()),
            Self::Blob(b) => write!(f, "Blob(len {})", b.len()),
        }
    }
}

/// One owned column value, as PostgreSQL rows come back. Same redacted
/// `Debug` as [`Arg`].
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// NULL.
    Null,
    /// Any integer column.
    I64(i64),
    /// A boolean column.
    Bool(bool),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("Null"),
            Self::I64(_) => f.write_str("I64"),
            Self::Bool(_) => f.write_str("Bool"),
            Self::Text(s) => write!(f, "Text(len {})", s.len()),
            Self::Blob(b) => write!(f, "Blob(len {})", b.len()),
        }
    }
}

impl Value {
    /// The value as an argument (for statements whose conditions are built
    /// at run time); a boolean binds as 0/1, a NULL as a text-typed NULL.
    #[must_use]
    pub fn as_arg(&self) -> Arg<'_> {
        match self {
            Self::Null => Arg::Null(Kind::Text),
            Self::I64(n) => Arg::I64(*n),
            Self::Bool(b) => Arg::I64(i64::from(*b)),
            Self::Text(s) => Arg::Text(s),
            Self::Blob(b) => Arg::Blob(b),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::I64(_) => "an integer",
            Self::Bool(_) => "a boolean",
            Self::Text(_) => "text",
            Self::Blob(_) => "bytes",
        }
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Self::Null(_) => ValueRef::Null,
            Self::I64(n) => ValueRef::Integer(n),
            Self::Text(s) => ValueRef::Text(s.as_bytes()),
            Self::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A Rust value that can be bound as a parameter.
pub trait ToArg {
    /// The parameter type, also for a `None` of it.
    const KIND: Kind;
    /// The argument, borrowing from `self`.
    ///
    /// # Errors
    /// An unsigned value above `i64::MAX` (no backend stores it).
    fn to_arg(&self) -> Result<Arg<'_>>;
}

/// The error for an unsigned integer that does not fit a signed column.
fn out_of_range(value: impl fmt::Display) -> crate::error::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!("{value} does not fit a 64-bit signed integer").into(),
    )
    .into()
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            const KIND: Kind = Kind::I64;
            fn to_arg(&self) -> Result<Arg<'_>> {
                i64::try_from(*self).map(Arg::I64).map_err(|_| out_of_range(self))
            }
        }
    )*};
}
int_arg!(i64, i32, u8, u16, u32, u64, usize);

impl ToArg for bool {
    const KIND: Kind = Kind::I64;
    fn to_arg(&self) -> Result<Arg<'_>> {
        Ok(Arg::I64(i64::from(*self)))
    }
}

impl ToArg for str {
    const KIND: Kind = Kind::Text;
    fn to_arg(&self) -> Result<Arg<'_>> {
        Ok(Arg::Text(self))
    }
}

impl ToArg for String {
    const KIND: Kind = Kind::Text;
    fn to_arg(&self) -> Result<Arg<'_>> {
        Ok(Arg::Text(self))
    }
}

impl ToArg for [u8] {
    const KIND: Kind = Kind::Blob;
    fn to_arg(&self) -> Result<Arg<'_>> {
        Ok(Arg::Blob(self))
    }
}

impl ToArg for Vec<u8> {
    const KIND: Kind = Kind::Blob;
    fn to_arg(&self) -> Result<Arg<'_>> {
        Ok(Arg::Blob(self))
    }
}

impl<const N: usize> ToArg for [u8; N] {
    const KIND: Kind = Kind::Blob;
    fn to_arg(&self) -> Result<Arg<'_>> {
        Ok(Arg::Blob(self))
    }
}

impl<T: ToArg> ToArg for Option<T> {
    const KIND: Kind = T::KIND;
    fn to_arg(&self) -> Result<Arg<'_>> {
        match self {
            Some(v) => v.to_arg(),
            None => Ok(Arg::Null(T::KIND)),
        }
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    const KIND: Kind = T::KIND;
    fn to_arg(&self) -> Result<Arg<'_>> {
        (**self).to_arg()
    }
}

/// `args![a, b, …]`: the arguments of one statement, converted with
/// [`ToArg`] (`?` on a conversion error); replaces `rusqlite::params!`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::db::ToArg::to_arg(&$v)?),*] as &[$crate::db::Arg<'_>]
    };
}
pub(crate) use args;

/// A column value's type did not match what the store reads.
#[derive(Debug, thiserror::Error)]
#[error("column {index}: expected {expected}, found {found}")]
pub struct ColumnError {
    /// The column's index in the row.
    pub index: usize,
    /// What the store reads (a Rust type name).
    pub expected: &'static str,
    /// What the backend returned.
    pub found: &'static str,
}

/// A Rust type a column can be read as.
pub trait FromColumn: Sized {
    /// Reads column `i` of a SQLite row (rusqlite's `FromSql` rules).
    ///
    /// # Errors
    /// rusqlite's conversion errors.
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self>;
    /// Reads an owned value (column `i`): every integer arrives as `I64`.
    ///
    /// # Errors
    /// A value of another type, NULL for a non-`Option`, an integer out of range.
    fn from_value(value: &Value, i: usize) -> Result<Self, ColumnError>;
}

fn mismatch(value: &Value, index: usize, expected: &'static str) -> ColumnError {
    ColumnError {
        index,
        expected,
        found: value.kind_name(),
    }
}

macro_rules! int_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                let n: i64 = row.get(i)?;
                <$t>::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, n))
            }
            fn from_value(value: &Value, i: usize) -> Result<Self, ColumnError> {
                let n = match value {
                    Value::I64(n) => *n,
                    Value::Bool(b) => i64::from(*b),
                    other => return Err(mismatch(other, i, stringify!($t))),
                };
                <$t>::try_from(n).map_err(|_| ColumnError {
                    index: i,
                    expected: stringify!($t),
                    found: "an integer out of its range",
                })
            }
        }
    )*};
}
int_column!(i64, i32, u8, u16, u32, u64);

impl FromColumn for bool {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        row.get(i)
    }
    fn from_value(value: &Value, i: usize) -> Result<Self, ColumnError> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::I64(0) => Ok(false),
            Value::I64(1) => Ok(true),
            Value::I64(_) => Err(ColumnError {
                index: i,
                expected: "bool",
                found: "an integer other than 0 or 1",
            }),
            other => Err(mismatch(other, i, "bool")),
        }
    }
}

impl FromColumn for String {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        row.get(i)
    }
    fn from_value(value: &Value, i: usize) -> Result<Self, ColumnError> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(mismatch(other, i, "String")),
        }
    }
}

impl FromColumn for Vec<u8> {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        row.get(i)
    }
    fn from_value(value: &Value, i: usize) -> Result<Self, ColumnError> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(mismatch(other, i, "Vec<u8>")),
        }
    }
}

/// A column as it is, whatever its type (for copying rows verbatim). A
/// floating-point value (no vault column has one) and text that is not
/// UTF-8 are refused.
impl FromColumn for Value {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        Ok(match row.get_ref(i)? {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(n) => Self::I64(n),
            ValueRef::Text(_) => Self::Text(row.get(i)?),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
            ValueRef::Real(_) => {
                return Err(rusqlite::Error::InvalidColumnType(
                    i,
                    format!("column {i}"),
                    rusqlite::types::Type::Real,
                ));
            }
        })
    }
    fn from_value(value: &Value, _: usize) -> Result<Self, ColumnError> {
        Ok(value.clone())
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        match row.get_ref(i)? {
            ValueRef::Null => Ok(None),
            _ => T::from_sqlite(row, i).map(Some),
        }
    }
    fn from_value(value: &Value, i: usize) -> Result<Self, ColumnError> {
        match value {
            Value::Null => Ok(None),
            v => T::from_value(v, i).map(Some),
        }
    }
}

impl From<ColumnError> for Error {
    fn from(e: ColumnError) -> Self {
        PgError::Other(e.to_string()).into()
    }
}

/// One result row, valid inside the callback it is passed to.
pub enum Row<'r> {
    /// A row of a SQLite statement.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A row of owned values (PostgreSQL).
    Values(&'r [Value]),
}

impl Row<'_> {
    /// Column `i` as a `T`.
    ///
    /// # Errors
    /// A column of another type, an index past the last column.
    pub fn get<T: FromColumn>(&self, i: usize) -> Result<T> {
        match self {
            Self::Sqlite(r) => Ok(T::from_sqlite(r, i)?),
            Self::Values(values) => {
                let value = values.get(i).ok_or(ColumnError {
                    index: i,
                    expected: std::any::type_name::<T>(),
                    found: "no such column",
                })?;
                Ok(T::from_value(value, i)?)
            }
        }
    }
}

/// A connection to the vault database.
pub enum Conn {
    /// A SQLite file.
    Sqlite(Connection),
    /// A PostgreSQL database.
    Pg(PgConn),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(_) => f.write_str("Conn::Sqlite"),
            Self::Pg(_) => f.write_str("Conn::Pg"),
        }
    }
}

impl Conn {
    /// Starts a write transaction that holds the vault's write lock from its
    /// start, so other writers queue instead of failing mid-transaction.
    /// SQLite: `BEGIN IMMEDIATE` (the busy timeout bounds the wait).
    /// PostgreSQL: `BEGIN` (READ COMMITTED) then the vault-wide
    /// transaction-scoped advisory lock, one writer at a time across all
    /// hosts, released by COMMIT/ROLLBACK or when the connection dies
    /// (`lock_timeout` bounds the wait). Every audited write updates the one
    /// `vault_meta` row anyway; one lock taken first keeps every
    /// read-modify-write of the store correct unchanged and cannot deadlock.
    ///
    /// # Errors
    /// Backend errors (a lock wait past the timeout).
    pub fn write_tx(&mut self) -> Result<Tx<'_>> {
        match self {
            Self::Sqlite(c) => Ok(Tx::Sqlite(
                c.transaction_with_behavior(TransactionBehavior::Immediate)?,
            )),
            // One round trip: the lock is taken as the transaction begins.
            Self::Pg(c) => Ok(Tx::Pg(PgTx::begin(c, PG_BEGIN_WRITE)?)),
        }
    }

    /// Starts a read transaction: one consistent snapshot.
    ///
    /// # Errors
    /// Backend errors.
    pub fn read_tx(&self) -> Result<Tx<'_>> {
        match self {
            Self::Sqlite(c) => Ok(Tx::Sqlite(Transaction::new_unchecked(
                c,
                TransactionBehavior::Deferred,
            )?)),
            Self::Pg(c) => Ok(Tx::Pg(PgTx::begin(
                c,
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )?)),
        }
    }

    /// Moves committed changes into the main store (SQLite:
    /// `PRAGMA wal_checkpoint(TRUNCATE)`).
    ///
    /// # Errors
    /// Backend errors.
    pub fn checkpoint(&self) -> Result<()> {
        match self {
            Self::Sqlite(c) => c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?,
            // The server moves its own WAL into place.
            Self::Pg(_) => {}
        }
        Ok(())
    }

    /// The backend's own consistency check: `["ok"]` when sound (SQLite:
    /// `PRAGMA integrity_check`). PostgreSQL checks its own pages (and
    /// data checksums where the cluster enables them), so it answers
    /// `["ok"]`; the audit chain and the seals are verified by their own
    /// commands on every backend.
    ///
    /// # Errors
    /// Backend errors.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        match self {
            Self::Sqlite(c) => {
                let mut stmt = c.prepare("PRAGMA integrity_check")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Self::Pg(_) => Ok(vec!["ok".to_owned()]),
        }
    }

    /// Sets how much memory the connection may use as a page cache, in KiB
    /// (SQLite: `PRAGMA cache_size = -kib`); for large batches.
    ///
    /// # Errors
    /// Backend errors.
    pub fn set_cache_kib(&self, kib: i64) -> Result<()> {
        match self {
            Self::Sqlite(c) => c.pragma_update(None, "cache_size", -kib)?,
            // The server's buffers are its administrator's business.
            Self::Pg(_) => {}
        }
        Ok(())
    }
}

/// A transaction. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx<'c> {
    /// A SQLite transaction.
    Sqlite(Transaction<'c>),
    /// A PostgreSQL transaction.
    Pg(PgTx<'c>),
}

thread_local! {
    /// PostgreSQL COMMITs this thread has sent (see [`commits_sent`]).
    static COMMITS_SENT: Cell<u64> = const { Cell::new(0) };
}

/// How many PostgreSQL COMMITs this thread has sent, successful or not. An
/// operation that sent none since it began has written nothing that lasts,
/// so it may run again after losing its connection.
pub(crate) fn commits_sent() -> u64 {
    COMMITS_SENT.get()
}

/// An open PostgreSQL transaction on a connection. Dropped without
/// a commit, it sends `ROLLBACK` (errors ignored: a lost connection
/// has rolled back on the server already).
pub struct PgTx<'c> {
    conn: &'c PgConn,
    open: bool,
}

impl<'c> PgTx<'c> {
    /// Sends `begin` (a `BEGIN …` text).
    fn begin(conn: &'c PgConn, begin: &str) -> Result<Self> {
        if let Err(e) = conn.begin(begin) {
            // A statement sent with the BEGIN (the write lock, past its
            // timeout) fails inside the new transaction: end it.
            let _ = conn.batch("ROLLBACK");
            return Err(e.into());
        }
        Ok(Self { conn, open: true })
    }

    /// Sends `COMMIT` or `ROLLBACK`.
    fn end(mut self, statement: &str) -> Result<()> {
        self.open = false;
        if statement == "COMMIT" {
            COMMITS_SENT.set(COMMITS_SENT.get() + 1);
        }
        Ok(self.conn.batch(statement)?)
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

impl Tx<'_> {
    /// Runs one statement; the number of rows it changed.
    ///
    /// # Errors
    /// Backend errors, constraint violations.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Self::Sqlite(t) => {
                let n = t.prepare_cached(sql)?.execute(params_from_iter(args))?;
                Ok(n as u64)
            }
            Self::Pg(t) => Ok(t.conn.execute(sql, args)?),
        }
    }

    /// Runs a script of statements without arguments (migrations).
    ///
    /// # Errors
    /// Backend errors.
    pub fn run_script(&self, sql: &str) -> Result<()> {
        match self {
            Self::Sqlite(t) => Ok(t.execute_batch(sql)?),
            Self::Pg(t) => Ok(t.conn.batch(sql)?),
        }
    }

    /// Calls `f` on the rows of a query in order, streaming (no row is
    /// kept), until `f` breaks or the rows end. For whole-table walks.
    ///
    /// # Errors
    /// Backend errors, and the first error `f` returns (which ends the walk).
    pub fn for_each_row(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        match self {
            Self::Sqlite(t) => {
                let mut stmt = t.prepare_cached(sql)?;
                let mut rows = stmt.query(params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    if f(&Row::Sqlite(r))?.is_break() {
                        break;
                    }
                }
                Ok(())
            }
            Self::Pg(t) => {
                for r in t.conn.query(sql, args)? {
                    if f(&Row::Values(&r))?.is_break() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// The first row of a query through `f`, or `None` without rows
    /// (replaces rusqlite's `.optional()`).
    ///
    /// # Errors
    /// Backend errors, `f`'s error.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Self::Sqlite(t) => {
                let mut stmt = t.prepare_cached(sql)?;
                let mut rows = stmt.query(params_from_iter(args))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)).map(Some),
                    None => Ok(None),
                }
            }
            Self::Pg(t) => match t.conn.query(sql, args)?.first() {
                Some(r) => f(&Row::Values(r)).map(Some),
                None => Ok(None),
            },
        }
    }

    /// The first row of a query through `f`.
    ///
    /// # Errors
    /// No row (SQLite's `QueryReturnedNoRows`), backend errors, `f`'s error.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, args, f)?.ok_or_else(|| match self {
            Self::Sqlite(_) => rusqlite::Error::QueryReturnedNoRows.into(),
            Self::Pg(_) => PgError::Other("the query returned no rows".into()).into(),
        })
    }

    /// Every row of a query through `f`.
    ///
    /// # Errors
    /// Backend errors, `f`'s first error.
    pub fn query_map<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.for_each_row(sql, args, |r| {
            out.push(f(r)?);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    /// The format version recorded in the database (SQLite: `PRAGMA
    /// user_version`; PostgreSQL: the `authvault_format` row).
    ///
    /// # Errors
    /// Backend errors.
    pub fn format_version(&self) -> Result<i64> {
        match self {
            Self::Sqlite(t) => Ok(t.pragma_query_value(None, "user_version", |r| r.get(0))?),
            Self::Pg(_) => self.query_row(
                "SELECT version FROM authvault_format WHERE id = 1",
                &[],
                |r| r.get(0),
            ),
        }
    }

    /// The time to judge expiry by: leases, reservations and sessions that
    /// other processes wrote. SQLite: this machine's clock (every process
    /// shares it). PostgreSQL: the server's clock, so hosts whose clocks
    /// disagree still agree on whether a lease held by another host has
    /// expired.
    ///
    /// # Errors
    /// Backend errors.
    pub fn now(&self) -> Result<DateTime<Utc>> {
        match self {
            Self::Sqlite(_) => Ok(Utc::now()),
            Self::Pg(_) => {
                let micros: i64 = self.query_row(
                    "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
                    &[],
                    |r| r.get(0),
                )?;
                DateTime::from_timestamp_micros(micros).ok_or_else(|| Error::InvalidInput {
                    what: "the PostgreSQL server's clock".into(),
                    reason: format!("{micros} µs since 1970 is not a time"),
                })
            }
        }
    }

    /// Undoes the transaction's changes (as dropping it does, but reporting
    /// an error).
    ///
    /// # Errors
    /// Backend errors.
    pub fn rollback(self) -> Result<()> {
        match self {
            Self::Sqlite(t) => Ok(t.rollback()?),
            Self::Pg(t) => t.end("ROLLBACK"),
        }
    }

    /// Makes the transaction's changes durable.
    ///
    /// # Errors
    /// Backend errors.
    pub fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite(t) => Ok(t.commit()?),
            Self::Pg(t) => t.end("COMMIT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn arg<T: ToArg + ?Sized>(v: &T) -> Arg<'_> {
        v.to_arg().unwrap()
    }

    #[test]
    fn integers_bind_as_i64_and_unsigned_overflow_is_refused() {
        assert_eq!(arg(&-5i64), Arg::I64(-5));
        assert_eq!(arg(&-7i32), Arg::I64(-7));
        assert_eq!(arg(&u32::MAX), Arg::I64(i64::from(u32::MAX)));
        assert_eq!(arg(&(i64::MAX as u64)), Arg::I64(i64::MAX));
        assert_eq!(arg(&3usize), Arg::I64(3));
        assert_eq!(arg(&true), Arg::I64(1));
        assert_eq!(arg(&false), Arg::I64(0));
        for big in [i64::MAX as u64 + 1, u64::MAX] {
            let err = big.to_arg().unwrap_err();
            assert!(matches!(err, Error::Sqlite { .. }), "{big}: {err:?}");
            assert!(err.to_string().contains("does not fit"), "{err}");
        }
        assert!((usize::MAX).to_arg().is_err());
    }

    #[test]
    fn text_and_bytes_are_borrowed_and_none_is_a_typed_null() {
        let s = String::from("abc");
        assert!(matches!(arg(&s), Arg::Text(t) if std::ptr::eq(t, s.as_str())));
        assert_eq!(arg(&"x"), Arg::Text("x"));
        let v = vec![1u8, 2];
        assert!(matches!(arg(&v), Arg::Blob(b) if std::ptr::eq(b, v.as_slice())));
        assert_eq!(arg(&[7u8; 4]), Arg::Blob(&[7, 7, 7, 7]));
        assert_eq!(arg(&&b"hi"[..]), Arg::Blob(b"hi"));
        assert_eq!(arg(&None::<u64>), Arg::Null(Kind::I64));
        assert_eq!(arg(&None::<&str>), Arg::Null(Kind::Text));
        assert_eq!(arg(&None::<Vec<u8>>), Arg::Null(Kind::Blob));
        assert_eq!(arg(&Some(4u32)), Arg::I64(4));
        assert!(Some(u64::MAX).to_arg().is_err());
    }

    #[test]
    fn args_macro_converts_each_argument_and_stops_at_an_overflow() {
        fn build(n: u64) -> Result<usize> {
            let name = String::from("n");
            let a = args![n, name, None::<i64>, [0u8; 2]];
            Ok(a.len())
        }
        assert_eq!(build(1).unwrap(), 4);
        assert!(build(u64::MAX).is_err());
    }

    #[test]
    fn integers_come_from_i64_values_and_bools_from_bool_or_0_1() {
        assert_eq!(i64::from_value(&Value::I64(-3), 0).unwrap(), -3);
        assert_eq!(u32::from_value(&Value::I64(7), 0).unwrap(), 7);
        assert_eq!(u64::from_value(&Value::I64(9), 0).unwrap(), 9);
        assert_eq!(i32::from_value(&Value::I64(-9), 0).unwrap(), -9);
        assert_eq!(i64::from_value(&Value::Bool(true), 0).unwrap(), 1);
        assert!(u32::from_value(&Value::I64(-1), 0).is_err());
        assert!(u64::from_value(&Value::I64(-1), 0).is_err());
        assert!(i32::from_value(&Value::I64(i64::MAX), 0).is_err());
        assert!(bool::from_value(&Value::Bool(true), 0).unwrap());
        assert!(!bool::from_value(&Value::Bool(false), 0).unwrap());
        assert!(bool::from_value(&Value::I64(1), 0).unwrap());
        assert!(!bool::from_value(&Value::I64(0), 0).unwrap());
        assert!(bool::from_value(&Value::I64(2), 0).is_err());
        assert_eq!(
            String::from_value(&Value::Text("t".into()), 0).unwrap(),
            "t"
        );
        assert_eq!(
            Vec::<u8>::from_value(&Value::Blob(vec![1]), 0).unwrap(),
            [1]
        );
        assert_eq!(Option::<i64>::from_value(&Value::Null, 0).unwrap(), None);
        assert_eq!(
            Option::<i64>::from_value(&Value::I64(2), 0).unwrap(),
            Some(2)
        );
    }

    #[test]
    fn a_value_of_another_type_is_refused_naming_both_types() {
        let err = i64::from_value(&Value::Text("secret-ish".into()), 3).unwrap_err();
        assert_eq!(err.to_string(), "column 3: expected i64, found text");
        let err = String::from_value(&Value::Null, 1).unwrap_err();
        assert_eq!(err.to_string(), "column 1: expected String, found NULL");
        let err = bool::from_value(&Value::Blob(vec![1]), 0).unwrap_err();
        assert_eq!(err.to_string(), "column 0: expected bool, found bytes");
        let err = Vec::<u8>::from_value(&Value::Text("hunter2".into()), 2).unwrap_err();
        assert_eq!(err.to_string(), "column 2: expected Vec<u8>, found text");
    }

    #[test]
    fn debug_of_args_and_values_shows_kind_and_length_never_contents() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            Arg::Text("hunter2-token"),
            Arg::Blob(b"\x01sealed-bytes"),
            Arg::I64(424_242),
            Arg::Null(Kind::Blob)
        );
        assert_eq!(shown, "Text(len 13) Blob(len 13) I64 Null(Blob)");
        let shown = format!(
            "{:?}",
            [
                Value::Text("hunter2-token".into()),
                Value::Blob(b"sealed".to_vec()),
                Value::I64(424_242),
                Value::Bool(true),
                Value::Null
            ]
        );
        assert_eq!(shown, "[Text(len 13), Blob(len 6), I64, Bool, Null]");
    }

    /// The string literals of the store's code (comments and doc comments
    /// skipped), after checking that the code calls no rusqlite pragma method.
    fn store_literals() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store"),
            &mut files,
        );
        assert!(files.len() > 10, "store sources found: {files:?}");
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!code.contains("pragma_"), "{name} calls a pragma method");
            let mut rest = code.as_str();
            while let Some(start) = rest.find('"') {
                let body = &rest[start + 1..];
                let mut end = 0;
                let bytes = body.as_bytes();
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                out.push((name.clone(), body[..end.min(body.len())].to_owned()));
                rest = &body[(end + 1).min(body.len())..];
            }
        }
        out
    }

    #[test]
    fn store_statements_use_numbered_placeholders_and_never_pragma() {
        let literals = store_literals();
        let sql = ["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WHERE "];
        let mut statements = 0;
        for (file, lit) in &literals {
            let upper = lit.to_uppercase();
            assert!(!upper.contains("PRAGMA"), "{file}: {lit}");
            if !sql.iter().any(|k| lit.contains(k)) {
                continue;
            }
            statements += 1;
            let bytes = lit.as_bytes();
            for (i, _) in lit.match_indices('?') {
                let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                assert!(
                    next.is_ascii_digit() || next == b'N',
                    "{file}: a bare `?` in {lit}"
                );
            }
        }
        assert!(statements > 100, "only {statements} statements found");
    }

    #[test]
    fn sqlite_binds_and_reads_through_the_neutral_layer() {
        let mut conn = Conn::Sqlite(Connection::open_in_memory().unwrap());
        let tx = conn.write_tx().unwrap();
        tx.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, b BLOB)",
            &[],
        )
        .unwrap();
        let blob = vec![0u8, 1, 2];
        let id: i64 = tx
            .query_row(
                "INSERT INTO t (n, s, b) VALUES (?1, ?2, ?3) RETURNING id",
                &[Arg::I64(5), Arg::Text("five"), Arg::Blob(&blob)],
                |r| r.get(0),
            )
            .unwrap();
        let n = tx
            .execute(
                "INSERT INTO t (n, s, b) VALUES (?1, ?2, ?3)",
                &[Arg::Null(Kind::I64), Arg::Null(Kind::Text), Arg::Blob(&[])],
            )
            .unwrap();
        assert_eq!(n, 1);
        let row: (Option<i64>, Option<String>, Vec<u8>) = tx
            .query_row(
                "SELECT n, s, b FROM t WHERE id = ?1",
                &[Arg::I64(id)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, (Some(5), Some("five".into()), blob.clone()));
        let none: Option<i64> = tx
            .query_opt("SELECT n FROM t WHERE id = ?1", &[Arg::I64(99)], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(none, None);
        assert!(
            tx.query_row("SELECT n FROM t WHERE id = 99", &[], |r| r.get::<i64>(0))
                .is_err()
        );
        let all = tx
            .query_map("SELECT s IS NOT NULL FROM t ORDER BY id", &[], |r| {
                r.get::<bool>(0)
            })
            .unwrap();
        assert_eq!(all, [true, false]);
        let agg: String = tx
            .query_row(
                "SELECT string_agg(s, ' ') FROM (SELECT 'a' AS s UNION ALL SELECT 'b')",
                &[],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(agg, "a b");
        tx.commit().unwrap();
        let tx = conn.write_tx().unwrap();
        tx.execute("DELETE FROM t", &[]).unwrap();
        drop(tx);
        let count: i64 = conn
            .read_tx()
            .unwrap()
            .query_row("SELECT count(*) FROM t", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2, "a dropped transaction rolls back");
    }
}
