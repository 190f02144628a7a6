//! The notes a parse leaves: unknown fields, trailing bytes, keys left
//! untouched.

use super::*;

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
