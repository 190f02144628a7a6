//! What a provider's error answer means: one rule for every call (token
//! endpoint, usage and profile endpoints, API-key checks, and the retries of
//! [`Http::send`](super::http::Http::send)).
//!
//! | answer | verdict |
//! |---|---|
//! | 408, 425, 429, any 5xx (529 included) | [`Verdict::Transient`]: try again later |
//! | an OAuth error code that ends the login (`invalid_grant`, `refresh_token_reused`, …) | [`Verdict::Permanent`] |
//! | 401 | [`Verdict::Permanent`]: the token or key is not accepted |
//! | anything else (400, 403, 404, …) | [`Verdict::Rejected`]: this request was refused |
//!
//! 403 is not permanent: it says the credential was recognised but may not do
//! this (a restricted API key, a missing scope, a region or firewall block).
//! RFC 6749 answers a dead grant with 400 `invalid_grant` or 401, and
//! OpenAI's dead refresh tokens come as 401 with a `refresh_token_*` code;
//! a bare 403 from a token endpoint is more likely a proxy in the way, and
//! marking the login dead for it would throw away a refresh token that still
//! works.

/// How a failed call is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Worth trying again later: rate limits, timeouts, server errors.
    Transient,
    /// The credential is dead: the user must log in again (or use another key).
    Permanent,
    /// The provider refused this request; the credential is not known to be dead.
    Rejected,
}

/// OAuth error codes that end a login whatever the status says.
const DEAD_LOGIN_CODES: [&str; 6] = [
    "invalid_grant",
    "refresh_token_expired",
    "refresh_token_reused",
    "refresh_token_invalidated",
    "token_revoked",
    "unauthorized_client",
];

/// Classifies an answer that is not a success, from its HTTP `status` and,
/// for an OAuth token endpoint, the error `code` of its body.
#[must_use]
pub fn classify(status: u16, code: Option<&str>) -> Verdict {
    match status {
        408 | 425 | 429 | 500..=599 => Verdict::Transient,
        _ if code.is_some_and(|code| DEAD_LOGIN_CODES.contains(&code)) => Verdict::Permanent,
        401 => Verdict::Permanent,
        _ => Verdict::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Permanent, Rejected, Transient};

    #[test]
    fn every_answer_has_one_verdict() {
        #[rustfmt::skip]
        let cases = [
            // status, OAuth error code, verdict
            (400, Some("invalid_grant"),             Permanent),
            (401, Some("refresh_token_reused"),      Permanent),
            (401, Some("refresh_token_expired"),     Permanent),
            (401, Some("refresh_token_invalidated"), Permanent),
            (400, Some("token_revoked"),             Permanent),
            (400, Some("unauthorized_client"),       Permanent),
            (401, Some("invalid_client"),            Permanent),
            (401, None,                              Permanent),
            (400, Some("invalid_request"),           Rejected),
            (400, Some("unsupported_grant_type"),    Rejected),
            (400, None,                              Rejected),
            (403, None,                              Rejected),
            (403, Some("permission_error"),          Rejected),
            (404, None,                              Rejected),
            (409, None,                              Rejected),
            (413, None,                              Rejected),
            (301, None,                              Rejected),
            (408, None,                              Transient),
            (425, None,                              Transient),
            (429, Some("rate_limit_error"),          Transient),
            (500, None,                              Transient),
            (502, None,                              Transient),
            (503, Some("invalid_grant"),             Transient),
            (504, None,                              Transient),
            (520, None,                              Transient),
            (529, Some("overloaded_error"),          Transient),
        ];
        for (status, code, verdict) in cases {
            assert_eq!(classify(status, code), verdict, "HTTP {status} {code:?}");
        }
    }

    #[test]
    fn the_transient_statuses_are_rate_limits_timeouts_and_server_errors() {
        let transient: Vec<u16> = (100..600)
            .filter(|&status| classify(status, None) == Transient)
            .collect();
        let expected: Vec<u16> = [408, 425, 429].into_iter().chain(500..600).collect();
        assert_eq!(transient, expected);
    }
}
