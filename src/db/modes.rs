//! Modes and owners of the vault's directory and files: the checks every
//! open makes (`mode_problems`) and the repair `vault doctor --fix` makes
//! (`fix_modes`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{DIR_MODE, FILE_MODE, ModePolicy, create::is_temp_name, open};
use crate::error::{Error, Result, during};

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
    pub(super) fn into_error(self) -> Error {
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

pub(super) fn parent_dir(path: &Path) -> &Path {
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
    during("repairing modes", || {
        drop(open(path, ModePolicy::Allow)?);
        let problems: Vec<_> = mode_problems(path)?
            .into_iter()
            .filter(|p| p.fixable)
            .collect();
        for p in &problems {
            chmod_nofollow(&p.path, p.want).map_err(Error::io("chmod", &p.path))?;
        }
        Ok(problems)
    })
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

pub(super) fn mode_problems_dir(dir: &Path) -> Result<Option<ModeProblem>> {
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
