//! Providers end to end against the fake provider on 127.0.0.1: login flows,
//! single-flight refresh across processes, retries, permanent failures,
//! identity switches, key validation and snapshots.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::common::{Backend, TempVault, fails, ok, on_both_backends, stderr, stdout, with_stdin};
use super::fake_provider::{self as fake, Ep, FakeProvider, Fault, Prov};

pub(super) struct Env {
    pub(super) tv: TempVault,
    pub(super) fake: FakeProvider,
}

pub(super) fn setup() -> Env {
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    Env {
        tv,
        fake: FakeProvider::start(),
    }
}

/// As [`setup`], on `backend`, the vault made through the CLI.
fn setup_on(backend: Backend) -> Env {
    let tv = TempVault::on(backend);
    tv.init_cli_passphrase();
    Env {
        tv,
        fake: FakeProvider::start(),
    }
}

impl Env {
    /// `vault …` with the passphrase and every endpoint on the fake.
    pub(super) fn vault(&self, args: &[&str]) -> Command {
        let mut c = self.tv.cmd_pw(args);
        for (k, v) in self.fake.env() {
            c.env(k, v);
        }
        c
    }

    /// An OAuth account holding a login the fake knows, valid for an hour.
    fn seed(&self, prov: Prov, label: &str, who: &fake::Identity) {
        let mut store = self.tv.open_passphrase();
        store
            .add_account(&self.fake.seeded_account(prov, label, who))
            .expect("seed account");
    }

    /// A Claude account `label` logged in through `vault login claude
    /// --paste` as `who`: the CLI path, on either backend.
    fn login_claude(&self, label: &str, who: &fake::Identity) {
        self.fake.set_identity(Prov::Claude, who.clone());
        let out = claude_paste_login(self, &["login", "claude", "--paste", "--label", label]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    /// Moves the stored expiry of `label`'s access token (labels here are
    /// plain words, safe inside a literal).
    fn expire_in(&self, label: &str, from_now: chrono::Duration) {
        let at =
            (chrono::Utc::now() + from_now).to_rfc3339_opts(chrono::SecondsFormat::Micros, true); // the vault's one time form
        let raw = self.tv.raw_db();
        let of_label = format!(
            "kind = 'oauth' AND account_id = (SELECT id FROM accounts WHERE label = '{label}')"
        );
        raw.exec(&format!(
            "UPDATE credentials SET expires_at = '{at}' WHERE {of_label}"
        ));
        assert_eq!(
            raw.query_i64(&format!(
                "SELECT count(*) FROM credentials WHERE expires_at = '{at}' AND {of_label}"
            )),
            1
        );
    }

    pub(super) fn expire(&self, label: &str) {
        self.expire_in(label, chrono::Duration::minutes(-1));
    }

    pub(super) fn accounts(&self) -> serde_json::Value {
        serde_json::from_slice(&ok(&mut self.vault(&["--json", "accounts"])).stdout).expect("json")
    }

    pub(super) fn audit(&self) -> serde_json::Value {
        serde_json::from_slice(&ok(&mut self.vault(&["--json", "audit"])).stdout).expect("json")
    }
}

/// Starts `vault login …` and returns it with the authorize URL it printed.
pub(super) fn start_login(
    env: &Env,
    args: &[&str],
) -> (Child, String, BufReader<std::process::ChildStderr>) {
    spawn_login(env.vault(args))
}

/// Starts a prepared `vault login` command; see [`start_login`].
pub(super) fn spawn_login(
    mut login: Command,
) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = login
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn login");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    for _ in 0..50 {
        line.clear();
        if err.read_line(&mut line).expect("read stderr") == 0 {
            break;
        }
        if let Some(url) = line
            .trim()
            .strip_prefix("http")
            .map(|rest| format!("http{rest}"))
        {
            return (child, url, err);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("vault login printed no authorize URL (last line: {line})");
}

pub(super) fn finish(child: Child, mut err: BufReader<std::process::ChildStderr>) -> Output {
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let mut out = child.wait_with_output().expect("wait login");
    out.stderr = rest.into_bytes();
    out
}

/// A Claude login with `--paste`: acts as the browser, pastes `code#state`.
pub(super) fn claude_paste_login(env: &Env, args: &[&str]) -> Output {
    let (mut child, url, err) = start_login(env, args);
    let location = env.fake.authorize_redirect(&url);
    let text = format!(
        "{}#{}\n",
        query(&location, "code"),
        query(&location, "state")
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("paste");
    finish(child, err)
}

pub(super) fn query(url: &str, key: &str) -> String {
    let url = url::Url::parse(url).expect("url");
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[test]
fn both_login_flows_store_sealed_tokens_with_identity_and_plan() {
    let env = setup();
    let cases = [
        (
            Prov::OpenAi,
            false,
            "o-loop",
            fake::Identity::new("ada@example.com", "acct-ada", "plus"),
        ),
        (
            Prov::Claude,
            false,
            "c-loop",
            fake::Identity::new("grace@example.com", "uuid-grace", "max"),
        ),
        (
            Prov::OpenAi,
            true,
            "o-paste",
            fake::Identity::new("linus@example.org", "acct-linus", "team"),
        ),
        (
            Prov::Claude,
            true,
            "c-paste",
            fake::Identity::new("mary@example.com", "uuid-mary", "pro"),
        ),
    ];
    for (prov, paste, label, who) in &cases {
        env.fake.set_identity(*prov, who.clone());
        let name = if *prov == Prov::OpenAi {
            "openai"
        } else {
            "claude"
        };
        let mut args = vec!["--json", "login", name, "--label", label];
        if *paste {
            args.push("--paste");
        } else {
            args.extend(["--port", "0", "--timeout", "60"]);
        }
        let (mut child, url, err) = start_login(&env, &args);
        assert_eq!(query(&url, "code_challenge_method"), "S256");
        let location = env.fake.authorize_redirect(&url);
        if *paste {
            // Claude shows `code#state`; for OpenAI the user pastes the address.
            let text = if *prov == Prov::Claude {
                format!(
                    "{}#{}\n",
                    query(&location, "code"),
                    query(&location, "state")
                )
            } else {
                format!("{location}\n")
            };
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("paste");
        } else {
            let (status, _) = fake::http_get(&location);
            assert_eq!(status, 200, "the loopback listener answers the browser");
        }
        let out = finish(child, err);
        assert!(out.status.success(), "{label}: {}", stderr(&out));
        let token = ok(&mut env.vault(&["token", "--account", label]));
        let issued = env
            .fake
            .current_access(*prov, &who.account_id)
            .expect("issued");
        assert_eq!(stdout(&token), format!("{issued}\n"), "{label}");
        // Sealed at rest: the token's bytes are nowhere in the vault file.
        let raw = env.tv.raw();
        raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        let bytes = std::fs::read(&env.tv.path).expect("read");
        assert!(
            !super::common::contains(&bytes, issued.as_bytes()),
            "{label}: token in clear on disk"
        );
    }
    let accounts = env.accounts();
    for (prov, _, label, who) in &cases {
        let a = accounts
            .as_array()
            .expect("list")
            .iter()
            .find(|a| a["label"] == *label)
            .expect("account");
        let want = serde_json::json!({
            "provider": if *prov == Prov::OpenAi { "openai" } else { "claude" },
            "kind": "oauth",
            "email": who.email,
            "provider_account_id": who.account_id,
            "plan": who.plan,
            "needs_login": false,
        });
        let got: serde_json::Value = want
            .as_object()
            .expect("obj")
            .keys()
            .map(|k| (k.clone(), a[k].clone()))
            .collect();
        assert_eq!(got, want, "{label}");
    }
}

#[test]
fn a_wrong_state_a_denied_consent_or_a_timeout_store_nothing() {
    let env = setup();
    let before = env.accounts();
    // Wrong state, pasted.
    let (mut child, url, err) = start_login(&env, &["login", "claude", "--paste"]);
    let location = env.fake.authorize_redirect(&url);
    let forged = format!("{}#not-the-state\n", query(&location, "code"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(forged.as_bytes())
        .expect("paste");
    let out = finish(child, err);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("state does not match"),
        "{}",
        stderr(&out)
    );
    // Denied consent, through the loopback listener.
    env.fake.push_fault(Ep::OpenAiAuthorize, Fault::DenyConsent);
    let (child, url, err) =
        start_login(&env, &["login", "openai", "--port", "0", "--timeout", "60"]);
    let location = env.fake.authorize_redirect(&url);
    assert_eq!(fake::http_get(&location).0, 200);
    let out = finish(child, err);
    assert!(
        stderr(&out).contains("access_denied") && stderr(&out).contains("nothing was stored"),
        "{}",
        stderr(&out)
    );
    // Nobody comes back.
    let (child, _url, err) =
        start_login(&env, &["login", "claude", "--port", "0", "--timeout", "1"]);
    let out = finish(child, err);
    assert!(
        stderr(&out).contains("no answer from the browser"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.accounts(), before);
    assert_eq!(
        env.fake.count(Ep::ClaudeToken) + env.fake.count(Ep::OpenAiToken),
        0,
        "no exchange was attempted"
    );
}

on_both_backends!(
    sixteen_processes_at_once_refresh_exactly_once_per_expiry_twenty_times,
    a_killed_refresh_holder_is_taken_over_after_its_lease_expires,
);

fn sixteen_processes_at_once_refresh_exactly_once_per_expiry_twenty_times(backend: Backend) {
    let env = setup_on(backend);
    let who = fake::Identity::new("fleet@example.com", "uuid-fleet", "max");
    env.login_claude("fleet", &who);
    for round in 0..20 {
        env.expire("fleet");
        let before = env.fake.refreshes(Prov::Claude);
        let children: Vec<Child> = (0..16)
            .map(|_| {
                env.vault(&["token", "--account", "fleet"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        let newest = env
            .fake
            .current_access(Prov::Claude, &who.account_id)
            .expect("issued");
        for (i, out) in outputs.iter().enumerate() {
            assert!(
                out.status.success(),
                "round {round} process {i}: {}",
                stderr(out)
            );
            assert_eq!(
                stdout(out),
                format!("{newest}\n"),
                "round {round} process {i}"
            );
        }
        assert_eq!(
            env.fake.refreshes(Prov::Claude) - before,
            1,
            "round {round}: exactly one refresh"
        );
    }
    assert_eq!(env.fake.invalid_grants(Prov::Claude), 0);
    assert_eq!(env.fake.revoked(Prov::Claude), 0);
    ok(&mut env.vault(&["audit", "verify"]));
}

fn a_killed_refresh_holder_is_taken_over_after_its_lease_expires(backend: Backend) {
    let env = setup_on(backend);
    let who = fake::Identity::new("crash@example.com", "uuid-crash", "pro");
    env.login_claude("crash", &who);
    env.expire("crash");
    // The login's code exchange went to the same endpoint.
    let exchanges = env.fake.count(Ep::ClaudeToken);
    // The holder's request hangs at the provider; then the holder dies.
    env.fake
        .push_fault(Ep::ClaudeToken, Fault::Delay(Duration::from_secs(30)));
    let mut holder = env
        .vault(&["token", "--account", "crash"])
        .env("AUTHVAULT_REFRESH_LEASE_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn holder");
    for _ in 0..500 {
        if env.fake.count(Ep::ClaudeToken) == exchanges + 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        env.fake.count(Ep::ClaudeToken),
        exchanges + 1,
        "the holder reached the provider"
    );
    holder.kill().expect("SIGKILL");
    let _ = holder.wait();
    let out = ok(env
        .vault(&["token", "--account", "crash"])
        .env("AUTHVAULT_REFRESH_LEASE_SECS", "2"));
    let newest = env
        .fake
        .current_access(Prov::Claude, &who.account_id)
        .expect("issued");
    assert_eq!(stdout(&out), format!("{newest}\n"));
    let account = env
        .accounts()
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["label"] == "crash")
        .cloned()
        .expect("account");
    assert_eq!(
        account["needs_login"], false,
        "the server never said the login was dead"
    );
}

#[test]
fn an_identity_switch_on_refresh_is_rejected_and_the_old_tokens_kept() {
    let env = setup();
    let who = fake::Identity::new("ada@example.com", "acct-ada", "plus");
    env.seed(Prov::OpenAi, "ada", &who);
    env.expire_in("ada", chrono::Duration::minutes(2)); // due, still valid
    let sealed = |env: &Env| -> Vec<u8> {
        env.tv
            .raw()
            .query_row(
                "SELECT access_token FROM credentials WHERE kind = 'oauth'",
                [],
                |r| r.get(0),
            )
            .expect("read")
    };
    let before = sealed(&env);
    env.fake.push_fault(Ep::OpenAiToken, Fault::IdentitySwitch);
    let out = fails(&mut env.vault(&["token", "--account", "ada"]));
    assert!(
        stderr(&out).contains("different account") && stderr(&out).contains("ChatGPT account id"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(sealed(&env), before, "old credentials kept");
    let audit = env.audit();
    let rejected = audit.as_array().expect("list").iter().any(|e| {
        e["action"] == "credential.refresh"
            && e["details"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("differs"))
    });
    assert!(rejected, "{audit}");
    // Without the switch, the same login refreshes normally.
    let out = ok(&mut env.vault(&["token", "--account", "ada"]));
    assert_eq!(
        stdout(&out),
        format!(
            "{}\n",
            env.fake
                .current_access(Prov::OpenAi, "acct-ada")
                .expect("issued")
        )
    );
}

#[test]
fn transient_failures_are_retried_within_bounds_and_succeed_when_the_provider_recovers() {
    let env = setup();
    let who = fake::Identity::new("retry@example.com", "uuid-retry", "max");
    env.seed(Prov::Claude, "r", &who);
    let faults = [
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        Fault::Status(500),
        Fault::Overloaded,
    ];
    for fault in faults {
        env.expire("r");
        let before = env.fake.count(Ep::ClaudeToken);
        env.fake.push_fault(Ep::ClaudeToken, fault.clone());
        let out = ok(&mut env.vault(&["token", "--account", "r"]));
        assert_eq!(
            stdout(&out),
            format!(
                "{}\n",
                env.fake
                    .current_access(Prov::Claude, &who.account_id)
                    .expect("issued")
            )
        );
        assert_eq!(
            env.fake.count(Ep::ClaudeToken) - before,
            2,
            "{fault:?}: one failure, one retry"
        );
    }
    // A provider that stays down: bounded attempts; an expired token fails, the login survives.
    env.expire("r");
    let before = env.fake.count(Ep::ClaudeToken);
    for _ in 0..10 {
        env.fake.push_fault(Ep::ClaudeToken, Fault::Status(503));
    }
    let out = fails(&mut env.vault(&["token", "--account", "r"]));
    let attempts = env.fake.count(Ep::ClaudeToken) - before;
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    assert!(stderr(&out).contains("temporarily"), "{}", stderr(&out));
    // A proactive refresh (token still valid) that fails hands out the valid token with a warning.
    env.expire_in("r", chrono::Duration::minutes(3));
    let current = env
        .fake
        .current_access(Prov::Claude, &who.account_id)
        .expect("issued");
    let out = ok(&mut env.vault(&["token", "--account", "r"]));
    assert_eq!(stdout(&out), format!("{current}\n"));
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("using the current token"),
        "{}",
        stderr(&out)
    );
    let a = env.accounts();
    assert_eq!(a[0]["needs_login"], false);
}

#[test]
fn invalid_grant_is_never_retried_and_every_later_call_names_the_fix() {
    let env = setup();
    let who = fake::Identity::new("dead@example.com", "uuid-dead", "pro");
    env.seed(Prov::Claude, "dead", &who);
    env.expire("dead");
    env.fake.push_fault(Ep::ClaudeToken, Fault::InvalidGrant);
    let out = fails(&mut env.vault(&["token", "--account", "dead"]));
    assert!(
        stderr(&out).contains("vault login claude --account dead"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.fake.count(Ep::ClaudeToken), 1, "no retry");
    let out = fails(&mut env.vault(&["token", "--account", "dead"]));
    assert!(
        stderr(&out).contains("vault login claude --account dead"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.fake.count(Ep::ClaudeToken),
        1,
        "a dead login is not tried again"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn api_keys_are_validated_and_a_refused_key_is_not_stored() {
    let env = setup();
    env.fake.register_api_key(Prov::OpenAi, "sk-proj-good");
    env.fake.register_api_key(Prov::Claude, "sk-ant-api03-good");
    let good = with_stdin(
        &mut env.vault(&["login", "openai", "--api-key-stdin", "--label", "good"]),
        b"sk-proj-good",
    );
    assert!(good.status.success(), "{}", stderr(&good));
    let good = with_stdin(
        &mut env.vault(&["login", "claude", "--api-key-stdin", "--label", "cgood"]),
        b"sk-ant-api03-good",
    );
    assert!(good.status.success(), "{}", stderr(&good));
    let bad = with_stdin(
        &mut env.vault(&["login", "openai", "--api-key-stdin", "--label", "bad"]),
        b"sk-proj-bad",
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("HTTP 401") && stderr(&bad).contains("nothing was stored"),
        "{}",
        stderr(&bad)
    );
    assert!(!stderr(&bad).contains("sk-proj-bad"));
    let labels: Vec<_> = env
        .accounts()
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["label"].clone())
        .collect();
    assert_eq!(labels, ["cgood", "good"]);
    // Unreachable provider: stored, with a warning.
    let out = with_stdin(
        &mut env
            .tv
            .cmd_pw(&["login", "openai", "--api-key-stdin", "--label", "offline"]),
        b"sk-proj-offline",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not validated"), "{}", stderr(&out));
}

#[test]
fn subscription_snapshots_come_from_usage_endpoints_and_headers_and_are_cached() {
    let env = setup();
    let claude = fake::Identity::new("max@example.com", "uuid-max", "max");
    env.seed(Prov::Claude, "cmax", &claude);
    env.fake.register_api_key(Prov::OpenAi, "sk-proj-snap");
    let out = with_stdin(
        &mut env.vault(&["login", "openai", "--api-key-stdin", "--label", "okey"]),
        b"sk-proj-snap",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = ok(&mut env.vault(&["--json", "subscription", "--account", "cmax"]));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let snap = &s[0]["snapshot"];
    assert_eq!(snap["source"], "usage_endpoint");
    let names: Vec<_> = snap["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| w["name"].as_str().expect("name"))
        .collect();
    assert!(
        names.contains(&"five_hour") && names.contains(&"seven_day"),
        "{names:?}"
    );
    assert!(snap["windows"][0]["utilization_percent"].is_number());
    assert_eq!(env.fake.count(Ep::ClaudeUsage), 1);
    // Within 15 minutes the stored snapshot answers; --refresh asks again.
    ok(&mut env.vault(&["subscription", "--account", "cmax"]));
    assert_eq!(env.fake.count(Ep::ClaudeUsage), 1, "cached");
    ok(&mut env.vault(&["subscription", "--account", "cmax", "--refresh"]));
    assert_eq!(env.fake.count(Ep::ClaudeUsage), 2);

    let out = ok(&mut env.vault(&["--json", "subscription", "--account", "okey"]));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(s[0]["snapshot"]["source"], "headers");
    let names: Vec<_> = s[0]["snapshot"]["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert!(names.contains(&serde_json::json!("requests")), "{names:?}");
}

#[test]
fn logout_removes_tokens_and_no_command_leaks_an_issued_token() {
    let env = setup();
    let who = fake::Identity::new("leak@example.com", "uuid-leak", "max");
    env.seed(Prov::Claude, "leak", &who);
    env.expire("leak");
    let mut cmds: Vec<Output> = Vec::new();
    for args in [
        &["token", "--account", "leak"][..],
        &["--json", "refresh", "--account", "leak"],
        &["--json", "subscription", "--refresh"],
        &["--json", "accounts"],
        &["--json", "audit"],
        &["--json", "status"],
    ] {
        cmds.push(
            env.vault(args)
                .env("RUST_LOG", "trace")
                .output()
                .expect("run"),
        );
    }
    let issued = env
        .fake
        .current_access(Prov::Claude, &who.account_id)
        .expect("issued");
    for (i, out) in cmds.iter().enumerate() {
        assert!(out.status.success(), "{i}: {}", stderr(out));
        assert!(!stderr(out).contains(&issued), "command {i} logged a token");
        if i > 0 {
            assert!(
                !stdout(out).contains(&issued),
                "command {i} printed a token"
            );
        }
        assert!(
            !stdout(out).contains("sk-ant-ort01") && !stderr(out).contains("sk-ant-ort01"),
            "refresh token shown by command {i}"
        );
    }
    let out = ok(&mut env.vault(&["logout", "--account", "leak"]));
    assert!(stdout(&out).contains("Removed"), "{}", stdout(&out));
    let out = fails(&mut env.vault(&["token", "--account", "leak"]));
    assert!(
        stderr(&out).contains("vault login claude --account leak"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_exchange_stores_nothing_and_relogin_keeps_to_the_same_identity() {
    let env = setup();
    let who = fake::Identity::new("re@example.com", "uuid-re", "max");
    env.fake.set_identity(Prov::Claude, who.clone());
    // The provider refuses the code.
    env.fake.push_fault(Ep::ClaudeToken, Fault::InvalidGrant);
    let out = claude_paste_login(&env, &["login", "claude", "--paste"]);
    assert!(
        !out.status.success() && stderr(&out).contains("invalid_grant"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.accounts(), serde_json::json!([]));

    // Re-login of an existing account replaces its tokens.
    env.seed(Prov::Claude, "mine", &who);
    let login_again =
        |env: &Env| claude_paste_login(env, &["login", "claude", "--paste", "--account", "mine"]);
    let out = login_again(&env);
    assert!(out.status.success(), "{}", stderr(&out));
    let issued = env
        .fake
        .current_access(Prov::Claude, &who.account_id)
        .expect("issued");
    assert_eq!(
        stdout(&ok(&mut env.vault(&["token", "--account", "mine"]))),
        format!("{issued}\n")
    );
    // Logging in as somebody else into that account is refused.
    env.fake
        .push_fault(Ep::ClaudeAuthorize, Fault::IdentitySwitch);
    let out = login_again(&env);
    assert!(
        stderr(&out).contains("different account"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&ok(&mut env.vault(&["token", "--account", "mine"]))),
        format!("{issued}\n"),
        "kept"
    );
    assert_eq!(env.accounts().as_array().expect("list").len(), 1);
}

#[test]
fn chatgpt_plans_come_from_the_usage_endpoint_or_else_the_id_token_claims() {
    let env = setup();
    let who = fake::Identity::new("plan@example.com", "acct-plan", "pro");
    env.seed(Prov::OpenAi, "p", &who);
    let out = ok(&mut env.vault(&["--json", "subscription", "--account", "p"]));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(s[0]["snapshot"]["source"], "usage_endpoint");
    let names: Vec<_> = s[0]["snapshot"]["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(
        names,
        [serde_json::json!("primary"), serde_json::json!("secondary")]
    );
    // The unofficial endpoint refuses: the plan from the id token still answers.
    env.fake.push_fault(Ep::ChatGptUsage, Fault::Status(404));
    let out = ok(&mut env.vault(&["--json", "subscription", "--account", "p", "--refresh"]));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(s[0]["snapshot"]["source"], "id_token");
    assert_eq!(s[0]["snapshot"]["plan"], "pro");
}

#[test]
fn a_new_login_revives_an_account_whose_login_died() {
    let env = setup();
    let who = fake::Identity::new("phoenix@example.com", "uuid-phoenix", "max");
    env.seed(Prov::Claude, "phoenix", &who);
    env.expire("phoenix");
    env.fake.push_fault(Ep::ClaudeToken, Fault::InvalidGrant);
    fails(&mut env.vault(&["token", "--account", "phoenix"]));
    // Logging in again as the same person (no --account) finds the account by identity.
    env.fake.set_identity(Prov::Claude, who.clone());
    let out = claude_paste_login(&env, &["login", "claude", "--paste"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let issued = env
        .fake
        .current_access(Prov::Claude, &who.account_id)
        .expect("issued");
    assert_eq!(
        stdout(&ok(&mut env.vault(&["token", "--account", "phoenix"]))),
        format!("{issued}\n")
    );
    assert_eq!(
        env.accounts().as_array().expect("list").len(),
        1,
        "no duplicate account"
    );
}
