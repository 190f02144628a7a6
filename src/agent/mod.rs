//! What runs an agent: the child process (extra environment, signal
//! forwarding, shell exit status) and the private `CODEX_HOME` a ChatGPT
//! login is handed to Codex in. `vault exec` and `vault env` are built on it;
//! the manager decides *which* credential goes in, this layer only carries
//! it into the process and its files.
//!
//! This layer knows nothing about the store: the Codex tokens a child leaves
//! behind are read here ([`CodexHome::read_auth`]) and merged into the vault
//! by the manager (`Manager::write_back_codex`).

mod child;
mod codex_home;

pub use child::AgentCommand;
pub use codex_home::{CodexHome, stale_homes};

/// Starting or watching an agent's command failed. No variant carries a
/// secret: the program is named, the environment never is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No such program (a shell's exit status 127).
    #[error("cannot run `{}`: command not found; check the name and PATH", crate::terminal::escape(.program))]
    NotFound {
        /// The program, as given.
        program: String,
    },
    /// The program exists but cannot be started: not executable, not a
    /// binary or script the system can run, … (a shell's 126).
    #[error("cannot run `{}`: {reason}; check that it is an executable file", crate::terminal::escape(.program))]
    CannotRun {
        /// The program, as given.
        program: String,
        /// What the system said, as an error kind ("permission denied").
        reason: String,
    },
    /// The vault could not install its signal handlers or wait for the child.
    #[error("running the command: {0}")]
    Runtime(#[source] std::io::Error),
}

impl AgentError {
    /// The exit status a shell would give for this failure: 127 for a
    /// program not found, 126 for one that cannot be started, 1 otherwise.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } => 127,
            Self::CannotRun { .. } => 126,
            Self::Runtime(_) => 1,
        }
    }
}
