//! Many `vault` processes at once: no `SQLITE_BUSY` reaches a user, every call
//! succeeds, and the audit chain holds exactly one entry per call.
//!
//! The processes unlock with the passphrase. Through the OS keyring, 8
//! processes at once can abort gnome-keyring 42 (an upstream race in how it
//! admits new clients, see `keys::os_keyring`), which would test the daemon,
//! not the vault; `suite::keyring` covers the keyring path.

use std::thread;

use super::common::{Backend, TempVault, ok, on_both_backends, stderr, with_stdin};

on_both_backends!(
    eight_processes_times_a_hundred_mixed_calls_all_succeed_with_one_audit_entry_each
);

fn eight_processes_times_a_hundred_mixed_calls_all_succeed_with_one_audit_entry_each(
    backend: Backend,
) {
    let tv = TempVault::on(backend);
    tv.init_cli_passphrase();
    tv.login_api_key("openai", "shared", "sk-shared");
    let entries_before = tv.raw_db().query_i64("SELECT count(*) FROM audit_log");

    const WORKERS: usize = 8;
    const CALLS: usize = 100;
    thread::scope(|s| {
        for w in 0..WORKERS {
            let tv = &tv;
            s.spawn(move || {
                for c in 0..CALLS {
                    let out = if c % 2 == 0 {
                        tv.cmd_pw(&["token", "--account", "shared"])
                            .output()
                            .expect("spawn")
                    } else {
                        let label = format!("w{w}-c{c}");
                        with_stdin(
                            &mut tv.cmd_pw(&[
                                "login",
                                "claude",
                                "--api-key-stdin",
                                "--no-validate",
                                "--label",
                                &label,
                            ]),
                            format!("sk-{label}").as_bytes(),
                        )
                    };
                    let err = stderr(&out);
                    assert!(out.status.success(), "worker {w} call {c}: {err}");
                    assert!(
                        !err.contains("locked") && !err.contains("busy"),
                        "worker {w} call {c}: {err}"
                    );
                    if c % 2 == 0 {
                        assert_eq!(out.stdout, b"sk-shared\n");
                    }
                }
            });
        }
    });
    let raw = tv.raw_db();
    let entries = raw.query_i64("SELECT count(*) FROM audit_log");
    assert_eq!(
        entries - entries_before,
        (WORKERS * CALLS) as i64,
        "one audit entry per call"
    );
    let accounts = raw.query_i64("SELECT count(*) FROM accounts");
    assert_eq!(accounts, 1 + (WORKERS * CALLS / 2) as i64);
    ok(&mut tv.cmd_pw(&["audit", "verify"]));
}
