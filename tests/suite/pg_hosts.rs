//! Many hosts on one PostgreSQL vault: the acceptance tests of running
//! authvault on several machines at once. Two simulated hosts `a` and `b`
//! share one database; each has its own home and XDG directories, its own
//! `AUTHVAULT_HOST` and its own Secret Service (host a the session's, host
//! b the second one `scripts/test.sh` starts, `AUTHVAULT_TEST_HOST_B_BUS`).
//! Each host enrols and proves its own keyring; the races then run 8 or 16
//! processes per host at once, and each test checks that its processes
//! really met in the window it is about.
//!
//! The racing processes unlock with the shared passphrase and cannot reach
//! any Secret Service: a burst of new clients can abort gnome-keyring 42
//! (upstream #190/#196, see `keys::os_keyring`), which would test the
//! daemon, not the vault. `suite::hosts` and the setup here cover the
//! keyring of each host, and one test here rotates the data key and revokes
//! a host on the shared database.

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use authvault::db::Location;
use authvault::keys::Unlock;
use authvault::model::Credential;
use authvault::store::Store;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::agent::via_shell;
use super::common;
use super::common::{
    Backend, FAST_KDF, FAST_KDF_ARGS, PASSPHRASE, TempVault, fails, keyring_lock, ok, stderr,
    stdout,
};
use super::fake_provider::{self as fake, Ep, FakeProvider, Fault, Prov, http_request};
use super::providers::Env;
use super::quota::{OVER_BUDGET, work_budget_of};

/// A simulated host: its name, and a home holding its XDG directories
/// and local state.
struct Host {
    name: &'static str,
    home: tempfile::TempDir,
}

impl Host {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            home: tempfile::tempdir().expect("home"),
        }
    }

    /// What this host's processes give as their agent id (sessions show
    /// it; audit entries name the host itself).
    fn agent(&self) -> String {
        format!("host-{}", self.name)
    }

    /// `vault ARGS…` on this host, with its own Secret Service and no
    /// passphrase.
    #[allow(clippy::disallowed_methods)] // the harness's own variable, not configuration
    fn cmd(&self, tv: &TempVault, args: &[&str]) -> Command {
        let mut c = tv.cmd(args);
        let home = self.home.path();
        // XDG_RUNTIME_DIR stays the session's: the lock on which authvault
        // processes queue for a Secret Service lives there.
        c.env("AUTHVAULT_HOST", self.name)
            .env("AUTHVAULT_AGENT_ID", self.agent())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("AUTHVAULT_STATE_DIR", home.join("state"))
            .current_dir(home);
        if self.name == "b" {
            let bus = std::env::var("AUTHVAULT_TEST_HOST_B_BUS")
                .expect("AUTHVAULT_TEST_HOST_B_BUS: run the suite with scripts/test.sh");
            c.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
        c
    }

    /// As [`Host::cmd`], unlocking with the passphrase: the session bus is
    /// a socket nobody listens on, so the keyring attempt fails at once and
    /// no Secret Service sees the process (see the module documentation).
    fn cmd_pw(&self, tv: &TempVault, args: &[&str]) -> Command {
        let mut c = self.cmd(tv, args);
        let nobody = self.home.path().join("no-secret-service");
        c.env("AUTHVAULT_PASSPHRASE", PASSPHRASE).env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", nobody.display()),
        );
        c
    }
}

/// A PostgreSQL vault shared by hosts a and b: a creates it with its
/// keyring and adds the passphrase, b enrols its own keyring with the
/// passphrase, then each host opens it with its own keyring alone.
fn two_hosts() -> (TempVault, [Host; 2]) {
    let _lock = keyring_lock();
    let tv = TempVault::on(Backend::Postgres);
    let hosts = [Host::new("a"), Host::new("b")];
    let [a, b] = &hosts;
    ok(&mut a.cmd(&tv, &["init"]));
    let mut add = vec!["passphrase", "add"];
    add.extend(FAST_KDF_ARGS);
    ok(a.cmd(&tv, &add).env("AUTHVAULT_NEW_PASSPHRASE", PASSPHRASE));
    ok(b.cmd(&tv, &["keyring", "add"])
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE));
    assert_eq!(
        tv.raw_db().query_text(
            "SELECT string_agg(method || ':' || host, ',' ORDER BY method, host) FROM unlock_methods"
        ),
        "keyring:a,keyring:b,passphrase:"
    );
    // No passphrase and no terminal: only the host's own keyring can open it.
    for host in &hosts {
        ok(&mut host.cmd(&tv, &["accounts"]));
    }
    (tv, hosts)
}

/// Logs in the API key `key` of `provider` as account `label`, on `host`.
fn login_api_key(tv: &TempVault, host: &Host, provider: &str, label: &str, key: &str) {
    common::login_api_key(|args| host.cmd_pw(tv, args), provider, label, key);
}

/// The hosts of the audit entries `filter` selects, in chain order.
fn writers(tv: &TempVault, filter: &str) -> Vec<String> {
    tv.raw_db()
        .query_text(&format!(
            "SELECT coalesce(string_agg(host, ',' ORDER BY seq), '') FROM audit_log WHERE {filter}"
        ))
        .split(',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How often consecutive writers differ: 1 when one host wrote all its
/// entries before the other, growing as their writes interleave.
fn switches(writers: &[String]) -> usize {
    writers.windows(2).filter(|w| w[0] != w[1]).count()
}

/// Each host's share of `writers`.
fn per_host(writers: &[String]) -> BTreeMap<&str, usize> {
    let mut n = BTreeMap::new();
    for w in writers {
        *n.entry(w.as_str()).or_default() += 1;
    }
    n
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

/// `vault --json audit verify` on `host`: the report, whatever the exit status.
fn verify(tv: &TempVault, host: &Host) -> Value {
    json(
        &host
            .cmd_pw(tv, &["--json", "audit", "verify"])
            .output()
            .expect("spawn vault"),
    )
}

#[test]
fn pg_sixteen_processes_on_each_of_two_hosts_refresh_one_expired_login_exactly_once() {
    const ROUNDS: usize = 5;
    const PER_HOST: usize = 16;
    let (tv, hosts) = two_hosts();
    let env = Env {
        tv,
        fake: FakeProvider::start(),
    };
    let tv = &env.tv;
    // Seeded through the library, to know the first refresh token.
    let who = fake::Identity::new("fleet@example.com", "uuid-fleet", "max");
    let account = env.fake.seeded_account(Prov::Claude, "fleet", &who);
    let Credential::OAuth(tokens) = &account.credentials[0] else {
        panic!("an OAuth login");
    };
    let first_refresh = tokens
        .refresh_token
        .as_ref()
        .expect("refresh token")
        .expose_secret()
        .to_owned();
    let location = Location::parse(tv.location().to_str().expect("URL")).expect("a URL");
    let pw = SecretString::from(PASSPHRASE);
    Store::open_at(&location, &Unlock::Passphrase(&pw, FAST_KDF))
        .expect("open")
        .add_account(&account)
        .expect("seed the login");

    for round in 0..ROUNDS {
        env.expire("fleet");
        // A slow provider: the refresher holds the lease for a second,
        // long enough for processes of both hosts to find it held.
        env.fake
            .push_fault(Ep::ClaudeToken, Fault::Delay(Duration::from_secs(1)));
        let before = env.fake.refreshes(Prov::Claude);
        let children: Vec<(&Host, Child)> = (0..PER_HOST)
            .flat_map(|_| &hosts)
            .map(|host| {
                let child = host
                    .cmd_pw(tv, &["--json", "token", "--account", "fleet"])
                    .envs(env.fake.env())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn");
                (host, child)
            })
            .collect();
        let outputs: Vec<(&Host, Output)> = children
            .into_iter()
            .map(|(host, c)| (host, c.wait_with_output().expect("wait")))
            .collect();
        let newest = env
            .fake
            .current_access(Prov::Claude, &who.account_id)
            .expect("issued");
        // `refreshed` is true for the refresher and for every process that
        // found the token expired, waited for the lease and then read the
        // new token; false for one that came after the refresh.
        let mut refreshed: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (host, out)) in outputs.iter().enumerate() {
            assert!(
                out.status.success(),
                "round {round} process {i} on {}: {}",
                host.name,
                stderr(out)
            );
            let token = json(out);
            assert_eq!(
                token["token"], newest,
                "round {round} process {i} on {}",
                host.name
            );
            if token["refreshed"] == true {
                *refreshed.entry(host.name.to_owned()).or_default() += 1;
            }
        }
        assert_eq!(
            env.fake.refreshes(Prov::Claude) - before,
            1,
            "round {round}: exactly one refresh"
        );
        let refresher = tv.raw_db().query_text(
            "SELECT host FROM audit_log WHERE action = 'credential.refresh' ORDER BY seq DESC LIMIT 1",
        );
        let other = hosts
            .iter()
            .map(|h| h.name.to_owned())
            .find(|h| *h != refresher)
            .expect("two hosts");
        let waited_on_other = refreshed.get(&other).copied().unwrap_or(0);
        eprintln!(
            "round {round}: {refresher} refreshed; processes that waited for it or read its token: {refreshed:?}"
        );
        assert!(
            waited_on_other >= 1,
            "round {round}: no process of {other} waited for {refresher}'s refresh ({refreshed:?})"
        );
    }
    assert_eq!(env.fake.invalid_grants(Prov::Claude), 0);
    assert_eq!(env.fake.revoked(Prov::Claude), 0);
    let [a, b] = &hosts;
    // And the flag does tell: a process that comes after the refresh
    // reads the same token with `refreshed` false.
    let after = json(&ok(a
        .cmd_pw(tv, &["--json", "token", "--account", "fleet"])
        .envs(env.fake.env())));
    assert_eq!(
        (after["token"].clone(), after["refreshed"].clone()),
        (
            Value::from(env.fake.current_access(Prov::Claude, &who.account_id)),
            Value::from(false)
        )
    );
    for host in [a, b] {
        assert_eq!(verify(tv, host)["state"], "intact");
    }
    // The fake would have caught a replayed refresh token: the first one,
    // rotated in round 0, is refused as invalid_grant and counted.
    let replay = http_request(
        "POST",
        &format!("{}/claude/v1/oauth/token", env.fake.base()),
        &[("Content-Type", "application/json")],
        serde_json::json!({
            "client_id": "client-1",
            "grant_type": "refresh_token",
            "refresh_token": first_refresh,
        })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(
        (replay.status, replay.json()["error"].clone()),
        (400, Value::from("invalid_grant"))
    );
    assert_eq!(env.fake.invalid_grants(Prov::Claude), 1);
    assert_eq!(env.fake.revoked(Prov::Claude), 1);
}

#[test]
fn pg_eight_processes_on_each_of_two_hosts_reserving_against_one_budget_never_over_commit() {
    const PER_HOST: usize = 8;
    const CYCLES: usize = 8;
    const TOKENS: u64 = 500;
    const FITS: usize = 64;
    const LIMIT: u64 = FITS as u64 * TOKENS;
    let (tv, hosts) = two_hosts();
    let [a, b] = &hosts;
    login_api_key(&tv, a, "claude", "work", "sk-work");
    // The budget is set from the other host.
    common::set_work_budget(|args| b.cmd_pw(&tv, args), LIMIT);
    let granted: Mutex<BTreeMap<&str, usize>> = Mutex::default();
    let refused: Mutex<BTreeMap<&str, usize>> = Mutex::default();
    let running = AtomicBool::new(true);
    let mut samples = 0u32;
    thread::scope(|s| {
        let workers: Vec<_> = (0..PER_HOST)
            .flat_map(|w| hosts.iter().map(move |h| (w, h)))
            .map(|(w, host)| {
                let (tv, granted, refused) = (&tv, &granted, &refused);
                s.spawn(move || {
                    for c in 0..CYCLES {
                        let out = host
                            .cmd_pw(
                                tv,
                                &[
                                    "reserve",
                                    "--account",
                                    "work",
                                    "--tokens",
                                    &TOKENS.to_string(),
                                    "--json",
                                ],
                            )
                            .output()
                            .expect("spawn vault reserve");
                        let tally = if out.status.code() == Some(OVER_BUDGET) {
                            assert!(stderr(&out).contains("over budget"), "{}", stderr(&out));
                            refused
                        } else {
                            assert!(
                                out.status.success(),
                                "{} worker {w} cycle {c}: {}",
                                host.name,
                                stderr(&out)
                            );
                            let id = json(&out)["id"].as_i64().expect("id").to_string();
                            ok(&mut host
                                .cmd_pw(tv, &["commit", &id, "--input", "300", "--output", "200"]));
                            granted
                        };
                        *tally.lock().expect("tally").entry(host.name).or_default() += 1;
                    }
                })
            })
            .collect();
        let sampler = s.spawn(|| {
            let mut n = 0u32;
            while running.load(Ordering::SeqCst) {
                let host = &hosts[n as usize % 2];
                let (used, reserved, _) =
                    work_budget_of(&mut host.cmd_pw(&tv, &["quota", "--json"]));
                assert!(
                    used + reserved <= LIMIT,
                    "sample {n} on {}: used {used} + reserved {reserved} over {LIMIT}",
                    host.name
                );
                n += 1;
                thread::sleep(Duration::from_millis(20));
            }
            n
        });
        for w in workers {
            w.join().expect("worker");
        }
        running.store(false, Ordering::SeqCst);
        samples = sampler.join().expect("sampler");
    });
    let granted = granted.into_inner().expect("granted");
    let refused = refused.into_inner().expect("refused");
    eprintln!("granted {granted:?}, refused {refused:?}, {samples} samples");
    assert_eq!(
        (
            granted.values().sum::<usize>(),
            refused.values().sum::<usize>()
        ),
        (FITS, 2 * PER_HOST * CYCLES - FITS)
    );
    for host in [a, b] {
        assert_eq!(
            work_budget_of(&mut host.cmd_pw(&tv, &["quota", "--json"])),
            (LIMIT, 0, 0)
        );
        assert_eq!(verify(&tv, host)["state"], "intact");
    }
    // The window: both hosts were granted and refused, and their
    // reservations interleaved in the one ledger.
    for tally in [&granted, &refused] {
        assert_eq!(tally.len(), 2, "both hosts: {tally:?}");
    }
    let order = writers(&tv, "action = 'quota.reserve'");
    assert_eq!(order.len(), 2 * PER_HOST * CYCLES);
    let switched = switches(&order);
    eprintln!("the hosts' reservations switched {switched} times");
    assert!(
        switched >= 16,
        "the hosts' reservations hardly interleaved ({switched} switches): {order:?}"
    );
    assert!(
        samples >= 10,
        "the reader took only {samples} samples during the run"
    );
}

#[test]
fn pg_two_hosts_times_eight_processes_times_a_hundred_writes_keep_one_chain_and_an_edit_is_named() {
    const PER_HOST: usize = 8;
    const WRITES: usize = 100;
    let (tv, hosts) = two_hosts();
    let [a, b] = &hosts;
    login_api_key(&tv, b, "openai", "shared", "sk-shared");
    let before = tv.raw_db().query_i64("SELECT count(*) FROM audit_log");
    thread::scope(|s| {
        for w in 0..PER_HOST {
            for host in &hosts {
                let tv = &tv;
                s.spawn(move || {
                    for c in 0..WRITES {
                        // One audited write each: the secret read.
                        let out = host
                            .cmd_pw(tv, &["token", "--account", "shared"])
                            .output()
                            .expect("spawn");
                        assert!(
                            out.status.success(),
                            "{} worker {w} write {c}: {}",
                            host.name,
                            stderr(&out)
                        );
                        assert_eq!(stdout(&out), "sk-shared\n");
                    }
                });
            }
        }
    });
    let order = writers(&tv, &format!("seq > {before}"));
    let n = 2 * PER_HOST * WRITES;
    assert_eq!(order.len(), n, "one entry per write");
    assert_eq!(
        per_host(&order),
        BTreeMap::from([("a", n / 2), ("b", n / 2)])
    );
    // The window: the hosts' writes interleaved in the one chain.
    let switched = switches(&order);
    eprintln!("the hosts' writes switched {switched} times in the chain");
    assert!(
        switched >= n / 10,
        "the hosts' writes hardly interleaved ({switched} switches)"
    );
    let total = before + i64::try_from(n).expect("fits");
    for host in [a, b] {
        let report = verify(&tv, host);
        assert_eq!(
            (report["state"].clone(), report["entries"].clone()),
            (Value::from("intact"), Value::from(total)),
            "{report}"
        );
    }

    // An entry host b wrote, in the middle, edited in SQL: named by both hosts.
    let raw = tv.raw_db();
    let edited = raw.query_i64(&format!(
        "SELECT min(seq) FROM audit_log WHERE host = 'b' AND seq > {}",
        total - i64::try_from(n / 2).expect("fits")
    ));
    raw.exec(&format!(
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = {edited}"
    ));
    let out = fails(&mut a.cmd_pw(&tv, &["audit", "verify"]));
    assert!(
        stdout(&out).contains(&format!("first bad entry {edited}")),
        "{}",
        stdout(&out)
    );
    for host in [a, b] {
        let report = verify(&tv, host);
        assert_eq!(
            (report["state"].clone(), report["first_bad"].clone()),
            (Value::from("broken"), Value::from(edited)),
            "{report}"
        );
    }
}

#[test]
fn pg_a_session_made_on_host_b_shows_on_host_a_with_its_host_and_only_b_may_close_it() {
    let (tv, hosts) = two_hosts();
    let [a, b] = &hosts;
    login_api_key(&tv, a, "claude", "work", "sk-work");
    common::set_work_budget(|args| a.cmd_pw(&tv, args), 10000);
    // On b, a shell runs `vault env` and exits: the session's process is
    // gone, which only b can see.
    let env = b.cmd_pw(
        &tv,
        &["--json", "env", "--account", "work", "--tokens", "500"],
    );
    let out = ok(via_shell(&env, r#""$0" "$@"; exit $?"#, &[]).current_dir(b.home.path()));
    let grant = json(&out);
    let reserved = |host: &Host| work_budget_of(&mut host.cmd_pw(&tv, &["quota", "--json"])).1;

    let seen = json(&ok(&mut a.cmd_pw(&tv, &["--json", "sessions"])));
    let seen = seen.as_array().expect("sessions");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (
            &seen[0]["id"],
            &seen[0]["host"],
            &seen[0]["agent"],
            &seen[0]["account"],
            &seen[0]["reserved_tokens"]
        ),
        (
            &grant["session"],
            &Value::from("b"),
            &Value::from("host-b"),
            &Value::from("work"),
            &Value::from(500)
        ),
        "{seen:?}"
    );
    let table = stdout(&ok(&mut a.cmd_pw(&tv, &["sessions"])));
    assert!(table.contains(" b "), "{table}");
    assert_eq!(reserved(a), 500, "b's reservation counts on a");

    // b sees its process gone: the session ends and its reservation is free.
    assert_eq!(
        json(&ok(&mut b.cmd_pw(&tv, &["--json", "sessions"]))),
        serde_json::json!([])
    );
    assert_eq!(
        json(&ok(&mut a.cmd_pw(&tv, &["--json", "sessions"]))),
        serde_json::json!([])
    );
    assert_eq!(reserved(a), 0);
}

#[test]
fn pg_a_rekey_sends_the_other_host_to_re_enrol_and_revoking_it_touches_no_data_row() {
    let (tv, hosts) = two_hosts();
    let [a, b] = &hosts;
    let _lock = keyring_lock();
    login_api_key(&tv, a, "openai", "k", "sk-shared");
    let token = |host: &Host| host.cmd(&tv, &["token", "--account", "k"]);
    // With the passphrase and this host's own keyring (rekey wraps for both).
    let with_pw = |host: &Host, args: &[&str]| {
        let mut c = host.cmd(&tv, args);
        c.env("AUTHVAULT_PASSPHRASE", PASSPHRASE);
        c
    };
    let raw = tv.raw_db();

    let report = json(&ok(&mut with_pw(a, &["--json", "rekey"])));
    assert_eq!(
        report["must_re_enrol"],
        serde_json::json!(["b"]),
        "{report}"
    );
    assert_eq!(stdout(&ok(&mut token(a))), "sk-shared\n");
    let err = stderr(&fails(&mut token(b)));
    assert!(
        err.contains("host `b`") && err.contains("must re-enrol"),
        "{err}"
    );
    ok(&mut with_pw(b, &["keyring", "add"]));
    assert_eq!(stdout(&ok(&mut token(b))), "sk-shared\n");

    // a revokes b: b's row and wraps go, no data row changes, a still reads.
    let sealed = || {
        raw.query_text(
            "SELECT string_agg(encode(api_key, 'hex'), ',' ORDER BY id) FROM credentials",
        )
    };
    let before = sealed();
    ok(&mut with_pw(a, &["keyring", "remove", "--host", "b"]));
    assert_eq!(
        raw.query_text(
            "SELECT string_agg(method || ':' || host, ',' ORDER BY method, host) FROM unlock_methods"
        ),
        "keyring:a,passphrase:"
    );
    assert_eq!(
        raw.query_i64("SELECT count(*) FROM key_wraps WHERE host = 'b'"),
        0
    );
    let err = stderr(&fails(&mut token(b)));
    assert!(err.contains("host `b`"), "{err}");
    assert_eq!(sealed(), before, "no data row changed");
    assert_eq!(stdout(&ok(&mut token(a))), "sk-shared\n");
}
