//! SQL text as PostgreSQL wants it: SQLite's `?N` placeholders become `$N`,
//! and a statement list can be asked whether it commits.
//!
//! Both look only at code: never inside `'…'` string literals (`E'…'` with
//! backslash escapes too), `"…"` quoted identifiers, `--` line comments or
//! `/* … */` block comments (nested, as PostgreSQL allows).

use super::PgError;

/// A SQL text rewritten for PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rewritten {
    /// The text with `$N` placeholders.
    pub(super) sql: String,
    /// The highest placeholder number (= the number of values to bind).
    pub(super) params: usize,
}

/// Rewrites `?N` to `$N` outside literals, quoted identifiers and comments.
///
/// # Errors
/// [`PgError::Other`] for a bare `?` (the SQL texts always number them) or a
/// number PostgreSQL cannot take.
pub(super) fn rewrite(sql: &str) -> Result<Rewritten, PgError> {
    let code = code_mask(sql);
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut params = 0;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'?' && code[i] {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let number: u16 = sql[i + 1..i + 1 + digits]
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    PgError::Other(format!(
                        "SQL text has a placeholder '?' without a number 1..65535 at byte {i}; \
                         write ?1, ?2, ..."
                    ))
                })?;
            params = params.max(usize::from(number));
            out.push_str(&sql[copied..i]);
            out.push('$');
            copied = i + 1;
            i += 1 + digits;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    Ok(Rewritten { sql: out, params })
}

/// Whether one of the statements in `sql` is a `COMMIT` (or its synonym
/// `END`): if the connection breaks after it was sent, the outcome is unknown.
pub(super) fn commits(sql: &str) -> bool {
    let code = code_mask(sql);
    let code_only: String = sql
        .char_indices()
        .map(|(i, c)| if code[i] { c } else { ' ' })
        .collect();
    code_only.split(';').any(|statement| {
        let word = statement.split_whitespace().next().unwrap_or("");
        word.eq_ignore_ascii_case("commit") || word.eq_ignore_ascii_case("end")
    })
}

/// For each byte of `sql`: true when it is code, false inside a literal, a
/// quoted identifier or a comment (their delimiters included).
fn code_mask(sql: &str) -> Vec<bool> {
    #[derive(Clone, Copy)]
    enum State {
        Code,
        Literal { backslash: bool },
        Identifier,
        LineComment,
        BlockComment { depth: u32 },
    }
    let b = sql.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut mask = vec![false; b.len()];
    let mut state = State::Code;
    let mut i = 0;
    while i < b.len() {
        let mut step = 1;
        state = match state {
            State::Code => match (b[i], at(i + 1)) {
                (b'\'', _) => {
                    let prefix = i.checked_sub(1).map(|p| b[p]);
                    let before = i.checked_sub(2).map(|p| b[p]);
                    let escape = matches!(prefix, Some(b'E' | b'e'))
                        && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
                    State::Literal { backslash: escape }
                }
                (b'"', _) => State::Identifier,
                (b'-', b'-') => State::LineComment,
                (b'/', b'*') => {
                    step = 2;
                    State::BlockComment { depth: 1 }
                }
                _ => {
                    mask[i] = true;
                    State::Code
                }
            },
            State::Literal { backslash } => match (b[i], at(i + 1)) {
                (b'\\', _) if backslash => {
                    step = 2;
                    state
                }
                (b'\'', b'\'') => {
                    step = 2;
                    state
                }
                (b'\'', _) => State::Code,
                _ => state,
            },
            State::Identifier => match (b[i], at(i + 1)) {
                (b'"', b'"') => {
                    step = 2;
                    state
                }
                (b'"', _) => State::Code,
                _ => state,
            },
            State::LineComment => {
                if b[i] == b'\n' {
                    State::Code
                } else {
                    state
                }
            }
            State::BlockComment { depth } => match (b[i], at(i + 1)) {
                (b'/', b'*') => {
                    step = 2;
                    State::BlockComment { depth: depth + 1 }
                }
                (b'*', b'/') => {
                    step = 2;
                    if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment { depth: depth - 1 }
                    }
                }
                _ => state,
            },
        };
        i += step;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_literals_identifiers_and_comments() {
        let cases = [
            ("SELECT ?1", "SELECT $1", 1),
            ("SELECT ?12, ?1", "SELECT $12, $1", 12),
            ("WHERE a = ?2 AND b = ?1", "WHERE a = $2 AND b = $1", 2),
            ("SELECT '?1', ?1", "SELECT '?1', $1", 1),
            ("SELECT 'it''s ?', ?1", "SELECT 'it''s ?', $1", 1),
            ("SELECT E'\\' ?', ?1", "SELECT E'\\' ?', $1", 1),
            ("SELECT \"col?\", ?1", "SELECT \"col?\", $1", 1),
            ("SELECT \"a\"\"?\", ?1", "SELECT \"a\"\"?\", $1", 1),
            ("SELECT ?1 -- what ?\n, ?2", "SELECT $1 -- what ?\n, $2", 2),
            (
                "SELECT /* ? /* ? */ ? */ ?1",
                "SELECT /* ? /* ? */ ? */ $1",
                1,
            ),
            ("SELECT 'é', ?1", "SELECT 'é', $1", 1),
            ("SELECT 1", "SELECT 1", 0),
        ];
        for (sql, expected, params) in cases {
            assert_eq!(
                rewrite(sql).unwrap(),
                Rewritten {
                    sql: expected.to_owned(),
                    params
                },
                "{sql}"
            );
        }
    }

    #[test]
    fn a_bare_or_unusable_placeholder_is_refused() {
        for sql in ["SELECT ?", "SELECT ?a", "SELECT ?0", "SELECT ?70000"] {
            let err = rewrite(sql).unwrap_err().to_string();
            assert!(err.contains("without a number"), "{sql}: {err}");
        }
    }

    #[test]
    fn commits_sees_commit_and_end_statements_only_as_code() {
        let cases = [
            ("COMMIT", true),
            ("  commit;", true),
            ("END", true),
            ("INSERT INTO t VALUES (1); COMMIT", true),
            ("ROLLBACK", false),
            ("BEGIN", false),
            ("SELECT 'COMMIT'", false),
            ("-- COMMIT\nSELECT 1", false),
            ("SELECT committed FROM t", false),
            ("UPDATE t SET x = 1", false),
        ];
        for (sql, expected) in cases {
            assert_eq!(commits(sql), expected, "{sql}");
        }
    }
}
