//! The progress line of `vault usage import` on a terminal: files and bytes
//! done, redrawn in place on stderr (`\r`) at most ten times a second and
//! cleared when the import ends, however it ends. None when stderr is not a
//! terminal, with `--json` or with `--quiet`.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use authvault::usage::import::Progress;

/// The shortest time between two redraws.
const REDRAW: Duration = Duration::from_millis(100);

/// The progress line as it is shown, e.g. `Importing: 12/340 files,
/// 1.5/56.0 MiB (2%)`.
pub fn line(p: &Progress) -> String {
    // Never past the total, whatever the caller counts.
    let done = p.bytes_done.min(p.bytes);
    let percent = if p.bytes == 0 {
        100
    } else {
        u128::from(done) * 100 / u128::from(p.bytes)
    };
    let (unit, div) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find(|(_, d)| p.bytes >= *d)
        .unwrap_or(("bytes", 1));
    let amount = |n: u64| {
        if div == 1 {
            n.to_string()
        } else {
            #[allow(clippy::cast_precision_loss)] // one decimal is shown
            let v = n as f64 / div as f64;
            format!("{v:.1}")
        }
    };
    format!(
        "Importing: {}/{} files, {}/{} {unit} ({percent}%)",
        p.files_done,
        p.files,
        amount(done),
        amount(p.bytes)
    )
}

/// A progress line on stderr, or nothing.
pub struct Bar {
    shown: bool,
    /// Characters of the line drawn last (to blank it).
    width: usize,
    drawn: Option<Instant>,
}

impl Bar {
    /// A bar that draws only when stderr is a terminal, without `--json`
    /// (`json`) and without `--quiet`.
    pub fn on_stderr(json: bool) -> Self {
        let quiet = super::QUIET.load(std::sync::atomic::Ordering::Relaxed);
        Self {
            shown: !json && !quiet && std::io::stderr().is_terminal(),
            width: 0,
            drawn: None,
        }
    }

    /// Redraws the line with `p`, unless it was drawn less than [`REDRAW`]
    /// ago.
    pub fn show(&mut self, p: Progress) {
        if !self.shown || self.drawn.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        let text = line(&p);
        let pad = self.width.saturating_sub(text.len());
        self.width = text.len();
        self.drawn = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        // A terminal that went away costs the progress line only.
        let _ = write!(err, "\r{text}{:pad$}", "").and_then(|()| err.flush());
    }
}

impl Drop for Bar {
    /// Blanks the line, so what follows starts at the left margin.
    fn drop(&mut self) {
        if self.shown && self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{:w$}\r", "", w = self.width).and_then(|()| err.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(files_done: u64, files: u64, bytes_done: u64, bytes: u64) -> Progress {
        Progress {
            files_done,
            files,
            bytes_done,
            bytes,
        }
    }

    #[test]
    fn the_line_shows_files_and_bytes_done_in_the_unit_of_the_total() {
        let cases = [
            (at(0, 0, 0, 0), "Importing: 0/0 files, 0/0 bytes (100%)"),
            (
                at(1, 3, 200, 900),
                "Importing: 1/3 files, 200/900 bytes (22%)",
            ),
            (
                at(12, 340, 1_572_864, 58_720_256),
                "Importing: 12/340 files, 1.5/56.0 MiB (2%)",
            ),
            (
                at(2, 2, 3 << 30, 3 << 30),
                "Importing: 2/2 files, 3.0/3.0 GiB (100%)",
            ),
            (
                at(1, 2, 1536, 4096),
                "Importing: 1/2 files, 1.5/4.0 KiB (37%)",
            ),
            // Bytes done past the total: shown as the total.
            (
                at(1, 1, 5000, 4096),
                "Importing: 1/1 files, 4.0/4.0 KiB (100%)",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(line(&p), want, "{p:?}");
        }
    }
}
