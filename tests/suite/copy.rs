//! `vault copy --to LOCATION`: a vault copied from SQLite to PostgreSQL and
//! back keeps every row, value and audit entry; a destination that is not
//! vacant is refused and left as it was; a password in the destination URL
//! shows nowhere; `COPY_TABLES` names every table of both schemas.

use std::collections::BTreeMap;
use std::path::Path;

use authvault::model::{Provider, Snapshot, SnapshotSource};
use authvault::process::ProcessRef;
use authvault::quota::{Period, Unit};
use authvault::selector::{Cooldown, CooldownCause};
use authvault::store::{
    COPY_TABLES, GrantRequest, Probe, ProbeOutcome, Selection, SessionKind, Target, Usage,
    UsageEvent,
};
use authvault::usage::{Source, Tokens};
use chrono::{TimeDelta, Utc};
use rusqlite::types::Value as Cell;
use serde_json::{Value, json};

use super::common::{
    Backend, TempVault, api_key_account, fails, mode, oauth_account, ok, on_both_backends, stderr,
    stdout,
};

const MARKER: &str = "COPYCANARY";

fn usage(identity: &str, account: Option<&str>, project: Option<&str>) -> UsageEvent {
    UsageEvent {
        at: Utc::now() - TimeDelta::hours(2),
        provider: Provider::Claude,
        account: account.map(str::to_owned),
        model: "claude-model-x".into(),
        agent: Some("bot".into()),
        task_type: Some("review".into()),
        session: Some("session-1".into()),
        project: project.map(str::to_owned),
        source: Source::ClaudeCode,
        tokens: Tokens {
            input: 120,
            cache_read: 30,
            output: 40,
            ..Tokens::default()
        },
        cost_pico: 7_000_000,
        price_version: Some("test".into()),
        identity: identity.into(),
    }
}

/// A SQLite vault (test passphrase) holding a row in every kind of table:
/// an OpenAI and a Claude login, two API keys, a budget, a committed and an
/// open reservation, a granted session, usage events (one with a sealed
/// project path, 1,203 in all), a snapshot, a probe, a cooldown, a policy and a price
/// table. Returns it with each account's token as `vault token` prints it.
fn populated() -> (TempVault, BTreeMap<&'static str, String>) {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    let mut claude = oauth_account("sub-claude", MARKER);
    claude.provider = Provider::Claude;
    for account in [
        oauth_account("sub-openai", MARKER),
        claude,
        api_key_account(Provider::Claude, "key-claude", &format!("sk-ant-{MARKER}")),
        api_key_account(Provider::OpenAi, "key-openai", &format!("sk-{MARKER}-oa")),
    ] {
        store.add_account(&account).expect("add account");
    }
    store
        .set_budget(
            Target::Account("key-claude"),
            Unit::Tokens,
            Period::Day,
            100_000,
        )
        .expect("budget");
    let ttl = TimeDelta::minutes(30);
    let r = store
        .reserve("key-claude", Some("bot"), 500, ttl)
        .expect("reserve");
    let used = Usage {
        input: 100,
        output: 50,
        cache_read: 0,
        cache_write: 0,
        model: Some("claude-model-x".into()),
        usd_micros: Some(1_200),
    };
    store.commit_reservation(r.id, &used).expect("commit");
    store
        .reserve("key-openai", None, 10, ttl)
        .expect("open reservation");
    let selection = Selection {
        task_type: "review".into(),
        strategy: "round-robin".into(),
        provider: Some(Provider::Claude),
        account: Some("key-claude".into()),
        reason: "the only candidate".into(),
        candidates: json!([{ "account": "key-claude" }]),
        agent: Some("bot".into()),
        outcome: "granted".into(),
    };
    store
        .grant(&GrantRequest {
            selection: &selection,
            agent: "bot",
            tokens: 200,
            ttl,
            kind: SessionKind::Exec,
            process: &ProcessRef::current(),
            cwd: Some(Path::new("/srv/project")),
        })
        .expect("grant");
    store
        .record_usage(
            &[
                usage("r1", Some("key-claude"), Some(&format!("/home/{MARKER}/p"))),
                usage("r2", None, None),
            ],
            &[],
        )
        .expect("usage");
    // Enough events for a copy to write them in several statements, the
    // last one partly full.
    let bulk: Vec<UsageEvent> = (0..1_201)
        .map(|i| usage(&format!("bulk-{i}"), None, None))
        .collect();
    store.record_usage(&bulk, &[]).expect("bulk usage");
    store
        .save_snapshot(
            "sub-claude",
            &Snapshot::empty(Provider::Claude, SnapshotSource::UsageEndpoint, Utc::now()),
        )
        .expect("snapshot");
    store
        .record_probe(
            "key-openai",
            &Probe {
                probed_at: Utc::now(),
                latency_ms: 42,
                outcome: ProbeOutcome::RateLimited,
                status: Some(429),
                detail: Some("slow down".into()),
            },
        )
        .expect("probe");
    store
        .set_cooldown(
            "key-openai",
            Cooldown {
                until: Utc::now() + TimeDelta::hours(1),
                cause: CooldownCause::RateLimited,
            },
        )
        .expect("cooldown");
    store
        .set_policy(&[("policy.strategy".into(), json!("round-robin"))])
        .expect("policy");
    store
        .load_price_table("test-prices-1", "{}")
        .expect("price table");
    let tokens = BTreeMap::from([
        ("sub-openai", format!("at-{MARKER}-sub-openai")),
        ("sub-claude", format!("at-{MARKER}-sub-claude")),
        ("key-claude", format!("sk-ant-{MARKER}")),
        ("key-openai", format!("sk-{MARKER}-oa")),
    ]);
    (tv, tokens)
}

/// Every row of every table of a SQLite vault, in key order.
fn rows(tv: &TempVault) -> BTreeMap<&'static str, Vec<Vec<Cell>>> {
    let conn = tv.raw();
    COPY_TABLES
        .iter()
        .map(|t| {
            let sql = format!("SELECT * FROM {} ORDER BY {}", t.table, t.key.join(", "));
            let mut stmt = conn.prepare(&sql).expect(&sql);
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, Cell>(i)).collect())
                .expect(&sql)
                .collect::<rusqlite::Result<Vec<Vec<Cell>>>>()
                .expect(&sql);
            (t.table, rows)
        })
        .collect()
}

/// How the vault shows a location: a URL without its password.
fn shown(location: &str) -> String {
    authvault::db::Location::parse(location)
        .expect("location")
        .to_string()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out)).expect("JSON on stdout")
}

/// The audit entries after `seq`, as (action, details).
fn entries_after(tv: &TempVault, seq: usize) -> Vec<(String, Value)> {
    let out = ok(&mut tv.cmd_pw(&["audit", "--json"]));
    json_of(&out).as_array().expect("entries")[seq..]
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action").to_owned(),
                e["details"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_vault_copied_to_postgres_and_back_keeps_every_row_value_and_audit_entry() {
    let (src, tokens) = populated();
    let before = rows(&src);
    let sealed = src.open_passphrase().verify_sealed().expect("sealed");
    let entries = before["audit_log"].len();
    let pg = TempVault::on(Backend::Postgres);
    let pg_url = pg.location().to_str().expect("URL").to_owned();
    // How the vault names it: the URL without a password, normalized.
    let pg_shown = shown(&pg_url);

    let out = ok(&mut src.cmd_pw(&["copy", "--to", &pg_url, "--json"]));
    let report = json_of(&out);
    let copied: BTreeMap<String, u64> = report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["table"].as_str().expect("name").to_owned(),
                t["rows"].as_u64().expect("rows"),
            )
        })
        .collect();
    let want: BTreeMap<String, u64> = before
        .iter()
        .map(|(t, r)| ((*t).to_owned(), r.len() as u64))
        .collect();
    assert_eq!(copied, want);
    assert_eq!(report["rows"], want.values().sum::<u64>());
    assert_eq!(report["sealed_values"], sealed);
    assert_eq!(report["audit_entries"], entries);
    assert_eq!(report["to"], pg_shown);
    let empty: Vec<&String> = want
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(t, _)| t)
        .collect();
    assert!(
        empty
            .iter()
            .all(|t| *t == "quota_notices" || *t == "usage_files"),
        "the source has no row to copy in {empty:?}"
    );

    let fin = TempVault::new();
    let fin_path = fin.path.to_str().expect("path").to_owned();
    let out = ok(&mut pg.cmd_pw(&["copy", "--to", &fin_path]));
    let text = stdout(&out);
    assert!(text.contains(&format!("to {fin_path} (format")), "{text}");
    assert!(
        text.contains(&format!("sealed values opened: {sealed};")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "audit entries copied: {}, chain intact",
            entries + 1
        )),
        "{text}"
    );

    // The final file holds what the source held, row for row and byte for
    // byte; its chain goes on with one `vault.copied_from` per hop.
    let after = rows(&fin);
    for (table, want) in &before {
        let got = &after[table];
        match *table {
            "audit_log" => assert_eq!(&got[..entries], &want[..], "{table}"),
            // audit_seq, audit_head, audit_anchor move with the two entries.
            "vault_meta" => assert_eq!(got[0][..4], want[0][..4], "{table}"),
            _ => assert_eq!(got, want, "{table}"),
        }
    }
    let added = entries_after(&fin, entries);
    let actions: Vec<&str> = added.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["vault.copied_from", "vault.copied_from"]);
    assert_eq!(added[0].1["from"], src.path.to_str().expect("path"));
    assert_eq!(added[1].1["from"], pg_shown);
    assert_eq!(added[1].1["copied"]["audit_entries"], entries + 1);
    let source_added = entries_after(&src, entries);
    assert_eq!(source_added.len(), 1);
    assert_eq!(source_added[0].0, "vault.copy");
    assert_eq!(source_added[0].1["to"], pg_shown);
    assert_eq!(source_added[0].1["copied"]["sealed_values"], sealed);
    assert_eq!(entries_after(&pg, entries + 1)[0].0, "vault.copy");

    // Every value reads back through the same passphrase.
    let verified = stdout(&ok(&mut fin.cmd_pw(&["audit", "verify"])));
    assert!(verified.contains("audit chain intact"), "{verified}");
    assert_eq!(
        fin.open_passphrase().verify_sealed().expect("sealed"),
        sealed
    );
    for (label, token) in &tokens {
        let out = ok(&mut fin.cmd_pw(&["token", "--account", label]));
        assert_eq!(stdout(&out).trim_end(), token, "{label}");
    }
    assert_eq!(mode(&fin.path), 0o600);
    assert_eq!(mode(fin.vault_dir()), 0o700);

    // Ids the database picks continue after the copied ones at both ends.
    let reserved = before["quota_reservations"].len();
    for tv in [&pg, &fin] {
        let out = ok(&mut tv.cmd_pw(&["reserve", "--account", "key-claude", "--tokens", "5"]));
        assert_eq!(stdout(&out).trim(), (reserved + 1).to_string());
    }
}

/// What a destination holds, to see that a refused copy left it alone.
fn state(tv: &TempVault) -> String {
    tv.raw_db().query_text(
        "SELECT vault_id || ' ' || CAST(audit_seq AS TEXT) || ' ' || \
         CAST((SELECT count(*) FROM audit_log) AS TEXT) FROM vault_meta",
    )
}

fn audit_count(tv: &TempVault) -> i64 {
    tv.raw_db().query_i64("SELECT count(*) FROM audit_log")
}

fn a_destination_that_is_not_vacant_is_refused_and_left_as_it_was(backend: Backend) {
    let src = TempVault::new();
    src.init_cli_passphrase();
    let src_entries = audit_count(&src);

    // Another vault.
    let vault = TempVault::on(backend);
    vault.init_cli_passphrase();
    let held = state(&vault);
    let bytes = (backend == Backend::Sqlite).then(|| vault.bytes());
    let to = vault.location().to_str().expect("location").to_owned();
    let err = stderr(&fails(&mut src.cmd_pw(&["copy", "--to", &to])));
    assert!(err.contains("cannot copy the vault to"), "{err}");
    let why = match backend {
        Backend::Sqlite => "something is already there",
        Backend::Postgres => "a vault is already there",
    };
    assert!(err.contains(why), "{err}");
    assert!(err.contains("nothing was written there"), "{err}");
    assert_eq!(state(&vault), held);
    if let Some(bytes) = bytes {
        assert_eq!(vault.bytes(), bytes);
    }

    // Somebody else's data.
    let other = TempVault::on(backend);
    match backend {
        Backend::Sqlite => {
            std::fs::create_dir(other.path.parent().expect("dir")).expect("dir");
            std::fs::write(&other.path, "notes, not a vault").expect("write");
        }
        Backend::Postgres => other
            .raw_db()
            .exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')"),
    }
    let to = other.location().to_str().expect("location").to_owned();
    let err = stderr(&fails(&mut src.cmd_pw(&["copy", "--to", &to])));
    assert!(err.contains("cannot copy the vault to"), "{err}");
    match backend {
        Backend::Sqlite => {
            assert!(err.contains("something is already there"), "{err}");
            assert_eq!(
                std::fs::read_to_string(&other.path).expect("read"),
                "notes, not a vault"
            );
        }
        Backend::Postgres => {
            assert!(err.contains("the database holds other tables"), "{err}");
            let db = other.raw_db();
            assert_eq!(
                db.query_text("SELECT string_agg(body, ',') FROM notes"),
                "keep me"
            );
            assert_eq!(
                db.query_i64("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"),
                1
            );
        }
    }
    assert_eq!(audit_count(&src), src_entries, "the source recorded a copy");
}

on_both_backends!(a_destination_that_is_not_vacant_is_refused_and_left_as_it_was);

#[test]
fn a_password_in_the_destination_url_shows_in_no_output_log_or_audit_entry() {
    const PASSWORD: &str = "Copy-Pw-7f3a9c";
    let src = TempVault::new();
    src.init_cli_passphrase();
    let dst = TempVault::on(Backend::Postgres);
    let location = dst.location().to_str().expect("URL");
    // The private cluster trusts its socket, so the password is never asked for.
    let mut url = url::Url::parse(location).expect("URL");
    url.set_password(Some(PASSWORD)).expect("password");
    let url = url.to_string();
    assert!(url.contains(PASSWORD));

    let mut outputs = Vec::new();
    for json in [true, false] {
        let mut args = vec!["copy", "--to", &url];
        if json {
            args.push("--json");
        }
        let mut cmd = src.cmd_pw(&args);
        cmd.env("RUST_LOG", "trace");
        // The first copies; the second finds a vault there and is refused.
        outputs.push(if json { ok(&mut cmd) } else { fails(&mut cmd) });
    }
    assert_eq!(json_of(&outputs[0])["to"], shown(location));
    assert!(stderr(&outputs[1]).contains("a vault is already there"));
    let audits = [
        ok(&mut src.cmd_pw(&["audit", "--json"])),
        ok(&mut dst.cmd_pw(&["audit", "--json"])),
    ];
    for out in outputs.iter().chain(&audits) {
        for text in [stdout(out), stderr(out)] {
            assert!(!text.contains(PASSWORD), "the password showed: {text}");
        }
    }
    assert!(stdout(&audits[0]).contains("vault.copy"));
    assert!(stdout(&audits[1]).contains("vault.copied_from"));
}

/// The tables of the vault's schema, sorted, comma-separated.
fn schema_tables(tv: &TempVault, backend: Backend) -> String {
    tv.raw_db().query_text(match backend {
        Backend::Sqlite => {
            "SELECT coalesce(group_concat(name, ','), '') FROM (SELECT name FROM sqlite_schema \
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)"
        }
        Backend::Postgres => {
            "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename <> 'authvault_format'"
        }
    })
}

fn copy_tables_name_every_table_parents_first_with_its_primary_key(backend: Backend) {
    let tv = TempVault::on(backend);
    tv.init_cli_passphrase();
    let mut names: Vec<&str> = COPY_TABLES.iter().map(|t| t.table).collect();
    names.sort_unstable();
    assert_eq!(schema_tables(&tv, backend), names.join(","));
    let db = tv.raw_db();
    for (i, t) in COPY_TABLES.iter().enumerate() {
        let name = t.table;
        let (key, parents) = match backend {
            Backend::Sqlite => (
                format!(
                    "SELECT coalesce(group_concat(name, ','), '') FROM \
                     (SELECT name FROM pragma_table_info('{name}') WHERE pk > 0 ORDER BY pk)"
                ),
                format!(
                    "SELECT coalesce(group_concat(\"table\", ','), '') \
                     FROM pragma_foreign_key_list('{name}')"
                ),
            ),
            Backend::Postgres => (
                format!(
                    "SELECT coalesce(string_agg(a.attname, ',' ORDER BY \
                     array_position(CAST(i.indkey AS int2[]), a.attnum)), '') \
                     FROM pg_index i JOIN pg_attribute a \
                     ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                     WHERE i.indrelid = '{name}'::regclass AND i.indisprimary"
                ),
                format!(
                    "SELECT coalesce(string_agg(CAST(confrelid::regclass AS TEXT), ','), '') \
                     FROM pg_constraint WHERE conrelid = '{name}'::regclass AND contype = 'f'"
                ),
            ),
        };
        assert_eq!(
            db.query_text(&key),
            t.key.join(","),
            "primary key of {name}"
        );
        let parents = db.query_text(&parents);
        for parent in parents.split(',').filter(|p| !p.is_empty()) {
            let at = COPY_TABLES.iter().position(|c| c.table == parent);
            assert!(
                at.is_some_and(|at| at < i),
                "{name} refers to {parent}, which COPY_TABLES lists after it"
            );
        }
        if backend == Backend::Postgres {
            let identity = db.query_text(&format!(
                "SELECT coalesce(string_agg(column_name, ','), '') FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{name}' \
                 AND is_identity = 'YES'"
            ));
            assert_eq!(
                identity,
                t.identity.unwrap_or_default(),
                "identity of {name}"
            );
        }
    }
}

on_both_backends!(copy_tables_name_every_table_parents_first_with_its_primary_key);
