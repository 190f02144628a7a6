//! Words and numbers in reasons: `85 %`, `100,000`, `14:05 UTC`, `$0.0150`.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::UsageWindow;

/// `85`, `85.5`: whole numbers without decimals, others with one.
pub(super) fn percent(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0} %")
    } else {
        format!("{rounded:.1} %")
    }
}

/// `100,000`.
pub(super) fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.round().abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

/// `$5.00`, and `$0.0150` below a dollar, where task prices differ.
pub(super) fn usd(value: f64) -> String {
    if value == 0.0 || value.abs() >= 1.0 {
        format!("${value:.2}")
    } else {
        format!("${value:.4}")
    }
}

/// `14:05 UTC` on the day of `now`, else `2026-12-02 14:05 UTC`.
pub(super) fn time(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M UTC").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

/// `42 min`, `3 h 5 min`, `2 d 4 h`.
pub(super) fn age(age: TimeDelta) -> String {
    let minutes = age.num_minutes();
    match minutes {
        ..60 => format!("{minutes} min"),
        60..1440 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} d {} h", minutes / 1440, minutes % 1440 / 60),
    }
}

/// `5-hour window`, `7-day window`, `7-day opus window`, `tokens window`.
pub(super) fn window(w: &UsageWindow) -> String {
    match (w.name.as_str(), w.window_seconds) {
        ("five_hour", _) | (_, Some(18_000)) => "5-hour window".to_owned(),
        ("seven_day", _) => "7-day window".to_owned(),
        (name, _) if name.starts_with("seven_day_") => {
            format!("7-day {} window", &name["seven_day_".len()..])
        }
        (_, Some(604_800)) => "7-day window".to_owned(),
        (name, _) => format!("{name} window"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_as_in_the_reasons() {
        assert_eq!(
            [percent(85.0), percent(85.04), percent(85.55), percent(0.0)],
            ["85 %", "85 %", "85.6 %", "0 %"]
        );
        assert_eq!(
            [
                count(0.0),
                count(999.0),
                count(1000.0),
                count(99_800.0),
                count(1_234_567.0)
            ],
            ["0", "999", "1,000", "99,800", "1,234,567"]
        );
        let now = DateTime::parse_from_rfc3339("2026-11-30T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time(now + TimeDelta::minutes(65), now), "14:05 UTC");
        assert_eq!(time(now + TimeDelta::days(2), now), "2026-12-02 13:00 UTC");
        assert_eq!(
            [
                age(TimeDelta::minutes(42)),
                age(TimeDelta::minutes(185)),
                age(TimeDelta::hours(52))
            ],
            ["42 min", "3 h 5 min", "2 d 4 h"]
        );
    }
}
