//! The SQLite file: creation with safe modes, pragmas, migrations, mode checks.
//!
//! Architecture invariant: this module knows tables only as migration text; it
//! never seals, opens or interprets a row.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

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
];

/// `PRAGMA application_id` of every authvault file ("AUVT").
const APPLICATION_ID: i64 = 0x4155_5654;

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

/// A file or directory whose mode or owner is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeProblem {
    /// "directory" or "file".
    pub what: &'static str,
    /// The path.
    pub path: PathBuf,
    /// Permission bits found.
    pub mode: u32,
    /// Permission bits wanted.
    pub want: u32,
    /// Whether [`fix_modes`] repairs it. A directory that holds anything but
    /// the vault's own files, has the sticky bit, or is a symbolic link was
    /// not made for the vault alone, so it is reported, never changed; so is
    /// a side file that is a symbolic link.
    pub fixable: bool,
}

impl ModeProblem {
    fn into_error(self) -> Error {
        Error::InsecureMode {
            what: self.what,
            path: self.path,
            mode: self.mode,
            want: self.want,
        }
    }
}

/// The vault file and its SQLite side files (`-wal`, `-shm`, `-journal`).
#[must_use]
pub fn vault_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        files.push(PathBuf::from(side));
    }
    files
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Lists every mode problem of the vault at `path` (directory `0700`, files
/// `0600`), and files owned by another user.
///
/// # Errors
/// When a file's metadata cannot be read.
pub fn mode_problems(path: &Path) -> Result<Vec<ModeProblem>> {
    let mut problems = Vec::new();
    let dir = parent_dir(path);
    if let Some(mut p) = mode_problems_dir(dir)? {
        p.fixable = is_vault_dir(path)?;
        problems.push(p);
    }
    for file in vault_files(path) {
        match fs::symlink_metadata(&file) {
            Ok(meta) => {
                check_owner(&file, &meta)?;
                if meta.mode() & 0o077 != 0 {
                    problems.push(ModeProblem {
                        what: "file",
                        path: file,
                        mode: meta.mode() & 0o7777,
                        want: FILE_MODE,
                        fixable: !meta.file_type().is_symlink(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("inspect", &file)(e)),
        }
    }
    Ok(problems)
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(Error::ForeignOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    Ok(())
}

/// Whether the vault's directory was made for the vault alone: not a
/// symbolic link, no sticky bit, and nothing in it but the vault's files.
fn is_vault_dir(path: &Path) -> Result<bool> {
    let dir = parent_dir(path);
    let meta = fs::symlink_metadata(dir).map_err(Error::io("inspect", dir))?;
    if meta.file_type().is_symlink() || meta.mode() & 0o1000 != 0 {
        return Ok(false);
    }
    let own: Vec<_> = vault_files(path)
        .into_iter()
        .filter_map(|f| f.file_name().map(ToOwned::to_owned))
        .collect();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let name = entry.map_err(Error::io("list", dir))?.file_name();
        if !own.contains(&name) && !is_temp_name(path, &name.to_string_lossy()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sets the wanted mode on every problem [`ModeProblem::fixable`] says may
/// be repaired; returns what it changed. Checks first that `path` is an
/// authvault vault, and never follows a symbolic link: each mode is set
/// through a descriptor opened with `O_NOFOLLOW`.
///
/// # Errors
/// As `open` (not a vault, a symbolic link, a foreign owner), or when a
/// `chmod` fails.
pub fn fix_modes(path: &Path) -> Result<Vec<ModeProblem>> {
    drop(open(path, ModePolicy::Allow)?);
    let problems: Vec<_> = mode_problems(path)?
        .into_iter()
        .filter(|p| p.fixable)
        .collect();
    for p in &problems {
        chmod_nofollow(&p.path, p.want).map_err(Error::io("chmod", &p.path))?;
    }
    Ok(problems)
}

fn chmod_nofollow(path: &Path, mode: u32) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(())
}

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
}

impl Creating {
    /// The connection to the temporary file, for the first rows.
    pub(crate) fn conn(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("open until finished")
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
fn is_temp_name(path: &Path, name: &str) -> bool {
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

fn mode_problems_dir(dir: &Path) -> Result<Option<ModeProblem>> {
    let meta = fs::metadata(dir).map_err(Error::io("inspect", dir))?;
    check_owner(dir, &meta)?;
    Ok((meta.mode() & 0o077 != 0).then(|| ModeProblem {
        what: "directory",
        path: dir.to_path_buf(),
        mode: meta.mode() & 0o7777,
        want: DIR_MODE,
        fixable: false,
    }))
}

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
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
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
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A token the provider rotated must survive a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted and overwritten sealed values are zeroed on disk, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Applies the missing migrations in one `BEGIN IMMEDIATE` transaction,
/// re-reading the version inside it so racing processes apply each once.
fn migrate(conn: &Connection) -> Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(name[..4].parse::<usize>().unwrap(), i + 1, "{name}");
        }
    }

    #[test]
    fn create_then_open_and_refuse_a_second_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v/vault.db");
        let mut creating = create(&path).unwrap();
        creating
            .conn()
            .execute(
                "INSERT INTO data_keys (key_id, created_at) VALUES (1, 'now')",
                [],
            )
            .unwrap();
        drop(creating.finish().unwrap());
        assert_eq!(
            fs::metadata(dir.path().join("v")).unwrap().mode() & 0o777,
            DIR_MODE
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, FILE_MODE);
        drop(open(&path, ModePolicy::Refuse).unwrap());
        assert!(matches!(create(&path), Err(Error::AlreadyExists { .. })));
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
