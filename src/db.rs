//! The SQLite file: opening with pragmas, migrations and format checks here;
//! crash-safe creation in `db/create.rs`; modes and owners in `db/modes.rs`.
//!
//! Architecture invariant: this module knows tables only as migration text; it
//! never seals, opens or interprets a row.

pub(crate) mod catalog;
mod create;
mod location;
mod modes;
pub mod pg;
pub(crate) mod pg_schema;
pub mod sql;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub(crate) use create::create;
pub use create::vacant;
pub use location::Location;
pub use modes::{ModeProblem, fix_modes, mode_problems, vault_files};
pub(crate) use sql::{Arg, Conn, Row, ToArg, Tx, Value, args, commits_sent};

use crate::error::{Error, Result, during};

/// Embedded migrations, applied in order; the format version is their count.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_settings_history",
        include_str!("../migrations/0002_settings_history.sql"),
    ),
    (
        "0003_snapshots",
        include_str!("../migrations/0003_snapshots.sql"),
    ),
    (
        "0004_time_encoding",
        include_str!("../migrations/0004_time_encoding.sql"),
    ),
    ("0005_quota", include_str!("../migrations/0005_quota.sql")),
    ("0006_health", include_str!("../migrations/0006_health.sql")),
    (
        "0007_sessions",
        include_str!("../migrations/0007_sessions.sql"),
    ),
    ("0008_usage", include_str!("../migrations/0008_usage.sql")),
    (
        "0009_session_cwd",
        include_str!("../migrations/0009_session_cwd.sql"),
    ),
    (
        "0010_usage_rollup_in_code",
        include_str!("../migrations/0010_usage_rollup_in_code.sql"),
    ),
    ("0011_hosts", include_str!("../migrations/0011_hosts.sql")),
    (
        "0012_audit_host",
        include_str!("../migrations/0012_audit_host.sql"),
    ),
];

/// The same migrations for PostgreSQL, same names: format N is the same
/// schema on both backends.
const PG_MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_settings_history",
        include_str!("../migrations/postgres/0002_settings_history.sql"),
    ),
    (
        "0003_snapshots",
        include_str!("../migrations/postgres/0003_snapshots.sql"),
    ),
    (
        "0004_time_encoding",
        include_str!("../migrations/postgres/0004_time_encoding.sql"),
    ),
    (
        "0005_quota",
        include_str!("../migrations/postgres/0005_quota.sql"),
    ),
    (
        "0006_health",
        include_str!("../migrations/postgres/0006_health.sql"),
    ),
    (
        "0007_sessions",
        include_str!("../migrations/postgres/0007_sessions.sql"),
    ),
    (
        "0008_usage",
        include_str!("../migrations/postgres/0008_usage.sql"),
    ),
    (
        "0009_session_cwd",
        include_str!("../migrations/postgres/0009_session_cwd.sql"),
    ),
    (
        "0010_usage_rollup_in_code",
        include_str!("../migrations/postgres/0010_usage_rollup_in_code.sql"),
    ),
    (
        "0011_hosts",
        include_str!("../migrations/postgres/0011_hosts.sql"),
    ),
    (
        "0012_audit_host",
        include_str!("../migrations/postgres/0012_audit_host.sql"),
    ),
];

/// `PRAGMA application_id` of every authvault file ("AUVT").
pub(super) const APPLICATION_ID: i64 = 0x4155_5654;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_mins(1);

/// The vault format version this build writes and reads.
#[must_use]
pub fn format_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Permission bits the vault directory must have.
pub const DIR_MODE: u32 = 0o700;
/// Permission bits every vault file must have.
pub const FILE_MODE: u32 = 0o600;

/// Whether to refuse a vault whose modes are loose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModePolicy {
    /// Refuse with [`Error::InsecureMode`] (every command but `doctor`).
    Refuse,
    /// Open anyway (`vault doctor`, which reports and repairs).
    Allow,
}

/// Opens an existing vault, refusing foreign or newer files untouched and
/// bringing an older format up to date.
///
/// # Errors
/// [`Error::NoVault`], [`Error::InsecureMode`], [`Error::NotAVault`],
/// [`Error::NewerFormat`], SQLite errors.
pub(crate) fn open(path: &Path, policy: ModePolicy) -> Result<Connection> {
    during("opening the vault file", || {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::NotAVault {
                    path: path.to_path_buf(),
                    reason: "it is a symbolic link, which authvault does not follow; \
                         use the path of the file itself"
                        .into(),
                });
            }
            Ok(_) => {
                return Err(Error::NotAVault {
                    path: path.to_path_buf(),
                    reason: "not a regular file".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoVault {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io("open", path)(e)),
        }
        let problems = mode_problems(path)?;
        if let (ModePolicy::Refuse, Some(p)) = (policy, problems.into_iter().next()) {
            return Err(p.into_error());
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let not_a_vault = |reason: &str| Error::NotAVault {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    not_a_vault("not a SQLite database")
                }
                other => other.into(),
            })?;
        if app_id != APPLICATION_ID {
            return Err(not_a_vault("SQLite database of another application"));
        }
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > format_version() {
            return Err(Error::NewerFormat {
                path: path.to_path_buf(),
                found: version,
                supported: format_version(),
            });
        }
        if version == 0 {
            return Err(not_a_vault("no authvault schema"));
        }
        configure(&conn)?;
        if version < format_version() {
            migrate(&conn)?;
        }
        Ok(conn)
    })
}

pub(super) fn configure(conn: &Connection) -> Result<()> {
    during("configuring the connection", || {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A token the provider rotated must survive a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Deleted and overwritten sealed values are zeroed on disk, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(())
    })
}

/// Applies the missing migrations in one `BEGIN IMMEDIATE` transaction,
/// re-reading the version inside it so racing processes apply each once.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
    during("upgrading the vault format", || {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current > format_version() {
            return Err(Error::NewerFormat {
                path: PathBuf::from(conn.path().unwrap_or_default()),
                found: current,
                supported: format_version(),
            });
        }
        for (i, (name, sql)) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            tracing::debug!(migration = name, "applying migration");
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(name[..4].parse::<usize>().unwrap(), i + 1, "{name}");
        }
    }

    #[test]
    fn postgres_migrations_have_the_sqlite_names_in_the_same_order() {
        let names = |list: &[(&'static str, &str)]| list.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(names(PG_MIGRATIONS), names(MIGRATIONS));
        for (name, sql) in PG_MIGRATIONS {
            assert!(!sql.trim().is_empty(), "{name} is empty");
        }
    }

    #[test]
    fn foreign_files_are_not_vaults() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("x.db");
        fs::write(
            &path,
            b"hello, this is not sqlite at all, not even close.....",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let r = open(&path, ModePolicy::Refuse);
        assert!(
            matches!(r, Err(Error::NotAVault { .. })),
            "text file: {:?}",
            r.err()
        );
        let other = dir.path().join("y.db");
        drop(
            Connection::open(&other)
                .unwrap()
                .execute_batch("CREATE TABLE t(x)"),
        );
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            matches!(
                open(&other, ModePolicy::Refuse),
                Err(Error::NotAVault { .. })
            ),
            "other sqlite"
        );
    }
}
