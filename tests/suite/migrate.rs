//! `vault migrate` and `vault export` end to end, on the legacy fixtures of
//! `tests/fixtures/legacy/` (its README lists what each file must yield).
//!
//! Fixtures are copied into private temp directories (git checks them out
//! `0644`, which `vault migrate` rightly warns about). Expected values are read
//! from the fixture files themselves (tokens, `last_refresh`, the access
//! token's `exp`, Claude Code's `expiresAt`), identities from the README.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use authvault::model::Credential;
use authvault::store::AccountSelector;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::common::{
    Backend, FAST_KDF_ARGS, TempVault, fails, mode, ok, pg_program, stderr, stdout,
};

/// Every fixture, in the order `--from <dir>` reads them (sorted by name).
const FIXTURES: [&str; 7] = [
    "claude-code-credentials.json",
    "claude_auth.json",
    "codex-2025-06-auth.json",
    "codex-2025-08-auth.json",
    "codex-2026-chatgpt-auth.json",
    "codex-apikey-auth.json",
    "extended-auth.json",
];

/// The marker every fixture secret carries.
const MARKER: &str = "FIXTURE";

// ---------------------------------------------------------------------------
// Helpers

/// `vault` commands as the tests run them: [`TempVault::cmd_pw`], and every
/// provider endpoint pointed at a closed local port (and no configuration
/// file), so that nothing here can ever reach a real provider: `vault token`
/// refreshes tokens that are due, and the fixtures' tokens are long expired.
trait Offline {
    fn vault(&self, args: &[&str]) -> Command;
}

impl Offline for TempVault {
    fn vault(&self, args: &[&str]) -> Command {
        let mut c = self.cmd_pw(args);
        for var in authvault::config::ENDPOINT_VARS {
            c.env(var, "http://127.0.0.1:9");
        }
        c.env(
            "AUTHVAULT_CONFIG",
            "/nonexistent/authvault-test/config.json",
        );
        c
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/legacy")
        .join(name)
}

/// A fixture's JSON.
fn fixture(name: &str) -> Value {
    let bytes = fs::read(fixture_path(name)).expect("read fixture");
    serde_json::from_slice(&bytes).expect("fixture is JSON")
}

/// A private directory of source files.
struct Sources {
    dir: tempfile::TempDir,
}

impl Sources {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Every fixture, copied with mode 0600; the directory itself is returned
    /// (a `--from` directory stands for its `*.json` files).
    fn with_all_fixtures() -> Self {
        let s = Self::new();
        for f in FIXTURES {
            s.copy(f);
        }
        s
    }

    /// Every fixture made current (see [`fresh_fixture`]), mode 0600.
    fn with_fresh_fixtures() -> Self {
        let s = Self::new();
        let now = now();
        for f in FIXTURES {
            s.write_json(f, &fresh_fixture(f, now));
        }
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` as `name` with `mode`.
    fn write_mode(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.join(name);
        fs::write(&p, bytes).expect("write source");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod source");
        p
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.write_mode(name, bytes, 0o600)
    }

    fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        self.write(
            name,
            serde_json::to_string_pretty(value)
                .expect("render")
                .as_bytes(),
        )
    }

    /// A copy of fixture `name`, mode 0600.
    fn copy(&self, name: &str) -> PathBuf {
        self.write(name, &fs::read(fixture_path(name)).expect("read fixture"))
    }
}

fn parse_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// Creates the vault (library, test passphrase, fast KDF).
fn init(tv: &TempVault) {
    drop(tv.init_passphrase());
}

/// `vault [--json] migrate FLAGS --from P…` with the test passphrase.
fn migrate_cmd(tv: &TempVault, json: bool, flags: &[&str], from: &[&Path]) -> Command {
    let mut c = tv.vault(if json {
        &["--json", "migrate"]
    } else {
        &["migrate"]
    });
    c.args(flags);
    for p in from {
        c.arg("--from").arg(p);
    }
    c
}

/// `vault --json migrate …`, which must succeed; its `.report`.
fn migrate(tv: &TempVault, flags: &[&str], from: &[&Path]) -> Value {
    let out = parse_json(&ok(&mut migrate_cmd(tv, true, flags, from)));
    assert_eq!(out["vault_created"], false, "{out}");
    out["report"].clone()
}

/// `vault --json accounts` as listed, without row ids and timestamps, sorted by label.
fn accounts(tv: &TempVault) -> Vec<Value> {
    let listed = parse_json(&ok(&mut tv.vault(&["--json", "accounts"])));
    let mut out: Vec<Value> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|a| {
            let mut a = a.clone();
            let o = a.as_object_mut().expect("object");
            for volatile in ["id", "created_at", "updated_at"] {
                assert!(o.remove(volatile).is_some(), "{volatile} listed");
            }
            let mut kinds: Vec<Value> = o["credentials"].as_array().expect("kinds").clone();
            kinds.sort_by_key(ToString::to_string);
            o.insert("credentials".into(), Value::Array(kinds));
            a
        })
        .collect();
    out.sort_by_key(|a| a["label"].to_string());
    out
}

fn labels(tv: &TempVault) -> Vec<String> {
    accounts(tv)
        .iter()
        .map(|a| a["label"].as_str().expect("label").to_owned())
        .collect()
}

/// The active secret as the vault holds it, read through the library (no
/// refresh): for accounts whose fixture tokens are expired, which
/// `vault token` rightly refreshes before serving.
fn stored_tokens(tv: &TempVault) -> BTreeMap<String, String> {
    let mut store = tv.open_passphrase();
    let labels: Vec<String> = store
        .accounts()
        .expect("accounts")
        .into_iter()
        .map(|a| a.label)
        .collect();
    labels
        .into_iter()
        .map(|label| {
            let token = store
                .token(AccountSelector {
                    label: Some(&label),
                    provider: None,
                })
                .expect("token");
            (label, token.secret.expose_secret().to_owned())
        })
        .collect()
}

fn stored_token(tv: &TempVault, label: &str) -> String {
    stored_tokens(tv).remove(label).expect("account")
}

/// What `vault token --account LABEL` prints, without the newline.
fn token(tv: &TempVault, label: &str) -> String {
    let out = stdout(&ok(&mut tv.vault(&["token", "--account", label])));
    out.strip_suffix('\n').expect("newline").to_owned()
}

/// Every credential of every account, opened through the library, as JSON
/// (secrets exposed: for comparisons only).
fn credentials(tv: &TempVault) -> BTreeMap<String, Value> {
    let mut store = tv.open_passphrase();
    let mut out = BTreeMap::new();
    for a in store.accounts().expect("accounts") {
        let mut creds = serde_json::Map::new();
        for kind in a.credentials.clone() {
            let (_, c) = store
                .credential(&a.label, kind, "test")
                .expect("credential");
            creds.insert(kind.to_string(), credential_json(&c));
        }
        out.insert(a.label.clone(), Value::Object(creds));
    }
    out
}

fn credential_json(c: &Credential) -> Value {
    let open = |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    match c {
        Credential::ApiKey(k) => json!({ "key": k.expose_secret() }),
        Credential::OAuth(t) => json!({
            "access_token": t.access_token.expose_secret(),
            "refresh_token": open(&t.refresh_token),
            "id_token": open(&t.id_token),
            "expires_at": t.expires_at,
            "scopes": t.scopes,
            "last_refresh": t.last_refresh,
        }),
    }
}

/// The claims of a JWT (no signature check).
fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("three-part JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("claims")
}

/// A JWT with `claims` and a signature carrying the marker.
fn make_jwt(claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("encode"));
    format!(
        "{}.{}.{MARKER}signature",
        part(&json!({"alg": "RS256", "typ": "JWT"})),
        part(claims)
    )
}

fn rfc3339(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("timestamp")
}

fn file_name(p: &Value) -> String {
    Path::new(p.as_str().expect("path"))
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// `(source file name, label, action)` of each account of a report.
fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                file_name(&a["source"]),
                a["label"].as_str().expect("label").to_owned(),
                a["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

/// Codex OAuth tokens of a fixture as the vault must hold them: expiry and
/// scopes from the access token's claims.
fn codex_oauth(f: &Value) -> Value {
    let t = &f["tokens"];
    let access = t["access_token"].as_str().expect("access token");
    let claims = jwt_claims(access);
    json!({
        "access_token": access,
        "refresh_token": t["refresh_token"],
        "id_token": t["id_token"],
        "expires_at": unix(claims["exp"].as_i64().expect("exp")),
        "scopes": claims["scp"],
        "last_refresh": rfc3339(&f["last_refresh"]),
    })
}

/// The ChatGPT account id: `tokens.account_id`, else the id token's claim.
fn chatgpt_account_id(f: &Value) -> Value {
    let t = &f["tokens"];
    if t["account_id"].is_string() {
        return t["account_id"].clone();
    }
    jwt_claims(t["id_token"].as_str().expect("id token"))["https://api.openai.com/auth"]
        ["chatgpt_account_id"]
        .clone()
}

/// One account a fixture must yield.
struct Want {
    source: &'static str,
    /// As `vault --json accounts` lists it (see [`accounts`]).
    info: Value,
    /// Every credential, as [`credentials`] reads it.
    credentials: Value,
    /// What `vault token` prints: the active credential's secret.
    token: String,
}

/// The README's table, with values from the fixture files. Labels are
/// `<provider>-<plan>` (`-api-key` for keys), numbered in import order.
fn readme_table(load: &dyn Fn(&str) -> Value) -> Vec<Want> {
    let mut w = Vec::new();

    let f = load("claude-code-credentials.json");
    let o = &f["claudeAiOauth"];
    let expires =
        DateTime::from_timestamp_millis(o["expiresAt"].as_i64().expect("ms")).expect("ms");
    w.push(Want {
        source: "claude-code-credentials.json",
        info: json!({
            "label": "claude-max", "provider": "claude", "kind": "oauth", "credentials": ["oauth"],
            "email": null, "provider_account_id": null, "plan": "max",
            "rate_limit_tier": "default_claude_max_20x", "priority": 0, "enabled": true,
            "needs_login": false, "expires_at": expires,
        }),
        credentials: json!({ "oauth": {
            "access_token": o["accessToken"], "refresh_token": o["refreshToken"], "id_token": null,
            "expires_at": expires, "scopes": o["scopes"], "last_refresh": null,
        }}),
        token: o["accessToken"].as_str().expect("token").to_owned(),
    });

    let f = load("claude_auth.json");
    let key = f["ANTHROPIC_API_KEY"].as_str().expect("key");
    w.push(Want {
        source: "claude_auth.json",
        info: json!({
            "label": "claude-api-key", "provider": "claude", "kind": "api_key",
            "credentials": ["api_key"], "email": null, "provider_account_id": null, "plan": null,
            "rate_limit_tier": null, "priority": 0, "enabled": true, "needs_login": false,
            "expires_at": null,
        }),
        credentials: json!({ "api_key": { "key": key } }),
        token: key.to_owned(),
    });
    let o = &f["oauth_tokens"];
    let expires = rfc3339(&o["expires_at"]);
    let scopes: Vec<&str> = o["scope"].as_str().expect("scope").split(' ').collect();
    w.push(Want {
        source: "claude_auth.json",
        info: json!({
            "label": "claude-pro", "provider": "claude", "kind": "oauth", "credentials": ["oauth"],
            "email": null, "provider_account_id": null, "plan": "pro", "rate_limit_tier": null,
            "priority": 0, "enabled": true, "needs_login": false, "expires_at": expires,
        }),
        credentials: json!({ "oauth": {
            "access_token": o["access_token"], "refresh_token": o["refresh_token"],
            "id_token": null, "expires_at": expires, "scopes": scopes,
            "last_refresh": rfc3339(&f["last_refresh"]),
        }}),
        token: o["access_token"].as_str().expect("token").to_owned(),
    });

    // Codex ChatGPT files: the tokens are the active credential (plan plus
    // decides it for the 2025-06 file, which also holds the exchanged key).
    for (source, label, email, plan) in [
        (
            "codex-2025-06-auth.json",
            "openai-plus",
            "ada@example.com",
            "plus",
        ),
        (
            "codex-2025-08-auth.json",
            "openai-pro",
            "grace@example.com",
            "pro",
        ),
        (
            "codex-2026-chatgpt-auth.json",
            "openai-team",
            "linus@example.org",
            "team",
        ),
    ] {
        let f = load(source);
        let oauth = codex_oauth(&f);
        let mut creds = json!({ "oauth": oauth });
        let mut kinds = vec!["oauth"];
        if let Some(key) = f["OPENAI_API_KEY"].as_str() {
            creds["api_key"] = json!({ "key": key });
            kinds.insert(0, "api_key");
        }
        w.push(Want {
            source,
            info: json!({
                "label": label, "provider": "openai", "kind": "oauth", "credentials": kinds,
                "email": email, "provider_account_id": chatgpt_account_id(&f), "plan": plan,
                "rate_limit_tier": null, "priority": 0, "enabled": true, "needs_login": false,
                "expires_at": oauth["expires_at"],
            }),
            credentials: creds,
            token: oauth["access_token"].as_str().expect("token").to_owned(),
        });
    }

    let f = load("codex-apikey-auth.json");
    let key = f["OPENAI_API_KEY"].as_str().expect("key");
    w.push(Want {
        source: "codex-apikey-auth.json",
        info: json!({
            "label": "openai-api-key", "provider": "openai", "kind": "api_key",
            "credentials": ["api_key"], "email": null, "provider_account_id": null, "plan": null,
            "rate_limit_tier": null, "priority": 0, "enabled": true, "needs_login": false,
            "expires_at": null,
        }),
        credentials: json!({ "api_key": { "key": key } }),
        token: key.to_owned(),
    });

    let f = load("extended-auth.json");
    let oauth = codex_oauth(&f);
    w.push(Want {
        source: "extended-auth.json",
        info: json!({
            "label": "openai-plus-2", "provider": "openai", "kind": "oauth",
            "credentials": ["oauth"], "email": "mary@example.com",
            "provider_account_id": chatgpt_account_id(&f), "plan": "plus",
            "rate_limit_tier": null, "priority": 0, "enabled": true, "needs_login": false,
            "expires_at": oauth["expires_at"],
        }),
        token: oauth["access_token"].as_str().expect("token").to_owned(),
        credentials: json!({ "oauth": oauth }),
    });
    let o = &f["claude_auth"]["oauth_tokens"];
    let expires = rfc3339(&o["expires_at"]);
    w.push(Want {
        source: "extended-auth.json",
        info: json!({
            "label": "claude-max-2", "provider": "claude", "kind": "oauth",
            "credentials": ["oauth"], "email": null, "provider_account_id": o["account_id"],
            "plan": "max", "rate_limit_tier": null, "priority": 0, "enabled": true,
            "needs_login": false, "expires_at": expires,
        }),
        credentials: json!({ "oauth": {
            "access_token": o["access_token"], "refresh_token": o["refresh_token"],
            "id_token": null, "expires_at": expires, "scopes": [], "last_refresh": null,
        }}),
        token: o["access_token"].as_str().expect("token").to_owned(),
    });
    w
}

/// Keys under which the fixtures keep secrets.
const SECRET_KEYS: [&str; 8] = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "api_key",
    "id_token",
    "access_token",
    "refresh_token",
    "accessToken",
    "refreshToken",
];

/// Every secret string of every fixture (the OpenAI JWTs do not all carry
/// the marker, so they are looked for whole).
fn fixture_secrets() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some(s) if SECRET_KEYS.contains(&k.as_str()) => out.push(s.to_owned()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for f in FIXTURES {
        walk(&fixture(f), &mut out);
    }
    assert_eq!(out.len(), 21, "every fixture secret found: {out:?}");
    out
}

/// `(line, column)` of the last character of `text`: where a truncated document ends.
fn end_position(text: &str) -> (usize, usize) {
    // The last character read, as `serde_json` reports an unexpected end.
    let before_last = &text[..text.len() - text.chars().last().expect("not empty").len_utf8()];
    let line = before_last.matches('\n').count() + 1;
    let column = before_last
        .rsplit('\n')
        .next()
        .expect("line")
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Now, to the second (the vault keeps no finer times than the files carry).
fn now() -> DateTime<Utc> {
    unix(Utc::now().timestamp())
}

/// Fixture `name` with its OAuth tokens made current as of `now`: access
/// tokens expire a year later (an OpenAI access token is re-issued with that
/// `exp`) and a Codex `last_refresh` is `now`, so `vault token` serves them
/// as they are instead of refreshing them first.
fn fresh_fixture(name: &str, now: DateTime<Utc>) -> Value {
    let mut f = fixture(name);
    let later = now + chrono::Duration::days(365);
    if f.get("tokens").is_some() {
        let mut claims = jwt_claims(f["tokens"]["access_token"].as_str().expect("access token"));
        claims["exp"] = json!(later.timestamp());
        f["tokens"]["access_token"] = json!(make_jwt(&claims));
        f["last_refresh"] = json!(now);
    }
    if let Some(o) = f.get_mut("oauth_tokens") {
        o["expires_at"] = json!(later);
    }
    if let Some(o) = f.pointer_mut("/claude_auth/oauth_tokens") {
        o["expires_at"] = json!(later);
    }
    if let Some(o) = f.get_mut("claudeAiOauth") {
        o["expiresAt"] = json!(later.timestamp_millis());
    }
    f
}

/// A fresh copy of fixture `name` (see [`fresh_fixture`]) with other tokens:
/// newer than the fixture by refresh time (Codex: new refresh token, same
/// account id) or expiry (Claude Code: new access token, same refresh token).
/// Returns the file's JSON and its access token.
fn newer_copy(name: &str) -> (Value, String) {
    let mut f = fresh_fixture(name, now());
    if f.get("tokens").is_some() {
        f["tokens"]["refresh_token"] = json!(format!("rt_{MARKER}newer{name}"));
        let access = f["tokens"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        (f, access)
    } else {
        let o = &mut f["claudeAiOauth"];
        let access = format!("sk-ant-oat01-{MARKER}newer-access");
        o["accessToken"] = json!(access);
        // Same refresh token: Claude Code's file has nothing else to match on.
        (f, access)
    }
}

fn source_report(path: &Path, status: &str, format: Option<&str>) -> Value {
    json!({
        "path": path, "status": status, "format": format, "error": null, "notes": [],
        "warnings": [], "removed": false, "kept_because": null,
    })
}

/// A Claude Code `.credentials.json` that also holds MCP tokens of another tool.
fn claude_code_with_mcp() -> Value {
    let mut f = fixture("claude-code-credentials.json");
    f["mcpOAuth"] = json!({
        "github|1a2b": {
            "serverName": "github",
            "accessToken": format!("gho_{MARKER}mcp"),
            "expiresAt": 0,
        }
    });
    f
}

/// Checks a `--from <all fixtures>` import against the README table: which
/// source yielded which account, the accounts and every credential, whole.
fn assert_imported_as(tv: &TempVault, report: &Value, want: &[Want]) {
    // Which source yielded which account, and nothing else.
    let expected_outcomes: Vec<_> = want
        .iter()
        .map(|w| {
            (
                w.source.to_owned(),
                w.info["label"].as_str().expect("label").to_owned(),
                "create".to_owned(),
            )
        })
        .collect();
    assert_eq!(outcomes(report), expected_outcomes, "{report}");
    let formats: Vec<(String, Value, Value)> = report["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            (
                file_name(&s["path"]),
                s["format"].clone(),
                s["status"].clone(),
            )
        })
        .collect();
    let want_formats: Vec<(String, Value, Value)> = [
        "claude-code-credentials",
        "claude-auth",
        "codex-auth",
        "codex-auth",
        "codex-auth",
        "codex-auth",
        "extended-auth",
    ]
    .iter()
    .zip(FIXTURES)
    .map(|(fmt, f)| (f.to_owned(), json!(fmt), json!("imported")))
    .collect();
    assert_eq!(formats, want_formats);
    assert_eq!(
        (&report["created"], &report["updated"], &report["unchanged"]),
        (&json!(9), &json!(0), &json!(0))
    );

    // The accounts, whole (identity, plan, tier, expiry, active credential).
    let mut want_accounts: Vec<Value> = want.iter().map(|w| w.info.clone()).collect();
    want_accounts.sort_by_key(|a| a["label"].to_string());
    assert_eq!(accounts(tv), want_accounts);

    // Every credential, whole.
    let got = credentials(tv);
    let labels: Vec<&str> = got.keys().map(String::as_str).collect();
    let mut want_labels: Vec<&str> = want
        .iter()
        .map(|w| w.info["label"].as_str().expect("label"))
        .collect();
    want_labels.sort_unstable();
    assert_eq!(labels, want_labels);
    for w in want {
        let label = w.info["label"].as_str().expect("label");
        assert_eq!(got[label], w.credentials, "credentials of {label}");
    }
}

// ---------------------------------------------------------------------------
// 1. Each fixture imports into exactly what the README lists.

#[test]
fn each_fixture_imports_into_exactly_the_accounts_its_readme_row_lists() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::with_all_fixtures();
    let report = migrate(&tv, &[], &[src.path()]);
    let want = readme_table(&fixture);

    assert_imported_as(&tv, &report, &want);
    // The active secret: the vault holds it (`vault token` would refresh
    // these long-expired OAuth tokens first; fresh copies are served by
    // `vault token` in the next test), and API keys come out of `vault token`.
    let stored = stored_tokens(&tv);
    for w in &want {
        let label = w.info["label"].as_str().expect("label");
        assert_eq!(stored[label], w.token, "{label}");
        if w.info["kind"] == "api_key" {
            assert_eq!(token(&tv, label), w.token, "{label}");
        }
    }

    // The extended file's preferences became settings, its last selection a history entry.
    let mut store = tv.open_passphrase();
    let settings: Vec<_> = [
        "preferred_provider",
        "fallback_enabled",
        "selection_strategy",
        "cost_optimization",
    ]
    .iter()
    .map(|k| {
        store
            .setting(&format!("provider_preferences.{k}"))
            .expect("setting")
    })
    .collect();
    assert_eq!(
        settings,
        [
            Some(json!("Claude")),
            Some(json!(true)),
            Some(json!("CostOptimized")),
            Some(json!(true))
        ]
    );
    let history = serde_json::to_value(store.selection_history().expect("history")).expect("json");
    assert_eq!(
        history,
        json!([{
            "at": "2026-09-01T12:00:05.000000Z",
            "origin": "import",
            "provider": "Claude",
            "reason": "max subscription under 80% of daily limit",
            "task_context": "CodeGeneration",
            "task_type": null, "strategy": null, "account": null, "agent": null,
            "outcome": null, "reservation": null, "session": null, "candidates": null,
        }])
    );
    assert_eq!(
        report["settings_changed"],
        json!([
            "provider_preferences.preferred_provider",
            "provider_preferences.fallback_enabled",
            "provider_preferences.selection_strategy",
            "provider_preferences.cost_optimization",
        ])
    );
    assert_eq!(report["history_added"], 1);
}

#[test]
fn vault_token_serves_the_imported_active_credential_of_every_account() {
    let now = now();
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    for f in FIXTURES {
        src.write_json(f, &fresh_fixture(f, now));
    }
    let report = migrate(&tv, &[], &[src.path()]);
    let want = readme_table(&|name: &str| fresh_fixture(name, now));
    assert_imported_as(&tv, &report, &want);
    // The access token for OAuth accounts (also for the 2025-06 file that
    // holds a key too: plan `plus` made the tokens active), else the key.
    let served: Vec<(String, String)> = want
        .iter()
        .map(|w| {
            let label = w.info["label"].as_str().expect("label").to_owned();
            (token(&tv, &label), label)
        })
        .collect();
    let expected: Vec<(String, String)> = want
        .iter()
        .map(|w| {
            (
                w.token.clone(),
                w.info["label"].as_str().expect("label").to_owned(),
            )
        })
        .collect();
    assert_eq!(served, expected);
}

#[test]
fn a_source_other_users_can_read_is_imported_with_a_warning_and_a_private_one_without() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    let bytes = fs::read(fixture_path("codex-apikey-auth.json")).expect("read");
    let open = src.write_mode("open.json", &bytes, 0o644);
    let private = src.write_mode(
        "private.json",
        &fs::read(fixture_path("codex-2026-chatgpt-auth.json")).expect("read"),
        0o600,
    );
    let report = migrate(&tv, &[], &[&open, &private]);
    let mut want_open = source_report(&open, "imported", Some("codex-auth"));
    want_open["warnings"] = json!([
        "the file has mode 0644: other users could read its secrets; consider rotating them"
    ]);
    assert_eq!(
        report["sources"],
        json!([
            want_open,
            source_report(&private, "imported", Some("codex-auth"))
        ])
    );
    assert_eq!(labels(&tv), ["openai-api-key", "openai-team"]);
    assert_eq!(
        token(&tv, "openai-api-key"),
        fixture("codex-apikey-auth.json")["OPENAI_API_KEY"]
            .as_str()
            .expect("key")
    );
    // The warning is in the human report too.
    let out = ok(&mut migrate_cmd(&tv, false, &[], &[&open]));
    assert!(
        stdout(&out).contains("mode 0644: other users could read its secrets"),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------
// 2. Idempotence and identity.

#[test]
fn a_second_run_on_the_same_sources_creates_and_updates_nothing() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::with_all_fixtures();
    let first = migrate(&tv, &[], &[src.path()]);
    assert_eq!(first["created"], 9);
    let before = parse_json(&ok(&mut tv.vault(&["--json", "accounts"])));
    let second = migrate(&tv, &[], &[src.path()]);
    assert_eq!(
        json!({
            "created": second["created"], "updated": second["updated"],
            "unchanged": second["unchanged"], "settings_changed": second["settings_changed"],
            "history_added": second["history_added"],
        }),
        json!({
            "created": 0, "updated": 0, "unchanged": 9, "settings_changed": [], "history_added": 0,
        })
    );
    // Same accounts under the same labels; not even a timestamp moved.
    let relabel: Vec<_> = outcomes(&first)
        .into_iter()
        .map(|(s, l, _)| (s, l, "unchanged".to_owned()))
        .collect();
    assert_eq!(outcomes(&second), relabel);
    let after = parse_json(&ok(&mut tv.vault(&["--json", "accounts"])));
    assert_eq!(after, before);
    assert_eq!(
        tv.open_passphrase()
            .selection_history()
            .expect("history")
            .len(),
        1
    );
}

#[test]
fn two_files_describing_the_same_account_yield_one_account() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    let original = src.copy("codex-2026-chatgpt-auth.json");
    let f = fixture("codex-2026-chatgpt-auth.json");
    let id_claims = jwt_claims(f["tokens"]["id_token"].as_str().expect("id token"));

    // Same ChatGPT account id, other tokens, same refresh time.
    let mut same_id = f.clone();
    same_id["tokens"]["access_token"] = json!(format!("at-{MARKER}-same-id"));
    same_id["tokens"]["refresh_token"] = json!(format!("rt_{MARKER}-same-id"));
    let same_id = src.write_json("same-id.json", &same_id);

    // Same e-mail and provider, no account id anywhere, an older refresh.
    let mut claims = id_claims.clone();
    claims["https://api.openai.com/auth"]
        .as_object_mut()
        .expect("auth claim")
        .remove("chatgpt_account_id");
    let mut same_email = json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": make_jwt(&claims),
            "access_token": format!("at-{MARKER}-same-email"),
            "refresh_token": format!("rt_{MARKER}-same-email"),
        },
        "last_refresh": "2026-01-01T00:00:00Z",
    });
    assert_eq!(
        jwt_claims(same_email["tokens"]["id_token"].as_str().expect("jwt"))["email"],
        "linus@example.org"
    );
    same_email["auth_mode"] = json!("chatgpt");
    let same_email = src.write_json("same-email.json", &same_email);

    // In one run, and across runs.
    let report = migrate(&tv, &[], &[&original, &same_id]);
    assert_eq!(
        outcomes(&report),
        [
            (
                "codex-2026-chatgpt-auth.json".into(),
                "openai-team".into(),
                "create".into()
            ),
            (
                "same-id.json".into(),
                "openai-team".into(),
                "unchanged".into()
            ),
        ]
    );
    let report = migrate(&tv, &[], &[&same_email]);
    assert_eq!(
        outcomes(&report),
        [(
            "same-email.json".into(),
            "openai-team".into(),
            "unchanged".into()
        )]
    );
    assert_eq!(report["accounts"][0]["kept"], json!(["oauth"]));
    assert_eq!(labels(&tv), ["openai-team"]);
    assert_eq!(
        stored_token(&tv, "openai-team"),
        f["tokens"]["access_token"].as_str().expect("token")
    );
}

// ---------------------------------------------------------------------------
// 3. Newer wins, older never overwrites.

#[test]
fn a_newer_copy_updates_the_account_and_the_older_original_never_overwrites_it() {
    for (fixture_name, label) in [
        ("codex-2026-chatgpt-auth.json", "openai-team"),
        ("claude-code-credentials.json", "claude-max"),
    ] {
        let tv = TempVault::new();
        init(&tv);
        let src = Sources::new();
        let original = src.copy(fixture_name);
        let (newer, new_access) = newer_copy(fixture_name);
        let newer_path = src.write_json("newer.json", &newer);
        let first = migrate(&tv, &[], &[&original]);
        assert_eq!(outcomes(&first)[0].1, label, "{fixture_name}");
        let old_access = stored_token(&tv, label);
        assert_ne!(old_access, new_access);

        let report = migrate(&tv, &[], &[&newer_path]);
        let outcome = |action: &str, changes: Value, kept: Value, source: &Path| {
            let mut o = first["accounts"][0].clone();
            o["source"] = json!(source);
            o["action"] = json!(action);
            o["changes"] = changes;
            o["kept"] = kept;
            o
        };
        assert_eq!(
            report["accounts"],
            json!([outcome(
                "update",
                json!(["oauth credential updated: the source's is newer"]),
                json!([]),
                &newer_path
            )]),
            "{fixture_name}"
        );
        assert_eq!(
            (&report["created"], &report["updated"]),
            (&json!(0), &json!(1))
        );
        assert_eq!(token(&tv, label), new_access, "{fixture_name}");
        let creds = credentials(&tv);
        assert_eq!(
            creds[label]["oauth"]["refresh_token"],
            newer.get("tokens").map_or_else(
                || newer["claudeAiOauth"]["refreshToken"].clone(),
                |t| t["refresh_token"].clone()
            ),
            "{fixture_name}"
        );

        let report = migrate(&tv, &[], &[&original]);
        assert_eq!(
            report["accounts"],
            json!([outcome(
                "unchanged",
                json!(["kept the vault's oauth credential: the source's is not newer"]),
                json!(["oauth"]),
                &original
            )]),
            "{fixture_name}"
        );
        assert_eq!(
            token(&tv, label),
            new_access,
            "{fixture_name}: older overwrote newer"
        );
        assert_eq!(credentials(&tv), creds, "{fixture_name}");
        assert_eq!(labels(&tv), [label]);
    }
}

#[test]
fn a_copy_with_the_same_refresh_time_and_other_tokens_is_not_newer_in_either_direction() {
    // codex-2025-06's `last_refresh` has microseconds, as Codex writes it.
    let name = "codex-2025-06-auth.json";
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    let original = src.copy(name);
    let mut other = fixture(name);
    other["tokens"]["refresh_token"] = json!(format!("rt_{MARKER}same-time-other-token"));
    let other = src.write_json("same-time.json", &other);
    migrate(&tv, &[], &[&original]);
    let held = credentials(&tv);
    for source in [&other, &original, &other] {
        let report = migrate(&tv, &[], &[source]);
        let changes: Vec<_> = report["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .map(|a| (a["action"].clone(), a["kept"].clone()))
            .collect();
        let kept = if source == &original {
            json!([])
        } else {
            json!(["oauth"])
        };
        assert_eq!(
            changes,
            [(json!("unchanged"), kept)],
            "{}",
            source.display()
        );
        assert_eq!(credentials(&tv), held, "{}", source.display());
    }
}

#[test]
fn one_run_holding_an_older_and_a_newer_copy_of_an_account_keeps_the_newer_and_succeeds() {
    for newer_first in [false, true] {
        let tv = TempVault::new();
        init(&tv);
        let src = Sources::new();
        let original = src.copy("codex-2026-chatgpt-auth.json");
        let (newer, new_access) = newer_copy("codex-2026-chatgpt-auth.json");
        let newer = src.write_json("newer.json", &newer);
        let from: [&Path; 2] = if newer_first {
            [&newer, &original]
        } else {
            [&original, &newer]
        };
        let plan = migrate(&tv, &["--dry-run"], &from);
        let out = migrate_cmd(&tv, true, &[], &from)
            .output()
            .expect("spawn vault");
        assert!(
            out.status.success(),
            "newer first: {newer_first}: {}",
            stderr(&out)
        );
        let report = parse_json(&out)["report"].clone();
        assert_eq!(report, as_real(plan), "newer first: {newer_first}");
        let actions: Vec<_> = outcomes(&report).into_iter().map(|(_, _, a)| a).collect();
        let want = if newer_first {
            ["create", "unchanged"]
        } else {
            ["create", "update"]
        };
        assert_eq!(actions, want, "newer first: {newer_first}");
        assert_eq!(labels(&tv), ["openai-team"]);
        assert_eq!(token(&tv, "openai-team"), new_access);
    }
}

// ---------------------------------------------------------------------------
// 4. One malformed source of three.

#[test]
fn one_malformed_source_of_three_fails_the_run_naming_file_line_column_and_writes_nothing() {
    let apikey = fs::read_to_string(fixture_path("codex-apikey-auth.json")).expect("read");
    let truncated = apikey[..apikey.find(MARKER).expect("marker") + 10].to_owned();
    let (l, c) = end_position(&truncated);
    let cases: [(&str, String, String); 4] = [
        (
            "truncated JSON",
            truncated.clone(),
            format!("{l}:{c}: unexpected end of file"),
        ),
        ("empty file", String::new(), "1:1: file is empty".into()),
        (
            "a known field of the wrong type",
            "{\n  \"OPENAI_API_KEY\": 42\n}\n".into(),
            "2:21: field `OPENAI_API_KEY`: expected a string or null, found a number".into(),
        ),
        (
            "an unknown auth_mode",
            format!("{{\"auth_mode\": \"magic\", \"OPENAI_API_KEY\": \"sk-{MARKER}\"}}"),
            "1:15: field `auth_mode`: unknown value (not shown)".into(),
        ),
    ];
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    let keep = src.copy("codex-apikey-auth.json");
    migrate(&tv, &[], &[&keep]);
    let a = src.copy("codex-2026-chatgpt-auth.json");
    let b = src.copy("claude-code-credentials.json");
    let before = tv.bytes();
    let accounts_before = accounts(&tv);
    for (i, (what, content, position)) in cases.iter().enumerate() {
        let bad = src.write("bad.json", content.as_bytes());
        // The JSON mode fails the same way (checked once).
        let out = fails(&mut migrate_cmd(&tv, i == 0, &[], &[&a, &bad, &b]));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}:{position}", bad.display())),
            "{what}: {err}"
        );
        assert!(err.contains("--skip-invalid"), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}: {}", stdout(&out));
        assert_eq!(tv.bytes(), before, "{what}: vault changed");
    }
    assert_eq!(accounts(&tv), accounts_before);

    // With no vault at all, a failed first run does not create one.
    let fresh = TempVault::new();
    let bad = src.write("bad.json", truncated.as_bytes());
    let mut args = vec!["migrate", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    let out = fails(
        fresh
            .vault(&args)
            .arg("--from")
            .arg(&a)
            .arg("--from")
            .arg(&bad),
    );
    assert!(
        stderr(&out).contains(&format!("{}:{l}:{c}", bad.display())),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.path.exists(), "a vault was created by a failed run");

    // --skip-invalid imports the two valid ones and lists the invalid one.
    let report = migrate(&tv, &["--skip-invalid"], &[&a, &bad, &b]);
    let mut invalid = source_report(&bad, "invalid", None);
    invalid["error"] = json!(format!(
        "{}:{l}:{c}: unexpected end of file: the JSON is truncated",
        bad.display()
    ));
    assert_eq!(
        report["sources"],
        json!([
            source_report(&a, "imported", Some("codex-auth")),
            invalid,
            source_report(&b, "imported", Some("claude-code-credentials")),
        ])
    );
    assert_eq!(
        outcomes(&report),
        [
            (
                "codex-2026-chatgpt-auth.json".into(),
                "openai-team".into(),
                "create".into()
            ),
            (
                "claude-code-credentials.json".into(),
                "claude-max".into(),
                "create".into()
            ),
        ]
    );
    assert_eq!(labels(&tv), ["claude-max", "openai-api-key", "openai-team"]);
    let out = ok(&mut migrate_cmd(
        &tv,
        false,
        &["--skip-invalid"],
        &[&a, &bad, &b],
    ));
    assert!(
        stdout(&out).contains("invalid")
            && stdout(&out).contains(&format!("{}:{l}:{c}", bad.display())),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------
// 5. Dry run.

/// A report with `dry_run` cleared, to compare a plan with the real run.
fn as_real(mut plan: Value) -> Value {
    assert_eq!(plan["dry_run"], true, "{plan}");
    plan["dry_run"] = json!(false);
    plan
}

#[test]
fn a_dry_run_writes_nothing_and_plans_exactly_what_the_real_run_then_does() {
    let src = Sources::with_all_fixtures();

    // No vault yet: nothing is created, not even a scratch file left behind.
    let tv = TempVault::new();
    let scratch = tempfile::tempdir().expect("tempdir");
    let out =
        ok(migrate_cmd(&tv, true, &["--dry-run"], &[src.path()]).env("TMPDIR", scratch.path()));
    let plan = parse_json(&out);
    assert_eq!(plan["vault_created"], false);
    assert!(
        !tv.path.exists() && !tv.vault_dir().exists(),
        "dry run created a vault"
    );
    assert_eq!(
        fs::read_dir(scratch.path()).expect("read").count(),
        0,
        "scratch left behind"
    );
    let out =
        ok(migrate_cmd(&tv, false, &["--dry-run"], &[src.path()]).env("TMPDIR", scratch.path()));
    assert!(stdout(&out).contains("would create"), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("(dry run: nothing was written)\n"),
        "{}",
        stdout(&out)
    );
    assert!(!tv.path.exists());

    let mut args = vec!["--passphrase"];
    args.extend(FAST_KDF_ARGS);
    let real = parse_json(&ok(&mut migrate_cmd(&tv, true, &args, &[src.path()])));
    assert_eq!(real["vault_created"], true);
    assert_eq!(real["report"], as_real(plan["report"].clone()));
    assert_eq!(real["report"]["created"], 9);

    // An existing vault: one account to create, one to update, the rest unchanged.
    let more = Sources::new();
    let (newer, _) = newer_copy("codex-2026-chatgpt-auth.json");
    let newer = more.write_json("newer.json", &newer);
    let fresh_key = more.write_json(
        "second-key.json",
        &json!({ "OPENAI_API_KEY": format!("sk-proj-{MARKER}second") }),
    );
    let unchanged = src.join("claude_auth.json");
    let from: [&Path; 3] = [&unchanged, &newer, &fresh_key];
    let before = tv.bytes();
    let accounts_before = accounts(&tv);
    let plan = migrate(&tv, &["--dry-run"], &from);
    assert_eq!(tv.bytes(), before, "dry run changed the vault file");
    assert_eq!(accounts(&tv), accounts_before);
    let real = migrate(&tv, &[], &from);
    assert_eq!(real, as_real(plan));
    assert_eq!(
        (&real["created"], &real["updated"], &real["unchanged"]),
        (&json!(1), &json!(1), &json!(2))
    );
}

// ---------------------------------------------------------------------------
// 6. --remove-source.

#[test]
fn remove_source_deletes_sources_only_after_a_verified_import_and_keeps_other_tools_data() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    let codex = src.copy("codex-2026-chatgpt-auth.json");
    let claude_auth = src.copy("claude_auth.json");
    let with_mcp = src.write_json(".credentials.json", &claude_code_with_mcp());
    let bad = src.write("bad.json", b"{\"OPENAI_API_KEY\": \"sk-");
    let all: [&Path; 4] = [&codex, &claude_auth, &with_mcp, &bad];
    let snapshot = || -> Vec<Option<Vec<u8>>> { all.iter().map(|p| fs::read(p).ok()).collect() };
    let originals = snapshot();

    // A failed run (invalid source, no --skip-invalid) removes nothing.
    fails(&mut migrate_cmd(&tv, false, &["--remove-source"], &all));
    assert_eq!(snapshot(), originals);
    // Nor does a dry run.
    migrate(
        &tv,
        &["--remove-source", "--dry-run", "--skip-invalid"],
        &all,
    );
    assert_eq!(snapshot(), originals);
    // Nor a run whose write fails.
    tv.raw()
        .execute_batch("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END;")
        .expect("trigger");
    let out = fails(&mut migrate_cmd(
        &tv,
        false,
        &["--remove-source"],
        &[&codex, &claude_auth],
    ));
    assert!(
        stderr(&out).contains("audit log is read-only"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(), originals);
    tv.raw()
        .execute_batch("DROP TRIGGER refuse_audit;")
        .expect("drop trigger");
    assert!(labels(&tv).is_empty());

    let report = migrate(&tv, &["--remove-source", "--skip-invalid"], &all);
    let removed = |p: &Path, format: &str| {
        let mut s = source_report(p, "imported", Some(format));
        s["removed"] = json!(true);
        s
    };
    let mut kept = source_report(
        with_mcp.as_path(),
        "imported",
        Some("claude-code-credentials"),
    );
    kept["notes"] =
        json!(["top-level key `mcpOAuth` is not imported and was left untouched in the file"]);
    kept["kept_because"] = json!("it also holds other tools' data, which was not imported");
    let mut invalid = source_report(&bad, "invalid", None);
    invalid["error"] = report["sources"][3]["error"].clone();
    assert!(
        invalid["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{}:1:", bad.display())))
    );
    assert_eq!(
        report["sources"],
        json!([
            removed(&codex, "codex-auth"),
            removed(&claude_auth, "claude-auth"),
            kept,
            invalid
        ])
    );
    assert_eq!(
        snapshot(),
        [None, None, originals[2].clone(), originals[3].clone()],
        "only the imported, tool-exclusive sources are gone"
    );
    // What was removed is in the vault.
    let f = fixture("codex-2026-chatgpt-auth.json");
    assert_eq!(
        stored_token(&tv, "openai-team"),
        f["tokens"]["access_token"].as_str().expect("token")
    );
    let f = fixture("claude_auth.json");
    assert_eq!(
        token(&tv, "claude-api-key"),
        f["ANTHROPIC_API_KEY"].as_str().expect("key")
    );
    assert_eq!(
        stored_token(&tv, "claude-pro"),
        f["oauth_tokens"]["access_token"].as_str().expect("token")
    );
    assert_eq!(
        labels(&tv),
        ["claude-api-key", "claude-max", "claude-pro", "openai-team"]
    );
    // The human report says why the Claude Code file was kept.
    let out = ok(&mut migrate_cmd(
        &tv,
        false,
        &["--remove-source"],
        &[&with_mcp],
    ));
    assert!(
        stdout(&out).contains("kept: it also holds other tools' data"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(&with_mcp).ok(), originals[2]);
}

// ---------------------------------------------------------------------------
// 7. Export round trip.

/// Exports every exportable account of `tv` into `dir` (one file per label):
/// `vault export codex` for OpenAI accounts, `vault export claude-code` for
/// Claude subscription accounts. Returns `(label, format, path)`.
fn export_all(tv: &TempVault, dir: &Path) -> Vec<(String, &'static str, PathBuf)> {
    let mut out = Vec::new();
    for a in accounts(tv) {
        let label = a["label"].as_str().expect("label").to_owned();
        let oauth = a["credentials"]
            .as_array()
            .expect("kinds")
            .contains(&json!("oauth"));
        let format = match (a["provider"].as_str(), oauth) {
            (Some("openai"), _) => "codex",
            (Some("claude"), true) => "claude-code",
            _ => continue,
        };
        let path = dir.join(format!("{label}.json"));
        let o = ok(tv
            .vault(&["export", format, "--account", &label, "--out"])
            .arg(&path));
        assert_eq!(
            stdout(&o),
            format!(
                "Wrote {format} for {} account `{label}` to {} (mode 0600).\n",
                a["provider"].as_str().expect("provider"),
                path.display()
            )
        );
        out.push((label, format, path));
    }
    out
}

/// The active secret of each credential set read by [`credentials`].
fn active_secret(info: &Value, creds: &Value) -> String {
    let c = &creds[info["kind"].as_str().expect("kind")];
    c.get("key")
        .unwrap_or(&c["access_token"])
        .as_str()
        .expect("secret")
        .to_owned()
}

/// Accounts keyed by their active secret (labels differ between vaults):
/// the label, the listing without the label, and all credentials.
fn by_secret(tv: &TempVault) -> BTreeMap<String, (String, Value, Value)> {
    let creds = credentials(tv);
    accounts(tv)
        .into_iter()
        .map(|mut a| {
            let label = a["label"].as_str().expect("label").to_owned();
            a.as_object_mut().expect("object").remove("label");
            let c = creds[&label].clone();
            (active_secret(&a, &c), (label, a, c))
        })
        .collect()
}

/// [`by_secret`] without the labels.
fn unlabelled(
    accounts: &BTreeMap<String, (String, Value, Value)>,
) -> BTreeMap<String, (Value, Value)> {
    accounts
        .iter()
        .map(|(s, (_, info, creds))| (s.clone(), (info.clone(), creds.clone())))
        .collect()
}

#[test]
fn import_export_import_round_trips_accounts_and_secrets() {
    // Current tokens, so that `vault token` serves them without a refresh.
    let a = TempVault::new();
    init(&a);
    let src = Sources::with_fresh_fixtures();
    migrate(&a, &[], &[src.path()]);
    let out1 = tempfile::tempdir().expect("tempdir");
    let exported = export_all(&a, out1.path());
    assert_eq!(
        exported
            .iter()
            .map(|(l, f, _)| (l.as_str(), *f))
            .collect::<Vec<_>>(),
        [
            ("claude-max", "claude-code"),
            ("claude-max-2", "claude-code"),
            ("claude-pro", "claude-code"),
            ("openai-api-key", "codex"),
            ("openai-plus", "codex"),
            ("openai-plus-2", "codex"),
            ("openai-pro", "codex"),
            ("openai-team", "codex"),
        ]
    );
    for (_, _, p) in &exported {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    // A Claude API key has no place in Claude Code's file.
    let refused = out1.path().join("refused.json");
    let o = fails(
        a.vault(&[
            "export",
            "claude-code",
            "--account",
            "claude-api-key",
            "--out",
        ])
        .arg(&refused),
    );
    assert!(
        stderr(&o).contains("has no subscription login"),
        "{}",
        stderr(&o)
    );
    assert!(!refused.exists());

    let b = TempVault::new();
    init(&b);
    let report = migrate(&b, &[], &[out1.path()]);
    assert_eq!(
        (&report["created"], &report["updated"]),
        (&json!(8), &json!(0))
    );

    // Same accounts (provider, kinds, active credential, e-mail, plan, tier,
    // expiry) and every secret, except what Claude Code's file cannot carry:
    // the Claude account id and last refresh time.
    let old = by_secret(&a);
    let mut want = unlabelled(&old);
    want.retain(|_, (info, _)| info["kind"] == "oauth" || info["provider"] == "openai");
    for (info, creds) in want.values_mut() {
        if info["provider"] == "claude" {
            info["provider_account_id"] = Value::Null;
            creds["oauth"]["last_refresh"] = Value::Null;
        }
    }
    let got = unlabelled(&by_secret(&b));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (secret, w) in &want {
        assert_eq!(&got[secret], w, "account {}", old[secret].0);
    }

    // `vault token` in the new vault serves the very secrets the old one held.
    let new_labels = labels(&b);
    let served: BTreeMap<String, String> = new_labels
        .iter()
        .map(|l| (token(&b, l), l.clone()))
        .collect();
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );

    // Exporting again from the new vault writes the very same file.
    let out2 = tempfile::tempdir().expect("tempdir");
    for (label, format, first) in [&exported[0], &exported[7]] {
        let secret = old
            .iter()
            .find_map(|(s, (l, _, _))| (l == label).then_some(s))
            .expect("exported account");
        let again = out2.path().join(format!("{label}.json"));
        ok(
            b.vault(&["export", format, "--account", &served[secret], "--out"])
                .arg(&again),
        );
        assert_eq!(
            fs::read(&again).expect("read"),
            fs::read(first).expect("read"),
            "{format} export of {label}"
        );
    }

    // Exports are audited.
    let audit = parse_json(&ok(&mut a.vault(&["--json", "audit"])));
    let writes: Vec<_> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "export.write")
        .map(|e| e["details"]["account"].clone())
        .collect();
    let exported_labels: Vec<_> = exported.iter().map(|(l, _, _)| json!(l)).collect();
    assert_eq!(writes, exported_labels);
}

#[test]
fn export_refuses_an_existing_file_without_force_and_keeps_claude_codes_other_keys() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::new();
    migrate(
        &tv,
        &[],
        &[
            &src.copy("claude-code-credentials.json"),
            &src.copy("codex-2026-chatgpt-auth.json"),
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");

    // Without --force an existing file is left alone, for both formats.
    for (format, label) in [("codex", "openai-team"), ("claude-code", "claude-max")] {
        let path = dir.path().join(format!("{format}-existing.json"));
        fs::write(&path, b"{\"precious\": true}\n").expect("write");
        let out = fails(
            tv.vault(&["export", format, "--account", label, "--out"])
                .arg(&path),
        );
        assert!(
            stderr(&out).contains(&format!("{} exists; pass --force", path.display())),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(&path).expect("read"), b"{\"precious\": true}\n");
        // With --force it is replaced, private.
        ok(tv
            .vault(&["export", format, "--account", label, "--force", "--out"])
            .arg(&path));
        assert_eq!(mode(&path), 0o600);
    }

    // --force onto a Claude Code file with MCP tokens: only `claudeAiOauth` changes.
    let fresh = dir.path().join("fresh.json");
    ok(tv
        .vault(&["export", "claude-code", "--account", "claude-max", "--out"])
        .arg(&fresh));
    let fresh: Value = serde_json::from_slice(&fs::read(&fresh).expect("read")).expect("json");
    let existing = src.write_mode(
        "credentials-with-mcp.json",
        serde_json::to_string_pretty(&claude_code_with_mcp())
            .expect("render")
            .as_bytes(),
        0o644,
    );
    let mut stale = claude_code_with_mcp();
    stale["claudeAiOauth"]["accessToken"] = json!(format!("sk-ant-oat01-{MARKER}stale"));
    fs::write(
        &existing,
        serde_json::to_string_pretty(&stale).expect("render"),
    )
    .expect("write");
    ok(tv
        .vault(&[
            "export",
            "claude-code",
            "--account",
            "claude-max",
            "--force",
            "--out",
        ])
        .arg(&existing));
    let written: Value = serde_json::from_slice(&fs::read(&existing).expect("read")).expect("json");
    assert_eq!(
        written,
        json!({ "claudeAiOauth": fresh["claudeAiOauth"], "mcpOAuth": stale["mcpOAuth"] })
    );
    assert_eq!(mode(&existing), 0o600);
}

// ---------------------------------------------------------------------------
// 8. Canary.

#[test]
fn no_fixture_secret_appears_in_any_output_report_log_or_audit_detail() {
    let tv = TempVault::new();
    let src = Sources::with_all_fixtures();
    let more = Sources::new();
    let (newer, _) = newer_copy("codex-2026-chatgpt-auth.json");
    let newer = more.write_json("newer.json", &newer);
    let apikey = fs::read_to_string(fixture_path("codex-apikey-auth.json")).expect("read");
    let truncated = more.write(
        "truncated.json",
        &apikey.as_bytes()[..apikey.find(MARKER).expect("marker") + 12],
    );
    let wrong_type = more.write_json(
        "wrong-type.json",
        &json!({ "tokens": format!("at-{MARKER}-where-an-object-belongs") }),
    );
    let wrong_inner = more.write_json(
        "wrong-inner.json",
        &json!({ "claudeAiOauth": { "accessToken": [format!("sk-ant-{MARKER}-in-an-array")] } }),
    );
    let exports = tempfile::tempdir().expect("tempdir");
    let out_path = |name: &str| {
        exports
            .path()
            .join(name)
            .to_str()
            .expect("utf-8")
            .to_owned()
    };
    let (codex_out, claude_out) = (out_path("auth.json"), out_path(".credentials.json"));

    let mut create = vec!["migrate", "--passphrase"];
    create.extend(FAST_KDF_ARGS);
    let from_all = ["--from", src.path().to_str().expect("utf-8")];
    create.extend(from_all);
    let newer_s = newer.to_str().expect("utf-8");
    let bad: Vec<&str> = [&truncated, &wrong_type, &wrong_inner]
        .into_iter()
        .flat_map(|p| ["--from", p.to_str().expect("utf-8")])
        .collect();
    let with = |base: &[&str], extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    let runs: Vec<(Vec<String>, bool)> = vec![
        (with(&create, &[]), true),
        (with(&["--json", "migrate"], &from_all), true),
        (
            with(&["migrate", "--dry-run", "--from", newer_s], &from_all),
            true,
        ),
        (
            with(
                &["--json", "migrate", "--dry-run", "--from", newer_s],
                &from_all,
            ),
            true,
        ),
        (with(&["migrate"], &bad), false),
        (with(&["--json", "migrate"], &bad), false),
        (
            with(&["migrate", "--skip-invalid", "--from", newer_s], &bad),
            true,
        ),
        (with(&["--json", "migrate", "--skip-invalid"], &bad), true),
        (
            with(
                &[
                    "export",
                    "codex",
                    "--account",
                    "openai-plus",
                    "--out",
                    &codex_out,
                ],
                &[],
            ),
            true,
        ),
        (
            with(
                &[
                    "--json",
                    "export",
                    "codex",
                    "--account",
                    "openai-plus",
                    "--force",
                    "--out",
                    &codex_out,
                ],
                &[],
            ),
            true,
        ),
        (
            with(
                &[
                    "export",
                    "codex",
                    "--account",
                    "openai-plus",
                    "--out",
                    &codex_out,
                ],
                &[],
            ),
            false,
        ),
        (
            with(
                &[
                    "export",
                    "claude-code",
                    "--account",
                    "claude-max",
                    "--out",
                    &claude_out,
                ],
                &[],
            ),
            true,
        ),
        (
            with(
                &[
                    "--json",
                    "export",
                    "claude-code",
                    "--account",
                    "claude-pro",
                    "--force",
                    "--out",
                    &claude_out,
                ],
                &[],
            ),
            true,
        ),
        (with(&["--json", "accounts"], &[]), true),
        (with(&["accounts"], &[]), true),
        (with(&["--json", "audit"], &[]), true),
        (with(&["audit"], &[]), true),
        (with(&["--json", "audit", "verify"], &[]), true),
        (with(&["--json", "status"], &[]), true),
        (with(&["status"], &[]), true),
    ];
    let secrets = fixture_secrets();
    let mut traced = false;
    for (args, succeeds) in &runs {
        let mut cmd = tv.vault(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env("RUST_LOG", "trace");
        let out = cmd.output().expect("spawn vault");
        let what = args.join(" ");
        assert_eq!(
            out.status.success(),
            *succeeds,
            "`vault {what}`: {}",
            stderr(&out)
        );
        traced |= stderr(&out).contains("TRACE") || stderr(&out).contains("DEBUG");
        for (stream, text) in [("stdout", stdout(&out)), ("stderr", stderr(&out))] {
            assert!(!text.contains(MARKER), "`vault {what}` {stream}: {text}");
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "`vault {what}` {stream} holds a fixture secret"
                );
            }
        }
    }
    assert!(traced, "trace logging was on");
    // The exported files do hold the secrets (they are meant to).
    assert!(
        fs::read_to_string(&codex_out)
            .expect("read")
            .contains(MARKER)
    );
}

// ---------------------------------------------------------------------------
// 9. First use.

#[test]
fn migrate_on_a_machine_without_a_vault_creates_one_and_says_so() {
    let src = Sources::new();
    let fresh = fresh_fixture("codex-2026-chatgpt-auth.json", now());
    let codex = src.write_json("auth.json", &fresh);
    let mut args = vec!["--passphrase"];
    args.extend(FAST_KDF_ARGS);

    let tv = TempVault::new();
    let out = ok(&mut migrate_cmd(&tv, false, &args, &[&codex]));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "Created a new vault at {} (unlock: passphrase).\n",
            tv.path.display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with("1 created, 0 updated, 0 unchanged\n"),
        "{text}"
    );
    assert_eq!(mode(&tv.path), 0o600);
    assert_eq!(mode(tv.vault_dir()), 0o700);
    assert_eq!(
        token(&tv, "openai-team"),
        fresh["tokens"]["access_token"].as_str().expect("token")
    );
    let s = parse_json(&ok(&mut tv.vault(&["--json", "status"])));
    assert_eq!(s["unlock_methods"], json!(["passphrase"]));
    // The second run finds the vault and says nothing about creating one.
    let out = ok(&mut migrate_cmd(&tv, false, &args, &[&codex]));
    assert!(
        !stdout(&out).contains("Created a new vault"),
        "{}",
        stdout(&out)
    );

    let tv = TempVault::new();
    let out = parse_json(&ok(&mut migrate_cmd(&tv, true, &args, &[&codex])));
    assert_eq!(out["vault_created"], true);
    assert_eq!(out["report"]["created"], 1);
    assert_eq!(mode(&tv.path), 0o600);
}

#[test]
fn without_from_it_reads_the_standard_locations_and_skips_missing_ones() {
    let tv = TempVault::new();
    init(&tv);
    let codex_home = Sources::new();
    let claude_dir = Sources::new();
    let auth = codex_home.copy("codex-2026-chatgpt-auth.json");
    fs::rename(&auth, codex_home.join("auth.json")).expect("rename");
    let creds = claude_dir.copy("claude-code-credentials.json");
    fs::rename(&creds, claude_dir.join(".credentials.json")).expect("rename");
    let out = ok(tv
        .vault(&["--json", "migrate"])
        .env("CODEX_HOME", codex_home.path())
        .env("CLAUDE_CONFIG_DIR", claude_dir.path()));
    let report = parse_json(&out)["report"].clone();
    assert_eq!(
        report["sources"],
        json!([
            source_report(
                &codex_home.join("auth.json"),
                "imported",
                Some("codex-auth")
            ),
            source_report(&codex_home.join("claude_auth.json"), "not_found", None),
            source_report(
                &claude_dir.join(".credentials.json"),
                "imported",
                Some("claude-code-credentials")
            ),
        ])
    );
    assert_eq!(labels(&tv), ["claude-max", "openai-team"]);
}

// ---------------------------------------------------------------------------
// 10. Audit.

#[test]
fn every_imported_credential_gets_an_audit_entry_and_the_chain_verifies() {
    let tv = TempVault::new();
    init(&tv);
    let src = Sources::with_all_fixtures();
    migrate(&tv, &[], &[src.path()]);
    let more = Sources::new();
    let (newer, _) = newer_copy("codex-2026-chatgpt-auth.json");
    let newer = more.write_json("newer.json", &newer);
    migrate(&tv, &[], &[&newer]);
    // Kept (older) and unchanged credentials are not imports.
    migrate(&tv, &[], &[src.path()]);

    let audit = parse_json(&ok(&mut tv.vault(&["--json", "audit"])));
    let imports: Vec<Value> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "credential.import")
        .map(|e| {
            let d = &e["details"];
            let fp = d["fingerprint"].as_str().expect("fingerprint");
            assert!(
                fp.len() >= 16 && fp.chars().all(|c| c.is_ascii_hexdigit()),
                "{fp}"
            );
            let keys: Vec<&String> = d.as_object().expect("details").keys().collect();
            assert_eq!(keys, ["action", "fingerprint", "format", "kind", "source"]);
            assert_eq!(e["outcome"], "ok");
            json!([
                e["account"],
                d["kind"],
                d["action"],
                d["format"],
                file_name(&d["source"])
            ])
        })
        .collect();
    let create = |label: &str, kind: &str, format: &str, file: &str| {
        json!([label, kind, "create", format, file])
    };
    assert_eq!(
        imports,
        [
            create(
                "claude-max",
                "oauth",
                "claude-code-credentials",
                "claude-code-credentials.json"
            ),
            create(
                "claude-api-key",
                "api_key",
                "claude-auth",
                "claude_auth.json"
            ),
            create("claude-pro", "oauth", "claude-auth", "claude_auth.json"),
            create(
                "openai-plus",
                "oauth",
                "codex-auth",
                "codex-2025-06-auth.json"
            ),
            create(
                "openai-plus",
                "api_key",
                "codex-auth",
                "codex-2025-06-auth.json"
            ),
            create(
                "openai-pro",
                "oauth",
                "codex-auth",
                "codex-2025-08-auth.json"
            ),
            create(
                "openai-team",
                "oauth",
                "codex-auth",
                "codex-2026-chatgpt-auth.json"
            ),
            create(
                "openai-api-key",
                "api_key",
                "codex-auth",
                "codex-apikey-auth.json"
            ),
            create(
                "openai-plus-2",
                "oauth",
                "extended-auth",
                "extended-auth.json"
            ),
            create(
                "claude-max-2",
                "oauth",
                "extended-auth",
                "extended-auth.json"
            ),
            json!(["openai-team", "oauth", "update", "codex-auth", "newer.json"]),
        ]
    );
    let settings = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "settings.import")
        .count();
    assert_eq!(settings, 1, "preferences and history are audited once");
    let verify = parse_json(&ok(&mut tv.vault(&["--json", "audit", "verify"])));
    assert_eq!(verify["state"], "intact", "{verify}");
    assert_eq!(verify["entries"], audit.as_array().expect("entries").len());
    ok(&mut tv.vault(&["audit", "verify"]));
}

/// A database administrator's view of a PostgreSQL vault: a full `pg_dump`
/// (schema and data) of a vault holding every fixture's credentials shows
/// none of their secrets, neither in clear nor as hex (how `bytea` dumps) nor
/// as base64.
#[test]
fn a_pg_dump_of_a_postgres_vault_shows_no_imported_secret() {
    let tv = TempVault::on(Backend::Postgres);
    let src = Sources::with_all_fixtures();
    let mut args = vec!["migrate", "--passphrase"];
    args.extend(FAST_KDF_ARGS);
    args.extend(["--from", src.path().to_str().expect("utf-8")]);
    ok(&mut tv.cmd_pw(&args));
    let db = tv.raw_db();
    assert!(
        db.query_i64("SELECT count(*) FROM credentials") >= 7,
        "the fixtures' credentials are in the database"
    );

    let out = Command::new(pg_program("pg_dump"))
        .arg("--no-password")
        .arg("--dbname")
        .arg(tv.location())
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", stderr(&out));
    let dump = String::from_utf8(out.stdout).expect("a plain dump is text");
    assert!(
        dump.contains("CREATE TABLE") && dump.contains("COPY ") && dump.contains("\\x"),
        "a dump of schema and data, binary columns in hex"
    );

    let secrets = fixture_secrets();
    for secret in &secrets {
        let hex = authvault::crypto::hex(secret.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for (form, text) in [("clear", secret.as_str()), ("hex", &hex), ("base64", &b64)] {
            assert!(
                !dump.contains(text),
                "pg_dump shows a fixture secret ({form}, {} bytes)",
                secret.len()
            );
        }
    }
    assert!(
        !dump.contains(MARKER),
        "no fixture marker anywhere in the dump"
    );
}
