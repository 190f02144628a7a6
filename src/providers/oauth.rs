//! Authorization code with PKCE (S256) and a checked `state`, code exchange
//! and refresh, through the `oauth2` crate over our [`Http`].
//!
//! Both providers deviate from RFC 6749 in small ways the types here absorb:
//! Claude's token endpoint takes JSON and wants `state` with the code; OpenAI's
//! refresh takes JSON and its responses may lack `token_type` and
//! `expires_in`; error bodies come as `{"error": "invalid_grant"}` or
//! `{"error": {"code": "refresh_token_reused"}}`.

use std::fmt;
use std::time::Duration;

use chrono::Utc;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, Client, ClientId, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, StandardRevocableToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::ProviderError;
use super::http::{Http, OAuthHttp};
use super::status::{self, Verdict};
use crate::jwt;
use crate::model::{Identity, OAuthTokens, Provider};

/// What differs between the providers' OAuth endpoints.
#[derive(Debug, Clone)]
pub struct OAuthSpec {
    /// Whose endpoints these are.
    pub provider: Provider,
    /// Public client id.
    pub client_id: String,
    /// Authorize page.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes asked for.
    pub scopes: Vec<&'static str>,
    /// Extra authorize parameters.
    pub extra_params: Vec<(&'static str, &'static str)>,
    /// Code exchange body as JSON (Claude) rather than a form (OpenAI).
    pub json_exchange: bool,
    /// Send `state` along with the code (Claude).
    pub state_in_exchange: bool,
}

/// An error body in any of the providers' shapes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ErrorBody {
    #[serde(default)]
    error: serde_json::Value,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

impl ErrorBody {
    /// The machine-readable code, wherever the provider put it.
    #[must_use]
    pub fn code(&self) -> String {
        match &self.error {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => o
                .get("code")
                .or_else(|| o.get("type"))
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_owned(),
            _ => self.code.clone().unwrap_or_else(|| "unknown".into()),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

impl oauth2::ErrorResponse for ErrorBody {}

/// A token response of either provider.
#[derive(Deserialize, Serialize)]
pub struct TokenBody {
    access_token: AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    /// OpenAI's id token (kept as an `AccessToken` for its redacted `Debug`).
    #[serde(default)]
    id_token: Option<AccessToken>,
    #[serde(
        rename = "scope",
        default,
        deserialize_with = "oauth2::helpers::deserialize_space_delimited_vec",
        serialize_with = "oauth2::helpers::serialize_space_delimited_vec"
    )]
    scopes: Option<Vec<Scope>>,
    /// Claude: who logged in.
    #[serde(default)]
    account: Option<ClaudeAccount>,
}

/// Claude's `account` object in token responses.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ClaudeAccount {
    /// Account uuid.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Login e-mail.
    #[serde(default)]
    pub email_address: Option<String>,
}

const fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

impl fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBody")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl oauth2::TokenResponse for TokenBody {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

type ProviderClient = Client<
    ErrorBody,
    TokenBody,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn client(spec: &OAuthSpec) -> Result<ProviderClient, ProviderError> {
    let bad = |what: &str, e: &dyn fmt::Display| ProviderError::Config(format!("{what}: {e}"));
    Ok(Client::new(ClientId::new(spec.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(spec.authorize_url.clone()).map_err(|e| bad("authorize URL", &e))?,
        )
        .set_token_uri(TokenUrl::new(spec.token_url.clone()).map_err(|e| bad("token URL", &e))?))
}

/// A login in progress: the URL to open and what the answer is checked against.
pub struct PendingLogin {
    /// The authorize URL for the browser.
    pub url: String,
    /// The redirect URI the provider will send the code to.
    pub redirect_uri: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    /// Constant-time check of a returned `state`.
    #[must_use]
    pub fn state_matches(&self, state: &str) -> bool {
        self.state
            .secret()
            .as_bytes()
            .ct_eq(state.as_bytes())
            .into()
    }
}

/// Starts a login: fresh PKCE verifier (S256) and random `state`.
///
/// # Errors
/// [`ProviderError::Config`] for a malformed URL.
pub fn start(spec: &OAuthSpec, redirect_uri: &str) -> Result<PendingLogin, ProviderError> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| ProviderError::Config(format!("redirect URL: {e}")))?;
    let client = client(spec)?.set_redirect_uri(redirect);
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_scopes(spec.scopes.iter().map(|s| Scope::new((*s).to_owned())));
    for (k, v) in &spec.extra_params {
        req = req.add_extra_param(*k, *v);
    }
    let (url, state) = req.url();
    Ok(PendingLogin {
        url: url.to_string(),
        redirect_uri: redirect_uri.to_owned(),
        state,
        verifier,
    })
}

/// Tokens and whatever identity the response carried.
#[derive(Debug)]
pub struct Grant {
    /// The tokens, with expiry resolved.
    pub tokens: OAuthTokens,
    /// Identity found in the response (id token claims, Claude's `account`).
    pub identity: Identity,
}

fn grant(body: TokenBody, previous_refresh: Option<&SecretString>) -> Grant {
    let access = SecretString::from(body.access_token.secret().clone());
    let now = Utc::now();
    let expires_at = body
        .expires_in
        .and_then(|s| chrono::Duration::try_seconds(i64::try_from(s).ok()?))
        .map(|d| now + d)
        .or_else(|| jwt::expiry(access.expose_secret()));
    let id_token = body
        .id_token
        .map(|t| SecretString::from(t.secret().clone()));
    let mut identity = Identity::default();
    if let Some(claims) = id_token
        .as_ref()
        .and_then(|t| jwt::decode_claims(t.expose_secret()))
    {
        identity.email = claims.email;
        identity.provider_account_id = claims.chatgpt_account_id;
        identity.plan = claims.plan;
    }
    if let Some(account) = body.account {
        identity.provider_account_id = identity.provider_account_id.or(account.uuid);
        identity.email = identity.email.or(account.email_address);
    }
    Grant {
        tokens: OAuthTokens {
            access_token: access,
            // A refresh response without a new refresh token keeps the old one valid.
            refresh_token: body
                .refresh_token
                .map(|t| SecretString::from(t.secret().clone()))
                .or_else(|| previous_refresh.cloned()),
            id_token,
            expires_at,
            scopes: body
                .scopes
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            last_refresh: Some(now),
        },
        identity,
    }
}

/// The error for a failed token request; `status` is the last HTTP status
/// received, if any.
fn token_error(
    err: RequestTokenError<super::http::OAuthHttpError, ErrorBody>,
    status: Option<u16>,
) -> ProviderError {
    let transient = status.is_some_and(|s| status::classify(s, None) == Verdict::Transient);
    match err {
        RequestTokenError::ServerResponse(body) => {
            let code = body.code();
            match status.map(|s| status::classify(s, Some(&code))) {
                Some(Verdict::Transient) => ProviderError::Transient {
                    status,
                    detail: code,
                    retry_after: None,
                },
                Some(Verdict::Permanent) => ProviderError::Permanent { code },
                Some(Verdict::Rejected) | None => ProviderError::Rejected {
                    status,
                    detail: code,
                },
            }
        }
        RequestTokenError::Request(e) => ProviderError::Unreachable(e.0),
        RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) if transient => {
            ProviderError::Transient {
                status,
                detail: "unreadable response".into(),
                retry_after: None,
            }
        }
        RequestTokenError::Parse(e, _) => {
            ProviderError::InvalidResponse(format!("token response: {}", e.path()))
        }
        RequestTokenError::Other(s) => ProviderError::InvalidResponse(s),
    }
}

/// Exchanges an authorization code for tokens.
///
/// # Errors
/// [`ProviderError`] classified as permanent, transient or rejected.
pub async fn exchange(
    http: &Http,
    spec: &OAuthSpec,
    pending: &PendingLogin,
    code: &str,
) -> Result<Grant, ProviderError> {
    let redirect = RedirectUrl::new(pending.redirect_uri.clone())
        .map_err(|e| ProviderError::Config(format!("redirect URL: {e}")))?;
    let client = client(spec)?
        .set_redirect_uri(redirect)
        .set_auth_type(oauth2::AuthType::RequestBody);
    let adapter = OAuthHttp::new(http, spec.json_exchange);
    let verifier = PkceCodeVerifier::new(pending.verifier.secret().clone());
    let mut req = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(verifier);
    if spec.state_in_exchange {
        req = req.add_extra_param("state", pending.state.secret().clone());
    }
    let result = req.request_async(&adapter).await;
    result
        .map(|b| grant(b, None))
        .map_err(|e| token_error(e, adapter.last_status()))
}

/// Redeems a refresh token (JSON body for both providers).
///
/// # Errors
/// [`ProviderError::Permanent`] when the login is dead; transient otherwise.
pub async fn refresh(
    http: &Http,
    spec: &OAuthSpec,
    refresh_token: &SecretString,
) -> Result<Grant, ProviderError> {
    let client = client(spec)?.set_auth_type(oauth2::AuthType::RequestBody);
    let adapter = OAuthHttp::new(http, true);
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let result = client
        .exchange_refresh_token(&token)
        .request_async(&adapter)
        .await;
    result
        .map(|b| grant(b, Some(refresh_token)))
        .map_err(|e| token_error(e, adapter.last_status()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OAuthSpec {
        OAuthSpec {
            provider: Provider::Claude,
            client_id: "client".into(),
            authorize_url: "https://example.test/oauth/authorize".into(),
            token_url: "https://example.test/oauth/token".into(),
            scopes: vec!["user:profile", "user:inference"],
            extra_params: vec![("code", "true")],
            json_exchange: true,
            state_in_exchange: true,
        }
    }

    #[test]
    fn authorize_url_carries_pkce_s256_state_and_scopes() {
        let p = start(&spec(), "http://localhost:5555/callback").unwrap();
        let url = url::Url::parse(&p.url).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "client");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], "http://localhost:5555/callback");
        assert_eq!(q["scope"], "user:profile user:inference");
        assert_eq!(q["code"], "true");
        assert!(p.state_matches(&q["state"]));
        assert!(!p.state_matches("forged"));
        let second = start(&spec(), "http://localhost:5555/callback").unwrap();
        assert!(
            !second.state_matches(&q["state"]),
            "state is random per login"
        );
    }

    #[test]
    fn the_token_endpoint_and_api_calls_classify_a_status_alike() {
        let kind = |e: &ProviderError| match e {
            ProviderError::Permanent { .. } => "permanent",
            ProviderError::Transient { .. } => "transient",
            ProviderError::Rejected { .. } => "rejected",
            _ => "other",
        };
        for status in 400..600 {
            let token = token_error(
                RequestTokenError::ServerResponse(ErrorBody::default()),
                Some(status),
            );
            let api = crate::providers::status_error(
                reqwest::StatusCode::from_u16(status).unwrap(),
                "GET /x",
            );
            assert_eq!(kind(&token), kind(&api), "HTTP {status}");
        }
    }

    #[test]
    fn error_bodies_of_every_shape_yield_their_code() {
        let cases = [
            (
                r#"{"error":"invalid_grant","error_description":"x"}"#,
                "invalid_grant",
            ),
            (
                r#"{"error":{"code":"refresh_token_reused","message":"x"}}"#,
                "refresh_token_reused",
            ),
            (
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"x"}}"#,
                "rate_limit_error",
            ),
            (
                r#"{"code":"refresh_token_expired"}"#,
                "refresh_token_expired",
            ),
            ("{}", "unknown"),
        ];
        for (body, code) in cases {
            let parsed: ErrorBody = serde_json::from_str(body).unwrap();
            assert_eq!(parsed.code(), code, "{body}");
        }
    }

    #[test]
    fn token_bodies_without_type_or_expiry_parse_and_never_debug_secrets() {
        let body: TokenBody = serde_json::from_str(
            r#"{"access_token":"at-SECRET","refresh_token":"rt-SECRET","id_token":"x.y.z"}"#,
        )
        .unwrap();
        assert!(!format!("{body:?}").contains("SECRET"));
        let g = grant(body, None);
        assert_eq!(g.tokens.refresh_token.unwrap().expose_secret(), "rt-SECRET");
        let kept: TokenBody =
            serde_json::from_str(r#"{"access_token":"a","expires_in":60}"#).unwrap();
        let g = grant(kept, Some(&SecretString::from("old-rt")));
        assert_eq!(
            g.tokens.refresh_token.unwrap().expose_secret(),
            "old-rt",
            "refresh token kept when not rotated"
        );
        assert!(g.tokens.expires_at.is_some());
    }
}
