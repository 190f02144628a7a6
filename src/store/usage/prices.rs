//! The price table loaded with `vault usage prices load`: kept as the text
//! given (already checked by `usage::price`), one row at most. Loading and
//! removing it are audited; the text holds prices only.

use super::super::audit::{self, Event};
use super::{Store, time};
use crate::db::args;
use crate::error::Result;
use crate::store::during;

impl Store {
    /// Keeps `body` (a LiteLLM price table) as the one in use, replacing any
    /// loaded before; one transaction with a `usage.prices.load` audit entry.
    ///
    /// # Errors
    /// SQLite.
    pub fn load_price_table(&mut self, version: &str, body: &str) -> Result<()> {
        during("loading a price table", || {
            let (tx, keys, actor) = self.write_tx()?;
            tx.execute(
                "INSERT INTO usage_price_table (id, version, loaded_at, body) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version,
                    loaded_at = excluded.loaded_at, body = excluded.body",
                args![version, time::now(), body],
            )?;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("usage.prices.load")
                    .details(serde_json::json!({ "version": version, "bytes": body.len() })),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The loaded price table's version and text, if one was loaded.
    ///
    /// # Errors
    /// SQLite.
    pub fn price_table(&mut self) -> Result<Option<(String, String)>> {
        during("reading the price table", || {
            let (tx, _) = self.read_tx()?;
            tx.query_opt(
                "SELECT version, body FROM usage_price_table WHERE id = 1",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// Forgets the loaded price table (the built-in one applies again);
    /// whether there was one. Audited as `usage.prices.reset`.
    ///
    /// # Errors
    /// SQLite.
    pub fn reset_price_table(&mut self) -> Result<bool> {
        during("removing the loaded price table", || {
            let (tx, keys, actor) = self.write_tx()?;
            let removed = tx.execute("DELETE FROM usage_price_table", &[])? > 0;
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("usage.prices.reset")
                    .details(serde_json::json!({ "removed": removed })),
            )?;
            tx.commit()?;
            Ok(removed)
        })
    }
}
