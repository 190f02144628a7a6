//! The fixture table of [`super::parse`] and the views the other tests
//! compare with; the rule for the active OpenAI credential, the notes and the
//! error tables are in `tests/`.

use super::*;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

mod active;
mod errors;
mod notes;

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
