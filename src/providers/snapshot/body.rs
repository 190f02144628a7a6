//! Reading a JSON response body strictly: a field of the wrong type is an
//! error naming the endpoint and the field's path, never the value found.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{SnapshotError, rfc3339, unix_seconds};

/// Parses JSON without letting serde's message (which may quote the body)
/// into the error.
pub(super) fn parse_json(body: &[u8], endpoint: &'static str) -> Result<Value, SnapshotError> {
    serde_json::from_slice(body).map_err(|_| SnapshotError::NotJson { endpoint })
}

/// A JSON object of a response body, with the path that led to it, so that
/// errors can name fields.
pub(super) struct Object<'v> {
    endpoint: &'static str,
    /// Dotted path of this object; empty for the body itself.
    path: String,
    map: &'v Map<String, Value>,
}

impl<'v> Object<'v> {
    /// The body itself, which must be an object.
    pub(super) fn root(value: &'v Value, endpoint: &'static str) -> Result<Self, SnapshotError> {
        match value {
            Value::Object(map) => Ok(Self {
                endpoint,
                path: String::new(),
                map,
            }),
            _ => Err(SnapshotError::UnexpectedType {
                endpoint,
                field: "(body)".to_owned(),
                expected: "an object",
            }),
        }
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn unexpected(&self, key: &str, expected: &'static str) -> SnapshotError {
        SnapshotError::UnexpectedType {
            endpoint: self.endpoint,
            field: self.path_of(key),
            expected,
        }
    }

    /// The value under `key`; `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// Reads `key` with `read`, which returns `None` for a wrong type.
    fn read<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'v Value) -> Option<T>,
    ) -> Result<Option<T>, SnapshotError> {
        self.get(key)
            .map(|value| read(value).ok_or_else(|| self.unexpected(key, expected)))
            .transpose()
    }

    pub(super) fn object(&self, key: &str) -> Result<Option<Self>, SnapshotError> {
        let map = self.read(key, "an object", Value::as_object)?;
        Ok(map.map(|map| Self {
            endpoint: self.endpoint,
            path: self.path_of(key),
            map,
        }))
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, SnapshotError> {
        self.read(key, "a string", |value| value.as_str().map(str::to_owned))
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, SnapshotError> {
        self.read(key, "a boolean", Value::as_bool)
    }

    pub(super) fn f64(&self, key: &str) -> Result<Option<f64>, SnapshotError> {
        self.read(key, "a number", Value::as_f64)
    }

    pub(super) fn u64(&self, key: &str) -> Result<Option<u64>, SnapshotError> {
        self.read(key, "a non-negative integer", Value::as_u64)
    }

    pub(super) fn string_or_number(&self, key: &str) -> Result<Option<String>, SnapshotError> {
        self.read(key, "a string or a number", |value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    }

    pub(super) fn rfc3339(&self, key: &str) -> Result<Option<DateTime<Utc>>, SnapshotError> {
        self.read(key, "an RFC 3339 timestamp", |value| {
            rfc3339(value.as_str()?)
        })
    }

    pub(super) fn unix_seconds(&self, key: &str) -> Result<Option<DateTime<Utc>>, SnapshotError> {
        self.read(key, "a unix time in seconds", |value| {
            unix_seconds(value.as_i64()?)
        })
    }
}
