//! Equality with ccusage 20.0.24: the same generated Claude Code logs, read
//! by `vault usage import claude-code` and by ccusage itself (installed from
//! the npm registry once, run offline without network), give the same
//! daily, monthly and session totals and per-model tokens; costs agree to
//! 1e-9 relative. Fails (does not skip) when npm or unshare is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::common::{Rng, TempVault, ok, seed, stdout};

const VERSION: &str = "20.0.24";

/// ccusage's launcher, installed once into the user's cache directory.
fn ccusage() -> PathBuf {
    let dir = dirs::home_dir()
        .expect("a home directory")
        .join(".cache/authvault-tests/npm")
        .join(format!("ccusage@{VERSION}"));
    let bin = dir.join("node_modules/.bin/ccusage");
    if !bin.exists() {
        let out = Command::new("npm")
            .args(["install", "--prefix"])
            .arg(&dir)
            .args(["--no-audit", "--no-fund", &format!("ccusage@{VERSION}")])
            .output()
            .expect("npm must be installed to compare with ccusage");
        assert!(
            out.status.success(),
            "npm install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    bin
}

/// `ccusage claude <report> --json --offline --timezone TZ`, without network.
fn run_ccusage(root: &Path, report: &str, tz: &str) -> Value {
    run_ccusage_args(root, &[report], tz)
}

/// `ccusage claude <args…> --json --offline --timezone TZ`, without network.
fn run_ccusage_args(root: &Path, args: &[&str], tz: &str) -> Value {
    let report = args.join(" ");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["-rn", "--"])
        .arg(ccusage())
        .arg("claude")
        .args(args)
        .args(["--json", "--offline", "--timezone", tz])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home.path())
        .env("CLAUDE_CONFIG_DIR", root)
        .env("TZ", "UTC")
        .output()
        .expect("unshare must be installed to run ccusage without network");
    assert!(
        out.status.success(),
        "ccusage {report}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ccusage prints JSON")
}

fn line(id: &str, request: &str, ts: &str, model: &str, t: [u64; 5], fast: bool) -> String {
    let mut usage = serde_json::json!({
        "input_tokens": t[0], "output_tokens": t[1],
        "cache_creation_input_tokens": t[2] + t[3], "cache_read_input_tokens": t[4],
        "cache_creation": {"ephemeral_5m_input_tokens": t[2], "ephemeral_1h_input_tokens": t[3]},
        "service_tier": "standard"
    });
    if fast {
        usage["speed"] = "fast".into();
    }
    serde_json::json!({
        "parentUuid": null, "isSidechain": false, "userType": "external", "cwd": "/home/u/p",
        "sessionId": "s", "version": "2.1.0", "gitBranch": "main",
        "message": {"id": id, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                    "stop_sequence": null, "usage": usage},
        "requestId": request, "type": "assistant", "uuid": format!("u-{id}"), "timestamp": ts
    })
    .to_string()
}

/// Three projects, sessions of 40 responses spread over 30 hours (so across
/// midnight in every zone), several models (one fast, some responses above
/// 200k tokens), user lines between, and copies of responses in subagent
/// transcripts and in other sessions' files.
fn generate(root: &Path) -> usize {
    let mut rng = Rng::new(seed("ccusage equality"));
    let models = [
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-6",
    ];
    let start: chrono::DateTime<chrono::Utc> = "2025-06-29T15:00:00Z".parse().unwrap();
    let mut files: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let mut all = Vec::new();
    let mut n = 0;
    for p in 0..3 {
        for s in 0..3 {
            let session = format!("{p}{s}aaaaaaa-2222-3333-4444-555555555555");
            let file = root.join(format!("projects/-home-u-proj{p}/{session}.jsonl"));
            let offset = chrono::TimeDelta::hours(i64::try_from(rng.below(48)).unwrap());
            for i in 0..40 {
                let at = start
                    + offset
                    + chrono::TimeDelta::minutes(i64::try_from(rng.below(30 * 60)).unwrap());
                let model = models[usize::try_from(rng.below(models.len() as u64)).unwrap()];
                let big = rng.below(10) == 0;
                let tokens = [
                    if big {
                        200_000 + rng.below(100_000)
                    } else {
                        rng.below(5000)
                    },
                    rng.below(4000),
                    rng.below(20_000),
                    if rng.below(3) == 0 {
                        rng.below(5000)
                    } else {
                        0
                    },
                    if big { 250_000 } else { rng.below(100_000) },
                ];
                let fast = model == "claude-opus-4-6" && rng.below(2) == 0;
                let id = format!("msg_{p}{s}{i:03}");
                let l = line(
                    &id,
                    &format!("req_{p}{s}{i:03}"),
                    &at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    model,
                    tokens,
                    fast,
                );
                let lines = files.entry(file.clone()).or_default();
                lines.push(l.clone());
                lines.push(r#"{"type":"user","message":{"role":"user","content":"go on"},"timestamp":"2025-06-29T15:00:00.000Z"}"#.to_owned());
                all.push((file.clone(), session.clone(), l));
                n += 1;
            }
        }
    }
    // Copies: into a subagent transcript of the same session, and into
    // another session's file.
    for k in 0..30 {
        let (file, session, l) = &all[usize::try_from(rng.below(all.len() as u64)).unwrap()];
        let target = if k % 2 == 0 {
            file.with_extension("")
                .join("subagents")
                .join(format!("agent-{session}.jsonl"))
        } else {
            all[usize::try_from(rng.below(all.len() as u64)).unwrap()]
                .0
                .clone()
        };
        files.entry(target).or_default().push(l.clone());
    }
    for (path, lines) in files {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    n
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a - b).abs() < 1e-15
}

/// Compares two report rows field by field: token counts exactly, costs to
/// 1e-9 relative, models used as sets, breakdowns per model.
fn same_row(ours: &Value, theirs: &Value, what: &str) {
    let ours = ours.as_object().unwrap();
    let theirs = theirs.as_object().unwrap();
    let keys: Vec<_> = theirs.keys().collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), keys, "{what}: fields");
    for (k, v) in theirs {
        let o = &ours[k];
        match k.as_str() {
            "totalCost" | "cost" | "costUSD" => assert!(
                close(o.as_f64().unwrap(), v.as_f64().unwrap()),
                "{what}.{k}: {o} ≠ {v}"
            ),
            "models" if v.is_object() => {
                let (om, tm) = (o.as_object().unwrap(), v.as_object().unwrap());
                assert_eq!(
                    om.keys().collect::<Vec<_>>(),
                    tm.keys().collect::<Vec<_>>(),
                    "{what}: models"
                );
                for (name, m) in tm {
                    same_row(&om[name], m, &format!("{what}/{name}"));
                }
            }
            "modelsUsed" | "models" => {
                let set = |v: &Value| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m.as_str().unwrap().to_owned())
                        .collect::<std::collections::BTreeSet<_>>()
                };
                assert_eq!(set(o), set(v), "{what}.{k}");
            }
            "modelBreakdowns" => {
                let by_name = |v: &Value| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|m| (m["modelName"].as_str().unwrap().to_owned(), m.clone()))
                        .collect::<BTreeMap<_, _>>()
                };
                let (ob, tb) = (by_name(o), by_name(v));
                assert_eq!(
                    ob.keys().collect::<Vec<_>>(),
                    tb.keys().collect::<Vec<_>>(),
                    "{what}: models"
                );
                for (name, m) in &tb {
                    same_row(&ob[name], m, &format!("{what}/{name}"));
                }
            }
            _ => assert_eq!(o, v, "{what}.{k}"),
        }
    }
}

fn same_report(ours: &Value, theirs: &Value, rows: &str, key: &str) {
    let index = |v: &Value| {
        v[rows]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[key].as_str().unwrap().to_owned(), r.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (o, t) = (index(ours), index(theirs));
    assert!(t.len() > 1, "{rows}: ccusage found {} rows", t.len());
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        t.keys().collect::<Vec<_>>(),
        "{rows}: row keys"
    );
    for (k, row) in &t {
        same_row(&o[k], row, &format!("{rows}[{k}]"));
    }
    same_row(
        &ours["totals"],
        &theirs["totals"],
        &format!("{rows} totals"),
    );
}

#[test]
fn daily_monthly_and_session_reports_equal_ccusage_20_0_24() {
    let logs = tempfile::tempdir().unwrap();
    let responses = generate(logs.path());
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let root = logs.path().to_str().unwrap();
    let import: Value = serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&[
        "--json",
        "usage",
        "import",
        "claude-code",
        root,
    ]))))
    .unwrap();
    assert_eq!(import["written"]["added"].as_u64(), Some(responses as u64));
    assert_eq!(import["written"]["unchanged"].as_u64(), Some(30));
    for tz in ["Asia/Kolkata", "America/New_York"] {
        for (report, rows, key) in [
            ("daily", "daily", "date"),
            ("monthly", "monthly", "month"),
            ("session", "sessions", "sessionId"),
        ] {
            let ours: Value = serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&[
                "--json",
                "usage",
                report,
                "--timezone",
                tz,
            ]))))
            .unwrap();
            let theirs = run_ccusage(logs.path(), report, tz);
            same_report(&ours, &theirs, rows, key);
        }
    }
}

/// Three more responses days after the generated history (one on a
/// Sunday in UTC that is still Saturday in New York), so that weeks of any
/// first day and gaps between blocks appear.
fn later_responses(root: &Path) {
    let file = root.join("projects/-home-u-later/99aaaaaa-2222-3333-4444-555555555555.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let lines: Vec<String> = [
        ("2025-07-06T02:00:00.000Z", "claude-sonnet-4-20250514"),
        ("2025-07-09T12:00:00.000Z", "claude-opus-4-20250514"),
        ("2025-07-09T13:30:00.000Z", "claude-sonnet-4-20250514"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (at, model))| {
        line(
            &format!("msg_later{i}"),
            &format!("req_later{i}"),
            at,
            model,
            [100, 200, 300, 400, 500],
            false,
        )
    })
    .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
}

/// The generated history and its later responses, imported into a new
/// vault: (the logs, the vault).
fn imported_history() -> (tempfile::TempDir, TempVault) {
    let logs = tempfile::tempdir().unwrap();
    generate(logs.path());
    later_responses(logs.path());
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    ok(&mut tv.cmd_pw(&[
        "usage",
        "import",
        "claude-code",
        logs.path().to_str().unwrap(),
    ]));
    (logs, tv)
}

#[test]
fn weekly_reports_equal_ccusage_20_0_24_for_either_first_day() {
    let (logs, tv) = imported_history();
    for tz in ["Asia/Kolkata", "America/New_York"] {
        // The generated history runs from Sunday 2025-06-29 15:00 UTC into
        // the next days, then the later responses a week on.
        for first in ["sunday", "monday", "wednesday"] {
            let ours: Value = serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&[
                "--json",
                "usage",
                "weekly",
                "--start-of-week",
                first,
                "--timezone",
                tz,
            ]))))
            .unwrap();
            let theirs = run_ccusage_args(logs.path(), &["weekly", "-w", first], tz);
            same_report(&ours, &theirs, "weekly", "week");
        }
    }
}

#[test]
fn blocks_equal_ccusage_20_0_24_gaps_included() {
    let (logs, tv) = imported_history();
    let ours: Value =
        serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&["--json", "usage", "blocks"])))).unwrap();
    let theirs = run_ccusage(logs.path(), "blocks", "UTC");
    let ids = |v: &Value| {
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&ours), ids(&theirs), "block ids");
    let theirs_list = theirs["blocks"].as_array().unwrap();
    assert!(
        theirs_list.len() > 3,
        "ccusage found {} blocks",
        theirs_list.len()
    );
    assert!(
        theirs_list.iter().any(|b| b["isGap"] == true),
        "the history has a gap"
    );
    for (o, t) in ours["blocks"].as_array().unwrap().iter().zip(theirs_list) {
        same_row(o, t, &format!("block {}", t["id"]));
    }
}

#[test]
fn the_library_query_and_the_cli_give_the_same_numbers_for_each_grouping() {
    use authvault::usage::query::{Group, Query, Zone};
    let (_logs, tv) = imported_history();
    let tz = "Asia/Kolkata";
    /// CLI arguments, rows array, row key fields, library grouping.
    type Case<'a> = (&'a [&'a str], &'a str, &'a [&'a str], Vec<Group>);
    let cases: [Case<'_>; 6] = [
        (&["daily"], "daily", &["date"], vec![Group::Day]),
        (
            &["weekly"],
            "weekly",
            &["week"],
            vec![Group::Week(chrono::Weekday::Sun)],
        ),
        (&["monthly"], "monthly", &["month"], vec![Group::Month]),
        (
            &["cycle", "--start-day", "2"],
            "cycles",
            &["cycle"],
            vec![Group::Cycle(2)],
        ),
        (
            &["session"],
            "sessions",
            &["sessionId"],
            vec![Group::Session],
        ),
        (
            &["daily", "--by", "model"],
            "daily",
            &["date", "model"],
            vec![Group::Day, Group::Model],
        ),
    ];
    for (args, rows, keys, group_by) in cases {
        let mut cmd = vec!["--json", "usage"];
        cmd.extend(args);
        cmd.extend(["--timezone", tz]);
        let cli: Value = serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&cmd)))).unwrap();
        let mut cli: Vec<(Vec<String>, u64, u64)> = cli[rows]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let cost = (r["totalCost"].as_f64().unwrap() * 1e12).round() as u64;
                (
                    keys.iter()
                        .map(|k| r[*k].as_str().unwrap().to_owned())
                        .collect(),
                    r["totalTokens"].as_u64().unwrap(),
                    cost,
                )
            })
            .collect();
        cli.sort();
        let mut store = tv.open_passphrase();
        let query = Query {
            zone: Zone::named(tz).unwrap(),
            group_by,
            ..Query::default()
        };
        let lib: Vec<(Vec<String>, u64, u64)> = query
            .run(&mut store)
            .unwrap()
            .rows
            .iter()
            .map(|r| (r.key.clone(), r.tokens.total(), r.cost_pico))
            .collect();
        assert!(lib.len() > 1, "{args:?}");
        assert_eq!(cli, lib, "{args:?}");
    }

    // 5-hour blocks: the library's `blocks` over the query's events.
    let cli: Value =
        serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&["--json", "usage", "blocks"])))).unwrap();
    let cli: Vec<(String, u64, u64)> = cli["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["isGap"] == false)
        .map(|b| {
            (
                b["startTime"].as_str().unwrap().to_owned(),
                b["totalTokens"].as_u64().unwrap(),
                (b["costUSD"].as_f64().unwrap() * 1e12).round() as u64,
            )
        })
        .collect();
    let mut store = tv.open_passphrase();
    let events = Query::default().events(&mut store).unwrap();
    let lib: Vec<(String, u64, u64)> = authvault::usage::blocks::blocks(
        &events,
        authvault::usage::blocks::FIVE_HOURS,
        chrono::Utc::now(),
    )
    .iter()
    .filter(|b| !b.is_gap)
    .map(|b| {
        (
            b.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            b.sums.tokens.total(),
            b.sums.cost_pico,
        )
    })
    .collect();
    assert!(lib.len() > 1);
    assert_eq!(cli, lib, "blocks");
}

/// Codex rollouts: several sessions across midnight (and from October into
/// November, when New York leaves daylight saving), model changes between
/// turns, cumulative totals with `last_token_usage`, repeated emits, a
/// total-only event, and rate-limit-only events.
fn generate_codex(home: &Path) -> usize {
    let mut rng = Rng::new(seed("ccusage codex equality"));
    let models = ["gpt-5-codex", "gpt-5", "gpt-5.1-codex", "gpt-5-mini"];
    let start: chrono::DateTime<chrono::Utc> = "2025-10-30T16:00:00Z".parse().unwrap();
    let mut responses = 0;
    for s in 0..6 {
        // The first session starts in October and the last on 1 November
        // in both zones, so every report has rows in two months whatever
        // the seed; the others fall anywhere between.
        let hours = match s {
            0 => 0,
            5 => 40,
            _ => rng.below(40),
        };
        let begin = start + chrono::TimeDelta::hours(i64::try_from(hours).unwrap());
        let id = format!("0199f0a1-1111-7222-8333-9444455556{s:02}");
        let dir = home.join(format!("sessions/{}", begin.format("%Y/%m/%d")));
        let path = dir.join(format!(
            "rollout-{}-{id}.jsonl",
            begin.format("%Y-%m-%dT%H-%M-%S")
        ));
        let ts = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let mut lines = vec![
            serde_json::json!({"timestamp": ts(begin), "type": "session_meta", "payload": {"id": id, "timestamp": ts(begin), "cwd": format!("/home/u/p{s}"), "originator": "codex_cli_rs", "cli_version": "0.46.0", "instructions": null, "source": "cli", "model_provider": "openai"}}),
        ];
        let mut total = [0u64; 4]; // input, cached, output, reasoning
        let mut at = begin;
        for turn in 0..8 {
            at += chrono::TimeDelta::minutes(i64::try_from(1 + rng.below(200)).unwrap());
            let model = models[usize::try_from(rng.below(models.len() as u64)).unwrap()];
            lines.push(serde_json::json!({"timestamp": ts(at), "type": "turn_context", "payload": {"cwd": format!("/home/u/p{s}"), "approval_policy": "on-request", "model": model, "effort": "medium", "summary": "auto"}}));
            lines.push(serde_json::json!({"timestamp": ts(at), "type": "event_msg", "payload": {"type": "token_count", "info": null, "rate_limits": {"primary": {"used_percent": 7.0, "window_minutes": 300, "resets_at": 1_760_695_805}}}}));
            for _ in 0..3 {
                at += chrono::TimeDelta::seconds(i64::try_from(1 + rng.below(300)).unwrap());
                let input = 1000 + rng.below(30_000);
                let last = [input, rng.below(input), rng.below(3000), rng.below(1000)];
                for k in 0..4 {
                    total[k] += last[k];
                }
                let usage = |u: [u64; 4]| serde_json::json!({"input_tokens": u[0], "cached_input_tokens": u[1], "output_tokens": u[2], "reasoning_output_tokens": u[3], "total_tokens": u[0] + u[2]});
                let only_total = turn == 5;
                let info = if only_total {
                    serde_json::json!({"total_token_usage": usage(total)})
                } else {
                    serde_json::json!({"total_token_usage": usage(total), "last_token_usage": usage(last), "model_context_window": 272_000})
                };
                let event = serde_json::json!({"timestamp": ts(at), "type": "event_msg", "payload": {"type": "token_count", "info": info, "rate_limits": null}});
                lines.push(event.clone());
                responses += 1;
                if rng.below(4) == 0 {
                    // Codex emits the same count again a few ms later.
                    let mut again = event;
                    again["timestamp"] = ts(at + chrono::TimeDelta::milliseconds(12)).into();
                    lines.push(again);
                }
            }
        }
        std::fs::create_dir_all(&dir).unwrap();
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        std::fs::write(&path, text.join("\n") + "\n").unwrap();
    }
    responses
}

fn run_ccusage_codex(home: &Path, report: &str, tz: &str) -> Value {
    let user = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["-rn", "--"])
        .arg(ccusage())
        .args(["codex", report, "--json", "--offline", "--timezone", tz])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", user.path())
        .env("CODEX_HOME", home)
        .env("TZ", "UTC")
        .output()
        .expect("unshare must be installed to run ccusage without network");
    assert!(
        out.status.success(),
        "ccusage codex {report}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ccusage prints JSON")
}

#[test]
fn codex_daily_monthly_and_session_json_equal_ccusage_codex_20_0_24() {
    let home = tempfile::tempdir().unwrap();
    let responses = generate_codex(home.path());
    let tv = TempVault::new();
    drop(tv.init_passphrase());
    let import: Value = serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&[
        "--json",
        "usage",
        "import",
        "codex",
        home.path().to_str().unwrap(),
    ]))))
    .unwrap();
    assert_eq!(import["written"]["added"].as_u64(), Some(responses as u64));
    for tz in ["Asia/Kolkata", "America/New_York"] {
        for (report, rows, key) in [
            ("daily", "daily", "date"),
            ("monthly", "monthly", "month"),
            ("session", "sessions", "sessionId"),
        ] {
            let vault = |provider: &[&str]| -> Value {
                let mut args = vec!["--json", "usage", report, "--timezone", tz];
                args.extend(provider);
                serde_json::from_str(&stdout(&ok(&mut tv.cmd_pw(&args)))).unwrap()
            };
            let theirs = run_ccusage_codex(home.path(), report, tz);
            let ours = vault(&["--provider", "openai"]);
            same_report(&ours, &theirs, rows, key);
            // In ccusage codex's order too (sessions by id, not by cost).
            let order = |v: &Value| -> Vec<Value> {
                v[rows]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r[key].clone())
                    .collect()
            };
            assert_eq!(order(&ours), order(&theirs), "{tz} {report}: order");
            // Without `--provider` the same numbers come in the unified
            // (Claude) shape.
            let unified = vault(&[]);
            assert!(
                unified[rows][0].get("modelBreakdowns").is_some(),
                "{tz} {report}: {}",
                unified[rows][0]
            );
            let (uc, tc) = (
                unified["totals"]["totalCost"].as_f64().unwrap(),
                theirs["totals"]["costUSD"].as_f64().unwrap(),
            );
            assert!(close(uc, tc), "{tz} {report} unified cost: {uc} ≠ {tc}");
        }
    }
}
