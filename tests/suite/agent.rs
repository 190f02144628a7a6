//! Grants for agents: `vault env` and `vault sessions` as real `vault`
//! processes over a real vault file, against the fake provider on
//! 127.0.0.1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use authvault::model::{Provider, Snapshot, SnapshotSource};
use chrono::Utc;
use serde_json::Value;

use super::common::{TempVault, api_key_account, fails, ok, stderr, wait_or_kill};
use super::fake_provider::{Ep, FakeProvider, Fault, Identity, Prov};

/// Exit status when no account is eligible (README).
const NO_ELIGIBLE_ACCOUNT: i32 = 4;

/// `vault ARGS…` pointed at the fake, with the test passphrase.
fn vault(tv: &TempVault, fake: &FakeProvider, args: &[&str]) -> Command {
    let mut c = tv.cmd_pw(args);
    c.envs(fake.env());
    c
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// A fresh snapshot with nothing used, so the selector trusts it as is.
fn fresh_snapshot(provider: Provider) -> Snapshot {
    Snapshot {
        plan: Some("max".into()),
        ..Snapshot::empty(provider, SnapshotSource::UsageEndpoint, Utc::now())
    }
}

/// A vault with a Claude subscription `max` (a login the fake knows) and a
/// Claude API key `api` and an OpenAI API key `oai`, all with fresh snapshots.
fn vault_with_accounts(fake: &FakeProvider) -> TempVault {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    let id = Identity::new("grace@example.com", "acct-max", "max");
    store
        .add_account(&fake.seeded_account(Prov::Claude, "max", &id))
        .expect("add max");
    store
        .add_account(&api_key_account(Provider::Claude, "api", "sk-ant-api-key"))
        .expect("add api");
    store
        .add_account(&api_key_account(Provider::OpenAi, "oai", "sk-openai-key"))
        .expect("add oai");
    for (label, p) in [
        ("max", Provider::Claude),
        ("api", Provider::Claude),
        ("oai", Provider::OpenAi),
    ] {
        store
            .save_snapshot(label, &fresh_snapshot(p))
            .expect("snapshot");
    }
    tv
}

#[test]
fn env_hands_each_credential_to_the_variables_its_tools_read() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let env = |account: &str| {
        let out = ok(&mut vault(
            &tv,
            &fake,
            &[
                "env",
                "--account",
                account,
                "--format",
                "json",
                "--agent",
                "ci-bot",
            ],
        ));
        json(&out)
    };

    let max = env("max");
    let access = fake
        .current_access(Prov::Claude, "acct-max")
        .expect("the fake issued an access token");
    assert_eq!(max["env"]["CLAUDE_CODE_OAUTH_TOKEN"], access.as_str());
    assert!(max["env"].get("ANTHROPIC_API_KEY").is_none());
    let unset: Vec<&str> = max["unset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        unset.contains(&"ANTHROPIC_API_KEY") && unset.contains(&"OPENAI_API_KEY"),
        "an inherited key must not override the OAuth token: {unset:?}"
    );
    for (name, want) in [
        ("ACTIVE_AUTH_PROVIDER", "claude"),
        ("AGENT_ID", "ci-bot"),
        ("AUTHVAULT_AGENT_ID", "ci-bot"),
        ("AUTHVAULT_ACCOUNT", "max"),
        ("AUTHVAULT_CREDENTIAL", "oauth"),
        ("AUTHVAULT_TIER", "max"),
        ("CLAUDE_AGENT_QUOTA", "0"),
    ] {
        assert_eq!(max["env"][name], want, "{name}");
    }
    assert_eq!(
        max["env"]["AUTHVAULT_RESERVATION"],
        max["reservation"].to_string().as_str()
    );

    let api = env("api");
    assert_eq!(api["env"]["ANTHROPIC_API_KEY"], "sk-ant-api-key");
    assert_eq!(api["env"]["CLAUDE_API_KEY"], "sk-ant-api-key");
    assert!(api["env"].get("CLAUDE_CODE_OAUTH_TOKEN").is_none());

    let oai = env("oai");
    assert_eq!(oai["env"]["OPENAI_API_KEY"], "sk-openai-key");
    assert_eq!(oai["env"]["ACTIVE_AUTH_PROVIDER"], "openai");
    assert_eq!(oai["env"]["OPENAI_AGENT_QUOTA"], "0");
    assert!(oai["env"].get("CLAUDE_AGENT_QUOTA").is_none());
}

#[test]
fn env_prints_shell_lines_that_a_shell_evaluates() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let vault_cmd = vault(&tv, &fake, &[]);
    let program = vault_cmd.get_program().to_owned();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(
            r#"export OPENAI_API_KEY=inherited; eval "$("$0" "$@")" && printf '%s|%s|%s' "$ANTHROPIC_API_KEY" "${OPENAI_API_KEY-unset}" "$AUTHVAULT_ACCOUNT""#,
        )
        .arg(program)
        .args(vault_cmd.get_args())
        .args(["env", "--account", "api"]);
    for (k, v) in vault_cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let out = ok(&mut sh);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sk-ant-api-key|unset|api"
    );
}

#[test]
fn env_refuses_a_chatgpt_login_it_cannot_hand_out_and_an_unknown_account() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let mut store = tv.open_passphrase();
    let id = Identity::new("ada@example.com", "acct-chatgpt", "plus");
    store
        .add_account(&fake.seeded_account(Prov::OpenAi, "chatgpt", &id))
        .expect("add chatgpt");
    drop(store);

    let out = fails(&mut vault(&tv, &fake, &["env", "--account", "chatgpt"]));
    assert_eq!(
        out.status.code(),
        Some(NO_ELIGIBLE_ACCOUNT),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("CODEX_HOME of `vault exec`"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "no variable printed");

    let out = fails(&mut vault(&tv, &fake, &["env", "--account", "nobody"]));
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));
}

#[test]
fn a_subscription_whose_refresh_fails_permanently_is_passed_over_for_the_next_candidate() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    // The subscription's token expires within the refresh margin: serving it
    // means refreshing it first, and the provider says the login is dead.
    {
        let mut store = tv.open_passphrase();
        let id = Identity::new("grace@example.com", "acct-max", "max");
        let mut soon = fake.seeded_account(Prov::Claude, "max", &id);
        if let authvault::model::Credential::OAuth(t) = &mut soon.credentials[0] {
            t.expires_at = Some(Utc::now() + chrono::Duration::seconds(30));
        }
        store
            .set_credential("max", &soon.credentials[0])
            .expect("expiring token");
    }
    fake.push_fault(Ep::ClaudeToken, Fault::InvalidGrant);

    let out = ok(&mut vault(
        &tv,
        &fake,
        &["env", "--format", "json", "--agent", "builder"],
    ));
    let grant = json(&out);
    assert_eq!(grant["account"], "api", "the next candidate serves");
    assert_eq!(
        fake.invalid_grants(Prov::Claude),
        1,
        "the refresh was tried"
    );
    assert!(
        stderr(&out).contains("`max` failed just now"),
        "{}",
        stderr(&out)
    );

    let history = json(&ok(&mut tv.cmd_pw(&["--json", "history"])));
    let rows: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["account"].as_str().unwrap_or("-"),
                h["outcome"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(rows.len(), 2, "{history:#}");
    assert_eq!(rows[0].0, "max");
    assert!(
        rows[0].1.starts_with("failed just now") && rows[0].1.contains("needs a new login"),
        "{rows:?}"
    );
    assert_eq!(rows[1], ("api", "granted"));
    assert_eq!(history[1]["origin"], "selector");
    assert_eq!(history[1]["reservation"], grant["reservation"]);
    let second: Vec<(&str, bool)> = history[1]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["account"].as_str().unwrap(),
                c["eligible"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        second.contains(&("max", false)) && second.contains(&("api", true)),
        "every candidate is recorded: {second:?}"
    );
}

/// Reads a reservation's state straight from the file.
fn reservation_state(tv: &TempVault, id: i64) -> String {
    tv.raw()
        .query_row(
            "SELECT state FROM quota_reservations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .expect("reservation row")
}

fn wait_for_file(path: &Path) {
    for _ in 0..600 {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn a_session_lives_with_its_shell_and_its_reservation_is_released_when_the_shell_dies() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let out_file = tv.vault_dir().with_file_name("env.json");
    let vault_cmd = vault(
        &tv,
        &fake,
        &["--json", "env", "--account", "api", "--tokens", "500"],
    );
    // The shell is the session's process: it runs `vault env`, then waits.
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(r#"out="$1"; shift; "$@" > "$out"; sleep 60"#)
        .arg("sh")
        .arg(&out_file)
        .arg(vault_cmd.get_program())
        .args(vault_cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in vault_cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let mut shell = sh.spawn().expect("spawn sh");
    wait_for_file(&out_file);
    let grant: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let reservation = grant["reservation"].as_i64().unwrap();

    let live = json(&ok(&mut tv.cmd_pw(&["--json", "sessions"])));
    let live = live.as_array().unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["pid"], shell.id());
    assert_eq!(live[0]["account"], "api");
    assert_eq!(live[0]["reservation"], reservation);
    assert_eq!(live[0]["reserved_tokens"], 500);
    assert_eq!(reservation_state(&tv, reservation), "open");

    shell.kill().expect("kill the shell");
    wait_or_kill(&mut shell, Duration::from_secs(10)).expect("the shell ends");

    let after = json(&ok(&mut tv.cmd_pw(&["--json", "sessions"])));
    assert_eq!(
        after,
        serde_json::json!([]),
        "the dead shell's session is closed"
    );
    assert_eq!(reservation_state(&tv, reservation), "released");
}

/// Copies `base`'s program, arguments and environment into a `sh -c SCRIPT`
/// whose `$0 "$@"` is that command.
pub(super) fn via_shell(base: &Command, script: &str, extra: &[&str]) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(script)
        .arg(base.get_program())
        .args(base.get_args())
        .args(extra)
        .stdin(Stdio::null());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

#[test]
fn exec_gives_the_child_the_grant_and_returns_its_exit_status() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let mut exec = vault(
        &tv,
        &fake,
        &[
            "exec",
            "--account",
            "api",
            "--agent",
            "runner",
            "--tokens",
            "700",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s|%s|%s|%s' "$ANTHROPIC_API_KEY" "$AUTHVAULT_ACCOUNT" "$AGENT_ID" "${OPENAI_API_KEY-unset}" "$CLAUDE_AGENT_QUOTA"; exit 7"#,
        ],
    );
    exec.env("OPENAI_API_KEY", "inherited-and-stale");
    let out = exec.output().expect("run vault exec");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sk-ant-api-key|api|runner|unset|700"
    );
    // The session ended with the child, and the unused reservation was released.
    assert_eq!(
        json(&ok(&mut tv.cmd_pw(&["--json", "sessions"]))),
        serde_json::json!([])
    );
    let (state, status): (String, Option<i64>) = tv
        .raw()
        .query_row(
            "SELECT r.state, s.exit_status FROM agent_sessions s
             JOIN quota_reservations r ON r.id = s.reservation_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("one session");
    assert_eq!((state.as_str(), status), ("released", Some(7)));
}

#[test]
fn usage_the_child_commits_stays_committed() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let base = vault(&tv, &fake, &[]);
    // The child is itself `vault commit "$AUTHVAULT_RESERVATION"`, through the
    // same binary and vault.
    let mut sh = via_shell(
        &base,
        r#""$0" "$@" exec --account max --tokens 1000 -- sh -c '"$0" "$@" commit "$AUTHVAULT_RESERVATION" --input 300 --output 200' "$0" "$@""#,
        &[],
    );
    let out = ok(&mut sh);
    let (state, used): (String, i64) = tv
        .raw()
        .query_row(
            "SELECT state, used_tokens FROM quota_reservations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!((state.as_str(), used), ("committed", 500));
}

#[test]
fn sigterm_sent_to_vault_exec_reaches_the_child() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let got = dir.path().join("got");
    let script = format!(
        r#"trap 'echo TERM > "{got}"; exit 42' TERM; echo up > "{ready}"; while :; do sleep 0.05; done"#,
        got = got.display(),
        ready = ready.display()
    );
    let mut child = vault(
        &tv,
        &fake,
        &["exec", "--account", "api", "--", "sh", "-c", &script],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn vault exec");
    wait_for_file(&ready);
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal vault");
    let status = wait_or_kill(&mut child, Duration::from_secs(20)).expect("vault exec ends");
    assert_eq!(
        status.code(),
        Some(42),
        "the child's trap decided the status"
    );
    assert_eq!(std::fs::read_to_string(&got).expect("trap ran"), "TERM\n");
}

#[test]
fn a_child_killed_by_a_signal_gives_128_plus_the_signal() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let out = vault(
        &tv,
        &fake,
        &[
            "exec",
            "--account",
            "api",
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(128 + 9), "{}", stderr(&out));
}

#[test]
fn a_command_that_does_not_exist_exits_127_and_frees_its_reservation() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let out = vault(
        &tv,
        &fake,
        &["exec", "--account", "api", "--", "no-such-program-here"],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-program-here"),
        "{}",
        stderr(&out)
    );
    let state: String = tv
        .raw()
        .query_row("SELECT state FROM quota_reservations", [], |r| r.get(0))
        .expect("reservation");
    assert_eq!(state, "released");
}

/// A vault with one ChatGPT login `chatgpt` of `who` (with an id token, as
/// Codex needs) and a fresh snapshot.
fn chatgpt_vault(fake: &FakeProvider, who: &Identity) -> TempVault {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&fake.seeded_chatgpt_account("chatgpt", who))
        .expect("add chatgpt");
    store
        .save_snapshot("chatgpt", &fresh_snapshot(Provider::OpenAi))
        .expect("snapshot");
    tv
}

/// What Codex writes after refreshing `who`'s login.
fn rotated_auth_json(fake: &FakeProvider, who: &Identity) -> (String, Vec<u8>) {
    use authvault::model::{Credential, CredentialKind};
    use secrecy::ExposeSecret;
    let Credential::OAuth(mut t) = fake.seeded_chatgpt_account("x", who).credentials.remove(0)
    else {
        unreachable!("a ChatGPT login")
    };
    t.last_refresh = Some(Utc::now() + chrono::Duration::seconds(5));
    let bytes = authvault::import::export::codex_auth_json(
        Some(&t),
        None,
        Some(&who.account_id),
        CredentialKind::OAuth,
    )
    .as_bytes()
    .to_vec();
    (t.access_token.expose_secret().to_owned(), bytes)
}

/// `vault exec --account chatgpt` of a child that reports its `CODEX_HOME`
/// (path and modes) and replaces `auth.json` with `new_auth`, as Codex does.
fn exec_codex_child(
    tv: &TempVault,
    fake: &FakeProvider,
    new_auth: &Path,
    report: &Path,
) -> std::process::Output {
    let script = format!(
        r#"stat -c '%a %n' "$CODEX_HOME" "$CODEX_HOME/auth.json" > "{report}"; rm "$CODEX_HOME/auth.json"; cp "{new}" "$CODEX_HOME/auth.json""#,
        report = report.display(),
        new = new_auth.display()
    );
    vault(
        tv,
        fake,
        &["exec", "--account", "chatgpt", "--", "sh", "-c", &script],
    )
    .output()
    .expect("run vault exec")
}

fn vault_access_token(tv: &TempVault) -> String {
    use authvault::model::{Credential, CredentialKind};
    use secrecy::ExposeSecret;
    match tv
        .open_passphrase()
        .credential("chatgpt", CredentialKind::OAuth, "test")
        .expect("credential")
        .1
    {
        Credential::OAuth(t) => t.access_token.expose_secret().to_owned(),
        Credential::ApiKey(_) => unreachable!("an OAuth login"),
    }
}

#[test]
fn a_codex_token_rotation_inside_exec_lands_in_the_vault_and_the_private_home_is_gone() {
    let fake = FakeProvider::start();
    let who = Identity::new("ada@example.com", "acct-ada", "plus");
    let tv = chatgpt_vault(&fake, &who);
    let dir = tempfile::tempdir().expect("tempdir");
    let (new_access, bytes) = rotated_auth_json(&fake, &who);
    let new_auth = dir.path().join("new-auth.json");
    std::fs::write(&new_auth, bytes).expect("write");
    let report = dir.path().join("report");
    let before = vault_access_token(&tv);

    let out = exec_codex_child(&tv, &fake, &new_auth, &report);
    assert!(out.status.success(), "{}", stderr(&out));

    let report = std::fs::read_to_string(&report).expect("the child reported");
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].starts_with("700 ") && lines[1].starts_with("600 "),
        "{report}"
    );
    let home = Path::new(lines[0].split_once(' ').unwrap().1);
    assert!(home.starts_with(tv.vault_dir()), "{}", home.display());
    assert!(!home.exists(), "the private CODEX_HOME is removed");
    assert_ne!(before, new_access);
    assert_eq!(
        vault_access_token(&tv),
        new_access,
        "the rotated token is the vault's now"
    );
    let leftovers = super::common::files_below(tv.vault_dir());
    assert!(
        leftovers
            .iter()
            .all(|p| p.file_name().is_none_or(|n| n != "auth.json")),
        "no credential file is left: {leftovers:?}"
    );
}

#[test]
fn another_identitys_tokens_written_by_the_child_are_refused_with_a_warning() {
    let fake = FakeProvider::start();
    let who = Identity::new("ada@example.com", "acct-ada", "plus");
    let tv = chatgpt_vault(&fake, &who);
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, bytes) = rotated_auth_json(&fake, &who.switched());
    let new_auth = dir.path().join("other-auth.json");
    std::fs::write(&new_auth, bytes).expect("write");
    let before = vault_access_token(&tv);

    let out = exec_codex_child(&tv, &fake, &new_auth, &dir.path().join("report"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tokens of another ChatGPT account"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        vault_access_token(&tv),
        before,
        "the vault keeps its own tokens"
    );
}

/// Gives `max` a token expiring in `expires_in`, last refreshed `ago`.
fn expiring_max(tv: &TempVault, fake: &FakeProvider, expires_in: i64, ago: i64) {
    let mut store = tv.open_passphrase();
    let id = Identity::new("grace@example.com", "acct-max", "max");
    let mut login = fake.seeded_account(Prov::Claude, "max", &id);
    if let authvault::model::Credential::OAuth(t) = &mut login.credentials[0] {
        t.expires_at = Some(Utc::now() + chrono::Duration::minutes(expires_in));
        t.last_refresh = Some(Utc::now() - chrono::Duration::minutes(ago));
    }
    store
        .set_credential("max", &login.credentials[0])
        .expect("set credential");
}

#[test]
fn a_claude_token_handed_to_a_task_is_refreshed_first_unless_it_lasts_an_hour() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let grant = |tv: &TempVault| {
        json(&ok(&mut vault(
            tv,
            &fake,
            &["env", "--account", "max", "--format", "json"],
        )))
    };
    // Half an hour left, refreshed two hours ago: refreshed before it is handed out.
    expiring_max(&tv, &fake, 30, 120);
    let refreshed = grant(&tv);
    assert_eq!(fake.refreshes(Prov::Claude), 1);
    let newest = fake
        .current_access(Prov::Claude, "acct-max")
        .expect("issued");
    assert_eq!(refreshed["env"]["CLAUDE_CODE_OAUTH_TOKEN"], newest.as_str());

    // Half an hour left but refreshed ten minutes ago (a short-lived login):
    // handed out as is, not refreshed on every grant.
    expiring_max(&tv, &fake, 30, 10);
    grant(&tv);
    assert_eq!(fake.refreshes(Prov::Claude), 1);
}

/// Codex's rollout of the usage-formats reference: a session start, a turn
/// with its model, a rate-limit-only event and two responses.
pub(super) const ROLLOUT: &str = r#"{"timestamp":"2025-10-17T05:50:00.100Z","type":"session_meta","payload":{"id":"0199f0a1-1111-7222-8333-944445555666","timestamp":"2025-10-17T05:50:00.000Z","cwd":"/home/u/demo","originator":"codex_cli_rs","cli_version":"0.46.0","instructions":null,"source":"cli","model_provider":"openai"}}
{"timestamp":"2025-10-17T05:50:05.000Z","type":"turn_context","payload":{"cwd":"/home/u/demo","approval_policy":"on-request","sandbox_policy":{"mode":"workspace-write","network_access":false,"exclude_tmpdir_env_var":false,"exclude_slash_tmp":false},"model":"gpt-5-codex","effort":"medium","summary":"auto"}}
{"timestamp":"2025-10-17T05:50:06.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"primary":{"used_percent":7.0,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":31.0,"window_minutes":10080,"resets_at":1761100000}}}}
{"timestamp":"2025-10-17T05:50:20.209Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":20304,"cached_input_tokens":16896,"output_tokens":1183,"reasoning_output_tokens":832,"total_tokens":21487},"last_token_usage":{"input_tokens":20304,"cached_input_tokens":16896,"output_tokens":1183,"reasoning_output_tokens":832,"total_tokens":21487},"model_context_window":272000},"rate_limits":{"primary":{"used_percent":8.0,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":31.0,"window_minutes":10080,"resets_at":1761100000}}}}
{"timestamp":"2025-10-17T05:54:20.209Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":26549,"cached_input_tokens":22272,"output_tokens":1590,"reasoning_output_tokens":1152,"total_tokens":28139},"last_token_usage":{"input_tokens":6245,"cached_input_tokens":5376,"output_tokens":407,"reasoning_output_tokens":320,"total_tokens":6652},"model_context_window":272000},"rate_limits":{"primary":{"used_percent":9.0,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":31.0,"window_minutes":10080,"resets_at":1761100000}}}}
"#;

#[test]
fn a_codex_run_under_exec_is_its_accounts_usage_and_its_rollout_joins_the_real_history() {
    let fake = FakeProvider::start();
    let who = Identity::new("ada@example.com", "acct-ada", "plus");
    let tv = chatgpt_vault(&fake, &who);
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("codex");
    let old = real.join("sessions/2025/10/16/rollout-old.jsonl");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, "{}\n").unwrap();
    let source = dir.path().join("rollout.jsonl");
    std::fs::write(&source, ROLLOUT).unwrap();
    let relative =
        "2025/10/17/rollout-2025-10-17T05-50-00-0199f0a1-1111-7222-8333-944445555666.jsonl";
    // The child writes its rollout where Codex does: below $CODEX_HOME/sessions.
    let script = format!(
        r#"test ! -L "$CODEX_HOME/sessions" && f="$CODEX_HOME/sessions/{relative}" && mkdir -p "$(dirname "$f")" && cp "{src}" "$f""#,
        src = source.display()
    );
    let run = |args: &[&str]| {
        let mut c = vault(&tv, &fake, args);
        c.env("CODEX_HOME", &real);
        c
    };
    let out = run(&[
        "exec",
        "--account",
        "chatgpt",
        "--agent",
        "bot",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .output()
    .expect("run vault exec");
    assert!(out.status.success(), "{}", stderr(&out));

    // The rollout moved to the same place in the real home; the old one stays.
    assert_eq!(
        std::fs::read_to_string(real.join("sessions").join(relative)).unwrap(),
        ROLLOUT
    );
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "{}\n");
    // Its usage is the granted account's and agent's (ccusage's figures for
    // these lines: 4,277 non-cached input, 22,272 cached, 1,590 output).
    let daily = |extra: &[&str]| {
        let mut args = vec!["--json", "usage", "daily", "--timezone", "UTC"];
        args.extend_from_slice(extra);
        json(&ok(&mut run(&args)))
    };
    let v = daily(&["--by", "account,agent"]);
    let rows = v["daily"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    let r = &rows[0];
    assert_eq!(
        (
            r["account"].as_str(),
            r["agent"].as_str(),
            r["inputTokens"].as_u64(),
            r["cacheReadTokens"].as_u64(),
            r["outputTokens"].as_u64()
        ),
        (
            Some("chatgpt"),
            Some("bot"),
            Some(4277),
            Some(22_272),
            Some(1590)
        )
    );
    // Importing the real home later finds the moved rollout already stored.
    let import = json(&ok(&mut run(&["--json", "usage", "import", "codex"])));
    assert_eq!(import["written"]["added"].as_u64(), Some(0), "{import}");
    assert_eq!(
        daily(&["--account", "chatgpt"])["totals"]["inputTokens"].as_u64(),
        Some(4277)
    );
}

/// A fake Claude Code: appends one turn of session `$1` (a user line and an
/// assistant line with usage, both stamped now and carrying `cwd`) to the
/// transcript of the physical working directory, where Claude Code keeps
/// it: `$CLAUDE_CONFIG_DIR/projects/<cwd, every non-alphanumeric made ->/`.
/// With `$2` = `statusline` it then runs `vault statusline` on that
/// transcript, as Claude Code runs its status line; with `import`, `vault
/// usage import claude-code`. Either way it saves `vault --json usage
/// session --by account` to `$3`, what the vault knew during the run.
const FAKE_CLAUDE: &str = r#"#!/bin/sh
set -e
session="$1"; cwd="$(pwd -P)"
dir="$CLAUDE_CONFIG_DIR/projects/$(printf %s "$cwd" | tr -c 'a-zA-Z0-9' '-')"
mkdir -p "$dir"; file="$dir/$session.jsonl"
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
printf '{"type":"user","cwd":"%s","sessionId":"%s","timestamp":"%s","message":{"role":"user","content":"hi"}}\n' "$cwd" "$session" "$(now)" >> "$file"
printf '{"type":"assistant","cwd":"%s","sessionId":"%s","timestamp":"%s","requestId":"req-%s","message":{"id":"msg-%s","model":"claude-sonnet-4-20250514","usage":{"input_tokens":100,"output_tokens":200}}}\n' "$cwd" "$session" "$(now)" "$session" "$session" >> "$file"
case "$2" in
statusline) printf '{"session_id":"%s","transcript_path":"%s"}' "$session" "$file" | "$VAULT" --vault "$VAULT_FILE" statusline >/dev/null ;;
import) "$VAULT" --vault "$VAULT_FILE" usage import claude-code >/dev/null ;;
esac
if [ -n "$3" ]; then "$VAULT" --vault "$VAULT_FILE" --json usage session --by account > "$3"; fi
"#;

/// A directory for fake Claude Code runs: the fake's script, a
/// `CLAUDE_CONFIG_DIR`, and working directories.
struct ClaudeRuns {
    dir: tempfile::TempDir,
}

impl ClaudeRuns {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("fake-claude");
        std::fs::write(&script, FAKE_CLAUDE).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let runs = Self { dir };
        std::fs::create_dir_all(runs.config()).unwrap();
        runs
    }

    fn script(&self) -> String {
        self.dir.path().join("fake-claude").display().to_string()
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("claude")
    }

    /// A working directory (created), by its physical path.
    fn work(&self, name: &str) -> std::path::PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    /// Where Claude Code keeps `session`'s transcript when run in `work`.
    fn transcript(&self, work: &Path, session: &str) -> std::path::PathBuf {
        let project: String = work
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.config()
            .join("projects")
            .join(project)
            .join(format!("{session}.jsonl"))
    }

    /// `vault ARGS…` in `work`, with this `CLAUDE_CONFIG_DIR`, and the
    /// binary and vault file for the fake to call back.
    fn vault(&self, tv: &TempVault, fake: &FakeProvider, work: &Path, args: &[&str]) -> Command {
        let mut c = vault(tv, fake, args);
        c.current_dir(work)
            .env("CLAUDE_CONFIG_DIR", self.config())
            .env("VAULT", env!("CARGO_BIN_EXE_vault"))
            .env("VAULT_FILE", &tv.path);
        c
    }

    /// `vault exec --account ACCOUNT --agent AGENT -- sh -c SCRIPT` in `work`.
    fn exec(
        &self,
        tv: &TempVault,
        fake: &FakeProvider,
        work: &Path,
        account: &str,
        agent: &str,
        script: &str,
    ) -> std::process::Output {
        let out = self
            .vault(
                tv,
                fake,
                work,
                &[
                    "exec",
                    "--account",
                    account,
                    "--agent",
                    agent,
                    "--",
                    "sh",
                    "-c",
                    script,
                ],
            )
            .env("FAKE_CLAUDE", self.script())
            .output()
            .expect("run vault exec");
        assert!(out.status.success(), "{}", stderr(&out));
        out
    }

    /// Each Claude Code session's (account, agent) as `vault usage session`
    /// reports them (`-`: unattributed), with its input tokens.
    fn attribution(
        &self,
        tv: &TempVault,
        fake: &FakeProvider,
    ) -> std::collections::BTreeMap<String, (String, String, u64)> {
        let work = self.work("reports");
        let v = json(&ok(&mut self.vault(
            tv,
            fake,
            &work,
            &["--json", "usage", "session", "--by", "account,agent"],
        )));
        v["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| {
                (
                    s["sessionId"].as_str().unwrap().to_owned(),
                    (
                        s["account"].as_str().unwrap().to_owned(),
                        s["agent"].as_str().unwrap().to_owned(),
                        s["inputTokens"].as_u64().unwrap(),
                    ),
                )
            })
            .collect()
    }
}

fn attributed(account: &str, agent: &str, input: u64) -> (String, String, u64) {
    (account.to_owned(), agent.to_owned(), input)
}

const S1: &str = "11111111-1111-4111-8111-111111111111";
const S2: &str = "22222222-2222-4222-8222-222222222222";
const S3: &str = "33333333-3333-4333-8333-333333333333";

#[test]
fn a_claude_code_run_alone_in_its_directory_is_its_accounts_and_agents_usage() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let runs = ClaudeRuns::new();
    let work = runs.work("project");
    runs.exec(
        &tv,
        &fake,
        &work,
        "max",
        "coder",
        &format!(r#""$FAKE_CLAUDE" {S1}"#),
    );
    runs.exec(
        &tv,
        &fake,
        &work,
        "api",
        "reviewer",
        &format!(r#""$FAKE_CLAUDE" {S2}"#),
    );
    let got = runs.attribution(&tv, &fake);
    assert_eq!(got[S1], attributed("max", "coder", 100), "{got:?}");
    assert_eq!(got[S2], attributed("api", "reviewer", 100), "{got:?}");
}

#[test]
fn two_claude_code_runs_at_once_in_one_directory_stay_unattributed() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let runs = ClaudeRuns::new();
    let work = runs.work("project");
    // The outer run's child starts a second run in the same directory.
    let script = format!(
        r#""$FAKE_CLAUDE" {S1} && "$VAULT" --vault "$VAULT_FILE" exec --account api --agent inner -- sh -c '"$FAKE_CLAUDE" {S2}'"#
    );
    runs.exec(&tv, &fake, &work, "max", "outer", &script);
    // A run there afterwards, alone, is attributed.
    runs.exec(
        &tv,
        &fake,
        &work,
        "max",
        "after",
        &format!(r#""$FAKE_CLAUDE" {S3}"#),
    );
    let got = runs.attribution(&tv, &fake);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[S1], attributed("-", "-", 100), "{got:?}");
    assert_eq!(got[S2], attributed("-", "-", 100), "{got:?}");
    assert_eq!(got[S3], attributed("max", "after", 100), "{got:?}");
}

#[test]
fn a_claude_code_session_that_started_before_the_run_stays_unattributed() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let runs = ClaudeRuns::new();
    let work = runs.work("project");
    // An hour ago, outside any run, the session began here.
    let file = runs.transcript(&work, S1);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let earlier = (Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::fs::write(
        &file,
        format!(
            "{}\n",
            serde_json::json!({"type": "user", "cwd": work, "sessionId": S1,
                "timestamp": earlier, "message": {"role": "user", "content": "hi"}})
        ),
    )
    .unwrap();
    // The run resumes it, and starts another.
    let script = format!(r#""$FAKE_CLAUDE" {S1} && "$FAKE_CLAUDE" {S2}"#);
    runs.exec(&tv, &fake, &work, "max", "coder", &script);
    let got = runs.attribution(&tv, &fake);
    assert_eq!(got[S1], attributed("-", "-", 100), "{got:?}");
    assert_eq!(got[S2], attributed("max", "coder", 100), "{got:?}");
}

#[test]
fn usage_imported_during_the_run_is_attributed_when_it_ends_and_later_imports_keep_that() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let runs = ClaudeRuns::new();
    let work = runs.work("project");
    let during = runs.dir.path().join("during-1.json");
    runs.exec(
        &tv,
        &fake,
        &work,
        "max",
        "coder",
        &format!(r#""$FAKE_CLAUDE" {S1} statusline {}"#, during.display()),
    );
    let during2 = runs.dir.path().join("during-2.json");
    runs.exec(
        &tv,
        &fake,
        &work,
        "api",
        "reviewer",
        &format!(r#""$FAKE_CLAUDE" {S2} import {}"#, during2.display()),
    );
    // During each run, its events were already stored, unattributed.
    for (file, session) in [(&during, S1), (&during2, S2)] {
        let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let row = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["sessionId"] == session)
            .unwrap_or_else(|| panic!("{session} stored during its run: {v}"));
        assert_eq!(row["account"], "-", "{v}");
    }
    let got = runs.attribution(&tv, &fake);
    assert_eq!(got[S1], attributed("max", "coder", 100), "{got:?}");
    assert_eq!(got[S2], attributed("api", "reviewer", 100), "{got:?}");

    // Claude Code writes a larger copy of the same response later; an
    // import without --account takes its tokens and keeps the attribution.
    let file = runs.transcript(&work, S1);
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text
        .lines()
        .last()
        .unwrap()
        .replace(r#""input_tokens":100"#, r#""input_tokens":150"#);
    std::fs::write(&file, format!("{text}{last}\n")).unwrap();
    ok(&mut runs.vault(&tv, &fake, &work, &["usage", "import", "claude-code"]));
    let got = runs.attribution(&tv, &fake);
    assert_eq!(got[S1], attributed("max", "coder", 150), "{got:?}");
    assert_eq!(got[S2], attributed("api", "reviewer", 100), "{got:?}");
}

#[test]
fn a_claude_code_session_of_another_directory_is_not_touched() {
    let fake = FakeProvider::start();
    let tv = vault_with_accounts(&fake);
    let runs = ClaudeRuns::new();
    let work = runs.work("project");
    let other = runs.work("elsewhere");
    // During the run, Claude Code also works in another directory.
    let script = format!(
        r#""$FAKE_CLAUDE" {S1} && cd "{}" && "$FAKE_CLAUDE" {S3}"#,
        other.display()
    );
    runs.exec(&tv, &fake, &work, "max", "coder", &script);
    ok(&mut runs.vault(&tv, &fake, &work, &["usage", "import", "claude-code"]));
    let got = runs.attribution(&tv, &fake);
    assert_eq!(got[S1], attributed("max", "coder", 100), "{got:?}");
    assert_eq!(got[S3], attributed("-", "-", 100), "{got:?}");
}
