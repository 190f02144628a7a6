//! Reading legacy source files and writing exported ones.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::formats::MAX_SOURCE_BYTES;
use crate::error::{Error, Result};

/// A source file's bytes and what its mode says about exposure.
pub(crate) struct SourceFile {
    pub bytes: Zeroizing<Vec<u8>>,
    /// Permission bits, when group or others could read the file.
    pub exposed_mode: Option<u32>,
}

/// Reads a source file, at most one byte past the parser's limit (so an
/// oversized file is reported, not loaded whole).
///
/// The file is opened without blocking (a FIFO with no writer would otherwise
/// wait forever) and refused unless the opened file is a regular one.
pub(crate) fn read_source(path: &Path) -> std::io::Result<SourceFile> {
    read_with(path, rustix::fs::OFlags::empty())
}

/// As [`read_source`], but a symbolic link is refused too (not followed):
/// for files in the vault's own directories that another program wrote.
pub(crate) fn read_private(path: &Path) -> std::io::Result<SourceFile> {
    read_with(path, rustix::fs::OFlags::NOFOLLOW).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            std::io::Error::other("a symbolic link, not a regular file; nothing was read")
        } else {
            e
        }
    })
}

fn read_with(path: &Path, extra: rustix::fs::OFlags) -> std::io::Result<SourceFile> {
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY | extra;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "not a regular file (a {}); nothing was read",
            file_kind(meta.file_type())
        )));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(meta.len())
            .unwrap_or(0)
            .min(MAX_SOURCE_BYTES + 1),
    ));
    file.take(MAX_SOURCE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let mode = meta.mode() & 0o777;
    Ok(SourceFile {
        bytes,
        exposed_mode: (mode & 0o044 != 0).then_some(mode),
    })
}

fn file_kind(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

/// Expands `--from` arguments: a directory stands for the `*.json` entries in
/// it other than directories (anything else that is not a regular file, such
/// as a FIFO, is then refused by [`read_source`], naming it).
pub(crate) fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        match fs::read_dir(p) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| !f.is_dir() && f.extension().is_some_and(|e| e == "json"))
                    .collect();
                files.sort();
                out.extend(files);
            }
            Err(_) => out.push(p.clone()),
        }
    }
    out
}

/// Writes `bytes` to `path` with mode `0600`, atomically: a temporary file in
/// the same directory, fsync, rename, fsync of the directory. An existing
/// file is replaced only with `force`.
///
/// # Errors
/// [`Error::ExportTargetExists`], I/O errors naming the path.
pub fn write_private_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(Error::ExportTargetExists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .create(dir)
            .map_err(Error::io("create directory", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(Error::io("chmod", dir))?;
    }
    let mut suffix = [0u8; 6];
    crate::crypto::fill_random(&mut suffix)?;
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::crypto::hex(&suffix)));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(Error::io("chmod", &tmp))?;
        file.write_all(bytes).map_err(Error::io("write", &tmp))?;
        file.sync_all().map_err(Error::io("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(Error::io("rename into place", path))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("fsync", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_refuses_to_clobber_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("auth.json");
        write_private_atomic(&path, b"one", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(
            write_private_atomic(&path, b"two", false),
            Err(Error::ExportTargetExists(_))
        ));
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_private_atomic(&path, b"two", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }
}
