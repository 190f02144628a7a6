//! Usage history: what each model response used, from the quota ledger,
//! Claude Code and Codex logs, or an API caller, in one meaning whatever the
//! source. Parsers of agent logs ([`claude`], [`codex`]), their import
//! ([`import`]), prices ([`price`]) and the library's query ([`query`]);
//! the rows live in `store::usage`, the plain types in `model::usage`
//! (re-exported here).

pub mod blocks;
pub mod claude;
pub mod codex;
pub mod import;
pub mod price;
pub mod query;

pub use crate::model::usage::{GIVEN_COST, PICO_PER_USD, Source, Tokens, pico_to_usd};

use crate::error::{Error, Result};
use crate::store::Store;
use price::PriceTable;

/// The price table in use: the one loaded with `vault usage prices load`
/// when there is one, else the one built into this release.
///
/// # Errors
/// `Malformed` when the stored table no longer reads as one; SQLite.
pub fn price_table(store: &mut Store) -> Result<PriceTable> {
    match store.price_table()? {
        None => Ok(PriceTable::builtin().clone()),
        Some((version, body)) => {
            PriceTable::from_json(&body, &version).map_err(|_| Error::Malformed {
                table: "usage_price_table",
                column: "body",
                row: 1,
                reason: "not a LiteLLM price table; run `vault usage prices reset`",
            })
        }
    }
}
