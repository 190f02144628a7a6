//! Crash-safe creation: a vault is built under a temporary name in its
//! directory and appears at its path only complete; `vacant` says whether a
//! vault may be created at a path.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::Tx;
use super::modes::{mode_problems_dir, parent_dir, vault_files};
use super::{APPLICATION_ID, DIR_MODE, FILE_MODE, ModePolicy, configure, migrate, open};
use crate::error::{Error, Result, during};

/// A vault being created: a complete database under a temporary name in the
/// vault's directory (`.<name>.<16 hex digits>.tmp`, created `0600` with
/// `O_EXCL` and held under an exclusive `flock` while in use), published at
/// the vault path by [`Creating::finish`] only once complete. Dropped before
/// that, it removes the temporary file; killed before that, it leaves only
/// the temporary file, which the next creation removes.
pub(crate) struct Creating {
    conn: Option<Connection>,
    path: PathBuf,
    tmp: PathBuf,
    published: bool,
    /// The temporary file, locked: tells a later creation it is in use.
    /// Declared after `conn`, closed after it (closing any descriptor of
    /// the file would drop SQLite's own locks on it).
    lock: fs::File,
}

/// Creates a new, empty vault database for `path`, schema applied, modes
/// safe whatever the umask; see [`Creating`]. Fails if anything but an
/// interrupted creation's leftover is at `path` (see [`vacant`]).
///
/// # Errors
/// [`Error::AlreadyExists`], I/O and SQLite errors.
pub(crate) fn create(path: &Path) -> Result<Creating> {
    during("creating the vault file", || {
        let dir = parent_dir(path);
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(Error::io("create directory", dir))?;
            // `mode` is filtered through the umask; set it explicitly.
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                .map_err(Error::io("chmod", dir))?;
        }
        if let Some(p) = mode_problems_dir(dir)? {
            return Err(p.into_error());
        }
        remove_leftovers(path)?;
        if !vacant(path)? {
            return Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        // An interrupted creation's stub (see `is_stub`): nothing in it to keep.
        for file in vault_files(path) {
            remove_if_present(&file)?;
        }

        let mut suffix = [0u8; 8];
        crate::crypto::fill_random(&mut suffix)?;
        let tmp = dir.join(format!(
            "{}{}{TEMP_SUFFIX}",
            temp_prefix(path),
            crate::crypto::hex(&suffix)
        ));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        let mut creating = Creating {
            conn: None,
            path: path.to_path_buf(),
            tmp,
            published: false,
            lock,
        };
        let tmp = &creating.tmp;
        rustix::fs::flock(
            &creating.lock,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        )
        .map_err(|e| Error::io("lock", tmp)(e.into()))?;
        creating
            .lock
            .set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(Error::io("chmod", tmp))?;
        // Rollback-journal mode while the file has its temporary name (its
        // `-journal` is named after it and gone after each commit); WAL is
        // switched on in `finish`, after which closing removes `-wal`/`-shm`.
        let conn = Connection::open_with_flags(
            tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        configure(&conn)?;
        migrate(&conn)?;
        creating.conn = Some(conn);
        Ok(creating)
    })
}

impl Creating {
    /// A write transaction on the temporary file, for the first rows.
    pub(crate) fn write_tx(&mut self) -> Result<Tx<'_>> {
        let conn = self.conn.as_mut().expect("open until finished");
        Ok(Tx::Sqlite(conn.transaction_with_behavior(
            TransactionBehavior::Immediate,
        )?))
    }

    /// Publishes the complete vault at its path and opens it there: WAL on,
    /// connection closed (so no `-wal`/`-shm` named after the temporary file
    /// holds anything), file fsynced, renamed into place without replacing
    /// anything that appeared there meanwhile, directory fsynced.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when something appeared at the path, I/O and
    /// SQLite errors; before the rename, the temporary file is removed.
    pub(crate) fn finish(mut self) -> Result<Connection> {
        during("publishing the new vault file", || {
            let conn = self.conn.take().expect("open until finished");
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            conn.close().map_err(|(_, e)| e)?;
            if mode != "wal" {
                return Err(Error::NotAVault {
                    path: self.tmp.clone(),
                    reason: format!("SQLite kept journal mode {mode} instead of WAL"),
                });
            }
            for side in &vault_files(&self.tmp)[1..] {
                if fs::symlink_metadata(side).is_ok() {
                    return Err(Error::io("close", side)(std::io::Error::other(
                        "SQLite left this file behind; the vault was not created",
                    )));
                }
            }
            self.lock
                .sync_all()
                .map_err(Error::io("fsync", &self.tmp))?;
            match publish(&self.tmp, &self.path) {
                Ok(()) => self.published = true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::AlreadyExists {
                        path: self.path.clone(),
                    });
                }
                Err(e) => return Err(Error::io("rename into place", &self.path)(e)),
            }
            let dir = parent_dir(&self.path);
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(Error::io("fsync", dir))?;
            let conn = open(&self.path, ModePolicy::Refuse)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            Ok(conn)
        })
    }
}

impl Drop for Creating {
    fn drop(&mut self) {
        drop(self.conn.take());
        if !self.published {
            for file in vault_files(&self.tmp) {
                let _ = fs::remove_file(file);
            }
        }
    }
}

const TEMP_SUFFIX: &str = ".tmp";

/// `.<vault file name>.`: how the temporary files of a creation begin.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "vault".into(), |n| n.to_string_lossy().into_owned());
    format!(".{name}.")
}

/// Whether `name` (in the vault's directory) is a creation's temporary file
/// or one of its SQLite side files.
pub(super) fn is_temp_name(path: &Path, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(&temp_prefix(path)) else {
        return false;
    };
    let rest = ["-wal", "-shm", "-journal"]
        .iter()
        .find_map(|s| rest.strip_suffix(s))
        .unwrap_or(rest);
    rest.strip_suffix(TEMP_SUFFIX)
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Renames `tmp` to `path` unless something exists at `path` (then
/// `AlreadyExists`): `renameat2(RENAME_NOREPLACE)`, or where the filesystem
/// lacks it, a hard link and an unlink.
fn publish(tmp: &Path, path: &Path) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::io::Errno;
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(()),
            Err(e) if e == Errno::INVAL || e == Errno::NOSYS || e == Errno::OPNOTSUPP => {}
            Err(e) => return Err(e.into()),
        }
    }
    fs::hard_link(tmp, path)?;
    fs::remove_file(tmp)
}

/// Removes the temporary files of creations that were killed: those no
/// live creation holds locked.
fn remove_leftovers(path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    let me = rustix::process::getuid().as_raw();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !is_temp_name(path, &name)
            || name.ends_with("-wal")
            || name.ends_with("-shm")
            || name.ends_with("-journal")
        {
            continue;
        }
        let tmp = entry.path();
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)
        else {
            continue;
        };
        let ours = file.metadata().is_ok_and(|m| m.is_file() && m.uid() == me);
        let unused =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
        if ours && unused {
            for file in vault_files(&tmp) {
                remove_if_present(&file)?;
            }
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Whether a vault can be created at `path`: nothing is there, or only the
/// stub of a creation an older authvault was killed in (see `is_stub`).
///
/// # Errors
/// When the path cannot be inspected.
pub fn vacant(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io("inspect", path)(e)),
        Ok(meta) => Ok(is_stub(path, &meta)),
    }
}

/// A stub left by an older authvault killed while creating the vault in
/// place: a regular file of yours with a single name, holding no data at
/// all: an SQLite database (its `-wal` included) that is either authvault's
/// (`application_id`) with not one row in any table, or has no table and no
/// application id (an empty file counts). Anything else might be someone's
/// data and is never replaced.
fn is_stub(path: &Path, meta: &fs::Metadata) -> bool {
    let me = rustix::process::getuid().as_raw();
    if !meta.is_file() || meta.uid() != me || meta.nlink() != 1 {
        return false;
    }
    let Ok(conn) = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return false;
    };
    let empty = || -> rusqlite::Result<bool> {
        let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if app_id == 0 {
            return Ok(tables.is_empty());
        }
        if app_id != APPLICATION_ID {
            return Ok(false);
        }
        for table in tables {
            let quoted = table.replace('"', "\"\"");
            let any: bool = conn.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM \"{quoted}\")"),
                [],
                |r| r.get(0),
            )?;
            if any {
                return Ok(false);
            }
        }
        Ok(true)
    };
    empty().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_open_and_refuse_a_second_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v/vault.db");
        let mut creating = create(&path).unwrap();
        let tx = creating.write_tx().unwrap();
        tx.execute(
            "INSERT INTO data_keys (key_id, created_at) VALUES (1, 'now')",
            &[],
        )
        .unwrap();
        tx.commit().unwrap();
        drop(creating.finish().unwrap());
        assert_eq!(
            fs::metadata(dir.path().join("v")).unwrap().mode() & 0o777,
            DIR_MODE
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, FILE_MODE);
        drop(open(&path, ModePolicy::Refuse).unwrap());
        assert!(matches!(create(&path), Err(Error::AlreadyExists { .. })));
    }
}
