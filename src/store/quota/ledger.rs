//! The ledger's queries: which budgets apply, where each stands in its
//! window, refusals and threshold notices. Every helper runs inside the
//! caller's transaction.

use chrono::{DateTime, Utc};
use std::ops::ControlFlow;

use super::{Budget, Notice, Target};
use crate::db::{Arg, Row, Tx, Value, args};
use crate::error::{Error, Result};
use crate::model::Provider;
use crate::quota::{self, Period, Scope, Unit, Window, Zone};
use crate::store::accounts::find_account;
use crate::store::audit::Event;
use crate::store::{Keys, time};

/// The setting that holds the quota time zone (a JSON string).
pub const ZONE_SETTING: &str = "quota.timezone";

/// A budget row with the key its usage is filtered by.
pub(super) struct Applicable {
    pub(super) budget: Budget,
    /// `account_id`, `provider` or `agent` value of the ledger rows it counts.
    pub(super) key: Value,
}

impl Applicable {
    pub(super) fn column(&self) -> &'static str {
        match self.budget.scope {
            Scope::Account => "account_id",
            Scope::Provider => "provider",
            Scope::Agent => "agent",
        }
    }
}

/// Where a budget stands at `now`.
pub(super) struct Measure {
    pub(super) used: u64,
    pub(super) reserved: u64,
    pub(super) window: Window,
    /// Oldest usage counted (rolling windows free it one period later).
    pub(super) oldest: Option<DateTime<Utc>>,
}

impl Measure {
    pub(super) fn resets_at(&self, period: Period) -> Option<DateTime<Utc>> {
        match period.rolling() {
            Some(len) => self.oldest.map(|t| t + len),
            None => self.window.end,
        }
    }
}

pub(super) fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::InvalidInput {
        what: what.to_owned(),
        reason: format!("{n} is too large"),
    })
}

/// Checks an agent id or model name: 1–128 printable characters.
pub(super) fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.chars().count() > 128 || s.chars().any(char::is_control) {
        return Err(Error::InvalidInput {
            what: format!("{what} `{}`", crate::terminal::escape(s)),
            reason: "must be 1 to 128 characters without control characters".into(),
        });
    }
    Ok(())
}

pub(super) fn read_zone(conn: &Tx<'_>) -> Result<Zone> {
    let text: Option<String> = conn.query_opt(
        "SELECT value FROM settings WHERE key = ?1",
        args![ZONE_SETTING],
        |r| r.get(0),
    )?;
    let Some(text) = text else {
        return Ok(Zone::default());
    };
    serde_json::from_str::<String>(&text)
        .ok()
        .and_then(|z| z.parse().ok())
        .ok_or_else(|| Error::InvalidInput {
            what: format!("setting `{ZONE_SETTING}`"),
            reason: "is not `local`, `UTC` or an offset like `+02:00`; set it with `vault quota timezone`"
                .into(),
        })
}

pub(super) const SELECT_BUDGET: &str =
    "SELECT b.id, b.scope, b.unit, b.period, b.limit_value, b.subject, a.label
     FROM quota_budgets b LEFT JOIN accounts a ON a.id = b.account_id";

pub(super) fn read_budget(r: &Row<'_>) -> Result<Applicable> {
    let id: i64 = r.get(0)?;
    let parse_err = |column: &'static str| Error::Malformed {
        table: "quota_budgets",
        column,
        row: id,
        reason: "unknown value",
    };
    let scope: Scope = r
        .get::<String>(1)?
        .parse()
        .map_err(|_| parse_err("scope"))?;
    let unit: Unit = r.get::<String>(2)?.parse().map_err(|_| parse_err("unit"))?;
    let period: Period = r
        .get::<String>(3)?
        .parse()
        .map_err(|_| parse_err("period"))?;
    let limit = u64::try_from(r.get::<i64>(4)?).map_err(|_| parse_err("limit_value"))?;
    let subject: String = r.get(5)?;
    let label: Option<String> = r.get(6)?;
    let key = match scope {
        Scope::Account => Value::I64(subject.parse().map_err(|_| parse_err("subject"))?),
        Scope::Provider | Scope::Agent => Value::Text(subject.clone()),
    };
    Ok(Applicable {
        budget: Budget {
            id,
            scope,
            subject: label.unwrap_or(subject),
            unit,
            period,
            limit,
        },
        key,
    })
}

/// Every budget that applies to a reservation on `account_id` (of
/// `provider`) for `agent`.
pub(super) fn applicable(
    conn: &Tx<'_>,
    account_id: i64,
    provider: Provider,
    agent: Option<&str>,
) -> Result<Vec<Applicable>> {
    let mut out = Vec::new();
    conn.for_each_row(
        &format!(
            "{SELECT_BUDGET} WHERE b.account_id = ?1
            OR (b.scope = 'provider' AND b.subject = ?2)
            OR (b.scope = 'agent' AND b.subject = ?3)
         ORDER BY b.id"
        ),
        args![account_id, provider.as_str(), agent],
        |r| {
            out.push(read_budget(r)?);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

pub(super) fn all_budgets(conn: &Tx<'_>) -> Result<Vec<Applicable>> {
    let mut out = Vec::new();
    conn.for_each_row(
        &format!("{SELECT_BUDGET} ORDER BY b.scope, b.subject, b.unit, b.period"),
        &[],
        |r| {
            out.push(read_budget(r)?);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// Usage and reservations a budget counts at `now`.
pub(super) fn measure(
    conn: &Tx<'_>,
    b: &Applicable,
    zone: Zone,
    now: DateTime<Utc>,
) -> Result<Measure> {
    let window = b.budget.period.window(now, zone);
    let start = time::encode(window.start);
    let col = b.column();
    let (sum, time_col, committed) = match b.budget.unit {
        Unit::Tokens => ("used_tokens", "ended_at", true),
        Unit::Usd => ("usd_micros", "ended_at", true),
        Unit::Requests => ("1", "created_at", false),
    };
    let state = if committed {
        "AND state = 'committed'"
    } else {
        ""
    };
    // The key binds with its column's type (an integer for account_id):
    // only SQLite would coerce a text to compare it.
    let (used, oldest): (i64, Option<String>) = conn.query_row(
        &format!(
            "SELECT CAST(COALESCE(SUM({sum}), 0) AS BIGINT), MIN({time_col}) FROM quota_reservations
             WHERE {col} = ?1 {state} AND {time_col} >= ?2"
        ),
        &[b.key.as_arg(), Arg::Text(&start)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let reserved: i64 = if b.budget.unit == Unit::Tokens {
        let now = time::encode(now);
        conn.query_row(
            &format!(
                "SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT) FROM quota_reservations
                 WHERE {col} = ?1 AND state = 'open' AND expires_at > ?2"
            ),
            &[b.key.as_arg(), Arg::Text(&now)],
            |r| r.get(0),
        )?
    } else {
        0
    };
    let oldest = time::decode_opt(oldest.as_deref(), "quota_reservations", time_col, 0)?;
    Ok(Measure {
        used: used.max(0) as u64,
        reserved: reserved.max(0) as u64,
        window,
        oldest,
    })
}

/// The first budget that `requested` (tokens) does not fit into, as an error.
pub(super) fn refusal(
    conn: &Tx<'_>,
    budgets: &[Applicable],
    zone: Zone,
    now: DateTime<Utc>,
    requested: u64,
    extra_only_tokens: bool,
) -> Result<Option<Error>> {
    for b in budgets {
        if extra_only_tokens && b.budget.unit != Unit::Tokens {
            continue;
        }
        let m = measure(conn, b, zone, now)?;
        let ask = quota::demand(b.budget.unit, requested);
        if !quota::fits(m.used, m.reserved, ask, b.budget.limit) {
            return Ok(Some(Error::OverBudget {
                budget: b.budget.describe(),
                used: m.used,
                reserved: m.reserved,
                requested: ask,
                limit: b.budget.limit,
                resets_at: m.resets_at(b.budget.period).map(time::encode),
            }));
        }
    }
    Ok(None)
}

/// Records and returns the thresholds newly reached in each budget's window.
pub(super) fn notices(
    tx: &Tx<'_>,
    budgets: &[Applicable],
    zone: Zone,
    now: DateTime<Utc>,
) -> Result<Vec<Notice>> {
    let mut out = Vec::new();
    for b in budgets {
        let m = measure(tx, b, zone, now)?;
        let level = m.used.saturating_add(m.reserved);
        for threshold in quota::reached(level, b.budget.limit) {
            let told: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM quota_notices
                     WHERE budget_id = ?1 AND threshold = ?2 AND at >= ?3)",
                args![b.budget.id, threshold, time::encode(m.window.start)],
                |r| r.get(0),
            )?;
            if told {
                continue;
            }
            tx.execute(
                "INSERT INTO quota_notices (budget_id, threshold, level, limit_value, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                args![
                    b.budget.id,
                    threshold,
                    to_i64(level, "budget level")?,
                    to_i64(b.budget.limit, "budget limit")?,
                    time::encode(now)
                ],
            )?;
            out.push(Notice {
                budget: b.budget.describe(),
                threshold,
                level,
                limit: b.budget.limit,
            });
        }
    }
    Ok(out)
}

/// A reservation row as the ledger holds it.
pub(super) struct Held {
    pub(super) account_id: Option<i64>,
    pub(super) provider: Provider,
    pub(super) agent: Option<String>,
    pub(super) tokens: u64,
    pub(super) state: String,
    pub(super) expires_at: DateTime<Utc>,
}

pub(super) fn held(conn: &Tx<'_>, id: i64) -> Result<Held> {
    let row = conn
        .query_opt(
            "SELECT account_id, provider, agent, tokens, state, expires_at
             FROM quota_reservations WHERE id = ?1",
            args![id],
            |r| {
                Ok((
                    r.get::<Option<i64>>(0)?,
                    r.get::<String>(1)?,
                    r.get::<Option<String>>(2)?,
                    r.get::<i64>(3)?,
                    r.get::<String>(4)?,
                    r.get::<String>(5)?,
                ))
            },
        )?
        .ok_or(Error::ReservationNotFound(id))?;
    let (account_id, provider, agent, tokens, state, expires_at) = row;
    Ok(Held {
        account_id,
        provider: provider.parse().map_err(|_| Error::Malformed {
            table: "quota_reservations",
            column: "provider",
            row: id,
            reason: "unknown value",
        })?,
        agent,
        tokens: tokens.max(0) as u64,
        state,
        expires_at: time::decode(&expires_at, "quota_reservations", "expires_at", id)?,
    })
}

/// The label of an account id, if it still exists.
pub(super) fn label_of(conn: &Tx<'_>, account_id: Option<i64>) -> Result<Option<String>> {
    let Some(id) = account_id else {
        return Ok(None);
    };
    conn.query_opt("SELECT label FROM accounts WHERE id = ?1", args![id], |r| {
        r.get(0)
    })
}

/// Refuses to settle a reservation that is no longer open.
pub(super) fn check_open(
    id: i64,
    h: &Held,
    now: DateTime<Utc>,
    action: &'static str,
) -> Result<()> {
    let state = match h.state.as_str() {
        "committed" => "committed",
        "released" => "released",
        _ if h.expires_at <= now && action == "committed" => "expired",
        _ => return Ok(()),
    };
    Err(Error::ReservationClosed { id, state, action })
}

pub(super) fn event<'a>(action: &'a str, account: Option<(i64, &'a str)>) -> Event<'a> {
    let e = Event::new(action);
    match account {
        Some((id, label)) => e.account(id, label),
        None => e,
    }
}

/// A budget target found in the vault.
pub(super) struct Resolved {
    pub(super) scope: Scope,
    /// The account (id, label) of an account budget.
    pub(super) account: Option<(i64, String)>,
    /// The `subject` column: account id, provider name or agent id.
    pub(super) subject: String,
}

impl Resolved {
    /// The account for the audit entry.
    pub(super) fn audit_account(&self) -> Option<(i64, &str)> {
        self.account.as_ref().map(|(id, l)| (*id, l.as_str()))
    }

    /// Who the budget is for, as `Budget::subject` shows it.
    pub(super) fn shown(&self) -> String {
        self.account
            .as_ref()
            .map_or_else(|| self.subject.clone(), |a| a.1.clone())
    }
}

pub(super) fn resolve_target(conn: &Tx<'_>, keys: &Keys, target: Target<'_>) -> Result<Resolved> {
    let (scope, account, subject) = match target {
        Target::Account(label) => {
            let a = find_account(conn, keys, label)?;
            let id = a.id;
            (Scope::Account, Some((id, a.label)), id.to_string())
        }
        Target::Provider(p) => (Scope::Provider, None, p.as_str().to_owned()),
        Target::Agent(agent) => {
            check_name("agent id", agent)?;
            (Scope::Agent, None, agent.to_owned())
        }
    };
    Ok(Resolved {
        scope,
        account,
        subject,
    })
}

pub(super) fn find_budget(
    conn: &Tx<'_>,
    scope: Scope,
    subject: &str,
    unit: Unit,
    period: Period,
) -> Result<Option<Budget>> {
    conn.query_opt(
        &format!(
            "{SELECT_BUDGET} WHERE b.scope = ?1 AND b.subject = ?2 AND b.unit = ?3 AND b.period = ?4"
        ),
        args![scope.as_str(), subject, unit.as_str(), period.as_str()],
        |r| read_budget(r).map(|a| a.budget),
    )
}
