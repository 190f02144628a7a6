//! Accounts and the credentials they hold. Every public method is one
//! transaction with exactly one audit entry; secrets are sealed here and
//! opened here, nowhere else.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::audit::{self, Event};
use super::merge::{self, MergeItem};
use super::{Keys, Store, now, time};
use crate::crypto::Place;
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};

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

/// A secret handed out, with the account it belongs to.
#[derive(Debug)]
pub struct Token {
    /// The account.
    pub account: AccountInfo,
    /// Which credential it is.
    pub kind: CredentialKind,
    /// The API key or access token.
    pub secret: SecretString,
    /// When it expires (OAuth), if known.
    pub expires_at: Option<DateTime<Utc>>,
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

const COLUMNS: [&str; 4] = ["api_key", "access_token", "refresh_token", "id_token"];

fn place(column: &'static str, row: i64, account: i64) -> Place<'static> {
    Place {
        table: "credentials",
        column,
        row,
        account,
    }
}

fn account_place(column: &'static str, id: i64) -> Place<'static> {
    Place {
        table: "accounts",
        column,
        row: id,
        account: id,
    }
}

/// The keyed fingerprint of the secret that identifies a credential: the API
/// key, or the refresh token (the access token when there is none).
pub(crate) fn secret_fingerprint(
    keys: &Keys,
    provider: Provider,
    credential: &Credential,
) -> String {
    let value = match credential {
        Credential::ApiKey(key) => key.expose_secret(),
        Credential::OAuth(t) => t
            .refresh_token
            .as_ref()
            .unwrap_or(&t.access_token)
            .expose_secret(),
    };
    keys.fingerprint(&[
        b"secret",
        provider.as_str().as_bytes(),
        credential.kind().as_str().as_bytes(),
        value.as_bytes(),
    ])
}

pub(crate) fn identity_fingerprint(keys: &Keys, provider: Provider, account_id: &str) -> String {
    keys.fingerprint(&[
        b"identity",
        provider.as_str().as_bytes(),
        account_id.as_bytes(),
    ])
}

pub(crate) fn email_fingerprint(keys: &Keys, provider: Provider, email: &str) -> String {
    keys.fingerprint(&[
        b"email",
        provider.as_str().as_bytes(),
        email.trim().to_lowercase().as_bytes(),
    ])
}

/// Inserts or replaces the credential of `credential.kind()` for an account;
/// bumps its generation. Returns the credential's fingerprint.
pub(crate) fn write_credential(
    tx: &Transaction<'_>,
    keys: &Keys,
    account_id: i64,
    provider: Provider,
    credential: &Credential,
) -> Result<String> {
    let kind = credential.kind();
    let fp = secret_fingerprint(keys, provider, credential);
    let (expires, scopes, last_refresh) = match credential {
        Credential::ApiKey(_) => (None, None, None),
        Credential::OAuth(t) => (
            t.expires_at.map(time::encode),
            Some(t.scopes.join(" ")),
            t.last_refresh.map(time::encode),
        ),
    };
    let now = now();
    let id: i64 = tx.query_row(
        "INSERT INTO credentials (account_id, kind, secret_fp, expires_at, scopes, last_refresh, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (account_id, kind) DO UPDATE SET
           secret_fp = excluded.secret_fp, expires_at = excluded.expires_at, scopes = excluded.scopes,
           last_refresh = excluded.last_refresh, updated_at = excluded.updated_at,
           generation = generation + 1, lease_holder = NULL, lease_until = NULL
         RETURNING id",
        params![account_id, kind.as_str(), fp, expires, scopes, last_refresh, now],
        |r| r.get(0),
    )?;
    let values: [Option<&SecretString>; 4] = match credential {
        Credential::ApiKey(key) => [Some(key), None, None, None],
        Credential::OAuth(t) => [
            None,
            Some(&t.access_token),
            t.refresh_token.as_ref(),
            t.id_token.as_ref(),
        ],
    };
    for (column, value) in COLUMNS.into_iter().zip(values) {
        let sealed = value
            .map(|v| keys.seal(&place(column, id, account_id), v.expose_secret().as_bytes()))
            .transpose()?;
        tx.execute(
            &format!("UPDATE credentials SET {column} = ?1 WHERE id = ?2"),
            params![sealed, id],
        )?;
    }
    Ok(fp)
}

/// Opens the credential of `kind` of an account, if it has one.
pub(crate) fn read_credential(
    conn: &Connection,
    keys: &Keys,
    account_id: i64,
    kind: CredentialKind,
) -> Result<Option<Credential>> {
    type Row = (
        i64,
        [Option<Vec<u8>>; 4],
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT id, api_key, access_token, refresh_token, id_token, expires_at, scopes, last_refresh
             FROM credentials WHERE account_id = ?1 AND kind = ?2",
            params![account_id, kind.as_str()],
            |r| Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?], r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .optional()?;
    let Some((id, sealed, expires, scopes, last_refresh)) = row else {
        return Ok(None);
    };
    let [api_key, access, refresh, id_token] = sealed;
    let open = |column: &'static str, v: Option<Vec<u8>>| {
        v.map(|v| keys.open_secret(&place(column, id, account_id), &v))
            .transpose()
    };
    let missing = |column: &'static str| Error::Malformed {
        table: "credentials",
        column,
        row: id,
        reason: "value missing for this credential kind",
    };
    Ok(Some(match kind {
        CredentialKind::ApiKey => {
            Credential::ApiKey(open("api_key", api_key)?.ok_or_else(|| missing("api_key"))?)
        }
        CredentialKind::OAuth => Credential::OAuth(OAuthTokens {
            access_token: open("access_token", access)?.ok_or_else(|| missing("access_token"))?,
            refresh_token: open("refresh_token", refresh)?,
            id_token: open("id_token", id_token)?,
            expires_at: time::decode_opt(expires.as_deref(), "credentials", "expires_at", id)?,
            scopes: scopes
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            last_refresh: time::decode_opt(
                last_refresh.as_deref(),
                "credentials",
                "last_refresh",
                id,
            )?,
        }),
    }))
}

const SELECT_ACCOUNT: &str =
    "SELECT a.id, a.provider, a.label, a.kind, a.email, a.provider_account_id, a.plan,
        a.rate_limit_tier, a.priority, a.enabled, a.needs_login, a.created_at, a.updated_at,
        (SELECT group_concat(kind, ' ') FROM credentials c WHERE c.account_id = a.id),
        (SELECT expires_at FROM credentials c WHERE c.account_id = a.id AND c.kind = 'oauth'),
        a.row_mac,
        (SELECT id FROM credentials c WHERE c.account_id = a.id AND c.kind = 'oauth')
        FROM accounts a";

fn row_mac_parts(id: i64, provider: &str, label: &str, kind: &str, enabled: bool) -> [Vec<u8>; 5] {
    [
        id.to_be_bytes().to_vec(),
        provider.as_bytes().to_vec(),
        label.as_bytes().to_vec(),
        kind.as_bytes().to_vec(),
        vec![u8::from(enabled)],
    ]
}

/// Recomputes the MAC over an account row's clear columns (id, provider,
/// label, kind, enabled) after any change to them. Without it, swapping two
/// labels with plain SQL would hand out the other account's secret.
pub(crate) fn seal_row(tx: &Transaction<'_>, keys: &Keys, id: i64) -> Result<()> {
    let (provider, label, kind, enabled): (String, String, String, bool) = tx.query_row(
        "SELECT provider, label, kind, enabled FROM accounts WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let parts = row_mac_parts(id, &provider, &label, &kind, enabled);
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    tx.execute(
        "UPDATE accounts SET row_mac = ?1 WHERE id = ?2",
        params![keys.rows.mac(&refs), id],
    )?;
    Ok(())
}

fn read_account(keys: &Keys, r: &rusqlite::Row<'_>) -> Result<AccountInfo> {
    let id: i64 = r.get(0)?;
    let mac: Option<Vec<u8>> = r.get(15)?;
    let parts = row_mac_parts(
        id,
        &r.get::<_, String>(1)?,
        &r.get::<_, String>(2)?,
        &r.get::<_, String>(3)?,
        r.get(9)?,
    );
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    if !mac.is_some_and(|m| keys.rows.verify_mac(&refs, &m)) {
        return Err(Error::Malformed {
            table: "accounts",
            column: "row_mac",
            row: id,
            reason: "provider, label, kind or enabled was changed outside authvault; the vault was tampered with",
        });
    }
    let text = |column: &'static str, v: Option<Vec<u8>>| -> Result<Option<String>> {
        v.map(|v| {
            keys.open_secret(&account_place(column, id), &v)
                .map(|s| s.expose_secret().to_owned())
        })
        .transpose()
    };
    let provider: String = r.get(1)?;
    let kind: String = r.get(3)?;
    let kinds: Option<String> = r.get(13)?;
    let mut credentials: Vec<CredentialKind> = kinds
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|k| k.parse().ok())
        .collect();
    credentials.sort();
    Ok(AccountInfo {
        id,
        provider: provider
            .parse()
            .map_err(|_| malformed_row(id, "provider"))?,
        label: r.get(2)?,
        kind: kind.parse().map_err(|_| malformed_row(id, "kind"))?,
        credentials,
        email: text("email", r.get(4)?)?,
        provider_account_id: text("provider_account_id", r.get(5)?)?,
        plan: r.get(6)?,
        rate_limit_tier: r.get(7)?,
        priority: r.get(8)?,
        enabled: r.get(9)?,
        needs_login: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        expires_at: time::decode_opt(
            r.get::<_, Option<String>>(14)?.as_deref(),
            "credentials",
            "expires_at",
            r.get::<_, Option<i64>>(16)?.unwrap_or_default(),
        )?,
    })
}

const fn malformed_row(id: i64, column: &'static str) -> Error {
    Error::Malformed {
        table: "accounts",
        column,
        row: id,
        reason: "unknown value",
    }
}

fn all_accounts(conn: &Connection, keys: &Keys) -> Result<Vec<AccountInfo>> {
    let mut stmt = conn.prepare(&format!("{SELECT_ACCOUNT} ORDER BY a.provider, a.label"))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_account(keys, row)?);
    }
    Ok(out)
}

pub(crate) fn find_account(conn: &Connection, keys: &Keys, label: &str) -> Result<AccountInfo> {
    let mut stmt = conn.prepare(&format!("{SELECT_ACCOUNT} WHERE a.label = ?1"))?;
    let mut rows = stmt.query([label])?;
    if let Some(row) = rows.next()? {
        return read_account(keys, row);
    }
    let mut stmt = conn.prepare("SELECT label FROM accounts ORDER BY label")?;
    let known = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Err(Error::AccountNotFound {
        label: label.to_owned(),
        known,
    })
}

pub(crate) fn resolve(
    conn: &Connection,
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
pub(crate) fn set_needs_login(tx: &Transaction<'_>, id: i64, needs: bool) -> Result<()> {
    tx.execute(
        "UPDATE accounts SET needs_login = ?1, updated_at = ?2 WHERE id = ?3",
        params![needs, now(), id],
    )?;
    Ok(())
}

/// Inserts an account with its identity and credentials; returns its id.
pub(crate) fn insert_account(
    tx: &Transaction<'_>,
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
        [&new.label],
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
        params![
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
        params![email, pid, id],
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
    }

    /// Stores `credential` in an existing account, replacing one of the same
    /// kind (one `credential.write` audit entry).
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn set_credential(&mut self, label: &str, credential: &Credential) -> Result<AccountInfo> {
        let (tx, keys, actor) = self.write_tx()?;
        let account = find_account(&tx, keys, label)?;
        let fp = write_credential(&tx, keys, account.id, account.provider, credential)?;
        set_needs_login(&tx, account.id, false)?;
        audit::append(
            &tx,
            keys,
            actor,
            &Event::new("credential.write")
                .account(account.id, &account.label)
                .details(serde_json::json!({ "kind": credential.kind(), "fingerprint": fp })),
        )?;
        let info = find_account(&tx, keys, label)?;
        tx.commit()?;
        Ok(info)
    }

    /// Stores a new login's `credential` in an existing account and records
    /// the identity fields the account lacks from `identity`, in one
    /// transaction with one `credential.write` audit entry (its details list
    /// what was recorded). `check` sees the account as this transaction reads
    /// it and can refuse (another provider, a different identity): then
    /// nothing is written. Returns the account and what was recorded.
    ///
    /// # Errors
    /// `AccountNotFound`, whatever `check` returns, SQLite.
    pub fn store_login(
        &mut self,
        label: &str,
        credential: &Credential,
        identity: &Identity,
        check: impl FnOnce(&AccountInfo) -> Result<()>,
    ) -> Result<(AccountInfo, Vec<String>)> {
        let (tx, keys, actor) = self.write_tx()?;
        let account = find_account(&tx, keys, label)?;
        check(&account)?;
        let fp = write_credential(&tx, keys, account.id, account.provider, credential)?;
        set_needs_login(&tx, account.id, false)?;
        let item = MergeItem {
            source: String::new(),
            format: String::new(),
            provider: account.provider,
            identity: identity.clone(),
            credentials: Vec::new(),
            active: account.kind,
            label: None,
        };
        let recorded = merge::fill_identity(&tx, keys, account.id, &item)?;
        audit::append(
            &tx,
            keys,
            actor,
            &Event::new("credential.write")
                .account(account.id, &account.label)
                .details(serde_json::json!({
                    "kind": credential.kind(), "fingerprint": fp, "identity_recorded": recorded,
                })),
        )?;
        let info = find_account(&tx, keys, label)?;
        tx.commit()?;
        Ok((info, recorded))
    }

    /// Every account, by provider then label. Opens e-mail and account ids
    /// (identifying, not secret); reads no credential.
    ///
    /// # Errors
    /// `Integrity` when a sealed identity field was altered; SQLite.
    pub fn accounts(&mut self) -> Result<Vec<AccountInfo>> {
        let (tx, keys) = self.read_tx()?;
        all_accounts(&tx, keys)
    }

    /// One account by label.
    ///
    /// # Errors
    /// `AccountNotFound` listing the labels that exist.
    pub fn account(&mut self, label: &str) -> Result<AccountInfo> {
        let (tx, keys) = self.read_tx()?;
        find_account(&tx, keys, label)
    }

    /// The account a selector names (by label, or the single enabled account
    /// of a provider), without reading any secret.
    ///
    /// # Errors
    /// `AccountNotFound`, `AmbiguousAccount`, `NoAccounts`.
    pub fn select(&mut self, selector: AccountSelector<'_>) -> Result<AccountInfo> {
        let (tx, keys) = self.read_tx()?;
        resolve(&tx, keys, selector)
    }

    /// Renames an account.
    ///
    /// # Errors
    /// `AccountNotFound`, `InvalidLabel`, `LabelTaken`.
    pub fn rename_account(&mut self, label: &str, new_label: &str) -> Result<AccountInfo> {
        check_label(new_label)?;
        let (tx, keys, actor) = self.write_tx()?;
        let account = find_account(&tx, keys, label)?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE label = ?1)",
            [new_label],
            |r| r.get(0),
        )?;
        if taken {
            return Err(Error::LabelTaken(new_label.to_owned()));
        }
        tx.execute(
            "UPDATE accounts SET label = ?1, updated_at = ?2 WHERE id = ?3",
            params![new_label, now(), account.id],
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
    }

    /// Enables or disables an account.
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn set_enabled(&mut self, label: &str, enabled: bool) -> Result<AccountInfo> {
        let (tx, keys, actor) = self.write_tx()?;
        let account = find_account(&tx, keys, label)?;
        tx.execute(
            "UPDATE accounts SET enabled = ?1, updated_at = ?2 WHERE id = ?3",
            params![enabled, now(), account.id],
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
    }

    /// Removes an account and its credentials (sealed values are zeroed on
    /// disk by `secure_delete`).
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn remove_account(&mut self, label: &str) -> Result<AccountInfo> {
        let (tx, keys, actor) = self.write_tx()?;
        let account = find_account(&tx, keys, label)?;
        tx.execute("DELETE FROM accounts WHERE id = ?1", [account.id])?;
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
    }

    /// Reads one credential of an account: a secret read, audited in the same
    /// transaction; if the audit entry cannot be written, nothing is returned.
    ///
    /// # Errors
    /// `AccountNotFound`, `NoCredential`, `Integrity`, SQLite.
    pub fn credential(
        &mut self,
        label: &str,
        kind: CredentialKind,
        purpose: &str,
    ) -> Result<(AccountInfo, Credential)> {
        let (tx, keys, actor) = self.write_tx()?;
        let account = find_account(&tx, keys, label)?;
        let credential =
            read_credential(&tx, keys, account.id, kind)?.ok_or_else(|| Error::NoCredential {
                label: label.to_owned(),
                kind,
            })?;
        audit::append(
            &tx,
            keys,
            actor,
            &Event::new("secret.read").account(account.id, &account.label).details(serde_json::json!({
                "kind": kind, "purpose": purpose, "fingerprint": secret_fingerprint(keys, account.provider, &credential),
            })),
        )?;
        tx.commit()?;
        Ok((account, credential))
    }

    /// The secret an agent should use: the API key or the access token of the
    /// selected account's active credential. Audited like [`Store::credential`].
    ///
    /// # Errors
    /// `AccountNotFound`, `AmbiguousAccount`, `NoAccounts`, `AccountDisabled`,
    /// `NoCredential`, `Integrity`, SQLite.
    pub fn token(&mut self, selector: AccountSelector<'_>) -> Result<Token> {
        let (tx, keys, actor) = self.write_tx()?;
        let account = resolve(&tx, keys, selector)?;
        if !account.enabled {
            return Err(Error::AccountDisabled(account.label));
        }
        if account.needs_login {
            return Err(Error::NeedsLogin {
                provider: account.provider,
                label: account.label,
            });
        }
        let kind = account.kind;
        let credential =
            read_credential(&tx, keys, account.id, kind)?.ok_or_else(|| Error::NoCredential {
                label: account.label.clone(),
                kind,
            })?;
        audit::append(
            &tx,
            keys,
            actor,
            &Event::new("secret.read").account(account.id, &account.label).details(serde_json::json!({
                "kind": kind, "purpose": "token", "fingerprint": secret_fingerprint(keys, account.provider, &credential),
            })),
        )?;
        tx.commit()?;
        let (secret, expires_at) = match credential {
            Credential::ApiKey(key) => (key, None),
            Credential::OAuth(t) => (t.access_token, t.expires_at),
        };
        Ok(Token {
            account,
            kind,
            secret,
            expires_at,
        })
    }
}
