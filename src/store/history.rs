//! Settings and selection history: what an import brings besides accounts
//! (`merge_settings`, `merge_history`, run inside `Store::merge`'s
//! transaction), and reading them back.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::ops::ControlFlow;

use super::{Keys, Store, now, time};
use crate::crypto::Place;
use crate::db::{Tx, args};
use crate::error::Result;
use crate::store::during;

/// A selection-history entry carried by a source.
#[derive(Debug, Clone, Default)]
pub struct HistoryEntry {
    /// When the selection happened (import time when unknown).
    pub at: Option<DateTime<Utc>>,
    /// Provider chosen.
    pub provider: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The task, as free text (sealed at rest).
    pub task_context: Option<String>,
}

/// A selection-history entry as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    /// When.
    pub at: String,
    /// `import` or `selector`.
    pub origin: String,
    /// The task type asked for.
    pub task_type: Option<String>,
    /// The strategy that decided.
    pub strategy: Option<String>,
    /// Provider chosen.
    pub provider: Option<String>,
    /// Account chosen (`None` once removed, or when none was).
    pub account: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The agent asking.
    pub agent: Option<String>,
    /// `granted`, or why the chosen account failed.
    pub outcome: Option<String>,
    /// The reservation of a grant.
    pub reservation: Option<i64>,
    /// The session of a grant.
    pub session: Option<i64>,
    /// Every candidate with its score or reasons (selector entries).
    pub candidates: Option<serde_json::Value>,
    /// The task's description (opened).
    pub task_context: Option<String>,
}

pub(super) fn merge_settings(
    tx: &Tx<'_>,
    settings: &[(String, serde_json::Value)],
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for (key, value) in settings {
        let text = value.to_string();
        let old: Option<String> = tx.query_opt(
            "SELECT value FROM settings WHERE key = ?1",
            args![key],
            |r| r.get(0),
        )?;
        if old.as_deref() != Some(text.as_str()) {
            tx.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                args![key, text, now()],
            )?;
            changed.push(key.clone());
        }
    }
    Ok(changed)
}

pub(super) fn merge_history(tx: &Tx<'_>, keys: &Keys, history: &[HistoryEntry]) -> Result<usize> {
    let mut added = 0;
    for h in history {
        let at = h.at.map_or_else(now, time::encode);
        let key = keys.fingerprint(&[
            b"history",
            at.as_bytes(),
            h.provider.as_deref().unwrap_or_default().as_bytes(),
            h.reason.as_deref().unwrap_or_default().as_bytes(),
            h.task_context.as_deref().unwrap_or_default().as_bytes(),
        ]);
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM selection_history WHERE dedupe_key = ?1)",
            args![&key],
            |r| r.get(0),
        )?;
        if exists {
            continue;
        }
        let id: i64 = tx.query_row(
            "INSERT INTO selection_history (at, origin, provider, reason, dedupe_key)
             VALUES (?1, 'import', ?2, ?3, ?4) RETURNING id",
            args![at, h.provider, h.reason, key],
            |r| r.get(0),
        )?;
        if let Some(text) = &h.task_context {
            let place = Place {
                table: "selection_history",
                column: "task_context",
                row: id,
                account: 0,
            };
            tx.execute(
                "UPDATE selection_history SET task_context = ?1 WHERE id = ?2",
                args![keys.seal(&place, text.as_bytes())?, id],
            )?;
        }
        added += 1;
    }
    Ok(added)
}

impl Store {
    /// A setting's JSON value.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn setting(&mut self, key: &str) -> Result<Option<serde_json::Value>> {
        during("reading a setting", || {
            let (tx, _) = self.read_tx()?;
            let text: Option<String> = tx.query_opt(
                "SELECT value FROM settings WHERE key = ?1",
                args![key],
                |r| r.get(0),
            )?;
            Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
        })
    }

    /// The selection history, oldest first.
    ///
    /// # Errors
    /// `Integrity` when a task context was altered; SQLite.
    pub fn selection_history(&mut self) -> Result<Vec<HistoryRow>> {
        during("reading the selection history", || {
            let (tx, keys) = self.read_tx()?;
            let mut out = Vec::new();
            tx.for_each_row(
                "SELECT h.id, h.at, h.origin, h.provider, h.reason, h.task_context, h.task_type,
                        h.strategy, a.label, h.agent, h.outcome, h.reservation_id, h.session_id,
                        h.candidates
                 FROM selection_history h LEFT JOIN accounts a ON a.id = h.account_id
                 ORDER BY h.at, h.id",
                &[],
                |r| {
                    let id: i64 = r.get(0)?;
                    let sealed: Option<Vec<u8>> = r.get(5)?;
                    let place = Place {
                        table: "selection_history",
                        column: "task_context",
                        row: id,
                        account: 0,
                    };
                    let task_context = sealed
                        .map(|s| {
                            keys.open_secret(&place, &s)
                                .map(|t| t.expose_secret().to_owned())
                        })
                        .transpose()?;
                    let candidates: Option<String> = r.get(13)?;
                    out.push(HistoryRow {
                        at: r.get(1)?,
                        origin: r.get(2)?,
                        task_type: r.get(6)?,
                        strategy: r.get(7)?,
                        provider: r.get(3)?,
                        account: r.get(8)?,
                        reason: r.get(4)?,
                        agent: r.get(9)?,
                        outcome: r.get(10)?,
                        reservation: r.get(11)?,
                        session: r.get(12)?,
                        candidates: candidates.and_then(|c| serde_json::from_str(&c).ok()),
                        task_context,
                    });
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
    }
}
