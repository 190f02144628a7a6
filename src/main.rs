//! `vault`: the command-line face of authvault. Parses arguments, runs one
//! command from `cli/`, prints the error chain, sets the exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
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
