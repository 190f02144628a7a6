//! The one encoding of time in the database.
//!
//! Every time column holds UTC in RFC 3339 with exactly six fractional
//! digits and `Z`: `2026-11-30T13:03:33.353193Z`, always [`LEN`] characters.
//! Fixed width makes text order time order, so `ORDER BY` and range queries
//! on the text are correct. Times are kept to the microsecond; a finer time
//! is cut, and [`canonical`] cuts it the same way for comparisons with a
//! stored copy. A stored time that is not in this form is an integrity
//! error naming table, column and row, never a silent `None`.

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};

use crate::error::{Error, Result};

/// Length of every encoded time.
pub(crate) const LEN: usize = 27;

/// Encodes a time for the database. Years outside 0000–9999 (which no
/// credential has) are clamped, so the width never changes.
pub(crate) fn encode(t: DateTime<Utc>) -> String {
    let clamped = if t.year() > 9999 {
        DateTime::from_timestamp(253_402_300_799, 999_999_000).expect("9999-12-31 is a valid time")
    } else if t.year() < 0 {
        DateTime::from_timestamp(-62_167_219_200, 0).expect("0000-01-01 is a valid time")
    } else {
        t
    };
    clamped.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Now, encoded.
pub(crate) fn now() -> String {
    encode(Utc::now())
}

/// `t` as the database keeps it (to the microsecond).
pub(crate) fn canonical(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Decodes a stored time; anything not in the one form is an integrity
/// error naming where it was found.
pub(crate) fn decode(
    text: &str,
    table: &'static str,
    column: &'static str,
    row: i64,
) -> Result<DateTime<Utc>> {
    let valid = text.len() == LEN && text.ends_with('Z');
    valid
        .then(|| DateTime::parse_from_rfc3339(text).ok())
        .flatten()
        .map(|t| t.to_utc())
        .ok_or(Error::Malformed {
            table,
            column,
            row,
            reason: "stored time is not in the vault's time format (YYYY-MM-DDTHH:MM:SS.ffffffZ)",
        })
}

/// [`decode`] for a column that may be `NULL`.
pub(crate) fn decode_opt(
    text: Option<&str>,
    table: &'static str,
    column: &'static str,
    row: i64,
) -> Result<Option<DateTime<Utc>>> {
    text.map(|t| decode(t, table, column, row)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, nanos).unwrap()
    }

    #[test]
    fn every_time_encodes_to_the_same_width_and_back() {
        let cases = [
            (at(1_800_000_000, 0), "2027-01-15T08:00:00.000000Z"),
            (
                at(1_800_000_000, 500_000_000),
                "2027-01-15T08:00:00.500000Z",
            ),
            (
                at(1_800_000_000, 123_456_789),
                "2027-01-15T08:00:00.123456Z",
            ),
            (at(0, 0), "1970-01-01T00:00:00.000000Z"),
            (at(300_000_000_000, 0), "9999-12-31T23:59:59.999999Z"),
        ];
        for (t, text) in cases {
            let encoded = encode(t);
            assert_eq!(encoded, text);
            assert_eq!(encoded.len(), LEN);
            let back = decode(&encoded, "t", "c", 1).unwrap();
            if t.year() <= 9999 {
                assert_eq!(back, canonical(t), "{text}");
            }
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let times = [
            at(5, 0),
            at(5, 1_000),
            at(5, 999_999_000),
            at(6, 0),
            at(1_800_000_000, 0),
        ];
        let texts: Vec<String> = times.iter().map(|t| encode(*t)).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn a_time_in_another_form_is_an_integrity_error_naming_its_place() {
        for bad in [
            "2027-01-15T08:00:00Z",
            "2027-01-15T08:00:00.5Z",
            "2027-01-15T08:00:00.123456789Z",
            "2027-01-15T08:00:00.000000+00:00",
            "2027-13-15T08:00:00.000000Z",
            "yesterday",
            "",
        ] {
            let err = decode(bad, "credentials", "expires_at", 7).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("integrity error in credentials.expires_at row 7"),
                "{bad}: {err}"
            );
        }
        assert_eq!(decode_opt(None, "t", "c", 1).unwrap(), None);
    }
}
