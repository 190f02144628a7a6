//! Reading the claims of an OpenAI id token or access token.
//!
//! Shared by the importer (labels and expiry of imported tokens) and the
//! providers (claims of a fresh login or refresh), so it depends on neither.
//!
//! The signature is **not** verified, exactly as the Codex CLI does: the token
//! was written by the user's own login on this machine, and the claims are
//! only used to label the account (e-mail, plan, ChatGPT account id) and to
//! learn when the access token expires. Nothing here grants access.
//!
//! Every function returns `None` for anything that is not a well-formed
//! compact JWS (three base64url parts whose middle one is a JSON object); none
//! of them panics.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The claim OpenAI nests its ChatGPT-specific claims under.
const OPENAI_AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// Tokens longer than this are not decoded (an id token is ~1–2 KiB).
const MAX_JWT_LEN: usize = 64 * 1024;

/// base64url, with or without `=` padding (issuers differ).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims authvault reads from an OpenAI id token (or access token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// `email`.
    pub email: Option<String>,
    /// `https://api.openai.com/auth` → `chatgpt_plan_type` (`free`, `plus`, `pro`, `team`, …).
    pub plan: Option<String>,
    /// `https://api.openai.com/auth` → `chatgpt_account_id`.
    pub chatgpt_account_id: Option<String>,
    /// `https://api.openai.com/auth` → `chatgpt_user_id` (else `user_id`).
    pub chatgpt_user_id: Option<String>,
    /// `exp`, in unix seconds.
    pub exp: Option<i64>,
    /// `scp` (access tokens): an array of scopes or one space-separated string.
    pub scopes: Vec<String>,
}

/// Decodes the payload of `jwt` without verifying its signature.
///
/// Returns `None` when `jwt` is not three `.`-separated parts, the middle part
/// is not base64url, or it does not decode to a JSON object. Claims of the
/// wrong type are treated as absent.
#[must_use]
pub fn decode_claims(jwt: &str) -> Option<IdTokenClaims> {
    if jwt.len() > MAX_JWT_LEN {
        return None;
    }
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    let bytes = BASE64URL.decode(payload).ok()?;
    let Value::Object(claims) = serde_json::from_slice::<Value>(&bytes).ok()? else {
        return None;
    };
    let auth = claims.get(OPENAI_AUTH_CLAIM).and_then(Value::as_object);
    let auth_str = |key: &str| auth.and_then(|a| string_claim(a, key));
    Some(IdTokenClaims {
        email: string_claim(&claims, "email"),
        plan: auth_str("chatgpt_plan_type"),
        chatgpt_account_id: auth_str("chatgpt_account_id"),
        chatgpt_user_id: auth_str("chatgpt_user_id").or_else(|| auth_str("user_id")),
        exp: claims.get("exp").and_then(unix_seconds),
        scopes: claims.get("scp").map(scopes_claim).unwrap_or_default(),
    })
}

/// The `exp` claim of `jwt` as a time, if `jwt` is a JWT that has one.
#[must_use]
pub fn expiry(jwt: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(decode_claims(jwt)?.exp?, 0)
}

fn string_claim(claims: &Map<String, Value>, key: &str) -> Option<String> {
    claims.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A `NumericDate`: an integer, or a float with no fractional part worth keeping.
fn unix_seconds(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    // `as` saturates; the range check keeps the value meaningful.
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.abs() < 1e15).then_some(f.trunc() as i64)
}

fn scopes_claim(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Builds an unsigned JWT with `claims` as payload (tests only).
#[cfg(test)]
pub(crate) fn unsigned_jwt(claims: &Value) -> String {
    let header = BASE64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = BASE64URL.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn decodes_the_claims_authvault_uses() {
        let full = unsigned_jwt(&json!({
            "email": "ada@example.com",
            "exp": 1_751_003_600,
            "scp": ["openid", "offline_access"],
            OPENAI_AUTH_CLAIM: {
                "chatgpt_plan_type": "plus",
                "chatgpt_account_id": "acc-1",
                "chatgpt_user_id": "user-1"
            }
        }));
        let cases: Vec<(&str, String, Option<IdTokenClaims>)> = vec![
            (
                "all claims",
                full,
                Some(IdTokenClaims {
                    email: Some("ada@example.com".into()),
                    plan: Some("plus".into()),
                    chatgpt_account_id: Some("acc-1".into()),
                    chatgpt_user_id: Some("user-1".into()),
                    exp: Some(1_751_003_600),
                    scopes: vec!["openid".into(), "offline_access".into()],
                }),
            ),
            (
                "user_id fallback, float exp, scope string",
                unsigned_jwt(
                    &json!({"exp": 10.0, "scp": "a b", OPENAI_AUTH_CLAIM: {"user_id": "u"}}),
                ),
                Some(IdTokenClaims {
                    chatgpt_user_id: Some("u".into()),
                    exp: Some(10),
                    scopes: vec!["a".into(), "b".into()],
                    ..IdTokenClaims::default()
                }),
            ),
            (
                "wrong-typed claims are absent",
                unsigned_jwt(&json!({"email": 1, "exp": "soon", OPENAI_AUTH_CLAIM: "x"})),
                Some(IdTokenClaims::default()),
            ),
            (
                "padded payload",
                format!("e30.{}.s", "e30="),
                Some(IdTokenClaims::default()),
            ),
            ("not a JWT", "sk-ant-oat01-abc".into(), None),
            ("two parts", "a.b".into(), None),
            ("four parts", "a.e30.c.d".into(), None),
            ("empty payload", "a..c".into(), None),
            ("payload not base64", "a.!!!.c".into(), None),
            (
                "payload not JSON",
                format!("a.{}.c", BASE64URL.encode("nope")),
                None,
            ),
            (
                "payload an array",
                format!("a.{}.c", BASE64URL.encode("[1]")),
                None,
            ),
        ];
        for (name, jwt, expected) in cases {
            assert_eq!(decode_claims(&jwt), expected, "{name}");
        }
    }

    #[test]
    fn expiry_is_the_exp_claim() {
        let jwt = unsigned_jwt(&json!({"exp": 1_752_000_000}));
        assert_eq!(expiry(&jwt), DateTime::from_timestamp(1_752_000_000, 0));
        assert_eq!(expiry(&unsigned_jwt(&json!({}))), None);
        assert_eq!(expiry(&unsigned_jwt(&json!({"exp": i64::MAX}))), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,200}", payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_claims(&s);
            let _ = expiry(&s);
            let jwt = format!("h.{}.s", BASE64URL.encode(&payload));
            let _ = decode_claims(&jwt);
        }
    }
}
