//! A vault written by the previous release (format 3, in
//! `tests/fixtures/vault-format3/`) opens with this one: the migration
//! rewrites its times into the one fixed-width form, its legacy key check is
//! bound to the vault id, and every value reads.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use authvault::keys::{KdfCost, Unlock};
use authvault::model::Credential;
use authvault::store::{ChainState, Store, Vault};
use secrecy::{ExposeSecret, SecretString};

use super::common::{TempVault, ok, stdout};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/vault-format3/vault.db"
);
const PASSPHRASE: &str = "format three fixture passphrase";

/// Every time column, with the table it is in.
const TIME_COLUMNS: [(&str, &str); 13] = [
    ("vault_meta", "created_at"),
    ("unlock_methods", "created_at"),
    ("data_keys", "created_at"),
    ("accounts", "created_at"),
    ("accounts", "updated_at"),
    ("credentials", "expires_at"),
    ("credentials", "last_refresh"),
    ("credentials", "lease_until"),
    ("credentials", "updated_at"),
    ("audit_log", "at"),
    ("settings", "updated_at"),
    ("selection_history", "at"),
    ("subscription_snapshots", "fetched_at"),
];

/// A private copy of the fixture, as a user's vault would be.
fn copy_fixture() -> TempVault {
    let tv = TempVault::new();
    fs::create_dir(tv.vault_dir()).expect("vault dir");
    fs::set_permissions(tv.vault_dir(), fs::Permissions::from_mode(0o700)).expect("chmod dir");
    fs::copy(FIXTURE, &tv.path).expect("copy fixture");
    fs::set_permissions(&tv.path, fs::Permissions::from_mode(0o600)).expect("chmod file");
    tv
}

fn times(tv: &TempVault) -> Vec<String> {
    let raw = tv.raw();
    let mut out = Vec::new();
    for (table, column) in TIME_COLUMNS {
        let mut stmt = raw
            .prepare(&format!(
                "SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
            ))
            .expect("prepare");
        let values = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query");
        out.extend(values.map(Result::unwrap));
    }
    out
}

#[test]
fn a_vault_of_the_previous_release_opens_migrates_and_reads_completely() {
    let tv = copy_fixture();
    let version = |tv: &TempVault| -> i64 {
        tv.raw()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version")
    };
    assert_eq!(version(&tv), 3, "the fixture is format 3");
    let before = times(&tv);
    assert!(
        before.iter().any(|t| t.len() != 27),
        "the fixture has times in the old variable-width form: {before:?}"
    );
    assert!(before.contains(&"2026-11-01T10:00:00.123456789Z".to_owned()));

    let fixture_entries: u32 = tv
        .raw()
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .expect("count");
    let pw = SecretString::from(PASSPHRASE);
    let mut store =
        Store::open(&tv.path, &Unlock::Passphrase(&pw, KdfCost::default())).expect("opens");
    assert_eq!(version(&tv), authvault::db::format_version());

    let after = times(&tv);
    assert_eq!(
        after.len(),
        before.len() + 1,
        "no time lost; one audit entry (the key-check upgrade) added"
    );
    for t in &after {
        assert_eq!(t.len(), 27, "{t} is in the one fixed-width form");
        chrono::DateTime::parse_from_rfc3339(t).expect("parses");
    }
    assert!(after.contains(&"2026-11-01T10:00:00.123456Z".to_owned()));
    assert!(after.contains(&"2026-10-10T10:30:00.000000Z".to_owned()));

    assert_eq!(store.verify_sealed().expect("every sealed value opens"), 33);
    let accounts = store.accounts().expect("accounts");
    assert_eq!(accounts.len(), 10);
    let mut credentials = 0;
    for account in &accounts {
        for &kind in &account.credentials {
            let (_, credential) = store
                .credential(&account.label, kind, "upgrade test")
                .unwrap_or_else(|e| panic!("{} {kind}: {e}", account.label));
            // API keys and refresh tokens carry the fixtures' marker (the
            // OpenAI access tokens are JWTs without it).
            let secret = match &credential {
                Credential::ApiKey(key) => key,
                Credential::OAuth(tokens) => tokens.refresh_token.as_ref().expect("refresh token"),
            };
            assert!(
                secret.expose_secret().contains("FIXTURE"),
                "{}",
                account.label
            );
            credentials += 1;
        }
    }
    assert_eq!(credentials, 11);
    let report = store.verify_audit().expect("audit");
    assert_eq!(report.state, ChainState::Intact);
    let entries = store.audit_entries(None).expect("entries");
    // The fixture's entries name no host (format 12 added it) and keep their
    // v1 MACs; the entries this release appended name this host.
    let (old, new) = entries.split_at(fixture_entries as usize);
    assert!(old.iter().all(|e| e.host.is_none()), "{old:?}");
    assert!(!new.is_empty());
    assert!(
        new.iter().all(|e| e.host.as_deref() == Some(store.host())),
        "{new:?}"
    );
    let actions: Vec<String> = entries.into_iter().map(|e| e.action).collect();
    assert!(
        actions.contains(&"unlock_method.upgrade".to_owned()),
        "the v1 key check is rewritten bound to the vault id: {actions:?}"
    );
    drop(store);

    // The binary agrees, and a second open changes nothing more.
    let enable = ok(tv
        .cmd(&["accounts", "enable", "format3-key"])
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE));
    assert!(enable.status.success());
    let out = ok(tv
        .cmd(&["token", "--account", "format3-key"])
        .env("AUTHVAULT_PASSPHRASE", PASSPHRASE));
    assert_eq!(stdout(&out), "sk-FIXTURE-format3-api-key\n");
    let info = Vault::open(&tv.path).and_then(|v| v.info()).expect("info");
    assert_eq!(info.format_version, authvault::db::format_version());

    // A host written into an entry from before format 12 breaks its MAC.
    tv.raw()
        .execute("UPDATE audit_log SET host = 'laptop' WHERE seq = 2", [])
        .expect("tamper");
    let store = Store::open(&tv.path, &Unlock::Passphrase(&pw, KdfCost::default())).expect("opens");
    assert!(
        matches!(
            store.verify_audit().expect("audit").state,
            ChainState::Broken { first_bad: 2, .. }
        ),
        "a host added to an old entry went unnoticed"
    );
}

#[test]
fn an_unparsable_stored_time_is_an_integrity_error_naming_the_row() {
    let tv = copy_fixture();
    let pw = SecretString::from(PASSPHRASE);
    drop(Store::open(&tv.path, &Unlock::Passphrase(&pw, KdfCost::default())).expect("opens"));
    let row: i64 = tv
        .raw()
        .query_row(
            "SELECT c.id FROM credentials c JOIN accounts a ON a.id = c.account_id
             WHERE a.label = 'openai-team' AND c.kind = 'oauth'",
            [],
            |r| r.get(0),
        )
        .expect("row");
    tv.raw()
        .execute(
            "UPDATE credentials SET last_refresh = 'last tuesday' WHERE id = ?1",
            [row],
        )
        .expect("tamper");
    let mut store =
        Store::open(&tv.path, &Unlock::Passphrase(&pw, KdfCost::default())).expect("opens");
    let err = store
        .credential(
            "openai-team",
            authvault::model::CredentialKind::OAuth,
            "test",
        )
        .expect_err("not silently None");
    assert_eq!(
        err.to_string(),
        format!(
            "integrity error in credentials.last_refresh row {row}: stored time is not in the \
             vault's time format (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
        )
    );
}
