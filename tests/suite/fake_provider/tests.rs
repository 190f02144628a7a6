//! Self-tests of the fake: PKCE, rotation and family revocation, fault
//! order, counters, response shapes, shutdown.

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde_json::{Value, json};

use super::state::pkce_matches;
use super::{Ep, FakeProvider, Fault, HttpResponse, Identity, Prov, http_get, http_request};

/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://localhost:1455/auth/callback";

fn env_url(fp: &FakeProvider, var: &str) -> String {
    fp.env()
        .into_iter()
        .find(|(k, _)| *k == var)
        .unwrap_or_else(|| panic!("{var} missing from env()"))
        .1
}

fn authorize_url(fp: &FakeProvider, prov: Prov, state: &str) -> String {
    let var = match prov {
        Prov::OpenAi => "AUTHVAULT_OPENAI_AUTHORIZE_URL",
        Prov::Claude => "AUTHVAULT_CLAUDE_AUTHORIZE_URL",
    };
    url::Url::parse_with_params(
        &env_url(fp, var),
        [
            ("code", "true"),
            ("response_type", "code"),
            ("client_id", "client-1"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile email offline_access"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", state),
        ],
    )
    .expect("authorize url")
    .to_string()
}

/// The redirect's query as a map.
fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).expect("location is a URL");
    assert!(location.starts_with(REDIRECT), "{location}");
    url.query_pairs().into_owned().collect()
}

fn token_url(fp: &FakeProvider, prov: Prov) -> String {
    match prov {
        Prov::OpenAi => env_url(fp, "AUTHVAULT_OPENAI_TOKEN_URL"),
        Prov::Claude => env_url(fp, "AUTHVAULT_CLAUDE_TOKEN_URL"),
    }
}

/// The code exchange as each client sends it: OpenAI form-encoded, Claude JSON.
fn exchange(
    fp: &FakeProvider,
    prov: Prov,
    code: &str,
    state: &str,
    verifier: &str,
) -> HttpResponse {
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("state", state),
        ("redirect_uri", REDIRECT),
        ("client_id", "client-1"),
        ("code_verifier", verifier),
    ];
    match prov {
        Prov::OpenAi => {
            let form = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter().filter(|(k, _)| *k != "state"))
                .finish();
            http_request(
                "POST",
                &token_url(fp, prov),
                &[("Content-Type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            )
        }
        Prov::Claude => {
            let body: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            http_request(
                "POST",
                &token_url(fp, prov),
                &[("Content-Type", "application/json")],
                Value::Object(body).to_string().as_bytes(),
            )
        }
    }
}

fn refresh(fp: &FakeProvider, prov: Prov, token: &str) -> HttpResponse {
    let body =
        json!({"client_id": "client-1", "grant_type": "refresh_token", "refresh_token": token});
    http_request(
        "POST",
        &token_url(fp, prov),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn login(fp: &FakeProvider, prov: Prov) -> String {
    let q = query_of(&fp.authorize_redirect(&authorize_url(fp, prov, "st-1")));
    q["code"].clone()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// Whether a permanent refusal came back in the provider's shape.
fn refused(prov: Prov, r: &HttpResponse, openai_code: &str) -> bool {
    match prov {
        Prov::OpenAi => r.status == 401 && r.json()["error"]["code"] == openai_code,
        Prov::Claude => r.status == 400 && r.json()["error"] == "invalid_grant",
    }
}

#[test]
fn pkce_verifier_must_match_the_challenge_and_codes_are_single_use() {
    assert!(pkce_matches(VERIFIER, CHALLENGE));
    assert!(!pkce_matches(&VERIFIER.replace('d', "e"), CHALLENGE));
    assert!(!pkce_matches("short", CHALLENGE));
    let fp = FakeProvider::start();
    for prov in [Prov::OpenAi, Prov::Claude] {
        let code = login(&fp, prov);
        let wrong = "x".repeat(43);
        let r = exchange(&fp, prov, &code, "st-1", &wrong);
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("invalid_grant")),
            "{prov:?}"
        );
        // The failed attempt consumed the code.
        let r = exchange(&fp, prov, &code, "st-1", VERIFIER);
        assert_eq!(r.status, 400, "{prov:?}: {}", r.body);

        let code = login(&fp, prov);
        let r = exchange(&fp, prov, &code, "st-1", VERIFIER);
        assert_eq!(r.status, 200, "{prov:?}: {}", r.body);
        let again = exchange(&fp, prov, &code, "st-1", VERIFIER);
        assert_eq!(again.status, 400, "{prov:?}: code reuse must fail");
    }
    // Claude's exchange also checks `state`.
    let code = login(&fp, Prov::Claude);
    let r = exchange(&fp, Prov::Claude, &code, "st-other", VERIFIER);
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn logins_carry_the_identity_in_each_providers_shape() {
    let fp = FakeProvider::start();
    let ada = Identity::new("ada@example.org", "acct-ada", "pro");
    fp.set_identity(Prov::OpenAi, ada.clone());
    fp.set_access_ttl(600);
    let code = login(&fp, Prov::OpenAi);
    let r = exchange(&fp, Prov::OpenAi, &code, "st-1", VERIFIER).json();
    let keys: Vec<&String> = r.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["access_token", "id_token", "refresh_token"]);
    let id = claims(r["id_token"].as_str().expect("id_token"));
    assert_eq!(id["email"], "ada@example.org");
    let auth = &id["https://api.openai.com/auth"];
    assert_eq!(
        (&auth["chatgpt_plan_type"], &auth["chatgpt_account_id"]),
        (&json!("pro"), &json!("acct-ada"))
    );
    let access = claims(r["access_token"].as_str().expect("access"));
    assert_eq!(
        access["exp"].as_i64().expect("exp") - access["iat"].as_i64().expect("iat"),
        600
    );
    assert_eq!(
        fp.current_access(Prov::OpenAi, "acct-ada").as_deref(),
        r["access_token"].as_str()
    );

    let grace = Identity::new("grace@example.org", "uuid-grace", "max");
    fp.set_identity(Prov::Claude, grace);
    let code = login(&fp, Prov::Claude);
    let r = exchange(&fp, Prov::Claude, &code, "st-1", VERIFIER).json();
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["expires_in"], 600);
    assert_eq!(
        r["account"],
        json!({"uuid": "uuid-grace", "email_address": "grace@example.org"})
    );
    let access = r["access_token"].as_str().expect("access");
    assert!(access.starts_with("sk-ant-oat01-"), "{access}");
    assert!(
        r["refresh_token"]
            .as_str()
            .expect("refresh")
            .starts_with("sk-ant-ort01-")
    );
    assert_eq!(
        fp.current_access(Prov::Claude, "uuid-grace").as_deref(),
        Some(access)
    );
    assert_eq!(fp.current_access(Prov::Claude, "nobody"), None);
}

#[test]
fn refresh_tokens_rotate_once_and_reuse_revokes_the_family() {
    let fp = FakeProvider::start();
    for prov in [Prov::OpenAi, Prov::Claude] {
        let who = Identity::new("r@example.com", &format!("acct-{prov:?}"), "plus");
        let (access0, r0) = fp.seed_login(prov, &who);
        assert_eq!(
            fp.current_access(prov, &who.account_id),
            Some(access0.clone())
        );

        let first = refresh(&fp, prov, &r0).json();
        let r1 = first["refresh_token"].as_str().expect("rotated").to_owned();
        let access1 = first["access_token"].as_str().expect("access").to_owned();
        assert_ne!((&r1, &access1), (&r0, &access0));
        assert_eq!(fp.current_access(prov, &who.account_id), Some(access1));

        // r0 again: reuse → the family (r1 included) is revoked.
        assert!(refused(
            prov,
            &refresh(&fp, prov, &r0),
            "refresh_token_reused"
        ));
        assert!(refused(
            prov,
            &refresh(&fp, prov, &r1),
            "refresh_token_invalidated"
        ));
        assert!(refused(
            prov,
            &refresh(&fp, prov, "never-issued"),
            "refresh_token_invalidated"
        ));
        assert_eq!(
            (
                fp.refreshes(prov),
                fp.invalid_grants(prov),
                fp.revoked(prov)
            ),
            (4, 3, 1),
            "{prov:?}"
        );
    }
}

#[test]
fn faults_are_consumed_in_order_one_per_request() {
    let fp = FakeProvider::start();
    fp.register_api_key(Prov::Claude, "sk-ant-api03-good");
    fp.register_api_key(Prov::OpenAi, "sk-proj-good");
    let models = format!("{}/v1/models", env_url(&fp, "AUTHVAULT_ANTHROPIC_API_URL"));
    for f in [
        Fault::Status(500),
        Fault::RateLimited {
            retry_after_secs: 7,
        },
        Fault::Overloaded,
        Fault::Delay(Duration::from_millis(20)),
        Fault::InvalidGrant,
    ] {
        fp.push_fault(Ep::AnthropicModels, f);
    }
    let hdrs = [
        ("x-api-key", "sk-ant-api03-good"),
        ("anthropic-version", "2023-06-01"),
    ];
    let seen: Vec<(u16, Value, Option<String>)> = (0..6)
        .map(|_| {
            let r = http_request("GET", &models, &hdrs, b"");
            let kind = if r.status == 200 {
                Value::Null
            } else {
                r.json()["error"]["type"].clone()
            };
            (r.status, kind, r.header("retry-after").map(str::to_owned))
        })
        .collect();
    assert_eq!(
        seen,
        [
            (500, json!("api_error"), None),
            (429, json!("rate_limit_error"), Some("7".to_owned())),
            (529, json!("overloaded_error"), None),
            (200, Value::Null, None),
            (401, json!("authentication_error"), None),
            (200, Value::Null, None),
        ]
    );
    assert_eq!(fp.count(Ep::AnthropicModels), 6);

    // OpenAI shapes; faults are per endpoint.
    let openai = format!("{}/v1/models", env_url(&fp, "AUTHVAULT_OPENAI_API_URL"));
    fp.push_fault(
        Ep::OpenAiModels,
        Fault::RateLimited {
            retry_after_secs: 2,
        },
    );
    fp.push_fault(Ep::OpenAiModels, Fault::DenyConsent);
    let auth = [("Authorization", "Bearer sk-proj-good")];
    let r = http_request("GET", &openai, &auth, b"");
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(http_request("GET", &openai, &auth, b"").status, 403);
    let r = http_request("GET", &openai, &auth, b"");
    assert_eq!(
        (r.status, r.header("x-ratelimit-reset-tokens")),
        (200, Some("1m30s"))
    );
    let r = http_request(
        "GET",
        &openai,
        &[("Authorization", "Bearer sk-proj-bad")],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("invalid_api_key"))
    );
    assert_eq!(fp.count(Ep::OpenAiModels), 4);
    assert_eq!(fp.count(Ep::AnthropicModels), 6);
}

#[test]
fn token_faults_count_as_refreshes_and_permanent_ones_as_invalid_grants() {
    let fp = FakeProvider::start();
    let who = Identity::new("c@example.com", "acct-c", "max");
    let (_, r0) = fp.seed_login(Prov::Claude, &who);
    fp.push_fault(Ep::ClaudeToken, Fault::Status(503));
    fp.push_fault(Ep::ClaudeToken, Fault::IdentitySwitch);
    fp.push_fault(Ep::ClaudeToken, Fault::InvalidGrant);
    assert_eq!(refresh(&fp, Prov::Claude, &r0).status, 503);
    // Identity switch: another account, the presented token still valid.
    let switched = refresh(&fp, Prov::Claude, &r0).json();
    assert_eq!(
        switched["account"]["uuid"],
        json!(who.switched().account_id)
    );
    assert!(refused(Prov::Claude, &refresh(&fp, Prov::Claude, &r0), ""));
    assert!(refused(Prov::Claude, &refresh(&fp, Prov::Claude, &r0), ""));
    assert_eq!(
        (
            fp.count(Ep::ClaudeToken),
            fp.refreshes(Prov::Claude),
            fp.invalid_grants(Prov::Claude),
            fp.revoked(Prov::Claude)
        ),
        (4, 4, 2, 0)
    );

    let (_, o0) = fp.seed_login(
        Prov::OpenAi,
        &Identity::new("o@example.com", "acct-o", "plus"),
    );
    fp.push_fault(Ep::OpenAiToken, Fault::InvalidGrant);
    assert!(refused(
        Prov::OpenAi,
        &refresh(&fp, Prov::OpenAi, &o0),
        "refresh_token_expired"
    ));
    assert_eq!(
        (fp.refreshes(Prov::OpenAi), fp.invalid_grants(Prov::OpenAi)),
        (1, 1)
    );
}

#[test]
fn authorize_denies_consent_and_switches_identity_on_demand() {
    let fp = FakeProvider::start();
    fp.push_fault(Ep::OpenAiAuthorize, Fault::DenyConsent);
    let q = query_of(&fp.authorize_redirect(&authorize_url(&fp, Prov::OpenAi, "st-9")));
    assert_eq!(
        (
            q.get("error").map(String::as_str),
            q.get("state").map(String::as_str),
            q.get("code")
        ),
        (Some("access_denied"), Some("st-9"), None)
    );

    fp.push_fault(Ep::ClaudeAuthorize, Fault::IdentitySwitch);
    let code = login(&fp, Prov::Claude);
    let r = exchange(&fp, Prov::Claude, &code, "st-1", VERIFIER).json();
    let grace = Identity::default_for(Prov::Claude);
    assert_eq!(r["account"]["email_address"], json!(grace.switched().email));
    assert_eq!(
        (
            fp.count(Ep::OpenAiAuthorize),
            fp.count(Ep::ClaudeAuthorize),
            fp.count(Ep::ClaudeToken)
        ),
        (1, 1, 1)
    );

    // A malformed request (no PKCE) is a 400, not a redirect.
    let (status, body) = http_get(&format!(
        "{}/openai/oauth/authorize?response_type=code&client_id=x",
        fp.base()
    ));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn usage_profile_and_rate_limit_headers_follow_the_providers() {
    let fp = FakeProvider::start();
    let grace = Identity::new("grace@example.org", "uuid-grace", "max");
    let (claude_access, _) = fp.seed_login(Prov::Claude, &grace);
    let anthropic = env_url(&fp, "AUTHVAULT_ANTHROPIC_API_URL");
    let bearer = format!("Bearer {claude_access}");
    let oauth = [
        ("Authorization", bearer.as_str()),
        ("anthropic-beta", "oauth-2025-04-20"),
        ("anthropic-version", "2023-06-01"),
    ];

    let r = http_request("GET", &format!("{anthropic}/v1/models"), &oauth, b"");
    assert_eq!(
        (
            r.status,
            r.header("anthropic-ratelimit-unified-5h-utilization")
        ),
        (200, Some("0.12"))
    );
    let five_h_reset: i64 = r
        .header("anthropic-ratelimit-unified-5h-reset")
        .expect("5h reset")
        .parse()
        .expect("unix s");
    let r = http_request("GET", &format!("{anthropic}/v1/models"), &oauth[..1], b"");
    assert_eq!(r.status, 400, "anthropic-version is required");

    let usage = http_request("GET", &format!("{anthropic}/api/oauth/usage"), &oauth, b"").json();
    assert_eq!(usage["five_hour"]["utilization"], 12.0);
    assert_eq!(usage["seven_day_opus"], Value::Null);
    let resets =
        DateTime::parse_from_rfc3339(usage["five_hour"]["resets_at"].as_str().expect("resets_at"))
            .expect("RFC 3339");
    assert_eq!(resets.timestamp(), five_h_reset);

    let profile = http_request(
        "GET",
        &format!("{anthropic}/api/oauth/profile"),
        &oauth,
        b"",
    )
    .json();
    assert_eq!(
        (
            &profile["account"]["email"],
            &profile["account"]["has_claude_max"],
            &profile["organization"]["rate_limit_tier"]
        ),
        (
            &json!("grace@example.org"),
            &json!(true),
            &json!("default_claude_max_20x")
        )
    );
    fp.push_fault(Ep::ClaudeProfile, Fault::IdentitySwitch);
    let profile = http_request(
        "GET",
        &format!("{anthropic}/api/oauth/profile"),
        &oauth,
        b"",
    )
    .json();
    assert_eq!(
        profile["account"]["uuid"],
        json!(grace.switched().account_id)
    );
    let r = http_request(
        "GET",
        &format!("{anthropic}/api/oauth/usage"),
        &[("Authorization", "Bearer sk-ant-oat01-unknown")],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (401, json!("authentication_error"))
    );

    let ada = Identity::new("ada@example.org", "acct-ada", "team");
    let (openai_access, _) = fp.seed_login(Prov::OpenAi, &ada);
    let usage_url = format!("{}/wham/usage", env_url(&fp, "AUTHVAULT_CHATGPT_API_URL"));
    let bearer = format!("Bearer {openai_access}");
    let r = http_request(
        "GET",
        &usage_url,
        &[
            ("Authorization", &bearer),
            ("ChatGPT-Account-Id", "acct-ada"),
        ],
        b"",
    );
    let body = r.json();
    assert_eq!(
        (
            &body["plan_type"],
            &body["rate_limit"]["primary_window"]["used_percent"]
        ),
        (&json!("team"), &json!(25.0))
    );
    assert_eq!(
        r.header("x-codex-primary-reset-at"),
        Some(
            body["rate_limit"]["primary_window"]["reset_at"]
                .to_string()
                .as_str()
        )
    );
    let r = http_request(
        "GET",
        &usage_url,
        &[
            ("Authorization", &bearer),
            ("ChatGPT-Account-Id", "acct-eve"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);

    // Expired access tokens are refused.
    fp.set_access_ttl(0);
    let (expired, _) = fp.seed_login(Prov::OpenAi, &ada);
    let r = http_request(
        "GET",
        &usage_url,
        &[
            ("Authorization", &format!("Bearer {expired}")),
            ("ChatGPT-Account-Id", "acct-ada"),
        ],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("token_expired"))
    );

    assert_eq!(
        [
            Ep::AnthropicModels,
            Ep::ClaudeUsage,
            Ep::ClaudeProfile,
            Ep::ChatGptUsage,
            Ep::OpenAiToken
        ]
        .map(|ep| fp.count(ep)),
        [2, 2, 2, 3, 0]
    );
}

#[test]
fn a_dropped_fake_refuses_connections() {
    let fp = FakeProvider::start();
    let addr: SocketAddr = fp
        .base()
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    // A delayed answer in flight does not hold up the drop.
    fp.push_fault(Ep::OpenAiModels, Fault::Delay(Duration::from_secs(30)));
    let mut pending = TcpStream::connect(addr).expect("connect");
    pending
        .write_all(b"GET /openai-api/v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fp.count(Ep::OpenAiModels) == 0 {
        assert!(Instant::now() < deadline, "request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(fp);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after drop"
    );
}

/// Sends a refresh request and hangs up once the fake has counted it.
fn refresh_and_hang_up(fp: &FakeProvider, token: &str) {
    let addr: SocketAddr = fp
        .base()
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let before = fp.count(Ep::ClaudeToken);
    let body =
        json!({"client_id": "client-1", "grant_type": "refresh_token", "refresh_token": token})
            .to_string();
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST /claude/v1/oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fp.count(Ep::ClaudeToken) == before {
        assert!(Instant::now() < deadline, "request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.shutdown(std::net::Shutdown::Both).expect("hang up");
}

#[test]
fn a_client_that_hangs_up_loses_only_what_the_server_already_did() {
    let fp = FakeProvider::start();
    let who = Identity::new("k@example.com", "acct-k", "max");
    let (access0, r0) = fp.seed_login(Prov::Claude, &who);

    // Delay: the request is dropped unprocessed, r0 stays redeemable.
    fp.push_fault(Ep::ClaudeToken, Fault::Delay(Duration::from_millis(200)));
    refresh_and_hang_up(&fp, &r0);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(fp.current_access(Prov::Claude, "acct-k"), Some(access0));
    let r = refresh(&fp, Prov::Claude, &r0);
    assert_eq!(r.status, 200, "{}", r.body);
    let r1 = r.json()["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();

    // DelayAfter: the rotation happened, the client never saw r2; r1 again is reuse.
    fp.push_fault(Ep::ClaudeToken, Fault::DelayAfter(Duration::from_secs(30)));
    refresh_and_hang_up(&fp, &r1);
    assert!(refused(Prov::Claude, &refresh(&fp, Prov::Claude, &r1), ""));
    assert_eq!(
        (
            fp.refreshes(Prov::Claude),
            fp.invalid_grants(Prov::Claude),
            fp.revoked(Prov::Claude)
        ),
        (4, 1, 1)
    );
}
