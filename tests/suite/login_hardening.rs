//! `vault login` against other local users and hostile local input: the
//! browser opener sees neither the authorize address nor any `AUTHVAULT_*`
//! variable, the loopback listener cannot be stalled or ended by requests that
//! are not this login's answer, nothing a request carries reaches the terminal
//! raw, a re-login into an account without identity records it, and stdin is
//! read only up to a bound.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use authvault::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};
use authvault::store::NewAccount;
use secrecy::SecretString;

use super::common::{ok, stderr, stdout};
use super::fake_provider::{self as fake, Ep, Fault, Prov};
use super::providers::{Env, claude_paste_login, finish, query, setup, spawn_login, start_login};

/// Polls until `path` exists; panics (a hang) after a minute.
pub(super) fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_mins(1),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fake `xdg-open` in `<dir>/bin` that records its arguments, its
/// environment, the modes of the file it was given and of that file's
/// directory, and a copy of the file. `<dir>/argv` is written last.
pub(super) fn fake_opener(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let script = bin.join("xdg-open");
    let out = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             env > '{out}/env'\n\
             stat -c %a \"$1\" > '{out}/file-mode'\n\
             stat -c %a \"$(dirname \"$1\")\" > '{out}/dir-mode'\n\
             cp \"$1\" '{out}/page.html'\n\
             printf '%s\\n' \"$@\" > '{out}/argv.tmp'\n\
             mv '{out}/argv.tmp' '{out}/argv'\n"
        ),
    )
    .expect("write the fake opener");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

/// The address a page's `<meta http-equiv="refresh">` sends the browser to.
pub(super) fn refresh_target(page: &str) -> String {
    let start = page.find("url=").expect("meta refresh with url=") + 4;
    let end = start
        + page[start..]
            .find('"')
            .expect("end of the content attribute");
    page[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn the_browser_opener_gets_a_private_page_and_no_authvault_variable() {
    let env = setup();
    let rec = tempfile::tempdir().expect("tempdir");
    let bin = fake_opener(rec.path());
    let mut login = env.vault(&[
        "login",
        "openai",
        "--port",
        "0",
        "--timeout",
        "60",
        "--label",
        "opened",
    ]);
    login
        .env("DISPLAY", ":99")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("AUTHVAULT_AGENT_ID", "agent-under-test");
    let (child, printed, err) = spawn_login(login);
    wait_for(&rec.path().join("argv"));
    let read = |name: &str| std::fs::read_to_string(rec.path().join(name)).expect(name);

    let argv: Vec<String> = read("argv").lines().map(str::to_owned).collect();
    assert_eq!(argv.len(), 1, "one argument, the page: {argv:?}");
    for secret in [
        "http",
        "state",
        "code_challenge",
        &query(&printed, "state"),
        &query(&printed, "code_challenge"),
    ] {
        assert!(
            !argv[0].contains(secret),
            "the opener's command line shows `{secret}`: {argv:?}"
        );
    }
    let page_path = PathBuf::from(&argv[0]);
    assert_eq!(read("file-mode").trim(), "600", "the page file's mode");
    assert_eq!(read("dir-mode").trim(), "700", "the page directory's mode");

    let recorded_env = read("env");
    assert!(
        recorded_env.lines().any(|l| l == "DISPLAY=:99"),
        "the environment was recorded: {recorded_env}"
    );
    let leaked: Vec<&str> = recorded_env
        .lines()
        .filter(|l| l.starts_with("AUTHVAULT_"))
        .map(|l| l.split('=').next().unwrap_or(l))
        .collect();
    assert!(leaked.is_empty(), "the opener inherited {leaked:?}");

    // The page leads to the login, and the login completes through it.
    let address = refresh_target(&read("page.html"));
    assert_eq!(address, printed, "the page sends the browser to the login");
    let location = env.fake.authorize_redirect(&address);
    assert_eq!(fake::http_get(&location).0, 200);
    let out = finish(child, err);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = ok(&mut env.vault(&["token", "--account", "opened"]));
    assert!(!stdout(&token).trim().is_empty());
    assert!(
        !page_path.exists() && !page_path.parent().expect("page dir").exists(),
        "the page and its directory are removed when the login ends"
    );
}

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

/// A Claude account as a Claude Code import leaves it: tokens, no identity.
fn seed_without_identity(env: &Env, label: &str) {
    let mut store = env.tv.open_passphrase();
    store
        .add_account(&NewAccount {
            provider: Provider::Claude,
            label: label.into(),
            identity: Identity::default(),
            credentials: vec![Credential::OAuth(OAuthTokens {
                access_token: SecretString::from("sk-ant-oat01-imported"),
                refresh_token: Some(SecretString::from("sk-ant-ort01-imported")),
                id_token: None,
                expires_at: None,
                scopes: vec![],
                last_refresh: None,
            })],
            active: CredentialKind::OAuth,
        })
        .expect("seed account");
}

#[test]
fn a_relogin_into_an_account_without_identity_shows_and_records_it_in_the_same_write() {
    let env = setup();
    seed_without_identity(&env, "imported");
    let who = fake::Identity::new("owner@example.com", "uuid-owner", "max");
    env.fake.set_identity(Prov::Claude, who.clone());
    let args = ["login", "claude", "--paste", "--account", "imported"];
    let out = claude_paste_login(&env, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains("Recorded for account `imported` who it belongs to")
            && said.contains(&who.email)
            && said.contains(&who.account_id),
        "the identity the provider answered with is shown: {said}"
    );
    let account = &env.accounts()[0];
    assert_eq!(
        (&account["email"], &account["provider_account_id"]),
        (
            &serde_json::json!(who.email),
            &serde_json::json!(who.account_id)
        ),
        "and recorded"
    );
    // One audit entry says both: the credential written and the identity recorded with it.
    let audit = env.audit();
    let writes: Vec<&serde_json::Value> = audit
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["action"] == "credential.write")
        .collect();
    assert_eq!(writes.len(), 1, "{audit}");
    assert_eq!(
        writes[0]["details"]["identity_recorded"],
        serde_json::json!([
            "added e-mail",
            "added provider account id",
            "added plan max",
            "added rate-limit tier default_claude_max_20x"
        ]),
        "{audit}"
    );
    // From now on the account is bound to that identity.
    let issued = env
        .fake
        .current_access(Prov::Claude, &who.account_id)
        .expect("issued");
    env.fake
        .push_fault(Ep::ClaudeAuthorize, Fault::IdentitySwitch);
    let out = claude_paste_login(&env, &args);
    assert!(
        !out.status.success() && stderr(&out).contains("different account"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&ok(&mut env.vault(&["token", "--account", "imported"]))),
        format!("{issued}\n"),
        "the owner's tokens are kept"
    );
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
