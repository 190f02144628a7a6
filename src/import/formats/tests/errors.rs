//! The error table: every way a source is refused names a line, a column
//! and what was expected, never a value from the file.

use super::*;

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
