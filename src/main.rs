//! `vault`: the command-line face of authvault. Parses arguments, runs one
//! command from `cli/`, prints the error chain, sets the exit status.

mod cli;

use std::process::ExitCode;

use authvault::terminal::escape_lines;
use clap::Parser;

/// Exit status of a refused reservation (over budget), for scripts.
const OVER_BUDGET: u8 = 3;
/// Exit status of `vault select` when no account is eligible, for scripts.
const NO_ELIGIBLE_ACCOUNT: u8 = 4;

#[allow(clippy::print_stderr)] // the binary's edge: the one place errors are shown
fn main() -> ExitCode {
    // First, before any argument, variable or secret is read: no core file,
    // and no other process of this user may read our memory or environment.
    let hardening = authvault::hardening::harden_process();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors quote the arguments: escaped like every other output.
        Err(e) if e.use_stderr() => {
            eprint!("{}", escape_lines(&e.to_string()));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(), // --help, --version
    };
    match cli::run(cli, hardening) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", escape_lines(&format!("error: {}", chain(&e))));
            let code = e.chain().find_map(|c| match c.downcast_ref() {
                Some(authvault::Error::OverBudget { .. }) => Some(OVER_BUDGET),
                Some(authvault::Error::NoEligibleAccount { .. }) => Some(NO_ELIGIBLE_ACCOUNT),
                _ => None,
            });
            code.map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text
/// the message before it already ends with (a variant that quotes its
/// source would otherwise show it twice).
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
