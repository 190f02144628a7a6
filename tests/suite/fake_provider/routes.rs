//! The routes: each provider's endpoints, error shapes and rate-limit headers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::state::{Denied, PendingCode, Refusal, Shared, Twist, org_uuid};
use super::{Ep, Fault, Prov};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/openai/oauth/authorize",
            get(|Extract(sh): Sh, RawQuery(q): RawQuery| async move {
                let t = |t| authorize(&sh, Prov::OpenAi, q.as_deref(), t);
                serve(&sh, Ep::OpenAiAuthorize, t).await
            }),
        )
        .route(
            "/openai/oauth/token",
            post(|Extract(sh): Sh, h: HeaderMap, body: Bytes| async move {
                token_route(&sh, Prov::OpenAi, &h, &body).await
            }),
        )
        .route(
            "/claude/oauth/authorize",
            get(|Extract(sh): Sh, RawQuery(q): RawQuery| async move {
                let t = |t| authorize(&sh, Prov::Claude, q.as_deref(), t);
                serve(&sh, Ep::ClaudeAuthorize, t).await
            }),
        )
        .route(
            "/claude/v1/oauth/token",
            post(|Extract(sh): Sh, h: HeaderMap, body: Bytes| async move {
                token_route(&sh, Prov::Claude, &h, &body).await
            }),
        )
        .route(
            "/anthropic/v1/models",
            get(|Extract(sh): Sh, h: HeaderMap| async move {
                serve(&sh, Ep::AnthropicModels, |_| anthropic_models(&sh, &h)).await
            }),
        )
        .route(
            "/anthropic/api/oauth/usage",
            get(|Extract(sh): Sh, h: HeaderMap| async move {
                serve(&sh, Ep::ClaudeUsage, |_| claude_usage(&sh, &h)).await
            }),
        )
        .route(
            "/anthropic/api/oauth/profile",
            get(|Extract(sh): Sh, h: HeaderMap| async move {
                serve(&sh, Ep::ClaudeProfile, |t| claude_profile(&sh, &h, t)).await
            }),
        )
        .route(
            "/openai-api/v1/models",
            get(|Extract(sh): Sh, h: HeaderMap| async move {
                serve(&sh, Ep::OpenAiModels, |_| openai_models(&sh, &h)).await
            }),
        )
        .route(
            "/chatgpt/wham/usage",
            get(|Extract(sh): Sh, h: HeaderMap| async move {
                serve(&sh, Ep::ChatGptUsage, |_| chatgpt_usage(&sh, &h)).await
            }),
        )
        .fallback(unrouted)
        .with_state(shared)
}

type Sh = Extract<Arc<Shared>>;

/// One request being served: counted in `in_flight` until it is answered
/// or its client hangs up (the handler is dropped).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(sh: &'a Shared) -> Self {
        let mut st = sh.lock();
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        Self(sh)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

/// Counts the request, applies the next queued fault of `ep`, and unless the
/// fault answers for it, lets `answer` respond.
async fn serve(sh: &Shared, ep: Ep, answer: impl FnOnce(Twist) -> Response) -> Response {
    let _in_flight = InFlight::enter(sh);
    let fault = {
        let mut st = sh.lock();
        *st.counts.entry(ep).or_default() += 1;
        st.faults.get_mut(&ep).and_then(VecDeque::pop_front)
    };
    let mut answer_after = None;
    let twist = match fault {
        None => Twist::None,
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Twist::None
        }
        Some(Fault::DelayAfter(d)) => {
            answer_after = Some(d);
            Twist::None
        }
        Some(other) => match effect(ep, &other) {
            Effect::Twist(twist) => twist,
            Effect::Answer(r) => return r,
        },
    };
    let r = answer(twist);
    if let Some(d) = answer_after {
        tokio::time::sleep(d).await;
    }
    r
}

/// What a fault does to a request.
enum Effect {
    /// The fault answers instead of the endpoint.
    Answer(Response),
    /// The endpoint answers, changed by this.
    Twist(Twist),
}

/// A fault's own answer, or what it changes in the normal one.
fn effect(ep: Ep, fault: &Fault) -> Effect {
    let prov = ep.prov();
    match fault {
        Fault::Delay(_) | Fault::DelayAfter(_) => Effect::Twist(Twist::None),
        &Fault::Status(code) => Effect::Answer(status_error(prov, code)),
        &Fault::RateLimited { retry_after_secs } => {
            let mut r = match prov {
                Prov::Claude => anthropic_error(
                    429,
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                ),
                Prov::OpenAi => openai_error(
                    429,
                    "requests",
                    Some("rate_limit_exceeded"),
                    "Rate limit reached for requests. Please try again later.",
                ),
            };
            set(&mut r, "retry-after", &retry_after_secs.to_string());
            match prov {
                Prov::Claude => set(&mut r, "anthropic-ratelimit-requests-remaining", "0"),
                Prov::OpenAi => {
                    set(&mut r, "x-ratelimit-remaining-requests", "0");
                    set(
                        &mut r,
                        "x-ratelimit-reset-requests",
                        &format!("{retry_after_secs}s"),
                    );
                }
            }
            Effect::Answer(r)
        }
        Fault::Overloaded => Effect::Answer(match prov {
            Prov::Claude => anthropic_error(529, "overloaded_error", "Overloaded"),
            Prov::OpenAi => openai_error(
                529,
                "server_error",
                Some("overloaded"),
                "The server is overloaded. Please try again later.",
            ),
        }),
        Fault::InvalidGrant => {
            if matches!(ep, Ep::OpenAiToken | Ep::ClaudeToken) {
                Effect::Twist(Twist::InvalidGrant)
            } else {
                Effect::Answer(status_error(prov, 401))
            }
        }
        Fault::IdentitySwitch => Effect::Twist(Twist::IdentitySwitch),
        Fault::DenyConsent => {
            if matches!(ep, Ep::OpenAiAuthorize | Ep::ClaudeAuthorize) {
                Effect::Twist(Twist::DenyConsent)
            } else {
                Effect::Answer(status_error(prov, 403))
            }
        }
    }
}

fn authorize(sh: &Shared, prov: Prov, query: Option<&str>, twist: Twist) -> Response {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| q.get(k).map_or("", String::as_str);
    for (k, want) in [
        ("response_type", Some("code")),
        ("code_challenge_method", Some("S256")),
    ]
    .into_iter()
    .chain(["client_id", "redirect_uri", "code_challenge", "state"].map(|k| (k, None)))
    {
        let ok = match want {
            Some(v) => field(k) == v,
            None => !field(k).is_empty(),
        };
        if !ok {
            return oauth_error(400, "invalid_request", &format!("bad or missing `{k}`"));
        }
    }
    let Ok(mut location) = url::Url::parse(field("redirect_uri")) else {
        return oauth_error(400, "invalid_request", "redirect_uri is not a URL");
    };
    if twist == Twist::DenyConsent {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied the request")
            .append_pair("state", field("state"));
    } else {
        let mut st = sh.lock();
        let identity = st.next_identity[prov.idx()].clone();
        let identity = if twist == Twist::IdentitySwitch {
            identity.switched()
        } else {
            identity
        };
        let code = match prov {
            Prov::OpenAi => format!("ac_{}", st.random("code")),
            Prov::Claude => st.random("code"),
        };
        st.codes.insert(
            code.clone(),
            PendingCode {
                prov,
                challenge: field("code_challenge").to_owned(),
                redirect_uri: field("redirect_uri").to_owned(),
                client_id: field("client_id").to_owned(),
                state: field("state").to_owned(),
                identity,
            },
        );
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", field("state"));
    }
    let mut r = StatusCode::FOUND.into_response();
    set(&mut r, "location", location.as_str());
    r
}

/// Both token endpoints take JSON or form bodies (OpenAI's code exchange is a
/// form, its refresh JSON; Claude's are JSON).
async fn token_route(sh: &Shared, prov: Prov, headers: &HeaderMap, body: &[u8]) -> Response {
    let p = params(headers, body);
    if p.get("grant_type").is_some_and(|g| g == "refresh_token") {
        sh.lock().refreshes[prov.idx()] += 1;
    }
    let ep = match prov {
        Prov::OpenAi => Ep::OpenAiToken,
        Prov::Claude => Ep::ClaudeToken,
    };
    serve(sh, ep, |twist| token(sh, prov, &p, twist)).await
}

fn token(sh: &Shared, prov: Prov, p: &HashMap<String, String>, twist: Twist) -> Response {
    let grant = p.get("grant_type").map_or("", String::as_str);
    if p.get("client_id").is_none_or(String::is_empty) {
        return oauth_error(400, "invalid_request", "client_id is required");
    }
    let mut st = sh.lock();
    let issued = match grant {
        "authorization_code" => match st.exchange(prov, p, twist) {
            Ok(issued) => issued,
            Err(why) => return oauth_error(400, "invalid_grant", &why),
        },
        "refresh_token" => {
            let presented = p.get("refresh_token").map_or("", String::as_str);
            match st.refresh(prov, presented, twist) {
                Ok(issued) => issued,
                Err(refusal) => {
                    st.invalid_grants[prov.idx()] += 1;
                    return refusal_response(prov, &refusal);
                }
            }
        }
        _ => return oauth_error(400, "unsupported_grant_type", "unsupported grant_type"),
    };
    drop(st);
    match prov {
        Prov::OpenAi => json_response(
            200,
            &json!({
                "id_token": issued.id_token,
                "access_token": issued.access,
                "refresh_token": issued.refresh,
            }),
        ),
        Prov::Claude => json_response(
            200,
            &json!({
                "token_type": "Bearer",
                "access_token": issued.access,
                "refresh_token": issued.refresh,
                "expires_in": issued.expires_in,
                "scope": "user:inference user:profile",
                "account": {
                    "uuid": issued.identity.account_id,
                    "email_address": issued.identity.email,
                },
                "organization": {
                    "uuid": org_uuid(&issued.identity),
                    "name": format!("{}'s Organization", issued.identity.email),
                },
            }),
        ),
    }
}

fn refusal_response(prov: Prov, refusal: &Refusal) -> Response {
    match prov {
        Prov::OpenAi => {
            let (code, message) = match refusal {
                Refusal::Reused => (
                    "refresh_token_reused",
                    "Your refresh token has already been used to generate a new access token. Please try signing in again.",
                ),
                Refusal::Expired => (
                    "refresh_token_expired",
                    "Your refresh token has expired. Please try signing in again.",
                ),
                Refusal::Unknown | Refusal::Revoked => (
                    "refresh_token_invalidated",
                    "Your refresh token has been invalidated. Please try signing in again.",
                ),
            };
            openai_error(401, "invalid_request_error", Some(code), message)
        }
        Prov::Claude => {
            let message = match refusal {
                Refusal::Reused => "Refresh token has already been used; the session is revoked",
                Refusal::Expired => "Refresh token expired",
                Refusal::Revoked => "Refresh token has been revoked",
                Refusal::Unknown => "Refresh token not found or invalid",
            };
            oauth_error(400, "invalid_grant", message)
        }
    }
}

fn anthropic_models(sh: &Shared, headers: &HeaderMap) -> Response {
    if header_str(headers, "anthropic-version").is_none() {
        return anthropic_error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let body = json!({
        "data": [
            {"type": "model", "id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1", "created_at": "2025-08-05T00:00:00Z"},
            {"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
        ],
        "has_more": false,
        "first_id": "claude-opus-4-1-20250805",
        "last_id": "claude-sonnet-4-5-20250929",
    });
    if let Some(key) = header_str(headers, "x-api-key") {
        if !sh.lock().api_keys.contains(&(Prov::Claude, key.to_owned())) {
            return anthropic_error(401, "authentication_error", "invalid x-api-key");
        }
        let mut r = json_response(200, &body);
        anthropic_api_headers(&mut r);
        return r;
    }
    let Some(bearer) = bearer(headers) else {
        return anthropic_error(401, "authentication_error", "x-api-key header is required");
    };
    if !header_str(headers, "anthropic-beta").is_some_and(|b| b.contains("oauth-2025-04-20")) {
        return anthropic_error(
            401,
            "authentication_error",
            "OAuth authentication is currently not supported.",
        );
    }
    let checked = sh.lock().check_access(Prov::Claude, bearer);
    match checked {
        Ok(_) => {
            let mut r = json_response(200, &body);
            unified_headers(&mut r, sh.started);
            r
        }
        Err(denied) => anthropic_denied(&denied),
    }
}

fn claude_usage(sh: &Shared, headers: &HeaderMap) -> Response {
    let checked = sh
        .lock()
        .check_access(Prov::Claude, bearer(headers).unwrap_or(""));
    if let Err(denied) = checked {
        return anthropic_denied(&denied);
    }
    let window = |utilization: f64, secs: i64| json!({"utilization": utilization, "resets_at": rfc3339_micros(sh.started + secs)});
    json_response(
        200,
        &json!({
            "five_hour": window(12.0, 5 * 3600),
            "seven_day": window(34.0, 7 * 86400),
            "seven_day_opus": null,
            "seven_day_sonnet": window(5.0, 7 * 86400),
        }),
    )
}

fn claude_profile(sh: &Shared, headers: &HeaderMap, twist: Twist) -> Response {
    let checked = sh
        .lock()
        .check_access(Prov::Claude, bearer(headers).unwrap_or(""));
    let identity = match checked {
        Ok(identity) if twist == Twist::IdentitySwitch => identity.switched(),
        Ok(identity) => identity,
        Err(denied) => return anthropic_denied(&denied),
    };
    let plan = identity.plan.as_str();
    let tier = match plan {
        "max5x" => "default_claude_max_5x",
        p if p.starts_with("max") => "default_claude_max_20x",
        _ => "default_claude_ai",
    };
    json_response(
        200,
        &json!({
            "account": {
                "uuid": identity.account_id,
                "email": identity.email,
                "full_name": "Test User",
                "display_name": "Test",
                "has_claude_max": plan.starts_with("max"),
                "has_claude_pro": plan == "pro",
            },
            "organization": {
                "uuid": org_uuid(&identity),
                "name": format!("{}'s Organization", identity.email),
                "organization_type": if plan.starts_with("max") { "claude_max" } else { "claude_pro" },
                "billing_type": "stripe_subscription",
                "rate_limit_tier": tier,
            },
        }),
    )
}

fn openai_models(sh: &Shared, headers: &HeaderMap) -> Response {
    let Some(key) = bearer(headers) else {
        return openai_error(
            401,
            "invalid_request_error",
            None,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.",
        );
    };
    if !sh.lock().api_keys.contains(&(Prov::OpenAi, key.to_owned())) {
        return openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        );
    }
    let mut r = json_response(
        200,
        &json!({
            "object": "list",
            "data": [
                {"id": "gpt-5", "object": "model", "created": 1_754_425_777, "owned_by": "system"},
                {"id": "gpt-5-codex", "object": "model", "created": 1_757_527_818, "owned_by": "system"},
            ],
        }),
    );
    for (k, v) in [
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-tokens", "29999990"),
        ("x-ratelimit-reset-tokens", "1m30s"),
    ] {
        set(&mut r, k, v);
    }
    r
}

fn chatgpt_usage(sh: &Shared, headers: &HeaderMap) -> Response {
    let checked = sh
        .lock()
        .check_access(Prov::OpenAi, bearer(headers).unwrap_or(""));
    let identity = match checked {
        Ok(identity) => identity,
        Err(Denied::Expired) => {
            return openai_error(
                401,
                "invalid_request_error",
                Some("token_expired"),
                "Provided authentication token is expired. Please try signing in again.",
            );
        }
        Err(Denied::Unknown | Denied::Revoked) => {
            return openai_error(
                401,
                "invalid_request_error",
                Some("token_invalidated"),
                "Your authentication token has been invalidated. Please try signing in again.",
            );
        }
    };
    if header_str(headers, "chatgpt-account-id") != Some(identity.account_id.as_str()) {
        return openai_error(
            403,
            "invalid_request_error",
            Some("account_mismatch"),
            "ChatGPT-Account-Id is missing or does not match the token",
        );
    }
    let now = Utc::now().timestamp();
    let primary_reset = sh.started + 300 * 60;
    let secondary_reset = sh.started + 10080 * 60;
    let window = |used: f64, secs: i64, reset: i64| {
        json!({
            "used_percent": used,
            "limit_window_seconds": secs,
            "reset_after_seconds": (reset - now).max(0),
            "reset_at": reset,
        })
    };
    let mut r = json_response(
        200,
        &json!({
            "plan_type": identity.plan,
            "rate_limit": {
                "allowed": true,
                "limit_reached": false,
                "primary_window": window(25.0, 300 * 60, primary_reset),
                "secondary_window": window(40.0, 10080 * 60, secondary_reset),
            },
            "credits": {"has_credits": false, "unlimited": false, "balance": "0"},
        }),
    );
    for (k, v) in [
        ("x-codex-primary-used-percent", "25.0".to_owned()),
        ("x-codex-primary-window-minutes", "300".to_owned()),
        ("x-codex-primary-reset-at", primary_reset.to_string()),
        ("x-codex-secondary-used-percent", "40.0".to_owned()),
        ("x-codex-secondary-window-minutes", "10080".to_owned()),
        ("x-codex-secondary-reset-at", secondary_reset.to_string()),
        ("x-codex-credits-has-credits", "false".to_owned()),
        ("x-codex-credits-unlimited", "false".to_owned()),
        ("x-codex-credits-balance", "0".to_owned()),
    ] {
        set(&mut r, k, &v);
    }
    r
}

/// Wrong paths are answered 404 and reported on stderr (shown when a test fails).
async fn unrouted(method: Method, uri: Uri) -> Response {
    eprintln!("fake provider: no route for {method} {uri}");
    json_response(404, &json!({"error": "not_found", "path": uri.path()}))
}

// ---------------------------------------------------------------------------
// Response shapes

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).expect("valid status");
    let mut r = (status, body.to_string()).into_response();
    set(&mut r, "content-type", "application/json");
    r
}

fn set(r: &mut Response, name: &str, value: &str) {
    r.headers_mut().insert(
        HeaderName::from_bytes(name.as_bytes()).expect("header name"),
        HeaderValue::from_str(value).expect("header value"),
    );
}

/// `{"type":"error","error":{"type","message"}}` with a `request-id`.
fn anthropic_error(status: u16, kind: &str, message: &str) -> Response {
    let mut r = json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    );
    set(&mut r, "request-id", "req_011CFakeProviderRequest");
    r
}

/// `{"error":{"message","type","param","code"}}` with an `x-request-id`.
fn openai_error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Response {
    let mut r = json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    );
    set(&mut r, "x-request-id", "req_fakeproviderrequest");
    r
}

/// RFC 6749 `{"error","error_description"}`.
fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn status_error(prov: Prov, status: u16) -> Response {
    let message = format!("fake provider: injected HTTP {status}");
    match prov {
        Prov::Claude => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            anthropic_error(status, kind, &message)
        }
        Prov::OpenAi => {
            let kind = if status >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            };
            openai_error(status, kind, None, &message)
        }
    }
}

fn anthropic_denied(denied: &Denied) -> Response {
    let message = match denied {
        Denied::Expired => {
            "OAuth token has expired. Please obtain a new token or refresh your existing token."
        }
        Denied::Revoked => "OAuth token has been revoked.",
        Denied::Unknown => "Invalid bearer token",
    };
    anthropic_error(401, "authentication_error", message)
}

fn anthropic_api_headers(r: &mut Response) {
    let reset = Utc::now()
        .checked_add_signed(chrono::TimeDelta::seconds(60))
        .expect("reset time")
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    for (kind, limit, remaining) in [
        ("requests", "4000", "3999"),
        ("tokens", "2000000", "1999000"),
        ("input-tokens", "2000000", "2000000"),
        ("output-tokens", "400000", "399000"),
    ] {
        set(r, &format!("anthropic-ratelimit-{kind}-limit"), limit);
        set(
            r,
            &format!("anthropic-ratelimit-{kind}-remaining"),
            remaining,
        );
        set(r, &format!("anthropic-ratelimit-{kind}-reset"), &reset);
    }
    set(r, "request-id", "req_011CFakeProviderRequest");
}

fn unified_headers(r: &mut Response, started: i64) {
    let five = (started + 5 * 3600).to_string();
    let seven = (started + 7 * 86400).to_string();
    for (k, v) in [
        ("anthropic-ratelimit-unified-status", "allowed"),
        (
            "anthropic-ratelimit-unified-representative-claim",
            "five_hour",
        ),
        ("anthropic-ratelimit-unified-fallback-percentage", "0.5"),
        ("anthropic-ratelimit-unified-reset", &five),
        ("anthropic-ratelimit-unified-5h-status", "allowed"),
        ("anthropic-ratelimit-unified-5h-utilization", "0.12"),
        ("anthropic-ratelimit-unified-5h-reset", &five),
        ("anthropic-ratelimit-unified-7d-status", "allowed"),
        ("anthropic-ratelimit-unified-7d-utilization", "0.34"),
        ("anthropic-ratelimit-unified-7d-reset", &seven),
        ("request-id", "req_011CFakeProviderRequest"),
    ] {
        set(r, k, v);
    }
}

fn rfc3339_micros(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .expect("timestamp in range")
        .to_rfc3339_opts(SecondsFormat::Micros, false)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    })
}

/// A token request's parameters, JSON or form-encoded; non-string JSON values
/// keep their JSON text.
fn params(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = header_str(headers, "content-type").is_some_and(|c| c.contains("json"));
    if is_json {
        let map: serde_json::Map<String, Value> = serde_json::from_slice(body).unwrap_or_default();
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    }
}
