//! Against the real Secret Service (gnome-keyring on the private D-Bus
//! session of `scripts/test.sh`). These fail, never skip, when it is missing.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::common::{
    FAST_KDF_ARGS, PASSPHRASE, TempVault, fails, keyring_items, keyring_lock, ok, stderr, stdout,
    wait_or_kill, with_stdin,
};

/// The session's Secret Service lock, held (as a `vault` process holds it
/// while it talks to the service) until the file is dropped.
fn hold_secret_service_lock() -> std::fs::File {
    let path = dirs::runtime_dir()
        .expect("scripts/test.sh gives the session an XDG_RUNTIME_DIR")
        .join(authvault::keys::os_keyring::CONVERSATION_LOCK);
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .expect("open the lock file");
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).expect("take the lock");
    held
}

fn secret_len(vault_id: &str) -> usize {
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "authvault",
            "username",
            &format!("vault-{vault_id}"),
        ])
        .output()
        .expect("secret-tool (libsecret-tools)");
    assert!(
        out.status.success(),
        "keyring entry for vault {vault_id} not found"
    );
    out.stdout.len()
}

fn vault_id(tv: &TempVault, pw: bool) -> String {
    let out = if pw {
        ok(&mut tv.cmd_pw(&["--json", "status"]))
    } else {
        ok(&mut tv.cmd(&["--json", "status"]))
    };
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    s["vault_id"].as_str().expect("vault id").to_owned()
}

#[test]
fn init_stores_one_small_keyring_entry_and_token_needs_no_passphrase() {
    let _lock = keyring_lock();
    let tv = TempVault::new();
    let before = keyring_items();
    ok(&mut tv.cmd(&["init"]));
    let after = keyring_items();
    let added: Vec<_> = after.iter().filter(|i| !before.contains(i)).collect();
    assert_eq!(added.len(), 1, "items before {before:?}, after {after:?}");
    assert_eq!(after.len(), before.len() + 1, "nothing else changes");
    let id = vault_id(&tv, false);
    let len = secret_len(&id);
    assert!(len <= 64, "keyring secret is {len} bytes");
    assert_eq!(len, 32, "exactly the 32-byte key-encryption key");

    let out = with_stdin(
        &mut tv.cmd(&[
            "login",
            "openai",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "k",
        ]),
        b"sk-keyring-test",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // No AUTHVAULT_PASSPHRASE and no terminal: only the keyring can unlock.
    assert_eq!(
        stdout(&ok(&mut tv.cmd(&["token", "--account", "k"]))),
        "sk-keyring-test\n"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&ok(&mut tv.cmd(&["--json", "status"])).stdout).expect("json");
    assert_eq!(s["keyring"]["usable"], true, "{s}");
    assert_eq!(s["unlock_methods"], serde_json::json!(["keyring"]));
    assert_eq!(s["audit"]["state"], "intact", "{s}");
    assert_eq!(
        keyring_items().len(),
        after.len(),
        "using the vault adds no keyring items"
    );
}

/// Many `vault` processes starting at once must not reach gnome-keyring as a
/// burst of new clients (it can abort on one; see `os_keyring`): each waits
/// for the session's Secret Service lock. The test holds the lock, sees the
/// vault process blocked on it in `/proc/locks`, releases it, and the token
/// comes.
#[test]
fn a_vault_process_waits_its_turn_to_talk_to_the_secret_service() {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;

    let _lock = keyring_lock();
    let tv = TempVault::new();
    ok(&mut tv.cmd(&["init"]));
    let out = with_stdin(
        &mut tv.cmd(&[
            "login",
            "openai",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "k",
        ]),
        b"sk-turn-test",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let held = hold_secret_service_lock();
    let inode = format!(":{} ", held.metadata().expect("stat").ino());

    let mut child = tv
        .cmd(&["token", "--account", "k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vault token");
    let waiter = format!(" {} ", child.id());
    let mut blocked = false;
    for _ in 0..4000 {
        let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
        if locks
            .lines()
            .any(|l| l.contains("-> FLOCK") && l.contains(&waiter) && l.contains(&inode))
        {
            blocked = true;
            break;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "vault token finished while another process held the Secret Service lock"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        blocked,
        "vault token never queued for the Secret Service lock"
    );
    assert!(child.try_wait().expect("try_wait").is_none());

    drop(held);
    let status = wait_or_kill(&mut child, Duration::from_secs(30)).expect("vault token exits");
    let mut token = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut token)
        .expect("read stdout");
    assert!(
        status.success(),
        "vault token failed after the lock was released"
    );
    assert_eq!(token, "sk-turn-test\n");
}

/// Fleets set `AUTHVAULT_PASSPHRASE` to keep a burst of processes away from
/// gnome-keyring: with it, a vault that also has this host's keyring is
/// opened by the passphrase, and the process never queues for the Secret
/// Service (the test holds its lock and watches `/proc/locks`). A wrong one
/// falls back to the keyring, saying so.
#[test]
fn with_authvault_passphrase_set_the_secret_service_is_not_asked() {
    let _lock = keyring_lock();
    let tv = TempVault::new();
    let mut args = vec!["init", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    ok(&mut tv.cmd_pw(&args));
    tv.login_api_key("openai", "k", "sk-both-methods");
    ok(&mut tv.cmd_pw(&["keyring", "add"]));

    let held = hold_secret_service_lock();
    let mut child = tv
        .cmd_pw(&["token", "--account", "k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vault token");
    let waiter = format!(" {} ", child.id());
    let mut polls = 0;
    while child.try_wait().expect("try_wait").is_none() {
        let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
        assert!(
            !locks
                .lines()
                .any(|l| l.contains("-> FLOCK") && l.contains(&waiter)),
            "vault token queued for the Secret Service although AUTHVAULT_PASSPHRASE was set"
        );
        polls += 1;
        assert!(polls < 20_000, "vault token did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "sk-both-methods\n");
    drop(held);

    // A wrong passphrase in the environment: the keyring still opens it.
    let out = ok(tv
        .cmd(&["token", "--account", "k"])
        .env("AUTHVAULT_PASSPHRASE", "not the passphrase"));
    assert_eq!(stdout(&out), "sk-both-methods\n");
    assert!(
        stderr(&out).contains("AUTHVAULT_PASSPHRASE: wrong passphrase")
            && stderr(&out).contains("trying the OS keyring"),
        "{}",
        stderr(&out)
    );
    // Both fail (no session bus): the error gives both reasons.
    let no_runtime = tempfile::tempdir().expect("tempdir");
    let out = fails(
        tv.cmd(&["token", "--account", "k"])
            .env("AUTHVAULT_PASSPHRASE", "not the passphrase")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", no_runtime.path()),
    );
    let err = stderr(&out);
    assert!(
        err.contains("AUTHVAULT_PASSPHRASE: wrong passphrase")
            && err.contains("and the OS keyring failed too"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn without_a_session_bus_init_fails_fast_naming_the_passphrase_option_and_writes_nothing() {
    let tv = TempVault::new();
    let empty_runtime = tempfile::tempdir().expect("tempdir");
    let mut cmd = tv.cmd(&["init"]);
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", empty_runtime.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let status = wait_or_kill(&mut child, Duration::from_secs(5))
        .expect("vault init did not exit within 5 s");
    let out = child.wait_with_output().expect("output");
    assert!(!status.success());
    let err = stderr(&out);
    assert!(
        err.contains("vault init --passphrase") && err.contains("AUTHVAULT_PASSPHRASE"),
        "{err}"
    );
    assert!(
        !tv.vault_dir().exists(),
        "no directory or file may be written"
    );
}

#[test]
fn unlock_methods_can_be_added_and_removed_without_touching_data() {
    let _lock = keyring_lock();
    let tv = TempVault::new();
    let mut args = vec!["init", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    ok(&mut tv.cmd_pw(&args));
    let out = with_stdin(
        &mut tv.cmd_pw(&[
            "login",
            "claude",
            "--api-key-stdin",
            "--no-validate",
            "--label",
            "c",
        ]),
        b"sk-ant-methods",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let data = |tv: &TempVault| -> Vec<Vec<u8>> {
        tv.raw()
            .prepare("SELECT api_key FROM credentials UNION ALL SELECT root_secret FROM vault_meta")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .map(Result::unwrap)
            .collect()
    };
    let before = data(&tv);
    let items = keyring_items().len();

    ok(&mut tv.cmd_pw(&["keyring", "add"]));
    assert_eq!(keyring_items().len(), items + 1);
    assert_eq!(
        stdout(&ok(&mut tv.cmd(&["token"]))),
        "sk-ant-methods\n",
        "keyring unlock, no passphrase"
    );
    ok(&mut tv.cmd(&["passphrase", "remove"]));
    let out = fails(&mut tv.cmd(&["keyring", "remove"]));
    assert!(
        stderr(&out).contains("only unlock method"),
        "{}",
        stderr(&out)
    );
    let mut add = vec!["passphrase", "add"];
    add.extend(FAST_KDF_ARGS);
    ok(tv.cmd(&add).env("AUTHVAULT_NEW_PASSPHRASE", PASSPHRASE));
    // The passphrase will be the only way in: it must be proven first.
    fails(&mut tv.cmd(&["keyring", "remove"]));
    ok(&mut tv.cmd_pw(&["keyring", "remove"]));
    assert_eq!(
        keyring_items().len(),
        items,
        "the keyring entry is deleted with its method"
    );
    assert_eq!(stdout(&ok(&mut tv.cmd_pw(&["token"]))), "sk-ant-methods\n");
    assert_eq!(data(&tv), before, "data rows untouched by method changes");
    let id = vault_id(&tv, true);
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "authvault",
            "username",
            &format!("vault-{id}"),
        ])
        .output()
        .expect("secret-tool");
    assert!(!out.status.success() && out.stdout.is_empty());
    ok(&mut tv.cmd_pw(&["audit", "verify"]));
}
