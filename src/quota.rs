//! Quota arithmetic: budget windows, what fits, thresholds crossed, and the
//! parsing of quota quantities. Pure functions of their arguments (no clock,
//! no SQL); the ledger in `store` calls them inside its transactions.
//!
//! Windows: `minute` and `5h` are rolling (the last 60 seconds, the last
//! five hours); `day`, `week` (Monday to Monday) and `month` are calendar
//! windows in the vault's quota time zone ([`Zone`]: the local zone by
//! default, UTC, or a fixed offset).

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, FixedOffset, Local, Months, NaiveDate, NaiveTime, TimeDelta,
    TimeZone, Utc,
};
use serde::Serialize;

/// What a budget is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One account.
    Account,
    /// Every account of one provider.
    Provider,
    /// One agent id, on any account.
    Agent,
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Tokens: input + output + cache read + cache write.
    Tokens,
    /// US dollars as committed by the caller (kept in micro-dollars).
    Usd,
    /// Reservations made (one request each).
    Requests,
}

/// How long a budget's window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Period {
    /// The last 60 seconds (rolling).
    #[serde(rename = "minute")]
    Minute,
    /// The last five hours (rolling).
    #[serde(rename = "5h")]
    FiveHours,
    /// The calendar day.
    #[serde(rename = "day")]
    Day,
    /// The calendar week, from Monday 00:00.
    #[serde(rename = "week")]
    Week,
    /// The calendar month.
    #[serde(rename = "month")]
    Month,
}

macro_rules! names {
    ($ty:ty, $what:literal, $($variant:ident = $name:literal),+) => {
        impl $ty {
            /// Its name, as stored and as typed on the command line.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "unknown {} `{}` (one of: {})",
                        $what,
                        crate::terminal::escape(s),
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

names!(
    Scope,
    "budget scope",
    Account = "account",
    Provider = "provider",
    Agent = "agent"
);
names!(
    Unit,
    "budget unit",
    Tokens = "tokens",
    Usd = "usd",
    Requests = "requests"
);
names!(
    Period,
    "budget period",
    Minute = "minute",
    FiveHours = "5h",
    Day = "day",
    Week = "week",
    Month = "month"
);

/// The time zone calendar windows follow (setting `quota.timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's local zone, with its daylight-saving changes (the default).
    #[default]
    Local,
    /// A fixed offset from UTC (`UTC` is `+00:00`).
    Fixed(FixedOffset),
}

impl FromStr for Zone {
    type Err = String;

    /// `local`, `UTC`, or an offset `+HH:MM` / `-HH:MM`. Zone names such as
    /// `Europe/Paris` are not understood (no zone database is built in).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "time zone `{}` is not `local`, `UTC` or an offset like `+02:00`",
                crate::terminal::escape(s)
            )
        };
        if s.eq_ignore_ascii_case("local") {
            return Ok(Self::Local);
        }
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Ok(Self::Fixed(FixedOffset::east_opt(0).expect("zero offset")));
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let two_digits = |t: &str| {
            (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<i32>().ok())
                .flatten()
        };
        let (h, m) = (
            two_digits(h).ok_or_else(bad)?,
            two_digits(m).ok_or_else(bad)?,
        );
        if h > 23 || m > 59 {
            return Err(bad());
        }
        FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .map(Self::Fixed)
            .ok_or_else(bad)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Fixed(o) if o.local_minus_utc() == 0 => f.write_str("UTC"),
            Self::Fixed(o) => write!(f, "{o}"),
        }
    }
}

/// The window a budget counts in, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Usage at or after this time counts.
    pub start: DateTime<Utc>,
    /// When a calendar window ends; `None` for a rolling window, which frees
    /// its oldest usage one period after it was recorded.
    pub end: Option<DateTime<Utc>>,
}

impl Period {
    /// The length of a rolling window; `None` for calendar windows.
    #[must_use]
    pub fn rolling(self) -> Option<TimeDelta> {
        match self {
            Self::Minute => Some(TimeDelta::minutes(1)),
            Self::FiveHours => Some(TimeDelta::hours(5)),
            Self::Day | Self::Week | Self::Month => None,
        }
    }

    /// The window containing `now`.
    #[must_use]
    pub fn window(self, now: DateTime<Utc>, zone: Zone) -> Window {
        if let Some(len) = self.rolling() {
            return Window {
                start: now - len,
                end: None,
            };
        }
        let (start, end) = match zone {
            Zone::Local => self.calendar(now, &Local),
            Zone::Fixed(offset) => self.calendar(now, &offset),
        };
        Window {
            start,
            end: Some(end),
        }
    }

    /// Start and end of the calendar window containing `now` in `tz`.
    fn calendar<Tz: TimeZone>(self, now: DateTime<Utc>, tz: &Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let today = now.with_timezone(tz).date_naive();
        let (first, next) = match self {
            Self::Week => {
                let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
                (monday, monday + Days::new(7))
            }
            Self::Month => {
                let first = today.with_day(1).expect("every month has a first day");
                (first, first + Months::new(1))
            }
            Self::Day | Self::Minute | Self::FiveHours => (today, today + Days::new(1)),
        };
        (midnight(tz, first), midnight(tz, next))
    }
}

/// The first moment of `date` in `tz`: midnight, or, where a daylight-saving
/// change skips midnight, the first time that exists that day.
fn midnight<Tz: TimeZone>(tz: &Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut t = date.and_time(NaiveTime::MIN);
    // Gaps last at most a few hours; step through them a quarter hour at a time.
    for _ in 0..96 {
        if let Some(found) = tz.from_local_datetime(&t).earliest() {
            return found.to_utc();
        }
        t += TimeDelta::minutes(15);
    }
    date.and_time(NaiveTime::MIN).and_utc()
}

/// What a reservation of `tokens` asks of a budget counting `unit`: the
/// tokens, one request, or, for a USD budget, one micro-dollar (the cost is
/// known only at commit, so a USD budget admits reservations while what was
/// committed stays below its limit).
#[must_use]
pub const fn demand(unit: Unit, tokens: u64) -> u64 {
    match unit {
        Unit::Tokens => tokens,
        Unit::Requests | Unit::Usd => 1,
    }
}

/// Whether `requested` fits beside `used` and `reserved` under `limit`.
#[must_use]
pub fn fits(used: u64, reserved: u64, requested: u64, limit: u64) -> bool {
    u128::from(used) + u128::from(reserved) + u128::from(requested) <= u128::from(limit)
}

/// What is left of `limit` after `used` and `reserved`.
#[must_use]
pub const fn remaining(used: u64, reserved: u64, limit: u64) -> u64 {
    limit.saturating_sub(used.saturating_add(reserved))
}

/// The notice thresholds, in percent of a budget.
pub const THRESHOLDS: [u8; 2] = [80, 95];

/// The thresholds `level` has reached, lowest first.
#[must_use]
pub fn reached(level: u64, limit: u64) -> Vec<u8> {
    THRESHOLDS
        .into_iter()
        .filter(|t| u128::from(level) * 100 >= u128::from(*t) * u128::from(limit))
        .collect()
}

/// Parses a duration: a whole number with `s`, `m` or `h` (`90s`, `10m`,
/// `2h`); a bare number is seconds. From one second to seven days.
///
/// # Errors
/// Says what is accepted.
pub fn parse_ttl(s: &str) -> Result<TimeDelta, String> {
    let bad = || {
        format!(
            "TTL `{}` is not a duration from 1s to 7 days such as `90s`, `10m` or `2h`",
            crate::terminal::escape(s)
        )
    };
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c @ ('s' | 'm' | 'h'))) => (&s[..i], c),
        _ => (s, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        'h' => n.checked_mul(3600),
        'm' => n.checked_mul(60),
        _ => Some(n),
    }
    .ok_or_else(bad)?;
    if !(1..=7 * 24 * 3600).contains(&secs) {
        return Err(bad());
    }
    Ok(TimeDelta::seconds(secs))
}

/// Micro-dollars in a dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// Parses an amount of US dollars (`12`, `0.5`, `3.141592`: at most six
/// decimals) into micro-dollars.
///
/// # Errors
/// Says what is accepted.
pub fn parse_usd(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "amount `{}` is not a number of US dollars such as `12` or `0.25` (at most 6 decimals)",
            crate::terminal::escape(s)
        )
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(MICROS_PER_USD)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Micro-dollars as dollars (`12.5`, `0.000001`).
#[must_use]
pub fn format_usd(micros: u64) -> String {
    let (whole, frac) = (micros / MICROS_PER_USD, micros % MICROS_PER_USD);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn zone(s: &str) -> Zone {
        s.parse().unwrap()
    }

    #[test]
    fn windows_start_and_end_where_the_calendar_says() {
        // (period, zone, now, start, end)
        let cases = [
            (
                "day",
                "UTC",
                "2026-11-30T13:05:00Z",
                "2026-11-30T00:00:00Z",
                Some("2026-12-01T00:00:00Z"),
            ),
            (
                "day",
                "+02:00",
                "2026-11-30T23:30:00Z",
                "2026-11-30T22:00:00Z",
                Some("2026-12-01T22:00:00Z"),
            ),
            (
                "day",
                "-05:00",
                "2026-12-01T03:00:00Z",
                "2026-11-30T05:00:00Z",
                Some("2026-12-01T05:00:00Z"),
            ),
            // 2026-11-30 is a Monday; 2026-12-06 a Sunday.
            (
                "week",
                "UTC",
                "2026-11-30T00:00:00Z",
                "2026-11-30T00:00:00Z",
                Some("2026-12-07T00:00:00Z"),
            ),
            (
                "week",
                "UTC",
                "2026-12-06T23:59:59Z",
                "2026-11-30T00:00:00Z",
                Some("2026-12-07T00:00:00Z"),
            ),
            (
                "month",
                "UTC",
                "2026-12-31T23:59:59Z",
                "2026-12-01T00:00:00Z",
                Some("2027-01-01T00:00:00Z"),
            ),
            (
                "month",
                "+09:00",
                "2027-01-31T16:00:00Z",
                "2027-01-31T15:00:00Z",
                Some("2027-02-28T15:00:00Z"),
            ),
            (
                "month",
                "UTC",
                "2028-02-29T12:00:00Z",
                "2028-02-01T00:00:00Z",
                Some("2028-03-01T00:00:00Z"),
            ),
            (
                "5h",
                "+09:00",
                "2026-11-30T13:00:00Z",
                "2026-11-30T08:00:00Z",
                None,
            ),
            (
                "minute",
                "UTC",
                "2026-11-30T13:00:30Z",
                "2026-11-30T12:59:30Z",
                None,
            ),
        ];
        for (period, z, now, start, end) in cases {
            let period: Period = period.parse().unwrap();
            let w = period.window(utc(now), zone(z));
            assert_eq!(
                w,
                Window {
                    start: utc(start),
                    end: end.map(utc)
                },
                "{period} in {z} at {now}"
            );
        }
    }

    #[test]
    fn the_local_zone_gives_a_window_that_contains_now() {
        let now = utc("2026-11-30T13:05:00Z");
        for period in [Period::Day, Period::Week, Period::Month] {
            let w = period.window(now, Zone::Local);
            let end = w.end.unwrap();
            assert!(w.start <= now && now < end, "{period}: {w:?}");
        }
    }

    #[test]
    fn a_zone_is_local_utc_or_a_fixed_offset() {
        let east = |s| Zone::Fixed(FixedOffset::east_opt(s).unwrap());
        let good = [
            ("local", Zone::Local, "local"),
            ("LOCAL", Zone::Local, "local"),
            ("UTC", east(0), "UTC"),
            ("utc", east(0), "UTC"),
            ("+00:00", east(0), "UTC"),
            ("+05:30", east(19_800), "+05:30"),
            ("-08:00", east(-28_800), "-08:00"),
        ];
        for (text, want, shown) in good {
            let z: Zone = text.parse().unwrap();
            assert_eq!((z, z.to_string().as_str()), (want, shown), "{text}");
        }
        for bad in [
            "Europe/Paris",
            "+5:30",
            "+24:00",
            "+05:60",
            "0200",
            "",
            "+05:30x",
        ] {
            assert!(bad.parse::<Zone>().is_err(), "{bad}");
        }
    }

    #[test]
    fn what_fits_and_what_remains() {
        // (used, reserved, requested, limit, fits, remaining)
        let cases = [
            (0, 0, 500, 100_000, true, 100_000),
            (99_000, 500, 500, 100_000, true, 500),
            (99_000, 500, 501, 100_000, false, 500),
            (100_000, 0, 0, 100_000, true, 0),
            (100_000, 0, 1, 100_000, false, 0),
            (90_000, 20_000, 0, 100_000, false, 0),
            (u64::MAX, u64::MAX, u64::MAX, u64::MAX, false, 0),
        ];
        for (used, reserved, requested, limit, want_fit, want_left) in cases {
            assert_eq!(
                (
                    fits(used, reserved, requested, limit),
                    remaining(used, reserved, limit)
                ),
                (want_fit, want_left),
                "{used}+{reserved}+{requested} against {limit}"
            );
        }
    }

    #[test]
    fn a_reservation_asks_tokens_one_request_or_one_micro_dollar() {
        assert_eq!(demand(Unit::Tokens, 500), 500);
        assert_eq!(demand(Unit::Requests, 500), 1);
        assert_eq!(demand(Unit::Usd, 500), 1);
    }

    #[test]
    fn thresholds_are_reached_at_80_and_95_percent() {
        let cases: [(u64, u64, &[u8]); 7] = [
            (0, 100, &[]),
            (79, 100, &[]),
            (80, 100, &[80]),
            (94, 100, &[80]),
            (95, 100, &[80, 95]),
            (120, 100, &[80, 95]),
            (79_999, 100_000, &[]),
        ];
        for (level, limit, want) in cases {
            assert_eq!(reached(level, limit), want, "{level} of {limit}");
        }
    }

    #[test]
    fn ttls_take_seconds_minutes_or_hours() {
        let good = [
            ("2s", 2),
            ("2", 2),
            ("10m", 600),
            ("2h", 7200),
            ("168h", 604_800),
        ];
        for (text, secs) in good {
            assert_eq!(parse_ttl(text), Ok(TimeDelta::seconds(secs)), "{text}");
        }
        for bad in [
            "",
            "0s",
            "-1s",
            "1d",
            "m",
            "1.5m",
            "169h",
            "99999999999999999999h",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dollars_round_trip_through_micro_dollars() {
        let good = [
            ("12", 12_000_000, "12"),
            ("0.5", 500_000, "0.5"),
            ("3.141592", 3_141_592, "3.141592"),
            ("0.000001", 1, "0.000001"),
            ("0", 0, "0"),
        ];
        for (text, micros, shown) in good {
            assert_eq!(parse_usd(text), Ok(micros), "{text}");
            assert_eq!(format_usd(micros), shown);
        }
        for bad in ["", ".5", "1.2345678", "-1", "1e3", "1,5"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }
}
