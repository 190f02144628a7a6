//! Where a vault lives: a SQLite file or a PostgreSQL database.

use std::fmt;
use std::path::{Path, PathBuf};

use super::pg::DatabaseUrl;
use crate::error::Result;

/// Where a vault lives. `Display` never shows a database password.
#[derive(Clone, Debug)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL database (or the schema its URL selects).
    Postgres(DatabaseUrl),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL selects PostgreSQL; anything
    /// else is a file path.
    ///
    /// # Errors
    /// A PostgreSQL URL that does not parse (the message never holds its
    /// password).
    pub fn parse(s: &str) -> Result<Self> {
        if DatabaseUrl::is_postgres(s) {
            Ok(Self::Postgres(DatabaseUrl::parse(s)?))
        } else {
            Ok(Self::File(PathBuf::from(s)))
        }
    }

    /// The file, for a SQLite vault.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Self::File(path)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Self::File(path.to_path_buf())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => write!(f, "{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_selects_postgres_and_anything_else_is_a_file() {
        let pg = Location::parse("postgres://app:s3cret-pw@db.example/vault").unwrap();
        assert!(matches!(pg, Location::Postgres(_)));
        assert!(!pg.to_string().contains("s3cret-pw"), "{pg}");
        assert!(!format!("{pg:?}").contains("s3cret-pw"));
        let file = Location::parse("/home/me/vault.db").unwrap();
        assert_eq!(file.file(), Some(Path::new("/home/me/vault.db")));
        assert_eq!(file.to_string(), "/home/me/vault.db");
    }
}
