//! Hardening of the files authvault touches: `vault doctor --fix` changes
//! modes only on a vault it recognises, a configuration file others could
//! write is refused, `vault migrate` never blocks on a FIFO, and a vault
//! creation killed at any point leaves nothing that blocks the next one.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
        let mut store = tv.init_passphrase();
        store
            .add_account(&fake.seeded_account(Prov::OpenAi, "a", &who))
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

// ---------------------------------------------------------------------------
// Vault creation killed with SIGKILL

/// Names in the vault directory (none when it does not exist yet).
fn entries(tv: &TempVault) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(tv.vault_dir())
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether the path holds a complete vault.
fn complete(tv: &TempVault) -> bool {
    authvault::store::Vault::open(&tv.path).is_ok_and(|v| v.info().is_ok())
}

/// Starts `cmd`, waits until the vault directory holds a first file, then
/// `jitter` µs more, and kills it with SIGKILL. Returns how long the first
/// file had existed when the process ended (for sizing the jitter).
fn run_and_kill(mut cmd: Command, jitter: Option<u64>) -> Duration {
    let tv_dir = cmd
        .get_args()
        .nth(1)
        .map(|p| Path::new(p).parent().expect("dir").to_path_buf())
        .expect("--vault PATH");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_mins(2);
    let mut first_file = None;
    loop {
        if first_file.is_none() && fs::read_dir(&tv_dir).is_ok_and(|mut d| d.next().is_some()) {
            first_file = Some(std::time::Instant::now());
            if let Some(us) = jitter {
                std::thread::sleep(Duration::from_micros(us));
                let _ = child.kill(); // SIGKILL
            }
        }
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the creation hung");
        std::thread::sleep(Duration::from_micros(100));
    }
    first_file.map_or(Duration::ZERO, |t| t.elapsed())
}

/// Kills `vault <creating>` at random points after its first file appears
/// until `want` kills have landed inside the creation window (files in the
/// vault directory, but no complete vault at the path), at most
/// `MAX_ROUNDS` times; after each kill `vault <creating>` again (unless the
/// vault was complete) must succeed and leave a working vault. Returns how
/// many kills landed inside (fewer than `want` only after `MAX_ROUNDS`,
/// which the caller's assertion reports).
fn kill_creation(creating: &[&str], want: u32, check: impl Fn(&TempVault)) -> u32 {
    const MAX_ROUNDS: u32 = 150;
    let seed = super::common::seed(&format!("{creating:?} kills"));
    let mut rng = super::common::Rng::new(seed);
    let mut args = creating.to_vec();
    args.push("--passphrase");
    args.extend(FAST_KDF_ARGS);
    // Undisturbed runs size the span from the first file to the exit (the
    // shortest of three, so one slow run does not spread the kills past it).
    let mut span = u64::MAX;
    for _ in 0..3 {
        let tv = TempVault::new();
        span = span.min(run_and_kill(tv.cmd_pw(&args), None).as_micros() as u64);
        assert!(
            complete(&tv),
            "the undisturbed {creating:?} created the vault"
        );
    }
    let mut in_window = 0;
    let mut rounds = 0;
    while in_window < want && rounds < MAX_ROUNDS {
        let round = rounds;
        rounds += 1;
        let tv = TempVault::new();
        run_and_kill(tv.cmd_pw(&args), Some(rng.below(span.max(1000))));
        let left = entries(&tv);
        let was_complete = complete(&tv);
        if !left.is_empty() && !was_complete {
            in_window += 1;
        }
        if !was_complete || creating[0] == "migrate" {
            let out = tv.cmd_pw(&args).output().expect("spawn");
            assert!(
                out.status.success(),
                "round {round} (seed {seed}): after a kill that left {left:?}, {creating:?} failed: {}",
                stderr(&out)
            );
        }
        let doctor: serde_json::Value =
            serde_json::from_slice(&ok(&mut tv.cmd_pw(&["--json", "doctor"])).stdout)
                .expect("json");
        assert_eq!(doctor["ok"], true, "round {round} (seed {seed}): {doctor}");
        ok(&mut tv.cmd_pw(&["status"]));
        check(&tv);
        assert_eq!(
            entries(&tv),
            ["vault.db"],
            "round {round} (seed {seed}): nothing but the vault is left (killed with {left:?})"
        );
    }
    eprintln!("{creating:?}: {in_window} of {rounds} kills landed inside the creation window");
    in_window
}

#[test]
fn vault_init_killed_during_creation_never_blocks_the_next_init() {
    let landed = kill_creation(&["init"], 8, |tv| {
        ok(&mut tv.cmd_pw(&["accounts"]));
    });
    assert!(
        landed >= 8,
        "only {landed} kills landed inside the creation window"
    );
}

#[test]
fn vault_migrate_killed_during_creation_never_blocks_the_next_migrate() {
    let src = tempfile::tempdir().expect("tempdir");
    let source = src.path().join("auth.json");
    fs::write(&source, br#"{"OPENAI_API_KEY": "sk-crash-FIXTURE-key"}"#).expect("write");
    chmod(&source, 0o600);
    let from = source.display().to_string();
    let landed = kill_creation(&["migrate", "--from", &from], 8, |tv| {
        let out = ok(&mut tv.cmd_pw(&["token"]));
        assert_eq!(stdout(&out).trim(), "sk-crash-FIXTURE-key");
    });
    assert!(
        landed >= 8,
        "only {landed} kills landed inside the creation window"
    );
}

/// A named way to leave something at a vault path.
type Setup = (&'static str, fn(&TempVault));

#[test]
fn an_older_builds_creation_stub_is_replaced_and_anything_else_is_refused() {
    let mut args = vec!["init", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    let in_place = |tv: &TempVault| {
        fs::create_dir(tv.vault_dir()).expect("mkdir");
        chmod(tv.vault_dir(), 0o700);
    };
    // What an older build left when killed while creating the vault in place.
    let stubs: [Setup; 3] = [
        ("an empty file", |tv| {
            fs::write(&tv.path, b"").expect("write");
        }),
        ("a WAL-mode SQLite file without tables", |tv| {
            let c = tv.raw();
            c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        }),
        ("authvault's schema with no row", |tv| {
            init(tv);
            let c = tv.raw();
            for t in [
                "audit_log",
                "key_wraps",
                "credentials",
                "accounts",
                "data_keys",
            ] {
                c.execute(&format!("DELETE FROM {t}"), []).expect("delete");
            }
            c.execute_batch("DELETE FROM unlock_methods; DELETE FROM vault_meta;")
                .expect("delete");
        }),
    ];
    for (what, make) in stubs {
        let tv = TempVault::new();
        if !tv.vault_dir().exists() && what != "authvault's schema with no row" {
            in_place(&tv);
        }
        make(&tv);
        chmod(&tv.path, 0o600);
        let out = tv.cmd_pw(&args).output().expect("spawn");
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        ok(&mut tv.cmd_pw(&["accounts"]));
        assert_eq!(entries(&tv), ["vault.db"], "{what}");
    }
    // Anything that might be someone's data stays, byte for byte.
    let others: [Setup; 3] = [
        ("text", |tv| fs::write(&tv.path, b"notes").expect("write")),
        ("another application's SQLite file", |tv| {
            tv.raw().execute_batch("CREATE TABLE t(x)").expect("table");
        }),
        ("a vault with one row left", |tv| {
            init(tv);
            tv.raw()
                .execute_batch("DELETE FROM audit_log; DELETE FROM key_wraps;")
                .expect("delete");
        }),
    ];
    for (what, make) in others {
        let tv = TempVault::new();
        if what != "a vault with one row left" {
            in_place(&tv);
        }
        make(&tv);
        chmod(&tv.path, 0o600);
        let before = tv.bytes();
        for cmd in [&args[..], &["migrate", "--passphrase"]] {
            let out = fails(&mut tv.cmd_pw(cmd));
            assert!(!stderr(&out).is_empty(), "{what}");
        }
        assert_eq!(tv.bytes(), before, "{what}");
    }
}
