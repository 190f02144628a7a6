//! Backfill from agent logs: find the files, read what was appended since
//! the last import, parse it, and record it in batches (each batch one
//! transaction together with how far its files were read).
//!
//! A file is known by its path's keyed fingerprint; its device and inode
//! tell a replaced file from the one read before, and a file smaller than
//! what was read has been rewritten: both are read again from the start
//! (dedupe makes that harmless). Reading stops after the last complete line,
//! so a line being written is read once it is complete. A line that cannot
//! be parsed is counted and reported with its number, never fatal.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Source;
use super::claude::{self, LineError, Transcript};
use super::codex::Rollout;
use super::price::PriceTable;
use crate::error::{Error, Result};
use crate::model::Snapshot;
use crate::store::{FileMark, Store, UsageEvent, UsageWritten};

/// Events recorded per transaction.
const BATCH: usize = 20_000;

/// Bad lines listed per file (all are counted).
const LISTED: usize = 20;

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// A file with lines that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadFile {
    /// The file.
    pub path: PathBuf,
    /// How many lines.
    pub count: u64,
    /// The first few.
    pub lines: Vec<BadLine>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Log files found.
    pub files: u64,
    /// Files with something new to read.
    pub files_read: u64,
    /// Files read again from the start (replaced or shrunk).
    pub files_reread: u64,
    /// Complete lines read.
    pub lines: u64,
    /// Usage events found in them.
    pub events: u64,
    /// What recording them did.
    pub written: UsageWritten,
    /// Files with lines that could not be read.
    pub bad: Vec<BadFile>,
    /// Whether the rate limits a Codex rollout logged were stored as the
    /// account's newest snapshot (`--account` or `vault exec` attribution).
    pub snapshot: bool,
}

/// Where Claude Code keeps transcripts: each root's `projects/`, with
/// ccusage's rules (USAGE-FORMATS §1.1). `configured` is
/// `CLAUDE_CONFIG_DIR` split on commas (it replaces the defaults: the XDG
/// `claude` directory and `~/.claude`, both read when both exist).
#[must_use]
pub fn claude_code_roots(configured: &[PathBuf], defaults: &[PathBuf]) -> Vec<PathBuf> {
    let roots = if configured.is_empty() {
        defaults
    } else {
        configured
    };
    roots
        .iter()
        .map(|r| {
            if r.file_name().is_some_and(|n| n == "projects") {
                r.clone()
            } else {
                r.join("projects")
            }
        })
        .filter(|p| p.is_dir())
        .collect()
}

/// Every `*.jsonl` below `dir`, recursively, sorted by path. Symbolic
/// links are not followed.
fn jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(Error::io("read directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("read directory", dir))?;
        let kind = entry
            .file_type()
            .map_err(Error::io("read directory", dir))?;
        let path = entry.path();
        if kind.is_dir() {
            jsonl_files(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

/// Collects events and file marks, recording them every [`BATCH`] events.
struct Recorder<'a> {
    store: &'a mut Store,
    source: Source,
    account: Option<String>,
    agent: Option<String>,
    events: Vec<UsageEvent>,
    marks: Vec<(Source, PathBuf, FileMark)>,
    report: ImportReport,
}

impl Recorder<'_> {
    fn push(&mut self, mut event: UsageEvent) {
        event.account.clone_from(&self.account);
        if event.agent.is_none() {
            event.agent.clone_from(&self.agent);
        }
        self.events.push(event);
        self.report.events += 1;
    }

    fn mark(&mut self, path: &Path, mark: FileMark) {
        self.marks.push((self.source, path.to_path_buf(), mark));
    }

    fn full(&self) -> bool {
        self.events.len() >= BATCH
    }

    fn flush(&mut self) -> Result<()> {
        if self.events.is_empty() && self.marks.is_empty() {
            return Ok(());
        }
        let written = self.store.record_usage(&self.events, &self.marks)?;
        self.report.written.add(written);
        self.events.clear();
        self.marks.clear();
        Ok(())
    }
}

/// How a file's lines are read.
enum Reading {
    /// Each line on its own: an import resumes where the last one stopped.
    Resumable,
    /// Each line depends on those before (Codex's cumulative totals): a
    /// file that changed is read again from the start.
    FromStart,
}

/// Reads one log file from where the last import stopped (or from the
/// start), parsing each complete line with `parse`.
fn read_file(
    rec: &mut Recorder<'_>,
    path: &Path,
    before: Option<FileMark>,
    reading: &Reading,
    mut parse: impl FnMut(&[u8]) -> std::result::Result<Option<UsageEvent>, LineError>,
) -> Result<()> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    let meta = file
        .metadata()
        .map_err(Error::io("read metadata of", path))?;
    let (device, inode, size) = (meta.dev(), meta.ino(), meta.size());
    let same = before.filter(|m| m.device == device && m.inode == inode && size >= m.read_to);
    if before.is_some() && same.is_none() {
        rec.report.files_reread += 1;
    }
    let from_start = matches!(reading, Reading::FromStart);
    if same.is_some_and(|m| m.read_to == size || (from_start && m.size == size)) {
        return Ok(());
    }
    let resume = same.filter(|_| !from_start);
    let (mut offset, mut number) = resume.map_or((0, 0), |m| (m.read_to, m.lines));
    rec.report.files_read += 1;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(Error::io("read", path))?;
    let mut bad = BadFile {
        path: path.to_path_buf(),
        count: 0,
        lines: Vec::new(),
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let parsed = if text.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            parse(text)
        };
        // A last line without its newline is complete only if it parses:
        // else it is still being written and is read next time.
        if !complete && parsed.is_err() {
            break;
        }
        number += 1;
        offset += n as u64;
        rec.report.lines += 1;
        match parsed {
            Ok(Some(event)) => rec.push(event),
            Ok(None) => {}
            Err(e) => {
                bad.count += 1;
                if bad.lines.len() < LISTED {
                    bad.lines.push(BadLine {
                        line: number,
                        reason: e.to_string(),
                    });
                }
            }
        }
        if rec.full() {
            rec.mark(
                path,
                FileMark {
                    device,
                    inode,
                    size,
                    read_to: offset,
                    lines: number,
                },
            );
            rec.flush()?;
        }
    }
    rec.mark(
        path,
        FileMark {
            device,
            inode,
            size,
            read_to: offset,
            lines: number,
        },
    );
    if bad.count > 0 {
        rec.report.bad.push(bad);
    }
    Ok(())
}

/// Imports Claude Code transcripts below `roots` (each a `projects/`
/// directory, see [`claude_code_roots`]), attributing every event to
/// `account` when given.
///
/// # Errors
/// I/O errors naming the file or directory, `AccountNotFound`, SQLite.
/// Lines that cannot be parsed are not errors: see [`ImportReport::bad`].
pub fn import_claude_code(
    store: &mut Store,
    roots: &[PathBuf],
    account: Option<&str>,
    prices: &PriceTable,
) -> Result<ImportReport> {
    let mut files = Vec::new();
    for root in roots {
        let mut found = Vec::new();
        jsonl_files(root, &mut found)?;
        found.sort();
        files.extend(found.into_iter().map(|f| (root.clone(), f)));
    }
    import_claude_files(store, &files, account, prices)
}

/// Imports one Claude Code transcript (what was appended since it was last
/// read): `path` is `…/projects/<project>/<session>.jsonl` (or a subagent
/// transcript below it). For `vault statusline`, which runs on every prompt.
///
/// # Errors
/// `InvalidInput` when `path` is not below a `projects/` directory; as
/// [`import_claude_code`].
pub fn import_claude_transcript(
    store: &mut Store,
    path: &Path,
    account: Option<&str>,
    prices: &PriceTable,
) -> Result<ImportReport> {
    let root = path
        .ancestors()
        .skip(1)
        .find(|a| a.file_name().is_some_and(|n| n == "projects"))
        .ok_or_else(|| Error::InvalidInput {
            what: "Claude Code transcript path".into(),
            reason: "not below a `projects/` directory".into(),
        })?;
    import_claude_files(
        store,
        &[(root.to_path_buf(), path.to_path_buf())],
        account,
        prices,
    )
}

/// The transcripts Claude Code may have written while working in `cwd`:
/// every `*.jsonl` of `cwd`'s project directory below each of `roots` (see
/// [`claude_code_roots`]), each with its root, sorted by path.
///
/// # Errors
/// I/O errors naming the directory.
pub fn claude_project_files(roots: &[PathBuf], cwd: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut files = Vec::new();
    for root in roots {
        let entries = fs::read_dir(root).map_err(Error::io("read directory", root))?;
        for entry in entries {
            let entry = entry.map_err(Error::io("read directory", root))?;
            let name = entry.file_name();
            if claude::may_be_project_of(&name.to_string_lossy(), cwd)
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                let mut found = Vec::new();
                jsonl_files(&entry.path(), &mut found)?;
                found.sort();
                files.extend(found.into_iter().map(|f| (root.clone(), f)));
            }
        }
    }
    Ok(files)
}

/// Imports `files`, each with the `projects/` root it was found in (see
/// [`claude_project_files`]), attributing every event to `account` when
/// given.
///
/// # Errors
/// As [`import_claude_code`].
pub fn import_claude_files(
    store: &mut Store,
    files: &[(PathBuf, PathBuf)],
    account: Option<&str>,
    prices: &PriceTable,
) -> Result<ImportReport> {
    if let Some(label) = account {
        store.account(label)?;
    }
    let paths: Vec<PathBuf> = files.iter().map(|(_, f)| f.clone()).collect();
    let marks = store.usage_file_marks(Source::ClaudeCode, &paths)?;
    let mut rec = Recorder {
        store,
        source: Source::ClaudeCode,
        account: account.map(str::to_owned),
        agent: None,
        events: Vec::new(),
        marks: Vec::new(),
        report: ImportReport {
            files: files.len() as u64,
            ..ImportReport::default()
        },
    };
    for ((root, path), before) in files.iter().zip(marks) {
        let relative = path.strip_prefix(root).unwrap_or(path);
        let Some(transcript) = Transcript::from_relative(relative) else {
            continue;
        };
        read_file(&mut rec, path, before, &Reading::Resumable, |line| {
            claude::parse_line(line, &transcript, prices)
        })?;
        if rec.full() {
            rec.flush()?;
        }
    }
    rec.flush()?;
    Ok(rec.report)
}

/// Where Codex keeps rollouts below each of `homes` (a `CODEX_HOME`):
/// `sessions/` and `archived_sessions/`, or the directory itself when it has
/// neither.
#[must_use]
pub fn codex_roots(homes: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for home in homes {
        let found: Vec<PathBuf> = ["sessions", "archived_sessions"]
            .iter()
            .map(|d| home.join(d))
            .filter(|d| d.is_dir())
            .collect();
        if found.is_empty() && home.is_dir() {
            roots.push(home.clone());
        }
        roots.extend(found);
    }
    roots
}

/// Imports Codex rollouts below `roots` (see [`codex_roots`]); the session
/// id is a rollout's path below its root without `.jsonl`, as ccusage names
/// it, and a rollout that changed is read again from the start (its totals
/// are cumulative), which dedupe makes harmless.
///
/// # Errors
/// As [`import_claude_code`].
pub fn import_codex(
    store: &mut Store,
    roots: &[PathBuf],
    account: Option<&str>,
    prices: &PriceTable,
) -> Result<ImportReport> {
    import_codex_by(store, roots, account, None, prices)
}

/// As [`import_codex`], also giving every event without an agent `agent`:
/// the import of one `vault exec` run's own rollouts.
///
/// # Errors
/// As [`import_claude_code`].
pub fn import_codex_by(
    store: &mut Store,
    roots: &[PathBuf],
    account: Option<&str>,
    agent: Option<&str>,
    prices: &PriceTable,
) -> Result<ImportReport> {
    if let Some(label) = account {
        store.account(label)?;
    }
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let mut found = Vec::new();
        jsonl_files(root, &mut found)?;
        found.sort();
        for f in found {
            let relative = f.strip_prefix(root).unwrap_or(&f).to_path_buf();
            if seen.insert(relative.clone()) {
                files.push((relative, f));
            }
        }
    }
    let paths: Vec<PathBuf> = files.iter().map(|(_, f)| f.clone()).collect();
    let marks = store.usage_file_marks(Source::Codex, &paths)?;
    let mut rec = Recorder {
        store,
        source: Source::Codex,
        account: account.map(str::to_owned),
        agent: agent.map(str::to_owned),
        events: Vec::new(),
        marks: Vec::new(),
        report: ImportReport {
            files: files.len() as u64,
            ..ImportReport::default()
        },
    };
    let mut newest_limits: Option<Snapshot> = None;
    for ((relative, path), before) in files.iter().zip(marks) {
        let session = relative.with_extension("").to_string_lossy().into_owned();
        let mut rollout = Rollout::new(session);
        read_file(&mut rec, path, before, &Reading::FromStart, |line| {
            rollout.line(line, prices)
        })?;
        if let Some(s) = rollout.rate_limits()
            && newest_limits
                .as_ref()
                .is_none_or(|n| n.fetched_at < s.fetched_at)
        {
            newest_limits = Some(s.clone());
        }
        if rec.full() {
            rec.flush()?;
        }
    }
    rec.flush()?;
    // The rate limits Codex logged are the account's usage windows when
    // the account is known, unless the vault has newer ones.
    if let (Some(label), Some(snapshot)) = (account, newest_limits) {
        let stored = rec.store.latest_snapshot(label)?;
        if stored.is_none_or(|s| s.fetched_at < snapshot.fetched_at) {
            rec.store.save_snapshot(label, &snapshot)?;
            rec.report.snapshot = true;
        }
    }
    Ok(rec.report)
}
