//! The JSON document of a source file: reading it within bounds, typed field
//! access with positioned, value-free errors, and line/column positions.
//!
//! `serde_json::Value` keeps no positions, so when a field is wrong the
//! reader finds where its value starts by re-scanning the (already
//! validated) text along the field's path: [`locate`]. Error paths are made
//! of names known at compile time, never of text from the file.

use std::fmt::Write as _;
use std::mem;
use std::path::Path;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Map, Number, Value};
use zeroize::Zeroize as _;

use super::ParseError;

/// Longest name from a file that a message shows verbatim.
pub(super) const MAX_SHOWN_NAME: usize = 40;

/// One step of a field path. Only names known at compile time appear in
/// error paths, so a path never carries text from the file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seg {
    Key(&'static str),
    Index(usize),
}

pub(super) fn child(parent: &[Seg], key: &'static str) -> Vec<Seg> {
    let mut path = parent.to_vec();
    path.push(Seg::Key(key));
    path
}

pub(super) fn show_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// A JSON type name for messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A name from the file, verbatim only when short and plain.
pub(super) fn shown_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= MAX_SHOWN_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/@$".contains(&b));
    if plain {
        name.to_owned()
    } else {
        format!("<{} characters, not shown>", name.chars().count())
    }
}

pub(super) struct Reader<'a> {
    pub(super) file: &'a Path,
    /// The JSON document, without BOM and trailing bytes.
    pub(super) text: &'a [u8],
    pub(super) notes: Vec<String>,
}

impl Reader<'_> {
    pub(super) fn error(&self, path: &[Seg], message: String) -> ParseError {
        let offset = locate(self.text, path).unwrap_or(0);
        ParseError::at(self.file, self.text, offset, message)
    }

    pub(super) fn wrong_type(
        &self,
        parent: &[Seg],
        key: &'static str,
        expected: &str,
        found: &Value,
    ) -> ParseError {
        self.bad_value(parent, key, expected, kind(found))
    }

    pub(super) fn bad_value(
        &self,
        parent: &[Seg],
        key: &'static str,
        expected: &str,
        found: &str,
    ) -> ParseError {
        let path = child(parent, key);
        let message = format!(
            "field `{}`: expected {expected}, found {found}",
            show_path(&path)
        );
        self.error(&path, message)
    }

    pub(super) fn unknown_fields(
        &mut self,
        parent: &[Seg],
        map: &Map<String, Value>,
        known: &[&str],
    ) {
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            let prefix = if parent.is_empty() {
                String::new()
            } else {
                show_path(parent) + "."
            };
            self.notes.push(format!(
                "unknown field `{prefix}{}` ignored",
                shown_name(key)
            ));
        }
    }

    pub(super) fn object<'m>(
        &self,
        map: &'m mut Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<&'m mut Map<String, Value>>, ParseError> {
        match map.get_mut(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(other) => Err(self.wrong_type(parent, key, "an object or null", other)),
        }
    }

    /// A string or null; the string is moved out of the tree.
    pub(super) fn string(
        &self,
        map: &mut Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<String>, ParseError> {
        match map.get_mut(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(mem::take(s))),
            Some(other) => Err(self.wrong_type(parent, key, "a string or null", other)),
        }
    }

    /// A token or key: a string or null, `""` counting as absent.
    pub(super) fn secret(
        &self,
        map: &mut Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<SecretString>, ParseError> {
        Ok(self
            .string(map, parent, key)?
            .filter(|s| !s.is_empty())
            .map(SecretString::from))
    }

    pub(super) fn required_secret(
        &self,
        map: &mut Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<SecretString, ParseError> {
        match map.get_mut(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(SecretString::from(mem::take(s))),
            Some(Value::String(_)) => {
                let path = child(parent, key);
                Err(self.error(
                    &path,
                    format!("field `{}` is empty: expected a token", show_path(&path)),
                ))
            }
            Some(other) => Err(self.wrong_type(parent, key, "a string", other)),
            None => {
                let message = format!(
                    "field `{}` is missing: expected a string",
                    show_path(&child(parent, key))
                );
                Err(self.error(parent, message))
            }
        }
    }

    pub(super) fn boolean(
        &self,
        map: &Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<bool>, ParseError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(parent, key, "true, false or null", other)),
        }
    }

    /// Type-checks a number that is not imported.
    pub(super) fn number(
        &self,
        map: &Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<(), ParseError> {
        match map.get(key) {
            None | Some(Value::Null | Value::Number(_)) => Ok(()),
            Some(other) => Err(self.wrong_type(parent, key, "a number or null", other)),
        }
    }

    pub(super) fn datetime(
        &self,
        map: &Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<DateTime<Utc>>, ParseError> {
        const EXPECTED: &str = "an RFC 3339 date-time (2025-06-20T09:15:02Z) or null";
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Ok(Some(t.to_utc())),
                Err(_) => Err(self.bad_value(parent, key, EXPECTED, "a string that is not one")),
            },
            Some(other) => Err(self.wrong_type(parent, key, EXPECTED, other)),
        }
    }

    /// `expires_at` of the multi-provider design: RFC 3339, or unix time
    /// (milliseconds when ≥ 10¹¹, else seconds).
    pub(super) fn expires_at(
        &self,
        map: &Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<DateTime<Utc>>, ParseError> {
        const EXPECTED: &str = "an RFC 3339 date-time, a unix time or null";
        match map.get(key) {
            Some(Value::Number(n)) => {
                let t = integer(n).and_then(|n| {
                    if n.abs() >= 100_000_000_000 {
                        DateTime::from_timestamp_millis(n)
                    } else {
                        DateTime::from_timestamp(n, 0)
                    }
                });
                t.map(Some)
                    .ok_or_else(|| self.bad_value(parent, key, EXPECTED, OUT_OF_RANGE))
            }
            None | Some(Value::String(_) | Value::Null) => self.datetime(map, parent, key),
            Some(other) => Err(self.wrong_type(parent, key, EXPECTED, other)),
        }
    }

    pub(super) fn unix_millis(
        &self,
        map: &Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Option<DateTime<Utc>>, ParseError> {
        const EXPECTED: &str = "a unix time in milliseconds or null";
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => integer(n)
                .and_then(DateTime::from_timestamp_millis)
                .map(Some)
                .ok_or_else(|| self.bad_value(parent, key, EXPECTED, OUT_OF_RANGE)),
            Some(other) => Err(self.wrong_type(parent, key, EXPECTED, other)),
        }
    }

    /// An array of strings, or one space-separated string, or null.
    pub(super) fn scopes(
        &self,
        map: &mut Map<String, Value>,
        parent: &[Seg],
        key: &'static str,
    ) -> Result<Vec<String>, ParseError> {
        match map.get_mut(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s.split_whitespace().map(str::to_owned).collect()),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter_mut().enumerate() {
                    match item {
                        Value::String(s) => out.push(mem::take(s)),
                        other => {
                            let mut path = child(parent, key);
                            path.push(Seg::Index(i));
                            let message = format!(
                                "field `{}`: expected a string, found {}",
                                show_path(&path),
                                kind(other)
                            );
                            return Err(self.error(&path, message));
                        }
                    }
                }
                Ok(out)
            }
            Some(other) => Err(self.wrong_type(
                parent,
                key,
                "an array of strings, a space-separated string or null",
                other,
            )),
        }
    }
}

pub(super) const OUT_OF_RANGE: &str = "a number that is not an integer or out of range";

/// An integral JSON number as `i64`.
pub(super) fn integer(n: &Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        // Exact for |f| < 2^53; the check keeps the cast meaningful.
        #[allow(clippy::cast_possible_truncation)]
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
    })
}

// ---------------------------------------------------------------------------
// The JSON document, positions

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
