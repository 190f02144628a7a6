//! The library's question to usage history: a time range in a time zone,
//! filters, a grouping, and totals with cost.
//!
//! ```
//! use authvault::keys::{MemoryKeyring, Unlock};
//! use authvault::model::Provider;
//! use authvault::store::{Store, UsageEvent};
//! use authvault::usage::query::{Group, Query, Zone};
//! use authvault::usage::{Source, Tokens};
//!
//! # fn main() -> Result<(), authvault::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let keyring = MemoryKeyring::default();
//! let mut store = Store::init(&dir.path().join("v").join("vault.db"), &Unlock::Keyring(&keyring))?;
//! let response = |id: &str, at: &str, input| UsageEvent {
//!     at: at.parse().unwrap(),
//!     provider: Provider::Claude,
//!     account: None,
//!     model: "claude-sonnet-4-20250514".into(),
//!     agent: None,
//!     task_type: None,
//!     session: Some("s1".into()),
//!     project: Some("-home-u-demo".into()),
//!     source: Source::Api,
//!     tokens: Tokens { input, output: 10, ..Tokens::default() },
//!     cost_pico: input * 3_000_000 + 10 * 15_000_000,
//!     price_version: None,
//!     identity: id.into(),
//! };
//! // 23:30 UTC is already the next day in Berlin.
//! store.record_usage(&[
//!     response("a", "2025-06-20T10:00:00Z", 100),
//!     response("b", "2025-06-20T23:30:00Z", 200),
//! ], &[])?;
//! let query = Query {
//!     zone: Zone::named("Europe/Berlin").unwrap(),
//!     group_by: vec![Group::Day],
//!     ..Query::default()
//! };
//! let report = query.run(&mut store)?;
//! let days: Vec<_> = report.rows.iter().map(|r| (r.key[0].as_str(), r.tokens.input)).collect();
//! assert_eq!(days, [("2025-06-20", 100), ("2025-06-21", 200)]);
//! assert_eq!(report.total.tokens.input, 300);
//! assert!((report.total.cost_usd() - 0.0012).abs() < 1e-12);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Local, NaiveDate, Offset, TimeZone, Utc, Weekday};
use serde::Serialize;

use super::{Tokens, pico_to_usd};
use crate::error::{Error, Result};
use crate::store::{EventRow, Store, UsageFilter};

/// The time zone days, weeks and months are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The system's zone (`TZ`, else `/etc/localtime`).
    #[default]
    Local,
    /// An IANA zone (daylight saving included).
    Named(chrono_tz::Tz),
}

impl Zone {
    /// The IANA zone called `name` (`UTC`, `Europe/Berlin`, …).
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        chrono_tz::Tz::from_str(name).ok().map(Self::Named)
    }

    /// Seconds east of UTC at `t`.
    fn offset_at(self, t: DateTime<Utc>) -> i32 {
        match self {
            Self::Local => Local.offset_from_utc_datetime(&t.naive_utc()).fix(),
            Self::Named(tz) => tz.offset_from_utc_datetime(&t.naive_utc()).fix(),
        }
        .local_minus_utc()
    }

    /// The local calendar date of `t`.
    #[must_use]
    pub fn date(self, t: DateTime<Utc>) -> NaiveDate {
        match self {
            Self::Local => t.with_timezone(&Local).date_naive(),
            Self::Named(tz) => t.with_timezone(&tz).date_naive(),
        }
    }

    /// The first instant of local `date` (after a daylight-saving gap at
    /// midnight, the first local time that exists).
    fn start_of(self, date: NaiveDate) -> DateTime<Utc> {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        (0..=24 * 4)
            .find_map(|quarter| {
                let local = midnight + chrono::TimeDelta::minutes(15 * quarter);
                match self {
                    Self::Local => Local
                        .from_local_datetime(&local)
                        .earliest()
                        .map(|t| t.to_utc()),
                    Self::Named(tz) => tz
                        .from_local_datetime(&local)
                        .earliest()
                        .map(|t| t.to_utc()),
                }
            })
            .unwrap_or_else(|| midnight.and_utc())
    }
}

/// What rows are grouped by (several at once give one row per combination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Local calendar day, `YYYY-MM-DD`.
    Day,
    /// Local week, keyed by the date of its first day.
    Week(Weekday),
    /// Local calendar month, `YYYY-MM`.
    Month,
    /// Billing cycle starting on this day of each month (1–31; in a month
    /// too short for it, on the month's last day), keyed by the date of its
    /// first day.
    Cycle(u32),
    /// The agent's session id.
    Session,
    /// Provider name.
    Provider,
    /// Account label (`-` when unattributed).
    Account,
    /// Model name.
    Model,
    /// Agent id (`-` when unknown).
    Agent,
    /// Task type (`-` when unknown).
    Task,
    /// Project (`-` when unknown).
    Project,
    /// Source (`claude-code`, `codex`, …).
    Source,
}

impl Group {
    const fn needs_events(self) -> bool {
        matches!(self, Self::Session | Self::Project)
    }

    fn key(self, e: &EventRow, zone: Zone) -> String {
        let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
        match self {
            // `NaiveDate`'s `Display` is `%Y-%m-%d` without a format parser.
            Self::Day => zone.date(e.at).to_string(),
            Self::Week(first) => {
                let date = zone.date(e.at);
                let back =
                    (7 + date.weekday().num_days_from_monday() - first.num_days_from_monday()) % 7;
                (date - Days::new(u64::from(back))).to_string()
            }
            Self::Month => {
                let date = zone.date(e.at);
                format!("{:04}-{:02}", date.year(), date.month())
            }
            Self::Cycle(day) => cycle_start(zone.date(e.at), day).to_string(),
            Self::Session => or_dash(&e.session),
            Self::Provider => e.provider.as_str().to_owned(),
            Self::Account => or_dash(&e.account),
            Self::Model => e.model.clone(),
            Self::Agent => or_dash(&e.agent),
            Self::Task => or_dash(&e.task_type),
            Self::Project => or_dash(&e.project),
            Self::Source => e.source.as_str().to_owned(),
        }
    }
}

/// The first day of the billing cycle, starting on `day` of each month,
/// that `date` falls in.
fn cycle_start(date: NaiveDate, day: u32) -> NaiveDate {
    // `day` in `date`'s month, or that month's last day.
    let in_month = |first: NaiveDate| {
        let last = (first + chrono::Months::new(1)).pred_opt().unwrap_or(first);
        first.with_day(day.clamp(1, last.day())).unwrap_or(last)
    };
    let first = date.with_day(1).expect("every month has a first day");
    let this = in_month(first);
    if date >= this {
        this
    } else {
        in_month(first - chrono::Months::new(1))
    }
}

/// A question to usage history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// First local date (inclusive). For session rows: of the last activity.
    pub since: Option<NaiveDate>,
    /// Last local date (inclusive). For session rows: of the last activity.
    pub until: Option<NaiveDate>,
    /// The zone of dates, weeks and months.
    pub zone: Zone,
    /// Provider, account, model, agent, task, session, project, source.
    /// Its `from`/`until` are set from `since`/`until`.
    pub filter: UsageFilter,
    /// Row keys; empty gives one row of totals.
    pub group_by: Vec<Group>,
}

/// Token and cost sums.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sums {
    /// Responses counted.
    pub events: u64,
    /// Tokens.
    pub tokens: Tokens,
    /// Cost in pico-dollars.
    pub cost_pico: u64,
}

impl Sums {
    pub(crate) fn add(&mut self, e: &EventRow) {
        self.events += e.events;
        self.tokens.add(&e.tokens);
        self.cost_pico += e.cost_pico;
    }

    /// Cost in dollars.
    #[must_use]
    pub fn cost_usd(&self) -> f64 {
        pico_to_usd(self.cost_pico)
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// One value per [`Query::group_by`] entry.
    pub key: Vec<String>,
    /// Sums over the row.
    #[serde(flatten)]
    pub sums: Sums,
    /// Per model, by model name.
    pub models: BTreeMap<String, Sums>,
    /// Models in the order first used.
    pub models_used: Vec<String>,
    /// The earliest response (for rollup rows: its hour).
    pub first: DateTime<Utc>,
    /// The latest response (for rollup rows: its hour).
    pub last: DateTime<Utc>,
    /// The project of the latest response, when the events were read.
    pub project: Option<String>,
}

impl std::ops::Deref for Row {
    type Target = Sums;

    fn deref(&self) -> &Sums {
        &self.sums
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Rows in key order.
    pub rows: Vec<Row>,
    /// Over every row.
    pub total: Sums,
}

impl Query {
    fn needs_events(&self) -> bool {
        self.filter.needs_events() || self.group_by.iter().any(|g| g.needs_events())
    }

    fn sessions(&self) -> bool {
        self.group_by.first() == Some(&Group::Session)
    }

    /// Runs the query: from the hourly rollup when it can answer (no session
    /// or project involved, a zone whose offset is whole hours throughout),
    /// else from the events.
    ///
    /// # Errors
    /// `InvalidInput` when `until` is before `since`; as
    /// [`Store::usage_events`].
    pub fn run(&self, store: &mut Store) -> Result<Report> {
        if let (Some(s), Some(u)) = (self.since, self.until)
            && u < s
        {
            return Err(Error::InvalidInput {
                what: "usage date range".into(),
                reason: format!("--until {u} is before --since {s}"),
            });
        }
        let filter = self.time_filter();
        let rows = if self.needs_events() {
            store.usage_events(&filter)?
        } else {
            let hours = store.usage_hours(&filter)?;
            if hours.iter().all(|h| self.zone.offset_at(h.at) % 3600 == 0)
                && filter.from.is_none_or(|t| t.timestamp() % 3600 == 0)
                && filter.until.is_none_or(|t| t.timestamp() % 3600 == 0)
            {
                hours
            } else {
                store.usage_events(&filter)?
            }
        };
        Ok(self.group(&rows))
    }

    /// The filter with `since`/`until` as instants (not for session rows,
    /// which are chosen by their last activity after grouping).
    fn time_filter(&self) -> UsageFilter {
        let mut filter = self.filter.clone();
        if !self.sessions() {
            filter.from = self.since.map(|d| self.zone.start_of(d));
            filter.until = self.until.map(|d| self.zone.start_of(d + Days::new(1)));
        }
        filter
    }

    /// The events the query selects (its grouping aside), oldest first: for
    /// [`super::blocks::blocks`].
    ///
    /// # Errors
    /// As [`Store::usage_events`].
    pub fn events(&self, store: &mut Store) -> Result<Vec<EventRow>> {
        store.usage_events(&self.time_filter())
    }

    fn group(&self, events: &[EventRow]) -> Report {
        let mut rows: BTreeMap<Vec<String>, Row> = BTreeMap::new();
        for e in events {
            let key: Vec<String> = self.group_by.iter().map(|g| g.key(e, self.zone)).collect();
            let row = rows.entry(key).or_insert_with_key(|key| Row {
                key: key.clone(),
                sums: Sums::default(),
                models: BTreeMap::new(),
                models_used: Vec::new(),
                first: e.at,
                last: e.at,
                project: None,
            });
            row.sums.add(e);
            if let Some(sums) = row.models.get_mut(&e.model) {
                sums.add(e);
            } else {
                row.models.entry(e.model.clone()).or_default().add(e);
            }
            if !row.models_used.contains(&e.model) {
                row.models_used.push(e.model.clone());
            }
            row.first = row.first.min(e.at);
            if e.at >= row.last {
                row.last = e.at;
                if e.project.is_some() {
                    row.project.clone_from(&e.project);
                }
            }
        }
        let mut rows: Vec<Row> = rows.into_values().collect();
        if self.sessions() {
            let day = |r: &Row| self.zone.date(r.last);
            rows.retain(|r| {
                self.since.is_none_or(|s| day(r) >= s) && self.until.is_none_or(|u| day(r) <= u)
            });
        }
        let mut total = Sums::default();
        for r in &rows {
            total.events += r.events;
            total.tokens.add(&r.tokens);
            total.cost_pico += r.cost_pico;
        }
        Report { rows, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_midnight_is_found_across_daylight_saving_changes() {
        let ny = Zone::named("America/New_York").unwrap();
        let cases = [
            // EST, EDT, and the change days themselves.
            ("2025-01-15", "2025-01-15T05:00:00Z"),
            ("2025-07-15", "2025-07-15T04:00:00Z"),
            ("2025-03-09", "2025-03-09T05:00:00Z"),
            ("2025-03-10", "2025-03-10T04:00:00Z"),
            ("2025-11-02", "2025-11-02T04:00:00Z"),
            ("2025-11-03", "2025-11-03T05:00:00Z"),
        ];
        for (date, want) in cases {
            let got = ny.start_of(date.parse().unwrap());
            assert_eq!(got, want.parse::<DateTime<Utc>>().unwrap(), "{date}");
        }
        // A zone whose midnight does not exist on its change day
        // (America/Havana springs forward at 00:00): the day starts at 01:00.
        let havana = Zone::named("America/Havana").unwrap();
        assert_eq!(
            havana.start_of("2025-03-09".parse().unwrap()),
            "2025-03-09T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn billing_cycles_start_on_the_chosen_day_or_the_last_day_of_a_shorter_month() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        for (date, day, start) in [
            ("2025-06-15", 15, "2025-06-15"),
            ("2025-06-14", 15, "2025-05-15"),
            ("2025-01-10", 15, "2024-12-15"),
            ("2025-06-01", 1, "2025-06-01"),
            ("2025-06-30", 1, "2025-06-01"),
            // February has no 31st: its cycle starts on the 28th (29th).
            ("2025-02-28", 31, "2025-02-28"),
            ("2025-03-30", 31, "2025-02-28"),
            ("2025-03-31", 31, "2025-03-31"),
            ("2024-03-01", 31, "2024-02-29"),
            ("2025-04-30", 31, "2025-04-30"),
        ] {
            assert_eq!(cycle_start(d(date), day), d(start), "{date}, day {day}");
        }
    }

    #[test]
    fn weeks_start_on_the_chosen_day() {
        let utc = Zone::named("UTC").unwrap();
        let at: DateTime<Utc> = "2025-06-18T12:00:00Z".parse().unwrap(); // a Wednesday
        let row = EventRow {
            at,
            provider: crate::model::Provider::Claude,
            account: None,
            model: "m".into(),
            agent: None,
            task_type: None,
            session: None,
            project: None,
            source: crate::usage::Source::Api,
            events: 1,
            tokens: Tokens::default(),
            cost_pico: 0,
        };
        let cases = [
            (Weekday::Mon, "2025-06-16"),
            (Weekday::Sun, "2025-06-15"),
            (Weekday::Wed, "2025-06-18"),
            (Weekday::Thu, "2025-06-12"),
        ];
        for (first, want) in cases {
            assert_eq!(Group::Week(first).key(&row, utc), want, "{first:?}");
        }
    }
}
