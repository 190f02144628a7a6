//! Choosing a PostgreSQL vault on the command line: `--vault URL` and
//! `AUTHVAULT_DATABASE_URL`. These tests need no server: the URLs point at a
//! closed local port, so every command fails to reach a vault; what is
//! checked is what holds either way: the password never shows, nothing is
//! created where the command runs, and the precedence of the settings.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::common::{FAST_KDF_ARGS, PASSPHRASE, TempVault, fails, ok, stderr, stdout};

/// A password in the user part, and one in the `password` parameter.
const USER_PASSWORD: &str = "Pw-in-userinfo-7f3a";
const PARAM_PASSWORD: &str = "Pw-in-query-9c1e";

fn urls() -> [String; 2] {
    [
        format!("postgres://app:{USER_PASSWORD}@127.0.0.1:9/vault?sslmode=disable"),
        format!("postgresql://app@127.0.0.1:9/vault?password={PARAM_PASSWORD}&sslmode=disable"),
    ]
}

/// `vault ARGS…` run in `place` (its working directory, home and data
/// directory), with no inherited authvault setting.
fn vault_in(place: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vault"));
    c.args(args).current_dir(place.join("cwd"));
    for (name, _) in std::env::vars_os() {
        if authvault::config::is_own_variable(&name) {
            c.env_remove(name);
        }
    }
    for var in ["RUST_LOG", "DISPLAY", "WAYLAND_DISPLAY", "PGPASSWORD"] {
        c.env_remove(var);
    }
    for var in authvault::config::ENDPOINT_VARS {
        c.env(var, "http://127.0.0.1:9");
    }
    c.env("HOME", place.join("home"))
        .env("CODEX_HOME", place.join("home/codex"))
        .env("CLAUDE_CONFIG_DIR", place.join("home/claude"))
        .env("XDG_DATA_HOME", place.join("home/data"))
        .env("XDG_CONFIG_HOME", place.join("home/config"))
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE)
        // No server listens there by design: fail at the first refusal
        // instead of retrying it for the default 30 s.
        .env("AUTHVAULT_DATABASE_RETRY_SECS", "0")
        .stdin(Stdio::null());
    c
}

/// A fresh place with an empty working directory.
fn place() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("cwd")).expect("cwd");
    dir
}

fn assert_no_password(out: &Output, what: &str) {
    for text in [stdout(out), stderr(out)] {
        for password in [USER_PASSWORD, PARAM_PASSWORD] {
            assert!(
                !text.contains(password),
                "{what} printed the database password: {text}"
            );
        }
    }
}

fn assert_nothing_created(place: &Path, what: &str) {
    let left: Vec<_> = fs::read_dir(place.join("cwd"))
        .expect("read cwd")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        left.is_empty(),
        "{what} created {left:?} in the working directory"
    );
}

/// The commands that open or create a vault, with and without `--json`.
fn commands() -> Vec<Vec<&'static str>> {
    let mut init = vec!["init", "--passphrase"];
    init.extend(FAST_KDF_ARGS);
    let mut all = vec![
        vec!["status"],
        init,
        vec!["token", "--account", "work"],
        vec!["doctor"],
        vec!["migrate", "--dry-run"],
    ];
    let with_json: Vec<_> = all
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.insert(0, "--json");
            c
        })
        .collect();
    all.extend(with_json);
    all
}

#[test]
fn a_password_in_the_vault_flag_never_shows_and_nothing_lands_in_the_working_directory() {
    for url in urls() {
        for args in commands() {
            let place = place();
            let mut full = vec!["--vault", url.as_str()];
            full.extend(&args);
            let out = vault_in(place.path(), &full).output().expect("spawn vault");
            let what = format!("vault --vault URL {}", args.join(" "));
            assert_no_password(&out, &what);
            assert_nothing_created(place.path(), &what);
        }
    }
}

#[test]
fn a_password_in_authvault_database_url_never_shows_and_nothing_lands_in_the_working_directory() {
    for url in urls() {
        for args in commands() {
            let place = place();
            let out = vault_in(place.path(), &args)
                .env("AUTHVAULT_DATABASE_URL", &url)
                .output()
                .expect("spawn vault");
            let what = format!("AUTHVAULT_DATABASE_URL=URL vault {}", args.join(" "));
            assert_no_password(&out, &what);
            assert_nothing_created(place.path(), &what);
        }
    }
}

#[test]
fn a_bad_database_url_is_refused_naming_where_it_came_from_and_not_its_password() {
    let bad = format!("postgres://app:{USER_PASSWORD}@127.0.0.1:9/vault?no_such_parameter=1");
    let place = place();
    let out = fails(&mut vault_in(place.path(), &["--vault", &bad, "status"]));
    assert_no_password(&out, "a bad --vault URL");
    assert!(
        stderr(&out).contains("--vault") && stderr(&out).contains("no_such_parameter"),
        "{}",
        stderr(&out)
    );
    let out = fails(vault_in(place.path(), &["status"]).env("AUTHVAULT_DATABASE_URL", &bad));
    assert_no_password(&out, "a bad AUTHVAULT_DATABASE_URL");
    assert!(
        stderr(&out).contains("AUTHVAULT_DATABASE_URL")
            && stderr(&out).contains("no_such_parameter"),
        "{}",
        stderr(&out)
    );
    // A file path is no database URL: refused rather than taken as a file.
    let out = fails(vault_in(place.path(), &["status"]).env("AUTHVAULT_DATABASE_URL", "vault.db"));
    assert!(
        stderr(&out).contains("AUTHVAULT_DATABASE_URL"),
        "{}",
        stderr(&out)
    );
    assert_nothing_created(place.path(), "a bad database URL");
}

#[test]
fn a_vault_path_from_the_flag_or_authvault_path_wins_over_authvault_database_url() {
    let [url, _] = urls();
    let mut init = vec!["--json", "init", "--passphrase"];
    init.extend(FAST_KDF_ARGS);

    // --vault PATH beats the variable.
    let tv = TempVault::new();
    let out = ok(tv.cmd_pw(&init).env("AUTHVAULT_DATABASE_URL", &url));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        created["location"],
        tv.path.display().to_string(),
        "{created}"
    );
    assert_eq!(created["path"], tv.path.display().to_string(), "{created}");
    assert!(tv.path.exists());

    // So does AUTHVAULT_PATH.
    let place = place();
    let file = place.path().join("home/env-vault/vault.db");
    let out = ok(vault_in(place.path(), &["--json", "status"])
        .env("AUTHVAULT_PATH", &tv.path)
        .env("AUTHVAULT_DATABASE_URL", &url));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        status["location"],
        tv.path.display().to_string(),
        "{status}"
    );
    assert_eq!(status["file_modes"], "ok", "{status}");
    ok(vault_in(place.path(), &init[1..])
        .env("AUTHVAULT_PATH", &file)
        .env("AUTHVAULT_DATABASE_URL", &url));
    assert!(file.exists(), "AUTHVAULT_PATH was not used");
}

#[test]
fn doctor_fix_refuses_a_postgres_vault_without_touching_anything() {
    for url in urls() {
        let place = place();
        let out = fails(&mut vault_in(
            place.path(),
            &["--vault", &url, "doctor", "--fix"],
        ));
        assert_no_password(&out, "vault doctor --fix");
        assert!(
            stderr(&out).contains("--fix") && stderr(&out).contains("PostgreSQL"),
            "{}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("postgres") && stderr(&out).contains("127.0.0.1:9/vault"),
            "names the vault by its redacted URL: {}",
            stderr(&out)
        );
        assert_nothing_created(place.path(), "vault doctor --fix");
    }
}
