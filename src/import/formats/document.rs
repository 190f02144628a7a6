//! Typed access to the fields of a parsed source, with positioned,
//! value-free errors.
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

use super::ParseError;
use super::text::locate;

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
