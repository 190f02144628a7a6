//! Merging accounts found elsewhere (legacy files) into the vault:
//! matching, create / update / leave decisions, settings and selection
//! history, all in one transaction. A dry run executes the very same code
//! and rolls back, so the plan it reports is exactly what a real run does.
//!
//! Matching never compares plaintext with stored values: an account is
//! found by the keyed fingerprint of its provider-side account id, else of
//! its e-mail, else of its API key or refresh token.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::account_row::seal_row;
use super::accounts::{self, NewAccount, insert_account, set_needs_login};
use super::audit::{self, Event};
use super::credentials::{
    email_fingerprint, identity_fingerprint, read_credential, secret_fingerprint, write_credential,
};
use super::history::{HistoryEntry, merge_history, merge_settings};
use super::labels;
use super::{Keys, Store, now, time};
use crate::crypto::Place;
use crate::db::{Tx, args};
use crate::error::Result;
use crate::model::{Credential, CredentialKind, Identity, Provider};
use crate::store::during;

/// One account found in a source.
#[derive(Debug, Clone)]
pub struct MergeItem {
    /// Where it came from (a path), for the report and the audit log.
    pub source: String,
    /// The source's format name, for the audit log.
    pub format: String,
    /// Its provider.
    pub provider: Provider,
    /// What the source says about who it is.
    pub identity: Identity,
    /// Its credentials, one per kind.
    pub credentials: Vec<Credential>,
    /// The credential the source's tool used.
    pub active: CredentialKind,
    /// Label to give the account if it is created (default: `<provider>-<plan>`).
    pub label: Option<String>,
}

/// Everything to merge in one transaction.
#[derive(Debug, Clone, Default)]
pub struct MergeInput {
    /// Accounts, in order.
    pub items: Vec<MergeItem>,
    /// Settings to set (key, JSON value).
    pub settings: Vec<(String, serde_json::Value)>,
    /// Selection-history entries to record once.
    pub history: Vec<HistoryEntry>,
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeAction {
    /// A new account.
    Create,
    /// An existing account received newer or missing credentials or identity fields.
    Update,
    /// An existing account already held all of it (or newer).
    Unchanged,
}

/// The outcome of one item: no secret, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeOutcome {
    /// Source path.
    pub source: String,
    /// What happened.
    pub action: MergeAction,
    /// The account's label.
    pub label: String,
    /// Its provider.
    pub provider: Provider,
    /// Kinds of the credentials the item carried.
    pub credentials: Vec<CredentialKind>,
    /// The credential marked active.
    pub active: CredentialKind,
    /// E-mail, when known.
    pub email: Option<String>,
    /// Plan, when known.
    pub plan: Option<String>,
    /// What changed or was left, in words.
    pub changes: Vec<String>,
    /// Credential kinds for which the vault kept its own (newer) copy.
    pub kept: Vec<CredentialKind>,
}

/// What a merge did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeReport {
    /// One per item, in order.
    pub outcomes: Vec<MergeOutcome>,
    /// Settings whose value changed.
    pub settings_changed: Vec<String>,
    /// Selection-history entries recorded.
    pub history_added: usize,
}

/// How a vault credential compares with a given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialCheck {
    /// The vault holds exactly this credential.
    Same,
    /// The vault holds another credential of this kind.
    Different,
    /// The account has no credential of this kind.
    Missing,
}

/// Stored facts about a credential, for the newer-or-older decision.
pub(super) struct StoredCredential {
    secret_fp: Option<String>,
    last_refresh: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

pub(super) fn stored_credential(
    tx: &Tx<'_>,
    account: i64,
    kind: CredentialKind,
) -> Result<Option<StoredCredential>> {
    type Row = (i64, Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = tx
        .query_opt(
            "SELECT id, secret_fp, last_refresh, expires_at FROM credentials WHERE account_id = ?1 AND kind = ?2",
            args![account, kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
    let Some((id, secret_fp, last_refresh, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredCredential {
        secret_fp,
        last_refresh: time::decode_opt(last_refresh.as_deref(), "credentials", "last_refresh", id)?,
        expires_at: time::decode_opt(expires_at.as_deref(), "credentials", "expires_at", id)?,
    }))
}

/// Whether `source` is newer than `stored`: by refresh time when both have
/// one, else by expiry; with nothing to compare, it is not.
pub(super) fn is_newer(source: &Credential, stored: &StoredCredential) -> bool {
    let Credential::OAuth(t) = source else {
        return false;
    };
    // The stored times are to the microsecond: compare the source's likewise.
    match (t.last_refresh.map(time::canonical), stored.last_refresh) {
        (Some(a), Some(b)) if a != b => a > b,
        _ => match (t.expires_at.map(time::canonical), stored.expires_at) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        },
    }
}

pub(super) fn same_credential(a: &Credential, b: &Credential) -> bool {
    let opt = |s: &Option<secrecy::SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    match (a, b) {
        (Credential::ApiKey(a), Credential::ApiKey(b)) => a.expose_secret() == b.expose_secret(),
        (Credential::OAuth(a), Credential::OAuth(b)) => {
            a.access_token.expose_secret() == b.access_token.expose_secret()
                && opt(&a.refresh_token) == opt(&b.refresh_token)
                && opt(&a.id_token) == opt(&b.id_token)
        }
        _ => false,
    }
}

/// Finds the vault account an item describes.
fn find_match(tx: &Tx<'_>, keys: &Keys, item: &MergeItem) -> Result<Option<(i64, String)>> {
    let p = item.provider;
    let by = |sql: &str, fp: &str| -> Result<Option<(i64, String)>> {
        tx.query_opt(sql, args![p.as_str(), fp], |r| Ok((r.get(0)?, r.get(1)?)))
    };
    if let Some(id) = &item.identity.provider_account_id {
        let found = by(
            "SELECT id, label FROM accounts WHERE provider = ?1 AND identity_fp = ?2 ORDER BY id LIMIT 1",
            &identity_fingerprint(keys, p, id),
        )?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(email) = &item.identity.email {
        // An account known under another provider-side id is another account.
        let found = tx.query_opt(
            "SELECT id, label FROM accounts WHERE provider = ?1 AND email_fp = ?2
                   AND (identity_fp IS NULL OR ?3 IS NULL) ORDER BY id LIMIT 1",
            args![
                p.as_str(),
                email_fingerprint(keys, p, email),
                item.identity.provider_account_id.as_deref()
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if found.is_some() {
            return Ok(found);
        }
    }
    for credential in &item.credentials {
        let found = tx.query_opt(
            "SELECT a.id, a.label FROM credentials c JOIN accounts a ON a.id = c.account_id
                 WHERE a.provider = ?1 AND c.kind = ?2 AND c.secret_fp = ?3 ORDER BY a.id LIMIT 1",
            args![
                p.as_str(),
                credential.kind().as_str(),
                secret_fingerprint(keys, p, credential)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// `<provider>-<plan>` (or `<provider>-api-key`), numbered when taken.
fn default_label(tx: &Tx<'_>, item: &MergeItem) -> Result<String> {
    let tail = match (item.active, &item.identity.plan) {
        (CredentialKind::OAuth, Some(plan)) => plan.to_lowercase(),
        (CredentialKind::OAuth, None) => "subscription".to_owned(),
        (CredentialKind::ApiKey, _) => "api-key".to_owned(),
    };
    let tail: String = tail
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let base = format!("{}-{tail}", item.provider);
    labels::free_label(&base, |l| {
        tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE label = ?1)",
            args![l],
            |r| r.get(0),
        )
    })
}

fn import_event<'a>(
    id: i64,
    label: &'a str,
    item: &MergeItem,
    credential: &Credential,
    keys: &Keys,
    action: &str,
) -> Event<'a> {
    Event::new("credential.import")
        .account(id, label)
        .details(serde_json::json!({
            "source": item.source,
            "format": item.format,
            "kind": credential.kind(),
            "action": action,
            "fingerprint": secret_fingerprint(keys, item.provider, credential),
        }))
}

/// Fills identity fields the vault lacks; returns what it filled.
pub(crate) fn fill_identity(
    tx: &Tx<'_>,
    keys: &Keys,
    id: i64,
    item: &MergeItem,
) -> Result<Vec<String>> {
    let (has_email, has_account_id, plan, tier): (bool, bool, Option<String>, Option<String>) = tx.query_row(
        "SELECT email IS NOT NULL, provider_account_id IS NOT NULL, plan, rate_limit_tier FROM accounts WHERE id = ?1",
        args![id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let place = |column: &'static str| Place {
        table: "accounts",
        column,
        row: id,
        account: id,
    };
    let p = item.provider;
    let mut filled = Vec::new();
    if let (false, Some(email)) = (has_email, &item.identity.email) {
        tx.execute(
            "UPDATE accounts SET email = ?1, email_fp = ?2 WHERE id = ?3",
            args![
                keys.seal(&place("email"), email.as_bytes())?,
                email_fingerprint(keys, p, email),
                id
            ],
        )?;
        filled.push("added e-mail".to_owned());
    }
    if let (false, Some(aid)) = (has_account_id, &item.identity.provider_account_id) {
        tx.execute(
            "UPDATE accounts SET provider_account_id = ?1, identity_fp = ?2 WHERE id = ?3",
            args![
                keys.seal(&place("provider_account_id"), aid.as_bytes())?,
                identity_fingerprint(keys, p, aid),
                id
            ],
        )?;
        filled.push("added provider account id".to_owned());
    }
    if let (None, Some(new)) = (&plan, &item.identity.plan) {
        tx.execute(
            "UPDATE accounts SET plan = ?1 WHERE id = ?2",
            args![new, id],
        )?;
        filled.push(format!("added plan {new}"));
    }
    if let (None, Some(new)) = (&tier, &item.identity.rate_limit_tier) {
        tx.execute(
            "UPDATE accounts SET rate_limit_tier = ?1 WHERE id = ?2",
            args![new, id],
        )?;
        filled.push(format!("added rate-limit tier {new}"));
    }
    Ok(filled)
}

/// What to do with one credential of a matched account.
enum Decision {
    /// Write it; the words say why.
    Write(String),
    /// The vault holds exactly this.
    Same,
    /// The vault holds another, not older: keep it.
    Keep,
}

fn decide(
    tx: &Tx<'_>,
    keys: &Keys,
    id: i64,
    item: &MergeItem,
    credential: &Credential,
) -> Result<Decision> {
    let kind = credential.kind();
    let Some(stored) = stored_credential(tx, id, kind)? else {
        return Ok(Decision::Write(format!("added {kind} credential")));
    };
    if is_newer(credential, &stored) {
        return Ok(Decision::Write(format!(
            "{kind} credential updated: the source's is newer"
        )));
    }
    // The fingerprint covers the API key or refresh token only: compare the whole credential.
    let same = stored.secret_fp.as_deref()
        == Some(&secret_fingerprint(keys, item.provider, credential))
        && read_credential(tx, keys, id, kind)?.is_some_and(|s| same_credential(&s, credential));
    Ok(if same { Decision::Same } else { Decision::Keep })
}

fn merge_item(
    tx: &Tx<'_>,
    keys: &Keys,
    actor: audit::By<'_>,
    item: &MergeItem,
) -> Result<MergeOutcome> {
    let mut outcome = MergeOutcome {
        source: item.source.clone(),
        action: MergeAction::Unchanged,
        label: String::new(),
        provider: item.provider,
        credentials: item.credentials.iter().map(Credential::kind).collect(),
        active: item.active,
        email: item.identity.email.clone(),
        plan: item.identity.plan.clone(),
        changes: Vec::new(),
        kept: Vec::new(),
    };
    let Some((id, label)) = find_match(tx, keys, item)? else {
        let label = match &item.label {
            Some(l) => l.clone(),
            None => default_label(tx, item)?,
        };
        let (id, _) = insert_account(
            tx,
            keys,
            &NewAccount {
                provider: item.provider,
                label: label.clone(),
                identity: item.identity.clone(),
                credentials: item.credentials.clone(),
                active: item.active,
            },
        )?;
        for credential in &item.credentials {
            audit::append(
                tx,
                keys,
                actor,
                &import_event(id, &label, item, credential, keys, "create"),
            )?;
        }
        outcome.action = MergeAction::Create;
        outcome.label = label;
        return Ok(outcome);
    };
    outcome.label.clone_from(&label);
    let mut changed = false;
    for credential in &item.credentials {
        let kind = credential.kind();
        let decision = match decide(tx, keys, id, item, credential)? {
            Decision::Write(change) => Some(change),
            Decision::Same => None,
            Decision::Keep => {
                outcome.kept.push(kind);
                outcome.changes.push(format!(
                    "kept the vault's {kind} credential: the source's is not newer"
                ));
                None
            }
        };
        if let Some(change) = decision {
            write_credential(tx, keys, id, item.provider, credential)?;
            // A fresh credential revives an account whose login had died.
            set_needs_login(tx, id, false)?;
            audit::append(
                tx,
                keys,
                actor,
                &import_event(id, &label, item, credential, keys, "update"),
            )?;
            outcome.changes.push(change);
            changed = true;
        }
    }
    let filled = fill_identity(tx, keys, id, item)?;
    if !filled.is_empty() {
        changed = true;
        outcome.changes.extend(filled);
        audit::append(
            tx,
            keys,
            actor,
            &Event::new("account.update")
                .account(id, &label)
                .details(serde_json::json!({
                    "source": item.source, "changes": outcome.changes,
                })),
        )?;
    }
    if changed {
        tx.execute(
            "UPDATE accounts SET updated_at = ?1 WHERE id = ?2",
            args![now(), id],
        )?;
        seal_row(tx, keys, id)?;
        outcome.action = MergeAction::Update;
    }
    Ok(outcome)
}

impl Store {
    /// Merges `input` in one transaction. With `dry_run`, the same work is
    /// done and rolled back: the report is exactly what a real run does, and
    /// nothing is written to the vault file.
    ///
    /// # Errors
    /// Integrity and SQLite errors; nothing is written then.
    pub fn merge(&mut self, input: &MergeInput, dry_run: bool) -> Result<MergeReport> {
        during("merging imported accounts", || {
            let (tx, keys, actor) = self.write_tx()?;
            let mut report = MergeReport::default();
            for item in &input.items {
                report.outcomes.push(merge_item(&tx, keys, actor, item)?);
            }
            report.settings_changed = merge_settings(&tx, &input.settings)?;
            report.history_added = merge_history(&tx, keys, &input.history)?;
            if !report.settings_changed.is_empty() || report.history_added > 0 {
                audit::append(
                    &tx,
                    keys,
                    actor,
                    &Event::new("settings.import").details(serde_json::json!({
                        "settings": report.settings_changed, "history_added": report.history_added,
                    })),
                )?;
            }
            if dry_run {
                tx.rollback()?;
            } else {
                tx.commit()?;
            }
            Ok(report)
        })
    }

    /// Compares the vault's credential of `credential.kind()` in account
    /// `label` with `credential`, opening it but returning no secret. Used to
    /// verify an import by reading it back.
    ///
    /// # Errors
    /// `AccountNotFound`, `Integrity`, SQLite.
    pub fn check_credential(
        &mut self,
        label: &str,
        credential: &Credential,
    ) -> Result<CredentialCheck> {
        during("reading back an imported credential", || {
            let (tx, keys) = self.read_tx()?;
            let account = accounts::find_account(&tx, keys, label)?;
            let Some(stored) = read_credential(&tx, keys, account.id, credential.kind())? else {
                return Ok(CredentialCheck::Missing);
            };
            let same = same_credential(&stored, credential);
            Ok(if same {
                CredentialCheck::Same
            } else {
                CredentialCheck::Different
            })
        })
    }
}
