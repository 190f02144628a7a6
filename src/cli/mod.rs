//! The commands. Only this module prints; each command is one file.
#![allow(clippy::print_stdout, clippy::print_stderr)] // cli/ is where output happens

mod accounts;
mod audit;
mod doctor;
mod init;
mod keyring;
mod login;
mod passphrase;
mod rekey;
mod status;
mod token;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use authvault::Error;
use authvault::config::Config;
use authvault::keys::{KdfCost, Method, OsKeyring, Unlock};
use authvault::store::{Actor, Store, Vault};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// Encrypted, audited credentials for AI coding agents.
#[derive(Debug, Parser)]
#[command(name = "vault", version, about, long_about = None)]
pub struct Cli {
    /// Vault file [env: AUTHVAULT_PATH] [default: <data dir>/authvault/vault.db]
    #[arg(long, global = true, value_name = "PATH")]
    vault: Option<PathBuf>,
    /// Print machine-readable JSON (stable field names) instead of text.
    #[arg(long, global = true)]
    json: bool,
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
    /// Add an account (API key from stdin) or replace its credential.
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
}

/// What every command gets.
pub struct Ctx {
    config: Config,
    json: bool,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let config = Config::from_env(cli.vault);
    init_logging(config.log_filter.as_deref());
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
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Argon2id cost flags shared by the commands that create a passphrase wrap.
#[derive(Debug, Clone, clap::Args)]
pub struct KdfArgs {
    /// Argon2id memory cost in KiB (min 19456).
    #[arg(long, default_value_t = KdfCost::default().m_kib, value_name = "KIB")]
    kdf_memory_kib: u32,
    /// Argon2id iterations (min 2).
    #[arg(long, default_value_t = KdfCost::default().t, value_name = "N")]
    kdf_iterations: u32,
    /// Argon2id lanes.
    #[arg(long, default_value_t = KdfCost::default().p, value_name = "N")]
    kdf_parallelism: u32,
}

impl KdfArgs {
    fn cost(&self) -> authvault::Result<KdfCost> {
        KdfCost {
            m_kib: self.kdf_memory_kib,
            t: self.kdf_iterations,
            p: self.kdf_parallelism,
        }
        .check()
    }
}

impl Ctx {
    fn actor(&self) -> Actor {
        Actor::current(self.config.agent_id.clone())
    }

    /// The passphrase of an existing vault: `AUTHVAULT_PASSPHRASE`, else a
    /// no-echo prompt on a terminal.
    fn passphrase(&self) -> Result<SecretString> {
        if let Some(p) = &self.config.passphrase {
            return Ok(p.clone());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::PassphraseRequired.into());
        }
        let p = rpassword::prompt_password(format!(
            "Passphrase for {}: ",
            self.config.vault_path.display()
        ))
        .context("reading the passphrase from the terminal")?;
        Ok(SecretString::from(p))
    }

    /// A new passphrase: `env` (AUTHVAULT_PASSPHRASE for init,
    /// AUTHVAULT_NEW_PASSPHRASE otherwise), else prompted twice.
    fn new_passphrase(&self, env: Option<&SecretString>, env_name: &str) -> Result<SecretString> {
        let p = if let Some(p) = env {
            p.clone()
        } else {
            if !std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "a new passphrase is needed: set {env_name} or run in a terminal to be prompted"
                );
            }
            let first =
                rpassword::prompt_password("New passphrase: ").context("reading the passphrase")?;
            let second =
                rpassword::prompt_password("Repeat it: ").context("reading the passphrase")?;
            if first != second {
                anyhow::bail!("the two passphrases differ; nothing was changed");
            }
            SecretString::from(first)
        };
        if p.expose_secret().chars().count() < 8 {
            anyhow::bail!("the passphrase is shorter than 8 characters; nothing was changed");
        }
        Ok(p)
    }

    /// Opens and unlocks the vault: the OS keyring when the vault has that
    /// method and it answers, else the passphrase.
    fn unlock(&self) -> Result<Store> {
        let path = &self.config.vault_path;
        let vault = Vault::open(path)?;
        let methods = vault.methods()?;
        let mut keyring_failure = None;
        let vault = if methods.contains(&Method::Keyring) {
            match vault.unlock(&Unlock::Keyring(&OsKeyring)) {
                Ok(store) => return Ok(store.with_actor(self.actor())),
                Err(e) => {
                    tracing::info!(error = %e, "keyring unlock failed");
                    keyring_failure = Some(e);
                    Vault::open(path)?
                }
            }
        } else {
            vault
        };
        if methods.contains(&Method::Passphrase) {
            let passphrase = self.passphrase()?;
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

    /// Makes sure `store` holds the KEK of every unlock method (for rekey).
    fn gather_keks(&self, store: &mut Store) -> Result<()> {
        for method in store.methods()? {
            if store.has_kek(method) {
                continue;
            }
            match method {
                Method::Keyring => store
                    .add_kek(&Unlock::Keyring(&OsKeyring))
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
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
        Ok(())
    }
}
