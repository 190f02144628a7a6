//! Providers: Claude (Anthropic) and OpenAI behind one [`AuthProvider`]
//! abstraction: log in (OAuth with PKCE), refresh, validate an API key, fetch
//! a subscription snapshot.
//!
//! Architecture invariant: providers never touch SQL. They take and return
//! plain values; the manager moves them in and out of the store.

pub mod http;
pub mod loopback;
pub mod oauth;
pub mod snapshot;
pub mod status;

use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use crate::endpoints::Endpoints;
use crate::model::{Credential, Identity, Provider, Snapshot, SnapshotSource};
use http::{Http, HttpError};
use oauth::{Grant, OAuthSpec, PendingLogin};
use status::{Verdict, classify};

/// Why a provider call failed. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The login is dead (`invalid_grant`, reused / expired / revoked token, 401).
    #[error("the provider rejected the login ({code})")]
    Permanent {
        /// The provider's error code.
        code: String,
    },
    /// Worth trying again later (5xx, 529, 429 after the retries).
    #[error("the provider is temporarily failing (HTTP {}: {detail})", status.map_or_else(|| "?".to_owned(), |s| s.to_string()))]
    Transient {
        /// Last HTTP status.
        status: Option<u16>,
        /// The provider's error code, if any.
        detail: String,
        /// How long the provider asked to wait (`retry-after`), when it said.
        retry_after: Option<Duration>,
    },
    /// The request was refused for good (bad code, bad key).
    #[error("the provider refused the request (HTTP {}: {detail})", status.map_or_else(|| "?".to_owned(), |s| s.to_string()))]
    Rejected {
        /// HTTP status.
        status: Option<u16>,
        /// The provider's error code.
        detail: String,
    },
    /// No answer at all.
    #[error(transparent)]
    Unreachable(#[from] HttpError),
    /// An answer we cannot read.
    #[error("unexpected response from the provider: {0}")]
    InvalidResponse(String),
    /// A URL or setting is malformed.
    #[error("provider configuration: {0}")]
    Config(String),
}

impl ProviderError {
    /// Whether trying again later may succeed.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Unreachable(_))
    }

    /// The same error, carrying the `retry-after` of the response when it is
    /// transient.
    #[must_use]
    fn with_retry_after(mut self, headers: &reqwest::header::HeaderMap) -> Self {
        if let Self::Transient { retry_after, .. } = &mut self {
            *retry_after = http::retry_after_header(headers);
        }
        self
    }
}

/// The outcome of checking an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// The provider accepted it.
    Valid,
    /// The provider refused it (HTTP status).
    Rejected(u16),
    /// The provider could not be asked.
    Unverified(String),
    /// The provider answered with a transient status (429, 5xx): the key was
    /// not checked.
    Throttled {
        /// The HTTP status.
        status: u16,
        /// How long the provider asked to wait (`retry-after`), when it said.
        retry_after: Option<Duration>,
    },
}

/// One provider's operations.
#[allow(async_fn_in_trait)] // used through concrete types and `AnyProvider`, never boxed
pub trait AuthProvider {
    /// Which provider this is.
    fn provider(&self) -> Provider;
    /// Its OAuth endpoints and quirks.
    fn oauth_spec(&self) -> OAuthSpec;
    /// The redirect URI for a loopback listener on `port`, or for the paste flow.
    fn redirect_uri(&self, port: Option<u16>) -> String;
    /// Exchanges a code and completes the identity (profile, id token claims).
    async fn finish_login(
        &self,
        http: &Http,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<Grant, ProviderError>;
    /// Redeems a refresh token (the same OAuth grant for both providers).
    async fn refresh(
        &self,
        http: &Http,
        refresh_token: &SecretString,
    ) -> Result<Grant, ProviderError> {
        oauth::refresh(http, &self.oauth_spec(), refresh_token).await
    }
    /// Checks an API key against `GET /v1/models`.
    async fn validate_api_key(&self, http: &Http, key: &SecretString) -> KeyCheck;
    /// Fetches a subscription / rate-limit snapshot for a credential.
    async fn snapshot(
        &self,
        http: &Http,
        credential: &Credential,
        identity: &Identity,
    ) -> Result<Snapshot, ProviderError>;
}

/// Anthropic: Claude Pro/Max subscriptions and API keys.
#[derive(Debug, Clone)]
pub struct Claude {
    endpoints: Endpoints,
}

/// OpenAI: ChatGPT plans (Codex login) and API keys.
#[derive(Debug, Clone)]
pub struct OpenAi {
    endpoints: Endpoints,
}

const ANTHROPIC_VERSION: &str = "2023-06-01";
const ANTHROPIC_OAUTH_BETA: &str = "oauth-2025-04-20";

async fn read_body(
    resp: reqwest::Response,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), ProviderError> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| HttpError::Unreachable {
        host: String::new(),
        reason: e.without_url().to_string(),
    })?;
    Ok((status, headers, body.to_vec()))
}

/// The error for an answer with an error status to the call `what`.
fn status_error(status: reqwest::StatusCode, what: &str) -> ProviderError {
    let s = status.as_u16();
    match classify(s, None) {
        Verdict::Transient => ProviderError::Transient {
            status: Some(s),
            detail: what.to_owned(),
            retry_after: None,
        },
        Verdict::Permanent => ProviderError::Permanent {
            code: format!("{what}: HTTP {s}"),
        },
        Verdict::Rejected => ProviderError::Rejected {
            status: Some(s),
            detail: what.to_owned(),
        },
    }
}

/// The rate-limit headers of an API-key call to `/v1/models` as a snapshot.
async fn headers_snapshot(
    http: &Http,
    provider: Provider,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> Result<Snapshot, ProviderError> {
    let (status, headers, _) = read_body(http.send(build).await?).await?;
    if !status.is_success() {
        return Err(status_error(status, "GET /v1/models").with_retry_after(&headers));
    }
    Ok(snapshot::from_headers(provider, &headers, Utc::now())
        .unwrap_or_else(|| Snapshot::empty(provider, SnapshotSource::Headers, Utc::now())))
}

async fn check_key(
    http: &Http,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> KeyCheck {
    match http.send(build).await {
        Ok(resp) if resp.status().is_success() => KeyCheck::Valid,
        Ok(resp) if classify(resp.status().as_u16(), None) == Verdict::Permanent => {
            KeyCheck::Rejected(resp.status().as_u16())
        }
        Ok(resp) => KeyCheck::Throttled {
            status: resp.status().as_u16(),
            retry_after: http::retry_after_header(resp.headers()),
        },
        Err(e) => KeyCheck::Unverified(e.to_string()),
    }
}

impl AuthProvider for Claude {
    fn provider(&self) -> Provider {
        Provider::Claude
    }

    fn oauth_spec(&self) -> OAuthSpec {
        OAuthSpec {
            provider: Provider::Claude,
            client_id: self.endpoints.claude_client_id.clone(),
            authorize_url: self.endpoints.claude_authorize_url.clone(),
            token_url: self.endpoints.claude_token_url.clone(),
            scopes: vec![
                "user:profile",
                "user:inference",
                "user:sessions:claude_code",
            ],
            extra_params: vec![("code", "true")],
            json_exchange: true,
            state_in_exchange: true,
        }
    }

    fn redirect_uri(&self, port: Option<u16>) -> String {
        port.map_or_else(
            || self.endpoints.claude_manual_redirect_url.clone(),
            |p| format!("http://localhost:{p}/callback"),
        )
    }

    async fn finish_login(
        &self,
        http: &Http,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<Grant, ProviderError> {
        let mut grant = oauth::exchange(http, &self.oauth_spec(), pending, code).await?;
        // The plan and tier come from the profile; a failure here costs only those.
        let url = format!("{}/api/oauth/profile", self.endpoints.anthropic_api_url);
        let token = grant.tokens.access_token.expose_secret().to_owned();
        let resp = http
            .send(|c| {
                c.get(&url)
                    .bearer_auth(&token)
                    .header("anthropic-beta", ANTHROPIC_OAUTH_BETA)
                    .header("anthropic-version", ANTHROPIC_VERSION)
            })
            .await;
        if let Ok(resp) = resp {
            let (status, _, body) = read_body(resp).await?;
            if status.is_success()
                && let Ok((snap, profile)) = snapshot::from_claude_profile(&body, Utc::now())
            {
                grant.identity.plan = snap.plan.or(grant.identity.plan);
                grant.identity.rate_limit_tier = profile.rate_limit_tier;
                grant.identity.email = grant.identity.email.or(profile.email);
                grant.identity.provider_account_id =
                    grant.identity.provider_account_id.or(profile.account_uuid);
            }
        }
        Ok(grant)
    }

    async fn validate_api_key(&self, http: &Http, key: &SecretString) -> KeyCheck {
        let url = format!("{}/v1/models", self.endpoints.anthropic_api_url);
        check_key(http, |c| {
            c.get(&url)
                .header("x-api-key", key.expose_secret())
                .header("anthropic-version", ANTHROPIC_VERSION)
        })
        .await
    }

    async fn snapshot(
        &self,
        http: &Http,
        credential: &Credential,
        _identity: &Identity,
    ) -> Result<Snapshot, ProviderError> {
        let base = &self.endpoints.anthropic_api_url;
        match credential {
            Credential::ApiKey(key) => {
                let url = format!("{base}/v1/models");
                headers_snapshot(http, Provider::Claude, |c| {
                    c.get(&url)
                        .header("x-api-key", key.expose_secret())
                        .header("anthropic-version", ANTHROPIC_VERSION)
                })
                .await
            }
            Credential::OAuth(t) => {
                let url = format!("{base}/api/oauth/usage");
                let token = t.access_token.expose_secret();
                let resp = http
                    .send(|c| {
                        c.get(&url)
                            .bearer_auth(token)
                            .header("anthropic-beta", ANTHROPIC_OAUTH_BETA)
                            .header("anthropic-version", ANTHROPIC_VERSION)
                    })
                    .await?;
                let (status, headers, body) = read_body(resp).await?;
                if !status.is_success() {
                    return Err(
                        status_error(status, "GET /api/oauth/usage").with_retry_after(&headers)
                    );
                }
                snapshot::from_claude_usage(&body, Utc::now())
                    .map_err(|e| ProviderError::InvalidResponse(e.to_string()))
            }
        }
    }
}

impl AuthProvider for OpenAi {
    fn provider(&self) -> Provider {
        Provider::OpenAi
    }

    fn oauth_spec(&self) -> OAuthSpec {
        OAuthSpec {
            provider: Provider::OpenAi,
            client_id: self.endpoints.openai_client_id.clone(),
            authorize_url: self.endpoints.openai_authorize_url.clone(),
            token_url: self.endpoints.openai_token_url.clone(),
            scopes: vec!["openid", "profile", "email", "offline_access"],
            extra_params: vec![
                ("id_token_add_organizations", "true"),
                ("codex_cli_simplified_flow", "true"),
            ],
            json_exchange: false,
            state_in_exchange: false,
        }
    }

    fn redirect_uri(&self, port: Option<u16>) -> String {
        // OpenAI registers only the loopback redirect; the paste flow reuses it
        // and the user pastes the URL the browser could not open.
        format!("http://localhost:{}/auth/callback", port.unwrap_or(1455))
    }

    async fn finish_login(
        &self,
        http: &Http,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<Grant, ProviderError> {
        oauth::exchange(http, &self.oauth_spec(), pending, code).await
    }

    async fn validate_api_key(&self, http: &Http, key: &SecretString) -> KeyCheck {
        let url = format!("{}/v1/models", self.endpoints.openai_api_url);
        check_key(http, |c| c.get(&url).bearer_auth(key.expose_secret())).await
    }

    async fn snapshot(
        &self,
        http: &Http,
        credential: &Credential,
        identity: &Identity,
    ) -> Result<Snapshot, ProviderError> {
        match credential {
            Credential::ApiKey(key) => {
                let url = format!("{}/v1/models", self.endpoints.openai_api_url);
                headers_snapshot(http, Provider::OpenAi, |c| {
                    c.get(&url).bearer_auth(key.expose_secret())
                })
                .await
            }
            Credential::OAuth(t) => {
                let url = format!("{}/wham/usage", self.endpoints.chatgpt_api_url);
                let token = t.access_token.expose_secret();
                let account = identity.provider_account_id.clone().unwrap_or_default();
                let resp = http
                    .send(|c| {
                        c.get(&url)
                            .bearer_auth(token)
                            .header("ChatGPT-Account-Id", &account)
                    })
                    .await?;
                let (status, headers, body) = read_body(resp).await?;
                if status.as_u16() == 404
                    || (status.is_client_error()
                        && classify(status.as_u16(), None) != Verdict::Transient
                        && identity.plan.is_some())
                {
                    // The usage endpoint is unofficial: when it is gone or
                    // refuses, the plan from the id token's claims still stands.
                    let mut snap =
                        Snapshot::empty(Provider::OpenAi, SnapshotSource::Headers, Utc::now());
                    snap.plan.clone_from(&identity.plan);
                    snap.source = SnapshotSource::IdToken;
                    return Ok(snap);
                }
                if !status.is_success() {
                    return Err(status_error(status, "GET /wham/usage").with_retry_after(&headers));
                }
                let mut snap = snapshot::from_chatgpt_usage(&body, Utc::now())
                    .map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
                if let Some(h) = snapshot::from_headers(Provider::OpenAi, &headers, Utc::now()) {
                    snap.credits = snap.credits.or(h.credits);
                }
                snap.plan = snap.plan.or_else(|| identity.plan.clone());
                Ok(snap)
            }
        }
    }
}

/// Either provider, chosen at run time.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    /// Claude.
    Claude(Claude),
    /// OpenAI.
    OpenAi(OpenAi),
}

impl AnyProvider {
    /// The implementation for `provider`, on `endpoints`.
    #[must_use]
    pub fn new(provider: Provider, endpoints: &Endpoints) -> Self {
        match provider {
            Provider::Claude => Self::Claude(Claude {
                endpoints: endpoints.clone(),
            }),
            Provider::OpenAi => Self::OpenAi(OpenAi {
                endpoints: endpoints.clone(),
            }),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyProvider::Claude($p) => $e,
            AnyProvider::OpenAi($p) => $e,
        }
    };
}

impl AuthProvider for AnyProvider {
    fn provider(&self) -> Provider {
        delegate!(self, p => p.provider())
    }

    fn oauth_spec(&self) -> OAuthSpec {
        delegate!(self, p => p.oauth_spec())
    }

    fn redirect_uri(&self, port: Option<u16>) -> String {
        delegate!(self, p => p.redirect_uri(port))
    }

    async fn finish_login(
        &self,
        http: &Http,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<Grant, ProviderError> {
        delegate!(self, p => p.finish_login(http, pending, code).await)
    }

    async fn validate_api_key(&self, http: &Http, key: &SecretString) -> KeyCheck {
        delegate!(self, p => p.validate_api_key(http, key).await)
    }

    async fn snapshot(
        &self,
        http: &Http,
        credential: &Credential,
        identity: &Identity,
    ) -> Result<Snapshot, ProviderError> {
        delegate!(self, p => p.snapshot(http, credential, identity).await)
    }
}
