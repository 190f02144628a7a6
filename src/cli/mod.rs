//! The commands. Only this module prints; each command is one file.
// cli/ is where output happens; doc comments here are clap's help text, shown verbatim.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::doc_markdown)]

mod accounts;
mod agent;
mod audit;
mod conventions;
mod copy;
mod dashboard;
mod doctor;
mod export;
mod health;
mod init;
mod keyring;
mod ledger;
mod login;
mod logout;
mod migrate;
mod passphrase;
mod policy;
mod progress;
mod quota;
mod refresh;
mod rekey;
mod select;
mod status;
mod statusline;
mod subscription;
mod token;
mod usage;

use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::Error;
use authvault::config::Config;
use authvault::db::Location;
use authvault::hardening::HardeningError;
use authvault::keys::{KdfCost, Method, OnHost, OsKeyring, Unlock};
use authvault::manager::Manager;
use authvault::store::{Actor, Store, Vault};
use authvault::terminal::{escape, escape_lines};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// Examples shown under `vault --help`: the common tasks.
const EXAMPLES: &str = "\
Examples:
  vault migrate                        Import Codex and Claude Code logins once
  vault login claude                   Log in to a Claude subscription in the browser
  vault login openai --paste           Log in without a browser on this machine
  vault login openai --api-key-stdin < key.txt
                                       Store an API key read from stdin
  vault token --account work           Print an account's token (for scripts)
  vault select --task quick-query      Show which account would serve a task, and why
  vault exec -- codex                  Run an agent with the account the selector picks
  eval \"$(vault env)\"                  Put a granted account's variables in this shell
  vault dashboard                      Watch accounts, quota and sessions; switch with one key
  vault completions bash > ~/.local/share/bash-completion/completions/vault";

/// Encrypted, audited credentials for AI coding agents.
#[derive(Debug, Parser)]
#[command(name = "vault", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Vault file, or a PostgreSQL database as postgres://USER@HOST/DB
    /// [env: AUTHVAULT_PATH, then AUTHVAULT_DATABASE_URL] [default:
    /// DATA_DIR/authvault/vault.db]
    #[arg(long, global = true, value_name = "PATH|URL")]
    vault: Option<String>,
    /// Print machine-readable JSON (stable field names) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Print no warnings or notices on stderr (errors still are).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new vault (OS keyring, or --passphrase).
    Init(init::Args),
    /// Show the vault: format, unlock methods, keyring, accounts, audit chain.
    Status,
    /// Check modes, file integrity, keyring and audit chain; --fix repairs modes.
    Doctor(doctor::Args),
    /// Log in to a subscription (OAuth in the browser, or --paste), or store
    /// an API key (--api-key-stdin); new account or --account to replace.
    Login(login::Args),
    /// List and manage accounts.
    Accounts(accounts::Args),
    /// Print an account's API key or access token (and nothing else).
    Token(token::Args),
    /// Show or verify the audit log.
    Audit(audit::Args),
    /// Rotate the data key and re-seal every sealed value.
    Rekey,
    /// Add, change or remove the passphrase unlock method.
    Passphrase(passphrase::Args),
    /// Add or remove the OS keyring unlock method.
    Keyring(keyring::Args),
    /// Force a refresh of an account's OAuth tokens.
    Refresh(refresh::Args),
    /// Show plan, usage windows and credits of accounts.
    Subscription(subscription::Args),
    /// Remove an account's OAuth tokens (--revoke: also at the provider).
    Logout(logout::Args),
    /// Import legacy credential files (Codex, Claude Code) once, safely.
    Migrate(migrate::Args),
    /// Write a legacy credential file (Codex auth.json, Claude Code .credentials.json).
    Export(export::Args),
    /// Copy the vault to a new file or an empty PostgreSQL database, sealed
    /// values as they are, and verify the copy there.
    Copy(copy::Args),
    /// Show provider windows and local budgets; set or unset budgets.
    Quota(quota::Args),
    /// Reserve tokens on an account within its budgets; prints the id.
    Reserve(ledger::ReserveArgs),
    /// Record what a reservation used and free the rest.
    Commit(ledger::CommitArgs),
    /// Free a reservation unused.
    Release(ledger::ReleaseArgs),
    /// Show or change the selection policy (kept in the vault's settings).
    Policy(policy::Args),
    /// Pin an account for selection (LABEL), or unpin it (--clear).
    Switch(policy::SwitchArgs),
    /// Show which account would serve a task, and why (nothing is reserved);
    /// exit status 4 when no account is eligible.
    Select(select::SelectArgs),
    /// Probe every enabled account at once: outcome, latency and cooldown of
    /// each (exit 0 even when probes fail).
    Health(health::Args),
    /// List past selection decisions, newest last.
    History(select::HistoryArgs),
    /// Grant an account for a task and print its environment for the shell
    /// (`eval "$(vault env)"`); exit status 4 when no account is eligible,
    /// 3 when over budget.
    Env(agent::EnvArgs),
    /// Run a command with a granted account's environment (`vault exec --
    /// codex …`); exits with the command's status (128 + signal when killed),
    /// 4 when no account is eligible, 3 when over budget.
    Exec(agent::ExecArgs),
    /// List live agent sessions (closing those whose process died).
    Sessions,
    /// A terminal UI: accounts with their usage, agent sessions and the
    /// provider choice, switched with one key (`?` lists the keys).
    Dashboard(dashboard::Args),
    /// Print a shell completion script (bash, zsh, fish…) to stdout.
    Completions(conventions::CompletionsArgs),
    /// Print the man page (roff) to stdout: `vault man | man -l -`.
    Man,
    /// Usage history: import agent logs, rebuild the rollup.
    Usage(usage::Args),
    /// Claude Code's statusLine command: reads its JSON on stdin, imports
    /// the session's new usage, prints one line of account, today's cost,
    /// the running 5-hour block and the account's utilization.
    Statusline(statusline::Args),
}

/// Reads a line from the controlling terminal without echo; `None` without one.
fn prompt(text: &str) -> Option<SecretString> {
    rpassword::prompt_password(text)
        .ok()
        .map(SecretString::from)
}

/// Writes a line to stdout: the one place the commands' output goes out.
/// Control characters are escaped, line breaks kept (JSON text stays the
/// same JSON, see [`authvault::terminal`]); a value interpolated into `text`
/// must be escaped with [`escape`] so it cannot break a line. A reader that
/// went away (`vault … | head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", escape_lines(text)).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes a line to stderr, escaped like everything else the binary prints
/// (values in it may come from files or providers).
fn print_err(text: &str) {
    eprintln!("{}", escape_lines(text));
}

/// Set once by `--quiet`, before any command runs.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes a warning or notice to stderr, as [`print_err`], unless `--quiet`.
fn print_warn(text: &str) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        print_err(text);
    }
}

/// What every command gets.
pub struct Ctx {
    config: Config,
    json: bool,
}

/// Runs the parsed command line; `hardening` is what `main` got from
/// [`authvault::hardening::harden_process`], reported once logging is set up.
pub fn run(cli: Cli, hardening: Result<(), HardeningError>) -> Result<ExitCode> {
    let config = Config::from_env(cli.vault.as_deref())?;
    // Every store, audit entry and session of this process names this host,
    // from the first entry `vault init` writes.
    authvault::process::set_host(config.host.clone());
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    // Quiet keeps errors in the log; an explicit RUST_LOG still wins.
    let default_filter = if cli.quiet { "error" } else { "warn" };
    init_logging(config.log_filter.as_deref().unwrap_or(default_filter));
    if let Err(e) = hardening {
        // Not fatal: a sandbox may forbid the calls; the user is told.
        tracing::warn!("{e}");
    }
    let ctx = Ctx {
        config,
        json: cli.json,
    };
    match cli.command {
        Command::Init(args) => init::run(&ctx, &args),
        Command::Status => status::run(&ctx),
        Command::Doctor(args) => doctor::run(&ctx, &args),
        Command::Login(args) => login::run(&ctx, &args),
        Command::Accounts(args) => accounts::run(&ctx, &args),
        Command::Token(args) => token::run(&ctx, &args),
        Command::Audit(args) => audit::run(&ctx, &args),
        Command::Rekey => rekey::run(&ctx),
        Command::Passphrase(args) => passphrase::run(&ctx, &args),
        Command::Keyring(args) => keyring::run(&ctx, &args),
        Command::Migrate(args) => migrate::run(&ctx, &args),
        Command::Refresh(args) => refresh::run(&ctx, &args),
        Command::Subscription(args) => subscription::run(&ctx, &args),
        Command::Logout(args) => logout::run(&ctx, &args),
        Command::Export(args) => export::run(&ctx, &args),
        Command::Copy(args) => copy::run(&ctx, &args),
        Command::Quota(args) => quota::run(&ctx, &args),
        Command::Reserve(args) => ledger::reserve(&ctx, &args),
        Command::Commit(args) => ledger::commit(&ctx, &args),
        Command::Release(args) => ledger::release(&ctx, &args),
        Command::Policy(args) => policy::run(&ctx, &args),
        Command::Switch(args) => policy::switch(&ctx, &args),
        Command::Select(args) => select::select(&ctx, &args),
        Command::Health(args) => health::run(&ctx, &args),
        Command::History(args) => select::history(&ctx, &args),
        Command::Env(args) => agent::env(&ctx, &args),
        Command::Exec(args) => agent::exec(&ctx, &args),
        Command::Sessions => agent::sessions(&ctx),
        Command::Dashboard(args) => dashboard::run(&ctx, &args),
        Command::Completions(args) => conventions::completions(&args),
        Command::Man => conventions::man(),
        Command::Usage(args) => usage::run(&ctx, &args),
        Command::Statusline(args) => statusline::run(&ctx, &args),
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| EscapedStderr)
        .try_init();
}

/// Log output: `tracing` writes each event with one `write_all` of the whole
/// formatted line, which goes out with every control character escaped and
/// only the final line break kept, so no field can forge a line.
struct EscapedStderr;

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (line, end) = text
            .strip_suffix('\n')
            .map_or((&*text, ""), |line| (line, "\n"));
        let mut err = std::io::stderr().lock();
        err.write_all(escape(line).as_bytes())?;
        err.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Argon2id cost flags shared by the commands that create a passphrase wrap.
#[derive(Debug, Clone, clap::Args)]
pub struct KdfArgs {
    /// Argon2id memory cost in KiB (min 19456).
    #[arg(long = "kdf-memory-kib", default_value_t = KdfCost::default().m_kib, value_name = "KIB")]
    memory_kib: u32,
    /// Argon2id iterations (min 2).
    #[arg(long = "kdf-iterations", default_value_t = KdfCost::default().t, value_name = "N")]
    iterations: u32,
    /// Argon2id lanes.
    #[arg(long = "kdf-parallelism", default_value_t = KdfCost::default().p, value_name = "N")]
    parallelism: u32,
}

impl KdfArgs {
    fn cost(&self) -> authvault::Result<KdfCost> {
        let cost = KdfCost {
            m_kib: self.memory_kib,
            t: self.iterations,
            p: self.parallelism,
        };
        Ok(cost.check()?)
    }
}

impl Ctx {
    /// The OS keyring as this host's (`AUTHVAULT_HOST`, else the node name).
    fn keyring(&self) -> OnHost<'static> {
        OnHost {
            keyring: &OsKeyring,
            host: self.config.host.clone(),
        }
    }

    fn actor(&self) -> Actor {
        Actor::current(self.config.agent_id.clone())
    }

    /// The passphrase of an existing vault: `AUTHVAULT_PASSPHRASE`, else a
    /// no-echo prompt on a terminal.
    fn passphrase(&self) -> Result<SecretString> {
        if let Some(p) = &self.config.passphrase {
            return Ok(p.clone());
        }
        // Read from the controlling terminal, not stdin (which may carry an API key).
        let text = format!("Passphrase for {}: ", self.config.location);
        Ok(prompt(&text).ok_or(Error::PassphraseRequired)?)
    }

    /// A new passphrase: `env` (AUTHVAULT_PASSPHRASE for init,
    /// AUTHVAULT_NEW_PASSPHRASE otherwise), else prompted twice.
    fn new_passphrase(env: Option<&SecretString>, env_name: &str) -> Result<SecretString> {
        let p = if let Some(p) = env {
            p.clone()
        } else {
            let missing = || {
                anyhow::anyhow!(
                    "a new passphrase is needed: set {env_name} or run in a terminal to be prompted"
                )
            };
            let first = prompt("New passphrase: ").ok_or_else(missing)?;
            let second = prompt("Repeat it: ").ok_or_else(missing)?;
            if first.expose_secret() != second.expose_secret() {
                anyhow::bail!("the two passphrases differ; nothing was changed");
            }
            first
        };
        if p.expose_secret().chars().count() < 8 {
            anyhow::bail!("the passphrase is shorter than 8 characters; nothing was changed");
        }
        Ok(p)
    }

    /// Whether no vault exists yet at the configured location (`vault
    /// migrate` creates one then).
    fn vacant(&self) -> Result<bool> {
        match &self.config.location {
            Location::File(path) => Ok(authvault::db::vacant(path)?),
            Location::Postgres(_) => match Vault::open_at(&self.config.location) {
                Ok(_) => Ok(false),
                Err(Error::NoVault { .. }) => Ok(true),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Opens and unlocks the vault: with `AUTHVAULT_PASSPHRASE`, the
    /// passphrase first; else the OS keyring when the vault has that method
    /// and it answers, else the passphrase (prompting on a terminal).
    fn unlock(&self) -> Result<Store> {
        self.unlock_with(true)
    }

    /// As [`Ctx::unlock`]; with `prompt` false, never asks on the terminal.
    fn unlock_with(&self, prompt: bool) -> Result<Store> {
        let location = &self.config.location;
        let vault = Vault::open_at(location)?;
        let methods = vault.methods()?;
        // A passphrase given in the environment comes first: unlocking with
        // it needs no Secret Service, which is why fleets set it (a burst of
        // keyring clients can crash gnome-keyring). If it fails, the keyring
        // is tried, with a warning.
        if let Some(passphrase) = &self.config.passphrase
            && methods.contains(&Method::Passphrase)
        {
            let failed = match vault.unlock(&Unlock::Passphrase(passphrase, KdfCost::default())) {
                Ok(store) => return Ok(store.with_actor(self.actor())),
                Err(e) if methods.contains(&Method::Keyring) => e,
                Err(e) => return Err(e.into()),
            };
            tracing::warn!("AUTHVAULT_PASSPHRASE: {failed}; trying the OS keyring");
            return match Vault::open_at(location)?.unlock(&Unlock::Keyring(&self.keyring())) {
                Ok(store) => Ok(store.with_actor(self.actor())),
                Err(k) => Err(anyhow::Error::new(k).context(format!(
                    "AUTHVAULT_PASSPHRASE: {failed}, and the OS keyring failed too"
                ))),
            };
        }
        let mut keyring_failure = None;
        let vault = if methods.contains(&Method::Keyring) {
            match vault.unlock(&Unlock::Keyring(&self.keyring())) {
                Ok(store) => return Ok(store.with_actor(self.actor())),
                Err(e) => {
                    tracing::info!(error = %e, "keyring unlock failed");
                    keyring_failure = Some(e);
                    Vault::open_at(location)?
                }
            }
        } else {
            vault
        };
        if methods.contains(&Method::Passphrase) {
            let passphrase = match (&self.config.passphrase, prompt) {
                (Some(p), _) => Ok(p.clone()),
                (None, true) => self.passphrase(),
                (None, false) => Err(Error::PassphraseRequired.into()),
            };
            let passphrase = match (passphrase, keyring_failure) {
                (Ok(p), _) => p,
                (Err(e), None) => return Err(e),
                // Say why the keyring did not do (for example: re-enrol).
                (Err(e), Some(k)) => return Err(anyhow::Error::new(k).context(format!("{e:#}"))),
            };
            let store = vault.unlock(&Unlock::Passphrase(&passphrase, KdfCost::default()))?;
            return Ok(store.with_actor(self.actor()));
        }
        Err(keyring_failure.map_or_else(
            || anyhow::anyhow!("the vault has no usable unlock method"),
            |e| {
                anyhow::Error::new(e)
                    .context("the vault unlocks only with the OS keyring, which failed")
            },
        ))
    }

    /// The unlocked vault with provider access.
    fn manager(&self) -> Result<Manager> {
        if let Some(e) = &self.config.config_error {
            anyhow::bail!("{e}; nothing was sent to any provider");
        }
        Ok(Manager::new(
            self.unlock()?,
            self.config.endpoints.clone(),
            self.config.refresh_lease,
        )?)
    }

    /// Makes sure `store` holds the KEK of every unlock method of this host
    /// but `except` (rekey needs them all; removing a method needs the
    /// others proven). Other hosts' keyrings are theirs to hold.
    fn gather_keks(&self, store: &mut Store, except: Option<Method>) -> Result<()> {
        for method in store.methods()? {
            if store.has_kek(method) || except == Some(method) || !store.has_method_here(method)? {
                continue;
            }
            match method {
                Method::Keyring => store
                    .add_kek(&Unlock::Keyring(&self.keyring()))
                    .context("the OS keyring unlock method is needed too")?,
                Method::Passphrase => {
                    let p = self.passphrase()?;
                    store.add_kek(&Unlock::Passphrase(&p, KdfCost::default()))?;
                }
            }
        }
        Ok(())
    }

    /// Prints `value` as JSON, or `text()` for humans.
    fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            print_out(&serde_json::to_string_pretty(value)?)?;
        } else {
            let text = text();
            if !text.is_empty() {
                print_out(&text)?;
            }
        }
        Ok(())
    }
}
