//! Single-flight refresh across processes, logout, and snapshots.
//!
//! A refresh token is single-use: two processes redeeming it log each other
//! out. So a process first takes a lease on the credential row in a
//! `BEGIN IMMEDIATE` transaction; only the holder calls the provider; it
//! writes the new tokens with a bumped generation in one transaction. Others
//! wait and re-read; a lease whose holder died simply expires.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::accounts::{AccountInfo, AccountSelector, find_account, resolve, set_needs_login};
use super::audit::{self, Event};
use super::credentials::{read_credential, write_credential};
use super::merge::{is_newer, same_credential, stored_credential};
use super::{Store, time};
use crate::db::args;
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Snapshot};
use crate::store::during;

/// The clear facts of an account's OAuth credential: enough to decide
/// whether to refresh, without opening a secret.
#[derive(Debug, Clone)]
pub struct OAuthState {
    /// The account.
    pub account: AccountInfo,
    /// Bumped by every write of new tokens.
    pub generation: i64,
    /// Access-token expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last refresh.
    pub last_refresh: Option<DateTime<Utc>>,
}

/// How OAuth tokens a client refreshed by itself compare with the vault's
/// (see [`Store::store_client_refresh`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientRefresh {
    /// They were newer and are now the vault's.
    Stored,
    /// They are the vault's own tokens.
    Same,
    /// The vault's are as new or newer: they were kept.
    Older,
}

/// The result of asking for the refresh lease.
#[derive(Debug)]
pub enum Lease {
    /// This process holds it; here are the tokens to refresh.
    Acquired(OAuthTokens),
    /// Another process holds it until then.
    Held(DateTime<Utc>),
    /// The tokens changed since they were looked at: read them again.
    Changed,
}

impl Store {
    /// The account a selector names and, when it holds one, its OAuth
    /// credential's clear state.
    ///
    /// # Errors
    /// Selection errors, SQLite.
    pub fn oauth_state(
        &mut self,
        selector: AccountSelector<'_>,
    ) -> Result<(AccountInfo, Option<OAuthState>)> {
        during("reading an OAuth credential's state", || {
            let (tx, keys) = self.read_tx()?;
            let account = resolve(&tx, keys, selector)?;
            let row: Option<(i64, i64, Option<String>, Option<String>)> = tx
            .query_opt(
                "SELECT id, generation, expires_at, last_refresh FROM credentials WHERE account_id = ?1 AND kind = 'oauth'",
                args![account.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let state = row
                .map(|(id, generation, expires, last)| -> Result<OAuthState> {
                    Ok(OAuthState {
                        account: account.clone(),
                        generation,
                        expires_at: time::decode_opt(
                            expires.as_deref(),
                            "credentials",
                            "expires_at",
                            id,
                        )?,
                        last_refresh: time::decode_opt(
                            last.as_deref(),
                            "credentials",
                            "last_refresh",
                            id,
                        )?,
                    })
                })
                .transpose()?;
            Ok((account, state))
        })
    }

    /// Takes the refresh lease of `label`'s OAuth credential for `holder`,
    /// unless its generation moved past `seen` or a live lease is held by
    /// another. The refresh token read is audited.
    ///
    /// # Errors
    /// `AccountNotFound`, `NoCredential`, `Integrity`, SQLite.
    pub fn take_refresh_lease(
        &mut self,
        label: &str,
        holder: &str,
        seen: i64,
        lease: Duration,
    ) -> Result<Lease> {
        during("taking the refresh lease", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let (id, generation, lease_holder, lease_until): (i64, i64, Option<String>, Option<String>) = tx
            .query_opt(
                "SELECT id, generation, lease_holder, lease_until FROM credentials WHERE account_id = ?1 AND kind = 'oauth'",
                args![account.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .ok_or_else(|| Error::NoCredential { label: label.to_owned(), kind: CredentialKind::OAuth })?;
            if generation != seen {
                return Ok(Lease::Changed);
            }
            let now_t = tx.now()?;
            if let Some(until) =
                time::decode_opt(lease_until.as_deref(), "credentials", "lease_until", id)?
                    .filter(|u| *u > now_t)
                && lease_holder.as_deref() != Some(holder)
            {
                return Ok(Lease::Held(until));
            }
            let until = now_t
                + chrono::Duration::from_std(lease)
                    .unwrap_or_else(|_| chrono::Duration::seconds(30));
            tx.execute(
            "UPDATE credentials SET lease_holder = ?1, lease_until = ?2 WHERE account_id = ?3 AND kind = 'oauth'",
            args![holder, time::encode(until), account.id],
        )?;
            let Some(Credential::OAuth(tokens)) =
                read_credential(&tx, keys, account.id, CredentialKind::OAuth)?
            else {
                return Err(Error::NoCredential {
                    label: label.to_owned(),
                    kind: CredentialKind::OAuth,
                });
            };
            audit::append(
            &tx,
            keys,
            actor,
            &Event::new("secret.read")
                .account(account.id, &account.label)
                .details(serde_json::json!({ "kind": "oauth", "purpose": "refresh", "generation": generation })),
        )?;
            tx.commit()?;
            Ok(Lease::Acquired(tokens))
        })
    }

    /// Writes refreshed tokens (generation bumped, lease cleared) and fills
    /// in a changed plan.
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn complete_refresh(
        &mut self,
        label: &str,
        tokens: &OAuthTokens,
        identity: &Identity,
    ) -> Result<()> {
        during("storing refreshed tokens", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let fp = write_credential(
                &tx,
                keys,
                account.id,
                account.provider,
                &Credential::OAuth(tokens.clone()),
            )?;
            if let Some(plan) = identity
                .plan
                .as_ref()
                .filter(|p| Some(*p) != account.plan.as_ref())
            {
                tx.execute(
                    "UPDATE accounts SET plan = ?1 WHERE id = ?2",
                    args![plan, account.id],
                )?;
            }
            set_needs_login(&tx, account.id, false)?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("credential.refresh")
                    .account(account.id, &account.label)
                    .details(
                        serde_json::json!({ "fingerprint": fp, "expires_at": tokens.expires_at }),
                    ),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Stores OAuth tokens that a client refreshed by itself (Codex writes
    /// them to its `auth.json`) when they are newer than the vault's: by last
    /// refresh, else by access-token expiry. Compared and written in one
    /// transaction, with one `credential.writeback` audit entry naming the
    /// client; equal or older tokens change nothing. The caller checks first
    /// that the tokens belong to the account.
    ///
    /// # Errors
    /// `AccountNotFound`, `NoCredential` (the account holds no OAuth
    /// tokens), `Integrity`, SQLite.
    pub fn store_client_refresh(
        &mut self,
        label: &str,
        tokens: &OAuthTokens,
        client: &str,
    ) -> Result<ClientRefresh> {
        during("storing tokens a client refreshed", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let no_credential = || Error::NoCredential {
                label: label.to_owned(),
                kind: CredentialKind::OAuth,
            };
            let stored = read_credential(&tx, keys, account.id, CredentialKind::OAuth)?
                .ok_or_else(no_credential)?;
            let facts = stored_credential(&tx, account.id, CredentialKind::OAuth)?
                .ok_or_else(no_credential)?;
            let given = Credential::OAuth(tokens.clone());
            if same_credential(&given, &stored) {
                return Ok(ClientRefresh::Same);
            }
            if !is_newer(&given, &facts) {
                return Ok(ClientRefresh::Older);
            }
            let fp = write_credential(&tx, keys, account.id, account.provider, &given)?;
            set_needs_login(&tx, account.id, false)?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("credential.writeback")
                    .account(account.id, &account.label)
                    .details(serde_json::json!({
                        "client": client, "fingerprint": fp, "expires_at": tokens.expires_at,
                    })),
            )?;
            tx.commit()?;
            Ok(ClientRefresh::Stored)
        })
    }

    /// Records a failed refresh: clears this holder's lease and, when the
    /// failure is permanent, marks the account as needing a new login.
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn fail_refresh(
        &mut self,
        label: &str,
        holder: &str,
        permanent: bool,
        reason: &str,
    ) -> Result<()> {
        during("recording a failed refresh", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            tx.execute(
                "UPDATE credentials SET lease_holder = NULL, lease_until = NULL
             WHERE account_id = ?1 AND kind = 'oauth' AND lease_holder = ?2",
                args![account.id, holder],
            )?;
            if permanent {
                set_needs_login(&tx, account.id, true)?;
            }
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("credential.refresh")
                    .account(account.id, &account.label)
                    .outcome(if permanent {
                        "failed: needs login"
                    } else {
                        "failed"
                    })
                    .details(serde_json::json!({ "reason": reason })),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Logout: deletes an account's OAuth tokens (the account stays, marked
    /// as needing a login).
    ///
    /// # Errors
    /// `AccountNotFound`, `NoCredential`, SQLite.
    pub fn remove_oauth(&mut self, label: &str) -> Result<AccountInfo> {
        during("removing an OAuth credential", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let n = tx.execute(
                "DELETE FROM credentials WHERE account_id = ?1 AND kind = 'oauth'",
                args![account.id],
            )?;
            if n == 0 {
                return Err(Error::NoCredential {
                    label: label.to_owned(),
                    kind: CredentialKind::OAuth,
                });
            }
            if account.kind == CredentialKind::OAuth {
                set_needs_login(&tx, account.id, true)?;
            }
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("credential.remove")
                    .account(account.id, label)
                    .details(serde_json::json!({ "kind": "oauth" })),
            )?;
            let info = find_account(&tx, keys, label)?;
            tx.commit()?;
            Ok(info)
        })
    }

    /// Stores a snapshot for an account.
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn save_snapshot(&mut self, label: &str, snapshot: &Snapshot) -> Result<()> {
        during("saving a usage snapshot", || {
            let (tx, keys, _) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let source = snapshot.source.as_str().to_owned();
            tx.execute(
            "INSERT INTO subscription_snapshots (account_id, fetched_at, source, snapshot) VALUES (?1, ?2, ?3, ?4)",
            args![account.id, time::encode(snapshot.fetched_at), source, serde_json::to_string(snapshot).expect("snapshot serializes")],
        )?;
            // Keep the history bounded: the latest 100 per account.
            tx.execute(
            "DELETE FROM subscription_snapshots WHERE account_id = ?1 AND id NOT IN
               (SELECT id FROM subscription_snapshots WHERE account_id = ?1 ORDER BY fetched_at DESC, id DESC LIMIT 100)",
            args![account.id],
        )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The newest snapshot of every account that has one, by account id
    /// (one query, for gathering selection candidates).
    ///
    /// # Errors
    /// SQLite.
    pub fn latest_snapshots(&mut self) -> Result<BTreeMap<i64, Snapshot>> {
        during("reading the latest usage snapshots", || {
            let (tx, _) = self.read_tx()?;
            let mut out = BTreeMap::new();
            tx.for_each_row(
                "SELECT account_id, snapshot FROM (
                     SELECT account_id, snapshot, row_number() OVER (
                         PARTITION BY account_id ORDER BY fetched_at DESC, id DESC) AS newest
                     FROM subscription_snapshots) AS latest
                 WHERE newest = 1",
                &[],
                |r| {
                    let text: String = r.get(1)?;
                    if let Ok(snapshot) = serde_json::from_str(&text) {
                        out.insert(r.get(0)?, snapshot);
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
    }

    /// The newest stored snapshot of an account.
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn latest_snapshot(&mut self, label: &str) -> Result<Option<Snapshot>> {
        during("reading the latest usage snapshot", || {
            let (tx, keys) = self.read_tx()?;
            let account = find_account(&tx, keys, label)?;
            let text: Option<String> = tx
            .query_opt(
                "SELECT snapshot FROM subscription_snapshots WHERE account_id = ?1 ORDER BY fetched_at DESC, id DESC LIMIT 1",
                args![account.id],
                |r| r.get(0),
            )?;
            Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
        })
    }
}
