//! Backend-neutral SQL values: the parameters bound to a statement and the
//! column values read back. `Debug` never prints text or blob contents (they
//! may be sealed values or secrets): only the kind and the length.

use std::fmt;

/// The declared type of a parameter; a NULL must carry one (PostgreSQL
/// cannot infer the type of `$3 IS NULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer (`BIGINT` / `INTEGER`).
    I64,
    /// UTF-8 text.
    Text,
    /// Bytes (`BYTEA` / `BLOB`).
    Blob,
}

/// One bound parameter. Borrowed: zero-copy on SQLite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// NULL of the given type.
    Null(Kind),
    /// An integer.
    I64(i64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null(kind) => write!(f, "Null({kind:?})"),
            Self::I64(v) => write!(f, "I64({v})"),
            Self::Text(s) => write!(f, "Text({} bytes)", s.len()),
            Self::Blob(b) => write!(f, "Blob({} bytes)", b.len()),
        }
    }
}

/// One owned column value, as PostgreSQL rows come back.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `INT2` / `INT4` / `INT8`.
    I64(i64),
    /// `BOOL`.
    Bool(bool),
    /// `TEXT` / `VARCHAR`.
    Text(String),
    /// `BYTEA`.
    Blob(Vec<u8>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("Null"),
            Self::I64(v) => write!(f, "I64({v})"),
            Self::Bool(v) => write!(f, "Bool({v})"),
            Self::Text(s) => write!(f, "Text({} bytes)", s.len()),
            Self::Blob(b) => write!(f, "Blob({} bytes)", b.len()),
        }
    }
}
