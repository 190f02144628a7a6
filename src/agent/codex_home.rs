//! A private `CODEX_HOME` for one Codex run with a ChatGPT login.
//!
//! Codex reads a ChatGPT login only from `$CODEX_HOME/auth.json` (no
//! environment variable), and writes refreshed tokens back there. So the
//! vault hands it a directory of its own: `auth.json` holds the vault's
//! tokens, every other entry of the user's real `CODEX_HOME` (config,
//! history, logs) is a symbolic link to the real one, so logs and history
//! land where they always do. The real `auth.json` is never linked: the
//! child sees only what the vault wrote. `sessions/` is the run's own (not
//! a link): its rollouts are exactly this run's usage, imported attributed
//! to the granted account and then moved into the real `sessions/`
//! ([`CodexHome::move_sessions`]) so Codex's own history is kept.
//!
//! The directory is `codex-<pid>-<random>` under a directory the vault owns,
//! mode 0700; `auth.json` is 0600. Dropping a [`CodexHome`] removes the
//! directory; a link is removed as a link, never followed, so the real
//! `CODEX_HOME` is left as it was. A vault killed before that leaves the
//! directory behind; [`stale_homes`] finds those of dead processes.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::import::files::{read_private, write_private_atomic};

const PREFIX: &str = "codex-";
const AUTH_JSON: &str = "auth.json";
const SESSIONS: &str = "sessions";

/// A private `CODEX_HOME`, removed when dropped.
#[derive(Debug)]
pub struct CodexHome {
    path: PathBuf,
}

impl CodexHome {
    /// Creates a fresh directory `codex-<pid>-<random>` (0700) under
    /// `parent_dir` (created 0700 when missing), writes `auth_json` to its
    /// `auth.json` (0600, never replacing anything) and links every entry of
    /// `real_codex_home` but `auth.json` into it. A missing
    /// `real_codex_home` gives no links. On any failure nothing is left
    /// behind.
    ///
    /// # Errors
    /// I/O errors naming the path; the random source failing.
    pub fn create(parent_dir: &Path, real_codex_home: &Path, auth_json: &[u8]) -> Result<Self> {
        match fs::DirBuilder::new().mode(0o700).create(parent_dir) {
            Ok(()) => fs::set_permissions(parent_dir, fs::Permissions::from_mode(0o700))
                .map_err(Error::io("chmod", parent_dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", parent_dir)(e)),
        }
        let mut random = [0u8; 8];
        crate::crypto::fill_random(&mut random)?;
        let path = parent_dir.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            crate::crypto::hex(&random)
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(Error::io("create directory", &path))?;
        // From here on, dropping `home` removes the directory again.
        let home = Self { path };
        fs::set_permissions(&home.path, fs::Permissions::from_mode(0o700))
            .map_err(Error::io("chmod", &home.path))?;
        write_private_atomic(&home.path.join(AUTH_JSON), auth_json, false)?;
        let sessions = home.sessions();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&sessions)
            .map_err(Error::io("create directory", &sessions))?;
        home.link_entries(real_codex_home)?;
        Ok(home)
    }

    fn link_entries(&self, real: &Path) -> Result<()> {
        let real = std::path::absolute(real).map_err(Error::io("resolve", real))?;
        let entries = match fs::read_dir(&real) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("read directory", &real)(e)),
        };
        for entry in entries {
            let name = entry
                .map_err(Error::io("read directory", &real))?
                .file_name();
            if name == AUTH_JSON || name == SESSIONS {
                continue;
            }
            let link = self.path.join(&name);
            std::os::unix::fs::symlink(real.join(&name), &link)
                .map_err(Error::io("create link", &link))?;
        }
        Ok(())
    }

    /// The directory, for `CODEX_HOME`.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's own `sessions/`, where Codex writes this run's rollouts.
    #[must_use]
    pub fn sessions(&self) -> PathBuf {
        self.path.join(SESSIONS)
    }

    /// Moves every file below the run's `sessions/` to the same relative
    /// path below `real_codex_home`'s `sessions/` (directories created 0700
    /// as needed), never replacing a file that is there; returns where they
    /// went. Links and special files are left where they are.
    ///
    /// # Errors
    /// I/O errors naming the path; `AlreadyExists` for a rollout whose name
    /// is taken in the real home (that file stays in the private one).
    pub fn move_sessions(&self, real_codex_home: &Path) -> Result<Vec<PathBuf>> {
        let mut moved = Vec::new();
        move_files(
            &self.sessions(),
            &real_codex_home.join(SESSIONS),
            &mut moved,
        )?;
        Ok(moved)
    }

    /// What is in `auth.json` now (Codex rewrites it when it refreshes the
    /// tokens). A symbolic link or anything but a regular file there is
    /// refused, not followed.
    ///
    /// # Errors
    /// I/O errors naming the path (missing file, link, special file).
    pub fn read_auth(&self) -> Result<Zeroizing<Vec<u8>>> {
        let path = self.path.join(AUTH_JSON);
        Ok(read_private(&path).map_err(Error::io("read", &path))?.bytes)
    }

    /// Keeps the directory for its rollouts only (when they could not be
    /// moved): everything but `sessions/` is removed, `auth.json` first, and
    /// dropping no longer removes it; [`stale_homes`] finds it again.
    ///
    /// # Errors
    /// I/O errors naming the path.
    pub fn leave_sessions(mut self) -> Result<()> {
        let path = std::mem::take(&mut self.path);
        for entry in fs::read_dir(&path).map_err(Error::io("read directory", &path))? {
            let entry = entry.map_err(Error::io("read directory", &path))?;
            if entry.file_name() != SESSIONS {
                let p = entry.path();
                fs::remove_file(&p).map_err(Error::io("remove", &p))?;
            }
        }
        Ok(())
    }

    /// Removes the directory now, reporting a failure (dropping removes it
    /// too, silently).
    ///
    /// # Errors
    /// I/O errors naming the directory.
    pub fn remove(mut self) -> Result<()> {
        let path = std::mem::take(&mut self.path);
        fs::remove_dir_all(&path).map_err(Error::io("remove directory", &path))
    }
}

impl Drop for CodexHome {
    fn drop(&mut self) {
        // Empty after `remove`. `remove_dir_all` does not follow links: it
        // removes them.
        if !self.path.as_os_str().is_empty()
            && let Err(e) = fs::remove_dir_all(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "removing a private CODEX_HOME failed");
        }
    }
}

/// Moves what it can; the first failure is returned after the rest moved.
fn move_files(from: &Path, to: &Path, moved: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read directory", from)(e)),
    };
    let mut first_error = None;
    for entry in entries {
        let entry = entry.map_err(Error::io("read directory", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let result = match entry.file_type() {
            Ok(kind) if kind.is_dir() => move_files(&src, &dst, moved),
            Ok(kind) if kind.is_file() => move_file(&src, &dst, to).map(|()| moved.push(dst)),
            Ok(_) => Ok(()),
            Err(e) => Err(Error::io("read metadata of", &src)(e)),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn move_file(src: &Path, dst: &Path, dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("create directory", dir))?;
    // A hard link never replaces an existing file; across file systems the
    // bytes are copied into a new file instead.
    match fs::hard_link(src, dst) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dst)
                .map_err(Error::io("create", dst))?;
            let mut input = fs::File::open(src).map_err(Error::io("open", src))?;
            std::io::copy(&mut input, &mut out).map_err(Error::io("write", dst))?;
        }
        Err(e) => return Err(Error::io("move a rollout to", dst)(e)),
    }
    fs::remove_file(src).map_err(Error::io("remove", src))
}

/// The private `CODEX_HOME`s under `parent_dir` whose vault process is gone
/// (killed before it could clean up): the caller can read the tokens left
/// in them, and removes them by dropping them. Those of live processes and
/// any other entry are left alone; a missing `parent_dir` has none.
///
/// # Errors
/// I/O errors naming the path.
pub fn stale_homes(parent_dir: &Path) -> Result<Vec<CodexHome>> {
    let entries = match fs::read_dir(parent_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", parent_dir)(e)),
    };
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io("read directory", parent_dir))?;
        let Some(pid) = owner_pid(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !crate::process::exists(pid) {
            stale.push(CodexHome { path: entry.path() });
        }
    }
    Ok(stale)
}

/// The pid in a `codex-<pid>-<random>` name.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, random) = name.strip_prefix(PREFIX)?.split_once('-')?;
    if random.is_empty() || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    const AUTH: &[u8] = br#"{"auth_mode":"chatgpt"}"#;

    /// A real `CODEX_HOME` as Codex leaves it.
    fn real_home(dir: &Path) -> PathBuf {
        let real = dir.join("real-codex");
        fs::create_dir_all(real.join("sessions").join("2026")).unwrap();
        fs::write(real.join("auth.json"), b"the user's own login").unwrap();
        fs::write(real.join("config.toml"), b"model = \"o3\"\n").unwrap();
        fs::write(real.join("history.jsonl"), b"{}\n").unwrap();
        fs::write(real.join("sessions").join("2026").join("s.jsonl"), b"x").unwrap();
        real
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(snapshot(&path));
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_private_home_is_0700_with_auth_json_0600_and_links_to_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let real = real_home(dir.path());
        let run = dir.path().join("run");
        let home = CodexHome::create(&run, &real, AUTH).unwrap();

        assert_eq!(fs::metadata(&run).unwrap().mode() & 0o777, 0o700);
        let name = home.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(owner_pid(name), Some(std::process::id()));
        assert_eq!(fs::metadata(home.path()).unwrap().mode() & 0o777, 0o700);
        let auth = home.path().join("auth.json");
        let meta = fs::symlink_metadata(&auth).unwrap();
        assert!(meta.is_file(), "auth.json is our own file, not a link");
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::read(&auth).unwrap(), AUTH);

        let mut links: Vec<(String, PathBuf)> = fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_symlink())
            .map(|e| {
                let name = e.file_name().into_string().unwrap();
                (name, fs::read_link(e.path()).unwrap())
            })
            .collect();
        links.sort();
        let want: Vec<(String, PathBuf)> = ["config.toml", "history.jsonl"]
            .into_iter()
            .map(|n| (n.to_owned(), real.join(n)))
            .collect();
        assert_eq!(links, want);
        // sessions/ is the run's own, empty, 0700.
        let sessions = fs::symlink_metadata(home.sessions()).unwrap();
        assert!(sessions.is_dir());
        assert_eq!(sessions.mode() & 0o777, 0o700);
        assert_eq!(fs::read_dir(home.sessions()).unwrap().count(), 0);
        assert_eq!(fs::read_dir(home.path()).unwrap().count(), 4);
    }

    #[test]
    fn dropping_it_removes_only_the_private_home_and_the_real_one_stays_intact() {
        let dir = tempfile::tempdir().unwrap();
        let real = real_home(dir.path());
        let before = snapshot(&real);
        let home = CodexHome::create(&dir.path().join("run"), &real, AUTH).unwrap();
        let path = home.path().to_path_buf();
        // What the child writes through the links lands in the real home.
        fs::write(path.join("history.jsonl"), b"log").unwrap();
        drop(home);
        assert!(!path.exists());
        let mut after = snapshot(&real);
        let new = real.join("history.jsonl");
        let mut before = before;
        before.retain(|(p, _)| *p != new);
        assert_eq!(
            after
                .iter()
                .position(|(p, _)| *p == new)
                .map(|i| after.remove(i).1),
            Some(b"log".to_vec())
        );
        assert_eq!(after, before);
    }

    #[test]
    fn the_runs_rollouts_move_to_the_same_place_in_the_real_sessions_never_replacing_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = real_home(dir.path());
        let home = CodexHome::create(&dir.path().join("run"), &real, AUTH).unwrap();
        let day = home.sessions().join("2026").join("11").join("30");
        fs::create_dir_all(&day).unwrap();
        fs::write(day.join("rollout-a.jsonl"), b"a").unwrap();
        fs::write(home.sessions().join("2026").join("s.jsonl"), b"clash").unwrap();
        let err = home.move_sessions(&real).unwrap_err();
        assert!(err.to_string().contains("s.jsonl"), "{err}");
        // The clashing file stays where it was and the real one is
        // untouched; the other rollout moved all the same.
        assert_eq!(fs::read(real.join("sessions/2026/s.jsonl")).unwrap(), b"x");
        assert_eq!(
            fs::read(home.sessions().join("2026/s.jsonl")).unwrap(),
            b"clash"
        );
        let target = real.join("sessions/2026/11/30/rollout-a.jsonl");
        assert_eq!(fs::read(&target).unwrap(), b"a");
        assert!(!day.join("rollout-a.jsonl").exists());
        fs::write(day.join("rollout-b.jsonl"), b"b").unwrap();
        fs::remove_file(home.sessions().join("2026/s.jsonl")).unwrap();
        let moved = home.move_sessions(&real).unwrap();
        assert_eq!(moved, [real.join("sessions/2026/11/30/rollout-b.jsonl")]);
    }

    #[test]
    fn remove_reports_and_removes_like_drop() {
        let dir = tempfile::tempdir().unwrap();
        let real = real_home(dir.path());
        let home = CodexHome::create(&dir.path().join("run"), &real, AUTH).unwrap();
        let path = home.path().to_path_buf();
        home.remove().unwrap();
        assert!(!path.exists());
        assert!(real.join("auth.json").exists());
    }

    #[test]
    fn a_missing_real_codex_home_gives_no_links() {
        let dir = tempfile::tempdir().unwrap();
        let home =
            CodexHome::create(&dir.path().join("run"), &dir.path().join("none"), AUTH).unwrap();
        let mut names: Vec<_> = fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["auth.json", "sessions"]);
        assert!(!dir.path().join("none").exists());
    }

    #[test]
    fn read_auth_returns_what_the_child_wrote_and_refuses_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = real_home(dir.path());
        let home = CodexHome::create(&dir.path().join("run"), &real, AUTH).unwrap();
        let auth = home.path().join("auth.json");
        // Codex replaces the file when it refreshes.
        fs::remove_file(&auth).unwrap();
        fs::write(&auth, b"rotated").unwrap();
        assert_eq!(home.read_auth().unwrap().as_slice(), b"rotated");

        fs::remove_file(&auth).unwrap();
        std::os::unix::fs::symlink(real.join("auth.json"), &auth).unwrap();
        let err = home.read_auth().unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains(&auth.display().to_string()), "{err}");

        fs::remove_file(&auth).unwrap();
        let err = home.read_auth().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("read {}", auth.display())),
            "{err}"
        );
    }

    #[test]
    fn stale_homes_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let real = real_home(dir.path());
        let live = CodexHome::create(&run, &real, AUTH).unwrap();
        // A process that has exited (and been reaped): its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let stale = run.join(format!("codex-{dead_pid}-00ff"));
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join("auth.json"), b"left behind").unwrap();
        std::os::unix::fs::symlink(real.join("config.toml"), stale.join("config.toml")).unwrap();
        let other = run.join(format!("other-{dead_pid}-00ff"));
        fs::create_dir(&other).unwrap();

        let found = stale_homes(&run).unwrap();
        let paths: Vec<&Path> = found.iter().map(CodexHome::path).collect();
        assert_eq!(paths, [stale.as_path()]);
        assert_eq!(
            &found[0].read_auth().unwrap()[..],
            b"left behind",
            "the tokens left behind can be read before removal"
        );
        drop(found);
        assert!(!stale.exists());
        assert!(live.path().exists());
        assert!(other.exists());
        assert!(real.join("config.toml").exists());
        assert!(stale_homes(&dir.path().join("none")).unwrap().is_empty());
    }
}
