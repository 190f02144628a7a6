//! Hardening of the files authvault touches: `vault doctor --fix` changes
//! modes only on a vault it recognises, a configuration file others could
//! write is refused, `vault migrate` never blocks on a FIFO, and a vault
//! creation killed at any point leaves nothing that blocks the next one.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use authvault::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};
use authvault::store::NewAccount;
use secrecy::SecretString;

use super::common::{FAST_KDF_ARGS, TempVault, fails, mode, ok, stderr, stdout, wait_or_kill};
use super::fake_provider::{self as fake, Ep, FakeProvider, Prov};

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn init(tv: &TempVault) {
    drop(tv.init_passphrase());
}

// ---------------------------------------------------------------------------
// `vault doctor --fix`

#[test]
fn doctor_fix_refuses_a_file_that_is_not_a_vault_and_changes_no_mode() {
    // The vault path names someone's file in a shared, sticky directory.
    let tv = TempVault::new();
    let shared = tv.vault_dir();
    fs::create_dir(shared).expect("mkdir");
    chmod(shared, 0o1777);
    let notes = &tv.path;
    fs::write(notes, b"someone's notes, not a vault").expect("write");
    chmod(notes, 0o644);
    let out = fails(&mut tv.cmd_pw(&["doctor", "--fix"]));
    assert!(
        stderr(&out).contains("not an authvault vault"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        mode(shared),
        0o1777,
        "the shared directory keeps its sticky bit"
    );
    assert_eq!(mode(notes), 0o644);
    assert_eq!(
        fs::read(notes).expect("read"),
        b"someone's notes, not a vault"
    );
}

#[test]
fn doctor_fix_refuses_a_symlinked_vault_path_and_leaves_its_target_alone() {
    let tv = TempVault::new();
    init(&tv);
    chmod(&tv.path, 0o644);
    chmod(tv.vault_dir(), 0o755);
    let before = tv.bytes();
    let link = TempVault::new();
    fs::create_dir(link.vault_dir()).expect("mkdir");
    chmod(link.vault_dir(), 0o700);
    std::os::unix::fs::symlink(&tv.path, &link.path).expect("symlink");
    for args in [&["doctor", "--fix"][..], &["doctor"], &["status"]] {
        let out = fails(&mut link.cmd_pw(args));
        assert!(
            stderr(&out).contains("symbolic link")
                && stderr(&out).contains(&link.path.display().to_string()),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(mode(&tv.path), 0o644, "the target's mode is unchanged");
    assert_eq!(mode(tv.vault_dir()), 0o755);
    assert_eq!(tv.bytes(), before);
}

#[test]
fn doctor_fix_repairs_the_files_but_leaves_a_shared_directory_and_names_the_fix() {
    // A vault directory that holds other files, and one with the sticky bit:
    // neither was created by authvault for the vault alone.
    for (other_file, dir_mode) in [(true, 0o755), (false, 0o1777)] {
        let tv = TempVault::new();
        init(&tv);
        if other_file {
            fs::write(tv.vault_dir().join("todo.txt"), b"other things").expect("write");
        }
        chmod(&tv.path, 0o644);
        chmod(tv.vault_dir(), dir_mode);
        let out = fails(&mut tv.cmd_pw(&["--json", "doctor", "--fix"]));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(report["ok"], false, "{report}");
        let modes = &report["checks"][0];
        assert_eq!(modes["check"], "modes");
        let detail = modes["detail"].as_str().expect("detail");
        let dir = tv.vault_dir().display().to_string();
        assert!(
            detail.contains(&format!("chmod 700 {dir}")) && !detail.contains("vault doctor --fix"),
            "{detail}"
        );
        assert_eq!(mode(&tv.path), 0o600, "the vault file is repaired");
        assert_eq!(mode(tv.vault_dir()), dir_mode, "the directory is untouched");
    }
}

// ---------------------------------------------------------------------------
// The configuration file

/// A vault holding one OpenAI OAuth account the fake knows, and a `vault`
/// command whose endpoints come only from the configuration file `config`.
struct ConfigEnv {
    tv: TempVault,
    fake: FakeProvider,
    config: std::path::PathBuf,
    _config_dir: tempfile::TempDir,
}

impl ConfigEnv {
    fn new() -> Self {
        let tv = TempVault::new();
        let fake = FakeProvider::start();
        let who = fake::Identity::new("cfg@example.com", "acct-cfg", "plus");
        let (access, refresh) = fake.seed_login(Prov::OpenAi, &who);
        let now = chrono::Utc::now();
        let mut store = tv.init_passphrase();
        store
            .add_account(&NewAccount {
                provider: Provider::OpenAi,
                label: "a".into(),
                identity: Identity {
                    email: Some(who.email.clone()),
                    provider_account_id: Some(who.account_id.clone()),
                    plan: Some(who.plan.clone()),
                    rate_limit_tier: None,
                },
                credentials: vec![Credential::OAuth(OAuthTokens {
                    access_token: SecretString::from(access),
                    refresh_token: Some(SecretString::from(refresh)),
                    id_token: None,
                    expires_at: Some(now + chrono::Duration::hours(1)),
                    scopes: vec![],
                    last_refresh: Some(now),
                })],
                active: CredentialKind::OAuth,
            })
            .expect("seed");
        drop(store);
        let config_dir = tempfile::tempdir().expect("tempdir");
        let config = config_dir.path().join("config.json");
        let b = fake.base();
        let endpoints = serde_json::json!({ "endpoints": {
            "openai_token_url": format!("{b}/openai/oauth/token"),
            "openai_authorize_url": format!("{b}/openai/oauth/authorize"),
            "openai_api_url": format!("{b}/openai-api"),
            "chatgpt_api_url": format!("{b}/chatgpt"),
        }});
        fs::write(&config, endpoints.to_string()).expect("write config");
        Self {
            tv,
            fake,
            config,
            _config_dir: config_dir,
        }
    }

    fn refresh(&self) -> Command {
        let mut c = self.tv.cmd_pw(&["refresh", "--account", "a"]);
        for var in authvault::config::ENDPOINT_VARS {
            c.env_remove(var);
        }
        c.env("AUTHVAULT_CONFIG", &self.config);
        c
    }
}

#[test]
fn a_configuration_file_others_can_write_is_refused_naming_the_fix() {
    let env = ConfigEnv::new();
    let path = env.config.display().to_string();
    for loose in [0o620, 0o602, 0o666] {
        chmod(&env.config, loose);
        let out = fails(&mut env.refresh());
        let err = stderr(&out);
        assert!(
            err.contains(&format!("chmod 600 {path}")) && err.contains(&format!("{loose:04o}")),
            "{loose:o}: {err}"
        );
        assert_eq!(
            env.fake.count(Ep::OpenAiToken),
            0,
            "{loose:o}: no request was sent"
        );
    }
    let dir = env.config.parent().expect("dir");
    chmod(&env.config, 0o600);
    chmod(dir, 0o777);
    let out = fails(&mut env.refresh());
    assert!(
        stderr(&out).contains(&format!("chmod go-w {}", dir.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.fake.count(Ep::OpenAiToken), 0);
    chmod(dir, 0o700);
}

#[test]
fn a_private_configuration_file_decides_the_endpoints() {
    let env = ConfigEnv::new();
    for private in [0o600, 0o644] {
        chmod(&env.config, private);
        let before = env.fake.count(Ep::OpenAiToken);
        let out = ok(&mut env.refresh());
        assert!(stdout(&out).contains("Refreshed `a`"), "{}", stdout(&out));
        assert_eq!(env.fake.count(Ep::OpenAiToken), before + 1, "{private:o}");
    }
}

// ---------------------------------------------------------------------------
// `vault migrate --from` a FIFO

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

#[test]
fn migrate_from_a_fifo_fails_naming_it_without_waiting_for_a_writer() {
    let tv = TempVault::new();
    init(&tv);
    let before = tv.bytes();
    let src = tempfile::tempdir().expect("tempdir");
    let fifo = src.path().join("auth.json");
    mkfifo(&fifo);
    let in_dir = tempfile::tempdir().expect("tempdir");
    let dir_fifo = in_dir.path().join("pipe.json");
    mkfifo(&dir_fifo);
    for (from, named) in [(&fifo, &fifo), (&in_dir.path().to_path_buf(), &dir_fifo)] {
        let mut child = tv
            .cmd_pw(&["migrate"])
            .arg("--from")
            .arg(from)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = wait_or_kill(&mut child, Duration::from_mins(1));
        let out = child.wait_with_output().expect("output");
        let status = status.unwrap_or_else(|| panic!("{}: vault migrate hung", from.display()));
        assert!(!status.success(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&named.display().to_string()) && err.contains("not a regular file"),
            "{err}"
        );
        assert_eq!(tv.bytes(), before, "the vault is unchanged");
    }
    // Without a vault, nothing is created either.
    let fresh = TempVault::new();
    let mut args = vec!["migrate", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    let mut child = fresh
        .cmd_pw(&args)
        .arg("--from")
        .arg(&fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status = wait_or_kill(&mut child, Duration::from_mins(1)).expect("vault migrate hung");
    assert!(!status.success());
    assert!(!fresh.path.exists());
}
