//! Usage history: events stored once, the hourly rollup kept equal to the
//! events through every kind of write, project paths sealed.

use std::path::PathBuf;

use authvault::keys::{MemoryKeyring, Unlock};
use authvault::model::Provider;
use authvault::store::{EventRow, FileMark, Store, UsageEvent, UsageFilter, UsageWritten};
use authvault::usage::{Source, Tokens};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::common::{Rng, api_key_account, contains, memory_vault, seed};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a test time")
}

fn event(identity: &str, at_: &str, input: u64, output: u64) -> UsageEvent {
    UsageEvent {
        at: at(at_),
        provider: Provider::Claude,
        account: None,
        model: "claude-sonnet-4-20250514".into(),
        agent: None,
        task_type: None,
        session: Some("s1".into()),
        project: Some("-home-u-demo".into()),
        source: Source::ClaudeCode,
        tokens: Tokens {
            input,
            output,
            ..Tokens::default()
        },
        cost_pico: input * 3_000_000 + output * 15_000_000,
        price_version: Some("test".into()),
        identity: identity.into(),
    }
}

/// The hourly sums computed from the events themselves, in the rollup's order.
fn hours_from_events(store: &mut Store) -> Vec<EventRow> {
    let mut sums: std::collections::BTreeMap<_, EventRow> = std::collections::BTreeMap::new();
    for e in store.usage_events(&UsageFilter::default()).unwrap() {
        let hour = e.at.duration_trunc(TimeDelta::hours(1)).unwrap();
        let key = (
            hour,
            e.provider.as_str(),
            e.account.clone(),
            e.model.clone(),
            e.source,
            e.agent.clone(),
            e.task_type.clone(),
        );
        let row = sums.entry(key).or_insert_with(|| EventRow {
            at: hour,
            session: None,
            project: None,
            events: 0,
            tokens: Tokens::default(),
            cost_pico: 0,
            ..e.clone()
        });
        row.events += 1;
        row.tokens.add(&e.tokens);
        row.cost_pico += e.cost_pico;
    }
    let mut rows: Vec<EventRow> = sums.into_values().collect();
    rows.sort_by(|a, b| {
        (a.at, &a.account, &a.model, &a.agent).cmp(&(b.at, &b.account, &b.model, &b.agent))
    });
    rows
}

fn rollup(store: &mut Store) -> Vec<EventRow> {
    let mut rows = store.usage_hours(&UsageFilter::default()).unwrap();
    rows.sort_by(|a, b| {
        (a.at, &a.account, &a.model, &a.agent).cmp(&(b.at, &b.account, &b.model, &b.agent))
    });
    rows
}

#[test]
fn an_event_is_stored_once_and_a_larger_copy_replaces_it() {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    let first = [event("m1:r1", "2025-06-20T10:15:30Z", 100, 200)];
    assert_eq!(
        store.record_usage(&first, &[]).unwrap(),
        UsageWritten {
            added: 1,
            replaced: 0,
            unchanged: 0
        }
    );
    // The same event again, and a smaller copy: nothing changes.
    let smaller = [event("m1:r1", "2025-06-20T10:15:30Z", 100, 100)];
    assert_eq!(
        store.record_usage(&first, &[]).unwrap(),
        UsageWritten {
            added: 0,
            replaced: 0,
            unchanged: 1
        }
    );
    assert_eq!(
        store.record_usage(&smaller, &[]).unwrap(),
        UsageWritten {
            added: 0,
            replaced: 0,
            unchanged: 1
        }
    );
    // A copy that counts more tokens replaces it (ccusage keeps the larger).
    let larger = [event("m1:r1", "2025-06-20T10:15:30Z", 100, 300)];
    assert_eq!(
        store.record_usage(&larger, &[]).unwrap(),
        UsageWritten {
            added: 0,
            replaced: 1,
            unchanged: 0
        }
    );
    let events = store.usage_events(&UsageFilter::default()).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tokens.output, 300);
    assert_eq!(events[0].project.as_deref(), Some("-home-u-demo"));
    assert_eq!(rollup(&mut store), hours_from_events(&mut store));
}

#[test]
fn the_hourly_rollup_equals_the_events_through_inserts_replacements_removal_and_rebuild() {
    let keyring = MemoryKeyring::default();
    let (tv, mut store) = memory_vault(&keyring);
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-ant-api03-x"))
        .unwrap();
    store
        .add_account(&api_key_account(Provider::Claude, "home", "sk-ant-api03-y"))
        .unwrap();
    let mut rng = Rng::new(seed("usage rollup"));
    let start = at("2025-06-20T22:00:00Z");
    let mut events = Vec::new();
    for _ in 0..400 {
        let mut e = event(
            &format!("m{}", rng.below(300)),
            "2025-06-20T00:00:00Z",
            rng.below(1000),
            rng.below(1000),
        );
        e.at = start + TimeDelta::seconds(i64::try_from(rng.below(4 * 3600)).unwrap());
        e.account = [None, Some("work".to_owned()), Some("home".to_owned())]
            [usize::try_from(rng.below(3)).unwrap()]
        .clone();
        e.agent = [None, Some("ci".to_owned())][usize::try_from(rng.below(2)).unwrap()].clone();
        e.model = ["claude-sonnet-4-20250514", "claude-opus-4-20250514"]
            [usize::try_from(rng.below(2)).unwrap()]
        .into();
        e.tokens.cache_read = rng.below(5000);
        e.tokens.cache_write_1h = rng.below(50);
        events.push(e);
    }
    let mut written = UsageWritten::default();
    for chunk in events.chunks(70) {
        written.add(store.record_usage(chunk, &[]).unwrap());
    }
    assert_eq!(written.added + written.replaced + written.unchanged, 400);
    assert!(written.replaced > 0 && written.unchanged > 0, "{written:?}");
    let expected = hours_from_events(&mut store);
    assert!(expected.len() > 10);
    assert_eq!(rollup(&mut store), expected);

    // Removing an account moves its usage to "unattributed".
    store.remove_account("home").unwrap();
    let expected = hours_from_events(&mut store);
    assert!(
        expected
            .iter()
            .all(|r| r.account.as_deref() != Some("home"))
    );
    assert_eq!(rollup(&mut store), expected);

    // A damaged rollup is rebuilt from the events.
    tv.raw()
        .execute(
            "UPDATE usage_hourly SET input_tokens = input_tokens + 7",
            [],
        )
        .unwrap();
    assert_ne!(rollup(&mut store), expected);
    assert_eq!(
        store.rebuild_usage_rollups().unwrap(),
        expected.len() as u64
    );
    assert_eq!(rollup(&mut store), expected);
}

#[test]
fn a_larger_copy_without_an_account_keeps_the_stored_attribution() {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-ant-api03-x"))
        .unwrap();
    let attributed = UsageEvent {
        account: Some("work".into()),
        agent: Some("coder".into()),
        ..event("m1:r1", "2025-06-20T10:15:30Z", 100, 200)
    };
    store.record_usage(&[attributed], &[]).unwrap();
    // A later import of the transcript, without --account, finds more tokens.
    let larger = event("m1:r1", "2025-06-20T10:15:30Z", 100, 300);
    assert_eq!(store.record_usage(&[larger], &[]).unwrap().replaced, 1);
    let stored = store.usage_events(&UsageFilter::default()).unwrap();
    let got: Vec<_> = stored
        .iter()
        .map(|e| (e.account.as_deref(), e.agent.as_deref(), e.tokens.output))
        .collect();
    assert_eq!(got, [(Some("work"), Some("coder"), 300)]);
    assert_eq!(rollup(&mut store), hours_from_events(&mut store));
}

#[test]
fn attributing_a_session_takes_only_its_unattributed_events_in_the_window_and_the_rollup_follows() {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    for label in ["work", "home"] {
        store
            .add_account(&api_key_account(Provider::Claude, label, "sk-ant-api03-x"))
            .unwrap();
    }
    let mut events = vec![
        event("a", "2025-06-20T10:15:00Z", 1, 2),
        event("b", "2025-06-20T10:45:00Z", 3, 4),
        // Already someone's: stays theirs.
        UsageEvent {
            account: Some("home".into()),
            agent: Some("ci".into()),
            ..event("c", "2025-06-20T10:50:00Z", 5, 6)
        },
        // Outside the window.
        event("d", "2025-06-20T12:00:00Z", 7, 8),
        // Another session, another source.
        UsageEvent {
            session: Some("s2".into()),
            ..event("e", "2025-06-20T10:20:00Z", 9, 10)
        },
        UsageEvent {
            source: Source::Codex,
            ..event("f", "2025-06-20T10:20:00Z", 11, 12)
        },
    ];
    events[1].agent = Some("own".into());
    store.record_usage(&events, &[]).unwrap();
    let window = (at("2025-06-20T10:00:00Z"), at("2025-06-20T11:00:00Z"));
    let attributed = store
        .attribute_usage(Source::ClaudeCode, "s1", window, "work", Some("coder"))
        .unwrap();
    assert_eq!(attributed, 2);
    let mut who: Vec<(u64, Option<String>, Option<String>)> = store
        .usage_events(&UsageFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.tokens.input, e.account, e.agent))
        .collect();
    who.sort();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        who,
        vec![
            (1, s("work"), s("coder")),
            (3, s("work"), s("own")),
            (5, s("home"), s("ci")),
            (7, None, None),
            (9, None, None),
            (11, None, None),
        ]
    );
    assert_eq!(rollup(&mut store), hours_from_events(&mut store));
    // Again: nothing is left to attribute, nothing changes hands.
    assert_eq!(
        store
            .attribute_usage(Source::ClaudeCode, "s1", window, "home", None)
            .unwrap(),
        0
    );
    assert!(
        store
            .attribute_usage(Source::ClaudeCode, "s2", window, "nobody", None)
            .is_err()
    );
}

#[test]
fn an_unknown_account_label_writes_nothing() {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    let mut bad = event("m2:r2", "2025-06-20T10:15:30Z", 1, 1);
    bad.account = Some("nobody".into());
    let good = event("m1:r1", "2025-06-20T10:15:30Z", 1, 1);
    let err = store.record_usage(&[good, bad], &[]).unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
    assert_eq!(store.usage_events(&UsageFilter::default()).unwrap(), vec![]);
}

#[test]
fn project_paths_are_sealed_and_filtered_by_fingerprint() {
    let keyring = MemoryKeyring::default();
    let (tv, mut store) = memory_vault(&keyring);
    let project = "-home-u-secret-customer-project";
    let mut a = event("m1:r1", "2025-06-20T10:15:30Z", 1, 1);
    a.project = Some(project.into());
    let b = event("m2:r2", "2025-06-20T10:15:31Z", 2, 2);
    store.record_usage(&[a, b], &[]).unwrap();
    store.checkpoint().unwrap();
    assert!(!contains(&tv.bytes(), project.as_bytes()));
    assert!(!contains(&tv.bytes(), b"m1:r1"));
    let filter = UsageFilter {
        project: Some(project.into()),
        ..UsageFilter::default()
    };
    let rows = store.usage_events(&filter).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].project.as_deref(), Some(project));
    // The sealed path is bound to its row: moving it is an integrity error.
    tv.raw()
        .execute("UPDATE usage_projects SET path = (SELECT path FROM usage_projects WHERE id = 1) WHERE id = 2", [])
        .unwrap();
    assert!(store.usage_events(&UsageFilter::default()).is_err());
}

#[test]
fn file_marks_are_kept_per_source_and_path() {
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    let a = PathBuf::from("/logs/a.jsonl");
    let b = PathBuf::from("/logs/b.jsonl");
    let mark = FileMark {
        device: 1,
        inode: 2,
        size: 300,
        read_to: 250,
        lines: 4,
    };
    store
        .record_usage(
            &[event("m1:r1", "2025-06-20T10:15:30Z", 1, 1)],
            &[(Source::ClaudeCode, a.clone(), mark)],
        )
        .unwrap();
    assert_eq!(
        store
            .usage_file_marks(Source::ClaudeCode, &[a.clone(), b])
            .unwrap(),
        vec![Some(mark), None]
    );
    assert_eq!(
        store.usage_file_marks(Source::Codex, &[a]).unwrap(),
        vec![None]
    );
}

#[test]
fn file_marks_are_kept_per_host_as_the_same_path_on_two_hosts_is_two_files() {
    let keyring = MemoryKeyring::default();
    let (tv, store) = memory_vault(&keyring);
    let mut a = store.with_host("build-a".into());
    let path = PathBuf::from("/home/ci/.claude/projects/-repo/s.jsonl");
    let mark = FileMark {
        device: 1,
        inode: 2,
        size: 300,
        read_to: 300,
        lines: 4,
    };
    a.record_usage(
        &[event("m1:r1", "2025-06-20T10:15:30Z", 1, 1)],
        &[(Source::ClaudeCode, path.clone(), mark)],
    )
    .unwrap();
    let mut b = Store::open(&tv.path, &Unlock::Keyring(&keyring))
        .unwrap()
        .with_host("build-b".into());
    assert_eq!(
        b.usage_file_marks(Source::ClaudeCode, std::slice::from_ref(&path))
            .unwrap(),
        vec![None],
        "host b would skip what host a read of its own file"
    );
    assert_eq!(
        a.usage_file_marks(Source::ClaudeCode, &[path]).unwrap(),
        vec![Some(mark)]
    );
}

/// One Claude Code assistant line as Claude Code writes it.
fn claude_line(id: &str, request: &str, ts: &str, model: &str, tokens: [u64; 5]) -> String {
    let [input, output, cw5, cw1h, read] = tokens;
    serde_json::json!({
        "parentUuid": null, "isSidechain": false, "userType": "external",
        "cwd": "/home/u/demo", "sessionId": "s", "version": "1.0.85",
        "message": {
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "hi"}],
            "usage": {
                "input_tokens": input, "output_tokens": output,
                "cache_creation_input_tokens": cw5 + cw1h, "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": cw5, "ephemeral_1h_input_tokens": cw1h},
                "service_tier": "standard"
            }
        },
        "requestId": request, "type": "assistant", "timestamp": ts
    })
    .to_string()
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn import_json(tv: &super::common::TempVault, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "usage", "import", "claude-code"];
    all.extend_from_slice(args);
    serde_json::from_str(&super::common::stdout(&super::common::ok(
        &mut tv.cmd_pw(&all),
    )))
    .unwrap()
}

#[test]
fn claude_code_import_reads_only_what_is_new_and_a_torn_last_line_once_complete() {
    let tv = super::common::TempVault::new();
    drop(tv.init_passphrase());
    let logs = tempfile::tempdir().unwrap();
    let root = logs.path().to_str().unwrap().to_owned();
    let a = logs.path().join("projects/-home-u-demo/aaaa.jsonl");
    let b = logs
        .path()
        .join("projects/-home-u-other/bbbb/subagents/agent-1.jsonl");
    let sonnet = "claude-sonnet-4-20250514";
    append(
        &a,
        &format!(
            "{}\n{}\n{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"hi\"}}}}\n",
            claude_line(
                "m1",
                "r1",
                "2025-06-20T10:15:30.000Z",
                sonnet,
                [100, 200, 1000, 0, 5000]
            ),
            claude_line(
                "m2",
                "r2",
                "2025-06-20T16:30:00.000Z",
                "claude-opus-4-20250514",
                [10, 50, 0, 0, 20_000]
            ),
        ),
    );
    // The same response in another file (a subagent transcript) counts once.
    append(
        &b,
        &format!(
            "{}\n{}\n",
            claude_line(
                "m1",
                "r1",
                "2025-06-20T10:15:30.000Z",
                sonnet,
                [100, 200, 1000, 0, 5000]
            ),
            claude_line(
                "m3",
                "r3",
                "2025-06-21T01:00:00.000Z",
                sonnet,
                [5, 70, 0, 300, 0]
            ),
        ),
    );
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (
            r["files"].as_u64(),
            r["lines"].as_u64(),
            r["events"].as_u64()
        ),
        (Some(2), Some(5), Some(4))
    );
    assert_eq!(
        r["written"],
        serde_json::json!({"added": 3, "replaced": 0, "unchanged": 1})
    );

    // Again: nothing is read, nothing added.
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (r["files_read"].as_u64(), r["lines"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        r["written"],
        serde_json::json!({"added": 0, "replaced": 0, "unchanged": 0})
    );

    // Two appended lines are exactly what is added.
    append(
        &a,
        &format!(
            "{}\n{}\n",
            claude_line(
                "m4",
                "r4",
                "2025-06-22T09:00:00.000Z",
                sonnet,
                [1, 2, 0, 0, 0]
            ),
            claude_line(
                "m5",
                "r5",
                "2025-06-22T09:01:00.000Z",
                sonnet,
                [3, 4, 0, 0, 0]
            ),
        ),
    );
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (r["files_read"].as_u64(), r["lines"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(r["written"]["added"].as_u64(), Some(2));

    // A line being written is left for later, then read once complete.
    let torn = claude_line(
        "m6",
        "r6",
        "2025-06-22T10:00:00.000Z",
        sonnet,
        [7, 8, 0, 0, 0],
    );
    let (head, tail) = torn.split_at(torn.len() / 2);
    append(&a, head);
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (r["lines"].as_u64(), r["written"]["added"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(r["bad"], serde_json::json!([]));
    append(&a, &format!("{tail}\n"));
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (r["lines"].as_u64(), r["written"]["added"].as_u64()),
        (Some(1), Some(1))
    );

    let mut store = tv.open_passphrase();
    let events = store.usage_events(&UsageFilter::default()).unwrap();
    assert_eq!(events.len(), 6);
    let m3 = events
        .iter()
        .find(|e| e.tokens.cache_write_1h == 300)
        .unwrap();
    assert_eq!(
        (m3.session.as_deref(), m3.project.as_deref()),
        (Some("bbbb"), Some("-home-u-other"))
    );
    // L3 of the reference: 5·3e-6 + 70·15e-6 + 300·6e-6 dollars.
    assert_eq!(m3.cost_pico, 2_865_000_000);
}

#[test]
fn a_replaced_or_shrunk_transcript_is_read_again_and_adds_nothing_twice() {
    let tv = super::common::TempVault::new();
    drop(tv.init_passphrase());
    let logs = tempfile::tempdir().unwrap();
    let root = logs.path().to_str().unwrap().to_owned();
    let a = logs.path().join("projects/p/s.jsonl");
    let l1 = claude_line(
        "m1",
        "r1",
        "2025-06-20T10:00:00.000Z",
        "claude-sonnet-4",
        [1, 1, 0, 0, 0],
    );
    let l2 = claude_line(
        "m2",
        "r2",
        "2025-06-20T11:00:00.000Z",
        "claude-sonnet-4",
        [2, 2, 0, 0, 0],
    );
    append(&a, &format!("{l1}\n{l2}\n"));
    assert_eq!(
        import_json(&tv, &[&root])["written"]["added"].as_u64(),
        Some(2)
    );
    // Rewritten in place, shorter (compaction): read again, nothing new.
    std::fs::write(&a, format!("{l1}\n")).unwrap();
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (r["files_reread"].as_u64(), r["written"]["added"].as_u64()),
        (Some(1), Some(0))
    );
    // Replaced by another file at the same path, same size: read again.
    let l3 = claude_line(
        "m3",
        "r3",
        "2025-06-20T12:00:00.000Z",
        "claude-sonnet-4",
        [3, 3, 0, 0, 0],
    );
    let tmp = a.with_extension("tmp");
    std::fs::write(&tmp, format!("{l3}\n")).unwrap();
    std::fs::rename(&tmp, &a).unwrap();
    let r = import_json(&tv, &[&root]);
    assert_eq!(
        (r["files_reread"].as_u64(), r["written"]["added"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn unreadable_lines_are_reported_with_their_numbers_and_the_rest_is_imported() {
    let tv = super::common::TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-ant-api03-x"))
        .unwrap();
    drop(store);
    let logs = tempfile::tempdir().unwrap();
    let root = logs.path().join("projects");
    let a = root.join("p/s.jsonl");
    let good = claude_line(
        "m1",
        "r1",
        "2025-06-20T10:00:00.000Z",
        "claude-sonnet-4",
        [1, 1, 0, 0, 0],
    );
    append(
        &a,
        &format!(
            "{good}\nnot json at all\n{}\n\n{{\"timestamp\":\"soon\",\"message\":{{\"usage\":{{\"input_tokens\":1,\"output_tokens\":1}}}}}}\n",
            claude_line(
                "m2",
                "r2",
                "2025-06-20T11:00:00.000Z",
                "claude-sonnet-4",
                [2, 2, 0, 0, 0]
            ),
        ),
    );
    let r = import_json(&tv, &[root.to_str().unwrap(), "--account", "work"]);
    assert_eq!(r["written"]["added"].as_u64(), Some(2));
    let bad = &r["bad"][0];
    assert_eq!(bad["path"].as_str(), a.to_str());
    assert_eq!(bad["count"].as_u64(), Some(2));
    let numbers: Vec<u64> = bad["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 5]);
    let mut store = tv.open_passphrase();
    let accounts: Vec<_> = store
        .usage_events(&UsageFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.account)
        .collect();
    assert_eq!(accounts, [Some("work".to_owned()), Some("work".to_owned())]);
    // An unknown account is an error and writes nothing.
    let out = super::common::fails(&mut tv.cmd_pw(&[
        "usage",
        "import",
        "claude-code",
        root.to_str().unwrap(),
        "--account",
        "nobody",
    ]));
    assert!(super::common::stderr(&out).contains("nobody"));
}

/// Per (local day, model): tokens and cost, computed straight from the events.
fn days_from_events(events: &[EventRow], tz: chrono_tz::Tz) -> Vec<(Vec<String>, u64, u64, u64)> {
    let mut sums: std::collections::BTreeMap<Vec<String>, (u64, u64, u64)> =
        std::collections::BTreeMap::new();
    for e in events {
        let day = e.at.with_timezone(&tz).format("%Y-%m-%d").to_string();
        let s = sums.entry(vec![day, e.model.clone()]).or_default();
        s.0 += e.events;
        s.1 += e.tokens.total();
        s.2 += e.cost_pico;
    }
    sums.into_iter()
        .map(|(k, (n, t, c))| (k, n, t, c))
        .collect()
}

#[test]
fn days_in_daylight_saving_and_half_hour_zones_equal_the_sums_of_raw_events() {
    use authvault::usage::query::{Group, Query, Zone};
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    let mut rng = Rng::new(seed("usage zones"));
    let mut events = Vec::new();
    // Around both 2025 changes in New York, every minute of the hours
    // that move, and at random.
    for (i, start) in ["2025-03-08T00:00:00Z", "2025-11-01T00:00:00Z"]
        .iter()
        .enumerate()
    {
        for j in 0..600 {
            let mut e = event(&format!("{i}:{j}"), start, rng.below(1000), rng.below(1000));
            e.at += TimeDelta::minutes(i64::try_from(rng.below(3 * 24 * 60)).unwrap());
            e.model =
                ["claude-sonnet-4", "claude-opus-4"][usize::try_from(rng.below(2)).unwrap()].into();
            events.push(e);
        }
    }
    store.record_usage(&events, &[]).unwrap();
    let raw = store.usage_events(&UsageFilter::default()).unwrap();
    for name in ["America/New_York", "Asia/Kolkata", "UTC"] {
        let tz: chrono_tz::Tz = name.parse().unwrap();
        let query = Query {
            zone: Zone::named(name).unwrap(),
            group_by: vec![Group::Day, Group::Model],
            ..Query::default()
        };
        let report = query.run(&mut store).unwrap();
        let got: Vec<_> = report
            .rows
            .iter()
            .map(|r| (r.key.clone(), r.events, r.tokens.total(), r.cost_pico))
            .collect();
        assert_eq!(got, days_from_events(&raw, tz), "{name}");
        // A range of local dates selects exactly those days.
        let since = "2025-03-09".parse().unwrap();
        let until = "2025-11-01".parse().unwrap();
        let ranged = Query {
            since: Some(since),
            until: Some(until),
            ..query.clone()
        }
        .run(&mut store)
        .unwrap();
        let want: Vec<_> = days_from_events(&raw, tz)
            .into_iter()
            .filter(|(k, ..)| k[0].as_str() >= "2025-03-09" && k[0].as_str() <= "2025-11-01")
            .collect();
        let got: Vec<_> = ranged
            .rows
            .iter()
            .map(|r| (r.key.clone(), r.events, r.tokens.total(), r.cost_pico))
            .collect();
        assert_eq!(got, want, "{name} ranged");
    }
}

#[test]
fn reprice_recomputes_stored_costs_keeps_logged_ones_and_the_rollup_follows() {
    use authvault::usage::price::PriceTable;
    let tv = super::common::TempVault::new();
    let mut store = tv.init_passphrase();
    let table = PriceTable::builtin();
    let mut stale = event("m1:r1", "2025-06-20T10:00:00Z", 100, 200);
    stale.cost_pico = 1;
    stale.price_version = Some("older".into());
    let mut fast = event("m2:r2", "2025-06-20T11:00:00Z", 1000, 0);
    fast.model = "claude-opus-4-6-fast".into();
    fast.cost_pico = 2;
    let mut logged = event("m3:r3", "2025-06-20T12:00:00Z", 100, 200);
    logged.cost_pico = 500_000_000_000;
    logged.price_version = Some(authvault::usage::GIVEN_COST.into());
    let mut current = event("m4:r4", "2025-06-20T13:00:00Z", 5, 5);
    current.cost_pico = table
        .event_cost(Source::ClaudeCode, &current.model, &current.tokens)
        .unwrap();
    current.price_version = Some(table.version().into());
    store
        .record_usage(&[stale, fast, logged, current], &[])
        .unwrap();
    drop(store);

    let prices: serde_json::Value = serde_json::from_str(&super::common::stdout(
        &super::common::ok(&mut tv.cmd_pw(&["--json", "usage", "prices"])),
    ))
    .unwrap();
    assert_eq!(prices["version"].as_str(), Some(table.version()));
    let out: serde_json::Value = serde_json::from_str(&super::common::stdout(&super::common::ok(
        &mut tv.cmd_pw(&["--json", "usage", "reprice"]),
    )))
    .unwrap();
    assert_eq!(
        (out["events"].as_u64(), out["changed"].as_u64()),
        (Some(3), Some(2))
    );

    let mut store = tv.open_passphrase();
    let costs: Vec<(String, u64)> = store
        .usage_events(&UsageFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.model, e.cost_pico))
        .collect();
    let sonnet = |i, o| {
        table
            .claude_cost(
                "claude-sonnet-4-20250514",
                &Tokens {
                    input: i,
                    output: o,
                    ..Tokens::default()
                },
                authvault::usage::price::Speed::Standard,
            )
            .unwrap()
    };
    let opus_fast = table
        .claude_cost(
            "claude-opus-4-6",
            &Tokens {
                input: 1000,
                ..Tokens::default()
            },
            authvault::usage::price::Speed::Fast,
        )
        .unwrap();
    assert_eq!(
        costs
            .iter()
            .map(|(m, c)| (m.as_str(), *c))
            .collect::<Vec<_>>(),
        [
            ("claude-sonnet-4-20250514", sonnet(100, 200)),
            ("claude-opus-4-6-fast", opus_fast),
            ("claude-sonnet-4-20250514", 500_000_000_000),
            ("claude-sonnet-4-20250514", sonnet(5, 5)),
        ]
    );
    assert_eq!(rollup(&mut store), hours_from_events(&mut store));
}

/// Three responses on three days: two of account `work` in project `p`
/// (session s1), one unattributed in project `q` (session s2).
fn two_accounts_history() -> (super::common::TempVault, tempfile::TempDir) {
    let tv = super::common::TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-ant-api03-x"))
        .unwrap();
    drop(store);
    let logs = tempfile::tempdir().unwrap();
    let (work, other) = (logs.path().join("work"), logs.path().join("other"));
    let sonnet = "claude-sonnet-4-20250514";
    append(
        &work.join("projects/p/s1.jsonl"),
        &format!(
            "{}\n{}\n",
            claude_line(
                "w1",
                "r1",
                "2025-06-20T10:00:00.000Z",
                sonnet,
                [10, 1, 0, 0, 0]
            ),
            claude_line(
                "w2",
                "r2",
                "2025-06-22T10:00:00.000Z",
                sonnet,
                [20, 2, 0, 0, 0]
            ),
        ),
    );
    append(
        &other.join("projects/q/s2.jsonl"),
        &format!(
            "{}\n",
            claude_line(
                "o1",
                "r3",
                "2025-06-21T10:00:00.000Z",
                sonnet,
                [400, 4, 0, 0, 0]
            ),
        ),
    );
    import_json(&tv, &[work.to_str().unwrap(), "--account", "work"]);
    import_json(&tv, &[other.to_str().unwrap()]);
    (tv, logs)
}

#[test]
fn report_filters_select_by_account_provider_and_local_dates() {
    let (tv, _logs) = two_accounts_history();
    let daily = |extra: &[&str]| -> (Vec<String>, u64) {
        let mut args = vec!["--json", "usage", "daily"];
        if !extra.contains(&"--timezone") {
            args.extend(["--timezone", "UTC"]);
        }
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&super::common::stdout(
            &super::common::ok(&mut tv.cmd_pw(&args)),
        ))
        .unwrap();
        let days = v["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["date"].as_str().unwrap().to_owned())
            .collect();
        (days, v["totals"]["inputTokens"].as_u64().unwrap())
    };
    let days = |d: &[&str]| d.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        daily(&[]),
        (days(&["2025-06-20", "2025-06-21", "2025-06-22"]), 430)
    );
    assert_eq!(
        daily(&["--account", "work"]),
        (days(&["2025-06-20", "2025-06-22"]), 30)
    );
    assert_eq!(daily(&["--provider", "openai"]), (days(&[]), 0));
    assert_eq!(
        daily(&["--since", "2025-06-21"]),
        (days(&["2025-06-21", "2025-06-22"]), 420)
    );
    assert_eq!(
        daily(&["--since", "20250621", "--until", "2025-06-21"]),
        (days(&["2025-06-21"]), 400)
    );
    // In Pago Pago (UTC-11) the 10:00Z responses fall on the day before.
    assert_eq!(
        daily(&["--timezone", "Pacific/Pago_Pago", "--until", "2025-06-20"]),
        (days(&["2025-06-19", "2025-06-20"]), 410)
    );
    let out =
        super::common::fails(&mut tv.cmd_pw(&["usage", "daily", "--timezone", "Mars/Olympus"]));
    assert!(
        super::common::stderr(&out).contains("IANA"),
        "{}",
        super::common::stderr(&out)
    );
}

#[test]
fn a_loaded_price_table_prices_imports_and_reprice_until_reset() {
    let tv = super::common::TempVault::new();
    drop(tv.init_passphrase());
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json", "usage"];
        all.extend_from_slice(args);
        serde_json::from_str(&super::common::stdout(&super::common::ok(
            &mut tv.cmd_pw(&all),
        )))
        .unwrap()
    };
    let builtin = json(&["prices"]);
    let dir = tempfile::tempdir().unwrap();
    // A refused table changes nothing.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"m": {"input_cost_per_token": -1, "output_cost_per_token": 1}}"#,
    )
    .unwrap();
    let out =
        super::common::fails(&mut tv.cmd_pw(&["usage", "prices", "load", bad.to_str().unwrap()]));
    assert!(
        super::common::stderr(&out).contains("bad.json"),
        "{}",
        super::common::stderr(&out)
    );
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"sample_spec": {"max_tokens": "LEGACY"}}"#).unwrap();
    super::common::fails(&mut tv.cmd_pw(&["usage", "prices", "load", empty.to_str().unwrap()]));
    assert_eq!(json(&["prices"]), builtin);

    // Sonnet at $1 per million input and output tokens.
    let table = dir.path().join("prices.json");
    std::fs::write(
        &table,
        r#"{"claude-sonnet-4": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}"#,
    )
    .unwrap();
    let loaded = json(&[
        "prices",
        "load",
        table.to_str().unwrap(),
        "--version",
        "team-2026-12",
    ]);
    assert_eq!(
        loaded,
        serde_json::json!({"version": "team-2026-12", "date": null, "models": 1})
    );
    let logs = tempfile::tempdir().unwrap();
    append(
        &logs.path().join("projects/p/s.jsonl"),
        &format!(
            "{}\n",
            claude_line(
                "m1",
                "r1",
                "2025-06-20T10:00:00.000Z",
                "claude-sonnet-4-20250514",
                [1000, 1000, 0, 0, 0]
            )
        ),
    );
    import_json(&tv, &[logs.path().to_str().unwrap()]);
    let mut store = tv.open_passphrase();
    let e = &store.usage_events(&UsageFilter::default()).unwrap()[0];
    assert_eq!(e.cost_pico, 2_000_000_000); // 2000 tokens at $1/M
    drop(store);

    // Back to the built-in table; reprice applies it.
    assert_eq!(json(&["prices", "reset"]), builtin);
    assert_eq!(json(&["reprice"])["changed"].as_u64(), Some(1));
    let mut store = tv.open_passphrase();
    let e = &store.usage_events(&UsageFilter::default()).unwrap()[0];
    assert_eq!(e.cost_pico, 18_000_000_000); // 1000 at $3/M + 1000 at $15/M
}

#[test]
fn a_committed_reservation_is_a_ledger_usage_event_of_its_account_and_agent() {
    use authvault::store::Usage;
    let keyring = MemoryKeyring::default();
    let (_tv, mut store) = memory_vault(&keyring);
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-ant-api03-x"))
        .unwrap();
    let priced = store
        .reserve("work", Some("ci"), 5000, TimeDelta::minutes(10))
        .unwrap();
    let usage = |usd_micros| Usage {
        input: 1000,
        output: 200,
        cache_read: 3000,
        cache_write: 400,
        model: Some("claude-sonnet-4-20250514".into()),
        usd_micros,
    };
    store
        .commit_reservation(priced.id, &usage(Some(12_345)))
        .unwrap();
    let unpriced = store
        .reserve("work", None, 5000, TimeDelta::minutes(10))
        .unwrap();
    store.commit_reservation(unpriced.id, &usage(None)).unwrap();
    // Released reservations use nothing.
    let released = store
        .reserve("work", None, 5000, TimeDelta::minutes(10))
        .unwrap();
    store.release_reservation(released.id).unwrap();

    let events = store.usage_events(&UsageFilter::default()).unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.source,
                e.account.as_deref(),
                e.agent.as_deref(),
                e.model.as_str(),
                e.tokens,
                e.cost_pico,
            )
        })
        .collect();
    let tokens = Tokens {
        input: 1000,
        output: 200,
        cache_read: 3000,
        cache_write_5m: 400,
        ..Tokens::default()
    };
    assert_eq!(
        seen,
        [
            (
                Source::Ledger,
                Some("work"),
                Some("ci"),
                "claude-sonnet-4-20250514",
                tokens,
                12_345_000_000
            ),
            (
                Source::Ledger,
                Some("work"),
                None,
                "claude-sonnet-4-20250514",
                tokens,
                0
            ),
        ]
    );
    assert_eq!(rollup(&mut store), hours_from_events(&mut store));
    // reprice computes the unpriced one and keeps the given cost.
    let table = authvault::usage::price::PriceTable::builtin();
    store
        .reprice_usage(table.version(), |s, m, t| table.event_cost(s, m, t))
        .unwrap();
    let costs: Vec<u64> = store
        .usage_events(&UsageFilter::default())
        .unwrap()
        .iter()
        .map(|e| e.cost_pico)
        .collect();
    assert_eq!(
        costs,
        [
            12_345_000_000,
            table
                .event_cost(Source::Ledger, "claude-sonnet-4-20250514", &tokens)
                .unwrap()
        ]
    );
}

#[test]
fn reports_split_rows_by_dimensions_and_print_csv() {
    let (tv, _logs) = two_accounts_history();
    let run = |args: &[&str]| super::common::stdout(&super::common::ok(&mut tv.cmd_pw(args)));
    let v: serde_json::Value = serde_json::from_str(&run(&[
        "--json",
        "usage",
        "monthly",
        "--timezone",
        "UTC",
        "--by",
        "account,project",
    ]))
    .unwrap();
    let rows: Vec<_> = v["monthly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["month"].as_str().unwrap(),
                r["account"].as_str().unwrap(),
                r["project"].as_str().unwrap(),
                r["inputTokens"].as_u64().unwrap(),
            )
        })
        .collect();
    // Unattributed usage is shown as such (`-`), not folded into an account.
    assert_eq!(
        rows,
        [("2025-06", "-", "q", 400), ("2025-06", "work", "p", 30)]
    );
    assert_eq!(v["totals"]["inputTokens"].as_u64(), Some(430));

    let csv = run(&[
        "usage",
        "weekly",
        "--start-of-week",
        "monday",
        "--timezone",
        "UTC",
        "--by",
        "account",
        "--csv",
    ]);
    let cost = |input: u64, output: u64| {
        (authvault::usage::pico_to_usd(input * 3_000_000 + output * 15_000_000)).to_string()
    };
    let model = "claude-sonnet-4-20250514";
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "week,account,models,input_tokens,output_tokens,cache_creation_tokens,cache_read_tokens,total_tokens,cost_usd".to_owned(),
            // 2025-06-20 (Friday) and 2025-06-21 in the week of Monday the
            // 16th, Sunday the 22nd too.
            format!("2025-06-16,-,{model},400,4,0,0,404,{}", cost(400, 4)),
            format!("2025-06-16,work,{model},30,3,0,0,33,{}", cost(30, 3)),
        ]
    );
    let sunday = run(&["usage", "weekly", "--timezone", "UTC", "--csv"]);
    let weeks: Vec<_> = sunday
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(weeks, ["2025-06-15", "2025-06-22"]);

    let out = super::common::fails(&mut tv.cmd_pw(&["--json", "usage", "daily", "--csv"]));
    assert!(
        super::common::stderr(&out).contains("--csv and --json"),
        "{}",
        super::common::stderr(&out)
    );
}

#[test]
fn the_running_block_shows_its_burn_rate_and_projection() {
    let tv = super::common::TempVault::new();
    drop(tv.init_passphrase());
    let logs = tempfile::tempdir().unwrap();
    // Two responses an hour apart, the later ten minutes ago: 600 tokens
    // per response (100 in, 200 out, 300 cache read).
    let now = Utc::now();
    let stamp = |ago: i64| {
        (now - TimeDelta::minutes(ago)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let sonnet = "claude-sonnet-4-20250514";
    append(
        &logs.path().join("projects/p/s1.jsonl"),
        &format!(
            "{}\n{}\n",
            claude_line("b1", "r1", &stamp(70), sonnet, [100, 200, 0, 0, 300]),
            claude_line("b2", "r2", &stamp(10), sonnet, [100, 200, 0, 0, 300]),
        ),
    );
    import_json(&tv, &[logs.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&super::common::stdout(&super::common::ok(
        &mut tv.cmd_pw(&["--json", "usage", "blocks"]),
    )))
    .unwrap();
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{v}");
    let b = &blocks[0];
    assert_eq!(b["isActive"], true);
    assert_eq!(b["entries"], 2);
    assert_eq!(b["totalTokens"], 1200);
    let rate = &b["burnRate"];
    assert!(
        (rate["tokensPerMinute"].as_f64().unwrap() - 20.0).abs() < 1e-9,
        "{rate}"
    );
    assert!((rate["tokensPerMinuteForIndicator"].as_f64().unwrap() - 10.0).abs() < 1e-9);
    let p = &b["projection"];
    let left = p["remainingMinutes"].as_u64().unwrap();
    let start: DateTime<Utc> = b["startTime"].as_str().unwrap().parse().unwrap();
    let end: DateTime<Utc> = b["endTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, TimeDelta::hours(5));
    assert!(left <= 5 * 60 && end > now, "{p}");
    assert_eq!(p["totalTokens"].as_u64(), Some(1200 + 20 * left));
    // The table says so too.
    let table = super::common::stdout(&super::common::ok(&mut tv.cmd_pw(&["usage", "blocks"])));
    assert!(table.contains("ACTIVE"), "{table}");
}

#[test]
fn statusline_imports_the_new_lines_of_the_transcript_and_prints_one_line() {
    use super::common::{ok, stdout, with_stdin};
    use authvault::model::{Snapshot, SnapshotSource, UsageWindow};
    let tv = super::common::TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-ant-api03-x"))
        .unwrap();
    let window = |name: &str, percent: f64| UsageWindow {
        utilization_percent: Some(percent),
        ..UsageWindow::named(name)
    };
    store
        .save_snapshot(
            "work",
            &Snapshot {
                windows: vec![window("five_hour", 42.0), window("seven_day", 13.4)],
                ..Snapshot::empty(Provider::Claude, SnapshotSource::UsageEndpoint, Utc::now())
            },
        )
        .unwrap();
    drop(store);
    let logs = tempfile::tempdir().unwrap();
    let session = "5e55a0e0-2222-3333-4444-555555555555";
    let transcript = logs
        .path()
        .join(format!("projects/-home-u-p/{session}.jsonl"));
    let stamp = |ago: i64| {
        (Utc::now() - TimeDelta::minutes(ago)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    // 1,000,000 input tokens of sonnet-4 at $3/M above 200k at $6/M:
    // 200k × 3 + 800k × 6 = $5.40 per response.
    let sonnet = "claude-sonnet-4-20250514";
    append(
        &transcript,
        &format!(
            "{}\n",
            claude_line("s1", "r1", &stamp(0), sonnet, [1_000_000, 0, 0, 0, 0])
        ),
    );
    let status = serde_json::json!({
        "hook_event_name": "Status",
        "session_id": session,
        "transcript_path": transcript,
        "cwd": "/home/u/p",
        "model": {"id": "claude-sonnet-4-20250514", "display_name": "Sonnet 4"},
        "workspace": {"current_dir": "/home/u/p", "project_dir": "/home/u/p"},
        "version": "2.1.0",
        "output_style": {"name": "default"},
    })
    .to_string();
    let line = |args: &[&str]| {
        let mut all = vec!["statusline"];
        all.extend_from_slice(args);
        stdout(&ok_output(with_stdin(
            &mut tv.cmd_pw(&all),
            status.as_bytes(),
        )))
    };
    fn ok_output(o: std::process::Output) -> std::process::Output {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    }
    let first = line(&["--account", "work"]);
    assert_eq!(first.lines().count(), 1, "{first}");
    assert!(
        first.starts_with("Sonnet 4 · work · today $5.40 · block $5.40 ("),
        "{first}"
    );
    assert!(
        first.trim_end().ends_with("left) · 5h 42% · 7d 13%"),
        "{first}"
    );
    // A second response: only it is read, and the session's account is
    // known from its stored usage without --account.
    append(
        &transcript,
        &format!(
            "{}\n",
            claude_line("s2", "r2", &stamp(0), sonnet, [1_000_000, 0, 0, 0, 0])
        ),
    );
    let second = line(&[]);
    assert!(
        second.starts_with("Sonnet 4 · work · today $10.80 · block $10.80 ("),
        "{second}"
    );
    let third = line(&[]);
    assert_eq!(
        third.split(" (").next(),
        second.split(" (").next(),
        "nothing counted twice"
    );
    // Only --account attributes: the second response is shown under the
    // session's account but stored unattributed (a session may change
    // accounts; a wrong attribution is worse than none).
    let input = |extra: &[&str]| {
        let mut args = vec!["--json", "usage", "daily"];
        args.extend_from_slice(extra);
        let v: serde_json::Value =
            serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&args)))).unwrap();
        v["totals"]["inputTokens"].as_u64()
    };
    assert_eq!(input(&[]), Some(2_000_000));
    assert_eq!(input(&["--account", "work"]), Some(1_000_000));
    // Not Claude Code's JSON: a clear error, nothing printed on stdout.
    let bad = with_stdin(&mut tv.cmd_pw(&["statusline"]), b"hello");
    assert!(!bad.status.success());
    assert!(
        super::common::stderr(&bad).contains("status JSON"),
        "{}",
        super::common::stderr(&bad)
    );
}

#[test]
fn codex_rate_limits_become_the_accounts_snapshot_when_the_import_names_it() {
    use authvault::model::SnapshotSource;
    let tv = super::common::TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::OpenAi, "codex", "sk-proj-x"))
        .unwrap();
    drop(store);
    let home = tempfile::tempdir().unwrap();
    let rollout = home
        .path()
        .join("sessions/2025/10/17/rollout-2025-10-17T05-50-00-0199f0a1.jsonl");
    append(&rollout, super::agent::ROLLOUT);
    let import = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "usage",
            "import",
            "codex",
            home.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = super::common::ok(&mut tv.cmd_pw(&args));
        serde_json::from_str::<serde_json::Value>(&super::common::stdout(&out)).unwrap()
    };
    // Without an account the limits belong to no one: nothing is stored.
    assert_eq!(import(&[])["snapshot"], false);
    assert!(
        tv.open_passphrase()
            .latest_snapshot("codex")
            .unwrap()
            .is_none()
    );
    // Appending a line makes the rollout read again, now for `codex`.
    append(
        &rollout,
        r#"{"timestamp":"2025-10-17T06:10:00.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"primary":{"used_percent":12.5,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":33.0,"window_minutes":10080,"resets_at":1761100000},"plan_type":"plus"}}}
"#,
    );
    assert_eq!(import(&["--account", "codex"])["snapshot"], true);
    let s = tv
        .open_passphrase()
        .latest_snapshot("codex")
        .unwrap()
        .unwrap();
    assert_eq!(s.source, SnapshotSource::CodexLog);
    assert_eq!(s.plan.as_deref(), Some("plus"));
    assert_eq!(s.fetched_at, at("2025-10-17T06:10:00Z"));
    let used: Vec<_> = s
        .windows
        .iter()
        .map(|w| (w.name.as_str(), w.utilization_percent, w.window_seconds))
        .collect();
    assert_eq!(
        used,
        [
            ("primary", Some(12.5), Some(18_000)),
            ("secondary", Some(33.0), Some(604_800))
        ]
    );
    // An older log does not replace newer windows.
    let older = home
        .path()
        .join("sessions/2025/10/16/rollout-2025-10-16T05-50-00-0199f0a1.jsonl");
    append(
        &older,
        &super::agent::ROLLOUT.replace("2025-10-17", "2025-10-16"),
    );
    assert_eq!(import(&["--account", "codex"])["snapshot"], false);
    let newest = tv
        .open_passphrase()
        .latest_snapshot("codex")
        .unwrap()
        .unwrap();
    assert_eq!(newest.fetched_at, at("2025-10-17T06:10:00Z"));
}

/// Two transcripts, the second over 1 MiB (so its reading is reported
/// before it is done); returns the logs directory and their total size.
fn two_transcripts() -> (tempfile::TempDir, u64) {
    let logs = tempfile::tempdir().unwrap();
    let small = logs.path().join("projects/-home-u-demo/aaaa.jsonl");
    let big = logs.path().join("projects/-home-u-demo/bbbb.jsonl");
    let sonnet = "claude-sonnet-4-20250514";
    append(
        &small,
        &(claude_line(
            "m0",
            "r0",
            "2025-06-20T10:00:00.000Z",
            sonnet,
            [1, 2, 3, 0, 4],
        ) + "\n"),
    );
    let lines: Vec<String> = (0..5000)
        .map(|i| {
            let ts = format!("2025-06-21T{:02}:{:02}:00.000Z", i / 60 % 24, i % 60);
            claude_line(
                &format!("m{i}"),
                &format!("b{i}"),
                &ts,
                sonnet,
                [1, 2, 3, 0, 4],
            )
        })
        .collect();
    append(&big, &(lines.join("\n") + "\n"));
    let size = [small, big]
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(size > 1 << 20);
    (logs, size)
}

#[test]
fn an_import_reports_its_progress_in_files_and_bytes_up_to_the_whole() {
    let tv = super::common::TempVault::new();
    let mut store = tv.init_passphrase();
    let prices = authvault::usage::price_table(&mut store).unwrap();
    let (logs, size) = two_transcripts();
    let roots = authvault::usage::import::claude_code_roots(&[logs.path().to_path_buf()], &[]);
    for pass in ["first import", "nothing new"] {
        let mut seen = Vec::new();
        authvault::usage::import::import_claude_code(&mut store, &roots, None, &prices, &mut |p| {
            seen.push(p);
        })
        .unwrap();
        let first = seen.first().unwrap();
        assert_eq!(
            (first.files_done, first.files, first.bytes_done, first.bytes),
            (0, 2, 0, size),
            "{pass}"
        );
        let last = seen.last().unwrap();
        assert_eq!(
            (last.files_done, last.files, last.bytes_done, last.bytes),
            (2, 2, size, size),
            "{pass}"
        );
        assert!(
            seen.windows(2)
                .all(|w| w[0].files_done <= w[1].files_done && w[0].bytes_done <= w[1].bytes_done),
            "{pass}: {seen:?}"
        );
        // The big file is read in more than one step on the first pass;
        // the second finds nothing new and reports each file once.
        let within = seen
            .iter()
            .filter(|p| p.files_done == 1 && p.bytes_done < size)
            .count();
        if pass == "first import" {
            assert!(within > 1, "{seen:?}");
        } else {
            assert_eq!(seen.len(), 3, "{seen:?}");
        }
    }
}

/// What a terminal shows while `c` runs on it (a pseudo-terminal from
/// util-linux `script`; stdout and stderr both go there).
fn on_terminal(c: &std::process::Command) -> String {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_str().unwrap().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(quote)
        .collect();
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let out = super::common::ok(&mut script);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_import_on_a_terminal_shows_a_progress_line_and_clears_it() {
    let tv = super::common::TempVault::new();
    drop(tv.init_passphrase());
    let (logs, _) = two_transcripts();
    let root = logs.path().to_str().unwrap();
    let shown = on_terminal(&tv.cmd_pw(&["usage", "import", "claude-code", root]));
    let start = shown
        .find("\rImporting: 0/2 files, 0.0/")
        .unwrap_or_else(|| panic!("no progress line in {shown:?}"));
    let summary = shown.find("Read 5001 new lines from 2 of 2 files").unwrap();
    // The last drawing is blanked with spaces back to the margin before
    // the summary is printed.
    let drawn = &shown[start..summary];
    let last = drawn.rfind("\rImporting").unwrap();
    let (line, blank) = drawn[last + 1..].split_once('\r').unwrap();
    let blank = blank.strip_suffix('\r').unwrap_or(blank);
    assert!(
        blank.len() >= line.trim_end().len() && blank.chars().all(|c| c == ' '),
        "{shown:?}"
    );
    // `--json` on a terminal: only the JSON.
    let shown = on_terminal(&tv.cmd_pw(&["--json", "usage", "import", "claude-code", root]));
    assert!(!shown.contains("Importing"), "{shown:?}");
    assert!(shown.trim_start().starts_with('{'), "{shown:?}");
}

#[test]
fn a_piped_import_prints_no_progress_line() {
    let tv = super::common::TempVault::new();
    drop(tv.init_passphrase());
    let (logs, _) = two_transcripts();
    let out = super::common::ok(&mut tv.cmd_pw(&[
        "usage",
        "import",
        "claude-code",
        logs.path().to_str().unwrap(),
    ]));
    let err = super::common::stderr(&out);
    assert!(!err.contains("Importing") && !err.contains('\r'), "{err:?}");
    assert!(super::common::stdout(&out).starts_with("Read 5001 new lines"));
}
