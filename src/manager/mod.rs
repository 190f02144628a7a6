//! The manager: hands out valid credentials. It ties the store (sync SQLite)
//! to the providers (async HTTP): every network call runs on a private
//! current-thread runtime between store calls, so no async code ever waits on
//! a SQLite lock and nothing is written twice.
//!
//! One file per concern: this one holds `Manager`, its construction, the
//! lazily built network part and the helpers the others share; `refresh`
//! hands out tokens (single-flight refresh across processes, see
//! `store::refresh`); `login` logs in and out; `subscription` serves usage
//! snapshots; `health` probes every account at once, refreshes several
//! snapshots concurrently and puts accounts in cooldown; `task` chooses and
//! grants accounts for agents' tasks (`authenticate_for_task`); `env` turns a
//! grant into an agent's environment; `sessions` lists live agent sessions;
//! `writeback` merges the tokens Codex refreshed during a run back into the
//! vault.

use std::cell::OnceCell;
use std::time::Duration;

use crate::endpoints::Endpoints;
use crate::error::{Error, Result};
use crate::model::{Identity, Provider};
use crate::providers::http::{Http, RetryPolicy};
use crate::providers::{AnyProvider, ProviderError};
use crate::store::{AccountInfo, Store};

mod attribution;
mod env;
mod health;
mod login;
mod refresh;
mod sessions;
mod subscription;
mod task;
mod writeback;

pub use attribution::{Attributed, attributable};
pub use env::{AgentEnv, EnvVar, agent_env};
pub use health::{
    DEFAULT_PROBE_CONCURRENCY, DEFAULT_PROBE_TIMEOUT, Outcome, ProbeOptions, ProbeReport,
};
pub use login::{LoggedIn, LoginSession, LoginTarget};
pub use refresh::{OPENAI_MAX_AGE, REFRESH_MARGIN, Served, needs_refresh};
pub use subscription::SNAPSHOT_TTL;
pub use task::{Grant, GrantOptions, candidates, policy};
pub use writeback::WriteBack;

/// The HTTP client and the runtime its calls run on.
struct Net {
    http: Http,
    runtime: tokio::runtime::Runtime,
}

fn net(cell: &OnceCell<Net>) -> Result<&Net> {
    if let Some(n) = cell.get() {
        return Ok(n);
    }
    let http = Http::new(RetryPolicy::default()).map_err(|e| Error::Provider {
        provider: Provider::OpenAi,
        source: e.into(),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the network runtime", "-"))?;
    Ok(cell.get_or_init(|| Net { http, runtime }))
}

/// The store plus everything needed to talk to providers.
pub struct Manager {
    store: Store,
    endpoints: Endpoints,
    /// Built on first use: a `vault token` that needs no network pays nothing for TLS.
    net: OnceCell<Net>,
    lease: Duration,
    holder: String,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("store", &self.store)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn provider_error(provider: Provider) -> impl FnOnce(ProviderError) -> Error {
    move |source| Error::Provider { provider, source }
}

/// Which identity field differs between an account and a provider's answer.
fn identity_differs(account: &AccountInfo, answer: &Identity) -> Option<&'static str> {
    if let (Some(a), Some(b)) = (&account.provider_account_id, &answer.provider_account_id)
        && a != b
    {
        return Some(if account.provider == Provider::OpenAi {
            "ChatGPT account id"
        } else {
            "account id"
        });
    }
    if let (Some(a), Some(b)) = (&account.email, &answer.email)
        && !a.eq_ignore_ascii_case(b)
    {
        return Some("e-mail");
    }
    None
}

impl Manager {
    /// Wraps an unlocked store.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn new(store: Store, endpoints: Endpoints, lease: Duration) -> Result<Self> {
        let mut nonce = [0u8; 6];
        crate::crypto::fill_random(&mut nonce)?;
        Ok(Self {
            store,
            endpoints,
            net: OnceCell::new(),
            lease,
            holder: format!("pid {} {}", std::process::id(), crate::crypto::hex(&nonce)),
        })
    }

    /// The store.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    fn provider(&self, p: Provider) -> AnyProvider {
        AnyProvider::new(p, &self.endpoints)
    }
}
