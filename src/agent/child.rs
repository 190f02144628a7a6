//! Running an agent's command: extra (secret) environment variables, signal
//! forwarding, and the exit status as a shell reports it.
//!
//! The signal handlers for SIGINT, SIGTERM and SIGHUP are installed *before*
//! the child is started, so no signal sent to the vault between start and
//! wait is lost or kills the vault instead of reaching the child. They stay
//! installed after [`AgentCommand::run`] returns (the signal runtime never
//! uninstalls them): the vault then finishes its own work — the Codex
//! write-back, committing or releasing the reservation — instead of dying
//! halfway through it. The child starts with the default dispositions
//! (handlers are reset by `exec`).
//!
//! A Ctrl-C typed in a terminal (not in raw mode) signals the whole
//! foreground process group, child included: the child then gets SIGINT
//! twice, once from the terminal and once forwarded. The signal does not say
//! who sent it, so the vault cannot tell; interactive agents (Codex, Claude
//! Code) keep the terminal in raw mode and read Ctrl-C as a key instead.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal, kill_process};
use secrecy::{ExposeSecret, SecretString};
use tokio::signal::unix::{SignalKind, signal};

use super::AgentError;

/// The signals the vault forwards to its child.
const FORWARDED: [(SignalKind, Signal); 3] = [
    (SignalKind::interrupt(), Signal::INT),
    (SignalKind::terminate(), Signal::TERM),
    (SignalKind::hangup(), Signal::HUP),
];

/// A command to run for an agent: program, arguments, variables to add
/// (secret values) and variables to take out of the inherited environment.
/// Standard input, output and error are inherited.
///
/// `Debug` shows the program, the arguments and the variable *names*, never a
/// value.
pub struct AgentCommand {
    program: OsString,
    args: Vec<OsString>,
    set: Vec<(String, SecretString)>,
    remove: Vec<String>,
}

impl std::fmt::Debug for AgentCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCommand")
            .field("program", &self.program)
            .field("args", &self.args)
            .field(
                "set",
                &self.set.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("remove", &self.remove)
            .finish()
    }
}

impl AgentCommand {
    /// A command running `program` (looked up in `PATH` unless it contains a
    /// `/`), with no arguments and the vault's environment.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            set: Vec::new(),
            remove: Vec::new(),
        }
    }

    /// Appends arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets a variable in the child's environment (replacing an inherited one).
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: SecretString) -> Self {
        self.set.push((name.into(), value));
        self
    }

    /// Removes a variable from the environment the child inherits (a variable
    /// set with [`AgentCommand::env`] is still set).
    #[must_use]
    pub fn env_remove(mut self, name: impl Into<String>) -> Self {
        self.remove.push(name.into());
        self
    }

    /// The program, as given.
    #[must_use]
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// Runs the command to its end, forwarding SIGINT, SIGTERM and SIGHUP
    /// that the vault receives meanwhile, and returns its exit status the way
    /// a shell reports it: the exit code, or 128 + the signal number when a
    /// signal killed it.
    ///
    /// # Errors
    /// [`AgentError::NotFound`] (a shell's 127), [`AgentError::CannotRun`]
    /// (126), [`AgentError::Runtime`] when the signal handlers cannot be
    /// installed or waiting fails. See [`AgentError::exit_code`].
    pub fn run(&self) -> Result<i32, AgentError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(AgentError::Runtime)?;
        let status = runtime.block_on(self.run_forwarding())?;
        Ok(shell_status(status))
    }

    async fn run_forwarding(&self) -> Result<ExitStatus, AgentError> {
        let mut streams = Vec::with_capacity(FORWARDED.len());
        for (kind, sig) in FORWARDED {
            streams.push((signal(kind).map_err(AgentError::Runtime)?, sig));
        }
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for name in &self.remove {
            command.env_remove(name);
        }
        for (name, value) in &self.set {
            command.env(name, value.expose_secret());
        }
        let mut child = command.spawn().map_err(|e| self.start_error(&e))?;
        let pid = child
            .id()
            .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?));
        let [(int, _), (term, _), (hup, _)] = &mut streams[..] else {
            unreachable!("three forwarded signals");
        };
        loop {
            let sig = tokio::select! {
                status = child.wait() => return status.map_err(AgentError::Runtime),
                Some(()) = int.recv() => Signal::INT,
                Some(()) = term.recv() => Signal::TERM,
                Some(()) = hup.recv() => Signal::HUP,
            };
            if let Some(pid) = pid {
                // The child may have exited just now: then there is nobody to tell.
                let _ = kill_process(pid, sig);
            }
        }
    }

    fn start_error(&self, e: &std::io::Error) -> AgentError {
        let program = self.program.to_string_lossy().into_owned();
        if e.kind() == std::io::ErrorKind::NotFound {
            AgentError::NotFound { program }
        } else {
            AgentError::CannotRun {
                program,
                reason: e.kind().to_string(),
            }
        }
    }
}

/// The shell's number for an exit status: the code, or 128 + signal.
fn shell_status(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    /// The signal test signals this whole test process, and every running
    /// `AgentCommand` forwards what the process receives: the tests of this
    /// module take turns.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sh(script: &str) -> AgentCommand {
        AgentCommand::new("/bin/sh").args(["-c", script])
    }

    fn wait_for(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_exit_status_is_the_childs_code_or_128_plus_the_signal_that_killed_it() {
        let _serial = serial();
        let cases = [
            ("exit 0", 0),
            ("exit 7", 7),
            ("exit 255", 255),
            ("kill -KILL $$", 128 + 9),
            ("kill -TERM $$", 128 + 15),
        ];
        for (script, want) in cases {
            assert_eq!(sh(script).run().unwrap(), want, "{script}");
        }
    }

    #[test]
    fn the_child_sees_the_added_variables_and_not_the_removed_ones() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        // Some variable this test process inherited, to be taken away.
        let (inherited, _) = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .find(|(k, _)| k != "PATH")
            .expect("the test process has an environment");
        let status = sh("env > \"$OUT\"")
            .env("OUT", SecretString::from(out.display().to_string()))
            .env("AUTHVAULT_TEST_TOKEN", SecretString::from("tok-123"))
            .env_remove(&inherited)
            .env_remove("AUTHVAULT_TEST_TOKEN")
            .run()
            .unwrap();
        assert_eq!(status, 0);
        let env = std::fs::read_to_string(&out).unwrap();
        let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        assert!(
            env.lines().any(|l| l == "AUTHVAULT_TEST_TOKEN=tok-123"),
            "{names:?}"
        );
        assert!(
            !names.contains(&inherited.as_str()),
            "{inherited} still set"
        );
    }

    #[test]
    fn a_missing_program_is_127_and_a_file_that_cannot_be_executed_is_126() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-program");
        let err = AgentCommand::new(&missing).run().unwrap_err();
        assert_eq!(err.exit_code(), 127, "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot run `{}`: command not found; check the name and PATH",
                missing.display()
            )
        );

        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "echo hi\n").unwrap();
        let err = AgentCommand::new(&plain).run().unwrap_err();
        assert_eq!(err.exit_code(), 126, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot run `{}`: ", plain.display())),
            "{err}"
        );
    }

    #[test]
    fn the_debug_output_names_variables_but_shows_no_value() {
        let _serial = serial();
        let cmd = sh("true").env(
            "CLAUDE_CODE_OAUTH_TOKEN",
            SecretString::from("sk-ant-oat-canary"),
        );
        let debug = format!("{cmd:?}");
        assert!(debug.contains("CLAUDE_CODE_OAUTH_TOKEN"), "{debug}");
        assert!(!debug.contains("canary"), "{debug}");
    }

    /// SIGINT, SIGTERM and SIGHUP sent to this (the vault's) process reach
    /// the child exactly once; the child's trap decides the status.
    #[test]
    fn signals_sent_to_the_vault_reach_the_child() {
        let _serial = serial();
        for (sig, name, code) in [
            (Signal::TERM, "TERM", 42),
            (Signal::INT, "INT", 43),
            (Signal::HUP, "HUP", 44),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let got = dir.path().join("got");
            let ready = dir.path().join("ready");
            let script = format!(
                "trap 'echo {name} >> \"$GOT\"; exit {code}' {name}; \
                 : > \"$READY\"; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; exit 99"
            );
            let cmd = sh(&script)
                .env("GOT", SecretString::from(got.display().to_string()))
                .env("READY", SecretString::from(ready.display().to_string()));
            let runner = std::thread::spawn(move || cmd.run());
            wait_for(&ready);
            kill_process(rustix::process::getpid(), sig).unwrap();
            let status = runner.join().unwrap().unwrap();
            assert_eq!(status, code, "{name}");
            assert_eq!(std::fs::read_to_string(&got).unwrap(), format!("{name}\n"));
        }
    }
}
