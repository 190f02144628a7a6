//! The selection policy's settings rows: reading every setting, and writing
//! or deleting `policy.*` rows, each change one transaction with one audit
//! entry (`policy.set`, `policy.unset`). Which keys and values are valid is
//! the selector's business (`Policy::set`, `Policy::unset`); the store only
//! keeps the rows.

use super::audit::{self, Event};
use super::{Store, time};
use crate::db::args;
use crate::error::Result;
use crate::store::during;

impl Store {
    /// Every setting, by key; a value that is not JSON is left out.
    ///
    /// # Errors
    /// SQLite.
    pub fn settings(&mut self) -> Result<Vec<(String, serde_json::Value)>> {
        during("reading the settings", || {
            let (tx, _) = self.read_tx()?;
            let rows = tx.query_map("SELECT key, value FROM settings ORDER BY key", &[], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })?;
            let mut out = Vec::new();
            for (key, text) in rows {
                if let Ok(value) = serde_json::from_str(&text) {
                    out.push((key, value));
                }
            }
            Ok(out)
        })
    }

    /// Writes policy settings rows (already validated by `Policy::set`), all
    /// in one transaction with one `policy.set` audit entry naming them.
    ///
    /// # Errors
    /// SQLite.
    pub fn set_policy(&mut self, rows: &[(String, serde_json::Value)]) -> Result<()> {
        during("writing the policy", || {
            let (tx, keys, actor) = self.write_tx()?;
            let now = time::now();
            for (key, value) in rows {
                tx.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    args![key, value.to_string(), now],
                )?;
            }
            let details: serde_json::Map<_, _> = rows.iter().cloned().collect();
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("policy.set").details(serde_json::json!({ "settings": details })),
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Deletes policy settings rows (keys from `Policy::unset`) in one
    /// transaction with one `policy.unset` audit entry; returns the keys
    /// that were set.
    ///
    /// # Errors
    /// SQLite.
    pub fn unset_policy(&mut self, keys_to_delete: &[String]) -> Result<Vec<String>> {
        during("removing policy settings", || {
            let (tx, keys, actor) = self.write_tx()?;
            let mut removed = Vec::new();
            for key in keys_to_delete {
                if tx.execute("DELETE FROM settings WHERE key = ?1", args![key])? > 0 {
                    removed.push(key.clone());
                }
            }
            audit::append(
                &tx,
                keys,
                actor,
                &Event::new("policy.unset").details(serde_json::json!({ "removed": removed })),
            )?;
            tx.commit()?;
            Ok(removed)
        })
    }
}
