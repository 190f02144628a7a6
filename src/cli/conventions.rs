//! `vault completions SHELL` and `vault man`: what users expect of a
//! command-line tool, generated from the same clap definition as `--help`.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, print_out};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish, powershell.
    shell: Shell,
}

pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "vault", &mut script);
    print_out(String::from_utf8(script)?.trim_end())?;
    Ok(ExitCode::SUCCESS)
}

pub fn man() -> Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    print_out(String::from_utf8(page)?.trim_end())?;
    Ok(ExitCode::SUCCESS)
}
