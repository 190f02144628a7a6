//! Account health: one row per probe (`account_health`, the newest
//! [`PROBES_KEPT`] per account) and at most one cooldown per account
//! (`account_cooldowns`). What the selector needs is read back as
//! [`AccountHealth`]: the [`Health`] aggregated over the recent probes and
//! the [`Cooldown`] still running.
//!
//! Nothing here is secret: outcomes, latencies, HTTP statuses, short words
//! on a failure and times. A probe is not audited (like a usage snapshot);
//! a cooldown is, with one `account.cooldown` entry per call.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::accounts::find_account;
use super::audit::{self, Event};
use super::{Store, time};
use crate::db::{Tx, args};
use crate::error::{Error, Result};
use crate::selector::{Cooldown, CooldownCause, HEALTH_TTL, Health};
use crate::store::during;

/// How many probes are kept per account; an insert prunes the older ones.
pub const PROBES_KEPT: u32 = 20;

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The provider answered and accepted the credential.
    Ok,
    /// HTTP 429.
    RateLimited,
    /// HTTP 529, 503 or another 5xx: the provider is failing for now.
    Overloaded,
    /// HTTP 401 / 403, or a login that is dead.
    AuthFailed,
    /// Any other refusal, or an answer that could not be read.
    Rejected,
    /// No answer: connection refused, DNS, TLS.
    Unreachable,
    /// No answer within the probe's timeout.
    Timeout,
}

impl ProbeOutcome {
    /// Every outcome, in the order of the table's `CHECK`.
    pub const ALL: [Self; 7] = [
        Self::Ok,
        Self::RateLimited,
        Self::Overloaded,
        Self::AuthFailed,
        Self::Rejected,
        Self::Unreachable,
        Self::Timeout,
    ];

    /// The stored and `--json` name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::AuthFailed => "auth_failed",
            Self::Rejected => "rejected",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One probe of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// When the probe ended.
    pub probed_at: DateTime<Utc>,
    /// How long it took (up to the timeout).
    pub latency_ms: u32,
    /// What it found.
    pub outcome: ProbeOutcome,
    /// The HTTP status of a failed probe, when there was one.
    pub status: Option<u16>,
    /// Short, non-secret words on a failure.
    pub detail: Option<String>,
}

/// What the selector needs to know about an account's health.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AccountHealth {
    /// Aggregated over the probes of the last [`HEALTH_TTL`]; `None`
    /// without any.
    pub health: Option<Health>,
    /// The cooldown still running, if any.
    pub cooldown: Option<Cooldown>,
}

const fn cause_name(cause: CooldownCause) -> &'static str {
    match cause {
        CooldownCause::RateLimited => "rate_limited",
        CooldownCause::Overloaded => "overloaded",
        CooldownCause::AuthFailed => "auth_failed",
    }
}

fn parse_cause(s: &str) -> Option<CooldownCause> {
    [
        CooldownCause::RateLimited,
        CooldownCause::Overloaded,
        CooldownCause::AuthFailed,
    ]
    .into_iter()
    .find(|&c| cause_name(c) == s)
}

/// The health of the `probes` (in any order) that ran within [`HEALTH_TTL`]
/// before `now`: the mean latency of the successful ones (of all of them
/// when none succeeded), the share that failed, and when the newest ran.
#[must_use]
fn aggregate(probes: &[Probe], now: DateTime<Utc>) -> Option<Health> {
    let recent: Vec<&Probe> = probes
        .iter()
        .filter(|p| now - p.probed_at <= HEALTH_TTL)
        .collect();
    let newest = recent.iter().map(|p| p.probed_at).max()?;
    let ok: Vec<&&Probe> = recent
        .iter()
        .filter(|p| p.outcome == ProbeOutcome::Ok)
        .collect();
    let timed: Vec<u64> = if ok.is_empty() {
        recent.iter().map(|p| u64::from(p.latency_ms)).collect()
    } else {
        ok.iter().map(|p| u64::from(p.latency_ms)).collect()
    };
    let count = timed.len() as u64; // at least one
    let mean = (timed.iter().sum::<u64>() + count / 2) / count;
    let failed = recent.len() - ok.len();
    #[allow(clippy::cast_precision_loss)] // at most PROBES_KEPT probes
    let error_rate = failed as f64 / recent.len() as f64;
    Some(Health {
        latency_ms: u32::try_from(mean).unwrap_or(u32::MAX),
        error_rate,
        probed_at: newest,
    })
}

/// The cooldown after `new` is set over `old`: the later `until` wins
/// (with its cause); an equal one takes the new cause.
#[must_use]
fn extend(old: Option<Cooldown>, new: Cooldown) -> Cooldown {
    match old {
        Some(old) if old.until > new.until => old,
        _ => new,
    }
}

fn read_cooldown(tx: &Tx<'_>, account_id: i64) -> Result<Option<Cooldown>> {
    let row: Option<(String, String)> = tx.query_opt(
        "SELECT until, cause FROM account_cooldowns WHERE account_id = ?1",
        args![account_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    row.map(|(until, cause)| cooldown_from(account_id, &until, &cause))
        .transpose()
}

fn cooldown_from(account_id: i64, until: &str, cause: &str) -> Result<Cooldown> {
    Ok(Cooldown {
        until: time::decode(until, "account_cooldowns", "until", account_id)?,
        cause: parse_cause(cause).ok_or(Error::Malformed {
            table: "account_cooldowns",
            column: "cause",
            row: account_id,
            reason: "unknown cooldown cause",
        })?,
    })
}

impl Store {
    /// Records one probe of the account `label` and keeps only its newest
    /// [`PROBES_KEPT`] probes. Not audited (like a usage snapshot).
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn record_probe(&mut self, label: &str, probe: &Probe) -> Result<()> {
        during("recording a health probe", || {
            let (tx, keys, _) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            tx.execute(
                "INSERT INTO account_health (account_id, probed_at, latency_ms, outcome, status, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![
                    account.id,
                    time::encode(probe.probed_at),
                    probe.latency_ms,
                    probe.outcome.as_str(),
                    probe.status,
                    probe.detail
                ],
            )?;
            tx.execute(
                "DELETE FROM account_health WHERE account_id = ?1 AND id NOT IN
                   (SELECT id FROM account_health WHERE account_id = ?1
                    ORDER BY probed_at DESC, id DESC LIMIT ?2)",
                args![account.id, PROBES_KEPT],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Puts the account `label` in cooldown; a running cooldown that lasts
    /// longer is kept. Returns the cooldown now in force. One
    /// `account.cooldown` audit entry (cause, until, whether the earlier
    /// one was kept).
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn set_cooldown(&mut self, label: &str, cooldown: Cooldown) -> Result<Cooldown> {
        during("setting a cooldown", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let cooldown = Cooldown {
                until: time::canonical(cooldown.until),
                ..cooldown
            };
            let now = tx.now()?;
            let old = read_cooldown(&tx, account.id)?.filter(|c| c.until > now);
            let kept = extend(old, cooldown);
            tx.execute(
                "INSERT INTO account_cooldowns (account_id, until, cause, set_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account_id) DO UPDATE
                 SET until = excluded.until, cause = excluded.cause, set_at = excluded.set_at",
                args![
                    account.id,
                    time::encode(kept.until),
                    cause_name(kept.cause),
                    time::encode(now)
                ],
            )?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("account.cooldown")
                    .account(account.id, &account.label)
                    .details(serde_json::json!({
                        "cause": cause_name(cooldown.cause),
                        "until": time::encode(kept.until),
                        "kept_longer": kept != cooldown,
                    })),
            )?;
            tx.commit()?;
            Ok(kept)
        })
    }

    /// Ends the account's cooldown now, if it has one. One
    /// `account.cooldown_clear` audit entry when there was a row.
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn clear_cooldown(&mut self, label: &str) -> Result<bool> {
        during("clearing a cooldown", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let removed = tx.execute(
                "DELETE FROM account_cooldowns WHERE account_id = ?1",
                args![account.id],
            )? > 0;
            if removed {
                audit::append(
                    &tx,
                    keys,
                    actor,
                    &Event::new("account.cooldown_clear").account(account.id, &account.label),
                )?;
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    /// Every account's health and running cooldown at `now`, by account id
    /// ([`AccountInfo::id`](super::AccountInfo::id)); accounts with neither
    /// are left out.
    ///
    /// # Errors
    /// SQLite; a malformed stored time, outcome or cause (`Malformed`).
    pub fn health(&mut self, now: DateTime<Utc>) -> Result<BTreeMap<i64, AccountHealth>> {
        during("reading account health", || {
            let (tx, _) = self.read_tx()?;
            let mut probes: BTreeMap<i64, Vec<Probe>> = BTreeMap::new();
            let since = time::encode(now - HEALTH_TTL);
            tx.for_each_row(
                "SELECT id, account_id, probed_at, latency_ms, outcome, status, detail
                 FROM account_health WHERE probed_at >= ?1",
                args![since],
                |r| {
                    let id: i64 = r.get(0)?;
                    let outcome: String = r.get(4)?;
                    let probe = Probe {
                        probed_at: time::decode(
                            &r.get::<String>(2)?,
                            "account_health",
                            "probed_at",
                            id,
                        )?,
                        latency_ms: r.get(3)?,
                        outcome: ProbeOutcome::parse(&outcome).ok_or(Error::Malformed {
                            table: "account_health",
                            column: "outcome",
                            row: id,
                            reason: "unknown probe outcome",
                        })?,
                        status: r.get(5)?,
                        detail: r.get(6)?,
                    };
                    probes.entry(r.get(1)?).or_default().push(probe);
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            let mut out: BTreeMap<i64, AccountHealth> = probes
                .into_iter()
                .map(|(id, p)| {
                    let health = aggregate(&p, now);
                    (
                        id,
                        AccountHealth {
                            health,
                            cooldown: None,
                        },
                    )
                })
                .collect();
            tx.for_each_row(
                "SELECT account_id, until, cause FROM account_cooldowns WHERE until > ?1",
                args![time::encode(now)],
                |r| {
                    let id: i64 = r.get(0)?;
                    let cooldown = cooldown_from(id, &r.get::<String>(1)?, &r.get::<String>(2)?)?;
                    out.entry(id).or_default().cooldown = Some(cooldown);
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            out.retain(|_, h| h.health.is_some() || h.cooldown.is_some());
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T14:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn probe(minutes_ago: i64, latency_ms: u32, outcome: ProbeOutcome) -> Probe {
        Probe {
            probed_at: now() - TimeDelta::minutes(minutes_ago),
            latency_ms,
            outcome,
            status: None,
            detail: None,
        }
    }

    fn health(latency_ms: u32, error_rate: f64, minutes_ago: i64) -> Health {
        Health {
            latency_ms,
            error_rate,
            probed_at: now() - TimeDelta::minutes(minutes_ago),
        }
    }

    #[test]
    fn health_is_the_mean_ok_latency_and_the_failed_share_of_the_last_hour() {
        use ProbeOutcome::{AuthFailed, Ok, RateLimited, Timeout};
        let cases: Vec<(&str, Vec<Probe>, Option<Health>)> = vec![
            ("no probe", vec![], None),
            (
                "one ok probe",
                vec![probe(5, 120, Ok)],
                Some(health(120, 0.0, 5)),
            ),
            (
                "failures count in the error rate, not in the latency",
                vec![
                    probe(1, 100, Ok),
                    probe(2, 10_000, Timeout),
                    probe(3, 201, Ok),
                    probe(4, 5, RateLimited),
                ],
                Some(health(151, 0.5, 1)),
            ),
            (
                "only failures: their latency, error rate 1",
                vec![probe(10, 30, AuthFailed), probe(20, 50, RateLimited)],
                Some(health(40, 1.0, 10)),
            ),
            (
                "probes older than an hour are left out",
                vec![probe(30, 300, Ok), probe(61, 5, Timeout), probe(600, 1, Ok)],
                Some(health(300, 0.0, 30)),
            ),
            ("only old probes: no health", vec![probe(61, 100, Ok)], None),
            (
                "the newest probe time, whatever the order",
                vec![probe(40, 100, Ok), probe(2, 100, Ok), probe(20, 100, Ok)],
                Some(health(100, 0.0, 2)),
            ),
        ];
        for (name, probes, want) in cases {
            assert_eq!(aggregate(&probes, now()), want, "{name}");
        }
    }

    #[test]
    fn a_new_cooldown_keeps_the_later_end() {
        use CooldownCause::{AuthFailed, Overloaded, RateLimited};
        let at = |minutes: i64, cause| Cooldown {
            until: now() + TimeDelta::minutes(minutes),
            cause,
        };
        let cases = [
            ("none before", None, at(5, RateLimited), at(5, RateLimited)),
            (
                "a longer new one extends",
                Some(at(5, RateLimited)),
                at(30, Overloaded),
                at(30, Overloaded),
            ),
            (
                "a shorter new one leaves the longer",
                Some(at(30, AuthFailed)),
                at(5, RateLimited),
                at(30, AuthFailed),
            ),
            (
                "an equal end takes the new cause",
                Some(at(5, RateLimited)),
                at(5, Overloaded),
                at(5, Overloaded),
            ),
        ];
        for (name, old, new, want) in cases {
            assert_eq!(extend(old, new), want, "{name}");
        }
    }

    #[test]
    fn outcome_and_cause_names_round_trip() {
        for o in ProbeOutcome::ALL {
            assert_eq!(ProbeOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for c in [
            CooldownCause::RateLimited,
            CooldownCause::Overloaded,
            CooldownCause::AuthFailed,
        ] {
            assert_eq!(parse_cause(cause_name(c)), Some(c));
        }
    }
}
