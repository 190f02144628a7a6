//! The library store on PostgreSQL: a vault is created in an empty
//! database only, in one transaction; foreign and newer databases are
//! refused untouched; writers on many connections keep one audit chain; no
//! error shows the database password; vaults in two schemas stay apart.

use std::ffi::OsString;
use std::thread;

use authvault::db::Location;
use authvault::error::Error;
use authvault::keys::Unlock;
use authvault::model::Provider;
use authvault::store::{AccountSelector, ChainState, Store, Vault};
use secrecy::{ExposeSecret, SecretString};

use super::common::{
    Backend, FAST_KDF, FAST_KDF_ARGS, LockHolder, PASSPHRASE, TempVault, api_key_account, fails,
    login_api_key, ok, stderr, stdout,
};

fn location(tv: &TempVault) -> Location {
    Location::parse(tv.location().to_str().expect("URL")).expect("a PostgreSQL URL")
}

fn passphrase() -> SecretString {
    SecretString::from(PASSPHRASE)
}

/// Every relation of the database's `public` schema, with its kind, in order.
fn relations(tv: &TempVault) -> String {
    tv.raw_db().query_text(
        "SELECT coalesce(string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname), '') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public'",
    )
}

#[test]
fn pg_init_on_an_empty_database_then_unlock_and_read_a_token_back() {
    let tv = TempVault::on(Backend::Postgres);
    let at = location(&tv);
    let pw = passphrase();
    let how = Unlock::Passphrase(&pw, FAST_KDF);
    let mut store = Store::init_at(&at, &how).expect("init");
    store
        .add_account(&api_key_account(Provider::OpenAi, "work", "sk-pg-secret"))
        .expect("add");
    drop(store);

    let raw = tv.raw_db();
    assert_eq!(
        raw.query_i64("SELECT version FROM authvault_format"),
        authvault::db::format_version()
    );
    assert_eq!(
        raw.query_i64("SELECT count(*) FROM audit_log WHERE action = 'vault.init'"),
        1
    );
    // The key reaches the database sealed, never in the clear.
    assert_eq!(
        raw.query_i64(
            "SELECT count(*) FROM credentials \
             WHERE api_key IS NOT NULL AND position('sk-pg-secret'::bytea IN api_key) = 0"
        ),
        1
    );

    let vault = Vault::open_at(&at).expect("open");
    assert_eq!(vault.info().expect("info").accounts.get("openai"), Some(&1));
    assert_eq!(vault.integrity_check().expect("check"), ["ok"]);
    let mut store = vault.unlock(&how).expect("unlock");
    let token = store
        .token(AccountSelector {
            label: Some("work"),
            provider: None,
        })
        .expect("token");
    assert_eq!(token.secret.expose_secret(), "sk-pg-secret");
    let report = store.verify_audit().expect("verify");
    assert!(matches!(report.state, ChainState::Intact), "{report:?}");
    store
        .checkpoint()
        .expect("checkpoint is a no-op on PostgreSQL");

    let again = Store::init_at(&at, &how).expect_err("a second init");
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again}");
}

#[test]
fn pg_an_empty_database_is_no_vault_and_names_the_url_without_password() {
    let tv = TempVault::on(Backend::Postgres);
    let err = Vault::open_at(&location(&tv)).expect_err("empty database");
    assert!(matches!(err, Error::NoVault { .. }), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with("no vault at postgres"), "{shown}");
    assert!(shown.contains("vault init"), "{shown}");
    assert_eq!(relations(&tv), "", "opening wrote nothing");
}

#[test]
fn pg_a_database_holding_another_table_is_refused_and_left_untouched() {
    let tv = TempVault::on(Backend::Postgres);
    tv.raw_db()
        .exec("CREATE TABLE invoices (id BIGINT PRIMARY KEY); INSERT INTO invoices VALUES (7)");
    let before = relations(&tv);
    assert_eq!(before, "invoices:r,invoices_pkey:i");
    let pw = passphrase();
    for err in [
        Store::init_at(&location(&tv), &Unlock::Passphrase(&pw, FAST_KDF)).expect_err("init"),
        Vault::open_at(&location(&tv)).expect_err("open"),
    ] {
        assert!(matches!(err, Error::NotAVault { .. }), "{err}");
        assert!(err.to_string().contains("other tables"), "{err}");
    }
    assert_eq!(relations(&tv), before);
    assert_eq!(tv.raw_db().query_i64("SELECT sum(id) FROM invoices"), 7);
}

#[test]
fn pg_a_newer_format_is_refused_untouched() {
    let tv = TempVault::on(Backend::Postgres);
    let pw = passphrase();
    let how = Unlock::Passphrase(&pw, FAST_KDF);
    drop(Store::init_at(&location(&tv), &how).expect("init"));
    let newer = authvault::db::format_version() + 1;
    let raw = tv.raw_db();
    raw.exec(&format!("UPDATE authvault_format SET version = {newer}"));
    let before = (
        relations(&tv),
        raw.query_i64("SELECT count(*) FROM audit_log"),
    );
    let err = Store::open_at(&location(&tv), &how).expect_err("newer");
    assert!(
        matches!(err, Error::NewerFormat { found, .. } if found == newer),
        "{err}"
    );
    assert_eq!(
        (
            relations(&tv),
            raw.query_i64("SELECT count(*) FROM audit_log")
        ),
        before
    );
    assert_eq!(raw.query_i64("SELECT version FROM authvault_format"), newer);
}

#[test]
fn pg_two_stores_writing_concurrently_keep_one_audit_chain_that_verifies() {
    let tv = TempVault::on(Backend::Postgres);
    let pw = passphrase();
    let how = Unlock::Passphrase(&pw, FAST_KDF);
    drop(Store::init_at(&location(&tv), &how).expect("init"));
    let writes = 25;
    thread::scope(|s| {
        for n in 0..2 {
            let at = location(&tv);
            let pw = passphrase();
            s.spawn(move || {
                let mut store =
                    Store::open_at(&at, &Unlock::Passphrase(&pw, FAST_KDF)).expect("open");
                for i in 0..writes {
                    store
                        .record("test.write", &serde_json::json!({ "writer": n, "i": i }))
                        .expect("record");
                }
            });
        }
    });
    let store = Store::open_at(&location(&tv), &how).expect("open");
    let report = store.verify_audit().expect("verify");
    assert!(matches!(report.state, ChainState::Intact), "{report:?}");
    assert_eq!(report.entries, 1 + 2 * writes);
    assert_eq!(
        tv.raw_db()
            .query_i64("SELECT count(DISTINCT seq) FROM audit_log WHERE action = 'test.write'"),
        i64::try_from(2 * writes).unwrap()
    );
}

#[test]
fn pg_the_password_of_a_scram_role_never_appears_in_an_error() {
    let tv = TempVault::on(Backend::Postgres);
    let mut b = [0u8; 8];
    authvault::crypto::fill_random(&mut b).expect("random");
    let suffix = authvault::crypto::hex(&b);
    let role = format!("av_store_{suffix}");
    let password = format!("pw{suffix}");
    tv.raw_db().exec(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE authvault_scram; \
         GRANT CREATE, USAGE ON SCHEMA public TO {role}"
    ));
    let as_role = |pw: &str| {
        let mut url = url::Url::parse(tv.location().to_str().expect("URL")).expect("URL");
        url.set_username(&role).expect("user");
        url.set_password(Some(pw)).expect("password");
        Location::parse(url.as_str()).expect("parse")
    };
    let at = as_role(&password);
    let vault_pw = passphrase();
    let how = Unlock::Passphrase(&vault_pw, FAST_KDF);
    let mut shown = Vec::new();
    let mut record = |err: Error| shown.extend([err.to_string(), format!("{err:?}")]);

    record(Vault::open_at(&at).expect_err("no vault yet"));
    drop(Store::init_at(&at, &how).expect("init as the role"));
    record(Store::init_at(&at, &how).expect_err("second init"));
    let wrong = SecretString::from("not the passphrase");
    record(
        Store::open_at(&at, &Unlock::Passphrase(&wrong, FAST_KDF)).expect_err("wrong passphrase"),
    );
    record(Vault::open_at(&as_role(&format!("{password}x"))).expect_err("wrong password"));
    tv.raw_db().exec(&format!(
        "UPDATE authvault_format SET version = {}",
        authvault::db::format_version() + 1
    ));
    record(Vault::open_at(&at).expect_err("newer"));

    assert!(
        shown.iter().any(|s| s.contains("28P01")),
        "no refused login among {shown:#?}"
    );
    assert!(
        shown.iter().any(|s| s.contains(&role)),
        "the URL is named (without its password) in {shown:#?}"
    );
    for s in &shown {
        assert!(!s.contains(&password), "password shown in: {s}");
    }
    // The role owns what it created; drop it with the database's objects.
    tv.raw_db()
        .exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn pg_two_vaults_in_two_schemas_of_one_database_stay_apart() {
    let tv = TempVault::on(Backend::Postgres);
    let url = tv.location().to_str().expect("URL").to_owned();
    tv.raw_db()
        .exec("CREATE SCHEMA team_a; CREATE SCHEMA team_b;");
    // A schema is chosen by the URL's search path; a short lock wait keeps
    // the contention check below quick.
    let in_schema = |schema: &str| {
        OsString::from(format!(
            "{url}&options=-c%20search_path%3D{schema}%20-c%20lock_timeout%3D1s"
        ))
    };
    let vault = |schema: &str, args: &[&str]| {
        let mut c = tv.cmd_at(&in_schema(schema), args);
        c.env("AUTHVAULT_PASSPHRASE", PASSPHRASE);
        c
    };
    for (schema, key) in [("team_a", "sk-team-a"), ("team_b", "sk-team-b")] {
        let mut init = vec!["init", "--passphrase"];
        init.extend(FAST_KDF_ARGS);
        ok(&mut vault(schema, &init));
        login_api_key(|args| vault(schema, args), "openai", "work", key);
    }
    for (schema, key) in [("team_a", "sk-team-a"), ("team_b", "sk-team-b")] {
        let out = ok(&mut vault(schema, &["token", "--account", "work"]));
        assert_eq!(stdout(&out), format!("{key}\n"));
    }
    let raw = tv.raw_db();
    for schema in ["team_a", "team_b"] {
        assert_eq!(
            raw.query_i64(&format!("SELECT count(*) FROM {schema}.accounts")),
            1
        );
    }
    assert_eq!(relations(&tv), "", "nothing in the default schema");

    // Each vault's write lock is its own: with team_a's held, team_b writes
    // and team_a's writer times out.
    let holder = LockHolder::take(in_schema("team_a").to_str().expect("URL"));
    ok(&mut vault("team_b", &["token", "--account", "work"]));
    let out = fails(&mut vault("team_a", &["token", "--account", "work"]));
    assert!(stderr(&out).contains("lock timeout"), "{}", stderr(&out));
    drop(holder);

    // A search path naming no schema is refused, saying what to do.
    let out = fails(&mut vault("team_c", &["init", "--passphrase"]));
    assert!(
        stderr(&out).contains("names no existing schema; run `CREATE SCHEMA` first"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pg_a_format_11_vault_is_brought_to_this_format_and_its_chain_still_verifies() {
    let tv = TempVault::on(Backend::Postgres);
    let pw = passphrase();
    let how = Unlock::Passphrase(&pw, FAST_KDF);
    let mut store = Store::init_at(&location(&tv), &how).expect("init");
    store
        .add_account(&api_key_account(Provider::OpenAi, "work", "sk-pg-11"))
        .expect("add");
    drop(store);
    // Back to what format 11 held: no audit host. (The entries were MACed
    // with theirs, which is kept aside and put back after the upgrade: a
    // format 11 binary would have MACed them without one.)
    let raw = tv.raw_db();
    raw.exec(
        "ALTER TABLE audit_log RENAME COLUMN host TO host_kept;
         UPDATE authvault_format SET version = 11;",
    );
    let store = Store::open_at(&location(&tv), &how).expect("opens and upgrades");
    drop(store);
    assert_eq!(
        raw.query_i64("SELECT version FROM authvault_format"),
        authvault::db::format_version()
    );
    assert_eq!(
        raw.query_i64("SELECT count(*) FROM audit_log WHERE host IS NOT NULL"),
        0,
        "the migration adds the column empty"
    );
    raw.exec(
        "UPDATE audit_log SET host = host_kept;
         ALTER TABLE audit_log DROP COLUMN host_kept;",
    );
    let mut store = Store::open_at(&location(&tv), &how).expect("opens");
    let (_, key) = store
        .credential("work", authvault::model::CredentialKind::ApiKey, "test")
        .expect("reads");
    assert!(
        matches!(key, authvault::model::Credential::ApiKey(k) if k.expose_secret() == "sk-pg-11")
    );
    assert_eq!(
        store.verify_audit().expect("verify").state,
        ChainState::Intact
    );
}
