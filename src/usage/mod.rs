//! Usage history: what each model response used, from the quota ledger,
//! Claude Code and Codex logs, or an API caller, in one meaning whatever the
//! source. Parsers of agent logs ([`claude`], [`codex`]), their import
//! ([`import`]), prices ([`price`]) and the library's query ([`query`]);
//! the rows live in `store::usage`, the plain types in `model::usage`
//! (re-exported here).

pub mod claude;
pub mod codex;
pub mod import;
pub mod price;
pub mod query;

pub use crate::model::usage::{PICO_PER_USD, Source, Tokens, pico_to_usd};
