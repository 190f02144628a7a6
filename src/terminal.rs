//! Text for a terminal: values from files, providers and arguments must not
//! be able to drive it. A terminal acts on control characters (ESC starts a
//! sequence that can recolour, move the cursor, set the window title or
//! write to the clipboard; CR and BS overwrite what was printed) and on the
//! bidirectional-text controls (which reorder what is shown).
//!
//! Every such character is written as `\uXXXX` (four lowercase hex digits):
//! readable, unambiguous and, inside JSON text, the very same character, so
//! one escaping serves text and JSON output alike. `serde_json` escapes
//! only C0 controls; DEL, C1 and the bidi controls it leaves raw.
//!
//! The `vault` binary escapes at its printing choke points (the text and
//! JSON it prints on stdout, the error line, its log lines) with
//! [`escape_lines`], which keeps the line breaks of its own text, and
//! escapes each value it puts into a line or a table cell with [`escape`],
//! so a value cannot start a line of its own.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a terminal could act on `c`: C0 controls (ESC, CR, BS, TAB, LF,
/// …), DEL, C1 controls (U+0080–U+009F), and the bidirectional-text
/// controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the
/// line and paragraph separators (U+2028, U+2029).
#[must_use]
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// A value for one line or one table cell: every character a terminal acts
/// on, line breaks included, as `\uXXXX`.
#[must_use]
pub fn escape(value: &str) -> Cow<'_, str> {
    escape_if(value, is_unsafe)
}

/// Text of several lines (output, an error chain, a log line): as
/// [`escape`], but line breaks stay. Use [`escape`] for every value
/// interpolated into such text.
#[must_use]
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_if(text, |c| c != '\n' && is_unsafe(c))
}

fn escape_if(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_writes_every_unsafe_character_as_a_json_style_escape() {
        let cases = [
            ("plain text, ünïcödé, 日本", "plain text, ünïcödé, 日本"),
            ("", ""),
            ("a\u{1b}[31mred", r"a\u001b[31mred"),
            ("over\rwrite\u{8}", r"over\u000dwrite\u0008"),
            (
                "tab\tnul\0bel\u{7}del\u{7f}",
                r"tab\u0009nul\u0000bel\u0007del\u007f",
            ),
            ("c1 \u{80} \u{9b}2J \u{9f}", r"c1 \u0080 \u009b2J \u009f"),
            ("bidi \u{202e}txt\u{202c}", r"bidi \u202etxt\u202c"),
            (
                "\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}",
                r"\u2066\u2069\u200e\u200f\u061c",
            ),
            ("sep\u{2028}\u{2029}", r"sep\u2028\u2029"),
            ("two\nlines", r"two\u000alines"),
            // Not controls: kept.
            ("\u{a0}\u{ad}\u{200b}", "\u{a0}\u{ad}\u{200b}"),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input:?}");
        }
    }

    #[test]
    fn escape_lines_keeps_line_breaks_only() {
        assert_eq!(
            escape_lines("line 1\nline\r2\u{1b}[2J\n"),
            "line 1\nline\\u000d2\\u001b[2J\n"
        );
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
        assert!(matches!(escape_lines("a\nb"), Cow::Borrowed("a\nb")));
    }

    /// JSON text escaped with `escape_lines` is still JSON, with the same value.
    #[test]
    fn escaping_json_text_keeps_its_value() {
        let value = serde_json::json!({
            "email": "a\u{1b}[31m\r\u{7f}\u{9b}\u{202e}\n\u{2028}@example.com",
            "list": ["\u{85}", "plain"],
        });
        for text in [
            value.to_string(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let escaped = escape_lines(&text);
            assert!(
                !escaped.chars().any(|c| c != '\n' && is_unsafe(c)),
                "{escaped}"
            );
            let back: serde_json::Value = serde_json::from_str(&escaped).expect("still JSON");
            assert_eq!(back, value);
        }
    }
}
