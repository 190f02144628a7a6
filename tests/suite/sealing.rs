//! Sealed columns resist tampering: flipped bytes and moved values never open.

use authvault::Error;
use authvault::keys::{MemoryKeyring, Unlock};
use authvault::model::{CredentialKind, Provider};
use authvault::store::{AccountSelector, SEALED_COLUMNS, Store, Vault};

use super::common::{Rng, TempVault, api_key_account, memory_vault, oauth_account, seed};

/// Every sealed value in the vault: (table, column, rowid, bytes).
fn sealed(tv: &TempVault) -> Vec<(&'static str, &'static str, i64, Vec<u8>)> {
    let raw = tv.raw();
    let mut out = Vec::new();
    for col in SEALED_COLUMNS {
        let mut stmt = raw
            .prepare(&format!(
                "SELECT rowid, {c} FROM {t} WHERE {c} IS NOT NULL",
                c = col.column,
                t = col.table
            ))
            .expect("prepare");
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query");
        for row in rows {
            let (id, bytes) = row.expect("row");
            out.push((col.table, col.column, id, bytes));
        }
    }
    out
}

fn write(raw: &rusqlite::Connection, table: &str, column: &str, row: i64, bytes: &[u8]) {
    raw.execute(
        &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
        rusqlite::params![bytes, row],
    )
    .expect("write");
}

/// Reads the value at (table, column, row) through the public API.
fn read(
    tv: &TempVault,
    ring: &MemoryKeyring,
    store: &mut Store,
    table: &str,
    column: &str,
    row: i64,
) -> Result<(), Error> {
    match (table, column) {
        ("vault_meta", _) => Vault::open(&tv.path)?
            .unlock(&Unlock::Keyring(ring))
            .map(drop),
        ("accounts", _) => store.accounts().map(drop),
        ("selection_history", _) => store.selection_history().map(drop),
        ("usage_projects", _) => store
            .usage_events(&authvault::store::UsageFilter::default())
            .map(drop),
        ("credentials", col) => {
            let (label, kind): (String, String) = tv
                .raw()
                .query_row(
                    "SELECT a.label, c.kind FROM credentials c JOIN accounts a ON a.id = c.account_id WHERE c.id = ?1",
                    [row],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .expect("lookup");
            let kind: CredentialKind = kind.parse().expect("kind");
            assert!(matches!(
                (col, kind),
                ("api_key", CredentialKind::ApiKey) | (_, CredentialKind::OAuth)
            ));
            store.credential(&label, kind, "test").map(drop)
        }
        other => panic!("unknown sealed column {other:?}"),
    }
}

#[test]
fn ten_thousand_byte_flips_never_open_and_always_name_the_place() {
    let ring = MemoryKeyring::default();
    let (tv, mut store) = memory_vault(&ring);
    store
        .merge(
            &authvault::store::MergeInput {
                history: vec![authvault::store::HistoryEntry {
                    task_context: Some("refactor the FLIP parser".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            false,
        )
        .expect("history");
    for label in ["a", "b", "c"] {
        store
            .add_account(&oauth_account(label, "FLIP"))
            .expect("add");
    }
    store
        .record_usage(
            &[authvault::store::UsageEvent {
                at: chrono::Utc::now(),
                provider: Provider::Claude,
                account: None,
                model: "claude-sonnet-4".into(),
                agent: None,
                task_type: None,
                session: None,
                project: Some("-home-u-FLIP".into()),
                source: authvault::usage::Source::ClaudeCode,
                tokens: authvault::usage::Tokens::default(),
                cost_pico: 0,
                price_version: None,
                identity: "m:r".into(),
            }],
            &[],
        )
        .expect("usage");
    let values = sealed(&tv);
    let columns: std::collections::BTreeSet<_> = values.iter().map(|(t, c, ..)| (*t, *c)).collect();
    assert_eq!(
        columns.len(),
        SEALED_COLUMNS.len(),
        "every sealed column is exercised"
    );
    let raw = tv.raw();
    let mut rng = Rng::new(seed("byte flips"));
    let audit_before = store.audit_entries(None).expect("audit").len();
    for i in 0..10_000 {
        let (table, column, row, original) = &values[rng.below(values.len() as u64) as usize];
        let mut flipped = original.clone();
        let at = rng.below(flipped.len() as u64) as usize;
        flipped[at] ^= 1 + rng.below(255) as u8;
        write(&raw, table, column, *row, &flipped);
        let err = read(&tv, &ring, &mut store, table, column, *row)
            .expect_err("a flipped value must never open");
        let msg = err.to_string();
        let place = format!("{table}.{column} row {row}");
        assert!(
            msg.contains(&place),
            "flip {i} at byte {at} of {place}: error does not name it: {msg}"
        );
        assert!(!msg.contains("FLIP"), "{msg}");
        write(&raw, table, column, *row, original);
    }
    assert_eq!(
        store.audit_entries(None).expect("audit").len(),
        audit_before,
        "no read succeeded"
    );
    assert_eq!(
        store.verify_sealed().expect("all restored"),
        values.len() as u64
    );
}

#[test]
fn a_sealed_value_moved_to_another_row_column_or_account_fails_to_open() {
    let ring = MemoryKeyring::default();
    let (tv, mut store) = memory_vault(&ring);
    store.add_account(&oauth_account("a", "MOVE")).expect("add");
    store.add_account(&oauth_account("b", "MOVE")).expect("add");
    let raw = tv.raw();
    let cases = [
        // another account's access token into a's row (another row and account)
        "UPDATE credentials SET access_token = (SELECT access_token FROM credentials c JOIN accounts a ON a.id = c.account_id WHERE a.label = 'b' AND c.kind = 'oauth') WHERE kind = 'oauth' AND account_id = (SELECT id FROM accounts WHERE label = 'a')",
        // the same row's refresh token into its access token column (another column)
        "UPDATE credentials SET access_token = refresh_token WHERE kind = 'oauth' AND account_id = (SELECT id FROM accounts WHERE label = 'a')",
        // the API key into the access token (another row and column, same account)
        "UPDATE credentials SET access_token = (SELECT api_key FROM credentials WHERE kind = 'api_key' AND account_id = (SELECT id FROM accounts WHERE label = 'a')) WHERE kind = 'oauth' AND account_id = (SELECT id FROM accounts WHERE label = 'a')",
    ];
    let original: Vec<u8> = raw
        .query_row(
            "SELECT access_token FROM credentials WHERE kind = 'oauth' AND account_id = (SELECT id FROM accounts WHERE label = 'a')",
            [],
            |r| r.get(0),
        )
        .expect("read");
    for sql in cases {
        raw.execute(sql, []).expect("move");
        let err = store
            .credential("a", CredentialKind::OAuth, "test")
            .expect_err("moved value opened");
        assert!(
            matches!(
                err,
                Error::Integrity {
                    table: "credentials",
                    column: "access_token",
                    ..
                }
            ),
            "{err}"
        );
        raw.execute(
            "UPDATE credentials SET access_token = ?1 WHERE kind = 'oauth' AND account_id = (SELECT id FROM accounts WHERE label = 'a')",
            [&original],
        )
        .expect("restore");
        store
            .credential("a", CredentialKind::OAuth, "test")
            .expect("restored value opens");
    }
    // Identity fields too: b's e-mail copied onto a.
    raw.execute("UPDATE accounts SET email = (SELECT email FROM accounts WHERE label = 'b') WHERE label = 'a'", [])
        .expect("move email");
    let err = store.accounts().expect_err("moved email opened");
    assert!(
        matches!(
            err,
            Error::Integrity {
                table: "accounts",
                column: "email",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn swapping_clear_columns_between_accounts_is_detected() {
    let ring = MemoryKeyring::default();
    let (tv, mut store) = memory_vault(&ring);
    store
        .add_account(&oauth_account("work", "SWAP"))
        .expect("add");
    store
        .add_account(&oauth_account("home", "SWAP"))
        .expect("add");
    tv.raw()
        .execute_batch(
            "UPDATE accounts SET label = 'tmp' WHERE label = 'work';
             UPDATE accounts SET label = 'work' WHERE label = 'home';
             UPDATE accounts SET label = 'home' WHERE label = 'tmp';",
        )
        .expect("swap");
    let err = store
        .token(AccountSelector {
            label: Some("work"),
            provider: None,
        })
        .expect_err("swapped label served");
    assert!(
        matches!(
            err,
            Error::Malformed {
                table: "accounts",
                column: "row_mac",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_store_unlocked_before_another_process_rekeys_keeps_writing_readable_values() {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::OpenAi, "before", "sk-before"))
        .expect("add");
    super::common::ok(&mut tv.cmd_pw(&["rekey"]));
    // This store still holds only the retired key; its next write must not use it.
    store
        .add_account(&api_key_account(Provider::OpenAi, "after", "sk-after"))
        .expect("add after rekey");
    let mut fresh = tv.open_passphrase();
    assert_eq!(fresh.verify_sealed().expect("all open"), 3);
    for (label, key) in [("before", "sk-before"), ("after", "sk-after")] {
        let t = fresh
            .token(AccountSelector {
                label: Some(label),
                provider: None,
            })
            .expect("token");
        assert_eq!(secrecy::ExposeSecret::expose_secret(&t.secret), key);
    }
    assert_eq!(store.accounts().expect("old store reads too").len(), 2);
}
