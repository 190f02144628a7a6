//! Process and terminal hardening, observed from outside a real `vault`
//! process: no core dumps, no access to its memory or environment by other
//! processes of the same user, and no raw control characters from a file,
//! a provider or an argument on the terminal.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::common::{
    FAST_KDF_ARGS, PASSPHRASE, TempVault, api_key_account, fails, ok, stderr, stdout,
};

// ---------------------------------------------------------------------------
// Process

/// Who runs the `vault` child and the process that tries to look into it:
/// `nobody` when the tests run as root (root may read any process), else
/// the test's own user. Either way an unprivileged process of the child's
/// own user.
fn unprivileged() -> (u32, u32) {
    if rustix::process::getuid().is_root() {
        (65534, 65534)
    } else {
        (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    }
}

/// `c` started through a shell that first allows core files of any size
/// (soft and hard limit), whatever limit the test itself runs with: so
/// whatever limit the child ends with is its own doing.
fn with_core_files_allowed(c: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(r#"ulimit -c unlimited && exec "$0" "$@""#)
        .arg(c.get_program())
        .args(c.get_args());
    for (key, value) in c.get_envs() {
        match value {
            Some(v) => sh.env(key, v),
            None => sh.env_remove(key),
        };
    }
    if let Some(dir) = c.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// Starts `c`, a `vault login claude --paste`, with core files allowed and
/// as user `who` when given, and returns once it waits for the pasted code
/// on stdin: by then `main` has long run.
fn blocked_vault(c: &Command, who: Option<(u32, u32)>) -> (Child, BufReader<ChildStderr>) {
    let mut c = with_core_files_allowed(c);
    if let Some((uid, gid)) = who {
        c.uid(uid).gid(gid);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vault");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let waiting = loop {
        let mut line = String::new();
        if err.read_line(&mut line).expect("read stderr") == 0 {
            break false;
        }
        seen.push_str(&line);
        if line.starts_with("Then paste the code") {
            break true;
        }
    };
    if !waiting {
        let _ = child.kill();
        let _ = child.wait();
        panic!("vault exited before asking for the code: {seen}");
    }
    (child, err)
}

fn login_paste(tv: &TempVault) -> Command {
    tv.cmd_pw(&["login", "claude", "--paste"])
}

/// `cat /proc/<pid>/environ` as `uid`/`gid`.
fn read_environ(pid: u32, (uid, gid): (u32, u32)) -> std::process::Output {
    Command::new("cat")
        .arg(format!("/proc/{pid}/environ"))
        .uid(uid)
        .gid(gid)
        .output()
        .expect("spawn cat")
}

#[test]
fn a_running_vault_has_no_core_limit_and_its_environment_is_private() {
    let who = unprivileged();
    let tv = TempVault::new();
    // The child's own user owns the directory it creates its vault in.
    let top = tv.vault_dir().parent().expect("temp dir");
    std::os::unix::fs::chown(top, Some(who.0), Some(who.1)).expect("chown temp dir");
    let mut init = vec!["init", "--passphrase"];
    init.extend(FAST_KDF_ARGS);
    ok(tv.cmd_pw(&init).uid(who.0).gid(who.1));

    // Control: the same user reads the environment of its other processes.
    let mut control = Command::new("sleep")
        .arg("60")
        .env("CONTROL_MARK", "readable")
        .uid(who.0)
        .gid(who.1)
        .spawn()
        .expect("spawn sleep");
    let seen = read_environ(control.id(), who);
    let _ = control.kill();
    let _ = control.wait();
    assert!(
        stdout(&seen).contains("CONTROL_MARK=readable"),
        "control: a process cannot read the environment of another of its user's: {}",
        stderr(&seen)
    );

    let (mut child, _err) = blocked_vault(&login_paste(&tv), Some(who));
    let pid = child.id();
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let environ = read_environ(pid, who);
    let _ = child.kill();
    let _ = child.wait();

    let core: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .expect("a core size line")
        .split_whitespace()
        .collect();
    assert_eq!(core, ["0", "0", "bytes"], "soft, hard, unit:\n{limits}");
    assert!(
        !environ.status.success() && !stdout(&environ).contains(PASSPHRASE),
        "another process of the same user read the vault's environment ({} bytes, the \
         passphrase included: {})",
        environ.stdout.len(),
        stdout(&environ).contains(PASSPHRASE)
    );
    assert!(
        stderr(&environ).contains("Permission denied"),
        "{}",
        stderr(&environ)
    );
}

/// Files in `dir` whose name starts with `core` (`core` or `core.<pid>`).
fn core_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("core"))
        .collect()
}

#[test]
fn a_vault_killed_with_sigabrt_writes_no_core_file() {
    // Control: on this machine a process that may dump core writes a file
    // into its working directory. Without that, nothing here could fail.
    let control_dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new("sh")
        .args(["-c", "ulimit -c unlimited && kill -ABRT $$"])
        .current_dir(control_dir.path())
        .status()
        .expect("spawn sh");
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    assert!(
        status.core_dumped() && !core_files(control_dir.path()).is_empty(),
        "this test needs a kernel that writes core files into the working directory \
         (kernel.core_pattern is {pattern:?}; `core` does)"
    );

    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut c = login_paste(&tv);
    c.current_dir(cwd.path());
    let (mut child, _err) = blocked_vault(&c, None);
    ok(Command::new("kill").args(["-ABRT", &child.id().to_string()]));
    let status = child.wait().expect("wait vault");

    assert_eq!(status.signal(), Some(6), "{status}");
    assert!(!status.core_dumped(), "the kernel dumped the vault's core");
    assert_eq!(core_files(cwd.path()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// Terminal

/// What a terminal would act on: C0 controls but the line break, DEL, C1
/// controls, and the bidirectional-text controls.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(
                    c,
                    '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                )
        })
        .collect()
}

/// Every hostile character at once, and a line break followed by a forged line.
const HOSTILE: &str = "a\u{1b}[31mred\r\u{8}\u{7f}\u{9b}2J\u{202e}\nFAKE-LINE";
/// [`HOSTILE`] as the terminal must show it.
const HOSTILE_SHOWN: &str = r"a\u001b[31mred\u000d\u0008\u007f\u009b2J\u202e\u000aFAKE-LINE";

/// A Codex `auth.json` whose id token carries `email` and `plan`.
fn codex_file(dir: &Path, email: &str, plan: &str) -> std::path::PathBuf {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("encode"));
    let claims = json!({
        "email": email,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": plan,
            "chatgpt_account_id": "acct-hostile",
        },
    });
    let id_token = format!(
        "{}.{}.FIXTUREsignature",
        part(&json!({"alg": "RS256"})),
        part(&claims)
    );
    let file = json!({
        "auth_mode": "chatgpt",
        "tokens": {
            "id_token": id_token,
            "access_token": "at-FIXTURE-hostile",
            "refresh_token": "rt-FIXTURE-hostile",
            "account_id": "acct-hostile",
        },
    });
    let path = dir.join("auth.json");
    fs::write(&path, serde_json::to_vec_pretty(&file).expect("render")).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// A Claude Code `.credentials.json` whose plan is `plan`.
fn claude_code_file(dir: &Path, plan: &str) -> std::path::PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/legacy/claude-code-credentials.json");
    let mut file: Value =
        serde_json::from_slice(&fs::read(fixture).expect("fixture")).expect("json");
    file["claudeAiOauth"]["subscriptionType"] = json!(plan);
    let path = dir.join(".credentials.json");
    fs::write(&path, serde_json::to_vec_pretty(&file).expect("render")).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

#[test]
fn values_from_imported_files_reach_the_terminal_escaped() {
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let src = tempfile::tempdir().expect("tempdir");
    let email = format!("{HOSTILE}@example.com");
    let codex = codex_file(src.path(), &email, HOSTILE);
    let claude = claude_code_file(src.path(), HOSTILE);
    let from = |c: &mut Command| {
        c.arg("--from").arg(&codex).arg("--from").arg(&claude);
    };

    let mut plan = tv.cmd_pw(&["migrate", "--dry-run"]);
    from(&mut plan);
    let mut json_plan = tv.cmd_pw(&["--json", "migrate", "--dry-run"]);
    from(&mut json_plan);
    let mut run = tv.cmd_pw(&["migrate"]);
    from(&mut run);
    let text_outputs = [
        ("migrate --dry-run", ok(&mut plan)),
        ("migrate", ok(&mut run)),
        ("accounts", ok(&mut tv.cmd_pw(&["accounts"]))),
    ];
    for (what, out) in &text_outputs {
        for text in [stdout(out), stderr(out)] {
            assert_eq!(
                raw_controls(&text),
                Vec::<char>::new(),
                "`vault {what}`:\n{text}"
            );
        }
        assert!(
            stdout(out).contains(&format!("{HOSTILE_SHOWN}@example.com")),
            "`vault {what}` shows the e-mail escaped, on its line:\n{}",
            stdout(out)
        );
    }

    // JSON: escaped too, and it reads back as the very same value.
    let json_outputs = [
        ("--json migrate --dry-run", ok(&mut json_plan)),
        (
            "--json accounts",
            ok(&mut tv.cmd_pw(&["--json", "accounts"])),
        ),
    ];
    for (what, out) in &json_outputs {
        let text = stdout(out);
        assert_eq!(
            raw_controls(&text),
            Vec::<char>::new(),
            "`vault {what}`:\n{text}"
        );
        let value: Value = serde_json::from_str(&text).expect("JSON");
        let accounts = value
            .get("report")
            .map_or(&value, |r| &r["accounts"])
            .as_array()
            .expect("accounts");
        let emails: Vec<&Value> = accounts.iter().map(|a| &a["email"]).collect();
        assert!(emails.contains(&&json!(email)), "`vault {what}`: {text}");
        let plans: Vec<&Value> = accounts.iter().map(|a| &a["plan"]).collect();
        assert_eq!(plans, [&json!(HOSTILE), &json!(HOSTILE)], "`vault {what}`");
    }
}

#[test]
fn a_hostile_label_is_shown_escaped_in_the_error() {
    let tv = TempVault::new();
    tv.init_passphrase()
        .add_account(&api_key_account(
            authvault::model::Provider::OpenAi,
            "work",
            "sk-FIXTURE-label",
        ))
        .expect("add");
    let out = fails(&mut tv.cmd_pw(&["accounts", "rename", "work", HOSTILE]));
    let text = stderr(&out);
    assert_eq!(raw_controls(&text), Vec::<char>::new(), "{text}");
    assert_eq!(
        text,
        format!(
            "error: invalid label `{HOSTILE_SHOWN}`: may contain only letters, digits and . _ - @ +\n"
        )
    );
}

#[test]
fn an_unknown_value_in_a_legacy_file_is_named_by_position_not_quoted() {
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let src = tempfile::tempdir().expect("tempdir");
    let path = src.path().join("auth.json");
    fs::write(
        &path,
        "{\n  \"auth_mode\": \"sk-proj-FIXTURE-LEAK\",\n  \"OPENAI_API_KEY\": \"sk-FIXTURE-x\"\n}\n",
    )
    .expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    for json in [false, true] {
        let mut c = tv.cmd_pw(if json {
            &["--json", "migrate"]
        } else {
            &["migrate"]
        });
        let out = fails(c.arg("--from").arg(&path));
        let text = stderr(&out);
        assert!(
            text.contains(&format!(
                "{}:2:16: field `auth_mode`: unknown value",
                path.display()
            )),
            "{text}"
        );
        assert!(
            !text.contains("LEAK") && !stdout(&out).contains("LEAK"),
            "{text}"
        );
    }
}
