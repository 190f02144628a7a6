//! `vault`: the command-line face of authvault. Parses arguments, runs one
//! command from `cli/`, prints the error chain, sets the exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First, before any argument, variable or secret is read: no core file,
    // and no other process of this user may read our memory or environment.
    let hardening = authvault::hardening::harden_process();
    match cli::run(cli::Cli::parse(), hardening) {
        Ok(code) => code,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the binary's edge: the one place errors are shown
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
