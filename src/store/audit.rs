//! The tamper-evident audit log.
//!
//! Entry `n` carries `mac_n = HMAC(audit key, mac_{n-1} ‖ n ‖ fields)`
//! (`v2` with the acting host; `v1`, without, for entries written before
//! format 12, whose host is unknown). The
//! head (`audit_seq`, `audit_head`) lives in `vault_meta` together with an
//! anchor MAC over both, written in the same transaction as the entry, so an
//! edit, deletion, reordering, insertion or truncation breaks a MAC somewhere.
//! The audit key is derived from the vault's sealed root secret: without the
//! data key, nobody can forge an entry. Details never hold a secret; secrets
//! appear only as keyed fingerprints.

use std::ops::ControlFlow;

use serde::Serialize;

use super::{Keys, Store, now};
use crate::crypto::Key;
use crate::db::{Row, Tx, args};
use crate::error::{Error, Result};
use crate::store::during;

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Numeric user id.
    pub uid: u32,
    /// Process id.
    pub pid: u32,
    /// Executable path, when known.
    pub exe: Option<String>,
    /// Agent id given by the caller (`AUTHVAULT_AGENT_ID`).
    pub agent_id: Option<String>,
}

impl Actor {
    /// This process, acting for `agent_id`.
    #[must_use]
    pub fn current(agent_id: Option<String>) -> Self {
        Self {
            uid: rustix::process::getuid().as_raw(),
            pid: std::process::id(),
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string()),
            agent_id,
        }
    }
}

/// What an entry records of its writer: the actor and the host it acts on
/// (the store's, see [`Store::with_host`]; with many hosts on one vault, a
/// pid alone names nobody).
#[derive(Debug, Clone, Copy)]
pub(crate) struct By<'a> {
    pub(crate) actor: &'a Actor,
    pub(crate) host: &'a str,
}

/// One audit entry, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Acting user id.
    pub uid: u32,
    /// Acting process id.
    pub pid: u32,
    /// Acting executable.
    pub exe: Option<String>,
    /// Acting agent id.
    pub agent_id: Option<String>,
    /// Acting host; `None` for entries written before format 12.
    pub host: Option<String>,
    /// What happened (`secret.read`, `account.create`, …).
    pub action: String,
    /// Account id involved.
    pub account_id: Option<i64>,
    /// Account label at the time.
    pub account: Option<String>,
    /// `ok`, or why not.
    pub outcome: String,
    /// Further facts; never a secret.
    pub details: serde_json::Value,
    /// `details` exactly as stored: the MAC covers these bytes, so even a
    /// whitespace-only edit is detected.
    #[serde(skip)]
    details_raw: String,
    #[serde(skip)]
    mac: Vec<u8>,
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub(crate) struct Event<'a> {
    action: &'a str,
    account: Option<(i64, &'a str)>,
    outcome: &'a str,
    details: serde_json::Value,
}

impl<'a> Event<'a> {
    pub(crate) fn new(action: &'a str) -> Self {
        Self {
            action,
            account: None,
            outcome: "ok",
            details: serde_json::Value::Null,
        }
    }

    pub(crate) const fn account(mut self, id: i64, label: &'a str) -> Self {
        self.account = Some((id, label));
        self
    }

    pub(crate) const fn outcome(mut self, outcome: &'a str) -> Self {
        self.outcome = outcome;
        self
    }

    pub(crate) fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Whether the chain verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChainState {
    /// Every entry and the anchor verify.
    Intact,
    /// Something was changed; `first_bad` is the first entry that fails.
    Broken {
        /// Sequence number of the first bad (or missing) entry.
        first_bad: i64,
        /// What was found.
        reason: String,
    },
}

/// Result of `vault audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries present.
    pub entries: u64,
    /// The chain's state.
    #[serde(flatten)]
    pub state: ChainState,
}

fn opt(s: Option<&str>) -> Vec<u8> {
    s.map_or_else(|| vec![0], |s| [&[1u8][..], s.as_bytes()].concat())
}

fn entry_mac(key: &Key, prev: &[u8], e: &AuditEntry) -> [u8; 32] {
    let account_id = e.account_id.map(|id| id.to_string());
    let (seq, uid, pid) = (
        e.seq.to_be_bytes(),
        e.uid.to_be_bytes(),
        e.pid.to_be_bytes(),
    );
    let (exe, agent_id) = (opt(e.exe.as_deref()), opt(e.agent_id.as_deref()));
    let (account_id, account) = (opt(account_id.as_deref()), opt(e.account.as_deref()));
    let fields: [&[u8]; 12] = [
        prev,
        &seq,
        e.at.as_bytes(),
        &uid,
        &pid,
        &exe,
        &agent_id,
        e.action.as_bytes(),
        &account_id,
        &account,
        e.outcome.as_bytes(),
        e.details_raw.as_bytes(),
    ];
    // An entry with a host is MACed as v2, host last; one without (written
    // before format 12) as v1. Removing a host turns a v2 entry into a v1
    // one, whose MAC then differs: the label is the first part.
    match &e.host {
        Some(host) => key.mac(
            &[
                &[b"authvault audit v2" as &[u8]],
                &fields[..],
                &[host.as_bytes()],
            ]
            .concat(),
        ),
        None => key.mac(&[&[b"authvault audit v1" as &[u8]], &fields[..]].concat()),
    }
}

/// MAC over the chain head, stored in `vault_meta.audit_anchor`.
pub(crate) fn anchor(key: &Key, seq: i64, head: &[u8]) -> [u8; 32] {
    key.mac(&[b"authvault audit anchor v1", &seq.to_be_bytes(), head])
}

fn head(tx: &Tx<'_>) -> Result<(i64, Vec<u8>, Vec<u8>)> {
    tx.query_row(
        "SELECT audit_seq, audit_head, audit_anchor FROM vault_meta WHERE id = 1",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Appends `event` inside `tx`. Refuses when the anchor was tampered with, so
/// a new entry can never launder a truncated log.
pub(crate) fn append(tx: &Tx<'_>, keys: &Keys, by: By<'_>, event: &Event<'_>) -> Result<i64> {
    let actor = by.actor;
    let (seq, prev, stored_anchor) = head(tx)?;
    if !keys.audit.verify_mac(
        &[b"authvault audit anchor v1", &seq.to_be_bytes(), &prev],
        &stored_anchor,
    ) {
        return Err(Error::Malformed {
            table: "vault_meta",
            column: "audit_anchor",
            row: 1,
            reason: "the audit log head was altered; run `vault audit verify`",
        });
    }
    let mut entry = AuditEntry {
        seq: seq + 1,
        at: now(),
        uid: actor.uid,
        pid: actor.pid,
        exe: actor.exe.clone(),
        agent_id: actor.agent_id.clone(),
        host: Some(by.host.to_owned()),
        action: event.action.to_owned(),
        account_id: event.account.map(|(id, _)| id),
        account: event.account.map(|(_, label)| label.to_owned()),
        outcome: event.outcome.to_owned(),
        details: event.details.clone(),
        details_raw: event.details.to_string(),
        mac: Vec::new(),
    };
    let mac = entry_mac(&keys.audit, &prev, &entry);
    entry.mac = mac.to_vec();
    tx.execute(
        "INSERT INTO audit_log (seq, at, uid, pid, exe, agent_id, action, account_id, account, outcome, details, mac, host)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        args![
            entry.seq,
            entry.at,
            entry.uid,
            entry.pid,
            entry.exe,
            entry.agent_id,
            entry.action,
            entry.account_id,
            entry.account,
            entry.outcome,
            entry.details_raw,
            entry.mac,
            entry.host,
        ],
    )?;
    tx.execute(
        "UPDATE vault_meta SET audit_seq = ?1, audit_head = ?2, audit_anchor = ?3 WHERE id = 1",
        args![entry.seq, mac, anchor(&keys.audit, entry.seq, &mac)],
    )?;
    Ok(entry.seq)
}

fn read_entry(r: &Row<'_>) -> Result<AuditEntry> {
    let details_raw: String = r.get::<Option<String>>(10)?.unwrap_or_default();
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        uid: r.get(2)?,
        pid: r.get(3)?,
        exe: r.get(4)?,
        agent_id: r.get(5)?,
        host: r.get(12)?,
        action: r.get(6)?,
        account_id: r.get(7)?,
        account: r.get(8)?,
        outcome: r.get(9)?,
        // An unparsable details text is shown as the string it is (and fails its MAC).
        details: serde_json::from_str(&details_raw)
            .unwrap_or_else(|_| serde_json::Value::String(details_raw.clone())),
        details_raw,
        mac: r.get(11)?,
    })
}

const SELECT_ENTRY: &str = "SELECT seq, at, uid, pid, exe, agent_id, action, account_id, account, outcome, details, mac, host FROM audit_log";

impl Store {
    /// The latest `limit` entries (all when `None`), oldest first.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn audit_entries(&self, limit: Option<u64>) -> Result<Vec<AuditEntry>> {
        during("reading the audit log", || {
            // No limit is the largest one: a negative LIMIT is not portable.
            let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let mut entries = self.conn.read_tx()?.query_map(
                &format!("{SELECT_ENTRY} ORDER BY seq DESC LIMIT ?1"),
                args![limit],
                read_entry,
            )?;
            entries.reverse();
            Ok(entries)
        })
    }

    /// Walks the whole chain and the anchor; names the first bad entry.
    ///
    /// # Errors
    /// SQLite errors (a broken chain is a report, not an error).
    pub fn verify_audit(&self) -> Result<AuditReport> {
        during("verifying the audit log", || {
            // One read transaction: the head and the entries from one
            // snapshot, so an entry appended meanwhile by another process
            // is not taken for one missing from the head.
            verify_chain(&self.conn.read_tx()?, &self.keys.audit)
        })
    }
}

/// Walks the chain `tx` sees and its anchor under the audit key `key`;
/// names the first bad entry.
pub(super) fn verify_chain(snapshot: &Tx<'_>, key: &Key) -> Result<AuditReport> {
    let (meta_seq, meta_head, meta_anchor) = head(snapshot)?;
    let mut prev = vec![0u8; 32];
    let mut expected = 1i64;
    let mut entries = 0u64;
    let broken = |first_bad: i64, reason: String| ChainState::Broken { first_bad, reason };
    let mut first_break = None;
    snapshot.for_each_row(&format!("{SELECT_ENTRY} ORDER BY seq"), &[], |row| {
        let entry = read_entry(row)?;
        entries += 1;
        if entry.seq != expected {
            first_break = Some(broken(
                expected,
                format!("entry {expected} is missing (next entry is {})", entry.seq),
            ));
            return Ok(ControlFlow::Break(()));
        }
        if entry_mac(key, &prev, &entry)[..] != entry.mac[..] {
            first_break = Some(broken(
                entry.seq,
                format!(
                    "entry {} was altered, inserted or moved (MAC mismatch)",
                    entry.seq
                ),
            ));
            return Ok(ControlFlow::Break(()));
        }
        prev = entry.mac;
        expected += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some(state) = first_break {
        return Ok(AuditReport { entries, state });
    }
    let last = expected - 1;
    let state = if !key.verify_mac(
        &[
            b"authvault audit anchor v1",
            &meta_seq.to_be_bytes(),
            &meta_head,
        ],
        &meta_anchor,
    ) {
        broken(last + 1, "the chain head in vault_meta was altered".into())
    } else if meta_seq > last {
        broken(
            last + 1,
            format!(
                "entries {}..={meta_seq} were removed (log truncated after entry {last})",
                last + 1
            ),
        )
    } else if meta_seq < last || meta_head != prev {
        broken(
            meta_seq + 1,
            format!(
                "entry {} does not match the recorded chain head",
                meta_seq + 1
            ),
        )
    } else {
        ChainState::Intact
    };
    Ok(AuditReport { entries, state })
}
