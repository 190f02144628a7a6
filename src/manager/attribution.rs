//! Claude Code usage of a `vault exec` run: Claude Code reads its token
//! from the environment and writes its transcripts where it always does,
//! so which run a transcript belongs to is inferred. A session is the
//! run's when it is unambiguous: it started in the run's time window, in
//! the run's working directory, and no other agent session worked in that
//! directory during the window ([`attributable`]). Otherwise it stays
//! unattributed: unknown is allowed, wrong is not.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use chrono::SubsecRound;

use super::Manager;
use crate::error::{Error, Result};
use crate::store::Span;
use crate::usage::claude::{Transcript, TranscriptStart};
use crate::usage::{Source, import};

/// What attributing a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributed {
    /// Claude Code sessions attributed to the run.
    pub sessions: u64,
    /// Their events that had no account before.
    pub events: u64,
}

/// Whether a transcript that began as `start` is the run's, which spanned
/// `run` in directory `cwd` while `others` were the spans of every other
/// session granted in that directory: it started within the run (to the
/// millisecond, as Claude Code writes time) in `cwd` itself, and no other
/// session overlapped the run.
#[must_use]
pub fn attributable(run: Span, others: &[Span], start: &TranscriptStart, cwd: &Path) -> bool {
    let (Some(first), Some(end)) = (start.first, run.end) else {
        return false;
    };
    let in_window = run.start.trunc_subsecs(3) <= first && first <= end;
    let here = start.cwd.as_deref().map(Path::new) == Some(cwd);
    let alone = others
        .iter()
        .all(|o| o.start > end || o.end.is_some_and(|e| e < run.start));
    in_window && here && alone
}

impl Manager {
    /// Imports the Claude Code transcripts of `cwd` below `roots` (see
    /// [`import::claude_code_roots`]) after the `vault exec` run of
    /// session `session` ended, and attributes each Claude Code session that
    /// is [`attributable`] to the account `label` and `agent`: its events
    /// made during the run that have no account yet. Events stored before
    /// (by `vault statusline`, an import) are attributed too.
    ///
    /// # Errors
    /// I/O errors naming the file or directory, `AccountNotFound`, store
    /// errors.
    pub fn attribute_claude_run(
        &mut self,
        session: i64,
        cwd: &Path,
        roots: &[PathBuf],
        (label, agent): (&str, &str),
    ) -> Result<Attributed> {
        let files = import::claude_project_files(roots, cwd)?;
        if files.is_empty() {
            return Ok(Attributed::default());
        }
        let Some((run, others)) = self.store.sessions_in_same_dir(session)? else {
            return Ok(Attributed::default());
        };
        let Some(end) = run.end else {
            return Ok(Attributed::default());
        };
        let prices = crate::usage::price_table(&mut self.store)?;
        import::import_claude_files(&mut self.store, &files, None, &prices, &mut |_| {})?;
        // A session is the run's only when each of its transcripts is.
        let mut sessions: BTreeMap<String, bool> = BTreeMap::new();
        for (root, path) in &files {
            let relative = path.strip_prefix(root).unwrap_or(path);
            let Some(transcript) = Transcript::from_relative(relative) else {
                continue;
            };
            let file = File::open(path).map_err(Error::io("open", path))?;
            let start =
                TranscriptStart::read(BufReader::new(file)).map_err(Error::io("read", path))?;
            let ours = attributable(run, &others, &start, cwd);
            *sessions.entry(transcript.session).or_insert(true) &= ours;
        }
        let mut done = Attributed::default();
        let window = (run.start.trunc_subsecs(3), end);
        for (id, _) in sessions.into_iter().filter(|(_, ours)| *ours) {
            done.events +=
                self.store
                    .attribute_usage(Source::ClaudeCode, &id, window, label, Some(agent))?;
            done.sessions += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().expect("a test time")
    }

    fn span(start: &str, end: Option<&str>) -> Span {
        Span {
            start: t(start),
            end: end.map(t),
        }
    }

    fn began(first: &str, cwd: &str) -> TranscriptStart {
        TranscriptStart {
            first: Some(t(first)),
            cwd: Some(cwd.to_owned()),
        }
    }

    const RUN_START: &str = "2026-11-30T10:00:00.123456Z";
    const RUN_END: &str = "2026-11-30T11:00:00Z";

    fn run() -> Span {
        span(RUN_START, Some(RUN_END))
    }

    #[test]
    fn a_session_begun_in_the_runs_window_and_directory_with_no_other_run_there_is_the_runs() {
        let cwd = Path::new("/home/u/demo");
        // Claude Code writes milliseconds: the run's first one counts.
        for first in ["2026-11-30T10:00:00.123Z", "2026-11-30T10:30:00Z", RUN_END] {
            assert!(
                attributable(run(), &[], &began(first, "/home/u/demo"), cwd),
                "{first}"
            );
        }
        // Sessions there before or after the run do not matter.
        let others = [
            span("2026-11-30T09:00:00Z", Some("2026-11-30T10:00:00Z")),
            span("2026-11-30T11:00:01Z", None),
        ];
        assert!(attributable(
            run(),
            &others,
            &began("2026-11-30T10:30:00Z", "/home/u/demo"),
            cwd
        ));
    }

    #[test]
    fn a_session_begun_outside_the_window_or_elsewhere_or_unknown_is_not() {
        let cwd = Path::new("/home/u/demo");
        for first in ["2026-11-30T10:00:00.122Z", "2026-11-30T11:00:00.001Z"] {
            assert!(
                !attributable(run(), &[], &began(first, "/home/u/demo"), cwd),
                "{first}"
            );
        }
        // Another directory with the same project name, a subdirectory.
        for other in ["/home/u-demo", "/home/u/demo/sub", "home/u/demo"] {
            assert!(
                !attributable(run(), &[], &began("2026-11-30T10:30:00Z", other), cwd),
                "{other}"
            );
        }
        let no_cwd = TranscriptStart {
            first: Some(t("2026-11-30T10:30:00Z")),
            cwd: None,
        };
        assert!(!attributable(run(), &[], &no_cwd, cwd));
        assert!(!attributable(run(), &[], &TranscriptStart::default(), cwd));
        // A run not ended yet has no window.
        let open = span(RUN_START, None);
        assert!(!attributable(
            open,
            &[],
            &began("2026-11-30T10:30:00Z", "/home/u/demo"),
            cwd
        ));
    }

    #[test]
    fn any_other_session_there_during_the_run_makes_it_ambiguous() {
        let cwd = Path::new("/home/u/demo");
        let session = began("2026-11-30T10:30:00Z", "/home/u/demo");
        for other in [
            span("2026-11-30T09:00:00Z", None),
            span("2026-11-30T09:00:00Z", Some("2026-11-30T10:00:00.123456Z")),
            span("2026-11-30T10:10:00Z", Some("2026-11-30T10:20:00Z")),
            span("2026-11-30T11:00:00Z", Some("2026-11-30T12:00:00Z")),
            span("2026-11-30T10:59:00Z", None),
        ] {
            assert!(!attributable(run(), &[other], &session, cwd), "{other:?}");
        }
    }
}
