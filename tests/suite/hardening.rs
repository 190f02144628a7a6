//! Process hardening, observed from outside a real `vault` process: no core
//! dumps, no access to its memory or environment by other processes of the
//! same user.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use super::common::{FAST_KDF_ARGS, PASSPHRASE, TempVault, ok, stderr, stdout};

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
