//! Receiving the authorization code: a one-shot HTTP listener on 127.0.0.1
//! for the browser's redirect, or text the user pastes (Claude's `code#state`,
//! or the redirect URL itself).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the provider sent back.
#[derive(Clone, PartialEq, Eq)]
pub enum Callback {
    /// A code, with the `state` to check.
    Code {
        /// The authorization code (single-use, short-lived).
        code: String,
        /// The state echoed back.
        state: String,
    },
    /// The user or provider refused (`error=access_denied`…).
    Denied {
        /// The OAuth error code.
        error: String,
    },
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code { .. } => f.write_str("Callback::Code([REDACTED])"),
            Self::Denied { error } => write!(f, "Callback::Denied({error})"),
        }
    }
}

/// Why no usable callback arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Nothing within the time allowed.
    #[error("no answer from the browser within {0:?}; run the login again (or use --paste)")]
    TimedOut(Duration),
    /// The pasted text is not a code.
    #[error("the pasted text is not `code#state` or a redirect URL with code and state")]
    Unreadable,
    /// Listening failed.
    #[error("cannot listen on 127.0.0.1:{port}: {reason}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
}

fn from_query(query: &str) -> Option<Callback> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(error) = get("error") {
        return Some(Callback::Denied { error });
    }
    Some(Callback::Code {
        code: get("code")?,
        state: get("state")?,
    })
}

/// Reads pasted text: `code#state` (Claude's page), a full redirect URL, or
/// its query string.
#[must_use]
pub fn parse_pasted(text: &str) -> Option<Callback> {
    let text = text.trim();
    if let Some((_, query)) = text.split_once('?') {
        return from_query(query.split('#').next().unwrap_or_default());
    }
    if text.contains("code=") {
        return from_query(text);
    }
    let (code, state) = text.split_once('#')?;
    (!code.is_empty() && !state.is_empty() && !code.contains(char::is_whitespace)).then(|| {
        Callback::Code {
            code: code.to_owned(),
            state: state.to_owned(),
        }
    })
}

/// Binds the listener (`port` 0: any free port) and returns it with its port.
///
/// # Errors
/// [`CallbackError::Listen`].
pub async fn bind(port: u16) -> Result<(TcpListener, u16), CallbackError> {
    let listener =
        TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| CallbackError::Listen {
                port,
                reason: e.to_string(),
            })?;
    let port = listener.local_addr().map_or(port, |a| a.port());
    Ok((listener, port))
}

const PAGE_OK: &str = "<!doctype html><title>authvault</title><p>Login received. You can close this window and return to the terminal.</p>";
const PAGE_DENIED: &str = "<!doctype html><title>authvault</title><p>Login was not completed. Return to the terminal.</p>";

/// Waits for the redirect on `listener`, answering each request; requests
/// without a code or error (a favicon…) are answered 404 and ignored.
///
/// # Errors
/// [`CallbackError::TimedOut`].
pub async fn wait(listener: &TcpListener, timeout: Duration) -> Result<Callback, CallbackError> {
    let work = async {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // Read the request head (bounded); the request has no body.
            while len < buf.len() {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[len..]))
                    .await
                {
                    Ok(Ok(0) | Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let target = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("/");
            let callback = target.split_once('?').and_then(|(_, q)| from_query(q));
            let (status, page) = match &callback {
                Some(Callback::Code { .. }) => ("200 OK", PAGE_OK),
                Some(Callback::Denied { .. }) => ("200 OK", PAGE_DENIED),
                None => ("404 Not Found", ""),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
            if let Some(cb) = callback {
                return cb;
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CallbackError::TimedOut(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_forms_are_understood() {
        let code = |c: &str, s: &str| {
            Some(Callback::Code {
                code: c.into(),
                state: s.into(),
            })
        };
        let cases = [
            ("abc#xyz", code("abc", "xyz")),
            ("  abc#xyz\n", code("abc", "xyz")),
            (
                "http://localhost:1455/auth/callback?code=abc&state=xyz",
                code("abc", "xyz"),
            ),
            ("code=abc&state=xyz", code("abc", "xyz")),
            (
                "http://localhost/cb?error=access_denied&state=xyz",
                Some(Callback::Denied {
                    error: "access_denied".into(),
                }),
            ),
            ("abc", None),
            ("#xyz", None),
            ("http://localhost/cb?code=abc", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_pasted(text), want, "{text:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_code() {
        let cb = Callback::Code {
            code: "SECRETCODE".into(),
            state: "s".into(),
        };
        assert!(!format!("{cb:?}").contains("SECRETCODE"));
    }
}
