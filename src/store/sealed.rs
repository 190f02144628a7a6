//! The list of every sealed column, and the walk over every sealed value
//! that `rekey` re-seals and `verify_sealed` checks.

use std::ops::ControlFlow;

use super::{Keys, Store};
use crate::crypto::Place;
use crate::db::Tx;
use crate::error::Result;
use crate::store::during;

/// One sealed column: where it lives and which column names its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// SQL expression giving the owning account id (`0` when none).
    pub account_expr: &'static str,
    /// SQL expression giving the row id bound into the associated data.
    pub row_expr: &'static str,
}

/// Every column sealed with the data key. `vault rekey` re-seals exactly these;
/// SECURITY.md lists them with the reason each is sealed.
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "vault_meta",
        column: "root_secret",
        account_expr: "0",
        row_expr: "id",
    },
    SealedColumn {
        table: "accounts",
        column: "email",
        account_expr: "id",
        row_expr: "id",
    },
    SealedColumn {
        table: "accounts",
        column: "provider_account_id",
        account_expr: "id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "api_key",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "access_token",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "refresh_token",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "credentials",
        column: "id_token",
        account_expr: "account_id",
        row_expr: "id",
    },
    SealedColumn {
        table: "selection_history",
        column: "task_context",
        account_expr: "0",
        row_expr: "id",
    },
    SealedColumn {
        table: "usage_projects",
        column: "path",
        account_expr: "0",
        row_expr: "id",
    },
];

/// Every sealed value in the vault, with the place it is bound to.
pub(super) fn sealed_values(tx: &Tx<'_>) -> Result<Vec<(Place<'static>, Vec<u8>)>> {
    let mut out = Vec::new();
    for col in SEALED_COLUMNS {
        let sql = format!(
            "SELECT {row}, {acct}, {c} FROM {t} WHERE {c} IS NOT NULL",
            row = col.row_expr,
            acct = col.account_expr,
            c = col.column,
            t = col.table
        );
        tx.for_each_row(&sql, &[], |r| {
            out.push((
                Place {
                    table: col.table,
                    column: col.column,
                    row: r.get(0)?,
                    account: r.get(1)?,
                },
                r.get(2)?,
            ));
            Ok(ControlFlow::Continue(()))
        })?;
    }
    Ok(out)
}

impl Store {
    /// Opens every sealed value in the vault (returning none of them) and
    /// counts them: proof that every value is readable under the keys held.
    ///
    /// # Errors
    /// The first `Integrity` error met, naming table, column and row.
    pub fn verify_sealed(&mut self) -> Result<u64> {
        during("checking every sealed value", || {
            let (tx, keys) = self.read_tx()?;
            open_all(&tx, keys)
        })
    }
}

/// Opens every sealed value `tx` sees with `keys` (returning none of them);
/// how many there are.
///
/// # Errors
/// The first `Integrity` error met, naming table, column and row.
pub(super) fn open_all(tx: &Tx<'_>, keys: &Keys) -> Result<u64> {
    let values = sealed_values(tx)?;
    for (place, sealed) in &values {
        keys.open(place, sealed)?;
    }
    Ok(values.len() as u64)
}
