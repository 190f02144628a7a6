//! `vault login` against other local users and hostile local input: the
//! loopback listener cannot be stalled or ended by requests that are not this
//! login's answer, nothing a request carries reaches the terminal raw, and
//! stdin is read only up to a bound.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::common::{stderr, stdout};
use super::fake_provider::Ep;
use super::providers::{finish, query, setup, start_login};

/// Writes raw bytes to the loopback listener at `port` and reads the answer;
/// `None` when the connection fails (the listener is gone).
fn raw_request(port: &str, request: &str) -> Option<String> {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    s.set_read_timeout(Some(Duration::from_mins(1))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// The loopback listener's port and callback path, from the authorize address.
fn callback_of(authorize: &str) -> (String, String) {
    let redirect = url::Url::parse(&query(authorize, "redirect_uri")).expect("redirect_uri");
    (
        redirect.port().expect("port").to_string(),
        redirect.path().to_owned(),
    )
}

fn get(path_and_query: &str) -> String {
    format!("GET {path_and_query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

#[test]
fn a_stalled_or_trickling_connection_does_not_hold_up_the_real_callback() {
    let env = setup();
    let (child, url, err) = start_login(
        &env,
        &[
            "login",
            "claude",
            "--port",
            "0",
            "--timeout",
            "20",
            "--label",
            "c",
        ],
    );
    let (port, path) = callback_of(&url);
    // One connection that says nothing, one that sends a byte at a time and never ends its request.
    let silent = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = {
        let stop = Arc::clone(&stop);
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        let request = format!("GET {path}?code=slow&state=slow HTTP/1.1\r\nX-Pad: ");
        std::thread::spawn(move || {
            for b in request.bytes().chain(std::iter::repeat(b'a')) {
                if stop.load(Ordering::Relaxed) || s.write_all(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // The browser comes back meanwhile.
    let location = env.fake.authorize_redirect(&url);
    let browser = std::thread::spawn(move || raw_request(&port, &get(&location_path(&location))));
    let out = finish(child, err);
    stop.store(true, Ordering::Relaxed);
    drop(silent);
    trickler.join().expect("trickler");
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = browser.join().expect("browser").expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(env.accounts().as_array().expect("list").len(), 1);
}

/// `/path?query` of a full URL.
fn location_path(url: &str) -> String {
    let u = url::Url::parse(url).expect("url");
    format!("{}?{}", u.path(), u.query().unwrap_or_default())
}

#[test]
fn error_callbacks_without_this_logins_state_are_ignored() {
    let env = setup();
    let (child, url, err) = start_login(
        &env,
        &[
            "login",
            "openai",
            "--port",
            "0",
            "--timeout",
            "60",
            "--label",
            "o",
        ],
    );
    let (port, path) = callback_of(&url);
    for forged in [
        format!("{path}?error=access_denied"),
        format!("{path}?error=access_denied&state=not-this-login"),
        format!("{path}?code=forged&state=not-this-login"),
    ] {
        let answer = raw_request(&port, &get(&forged));
        assert!(
            answer
                .as_deref()
                .is_some_and(|a| a.starts_with("HTTP/1.1 400")),
            "{forged}: {answer:?}"
        );
    }
    let location = env.fake.authorize_redirect(&url);
    let answer = raw_request(&port, &get(&location_path(&location)));
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "the real callback: {answer:?}"
    );
    let out = finish(child, err);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env.fake.count(Ep::OpenAiToken),
        1,
        "one exchange, the real code"
    );
}

#[test]
fn an_error_callback_with_this_logins_state_ends_it_and_nothing_raw_reaches_the_terminal() {
    let env = setup();
    let (child, url, err) =
        start_login(&env, &["login", "claude", "--port", "0", "--timeout", "60"]);
    let (port, path) = callback_of(&url);
    let state = query(&url, "state");
    let hostile = format!(
        "{path}?error=access_denied%1B%5D0%3Bowned%07&error_description=denied%0D%1B%5B2Jfake%20prompt%24%20%E2%80%AE&state={state}"
    );
    let answer = raw_request(&port, &get(&hostile));
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
    let out = finish(child, err);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("access_denied") && text.contains("nothing was stored"),
        "a clear error: {text}"
    );
    assert!(text.contains("denied"), "the description is shown: {text}");
    for (name, raw) in [
        ("ESC", "\u{1b}"),
        ("CR", "\r"),
        ("BEL", "\u{7}"),
        ("RLO", "\u{202e}"),
    ] {
        assert!(
            !text.contains(raw) && !stdout(&out).contains(raw),
            "{name} reached the terminal raw: {text:?}"
        );
    }
    assert!(text.contains("\\u{1b}"), "shown escaped: {text}");
    assert_eq!(env.accounts(), serde_json::json!([]));
    assert_eq!(env.fake.count(Ep::ClaudeToken), 0);
}

#[test]
fn a_pasted_line_without_end_is_refused_at_the_bound_and_stores_nothing() {
    const TOTAL: usize = 64 << 20;
    let env = setup();
    let (mut child, _url, err) = start_login(&env, &["login", "claude", "--paste"]);
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 64 << 10];
        let mut written = 0;
        while written < TOTAL {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
            written += chunk.len();
        }
        written
    });
    let out = finish(child, err);
    let written = writer.join().expect("writer");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pasted text on stdin")
            && stderr(&out).contains("longer than 16384 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        written < TOTAL,
        "the reader stopped at its bound instead of taking all {TOTAL} bytes"
    );
    assert_eq!(env.accounts(), serde_json::json!([]));
    assert_eq!(env.fake.count(Ep::ClaudeToken), 0);
}
