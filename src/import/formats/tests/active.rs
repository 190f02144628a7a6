//! Which credential of a Codex `auth.json` is active: `auth_mode`, else the
//! old CLI's rule.

use super::*;

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
