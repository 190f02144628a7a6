//! Receiving the authorization code: a one-shot HTTP listener on 127.0.0.1
//! for the browser's redirect, or text the user pastes (Claude's `code#state`,
//! or the redirect URL itself).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

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
    /// The user or provider refused (`error=access_denied`…). The texts are
    /// [`printable`] already: safe to show on a terminal.
    Denied {
        /// The OAuth error code.
        error: String,
        /// The provider's `error_description`, if any.
        description: Option<String>,
        /// The state echoed back, if any.
        state: Option<String>,
    },
}

impl Callback {
    /// The `state` the answer carries.
    #[must_use]
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Code { state, .. } => Some(state),
            Self::Denied { state, .. } => state.as_deref(),
        }
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code { .. } => f.write_str("Callback::Code([REDACTED])"),
            Self::Denied { error, .. } => write!(f, "Callback::Denied({error})"),
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

/// Longest text taken from a request for display.
const MAX_SHOWN: usize = 200;

/// `text` made safe for a terminal: at most 200 characters, and every control
/// character (ESC, CR, BEL…), bidirectional override or invisible format
/// character written as an escape (`\u{1b}`) instead of raw.
#[must_use]
pub fn printable(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    let mut out = String::new();
    for c in text.chars().take(MAX_SHOWN) {
        if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(MAX_SHOWN).is_some() {
        out.push('…');
    }
    out
}

fn from_query(query: &str) -> Option<Callback> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(error) = get("error") {
        return Some(Callback::Denied {
            error: printable(&error),
            description: get("error_description").map(|d| printable(&d)),
            state: get("state"),
        });
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

/// Largest request head read; the redirect has no body.
const MAX_HEAD: usize = 8192;
/// How long one connection may take to send its request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Connections read at once; past this the oldest is dropped.
const MAX_CONNECTIONS: usize = 32;
/// How long writing the small answer page may take.
const REPLY_DEADLINE: Duration = Duration::from_secs(2);

const PAGE_OK: &str = "<!doctype html><title>authvault</title><p>Login received. You can close this window and return to the terminal.</p>";
const PAGE_DENIED: &str = "<!doctype html><title>authvault</title><p>Login was not completed. Return to the terminal.</p>";
const PAGE_FOREIGN: &str = "<!doctype html><title>authvault</title><p>This answer does not belong to the login in progress; it was ignored.</p>";

/// What the listener does with one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// This login's answer: reply, and end the wait with it.
    Answer(Callback),
    /// A callback with another login's state, or none: reply 400, keep waiting.
    Foreign,
    /// No callback at all (a favicon…): reply 404, keep waiting.
    NotFound,
}

/// Judges a request head: only a callback whose `state` passes `belongs`
/// answers this login.
fn judge(head: &[u8], belongs: impl Fn(&str) -> bool) -> Verdict {
    let head = String::from_utf8_lossy(head);
    let target = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/");
    match target.split_once('?').and_then(|(_, q)| from_query(q)) {
        None => Verdict::NotFound,
        Some(cb) if cb.state().is_some_and(belongs) => Verdict::Answer(cb),
        Some(_) => Verdict::Foreign,
    }
}

/// Reads a request head within [`HEAD_DEADLINE`] and [`MAX_HEAD`] bytes;
/// `None` for a connection that does not manage to.
async fn read_head(mut stream: TcpStream) -> Option<(TcpStream, Vec<u8>)> {
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(buf);
            }
            if buf.len() >= MAX_HEAD {
                return None;
            }
        }
    };
    let head = tokio::time::timeout(HEAD_DEADLINE, read).await.ok()??;
    Some((stream, head))
}

async fn reply(stream: &mut TcpStream, status: &str, page: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = tokio::time::timeout(REPLY_DEADLINE, async {
        let _ = stream.write_all(text.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Waits for this login's redirect on `listener`: the first callback whose
/// `state` passes `belongs` (a code, or an error). Connections are read
/// concurrently, each within a deadline and a size limit, so a silent or slow
/// one holds up nothing; callbacks with another state, or none, are answered
/// 400 and ignored, other requests 404.
///
/// # Errors
/// [`CallbackError::TimedOut`].
pub async fn wait(
    listener: &TcpListener,
    timeout: Duration,
    belongs: impl Fn(&str) -> bool,
) -> Result<Callback, CallbackError> {
    let work = async {
        let mut reading = JoinSet::new();
        let mut oldest_first: VecDeque<AbortHandle> = VecDeque::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    oldest_first.retain(|h| !h.is_finished());
                    if oldest_first.len() >= MAX_CONNECTIONS
                        && let Some(oldest) = oldest_first.pop_front()
                    {
                        oldest.abort();
                    }
                    oldest_first.push_back(reading.spawn(read_head(stream)));
                }
                Some(done) = reading.join_next() => {
                    let Ok(Some((mut stream, head))) = done else { continue };
                    match judge(&head, &belongs) {
                        Verdict::Answer(cb) => {
                            let page = match cb {
                                Callback::Code { .. } => PAGE_OK,
                                Callback::Denied { .. } => PAGE_DENIED,
                            };
                            reply(&mut stream, "200 OK", page).await;
                            return cb;
                        }
                        // Answered on the side: nothing the sender does delays the wait.
                        Verdict::Foreign => drop(tokio::spawn(async move {
                            reply(&mut stream, "400 Bad Request", PAGE_FOREIGN).await;
                        })),
                        Verdict::NotFound => drop(tokio::spawn(async move {
                            reply(&mut stream, "404 Not Found", "").await;
                        })),
                    }
                }
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
                    description: None,
                    state: Some("xyz".into()),
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
    fn only_a_callback_with_this_logins_state_answers_it() {
        let request = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let ours = |s: &str| s == "ours";
        let denied = |state: Option<&str>| Callback::Denied {
            error: "access_denied".into(),
            description: Some("no".into()),
            state: state.map(Into::into),
        };
        let cases = [
            (
                "/cb?code=c&state=ours",
                Verdict::Answer(Callback::Code {
                    code: "c".into(),
                    state: "ours".into(),
                }),
            ),
            (
                "/cb?error=access_denied&error_description=no&state=ours",
                Verdict::Answer(denied(Some("ours"))),
            ),
            ("/cb?code=c&state=theirs", Verdict::Foreign),
            (
                "/cb?error=access_denied&error_description=no",
                Verdict::Foreign,
            ),
            (
                "/cb?error=access_denied&error_description=no&state=theirs",
                Verdict::Foreign,
            ),
            ("/cb?code=c", Verdict::NotFound),
            ("/favicon.ico", Verdict::NotFound),
        ];
        for (target, want) in cases {
            assert_eq!(judge(request(target).as_bytes(), ours), want, "{target}");
        }
        assert_eq!(judge(b"\x00\xff garbage", ours), Verdict::NotFound);
    }

    #[test]
    fn shown_text_has_no_raw_control_or_direction_characters() {
        let cases = [
            ("access_denied", "access_denied".to_owned()),
            ("a\u{1b}[2Jb", "a\\u{1b}[2Jb".to_owned()),
            ("line\r\nnext\u{7}", "line\\u{d}\\u{a}next\\u{7}".to_owned()),
            ("abc\u{202e}fed", "abc\\u{202e}fed".to_owned()),
            ("zero\u{200b}width", "zero\\u{200b}width".to_owned()),
            ("café ✓", "café ✓".to_owned()),
            (&"x".repeat(500), format!("{}…", "x".repeat(MAX_SHOWN))),
        ];
        for (text, want) in cases {
            assert_eq!(printable(text), want, "{text:?}");
        }
        let from_request = from_query("error=e%1B%5B31m&error_description=d%0D%07&state=s");
        assert_eq!(
            from_request,
            Some(Callback::Denied {
                error: "e\\u{1b}[31m".into(),
                description: Some("d\\u{d}\\u{7}".into()),
                state: Some("s".into()),
            })
        );
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
