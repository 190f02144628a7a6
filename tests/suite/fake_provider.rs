//! An in-process fake of OpenAI/ChatGPT and Anthropic/Claude: real HTTP on
//! 127.0.0.1, the providers' wire formats (`../shared/PROVIDERS.md`), rotating
//! single-use refresh tokens that revoke their whole family on reuse,
//! injectable faults and request counters.
//!
//! One base URL serves every route; [`FakeProvider::env`] gives the
//! `AUTHVAULT_*` overrides that point a `vault` child at it:
//!
//! | route | speaks as |
//! |---|---|
//! | `GET /openai/oauth/authorize`, `POST /openai/oauth/token` | `auth.openai.com` |
//! | `GET /claude/oauth/authorize` | `claude.ai` |
//! | `POST /claude/v1/oauth/token` | `console.anthropic.com` |
//! | `GET /anthropic/v1/models`, `/anthropic/api/oauth/{usage,profile}` | `api.anthropic.com` |
//! | `GET /openai-api/v1/models` | `api.openai.com` |
//! | `GET /chatgpt/wham/usage` | `chatgpt.com/backend-api` |
//!
//! The server runs on a current-thread tokio runtime on its own thread, so a
//! plain `#[test]` may block on `vault` processes while it serves. Dropping the
//! [`FakeProvider`] stops it and drops every open connection.
//!
//! As strict as the real services where a lax fake would hide a bug: PKCE
//! S256 checked (RFC 7636 verifier syntax included), codes single-use and
//! bound to `redirect_uri`, `client_id` (and for Claude `state`); refresh
//! tokens single-use; access tokens checked for expiry and revocation;
//! `/v1/models` of Anthropic wants `anthropic-version`, and with a Bearer token
//! `anthropic-beta: oauth-2025-04-20`; the ChatGPT usage endpoint wants the
//! token's `ChatGPT-Account-Id`. Lenient where clients differ: both token
//! endpoints take JSON or form bodies. OpenAI token answers carry exactly
//! `id_token`, `access_token`, `refresh_token` (no `expires_in`, no
//! `token_type`): the expiry is the access JWT's `exp`.
//!
//! Fixed usage figures (so snapshot tests can compare whole values): Claude
//! 5-hour 12 %, 7-day 34 %, 7-day Sonnet 5 %, Opus `null` (headers carry the
//! same as fractions 0.12 / 0.34); ChatGPT primary 25 % of 300 min, secondary
//! 40 % of 10080 min, no credits. Reset times are the server's start (whole
//! seconds) plus the window length, the same in bodies and headers.

use std::future::IntoFuture;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

mod http;
mod routes;
mod state;
#[cfg(test)]
mod tests;

pub use http::{HttpResponse, http_get, http_request};
use state::Shared;

/// Which provider a token, key or identity belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prov {
    OpenAi,
    Claude,
}

impl Prov {
    fn idx(self) -> usize {
        match self {
            Prov::OpenAi => 0,
            Prov::Claude => 1,
        }
    }
}

/// An endpoint of the fake, for faults and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ep {
    OpenAiAuthorize,
    OpenAiToken,
    ClaudeAuthorize,
    ClaudeToken,
    AnthropicModels,
    ClaudeUsage,
    ClaudeProfile,
    OpenAiModels,
    ChatGptUsage,
}

impl Ep {
    /// Whose error shapes this endpoint speaks.
    fn prov(self) -> Prov {
        match self {
            Ep::OpenAiAuthorize | Ep::OpenAiToken | Ep::OpenAiModels | Ep::ChatGptUsage => {
                Prov::OpenAi
            }
            Ep::ClaudeAuthorize
            | Ep::ClaudeToken
            | Ep::AnthropicModels
            | Ep::ClaudeUsage
            | Ep::ClaudeProfile => Prov::Claude,
        }
    }
}

/// A fault queued for one endpoint; each request to it consumes one.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and a provider-shaped JSON error body.
    Status(u16),
    /// 429 with `retry-after` and a provider-shaped rate-limit body.
    RateLimited { retry_after_secs: u64 },
    /// 529 `overloaded_error` (Anthropic shape on Claude endpoints).
    Overloaded,
    /// Token endpoints: a permanent failure in the provider's shape (OpenAI 401
    /// `refresh_token_expired`, Claude 400 `invalid_grant`); the presented
    /// refresh token's family dies (not counted in [`FakeProvider::revoked`]),
    /// a presented authorization code is consumed. Other endpoints: 401.
    InvalidGrant,
    /// Wait, then answer normally. A client that hangs up meanwhile leaves
    /// nothing done (the request is dropped before it is processed).
    Delay(Duration),
    /// Process the request now, answer after a wait: a client killed
    /// meanwhile loses what the server did (e.g. a rotated refresh token).
    DelayAfter(Duration),
    /// Answer normally, but as another account ([`Identity::switched`]): token
    /// endpoints issue a new family to it and leave the presented refresh token
    /// valid; authorize binds the code to it; profile reports it.
    IdentitySwitch,
    /// Authorize only: redirect with `error=access_denied`. Elsewhere: 403.
    DenyConsent,
}

/// Who a login or token belongs to. For Claude, `account_id` is the account
/// uuid and `plan` is the subscription (`max`, `max5x`, `pro`, `free`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub account_id: String,
    pub plan: String,
}

impl Identity {
    pub fn new(email: &str, account_id: &str, plan: &str) -> Self {
        Self {
            email: email.to_owned(),
            account_id: account_id.to_owned(),
            plan: plan.to_owned(),
        }
    }

    /// The other account an [`Fault::IdentitySwitch`] answers as.
    pub fn switched(&self) -> Self {
        Self {
            email: format!("other.{}", self.email),
            account_id: format!("{}-other", self.account_id),
            plan: self.plan.clone(),
        }
    }

    fn default_for(prov: Prov) -> Self {
        match prov {
            Prov::OpenAi => Self::new(
                "ada@example.com",
                "7f3e9c1a-2b4d-4e6f-8a0b-1c2d3e4f5a6b",
                "plus",
            ),
            Prov::Claude => Self::new(
                "grace@example.com",
                "0b6c1d2e-3f40-4152-8a63-7b8c9d0e1f2a",
                "max",
            ),
        }
    }
}

/// The running fake. See the module documentation.
pub struct FakeProvider {
    base: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeProvider {
    /// Binds a free port on 127.0.0.1 and serves on a background thread; ready
    /// (connections are accepted) when it returns.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake provider");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::new());
        let app = routes::router(Arc::clone(&shared));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("fake-provider-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake provider runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        served = axum::serve(listener, app).into_future() => {
                            if let Err(e) = served {
                                eprintln!("fake provider stopped: {e}");
                            }
                        }
                        _ = rx => {}
                    }
                });
                // Connections still open (keep-alive, delayed answers) end here.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("spawn the fake provider thread");
        Self {
            base: format!("http://{addr}"),
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// The environment that points a `vault` child at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let b = &self.base;
        vec![
            (
                "AUTHVAULT_CLAUDE_AUTHORIZE_URL",
                format!("{b}/claude/oauth/authorize"),
            ),
            (
                "AUTHVAULT_CLAUDE_TOKEN_URL",
                format!("{b}/claude/v1/oauth/token"),
            ),
            ("AUTHVAULT_ANTHROPIC_API_URL", format!("{b}/anthropic")),
            (
                "AUTHVAULT_OPENAI_AUTHORIZE_URL",
                format!("{b}/openai/oauth/authorize"),
            ),
            (
                "AUTHVAULT_OPENAI_TOKEN_URL",
                format!("{b}/openai/oauth/token"),
            ),
            ("AUTHVAULT_OPENAI_API_URL", format!("{b}/openai-api")),
            ("AUTHVAULT_CHATGPT_API_URL", format!("{b}/chatgpt")),
        ]
    }

    /// Who the next authorize request of `provider` logs in as.
    pub fn set_identity(&self, provider: Prov, identity: Identity) {
        self.shared.lock().next_identity[provider.idx()] = identity;
    }

    /// Lifetime of access tokens issued from now on (default 3600 s).
    pub fn set_access_ttl(&self, secs: u64) {
        self.shared.lock().access_ttl = secs;
    }

    /// Seeds a refresh-token family as if a login had happened; returns
    /// `(access, refresh)` to put in a vault.
    pub fn seed_login(&self, provider: Prov, identity: &Identity) -> (String, String) {
        let issued = self.shared.lock().issue(provider, identity.clone(), None);
        (issued.access, issued.refresh)
    }

    /// An OAuth account holding a login the fake knows (seeded as by
    /// [`FakeProvider::seed_login`]), valid for an hour, with `identity`.
    pub fn seeded_account(
        &self,
        provider: Prov,
        label: &str,
        identity: &Identity,
    ) -> authvault::store::NewAccount {
        use authvault::model::{Credential, CredentialKind, OAuthTokens};
        use secrecy::SecretString;
        let (access, refresh) = self.seed_login(provider, identity);
        let now = chrono::Utc::now();
        authvault::store::NewAccount {
            provider: match provider {
                Prov::OpenAi => authvault::model::Provider::OpenAi,
                Prov::Claude => authvault::model::Provider::Claude,
            },
            label: label.into(),
            identity: authvault::model::Identity {
                email: Some(identity.email.clone()),
                provider_account_id: Some(identity.account_id.clone()),
                plan: Some(identity.plan.clone()),
                rate_limit_tier: None,
            },
            credentials: vec![Credential::OAuth(OAuthTokens {
                access_token: SecretString::from(access),
                refresh_token: Some(SecretString::from(refresh)),
                id_token: None,
                expires_at: Some(now + chrono::Duration::hours(1)),
                scopes: vec![],
                last_refresh: Some(now),
            })],
            active: CredentialKind::OAuth,
        }
    }

    /// A ChatGPT login as [`FakeProvider::seeded_account`] makes for OpenAI,
    /// plus the id token a real login carries (e-mail, plan, account id), as
    /// Codex needs it.
    pub fn seeded_chatgpt_account(
        &self,
        label: &str,
        identity: &Identity,
    ) -> authvault::store::NewAccount {
        let mut account = self.seeded_account(Prov::OpenAi, label, identity);
        let now = chrono::Utc::now().timestamp();
        let id_token = state::openai_id_token(identity, now, now + 3600);
        for c in &mut account.credentials {
            if let authvault::model::Credential::OAuth(t) = c {
                t.id_token = Some(secrecy::SecretString::from(id_token.clone()));
            }
        }
        account
    }

    /// Makes `/v1/models` of `provider` accept `key`.
    pub fn register_api_key(&self, provider: Prov, key: &str) {
        self.shared
            .lock()
            .api_keys
            .insert((provider, key.to_owned()));
    }

    /// Queues a fault (FIFO) for the next request to `ep`.
    pub fn push_fault(&self, ep: Ep, fault: Fault) {
        self.shared
            .lock()
            .faults
            .entry(ep)
            .or_default()
            .push_back(fault);
    }

    /// Requests `ep` received, faulted or not.
    pub fn count(&self, ep: Ep) -> usize {
        self.shared.lock().counts.get(&ep).copied().unwrap_or(0)
    }

    /// The most requests (to any endpoint) that were being served at the
    /// same time, delays included.
    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().max_in_flight
    }

    /// `refresh_token` grants received by `provider`'s token endpoint, however answered.
    pub fn refreshes(&self, provider: Prov) -> usize {
        self.shared.lock().refreshes[provider.idx()]
    }

    /// Refresh grants answered with a permanent error (unknown, revoked, reused,
    /// or [`Fault::InvalidGrant`]).
    pub fn invalid_grants(&self, provider: Prov) -> usize {
        self.shared.lock().invalid_grants[provider.idx()]
    }

    /// The newest access token issued to `account_id` (login, refresh or seed).
    pub fn current_access(&self, provider: Prov, account_id: &str) -> Option<String> {
        self.shared
            .lock()
            .newest_access
            .get(&(provider, account_id.to_owned()))
            .cloned()
    }

    /// Families revoked because a consumed refresh token was presented again.
    pub fn revoked(&self, provider: Prov) -> usize {
        self.shared.lock().revoked[provider.idx()]
    }

    /// Acts as the browser: GETs an authorize URL of this fake without
    /// following redirects and returns the `Location` it answers (panics on
    /// anything but a 302).
    pub fn authorize_redirect(&self, authorize_url: &str) -> String {
        assert!(
            authorize_url.starts_with(&self.base),
            "{authorize_url} does not point at the fake provider {}",
            self.base
        );
        let r = http_request("GET", authorize_url, &[], b"");
        assert_eq!(r.status, 302, "authorize answered {}: {}", r.status, r.body);
        r.header("location")
            .expect("302 without Location")
            .to_owned()
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread already failed the test that caused it.
            let _ = thread.join();
        }
    }
}
