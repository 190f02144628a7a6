//! The fixture table, the error table and the notes of [`super::parse`].

use super::*;
use serde_json::json;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/legacy/",
                $name
            )) as &[u8],
        )
    };
}

/// The legacy samples, as in `tests/fixtures/legacy/README.md`.
pub(crate) const FIXTURES: [(&str, &[u8]); 7] = [
    fixture!("codex-2025-06-auth.json"),
    fixture!("codex-2025-08-auth.json"),
    fixture!("codex-2026-chatgpt-auth.json"),
    fixture!("codex-apikey-auth.json"),
    fixture!("extended-auth.json"),
    fixture!("claude_auth.json"),
    fixture!("claude-code-credentials.json"),
];

/// An [`ImportedAccount`] with its secrets exposed, so tests can compare whole values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountView {
    pub provider: Provider,
    pub identity: Identity,
    pub credentials: Vec<CredentialView>,
    pub active: CredentialKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialView {
    ApiKey(String),
    OAuth {
        access_token: String,
        refresh_token: Option<String>,
        id_token: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        scopes: Vec<String>,
        last_refresh: Option<DateTime<Utc>>,
    },
}

pub(crate) fn view(account: &ImportedAccount) -> AccountView {
    let expose = |s: &SecretString| s.expose_secret().to_owned();
    AccountView {
        provider: account.provider,
        identity: account.identity.clone(),
        active: account.active,
        credentials: account
            .credentials
            .iter()
            .map(|c| match c {
                Credential::ApiKey(k) => CredentialView::ApiKey(expose(k)),
                Credential::OAuth(t) => CredentialView::OAuth {
                    access_token: expose(&t.access_token),
                    refresh_token: t.refresh_token.as_ref().map(expose),
                    id_token: t.id_token.as_ref().map(expose),
                    expires_at: t.expires_at,
                    scopes: t.scopes.clone(),
                    last_refresh: t.last_refresh,
                },
            })
            .collect(),
    }
}

pub(crate) fn views(source: &ParsedSource) -> Vec<AccountView> {
    source.accounts.iter().map(view).collect()
}

pub(super) fn path() -> &'static Path {
    Path::new("auth.json")
}

fn at(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc())
}

fn unix(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

#[allow(clippy::unnecessary_wraps)] // shorthand for the tables
fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// A string field of a fixture (for the long JWTs).
fn field(bytes: &[u8], pointer: &str) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

fn openai_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"]
        .map(String::from)
        .to_vec()
}

fn chatgpt(
    bytes: &[u8],
    email: &str,
    plan: &str,
    account_id: &str,
    refresh: &str,
    exp: i64,
    last_refresh: &str,
) -> AccountView {
    AccountView {
        provider: Provider::OpenAi,
        identity: Identity {
            email: some(email),
            provider_account_id: some(account_id),
            plan: some(plan),
            rate_limit_tier: None,
        },
        credentials: vec![CredentialView::OAuth {
            access_token: field(bytes, "/tokens/access_token"),
            refresh_token: some(refresh),
            id_token: Some(field(bytes, "/tokens/id_token")),
            expires_at: unix(exp),
            scopes: openai_scopes(),
            last_refresh: at(last_refresh),
        }],
        active: CredentialKind::OAuth,
    }
}

struct Expected {
    format: LegacyFormat,
    accounts: Vec<AccountView>,
    preferences: Option<ProviderPreferences>,
    last_selection: Option<LastSelection>,
}

/// The table of `tests/fixtures/legacy/README.md`.
#[allow(clippy::too_many_lines)] // one table
fn expected(name: &str, bytes: &[u8]) -> Expected {
    let only = |format, accounts| Expected {
        format,
        accounts,
        preferences: None,
        last_selection: None,
    };
    match name {
        "codex-2025-06-auth.json" => {
            let mut account = chatgpt(
                bytes,
                "ada@example.com",
                "plus",
                "0d9f3c3e-7a1f-4c55-9c2e-000000000001",
                "rt_FIXTUREv0refreshAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA01",
                1_752_000_000,
                "2025-06-20T09:15:02.123456Z",
            );
            account.credentials.push(CredentialView::ApiKey(
                "sk-proj-FIXTUREv0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01".into(),
            ));
            only(LegacyFormat::CodexAuth, vec![account])
        }
        "codex-2025-08-auth.json" => only(
            LegacyFormat::CodexAuth,
            vec![chatgpt(
                bytes,
                "grace@example.com",
                "pro",
                "6b1e0c1a-2f4d-4e8e-8d7b-000000000002",
                "rt_FIXTUREv1refreshBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB02",
                1_756_000_000,
                "2025-08-30T17:45:00Z",
            )],
        ),
        "codex-2026-chatgpt-auth.json" => only(
            LegacyFormat::CodexAuth,
            vec![chatgpt(
                bytes,
                "linus@example.org",
                "team",
                "a4c2e7f0-1111-4aaa-9bbb-000000000003",
                "rt_FIXTUREv2refreshCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC03",
                1_781_000_000,
                "2026-05-28T08:00:00.5Z",
            )],
        ),
        "codex-apikey-auth.json" => only(
            LegacyFormat::CodexAuth,
            vec![AccountView {
                provider: Provider::OpenAi,
                identity: Identity::default(),
                credentials: vec![CredentialView::ApiKey(
                    "sk-proj-FIXTUREapikeyDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD04".into(),
                )],
                active: CredentialKind::ApiKey,
            }],
        ),
        "extended-auth.json" => Expected {
            format: LegacyFormat::ExtendedAuth,
            accounts: vec![
                chatgpt(
                    bytes,
                    "mary@example.com",
                    "plus",
                    "c0ffee00-0000-4000-8000-000000000005",
                    "rt_FIXTUREextrefreshEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE05",
                    1_790_000_000,
                    "2026-09-01T12:00:00Z",
                ),
                AccountView {
                    provider: Provider::Claude,
                    identity: Identity {
                        provider_account_id: some("5d7e0f00-aaaa-4bbb-8ccc-000000000006"),
                        plan: some("max"),
                        ..Identity::default()
                    },
                    credentials: vec![CredentialView::OAuth {
                        access_token: "sk-ant-oat01-FIXTUREextFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF-06AA".into(),
                        refresh_token: some("sk-ant-ort01-FIXTUREextGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG-06AA"),
                        id_token: None,
                        expires_at: at("2026-09-01T20:00:00Z"),
                        scopes: vec![],
                        last_refresh: None,
                    }],
                    active: CredentialKind::OAuth,
                },
            ],
            preferences: Some(ProviderPreferences {
                preferred_provider: some("Claude"),
                fallback_enabled: Some(true),
                selection_strategy: some("CostOptimized"),
                cost_optimization: Some(true),
            }),
            last_selection: Some(LastSelection {
                provider: some("Claude"),
                reason: some("max subscription under 80% of daily limit"),
                timestamp: at("2026-09-01T12:00:05Z"),
                task_context: some("CodeGeneration"),
            }),
        },
        "claude_auth.json" => only(
            LegacyFormat::ClaudeAuth,
            vec![
                AccountView {
                    provider: Provider::Claude,
                    identity: Identity::default(),
                    credentials: vec![CredentialView::ApiKey(
                        "sk-ant-api03-FIXTUREclaudeauthHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH-07AA".into(),
                    )],
                    active: CredentialKind::ApiKey,
                },
                AccountView {
                    provider: Provider::Claude,
                    identity: Identity { plan: some("pro"), ..Identity::default() },
                    credentials: vec![CredentialView::OAuth {
                        access_token: "sk-ant-oat01-FIXTUREcaIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII-08AA".into(),
                        refresh_token: some("sk-ant-ort01-FIXTUREcaJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJ-08AA"),
                        id_token: None,
                        expires_at: at("2026-10-10T18:30:00Z"),
                        scopes: vec!["user:inference".into(), "user:profile".into()],
                        last_refresh: at("2026-10-10T10:30:00Z"),
                    }],
                    active: CredentialKind::OAuth,
                },
            ],
        ),
        "claude-code-credentials.json" => only(
            LegacyFormat::ClaudeCodeCredentials,
            vec![AccountView {
                provider: Provider::Claude,
                identity: Identity {
                    plan: some("max"),
                    rate_limit_tier: some("default_claude_max_20x"),
                    ..Identity::default()
                },
                credentials: vec![CredentialView::OAuth {
                    access_token: "sk-ant-oat01-FIXTUREccKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK-09AA".into(),
                    refresh_token: some("sk-ant-ort01-FIXTUREccLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL-09AA"),
                    id_token: None,
                    expires_at: DateTime::from_timestamp_millis(1_795_000_000_000),
                    scopes: ["user:inference", "user:profile", "user:sessions:claude_code"].map(String::from).to_vec(),
                    last_refresh: None,
                }],
                active: CredentialKind::OAuth,
            }],
        ),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_fixture_imports_exactly_the_accounts_of_the_readme() {
    for (name, bytes) in FIXTURES {
        let parsed = parse(Path::new(name), bytes).unwrap_or_else(|e| panic!("{e}"));
        let want = expected(name, bytes);
        assert_eq!(parsed.format, want.format, "{name}");
        assert_eq!(views(&parsed), want.accounts, "{name}");
        assert_eq!(parsed.preferences, want.preferences, "{name}");
        assert_eq!(parsed.last_selection, want.last_selection, "{name}");
        assert_eq!(parsed.notes, Vec::<String>::new(), "{name}");
        assert!(
            !format!("{parsed:?}").contains("FIXTURE"),
            "{name}: Debug shows a secret"
        );
    }
}

/// Same content with a BOM and CRLF line ends.
pub(super) fn bom_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn bom_and_crlf_are_accepted() {
    for (name, bytes) in FIXTURES {
        let plain = parse(path(), bytes).unwrap();
        let windows = parse(path(), &bom_crlf(bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(views(&windows), views(&plain), "{name}");
        assert_eq!(windows.notes, plain.notes, "{name}");
    }
}

#[test]
fn the_active_credential_follows_auth_mode_or_the_old_cli_rule() {
    let token = |plan: Option<&str>| {
        let claims = match plan {
            Some(p) => json!({"https://api.openai.com/auth": {"chatgpt_plan_type": p}}),
            None => json!({}),
        };
        crate::jwt::unsigned_jwt(&claims)
    };
    let cases = [
        // (auth_mode, plan, with API key, expected credential kinds, expected active)
        (
            None,
            Some("plus"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::OAuth,
        ),
        (
            None,
            Some("free"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::OAuth,
        ),
        (
            None,
            Some("team"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::OAuth,
        ),
        (
            None,
            Some("enterprise"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::ApiKey,
        ),
        (
            None,
            Some("Plus"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::ApiKey,
        ),
        (
            None,
            None,
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::ApiKey,
        ),
        (
            None,
            Some("enterprise"),
            false,
            vec![CredentialKind::OAuth],
            CredentialKind::OAuth,
        ),
        (
            Some("chatgpt"),
            Some("enterprise"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::OAuth,
        ),
        (
            Some("apikey"),
            Some("plus"),
            true,
            vec![CredentialKind::OAuth, CredentialKind::ApiKey],
            CredentialKind::ApiKey,
        ),
    ];
    for (mode, plan, with_key, kinds, active) in cases {
        let mut doc = json!({
            "OPENAI_API_KEY": if with_key { json!("sk-test") } else { Value::Null },
            "tokens": {"id_token": token(plan), "access_token": "a", "refresh_token": "r"},
        });
        if let Some(m) = mode {
            doc["auth_mode"] = json!(m);
        }
        let parsed = parse(path(), doc.to_string().as_bytes()).unwrap();
        let account = &parsed.accounts[0];
        let got: Vec<_> = account.credentials.iter().map(Credential::kind).collect();
        assert_eq!(
            (got, account.active),
            (kinds, active),
            "{mode:?} {plan:?} key={with_key}"
        );
    }
}

#[test]
fn notes_name_unknown_fields_trailing_bytes_and_untouched_keys() {
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "unknown fields, nested and top level",
            br#"{"OPENAI_API_KEY": "sk-x", "tokens": null, "extra": {"secret": "FIXTURE"}, "zz": 1}"#.to_vec(),
            vec!["unknown field `extra` ignored", "unknown field `zz` ignored"],
        ),
        (
            "unknown nested field",
            br#"{"claudeAiOauth": {"accessToken": "a", "isMax": true}}"#.to_vec(),
            vec!["unknown field `claudeAiOauth.isMax` ignored"],
        ),
        (
            "a key that might be a secret is not shown",
            br#"{"OPENAI_API_KEY": "sk-x", "sk-proj-FIXTUREaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": 1, "a b": 2}"#.to_vec(),
            vec!["unknown field `<3 characters, not shown>` ignored", "unknown field `<50 characters, not shown>` ignored"],
        ),
        (
            "trailing bytes of an older, longer file",
            [FIXTURES[3].1, b"FIXTUREtail\"\n}\n"].concat(),
            vec!["14 trailing bytes after the JSON document ignored"],
        ),
        (
            "Claude Code keys left alone",
            br#"{"claudeAiOauth": {"accessToken": "a"}, "mcpOAuth": {"srv": {"accessToken": "FIXTURE"}}}"#.to_vec(),
            vec!["top-level key `mcpOAuth` is not imported and was left untouched in the file"],
        ),
        (
            "logged out",
            br#"{"OPENAI_API_KEY": null}"#.to_vec(),
            vec!["no credential in this file (logged out?)"],
        ),
        (
            "unreadable id token",
            br#"{"tokens": {"id_token": "FIXTURE", "access_token": "a"}}"#.to_vec(),
            vec!["`tokens.id_token` is not a readable JWT: e-mail and plan are unknown"],
        ),
    ];
    for (name, input, notes) in cases {
        let parsed = parse(path(), &input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.notes, notes, "{name}");
    }
}

/// Replaces the first occurrence of `from` in a fixture.
fn edit(fixture: usize, from: &str, to: &str) -> Vec<u8> {
    let text = std::str::from_utf8(FIXTURES[fixture].1).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn errors_name_line_column_and_what_was_expected() {
    let huge = vec![b' '; MAX_SOURCE_BYTES + 1];
    let deep = "[".repeat(10_000);
    let unknown_format = format!("1:1: {UNKNOWN_FORMAT}");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "empty",
            b"".to_vec(),
            "1:1: file is empty: expected a JSON object",
        ),
        (
            "blank",
            b" \r\n ".to_vec(),
            "1:1: file is empty: expected a JSON object",
        ),
        (
            "BOM only",
            b"\xEF\xBB\xBF".to_vec(),
            "1:1: file is empty: expected a JSON object",
        ),
        (
            "too large",
            huge,
            "1:1: file is 1048577 bytes, larger than the 1048576 bytes a credential file can be; check that this is the right file",
        ),
        (
            "truncated in a secret",
            FIXTURES[3].1[..40].to_vec(),
            "2:38: unexpected end of file: the JSON is truncated",
        ),
        (
            "truncated after a member",
            FIXTURES[6].1[..FIXTURES[6].1.len() - 6].to_vec(),
            "12:46: unexpected end of file: the JSON is truncated",
        ),
        (
            "not JSON",
            b"OPENAI_API_KEY=sk-FIXTURE".to_vec(),
            "1:1: invalid JSON: expected a JSON value",
        ),
        (
            "missing comma",
            edit(3, "\n}", "\n\"x\": 1}"),
            "3:1: invalid JSON: expected `,` or `}` in an object",
        ),
        (
            "raw newline in a string",
            edit(3, "04\"", "04\n\""),
            "2:82: invalid JSON: control character (such as a raw line break) inside a string",
        ),
        (
            "too deep",
            deep.into_bytes(),
            "1:128: invalid JSON: nested too deeply (more than 127 levels)",
        ),
        (
            "invalid UTF-8",
            b"{\"OPENAI_API_KEY\": \"sk-\xff\"}".to_vec(),
            "1:24: invalid UTF-8: a credential file is UTF-8 JSON",
        ),
        (
            "invalid UTF-8 outside strings",
            b"{\n \xfe}".to_vec(),
            "2:2: invalid UTF-8: a credential file is UTF-8 JSON",
        ),
        (
            "array",
            b"[1]".to_vec(),
            "1:1: expected a JSON object at the top level, found an array",
        ),
        (
            "string",
            b"\n  \"sk-FIXTURE\"".to_vec(),
            "2:3: expected a JSON object at the top level, found a string",
        ),
        (
            "no known key",
            b"{\"last_refresh\": null}".to_vec(),
            &unknown_format,
        ),
        (
            "unknown auth_mode",
            edit(2, "\"chatgpt\"", "\"chatgptAuthTokens\""),
            "2:16: field `auth_mode`: unknown value (not shown); expected \"apikey\" or \"chatgpt\" (a newer Codex may have written this file: update authvault)",
        ),
        (
            "unknown auth_mode holding a secret",
            edit(
                2,
                "\"chatgpt\"",
                "\"sk-proj-FIXTUREv0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01\"",
            ),
            "2:16: field `auth_mode`: unknown value (not shown); expected \"apikey\" or \"chatgpt\" (a newer Codex may have written this file: update authvault)",
        ),
        (
            "auth_mode apikey without a key",
            edit(2, "\"chatgpt\"", "\"apikey\""),
            "2:16: field `auth_mode` is \"apikey\" but the file holds no `OPENAI_API_KEY`",
        ),
        (
            "auth_mode chatgpt without tokens",
            br#"{"auth_mode": "chatgpt", "OPENAI_API_KEY": "sk-FIXTURE"}"#.to_vec(),
            "1:15: field `auth_mode` is \"chatgpt\" but the file holds no `tokens`",
        ),
        (
            "missing access token",
            br#"{"tokens": {"id_token": "FIXTURE"}}"#.to_vec(),
            "1:12: field `tokens.access_token` is missing: expected a string",
        ),
        (
            "empty access token",
            br#"{"claudeAiOauth": {"accessToken": ""}}"#.to_vec(),
            "1:35: field `claudeAiOauth.accessToken` is empty: expected a token",
        ),
        (
            "bad date",
            edit(1, "2025-08-30T17:45:00Z", "yesterday FIXTURE"),
            "9:19: field `last_refresh`: expected an RFC 3339 date-time (2025-06-20T09:15:02Z) or null, found a string that is not one",
        ),
        (
            "ms out of range",
            edit(6, "1795000000000", "1e300"),
            "5:18: field `claudeAiOauth.expiresAt`: expected a unix time in milliseconds or null, found a number that is not an integer or out of range",
        ),
        (
            "scope element",
            edit(6, "\"user:profile\"", "7"),
            "8:7: field `claudeAiOauth.scopes[1]`: expected a string, found a number",
        ),
        (
            "CRLF and BOM do not shift positions",
            bom_crlf(&edit(6, "1795000000000", "\"soon\"")),
            "5:18: field `claudeAiOauth.expiresAt`: expected a unix time in milliseconds or null, found a string",
        ),
        (
            "duplicate key: the last one is read and reported",
            br#"{"OPENAI_API_KEY": "sk", "OPENAI_API_KEY": 1}"#.to_vec(),
            "1:44: field `OPENAI_API_KEY`: expected a string or null, found a number",
        ),
        (
            "escaped key",
            br#"{"OPENAI_API_KEY": null, "tok\u0065ns": 5}"#.to_vec(),
            "1:41: field `tokens`: expected an object or null, found a number",
        ),
    ];
    for (name, input, want) in cases {
        let err = parse(path(), &input)
            .err()
            .unwrap_or_else(|| panic!("{name}: parsed"));
        assert_eq!(err.to_string(), format!("auth.json:{want}"), "{name}");
    }
}

/// Every known field, given a value of the wrong type, is rejected at
/// that value with a message naming the field and the expected type.
#[test]
#[allow(clippy::too_many_lines)] // one table
fn every_known_field_rejects_the_wrong_type() {
    // An array where an object is expected, else an object (arrays are
    // valid for scopes and features).
    let wrong_for = |expected: &str| {
        if expected.starts_with("an object") {
            (json!([{"FIXTURE": "FIXTURE"}]), "[\n", "an array")
        } else {
            (json!({"FIXTURE": ["FIXTURE"]}), "{\n", "an object")
        }
    };
    let cases: [(usize, &str, &str); 40] = [
        (0, "/OPENAI_API_KEY", "a string or null"),
        (0, "/tokens", "an object or null"),
        (0, "/tokens/id_token", "a string or null"),
        (0, "/tokens/access_token", "a string"),
        (0, "/tokens/refresh_token", "a string or null"),
        (1, "/tokens/account_id", "a string or null"),
        (
            0,
            "/last_refresh",
            "an RFC 3339 date-time (2025-06-20T09:15:02Z) or null",
        ),
        (2, "/auth_mode", "a string or null"),
        (4, "/claude_auth", "an object or null"),
        (4, "/claude_auth/auth_mode", "a string or null"),
        (4, "/claude_auth/api_key", "a string or null"),
        (4, "/claude_auth/oauth_tokens", "an object or null"),
        (4, "/claude_auth/oauth_tokens/access_token", "a string"),
        (
            4,
            "/claude_auth/oauth_tokens/refresh_token",
            "a string or null",
        ),
        (
            4,
            "/claude_auth/oauth_tokens/expires_at",
            "an RFC 3339 date-time, a unix time or null",
        ),
        (
            4,
            "/claude_auth/oauth_tokens/subscription_tier",
            "a string or null",
        ),
        (
            4,
            "/claude_auth/oauth_tokens/account_id",
            "a string or null",
        ),
        (4, "/claude_auth/subscription_info", "an object or null"),
        (4, "/claude_auth/subscription_info/tier", "a string or null"),
        (
            4,
            "/claude_auth/subscription_info/daily_limit",
            "a number or null",
        ),
        (
            4,
            "/claude_auth/subscription_info/reset_time",
            "an RFC 3339 date-time (2025-06-20T09:15:02Z) or null",
        ),
        (
            4,
            "/claude_auth/last_subscription_check",
            "an RFC 3339 date-time (2025-06-20T09:15:02Z) or null",
        ),
        (4, "/provider_preferences", "an object or null"),
        (
            4,
            "/provider_preferences/preferred_provider",
            "a string or null",
        ),
        (
            4,
            "/provider_preferences/fallback_enabled",
            "true, false or null",
        ),
        (
            4,
            "/provider_preferences/cost_optimization",
            "true, false or null",
        ),
        (
            4,
            "/last_provider_selection/selection_reason",
            "a string or null",
        ),
        (
            4,
            "/last_provider_selection/timestamp",
            "an RFC 3339 date-time (2025-06-20T09:15:02Z) or null",
        ),
        (5, "/ANTHROPIC_API_KEY", "a string or null"),
        (
            5,
            "/oauth_tokens/scope",
            "an array of strings, a space-separated string or null",
        ),
        (5, "/subscription_info/current_usage", "a number or null"),
        (
            5,
            "/last_refresh",
            "an RFC 3339 date-time (2025-06-20T09:15:02Z) or null",
        ),
        (5, "/preferred_mode", "a string or null"),
        (6, "/claudeAiOauth", "an object or null"),
        (6, "/claudeAiOauth/accessToken", "a string"),
        (6, "/claudeAiOauth/refreshToken", "a string or null"),
        (
            6,
            "/claudeAiOauth/expiresAt",
            "a unix time in milliseconds or null",
        ),
        (
            6,
            "/claudeAiOauth/scopes",
            "an array of strings, a space-separated string or null",
        ),
        (6, "/claudeAiOauth/subscriptionType", "a string or null"),
        (6, "/claudeAiOauth/rateLimitTier", "a string or null"),
    ];
    for (fixture, pointer, expected) in cases {
        let mut doc: Value = serde_json::from_slice(FIXTURES[fixture].1).unwrap();
        let (wrong, marker, found) = wrong_for(expected);
        *doc.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = wrong;
        // The position is where the replacement value starts.
        let text = serde_json::to_string_pretty(&doc).unwrap();
        let index = text
            .find(&format!(
                "\"{}\": {marker}",
                pointer.rsplit('/').next().unwrap()
            ))
            .unwrap();
        let offset = index + text[index..].find(marker).unwrap();
        let (line, column) = line_column(text.as_bytes(), offset);
        let field = pointer[1..].replace('/', ".");
        let want = format!(
            "auth.json:{line}:{column}: field `{field}`: expected {expected}, found {found}"
        );
        let err = parse(path(), text.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{pointer}: parsed"));
        assert_eq!(err.to_string(), want);
    }
}
