//! Agent sessions and the selections that lead to them.
//!
//! A grant ([`Store::grant`]) is one transaction: the reservation, the
//! selection history row (origin `selector`, every candidate with its score
//! or reasons) and the session row land together or not at all. A chosen
//! account that failed before anything was granted is recorded on its own
//! ([`Store::record_selection`]), so the history shows every attempt.
//!
//! A session ends when its process reports back ([`Store::end_session`]) or,
//! if the process died first, when a later call finds it gone and closes it
//! ([`Store::close_sessions`]); either way its reservation, if still open, is
//! released in the same transaction. The store never looks at processes
//! itself: the manager checks them (see [`crate::process`]).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::accounts::find_account;
use super::audit::{self, Event};
use super::quota::{Reservation, reserve_in};
use super::{Store, time};
use crate::db::{Row, Tx, args};
use crate::error::{Error, Result};
use crate::model::Provider;
use crate::process::ProcessRef;
use crate::store::during;

/// How a grant reaches its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// `vault exec`: the vault runs the agent and ends the session.
    Exec,
    /// `vault env`: a shell took the variables; the session lives as long
    /// as that shell.
    Env,
}

impl SessionKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Env => "env",
        }
    }
}

/// A selection decision as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The task type asked for (may be empty).
    pub task_type: String,
    /// The strategy that decided.
    pub strategy: String,
    /// The chosen account's provider.
    pub provider: Option<Provider>,
    /// The chosen account's label.
    pub account: Option<String>,
    /// Why it was chosen (or why none was).
    pub reason: String,
    /// Every candidate with its score or reasons (JSON).
    pub candidates: serde_json::Value,
    /// The agent asking.
    pub agent: Option<String>,
    /// What came of it: `granted`, or why the chosen account failed.
    pub outcome: String,
}

/// What [`Store::grant`] needs besides the selection.
#[derive(Debug, Clone)]
pub struct GrantRequest<'a> {
    /// The decision, with `account` set.
    pub selection: &'a Selection,
    /// The agent the grant is for.
    pub agent: &'a str,
    /// Tokens to reserve.
    pub tokens: u64,
    /// How long the reservation holds without a commit or release.
    pub ttl: TimeDelta,
    /// Exec or env.
    pub kind: SessionKind,
    /// The process that holds the session.
    pub process: &'a ProcessRef,
    /// The working directory the agent runs in (`exec`: the command's,
    /// `env`: the caller's), kept only as a keyed fingerprint.
    pub cwd: Option<&'a Path>,
}

/// When a session held its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended (`None`: still open).
    pub end: Option<DateTime<Utc>>,
}

/// What a grant wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The reservation made.
    pub reservation: Reservation,
    /// The session row's id.
    pub session: i64,
    /// The selection history row's id.
    pub history: i64,
}

/// A live session as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Session id.
    pub id: i64,
    /// The agent.
    pub agent: String,
    /// The account's label (`None` once the account was removed).
    pub account: Option<String>,
    /// Exec or env.
    pub kind: SessionKind,
    /// The process holding it.
    #[serde(flatten)]
    pub process: ProcessRef,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its process was last seen alive.
    pub last_seen: DateTime<Utc>,
    /// Its reservation.
    pub reservation: Option<i64>,
    /// Tokens its reservation holds while still open (not committed,
    /// released or expired).
    pub reserved_tokens: Option<u64>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Its process reported back, with this exit status when it had one.
    Exited(Option<i32>),
    /// Its process was found gone.
    ProcessGone,
}

impl Store {
    /// Records a selection that granted nothing (the chosen account failed).
    ///
    /// # Errors
    /// SQLite.
    pub fn record_selection(&mut self, selection: &Selection) -> Result<i64> {
        during("recording a selection", || {
            let (tx, _, _) = self.write_tx()?;
            let id = insert_selection(&tx, selection, None, None)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// Grants the selected account to an agent: reserves `tokens`, records the
    /// selection and opens the session, in one transaction. A refused
    /// reservation records the selection with the refusal as its outcome.
    ///
    /// # Errors
    /// `OverBudget`, `AccountNotFound`, `InvalidInput`, SQLite.
    pub fn grant(&mut self, req: &GrantRequest<'_>) -> Result<GrantRecord> {
        during("granting an account", || {
            let label = req
                .selection
                .account
                .as_deref()
                .ok_or_else(|| Error::InvalidInput {
                    what: "selection".into(),
                    reason: "no account was chosen".into(),
                })?;
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let reservation = match reserve_in(
                &tx,
                keys,
                actor,
                label,
                Some(req.agent),
                req.tokens,
                req.ttl,
            )? {
                Ok(r) => r,
                Err(refused) => {
                    let failed = Selection {
                        outcome: format!("refused: {refused}"),
                        ..req.selection.clone()
                    };
                    insert_selection(&tx, &failed, None, None)?;
                    tx.commit()?;
                    return Err(refused);
                }
            };
            let now = time::encode(tx.now()?);
            let p = req.process;
            let cwd = req
                .cwd
                .map(|d| keys.fingerprint(&[b"session-cwd", d.as_os_str().as_encoded_bytes()]));
            let session: i64 = tx.query_row(
                "INSERT INTO agent_sessions (agent, account_id, kind, pid, pid_start, host,
                     started_at, last_seen, reservation_id, cwd_fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9) RETURNING id",
                args![
                    req.agent,
                    account.id,
                    req.kind.as_str(),
                    p.pid,
                    p.start.map(i64::try_from).transpose().ok().flatten(),
                    p.host,
                    now,
                    reservation.id,
                    cwd
                ],
                |r| r.get(0),
            )?;
            let history =
                insert_selection(&tx, req.selection, Some(reservation.id), Some(session))?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("agent.grant")
                    .account(account.id, &account.label)
                    .details(serde_json::json!({
                        "session": session, "reservation": reservation.id, "agent": req.agent,
                        "kind": req.kind.as_str(), "pid": p.pid, "host": p.host,
                    })),
            )?;
            tx.commit()?;
            Ok(GrantRecord {
                reservation,
                session,
                history,
            })
        })
    }

    /// When each account was last granted to an agent (for rotation), by label.
    ///
    /// # Errors
    /// `Integrity` for a malformed time; SQLite.
    pub fn last_grants(&mut self) -> Result<BTreeMap<String, DateTime<Utc>>> {
        during("reading the selection history", || {
            let (tx, _) = self.read_tx()?;
            let mut out = BTreeMap::new();
            tx.for_each_row(
                "SELECT a.label, max(h.at), max(h.id) FROM selection_history h
                 JOIN accounts a ON a.id = h.account_id
                 WHERE h.session_id IS NOT NULL GROUP BY a.id, a.label",
                &[],
                |r| {
                    let at: String = r.get(1)?;
                    out.insert(
                        r.get(0)?,
                        time::decode(&at, "selection_history", "at", r.get(2)?)?,
                    );
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
    }

    /// Sessions not ended yet, oldest first (whether their processes still
    /// run is for the caller to check).
    ///
    /// # Errors
    /// `Integrity` for a malformed time; SQLite.
    pub fn open_sessions(&mut self) -> Result<Vec<Session>> {
        during("reading agent sessions", || {
            let (tx, _) = self.read_tx()?;
            let now = tx.now()?;
            let mut out = Vec::new();
            tx.for_each_row(
                "SELECT s.id, s.agent, a.label, s.kind, s.pid, s.pid_start, s.host,
                        s.started_at, s.last_seen, s.reservation_id, r.tokens, r.expires_at
                 FROM agent_sessions s LEFT JOIN accounts a ON a.id = s.account_id
                 LEFT JOIN quota_reservations r ON r.id = s.reservation_id AND r.state = 'open'
                 WHERE s.ended_at IS NULL ORDER BY s.started_at, s.id",
                &[],
                |r| {
                    let id: i64 = r.get(0)?;
                    let at = |i: usize, column| -> Result<DateTime<Utc>> {
                        time::decode(&r.get::<String>(i)?, "agent_sessions", column, id)
                    };
                    let kind: String = r.get(3)?;
                    out.push(Session {
                        id,
                        agent: r.get(1)?,
                        account: r.get(2)?,
                        kind: if kind == "env" {
                            SessionKind::Env
                        } else {
                            SessionKind::Exec
                        },
                        process: ProcessRef {
                            pid: r.get(4)?,
                            start: r.get::<Option<i64>>(5)?.and_then(|s| u64::try_from(s).ok()),
                            host: r.get(6)?,
                        },
                        started_at: at(7, "started_at")?,
                        last_seen: at(8, "last_seen")?,
                        reservation: r.get(9)?,
                        reserved_tokens: match r.get::<Option<String>>(11)? {
                            Some(expires)
                                if time::decode(
                                    &expires,
                                    "quota_reservations",
                                    "expires_at",
                                    id,
                                )? > now =>
                            {
                                r.get::<Option<i64>>(10)?
                                    .and_then(|t| u64::try_from(t).ok())
                            }
                            _ => None,
                        },
                    });
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
    }

    /// Session `id`'s span and the spans of every other session (any kind,
    /// any account, open or ended) granted in the same working directory;
    /// `None` when `id`'s directory was not recorded.
    ///
    /// # Errors
    /// `InvalidInput` for an unknown session; `Integrity` for a malformed
    /// time; SQLite.
    pub fn sessions_in_same_dir(&mut self, id: i64) -> Result<Option<(Span, Vec<Span>)>> {
        during("reading agent sessions", || {
            let (tx, _) = self.read_tx()?;
            let span = |r: &Row<'_>| -> Result<Span> {
                let id: i64 = r.get(0)?;
                Ok(Span {
                    start: time::decode(&r.get::<String>(1)?, "agent_sessions", "started_at", id)?,
                    end: time::decode_opt(
                        r.get::<Option<String>>(2)?.as_deref(),
                        "agent_sessions",
                        "ended_at",
                        id,
                    )?,
                })
            };
            let Some((run, cwd)) = tx.query_opt(
                "SELECT id, started_at, ended_at, cwd_fingerprint FROM agent_sessions WHERE id = ?1",
                args![id],
                |r| Ok((span(r)?, r.get::<Option<String>>(3)?)),
            )?
            else {
                return Err(Error::InvalidInput {
                    what: "session".into(),
                    reason: format!("there is no session {id}"),
                });
            };
            let Some(cwd) = cwd else {
                return Ok(None);
            };
            let mut others = Vec::new();
            tx.for_each_row(
                "SELECT id, started_at, ended_at FROM agent_sessions
                 WHERE cwd_fingerprint = ?1 AND id <> ?2",
                args![cwd, id],
                |r| {
                    others.push(span(r)?);
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(Some((run, others)))
        })
    }

    /// Marks sessions whose processes were just seen alive.
    ///
    /// # Errors
    /// SQLite.
    pub fn touch_sessions(&mut self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        during("updating agent sessions", || {
            let (tx, _, _) = self.write_tx()?;
            let now = time::encode(tx.now()?);
            for id in ids {
                tx.execute(
                    "UPDATE agent_sessions SET last_seen = ?2 WHERE id = ?1 AND ended_at IS NULL",
                    args![id, now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Ends a session and releases its reservation if it is still open.
    /// Ending one that has already ended changes nothing.
    ///
    /// # Errors
    /// `InvalidInput` for an unknown session; SQLite.
    pub fn end_session(&mut self, id: i64, end: SessionEnd) -> Result<Option<i64>> {
        during("ending an agent session", || {
            let (tx, keys, actor) = self.write_tx()?;
            let released = match end_in(&tx, id, end)? {
                Ended::Already => None,
                Ended::Now(released) => {
                    audit::append(
                        &tx,
                        keys,
                        actor,
                        &Event::new("agent.end").details(serde_json::json!({
                            "session": id, "end": end_reason(end), "released": released,
                        })),
                    )?;
                    released
                }
            };
            tx.commit()?;
            Ok(released)
        })
    }

    /// Closes sessions whose processes are gone, releasing their open
    /// reservations, in one transaction; returns the ids it closed (a
    /// session another process closed meanwhile is skipped).
    ///
    /// # Errors
    /// SQLite.
    pub fn close_sessions(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        during("closing agent sessions", || {
            let (tx, keys, actor) = self.write_tx()?;
            let mut closed = Vec::new();
            let mut released = Vec::new();
            for &id in ids {
                if let Ended::Now(r) = end_in(&tx, id, SessionEnd::ProcessGone)? {
                    closed.push(id);
                    released.extend(r);
                }
            }
            if !closed.is_empty() {
                audit::append(
                    &tx,
                    keys,
                    actor,
                    &Event::new("agent.end").details(serde_json::json!({
                        "sessions": closed, "end": "process gone", "released": released,
                    })),
                )?;
            }
            tx.commit()?;
            Ok(closed)
        })
    }
}

const fn end_reason(end: SessionEnd) -> &'static str {
    match end {
        SessionEnd::Exited(_) => "exited",
        SessionEnd::ProcessGone => "process gone",
    }
}

/// What ending a session did.
enum Ended {
    /// It had ended before.
    Already,
    /// It ended now, releasing this reservation if one was still open.
    Now(Option<i64>),
}

/// Ends session `id` inside `tx`.
fn end_in(tx: &Tx<'_>, id: i64, end: SessionEnd) -> Result<Ended> {
    let row: Option<(Option<String>, Option<i64>)> = tx.query_opt(
        "SELECT ended_at, reservation_id FROM agent_sessions WHERE id = ?1",
        args![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some((ended, reservation)) = row else {
        return Err(Error::InvalidInput {
            what: "session".into(),
            reason: format!("there is no session {id}"),
        });
    };
    if ended.is_some() {
        return Ok(Ended::Already);
    }
    let now = time::encode(tx.now()?);
    let status = match end {
        SessionEnd::Exited(status) => status,
        SessionEnd::ProcessGone => None,
    };
    tx.execute(
        "UPDATE agent_sessions SET ended_at = ?2, last_seen = ?2, end_reason = ?3, exit_status = ?4
         WHERE id = ?1",
        args![id, now, end_reason(end), status],
    )?;
    let released = match reservation {
        Some(r) => {
            let n = tx.execute(
                "UPDATE quota_reservations SET state = 'released', ended_at = ?2
                 WHERE id = ?1 AND state = 'open'",
                args![r, now],
            )?;
            (n > 0).then_some(r)
        }
        None => None,
    };
    Ok(Ended::Now(released))
}

fn insert_selection(
    tx: &Tx<'_>,
    s: &Selection,
    reservation: Option<i64>,
    session: Option<i64>,
) -> Result<i64> {
    tx.query_row(
        "INSERT INTO selection_history (at, origin, task_type, strategy, provider, account_id,
             reason, candidates, agent, outcome, reservation_id, session_id)
         VALUES (?1, 'selector', ?2, ?3, ?4, (SELECT id FROM accounts WHERE label = ?5),
                 ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        args![
            time::now(),
            s.task_type,
            s.strategy,
            s.provider.map(Provider::as_str),
            s.account,
            s.reason,
            s.candidates.to_string(),
            s.agent,
            s.outcome,
            reservation,
            session
        ],
        |r| r.get(0),
    )
}
