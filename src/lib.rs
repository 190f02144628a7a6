//! authvault: an encrypted, audited credential vault and multi-account auth
//! manager for AI coding agents.
//!
//! Secrets (API keys, OAuth tokens) live in sealed SQLite columns; the data
//! key is wrapped by a key from the OS keyring or an Argon2id passphrase;
//! every secret read and change is recorded in an HMAC-chained audit log.
//!
//! ```
//! use authvault::keys::{MemoryKeyring, Unlock};
//! use authvault::model::{Credential, CredentialKind, Identity, Provider};
//! use authvault::store::{AccountSelector, NewAccount, Store};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! # fn main() -> Result<(), authvault::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let keyring = MemoryKeyring::default(); // the CLI uses the OS keyring
//! let path = dir.path().join("vault").join("vault.db"); // created 0700
//! let mut store = Store::init(&path, &Unlock::Keyring(&keyring))?;
//! store.add_account(&NewAccount {
//!     provider: Provider::OpenAi,
//!     label: "work".into(),
//!     identity: Identity::default(),
//!     credentials: vec![Credential::ApiKey(SecretString::from("sk-example"))],
//!     active: CredentialKind::ApiKey,
//! })?;
//! let token = store.token(AccountSelector { label: Some("work"), provider: None })?;
//! assert_eq!(token.secret.expose_secret(), "sk-example");
//! assert!(store.verify_audit()?.state == authvault::store::ChainState::Intact);
//! # Ok(()) }
//! ```
//!
//! Layers, top down: `cli` (binary only) → [`store`] (repository) →
//! [`crypto`] / [`keys`] / [`db`]. See ARCHITECTURE.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod config;
pub mod crypto;
pub mod db;
pub mod endpoints;
pub mod error;
pub mod hardening;
pub mod import;
pub mod jwt;
pub mod keys;
pub mod manager;
pub mod model;
pub mod process;
pub mod providers;
pub mod quota;
pub mod selector;
pub mod store;
pub mod terminal;
pub mod usage;

pub use error::{Error, Result};
