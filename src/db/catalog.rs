//! The schema as the database itself reports it, for `vault copy`: the
//! vault's tables, their columns with the kind each binds as, and the
//! identity sequences behind ids the database picks. Schema only: no row of
//! a vault table is read here.

use super::sql::Kind;
use super::{Tx, args};
use crate::error::Result;

/// The vault's own tables, sorted by name: on SQLite every table but
/// SQLite's internal `sqlite_*` ones, on PostgreSQL every table of the
/// current schema but the `authvault_format` record.
///
/// # Errors
/// Backend errors.
pub(crate) fn tables(tx: &Tx<'_>) -> Result<Vec<String>> {
    let sql = match tx {
        Tx::Sqlite(_) => {
            "SELECT name FROM sqlite_schema \
             WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        }
        Tx::Pg(_) => {
            "SELECT CAST(c.relname AS TEXT) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
               AND c.relname <> 'authvault_format'"
        }
    };
    let mut names = tx.query_map(sql, &[], |r| r.get::<String>(0))?;
    names.sort();
    Ok(names)
}

/// The columns of `table` in the database's order, each with its type as
/// the database names it and the kind its values bind as (so a NULL can be
/// sent with the column's type); `None` for a type no vault column has.
///
/// # Errors
/// Backend errors.
pub(crate) fn columns(tx: &Tx<'_>, table: &str) -> Result<Vec<(String, String, Option<Kind>)>> {
    let sql = match tx {
        Tx::Sqlite(_) => "SELECT name, lower(type) FROM pragma_table_info(?1) ORDER BY cid",
        Tx::Pg(_) => {
            "SELECT CAST(a.attname AS TEXT), CAST(CAST(a.atttypid AS regtype) AS TEXT) \
             FROM pg_attribute a \
             WHERE a.attrelid = to_regclass(?1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum"
        }
    };
    tx.query_map(sql, args![table], |r| {
        let ty: String = r.get(1)?;
        let kind = match ty.as_str() {
            "integer" | "int" | "bigint" | "smallint" => Some(Kind::I64),
            "text" => Some(Kind::Text),
            "blob" | "bytea" => Some(Kind::Blob),
            _ => None,
        };
        Ok((r.get(0)?, ty, kind))
    })
}

/// How far the id sequence of `table` has gone, `0` when it has handed out
/// none: PostgreSQL's identity sequence of `column`, SQLite's
/// `sqlite_sequence` entry of an `AUTOINCREMENT` table (other SQLite tables
/// pick the largest id plus one, so their rows say it all).
///
/// # Errors
/// Backend errors.
pub(crate) fn sequence_position(tx: &Tx<'_>, table: &str, column: &str) -> Result<i64> {
    match tx {
        Tx::Sqlite(_) => tx.query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0)",
            args![table],
            |r| r.get(0),
        ),
        Tx::Pg(_) => tx.query_row(
            "SELECT coalesce(pg_sequence_last_value(\
                 CAST(pg_get_serial_sequence(?1, ?2) AS regclass)), 0)",
            args![table, column],
            |r| r.get(0),
        ),
    }
}

/// Moves the id sequence of `table` to `position` (a copy inserted its ids
/// explicitly, so the next id the database picks must come after them):
/// PostgreSQL `setval` of the identity sequence of `column` (refused when
/// there is none); on SQLite the `sqlite_sequence` entry of an
/// `AUTOINCREMENT` table, raised, never lowered (other tables need nothing).
/// `position` must be at least 1. Says whether there was a sequence to
/// move (on SQLite always `true`).
///
/// # Errors
/// Backend errors.
pub(crate) fn move_sequence(tx: &Tx<'_>, table: &str, column: &str, position: i64) -> Result<bool> {
    match tx {
        Tx::Sqlite(_) => {
            tx.execute(
                "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1 AND seq < ?2",
                args![table, position],
            )?;
            tx.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2 \
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1) \
                   AND EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 \
                               AND sql LIKE '%AUTOINCREMENT%')",
                args![table, position],
            )?;
        }
        Tx::Pg(_) => {
            let moved: Option<i64> = tx.query_row(
                "SELECT setval(pg_get_serial_sequence(?1, ?2), ?3, true)",
                args![table, column, position],
                |r| r.get(0),
            )?;
            return Ok(moved.is_some());
        }
    }
    Ok(true)
}
