//! The integration suite, compiled into one test binary: real SQLite files,
//! the real `vault` binary in separate processes, and a real Secret Service
//! (gnome-keyring on the private D-Bus session `scripts/test.sh` starts).
// Test code panics by design, reports seeds on stderr, and keeps long scenarios whole.
#![allow(
    clippy::missing_panics_doc,
    clippy::too_many_lines,
    clippy::print_stderr,
    clippy::similar_names,
    clippy::items_after_statements
)]

mod suite;
