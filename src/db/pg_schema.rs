//! A vault in PostgreSQL: opening (format checks, migrations) and the schema
//! of a new vault. The format version lives in the `authvault_format` row;
//! a vault owns the schema its URL selects (the database's default schema
//! unless `search_path` says otherwise).

use std::path::PathBuf;

use super::pg::{DatabaseUrl, PgConn};
use super::{PG_MIGRATIONS, Tx, format_version};
use crate::error::{Error, Result, during};

/// What the current schema holds, as far as opening and creating care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No relation at all: room for a new vault.
    Empty,
    /// An authvault vault of this format version.
    Vault(i64),
    /// Relations, but no `authvault_format` table.
    Other,
}

/// The name errors give a PostgreSQL vault: its URL without a password.
fn shown(url: &DatabaseUrl) -> PathBuf {
    PathBuf::from(url.to_string())
}

/// Connects, retrying while the server starts (the driver sets the
/// session's `lock_timeout`, which bounds a wait for the write lock as
/// SQLite's busy timeout does).
///
/// # Errors
/// Connection errors, without the password.
pub(crate) fn connect(url: &DatabaseUrl) -> Result<PgConn> {
    Ok(PgConn::connect_retrying(url, url.retry())?)
}

/// What the current schema holds; inside `tx` when given (the
/// connection's own snapshot otherwise).
///
/// # Errors
/// A search path naming no existing schema; backend errors.
pub(crate) fn inspect(tx: &Tx<'_>, url: &DatabaseUrl) -> Result<Found> {
    let (no_schema, relations, format): (bool, i64, i64) = tx.query_row(
        "SELECT current_schema() IS NULL, \
           CAST(count(*) AS BIGINT), \
           CAST(count(*) FILTER (WHERE c.relname = 'authvault_format') AS BIGINT) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if no_schema {
        return Err(Error::NotAVault {
            path: shown(url),
            reason: "its search path names no existing schema; run `CREATE SCHEMA` first".into(),
        });
    }
    if format == 0 {
        return Ok(if relations == 0 {
            Found::Empty
        } else {
            Found::Other
        });
    }
    let version = tx.query_opt(
        "SELECT version FROM authvault_format WHERE id = 1",
        &[],
        |r| r.get(0),
    )?;
    version.map(Found::Vault).ok_or_else(|| Error::NotAVault {
        path: shown(url),
        reason: "its authvault_format table has no row".into(),
    })
}

/// The error for a schema that holds something other than a vault.
pub(crate) fn other_tables(url: &DatabaseUrl) -> Error {
    Error::NotAVault {
        path: shown(url),
        reason: "the database holds other tables; use an empty database or schema".into(),
    }
}

/// Opens the vault at `url`, refusing an empty or foreign schema and a newer
/// format untouched, and bringing an older format up to date (each
/// migration in its own transaction under the vault's write lock, the
/// version re-read inside, so racing hosts apply each once).
///
/// # Errors
/// [`Error::NoVault`], [`Error::NotAVault`], [`Error::NewerFormat`],
/// connection and database errors.
pub(crate) fn open(url: &DatabaseUrl) -> Result<super::Conn> {
    during("opening the vault database", || {
        let mut conn = super::Conn::Pg(connect(url)?);
        let found = inspect(&conn.read_tx()?, url)?;
        match found {
            Found::Empty => return Err(Error::NoVault { path: shown(url) }),
            Found::Other => return Err(other_tables(url)),
            Found::Vault(v) if v > format_version() => {
                return Err(newer(url, v));
            }
            Found::Vault(v) if v < format_version() => migrate(&mut conn, url)?,
            Found::Vault(_) => {}
        }
        Ok(conn)
    })
}

fn newer(url: &DatabaseUrl, found: i64) -> Error {
    Error::NewerFormat {
        path: shown(url),
        found,
        supported: format_version(),
    }
}

fn migrate(conn: &mut super::Conn, url: &DatabaseUrl) -> Result<()> {
    during("upgrading the vault format", || {
        loop {
            let tx = conn.write_tx()?;
            let current = tx.format_version()?;
            if current > format_version() {
                return Err(newer(url, current));
            }
            let Some((name, sql)) = PG_MIGRATIONS.get(usize::try_from(current).unwrap_or(0)) else {
                return Ok(());
            };
            tracing::debug!(migration = name, "applying migration");
            tx.run_script(sql)?;
            tx.execute(
                "UPDATE authvault_format SET version = ?1 WHERE id = 1",
                &[super::Arg::I64(current + 1)],
            )?;
            tx.commit()?;
        }
    })
}

/// Creates the schema of a new vault inside `tx` (which holds the vault's
/// write lock): refuses a schema that is not empty, then applies every
/// migration and records the format version. The caller writes the first
/// rows in the same transaction, so a vault appears complete or not at all.
///
/// # Errors
/// [`Error::AlreadyExists`] for a vault, [`Error::NotAVault`] for other
/// tables; database errors.
pub(crate) fn create_schema(tx: &Tx<'_>, url: &DatabaseUrl) -> Result<()> {
    refuse_occupied(inspect(tx, url)?, url)?;
    for (name, sql) in PG_MIGRATIONS {
        tracing::debug!(migration = name, "applying migration");
        tx.run_script(sql)?;
    }
    tx.execute(
        "INSERT INTO authvault_format (id, application, version) VALUES (1, 'authvault', ?1)",
        &[super::Arg::I64(format_version())],
    )?;
    Ok(())
}

/// Refuses to create a vault where something already is.
///
/// # Errors
/// [`Error::AlreadyExists`], [`Error::NotAVault`].
pub(crate) fn refuse_occupied(found: Found, url: &DatabaseUrl) -> Result<()> {
    match found {
        Found::Empty => Ok(()),
        Found::Vault(_) => Err(Error::AlreadyExists { path: shown(url) }),
        Found::Other => Err(other_tables(url)),
    }
}
