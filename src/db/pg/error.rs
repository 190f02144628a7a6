//! `PgError`: what went wrong talking to PostgreSQL, sorted by what the
//! caller can do about it (reconnect and re-run, report, or give up).

use std::io;
use std::time::Duration;

pub use crate::error::PgError;

impl PgError {
    /// True when the transaction that failed is known not to have taken
    /// effect and running it again from its start is safe: the connection
    /// broke before a COMMIT was sent (the server rolls back), or the server
    /// aborted it for a serialization failure or a deadlock.
    #[must_use]
    pub fn is_retryable_before_commit(&self) -> bool {
        match self {
            Self::ConnectionLost { sent_commit, .. } => !sent_commit,
            Self::Database { code, .. } => matches!(code.as_str(), "40001" | "40P01"),
            Self::Other(_) => false,
        }
    }

    /// True when the connection is unusable and must be replaced.
    #[must_use]
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::ConnectionLost { .. })
    }
}

/// SQLSTATEs that mean the connection is gone: class 08 (connection
/// exception), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
/// connect now.
pub(super) fn is_lost_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// SQLSTATE of a lock wait that ran past `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Sorts a driver error. `commit`: the failing statement was a COMMIT.
pub(super) fn classify(e: sqlx::Error, commit: bool) -> PgError {
    let lost = |reason: String| PgError::ConnectionLost {
        sent_commit: commit,
        reason,
    };
    match e {
        sqlx::Error::Io(e) => lost(e.to_string()),
        sqlx::Error::Protocol(m) => lost(format!("protocol error: {m}")),
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default();
            let mut message = db.message().to_owned();
            if code == LOCK_NOT_AVAILABLE {
                // Every store write takes the vault's write lock first, so
                // that is usually the lock it waited for.
                message.push_str(
                    ": another process held a lock it needed (usually the vault's write \
                     lock) longer than lock_timeout; this transaction wrote nothing, try again",
                );
            }
            if is_lost_code(&code) {
                lost(format!("{message} (SQLSTATE {code})"))
            } else {
                PgError::Database { code, message }
            }
        }
        other => PgError::Other(other.to_string()),
    }
}

/// Whether a failed connection attempt is worth repeating: the server is
/// (re)starting (socket missing, connection refused, 57P03) or full (53300).
pub(super) fn is_transient_connect_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
        ),
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("57P03" | "53300"))
        }
        _ => false,
    }
}

/// Whether a failed connection attempt failed its TLS handshake (a
/// certificate that does not verify, a bad root file): permanent, unlike a
/// lost connection. rustls reports handshake failures as `InvalidData` I/O
/// errors.
pub(super) fn is_tls_refusal(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(e) => e.kind() == io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// What a TLS refusal says, without sqlx's "error communicating with
/// database" prefix.
pub(super) fn tls_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Tls(e) => e.to_string(),
        sqlx::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// First wait between connection attempts.
const FIRST_WAIT: Duration = Duration::from_millis(50);
/// Longest wait between connection attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(2);

/// The waits between connection attempts: 50 ms doubling to 2 s, ending when
/// they add up to the budget (the last one is cut to fit).
pub(super) fn backoff(budget: Duration) -> impl Iterator<Item = Duration> {
    let mut next = FIRST_WAIT;
    let mut left = budget;
    std::iter::from_fn(move || {
        if left.is_zero() {
            return None;
        }
        let wait = next.min(left);
        left -= wait;
        next = (next * 2).min(LONGEST_WAIT);
        Some(wait)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: io::ErrorKind) -> sqlx::Error {
        sqlx::Error::Io(io::Error::new(kind, "test"))
    }

    #[test]
    fn broken_streams_are_lost_connections_that_remember_a_sent_commit() {
        for commit in [false, true] {
            for e in [
                io(io::ErrorKind::BrokenPipe),
                io(io::ErrorKind::UnexpectedEof),
                sqlx::Error::Protocol("unexpected message".into()),
            ] {
                let err = classify(e, commit);
                assert!(
                    matches!(err, PgError::ConnectionLost { sent_commit, .. } if sent_commit == commit),
                    "{err:?}"
                );
                assert_eq!(err.is_retryable_before_commit(), !commit, "{err:?}");
            }
        }
    }

    #[test]
    fn lost_codes_are_class_08_and_the_shutdown_codes() {
        for (code, lost) in [
            ("08006", true),
            ("08P01", true),
            ("57P01", true),
            ("57P02", true),
            ("57P03", true),
            ("57014", false),
            ("23505", false),
            ("40001", false),
        ] {
            assert_eq!(is_lost_code(code), lost, "{code}");
        }
    }

    #[test]
    fn only_conflicts_among_refusals_are_retryable() {
        let refused = |code: &str| PgError::Database {
            code: code.into(),
            message: String::new(),
        };
        assert!(refused("40001").is_retryable_before_commit());
        assert!(refused("40P01").is_retryable_before_commit());
        assert!(!refused("23505").is_retryable_before_commit());
        assert!(!refused("55P03").is_retryable_before_commit());
        assert!(!PgError::Other(String::new()).is_retryable_before_commit());
    }

    #[test]
    fn only_a_starting_or_absent_server_is_worth_reconnecting_to() {
        assert!(is_transient_connect_failure(&io(
            io::ErrorKind::ConnectionRefused
        )));
        assert!(is_transient_connect_failure(&io(io::ErrorKind::NotFound)));
        assert!(!is_transient_connect_failure(&io(
            io::ErrorKind::PermissionDenied
        )));
        assert!(!is_transient_connect_failure(&sqlx::Error::Protocol(
            "x".into()
        )));
    }

    #[test]
    fn backoff_doubles_from_50_ms_to_2_s_within_the_budget() {
        let ms = |budget| {
            backoff(Duration::from_millis(budget))
                .map(|d| d.as_millis())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ms(30_000),
            [50, 100, 200, 400, 800, 1600]
                .into_iter()
                .chain(std::iter::repeat_n(2000, 13))
                .chain([850])
                .collect::<Vec<_>>()
        );
        assert_eq!(ms(120), [50, 70]);
        assert!(ms(0).is_empty());
    }
}
