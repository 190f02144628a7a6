//! An account row: the MAC over its clear columns (id, provider, label,
//! kind, enabled), recomputed after every change to them, and the checked
//! read that refuses a row whose MAC does not match.

use secrecy::ExposeSecret;

use super::accounts::AccountInfo;
use super::{Keys, time};
use crate::crypto::Place;
use crate::db::{Row, Tx, args};
use crate::error::{Error, Result};
use crate::model::CredentialKind;

pub(super) const SELECT_ACCOUNT: &str =
    "SELECT a.id, a.provider, a.label, a.kind, a.email, a.provider_account_id, a.plan,
        a.rate_limit_tier, a.priority, a.enabled, a.needs_login, a.created_at, a.updated_at,
        (SELECT string_agg(kind, ' ') FROM credentials c WHERE c.account_id = a.id),
        (SELECT expires_at FROM credentials c WHERE c.account_id = a.id AND c.kind = 'oauth'),
        a.row_mac,
        (SELECT id FROM credentials c WHERE c.account_id = a.id AND c.kind = 'oauth')
        FROM accounts a";

pub(super) fn account_place(column: &'static str, id: i64) -> Place<'static> {
    Place {
        table: "accounts",
        column,
        row: id,
        account: id,
    }
}

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
pub(crate) fn seal_row(tx: &Tx<'_>, keys: &Keys, id: i64) -> Result<()> {
    let (provider, label, kind, enabled): (String, String, String, bool) = tx.query_row(
        "SELECT provider, label, kind, enabled FROM accounts WHERE id = ?1",
        args![id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let parts = row_mac_parts(id, &provider, &label, &kind, enabled);
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    tx.execute(
        "UPDATE accounts SET row_mac = ?1 WHERE id = ?2",
        args![keys.rows.mac(&refs), id],
    )?;
    Ok(())
}

pub(super) fn read_account(keys: &Keys, r: &Row<'_>) -> Result<AccountInfo> {
    let id: i64 = r.get(0)?;
    let mac: Option<Vec<u8>> = r.get(15)?;
    let parts = row_mac_parts(
        id,
        &r.get::<String>(1)?,
        &r.get::<String>(2)?,
        &r.get::<String>(3)?,
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
            r.get::<Option<String>>(14)?.as_deref(),
            "credentials",
            "expires_at",
            r.get::<Option<i64>>(16)?.unwrap_or_default(),
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
