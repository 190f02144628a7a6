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
        provider,
        plan: Some("max".into()),
        status: None,
        windows: Vec::new(),
        credits: None,
        source: SnapshotSource::UsageEndpoint,
        fetched_at: Utc::now(),
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
