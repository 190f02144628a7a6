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
//!
//! An import tells a caller-given callback how far it has got
//! ([`Progress`]: files and bytes), so a terminal can show a progress bar;
//! the library itself prints nothing.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};

use serde::Serialize;

use super::Source;
use super::claude::{self, LineError, Transcript};
use super::codex::Rollout;
use super::price::PriceTable;
use crate::error::{Error, Result};
use crate::model::Snapshot;
use crate::store::{FileMark, Store, UsageEvent, UsageWritten};

/// Events recorded per transaction.
const BATCH: usize = 50_000;

/// Bad lines listed per file (all are counted).
const LISTED: usize = 20;

/// Bytes read within a file between two [`Progress`] reports.
const PROGRESS_STEP: u64 = 1 << 20;

/// How far an import has got: files and bytes done of those found. Bytes
/// are the files' sizes when they were found (what a file grew by since is
/// not counted), so `bytes_done` ends at `bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Files read or skipped (nothing new in them).
    pub files_done: u64,
    /// Files found.
    pub files: u64,
    /// Bytes of the files done, and of the one being read so far.
    pub bytes_done: u64,
    /// The files' sizes.
    pub bytes: u64,
}

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

/// Events and the file marks they bring up to date, recorded together.
type Batch = (Vec<UsageEvent>, Vec<(Source, PathBuf, FileMark)>);

/// Runs `read` (which reads and parses the files, sending batches) while
/// another thread records the batches in `store`, in order: parsing and
/// SQLite each keep a core busy. A failed write stops the reading (its
/// next send fails) and is the error returned; a failed read lets the
/// batches sent before it be recorded, as when both ran on one thread.
fn recording<T>(
    store: &mut Store,
    read: impl FnOnce(SyncSender<Batch>) -> Result<T>,
) -> Result<(T, UsageWritten)> {
    std::thread::scope(|scope| {
        // One batch parsed ahead of the one being written.
        let (send, batches) = mpsc::sync_channel::<Batch>(1);
        let writer = std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn_scoped(scope, move || {
                store.bulk_usage(|store| {
                    let mut written = UsageWritten::default();
                    for (events, marks) in batches {
                        written.add(store.record_usage(&events, &marks)?);
                    }
                    Ok(written)
                })
            })
            .map_err(Error::io(
                "start a thread for",
                Path::new("the usage writer"),
            ))?;
        let read = read(send);
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((read?, written?))
    })
}

/// Collects events and file marks, sending them to the writer every
/// [`BATCH`] events.
struct Recorder<'a> {
    sink: SyncSender<Batch>,
    progress: &'a mut dyn FnMut(Progress),
    done: Progress,
    /// The size of each file when found, in the order they are read.
    sizes: Vec<u64>,
    source: Source,
    account: Option<String>,
    agent: Option<String>,
    events: Vec<UsageEvent>,
    marks: Vec<(Source, PathBuf, FileMark)>,
    report: ImportReport,
}

impl<'a> Recorder<'a> {
    /// A recorder for `files`, read in this order.
    fn new(
        sink: SyncSender<Batch>,
        source: Source,
        files: &[PathBuf],
        (account, agent): (Option<&str>, Option<&str>),
        progress: &'a mut dyn FnMut(Progress),
    ) -> Self {
        // Sizes only measure progress: a file that cannot be read is
        // reported when it is opened.
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| fs::metadata(f).map_or(0, |m| m.len()))
            .collect();
        let done = Progress {
            files: files.len() as u64,
            bytes: sizes.iter().sum(),
            ..Progress::default()
        };
        progress(done);
        Self {
            sink,
            progress,
            done,
            sizes,
            source,
            account: account.map(str::to_owned),
            agent: agent.map(str::to_owned),
            events: Vec::new(),
            marks: Vec::new(),
            report: ImportReport {
                files: files.len() as u64,
                ..ImportReport::default()
            },
        }
    }

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

    /// The size of the file being read when it was found.
    fn size_found(&self) -> u64 {
        usize::try_from(self.done.files_done)
            .ok()
            .and_then(|i| self.sizes.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Reports `read` bytes of the file being read.
    fn reading(&mut self, read: u64) {
        let now = Progress {
            bytes_done: self.done.bytes_done + read.min(self.size_found()),
            ..self.done
        };
        (self.progress)(now);
    }

    /// Reports the next file done (read, or skipped).
    fn file_done(&mut self) {
        self.done.bytes_done += self.size_found();
        self.done.files_done += 1;
        (self.progress)(self.done);
    }

    fn full(&self) -> bool {
        self.events.len() >= BATCH
    }

    fn flush(&mut self) -> Result<()> {
        if self.events.is_empty() && self.marks.is_empty() {
            return Ok(());
        }
        let batch = (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.marks),
        );
        // A send fails only when the writer stopped on an error, which
        // `recording` returns instead of this one.
        self.sink.send(batch).map_err(|_| Error::InvalidInput {
            what: "usage import".into(),
            reason: "the writer stopped".into(),
        })
    }

    /// The report, once every batch was sent.
    fn finish(mut self) -> Result<ImportReport> {
        self.flush()?;
        Ok(self.report)
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
    let mut reported = offset;
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
        if offset - reported >= PROGRESS_STEP {
            rec.reading(offset);
            reported = offset;
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
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport> {
    let mut files = Vec::new();
    for root in roots {
        let mut found = Vec::new();
        jsonl_files(root, &mut found)?;
        found.sort();
        files.extend(found.into_iter().map(|f| (root.clone(), f)));
    }
    import_claude_files(store, &files, account, prices, progress)
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
        &mut |_| {},
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
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport> {
    if let Some(label) = account {
        store.account(label)?;
    }
    let paths: Vec<PathBuf> = files.iter().map(|(_, f)| f.clone()).collect();
    let marks = store.usage_file_marks(Source::ClaudeCode, &paths)?;
    let (mut report, written) = recording(store, |sink| {
        let mut rec = Recorder::new(sink, Source::ClaudeCode, &paths, (account, None), progress);
        for ((root, path), before) in files.iter().zip(marks) {
            let relative = path.strip_prefix(root).unwrap_or(path);
            if let Some(transcript) = Transcript::from_relative(relative) {
                read_file(&mut rec, path, before, &Reading::Resumable, |line| {
                    claude::parse_line(line, &transcript, prices)
                })?;
            }
            rec.file_done();
            if rec.full() {
                rec.flush()?;
            }
        }
        rec.finish()
    })?;
    report.written = written;
    Ok(report)
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
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport> {
    import_codex_files(store, roots, (account, None), prices, progress)
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
    import_codex_files(store, roots, (account, agent), prices, &mut |_| {})
}

/// Imports the rollouts below `roots`, attributed to an account and agent.
fn import_codex_files(
    store: &mut Store,
    roots: &[PathBuf],
    (account, agent): (Option<&str>, Option<&str>),
    prices: &PriceTable,
    progress: &mut dyn FnMut(Progress),
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
    let mut newest_limits: Option<Snapshot> = None;
    let (mut report, written) = recording(store, |sink| {
        let mut rec = Recorder::new(sink, Source::Codex, &paths, (account, agent), progress);
        for ((relative, path), before) in files.iter().zip(marks) {
            let session = relative.with_extension("").to_string_lossy().into_owned();
            let mut rollout = Rollout::new(session);
            read_file(&mut rec, path, before, &Reading::FromStart, |line| {
                rollout.line(line, prices)
            })?;
            rec.file_done();
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
        rec.finish()
    })?;
    report.written = written;
    // The rate limits Codex logged are the account's usage windows when
    // the account is known, unless the vault has newer ones.
    if let (Some(label), Some(snapshot)) = (account, newest_limits) {
        let stored = store.latest_snapshot(label)?;
        if stored.is_none_or(|s| s.fetched_at < snapshot.fetched_at) {
            store.save_snapshot(label, &snapshot)?;
            report.snapshot = true;
        }
    }
    Ok(report)
}
