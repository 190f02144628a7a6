//! Credentials: sealing them into the `credentials` table and opening them
//! again, the keyed fingerprints that identify a secret or an identity
//! without revealing it, and the public methods that write or hand out a
//! credential (each one transaction with exactly one audit entry).

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::accounts::{AccountInfo, AccountSelector, find_account, resolve, set_needs_login};
use super::audit::{self, Event};
use super::merge::{self, MergeItem};
use super::{Keys, Store, now, time};
use crate::crypto::Place;
use crate::db::{Tx, args};
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider};
use crate::store::during;

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

const COLUMNS: [&str; 4] = ["api_key", "access_token", "refresh_token", "id_token"];

fn place(column: &'static str, row: i64, account: i64) -> Place<'static> {
    Place {
        table: "credentials",
        column,
        row,
        account,
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
    tx: &Tx<'_>,
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
           generation = credentials.generation + 1, lease_holder = NULL, lease_until = NULL
         RETURNING id",
        args![account_id, kind.as_str(), fp, expires, scopes, last_refresh, now],
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
            args![sealed, id],
        )?;
    }
    Ok(fp)
}

/// Opens the credential of `kind` of an account, if it has one.
pub(crate) fn read_credential(
    conn: &Tx<'_>,
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
        .query_opt(
            "SELECT id, api_key, access_token, refresh_token, id_token, expires_at, scopes, last_refresh
             FROM credentials WHERE account_id = ?1 AND kind = ?2",
            args![account_id, kind.as_str()],
            |r| Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?], r.get(5)?, r.get(6)?, r.get(7)?)),
        )?;
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

impl Store {
    /// Stores `credential` in an existing account, replacing one of the same
    /// kind (one `credential.write` audit entry).
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite.
    pub fn set_credential(&mut self, label: &str, credential: &Credential) -> Result<AccountInfo> {
        during("storing a credential", || {
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
        })
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
        check: impl Fn(&AccountInfo) -> Result<()>,
    ) -> Result<(AccountInfo, Vec<String>)> {
        during("storing a login", || {
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
        })
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
        during("reading a credential", || {
            let (tx, keys, actor) = self.write_tx()?;
            let account = find_account(&tx, keys, label)?;
            let credential = read_credential(&tx, keys, account.id, kind)?.ok_or_else(|| {
                Error::NoCredential {
                    label: label.to_owned(),
                    kind,
                }
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
        })
    }

    /// The secret an agent should use: the API key or the access token of the
    /// selected account's active credential. Audited like [`Store::credential`].
    ///
    /// # Errors
    /// `AccountNotFound`, `AmbiguousAccount`, `NoAccounts`, `AccountDisabled`,
    /// `NoCredential`, `Integrity`, SQLite.
    pub fn token(&mut self, selector: AccountSelector<'_>) -> Result<Token> {
        during("reading a token", || {
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
            let credential = read_credential(&tx, keys, account.id, kind)?.ok_or_else(|| {
                Error::NoCredential {
                    label: account.label.clone(),
                    kind,
                }
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
        })
    }
}
