//! The one HTTP client: reqwest over rustls (ring), bounded retries with
//! exponential backoff and jitter that honour `retry-after`, and the adapter
//! that lets the `oauth2` crate use it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};

use super::status::{Verdict, classify};

/// Why a request got no usable answer. Never holds a secret (no URLs with
/// queries, no bodies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No connection, DNS failure or timeout, after every retry.
    #[error("could not reach {host}: {reason}")]
    Unreachable {
        /// The host asked.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The client could not be built.
    #[error("HTTP client setup failed: {0}")]
    Setup(String),
}

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (first try included).
    pub attempts: u32,
    /// First backoff; doubles each retry.
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
    /// Longest `retry-after` honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(20),
        }
    }
}

/// The shared client.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    policy: RetryPolicy,
}

impl Http {
    /// A client with timeouts (connect 5 s, whole request 20 s), no redirects
    /// followed, and `policy` for retries.
    ///
    /// # Errors
    /// [`HttpError::Setup`] when TLS cannot be initialised.
    pub fn new(policy: RetryPolicy) -> Result<Self, HttpError> {
        // One process-wide crypto provider; a second install is a harmless no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Setup(e.without_url().to_string()))?;
        Ok(Self { client, policy })
    }

    /// The same client (connections shared) with another retry policy: a
    /// health probe sends each request once, so that a 429 is seen, not
    /// waited out.
    #[must_use]
    pub fn with_policy(&self, policy: RetryPolicy) -> Self {
        Self {
            client: self.client.clone(),
            policy,
        }
    }

    /// The underlying client, for building requests.
    #[must_use]
    pub const fn client(&self) -> &Client {
        &self.client
    }

    /// Sends the request `build` makes, retrying transient statuses and
    /// connection failures within the policy. Returns the last response
    /// (which may still be an error status for the caller to read).
    ///
    /// # Errors
    /// [`HttpError::Unreachable`] when no response came at all.
    pub async fn send(
        &self,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.attempts;
            match build(&self.client).send().await {
                Ok(resp)
                    if classify(resp.status().as_u16(), None) == Verdict::Transient && !last =>
                {
                    let Some(delay) = self.delay(attempt, retry_after(&resp)) else {
                        return Ok(resp);
                    };
                    tracing::debug!(
                        status = resp.status().as_u16(),
                        ?delay,
                        attempt,
                        "transient status; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Ok(resp) => return Ok(resp),
                Err(e) if !last && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                    tracing::debug!(error = %e.without_url(), attempt, "request failed; retrying");
                    tokio::time::sleep(self.delay(attempt, None).unwrap_or(self.policy.max_delay))
                        .await;
                }
                Err(e) => {
                    let host = e
                        .url()
                        .and_then(|u| u.host_str().map(str::to_owned))
                        .unwrap_or_default();
                    return Err(HttpError::Unreachable {
                        host,
                        reason: e.without_url().to_string(),
                    });
                }
            }
        }
    }

    /// Backoff before retry `attempt` (1-based): `retry-after` when given and
    /// acceptable, else exponential with full jitter. `None`: give up.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(wait) = retry_after {
            return (wait <= self.policy.max_retry_after).then_some(wait);
        }
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.policy.max_delay);
        Some(exp / 2 + exp.mul_f64(jitter() / 2.0))
    }
}

/// A uniform number in [0, 1).
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = crate::crypto::fill_random(&mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// `retry-after` as seconds (the HTTP-date form is rare for APIs; ignored).
fn retry_after(resp: &Response) -> Option<Duration> {
    retry_after_header(resp.headers())
}

/// The `retry-after` header as seconds (the HTTP-date form is rare for APIs;
/// ignored).
#[must_use]
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// An error the `oauth2` crate can carry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthHttpError(pub HttpError);

/// Adapter: `oauth2`'s requests over [`Http`]. With `json_body`, the
/// form-encoded body `oauth2` builds is sent as a JSON object with the same
/// fields (Claude's token endpoint and OpenAI's refresh take JSON). The last
/// HTTP status is kept so callers can tell transient from permanent failures.
#[derive(Debug)]
pub struct OAuthHttp<'a> {
    http: &'a Http,
    json_body: bool,
    last_status: Mutex<Option<u16>>,
}

impl<'a> OAuthHttp<'a> {
    /// Wraps `http`.
    #[must_use]
    pub const fn new(http: &'a Http, json_body: bool) -> Self {
        Self {
            http,
            json_body,
            last_status: Mutex::new(None),
        }
    }

    /// The status of the last response received.
    #[must_use]
    pub fn last_status(&self) -> Option<u16> {
        *self.last_status.lock().expect("status lock")
    }
}

fn form_to_json(body: &[u8]) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::to_vec(&map).expect("a JSON object serializes")
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = OAuthHttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut headers = parts.headers.clone();
            let body = if self.json_body && !body.is_empty() {
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    reqwest::header::HeaderValue::from_static("application/json"),
                );
                form_to_json(&body)
            } else {
                body
            };
            let uri = parts.uri.to_string();
            let resp = self
                .http
                .send(|c| {
                    c.request(parts.method.clone(), &uri)
                        .headers(headers.clone())
                        .body(body.clone())
                })
                .await
                .map_err(OAuthHttpError)?;
            let status = resp.status();
            *self.last_status.lock().expect("status lock") = Some(status.as_u16());
            let resp_headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(|e| {
                OAuthHttpError(HttpError::Unreachable {
                    host: String::new(),
                    reason: e.without_url().to_string(),
                })
            })?;
            let mut out = oauth2::http::Response::builder().status(status);
            if let Some(h) = out.headers_mut() {
                *h = resp_headers;
            }
            out.body(bytes.to_vec())
                .map_err(|e| OAuthHttpError(HttpError::Setup(e.to_string())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let http = Http::new(RetryPolicy::default()).unwrap();
        for attempt in 1..10 {
            let d = http.delay(attempt, None).unwrap();
            assert!(d <= RetryPolicy::default().max_delay, "{attempt}: {d:?}");
        }
        assert_eq!(
            http.delay(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            http.delay(1, Some(Duration::from_hours(1))),
            None,
            "too long a wait ends the retries"
        );
    }

    #[test]
    fn form_bodies_become_json_objects() {
        let json: serde_json::Value = serde_json::from_slice(&form_to_json(
            b"grant_type=refresh_token&refresh_token=a%2Bb&client_id=x",
        ))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"grant_type": "refresh_token", "refresh_token": "a+b", "client_id": "x"})
        );
    }
}
