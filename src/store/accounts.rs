//! Accounts: adding, listing, selecting, renaming, enabling and removing
//! them. Every public method that changes one is one transaction with
//! exactly one audit entry. Their credentials are in `credentials.rs`, the
//! row MAC in `account_row.rs`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::ops::ControlFlow;

use super::account_row::{SELECT_ACCOUNT, account_place, read_account, seal_row};
use super::audit::{self, Event};
use super::credentials::{email_fingerprint, identity_fingerprint, write_credential};
use super::{Keys, Store, now};
use crate::db::{Tx, args};
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Identity, Provider};
use crate::store::during;

/// A new account to store.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Its provider.
    pub provider: Provider,
    /// Unique, user-chosen name (stored in the clear; see SECURITY.md).
    pub label: String,
    /// Who it is at the provider.
    pub identity: Identity,
    /// One credential per kind.
    pub credentials: Vec<Credential>,
    /// The credential handed out by default.
    pub active: CredentialKind,
}

/// An account as listed: no secret, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    /// Row id.
    pub id: i64,
    /// Unique label.
    pub label: String,
    /// Provider.
    pub provider: Provider,
    /// The active credential's kind.
    pub kind: CredentialKind,
    /// Kinds of the credentials held.
    pub credentials: Vec<CredentialKind>,
    /// Login e-mail, when known.
    pub email: Option<String>,
    /// Provider-side account id, when known.
    pub provider_account_id: Option<String>,
    /// Plan or tier.
    pub plan: Option<String>,
    /// Claude rate-limit tier.
    pub rate_limit_tier: Option<String>,
    /// Selection priority (higher first).
    pub priority: i64,
    /// Whether it may be used.
    pub enabled: bool,
    /// Whether its login died and must be redone.
    pub needs_login: bool,
    /// Access-token expiry of its OAuth credential.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was added.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

/// Which account a caller wants: by label, or the single one of a provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountSelector<'a> {
    /// The account's label.
    pub label: Option<&'a str>,
    /// Restrict to one provider.
    pub provider: Option<Provider>,
}

/// Checks a label: 1–64 characters of `A–Z a–z 0–9 . _ - @ +`, starting with
/// a letter or digit.
///
/// # Errors
/// [`Error::InvalidLabel`] saying why.
pub fn check_label(label: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidLabel {
            // Shown in the error: at most 80 characters, control characters escaped.
            label: crate::terminal::escape(&label.chars().take(80).collect::<String>())
                .into_owned(),
            reason,
        })
    };
    if label.is_empty() || label.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    if !label.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit");
    }
    if !label
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c))
    {
        return bad("may contain only letters, digits and . _ - @ +");
    }
    Ok(())
}

fn all_accounts(conn: &Tx<'_>, keys: &Keys) -> Result<Vec<AccountInfo>> {
    let mut out = Vec::new();
    conn.for_each_row(
        &format!("{SELECT_ACCOUNT} ORDER BY a.provider, a.label"),
        &[],
        |row| {
            out.push(read_account(keys, row)?);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

pub(crate) fn find_account(conn: &Tx<'_>, keys: &Keys, label: &str) -> Result<AccountInfo> {
    if let Some(found) = conn.query_opt(
        &format!("{SELECT_ACCOUNT} WHERE a.label = ?1"),
        args![label],
        |row| read_account(keys, row),
    )? {
        return Ok(found);
    }
    let known = conn.query_map("SELECT label FROM accounts ORDER BY label", &[], |r| {
        r.get(0)
    })?;
    Err(Error::AccountNotFound {
        label: label.to_owned(),
        known,
    })
}

pub(crate) fn resolve(
    conn: &Tx<'_>,
    keys: &Keys,
    selector: AccountSelector<'_>,
) -> Result<AccountInfo> {
    if let Some(label) = selector.label {
        let account = find_account(conn, keys, label)?;
        if selector.provider.is_some_and(|p| p != account.provider) {
            return Err(Error::InvalidInput {
                what: format!("account `{label}`"),
                reason: format!(
                    "it is a {} account, not {}",
                    account.provider,
                    selector.provider.map_or("", Provider::as_str)
                ),
            });
        }
        return Ok(account);
    }
    let what = selector
        .provider
        .map_or_else(|| "the vault".to_owned(), |p| p.to_string());
    let mut candidates: Vec<AccountInfo> = all_accounts(conn, keys)?
        .into_iter()
        .filter(|a| a.enabled && selector.provider.is_none_or(|p| p == a.provider))
        .collect();
    match candidates.len() {
        0 => Err(Error::NoAccounts { what }),
        1 => Ok(candidates.remove(0)),
        _ => Err(Error::AmbiguousAccount {
            what,
            candidates: candidates.into_iter().map(|a| a.label).collect(),
        }),
    }
}

/// Sets or clears an account's "needs a new login" mark.
pub(crate) fn set_needs_login(tx: &Tx<'_>, id: i64, needs: bool) -> Result<()> {
    tx.execute(
        "UPDATE accounts SET needs_login = ?1, updated_at = ?2 WHERE id = ?3",
        args![needs, now(), id],
    )?;
    Ok(())
}

/// Inserts an account with its identity and credentials; returns its id.
pub(crate) fn insert_account(
    tx: &Tx<'_>,
    keys: &Keys,
    new: &NewAccount,
) -> Result<(i64, Vec<String>)> {
    check_label(&new.label)?;
    if !new.credentials.iter().any(|c| c.kind() == new.active) {
        return Err(Error::InvalidInput {
            what: format!("account `{}`", new.label),
            reason: format!(
                "the active credential kind `{}` is not among its credentials",
                new.active
            ),
        });
    }
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE label = ?1)",
        args![&new.label],
        |r| r.get(0),
    )?;
    if taken {
        return Err(Error::LabelTaken(new.label.clone()));
    }
    let now = now();
    let p = new.provider;
    let ident = &new.identity;
    let id: i64 = tx.query_row(
        "INSERT INTO accounts (provider, label, kind, identity_fp, email_fp, plan, rate_limit_tier, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
        args![
            p.as_str(),
            new.label,
            new.active.as_str(),
            ident.provider_account_id.as_deref().map(|a| identity_fingerprint(keys, p, a)),
            ident.email.as_deref().map(|e| email_fingerprint(keys, p, e)),
            ident.plan,
            ident.rate_limit_tier,
            now
        ],
        |r| r.get(0),
    )?;
    let email = ident
        .email
        .as_deref()
        .map(|e| keys.seal(&account_place("email", id), e.as_bytes()))
        .transpose()?;
    let pid = ident
        .provider_account_id
        .as_deref()
        .map(|a| keys.seal(&account_place("provider_account_id", id), a.as_bytes()))
        .transpose()?;
    tx.execute(
        "UPDATE accounts SET email = ?1, provider_account_id = ?2 WHERE id = ?3",
        args![email, pid, id],
    )?;
    seal_row(tx, keys, id)?;
    let mut fps = Vec::new();
    for credential in &new.credentials {
        fps.push(write_credential(tx, keys, id, p, credential)?);
    }
    Ok((id, fps))
}

impl Store {
    /// Adds an account (one transaction, one `account.create` audit entry).
    ///
    /// # Errors
    /// `InvalidLabel`, `LabelTaken`, `InvalidInput`, SQLite.
    pub fn add_account(&mut self, new: &NewAccount) -> Result<AccountInfo> {
        during("adding an account", || {
            let (tx, keys, actor) = self.write_tx()?;
            let (id, fingerprints) = insert_account(&tx, keys, new)?;
            let kinds: Vec<_> = new.credentials.iter().map(Credential::kind).collect();
            audit::append(
            &tx,
            keys,
            actor,
            &Event::new("account.create").account(id, &new.label).details(serde_json::json!({
                "provider": new.provider, "credentials": kinds, "active": new.active, "fingerprints": fingerprints,
            })),
        )?;
            let info = find_account(&tx, keys, &new.label)?;
            tx.commit()?;
            Ok(info)
        })
    }

    /// Every account, by provider then label. Opens e-mail and account ids
    /// (identifying, not secret); reads no credential.
    ///
    /// # Errors
    /// `Integrity` when a sealed identity field was altered; SQLite.
    pub fn accounts(&mut self) -> Result<Vec<AccountInfo>> {
        during("listing accounts", || {
            let (tx, keys) = self.read_tx()?;
            all_accounts(&tx, keys)
        })
    }

    /// One account by label.
    ///
    /// # Errors
    /// `AccountNotFound` listing the labels that exist.
    pub fn account(&mut self, label: &str) -> Result<AccountInfo> {
        during("reading an account", || {
            let (tx, keys) = self.read_tx()?;
            find_account(&tx, keys, label)
        })
    }

    /// The account a selector names (by label, or the single enabled account
    /// of a provider), without reading any secret.
    ///
    /// # Errors
    /// `AccountNotFound`, `AmbiguousAccount`, `NoAccounts`.
    pub fn select(&mut self, selector: AccountSelector<'_>) -> Result<AccountInfo> {
        during("selecting an account", || {
            let (tx, keys) = self.read_tx()?;
            resolve(&tx, keys, selector)
        })
    }

    /// Renames an account.
    ///
    /// # Errors
    /// `AccountNotFound`, `InvalidLabel`, `LabelTaken`.
    pub fn rename_account(&mut self, label: &str, new_label: &str) -> Result<AccountInfo> {
        during("renaming an account", || {
            check_label(new_label)?;
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE label = ?1)",
                args![new_label],
                |r| r.get(0),
            )?;
            if taken {
                return Err(Error::LabelTaken(new_label.to_owned()));
            }
            tx.execute(
                "UPDATE accounts SET label = ?1, updated_at = ?2 WHERE id = ?3",
                args![new_label, now(), account.id],
            )?;
            seal_row(&tx, keys, account.id)?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("account.rename")
                    .account(account.id, new_label)
                    .details(serde_json::json!({ "from": label, "to": new_label })),
            )?;
            let info = find_account(&tx, keys, new_label)?;
            tx.commit()?;
            Ok(info)
        })
    }

    /// Enables or disables an account.
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn set_enabled(&mut self, label: &str, enabled: bool) -> Result<AccountInfo> {
        during("enabling or disabling an account", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            tx.execute(
                "UPDATE accounts SET enabled = ?1, updated_at = ?2 WHERE id = ?3",
                args![enabled, now(), account.id],
            )?;
            seal_row(&tx, keys, account.id)?;
            let action = if enabled {
                "account.enable"
            } else {
                "account.disable"
            };
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new(action).account(account.id, label),
            )?;
            let info = find_account(&tx, keys, label)?;
            tx.commit()?;
            Ok(info)
        })
    }

    /// Removes an account and its credentials (sealed values are zeroed on
    /// disk by `secure_delete`).
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn remove_account(&mut self, label: &str) -> Result<AccountInfo> {
        during("removing an account", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            tx.execute("DELETE FROM accounts WHERE id = ?1", args![account.id])?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("account.remove")
                    .account(account.id, label)
                    .details(serde_json::json!({ "provider": account.provider })),
            )?;
            tx.commit()?;
            Ok(account)
        })
    }
}
