//! The text of a source file: parsing it within bounds into a tree that is
//! wiped when dropped, syntax errors with a position and without a value,
//! and line/column positions of bytes and of fields.

use std::path::Path;

use serde_json::Value;
use zeroize::Zeroize as _;

use super::ParseError;
use super::document::Seg;

/// The parsed tree; every string in it is zeroed when it is dropped.
pub(super) struct Wiped(pub(super) Value);

impl Drop for Wiped {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Zeroes every string of `value` (depth ≤ `serde_json`'s recursion limit).
pub(super) fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Parses the first JSON document of `text`; returns it and where it ends.
pub(super) fn read_document(file: &Path, text: &[u8]) -> Result<(Wiped, usize), ParseError> {
    let bad_utf8 = std::str::from_utf8(text).err().map(|e| e.valid_up_to());
    let utf8_error = |offset: usize| {
        ParseError::at(
            file,
            text,
            offset,
            "invalid UTF-8: a credential file is UTF-8 JSON".to_owned(),
        )
    };
    let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<Value>();
    match stream.next() {
        None => {
            let message = "file is empty: expected a JSON object".to_owned();
            Err(ParseError {
                file: file.to_path_buf(),
                line: 1,
                column: 1,
                message,
            })
        }
        Some(Err(e)) => {
            let offset = offset_of(text, e.line(), e.column());
            match bad_utf8 {
                Some(bad) if bad <= offset => Err(utf8_error(bad)),
                _ => Err(ParseError::at(file, text, offset, json_error_message(&e))),
            }
        }
        Some(Ok(value)) => {
            let doc = Wiped(value);
            let end = stream.byte_offset();
            match bad_utf8 {
                Some(bad) if bad < end => Err(utf8_error(bad)),
                _ => Ok((doc, end)),
            }
        }
    }
}

/// `serde_json`'s syntax messages carry no input text, but only these fixed
/// phrasings are passed on so that can never change under us.
pub(super) const SYNTAX_MESSAGES: [(&str, &str); 17] = [
    ("expected `:`", "expected `:` after an object key"),
    ("expected `,` or `]`", "expected `,` or `]` in an array"),
    ("expected `,` or `}`", "expected `,` or `}` in an object"),
    ("expected ident", "expected `true`, `false` or `null`"),
    ("expected value", "expected a JSON value"),
    ("expected `\"`", "expected `\"` to start an object key"),
    ("invalid escape", "invalid escape in a string"),
    ("invalid number", "invalid number"),
    ("number out of range", "number out of range"),
    (
        "invalid unicode code point",
        "invalid unicode code point in a string",
    ),
    (
        "control character",
        "control character (such as a raw line break) inside a string",
    ),
    ("key must be a string", "object key must be a string"),
    (
        "lone leading surrogate",
        "lone leading surrogate in a \\u escape",
    ),
    ("trailing comma", "trailing comma"),
    (
        "trailing characters",
        "unexpected characters after the JSON value",
    ),
    (
        "unexpected end of hex escape",
        "unexpected end of a \\u escape",
    ),
    (
        "recursion limit exceeded",
        "nested too deeply (more than 127 levels)",
    ),
];

pub(super) fn json_error_message(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of file: the JSON is truncated".to_owned(),
        Category::Syntax => {
            let text = e.to_string();
            let phrase = SYNTAX_MESSAGES
                .iter()
                .find(|(prefix, _)| text.starts_with(prefix));
            format!(
                "invalid JSON: {}",
                phrase.map_or("syntax error", |(_, ours)| ours)
            )
        }
        Category::Data | Category::Io => "invalid JSON".to_owned(),
    }
}

/// Non-whitespace extent of what follows the document.
pub(super) fn trailing_bytes(rest: &[u8]) -> usize {
    let start = rest.iter().position(|b| !b.is_ascii_whitespace());
    let end = rest.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(s), Some(e)) => e + 1 - s,
        _ => 0,
    }
}

/// 1-based line and character column of byte `offset`.
pub(super) fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.split(|&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count();
    (line, column)
}

/// Byte offset of `serde_json`'s (line, byte column) position. Column 0 means
/// "just after the line break": the offending byte is that `\n` (a raw line
/// break in a string, or the end of a truncated file).
pub(super) fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start += p + 1,
            None => return text.len(),
        }
    }
    if column == 0 {
        return start.saturating_sub(1);
    }
    (start + column - 1).min(text.len())
}

/// Byte offset where the value at `path` starts in the (valid) JSON `text`.
/// With duplicate keys the last one wins, as in the parsed tree.
pub(super) fn locate(text: &[u8], path: &[Seg]) -> Option<usize> {
    let mut pos = skip_ws(text, 0);
    for seg in path {
        let mut i = pos + 1;
        let mut found = None;
        match (seg, text.get(pos)?) {
            (Seg::Key(key), b'{') => loop {
                i = skip_ws(text, i);
                match text.get(i)? {
                    b'}' => break,
                    b',' => i += 1,
                    b'"' => {
                        let key_end = skip_string(text, i)?;
                        let matches = key_is(&text[i..key_end], key);
                        i = skip_ws(text, key_end);
                        if text.get(i) != Some(&b':') {
                            return None;
                        }
                        i = skip_ws(text, i + 1);
                        if matches {
                            found = Some(i);
                        }
                        i = skip_value(text, i)?;
                    }
                    _ => return None,
                }
            },
            (Seg::Index(n), b'[') => {
                let mut index = 0;
                loop {
                    i = skip_ws(text, i);
                    match text.get(i)? {
                        b']' => break,
                        b',' => i += 1,
                        _ if index == *n => {
                            found = Some(i);
                            break;
                        }
                        _ => {
                            i = skip_value(text, i)?;
                            index += 1;
                        }
                    }
                }
            }
            _ => return None,
        }
        pos = found?;
    }
    Some(pos)
}

pub(super) fn key_is(quoted: &[u8], key: &str) -> bool {
    let inner = &quoted[1..quoted.len().saturating_sub(1).max(1)];
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(quoted).is_ok_and(|k| k == key)
    } else {
        inner == key.as_bytes()
    }
}

pub(super) fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while text
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        i += 1;
    }
    i
}

/// `text[i]` is `"`; returns the index after the closing quote.
pub(super) fn skip_string(text: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match text.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Returns the index after the value starting at `i`.
pub(super) fn skip_value(text: &[u8], mut i: usize) -> Option<usize> {
    match text.get(i)? {
        b'"' => skip_string(text, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match text.get(i)? {
                    b'"' => {
                        i = skip_string(text, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while text
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
            {
                i += 1;
            }
            Some(i)
        }
    }
}
