//! `vault dashboard` in a real terminal: tmux runs the real binary at
//! 120×40 and 80×24 on a vault whose subscriptions' snapshots come from the
//! fake provider; the tests read the screen with `capture-pane`, press keys
//! with `send-keys`, and check what the vault and the fake saw. Usage
//! history recorded through the store before the start shows in the usage
//! panel. Waits poll the screen with a deadline that only detects a hang.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authvault::model::Provider;
use authvault::store::UsageEvent;
use authvault::usage::{Source, Tokens};
use chrono::Utc;

use super::common::{PASSPHRASE, ok, stderr, stdout};
use super::fake_provider::{self as fake, Ep, Prov};
use super::login_hardening::{fake_opener, refresh_target, wait_for};
use super::providers::{Env, query, setup};

/// Longest a screen may take to show what a test waits for: a hang, not speed.
const HANG: Duration = Duration::from_secs(30);
/// The marker in every API key of these tests; the fake's own tokens carry
/// the prefixes in [`SECRET_PREFIXES`].
const MARKER: &str = "DASHCANARY7e1";
const SECRET_PREFIXES: [&str; 4] = ["sk-ant-oat01-", "sk-ant-ort01-", "rt_", "eyJ"];

/// A tmux server of its own (its own socket, no configuration file), killed
/// when dropped.
struct Tmux {
    socket: String,
    /// Every screen captured, for the canary scan.
    screens: Vec<String>,
}

impl Tmux {
    fn start(width: u16, height: u16, script: &Path) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "authvault-dash-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Self {
            socket,
            screens: Vec::new(),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let out = tmux
            .cmd(&["new-session", "-d", "-s", "dash", "-x", &w, "-y", &h])
            .arg(format!("sh {}", script.display()))
            .output()
            .expect("run tmux (scripts/test.sh installs it)");
        assert!(out.status.success(), "tmux: {}", stderr(&out));
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    fn screen(&mut self) -> String {
        let out = ok(&mut self.cmd(&["capture-pane", "-p", "-t", "dash"]));
        let screen = stdout(&out);
        self.screens.push(screen.clone());
        screen
    }

    fn keys(&self, keys: &str) {
        ok(&mut self.cmd(&["send-keys", "-t", "dash", keys]));
    }

    /// The processes below the pane's shell that exited without being
    /// reaped, as `(pid, state, parent)` from `/proc`.
    fn zombies(&self) -> Vec<(u32, char, u32)> {
        let out = ok(&mut self.cmd(&["display-message", "-p", "-t", "dash", "#{pane_pid}"]));
        let shell: u32 = stdout(&out).trim().parse().expect("the pane's pid");
        let processes: Vec<(u32, char, u32)> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|entry| {
                let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // `pid (name) state ppid …`; the name may hold anything but
                // ends at the last `)`.
                let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
                let state = rest.next()?.chars().next()?;
                let parent = rest.next()?.parse().ok()?;
                Some((pid, state, parent))
            })
            .collect();
        let dashboards: Vec<u32> = processes
            .iter()
            .filter(|p| p.2 == shell)
            .map(|p| p.0)
            .collect();
        processes
            .into_iter()
            .filter(|p| dashboards.contains(&p.2) && p.1 == 'Z')
            .collect()
    }

    /// Polls the screen until `done` holds; panics with the last screen on a hang.
    fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < HANG,
                "the screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).output();
    }
}

/// One response of `model` just now, costing `cents`, of `account` or
/// unattributed.
fn response(identity: &str, account: Option<&str>, model: &str, cents: u64) -> UsageEvent {
    UsageEvent {
        at: Utc::now(),
        provider: Provider::Claude,
        account: account.map(str::to_owned),
        model: model.into(),
        agent: None,
        task_type: None,
        session: Some("s1".into()),
        project: None,
        source: Source::ClaudeCode,
        tokens: Tokens {
            input: 100,
            output: 10,
            ..Tokens::default()
        },
        cost_pico: cents * 10_000_000_000,
        price_version: None,
        identity: identity.into(),
    }
}

/// Two Claude subscriptions, a ChatGPT subscription and a Claude API key,
/// with snapshots stored by one `vault health` against the fake, and usage
/// of today: $1.00 of `claude-a` on `opus-x`, $0.25 unattributed on
/// `haiku-y`.
fn vault_with_accounts() -> Env {
    let env = setup();
    let mut store = env.tv.open_passphrase();
    for (prov, label, email, id, plan) in [
        (Prov::Claude, "claude-a", "a@example.com", "uuid-a", "max"),
        (Prov::Claude, "claude-b", "b@example.com", "uuid-b", "pro"),
        (Prov::OpenAi, "chatgpt", "c@example.com", "acct-c", "plus"),
    ] {
        let who = fake::Identity::new(email, id, plan);
        store
            .add_account(&env.fake.seeded_account(prov, label, &who))
            .expect("add subscription");
    }
    let key = format!("sk-ant-api03-{MARKER}");
    env.fake.register_api_key(Prov::Claude, &key);
    store
        .add_account(&super::common::api_key_account(
            authvault::model::Provider::Claude,
            "claude-key",
            &key,
        ))
        .expect("add API key");
    store
        .record_usage(
            &[
                response("r1", Some("claude-a"), "opus-x", 100),
                response("r2", None, "haiku-y", 25),
            ],
            &[],
        )
        .expect("record usage");
    drop(store);
    ok(&mut env.vault(&["health"]));
    env
}

/// A script that records `stty -a`, runs the dashboard with the vault's
/// environment (every endpoint on the fake; with `opener`, a display and
/// the fake `xdg-open` in that directory), records `stty -a` again and says
/// how the dashboard exited.
fn script(env: &Env, dir: &Path, opener: Option<&Path>) -> PathBuf {
    let cmd = env.vault(&["dashboard", "--interval", "1"]);
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let mut lines: Vec<String> = cmd
        .get_envs()
        .map(|(name, value)| {
            let name = name.to_string_lossy();
            value.map_or_else(
                || format!("unset {name}"),
                |v| format!("export {name}={}", quote(v)),
            )
        })
        .collect();
    if let Some(bin) = opener {
        lines.push("export DISPLAY=:99".into());
        lines.push(format!("export PATH={}:\"$PATH\"", quote(bin.as_os_str())));
    }
    let before = dir.join("stty-before");
    let after = dir.join("stty-after");
    lines.push(format!("stty -a > {}", quote(before.as_os_str())));
    lines.push(
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" "),
    );
    lines.push("status=$?".into());
    lines.push(format!("stty -a > {}", quote(after.as_os_str())));
    lines.push("echo \"dashboard exited with $status\"".into());
    lines.push("exec sleep 600".into());
    let text = lines.join("\n") + "\n";
    let path = dir.join("dashboard.sh");
    std::fs::write(&path, text).expect("write script");
    path
}

fn policy(env: &Env) -> serde_json::Value {
    let out = ok(&mut env.vault(&["--json", "policy", "show"]));
    serde_json::from_slice(&out.stdout).expect("policy JSON")
}

fn stored_strategy(env: &Env) -> String {
    policy(env)["strategy"]
        .as_str()
        .expect("strategy")
        .to_owned()
}

/// Whether `vault accounts --json` lists `label` as enabled.
fn enabled(env: &Env, label: &str) -> bool {
    let out = ok(&mut env.vault(&["--json", "accounts"]));
    let accounts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("accounts JSON");
    accounts
        .as_array()
        .expect("a list")
        .iter()
        .find(|a| a["label"] == label)
        .expect("the account is listed")["enabled"]
        .as_bool()
        .expect("enabled")
}

/// The line of the accounts table that names `label`.
fn row<'a>(screen: &'a str, label: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.starts_with('│') && l.contains(&format!(" {label} ")))
}

/// Everything the issue asks of one terminal size.
fn drive(width: u16, height: u16) {
    let env = vault_with_accounts();
    let dir = tempfile::tempdir().expect("tempdir");
    let opener = fake_opener(dir.path());
    let mut tmux = Tmux::start(width, height, &script(&env, dir.path(), Some(&opener)));

    // Every account, subscriptions with the fake's utilization.
    let want = [
        ("claude-a", Some(("12%", "34%"))),
        ("claude-b", Some(("12%", "34%"))),
        ("chatgpt", Some(("25%", "40%"))),
        ("claude-key", None),
    ];
    let screen = tmux.wait_for("every account with its utilization", |s| {
        want.iter().all(|(label, usage)| {
            row(s, label).is_some_and(|r| {
                usage.is_none_or(|(five, seven)| r.contains(five) && r.contains(seven))
            })
        })
    });
    assert!(screen.contains("Accounts (4)"), "{screen}");

    // Today's usage, by account then (`u`) by model; the unattributed
    // share as such. All of it is in the active block.
    // (Waits are on the whole panel: a capture may catch a frame half drawn.)
    let share = |s: &str, name: &str, cost: &str| {
        s.lines()
            .any(|l| l.contains(&format!("│{name} ")) && l.contains(&format!("{cost}│")))
    };
    tmux.wait_for("today's usage by account", |s| {
        s.contains("Usage 30d by account")
            && s.contains("today $1.25")
            && s.contains("block $1.25 ends")
            && share(s, "claude-a", "$1.00")
            && share(s, "unattributed", "$0.25")
    });
    tmux.keys("u");
    tmux.wait_for("today's usage by model", |s| {
        s.contains("Usage 30d by model")
            && share(s, "opus-x", "$1.00")
            && share(s, "haiku-y", "$0.25")
    });

    // `3` stores cost-optimized, as `vault policy set strategy` would.
    assert_eq!(stored_strategy(&env), "prefer-claude");
    tmux.keys("3");
    tmux.wait_for("strategy cost-optimized", |s| {
        s.contains("(x) cost-optimized")
    });
    assert_eq!(stored_strategy(&env), "cost-optimized");

    // `r` on the selected account (the first row, claude-a): one usage request.
    let usage_before = env.fake.count(Ep::ClaudeUsage);
    tmux.keys("r");
    tmux.wait_for("the refresh's outcome", |s| {
        s.contains("Refreshed the usage of `claude-a`")
    });
    assert_eq!(env.fake.count(Ep::ClaudeUsage), usage_before + 1);

    // `h` probes every account (the fake accepts them all), each answer
    // delayed so that the progress line can be seen.
    for ep in [Ep::ClaudeUsage, Ep::ChatGptUsage, Ep::AnthropicModels] {
        env.fake
            .push_fault(ep, fake::Fault::Delay(Duration::from_secs(2)));
    }
    tmux.keys("h");
    tmux.wait_for("the health check's progress", |s| {
        s.contains("health check of 4 enabled accounts, 8 at a time")
    });
    tmux.wait_for("the health check's outcome", |s| {
        s.contains("Health check: 4 of 4 accounts answered ok.")
    });

    // `j` `d` disables the second row (claude-b), `p` pins it, `e` enables it.
    tmux.keys("j");
    tmux.keys("d");
    tmux.wait_for("claude-b disabled", |s| {
        row(s, "claude-b").is_some_and(|r| r.contains("disabled"))
    });
    assert!(
        !enabled(&env, "claude-b"),
        "vault accounts still lists claude-b enabled"
    );
    tmux.keys("p");
    tmux.wait_for("the pin", |s| s.contains("pin claude-b"));
    let policy = policy(&env);
    assert_eq!(
        (&policy["pin"], &policy["strategy"]),
        (
            &serde_json::json!("claude-b"),
            &serde_json::json!("user-preference")
        )
    );
    tmux.keys("e");
    tmux.wait_for("claude-b enabled", |s| {
        row(s, "claude-b").is_some_and(|r| r.contains(" ok "))
    });
    assert!(
        enabled(&env, "claude-b"),
        "vault accounts lists claude-b disabled"
    );

    // `l` `c` logs in to Claude in the browser: the opener gets the page,
    // the browser follows it (here: the test), a fifth account appears. The
    // authorize address is never drawn.
    tmux.keys("l");
    tmux.wait_for("the provider question", |s| {
        s.contains("Log in to: c Claude, o OpenAI")
    });
    tmux.keys("c");
    tmux.wait_for("the login waiting for the browser", |s| {
        s.contains("waiting for the browser")
    });
    wait_for(&dir.path().join("argv"));
    let page = std::fs::read_to_string(dir.path().join("page.html")).expect("the page");
    let address = refresh_target(&page);
    let location = env.fake.authorize_redirect(&address);
    assert_eq!(fake::http_get(&location).0, 200);
    tmux.wait_for("the login's outcome and the new account", |s| {
        s.contains("Logged in claude account") && s.contains("Accounts (5)")
    });
    // The opener exited long ago: no zombie is left behind.
    let start = Instant::now();
    while !tmux.zombies().is_empty() {
        assert!(
            start.elapsed() < HANG,
            "the dashboard leaves zombies: {:?}",
            tmux.zombies()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let authorize_secrets = [
        address.clone(),
        query(&address, "state"),
        query(&address, "code_challenge"),
    ];

    // `?` shows the keys, any key closes them.
    tmux.keys("?");
    tmux.wait_for("the key help", |s| s.contains("Keys (any key closes)"));
    tmux.keys("x");
    tmux.wait_for("the help closed", |s| !s.contains("Keys (any key closes)"));

    // `q` quits and leaves the terminal as it found it.
    tmux.keys("q");
    tmux.wait_for("the dashboard's exit", |s| {
        s.contains("dashboard exited with 0")
    });
    let before = std::fs::read_to_string(dir.path().join("stty-before")).expect("stty before");
    let after = std::fs::read_to_string(dir.path().join("stty-after")).expect("stty after");
    assert!(!before.is_empty());
    assert_eq!(before, after, "the terminal settings changed");

    // No screen ever showed a secret.
    let mut secrets: Vec<String> = vec![MARKER.into(), PASSPHRASE.into()];
    secrets.extend(authorize_secrets);
    secrets.extend(SECRET_PREFIXES.map(String::from));
    for (prov, id) in [
        (Prov::Claude, "uuid-a"),
        (Prov::Claude, "uuid-b"),
        (Prov::OpenAi, "acct-c"),
    ] {
        secrets.extend(env.fake.current_access(prov, id));
    }
    for screen in &tmux.screens {
        for secret in &secrets {
            assert!(
                !screen.contains(secret.as_str()),
                "a screen shows a secret:\n{screen}"
            );
        }
    }
}

#[test]
fn the_dashboard_at_120_by_40_shows_switches_refreshes_and_restores_the_terminal() {
    drive(120, 40);
}

#[test]
fn the_dashboard_at_80_by_24_shows_switches_refreshes_and_restores_the_terminal() {
    drive(80, 24);
}

#[test]
fn without_a_terminal_the_dashboard_refuses_and_names_the_alternatives() {
    let env = setup();
    let out = env.vault(&["dashboard"]).output().expect("run");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("needs a terminal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_a_display_login_from_the_dashboard_says_to_use_vault_login() {
    let env = vault_with_accounts();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tmux = Tmux::start(80, 24, &script(&env, dir.path(), None));
    tmux.wait_for("the accounts", |s| s.contains("Accounts (4)"));
    tmux.keys("l");
    tmux.wait_for("the provider question", |s| {
        s.contains("Log in to: c Claude, o OpenAI")
    });
    tmux.keys("c");
    tmux.wait_for("the advice", |s| {
        s.contains("Run `vault login claude` in a shell: there is no display")
    });
    let out = ok(&mut env.vault(&["--json", "accounts"]));
    let accounts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("accounts JSON");
    assert_eq!(
        accounts.as_array().map(Vec::len),
        Some(4),
        "no account was added"
    );
    tmux.keys("q");
    tmux.wait_for("the dashboard's exit", |s| {
        s.contains("dashboard exited with 0")
    });
}
