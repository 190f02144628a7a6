//! Model prices in LiteLLM's format and the cost rules ccusage applies
//! (USAGE-FORMATS §1.8, §2.4): per-entry tiering above 200k tokens, cache
//! writes for 5 minutes at the cache-creation price and for 1 hour at twice
//! the input price, the fast-mode multiplier, and model names matched
//! exactly or by the longest key found inside them at word boundaries.
//!
//! The built-in table (`prices.json`) holds the Claude and OpenAI models
//! agents use, at the prices ccusage 20.0.24 charges with `--offline`; an
//! entry without input and output prices (its `authvault_price_table`
//! entry) records the table's version and date. Nothing is fetched.
//!
//! Costs are whole pico-dollars (1e-12 USD): every per-token price in the
//! table is a whole number of them, so a cost is exact and sums do not
//! depend on their order.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::Tokens;

/// Tokens of one kind in one response above which the `_above_200k` price applies.
const TIER: u64 = 200_000;

/// The built-in table's text.
const BUILTIN: &str = include_str!("prices.json");

/// The key of the entry that records a table's version and date.
const META_KEY: &str = "authvault_price_table";

/// Why a price table was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The text is not a LiteLLM price table.
    #[error("not a LiteLLM price table: {0}")]
    Format(#[from] serde_json::Error),
    /// A price is negative or not a number.
    #[error("model `{model}`: {field} must be a non-negative number of dollars per token")]
    BadPrice {
        /// The model's key.
        model: String,
        /// The field.
        field: &'static str,
    },
}

/// One model's prices as LiteLLM writes them (dollars per token).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelPrice {
    /// Input.
    pub input_cost_per_token: Option<f64>,
    /// Output (reasoning included).
    pub output_cost_per_token: Option<f64>,
    /// Cache write (5 minutes); default input × 1.25.
    pub cache_creation_input_token_cost: Option<f64>,
    /// Cache read; default input × 0.1.
    pub cache_read_input_token_cost: Option<f64>,
    /// Input beyond 200k tokens in one response.
    pub input_cost_per_token_above_200k_tokens: Option<f64>,
    /// Output beyond 200k tokens in one response.
    pub output_cost_per_token_above_200k_tokens: Option<f64>,
    /// Cache write beyond 200k tokens in one response.
    pub cache_creation_input_token_cost_above_200k_tokens: Option<f64>,
    /// Cache read beyond 200k tokens in one response.
    pub cache_read_input_token_cost_above_200k_tokens: Option<f64>,
    /// Provider extras; `fast` is the fast-mode multiplier.
    pub provider_specific_entry: Option<ProviderEntry>,
}

/// LiteLLM's `provider_specific_entry`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ProviderEntry {
    /// Fast-mode price multiplier.
    pub fast: Option<f64>,
}

/// Pico-dollars per token of each kind, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    input: (u64, Option<u64>),
    output: (u64, Option<u64>),
    cache_write: (u64, Option<u64>),
    cache_read: (u64, Option<u64>),
    explicit_cache_read: bool,
    fast: Option<f64>,
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked non-negative and finite on load
fn pico(usd: f64) -> u64 {
    (usd * 1e12).round() as u64
}

impl ModelPrice {
    fn rates(&self) -> Option<Rates> {
        let input = self.input_cost_per_token?;
        let output = self.output_cost_per_token?;
        Some(Rates {
            input: (
                pico(input),
                self.input_cost_per_token_above_200k_tokens.map(pico),
            ),
            output: (
                pico(output),
                self.output_cost_per_token_above_200k_tokens.map(pico),
            ),
            cache_write: (
                pico(self.cache_creation_input_token_cost.unwrap_or(input * 1.25)),
                self.cache_creation_input_token_cost_above_200k_tokens
                    .map(pico),
            ),
            cache_read: (
                pico(self.cache_read_input_token_cost.unwrap_or(input * 0.1)),
                self.cache_read_input_token_cost_above_200k_tokens.map(pico),
            ),
            explicit_cache_read: self.cache_read_input_token_cost.is_some(),
            fast: self.provider_specific_entry.as_ref().and_then(|p| p.fast),
        })
    }

    fn fields(&self) -> [(&'static str, Option<f64>); 8] {
        [
            ("input_cost_per_token", self.input_cost_per_token),
            ("output_cost_per_token", self.output_cost_per_token),
            (
                "cache_creation_input_token_cost",
                self.cache_creation_input_token_cost,
            ),
            (
                "cache_read_input_token_cost",
                self.cache_read_input_token_cost,
            ),
            (
                "input_cost_per_token_above_200k_tokens",
                self.input_cost_per_token_above_200k_tokens,
            ),
            (
                "output_cost_per_token_above_200k_tokens",
                self.output_cost_per_token_above_200k_tokens,
            ),
            (
                "cache_creation_input_token_cost_above_200k_tokens",
                self.cache_creation_input_token_cost_above_200k_tokens,
            ),
            (
                "cache_read_input_token_cost_above_200k_tokens",
                self.cache_read_input_token_cost_above_200k_tokens,
            ),
        ]
    }
}

/// `n` tokens at `base`, the part beyond 200k at `above` when there is one.
const fn tiered(n: u64, (base, above): (u64, Option<u64>)) -> u64 {
    match above {
        Some(above) if n > TIER => TIER * base + (n - TIER) * above,
        _ => n * base,
    }
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)] // multipliers are small positive numbers; a cost fits f64's 53 bits to the pico-dollar below $9,007
fn times(cost: u64, factor: f64) -> u64 {
    (cost as f64 * factor).round() as u64
}

/// How a response was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Speed {
    /// The normal price.
    #[default]
    Standard,
    /// Fast mode: the model's `fast` multiplier (Claude: else none; Codex:
    /// else 2).
    Fast,
}

/// A price table: models by key, with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    version: String,
    date: Option<String>,
    /// Keys as written, with their normalized form for matching.
    models: BTreeMap<String, (String, Rates)>,
}

#[derive(Deserialize)]
struct Meta {
    version: String,
    date: Option<String>,
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['.', '@'], "-")
}

impl PriceTable {
    /// The table built into this release.
    ///
    /// # Panics
    /// Never: the built-in table is checked by a unit test.
    #[must_use]
    pub fn builtin() -> &'static Self {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            Self::from_json(BUILTIN, "builtin").expect("the built-in price table is valid")
        })
    }

    /// Reads a LiteLLM price table (`model_prices_and_context_window.json`
    /// or a part of it). Its version is the `authvault_price_table` entry's
    /// `version` when it has one, else `fallback_version`.
    ///
    /// # Errors
    /// [`PriceError`] when the text is not such a table or a price is
    /// negative or not finite.
    pub fn from_json(text: &str, fallback_version: &str) -> Result<Self, PriceError> {
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)?;
        let mut version = fallback_version.to_owned();
        let mut date = None;
        let mut models = BTreeMap::new();
        for (key, value) in raw {
            if key == META_KEY {
                let meta: Meta = serde_json::from_value(value)?;
                version = meta.version;
                date = meta.date;
                continue;
            }
            // LiteLLM entries carry many other fields; only objects with
            // prices matter, and anything else (its `sample_spec`) is skipped.
            let Ok(price) = serde_json::from_value::<ModelPrice>(value) else {
                continue;
            };
            for (field, v) in price.fields() {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return Err(PriceError::BadPrice { model: key, field });
                }
            }
            if let Some(rates) = price.rates() {
                models.insert(key.clone(), (normalize(&key), rates));
            }
        }
        Ok(Self {
            version,
            date,
            models,
        })
    }

    /// The table's version, recorded with every cost computed from it.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The date the table's prices were taken, when recorded.
    #[must_use]
    pub fn date(&self) -> Option<&str> {
        self.date.as_deref()
    }

    /// How many models it prices.
    #[must_use]
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether it prices no model.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The key whose prices apply to `model`: the exact key, else the
    /// longest key found inside the name (`.` and `@` read as `-`) between
    /// word boundaries, so `claude-sonnet-4-20250514` finds
    /// `claude-sonnet-4` and `claude-sonnet-4-5-…` finds `claude-sonnet-4-5`.
    #[must_use]
    pub fn key_for(&self, model: &str) -> Option<&str> {
        if let Some((key, _)) = self.models.get_key_value(model) {
            return Some(key);
        }
        let name = normalize(model);
        let bytes = name.as_bytes();
        let boundary =
            |i: usize| i == 0 || i == bytes.len() || !bytes[i - 1].is_ascii_alphanumeric();
        let mut best: Option<(&str, usize)> = None;
        for (key, (norm, _)) in &self.models {
            let found = name.match_indices(norm.as_str()).any(|(i, _)| {
                let end = i + norm.len();
                boundary(i) && (end == bytes.len() || !bytes[end].is_ascii_alphanumeric())
            });
            if found && best.is_none_or(|(_, len)| norm.len() > len) {
                best = Some((key, norm.len()));
            }
        }
        best.map(|(key, _)| key)
    }

    fn rates(&self, model: &str) -> Option<Rates> {
        self.key_for(model).map(|k| self.models[k].1)
    }

    /// A Claude response's cost in pico-dollars (ccusage's `calculate`
    /// mode): each token kind priced on its own, beyond 200k at the
    /// `_above_200k` price; 1-hour cache writes at twice the input price;
    /// times the fast multiplier. `None` when the model is not priced.
    #[must_use]
    pub fn claude_cost(&self, model: &str, tokens: &Tokens, speed: Speed) -> Option<u64> {
        let r = self.rates(model)?;
        let one_hour = (2 * r.input.0, r.input.1.map(|p| 2 * p));
        let cost = tiered(tokens.input, r.input)
            + tiered(tokens.output, r.output)
            + tiered(tokens.cache_write_5m, r.cache_write)
            + tiered(tokens.cache_write_1h, one_hour)
            + tiered(tokens.cache_read, r.cache_read);
        Some(match (speed, r.fast) {
            (Speed::Fast, Some(f)) => times(cost, f),
            _ => cost,
        })
    }

    /// A Codex response's cost in pico-dollars, as ccusage prices Codex:
    /// no tiering; cached input at the cache-read price only when the table
    /// gives one (else at the input price); fast mode at the model's
    /// multiplier or 2.
    #[must_use]
    pub fn codex_cost(&self, model: &str, tokens: &Tokens, speed: Speed) -> Option<u64> {
        let r = self.rates(model)?;
        let cached = if r.explicit_cache_read {
            r.cache_read.0
        } else {
            r.input.0
        };
        let cost =
            tokens.input * r.input.0 + tokens.cache_read * cached + tokens.output * r.output.0;
        Some(match speed {
            Speed::Fast => times(cost, r.fast.unwrap_or(2.0)),
            Speed::Standard => cost,
        })
    }
}

impl PriceTable {
    /// A stored event's cost under this table: Codex events by Codex's
    /// rules, others by Claude's (a `-fast` model is the fast mode of the
    /// model without it). `None` when the model is not priced.
    #[must_use]
    pub fn event_cost(&self, source: super::Source, model: &str, tokens: &Tokens) -> Option<u64> {
        match (source, model.strip_suffix("-fast")) {
            (super::Source::Codex, _) => self.codex_cost(model, tokens, Speed::Standard),
            (_, Some(base)) if self.key_for(model).is_none_or(|k| k.len() <= base.len()) => {
                self.claude_cost(base, tokens, Speed::Fast)
            }
            _ => self.claude_cost(model, tokens, Speed::Standard),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(pico: u64) -> f64 {
        super::super::pico_to_usd(pico)
    }

    fn tokens(input: u64, output: u64, cw5: u64, cw1h: u64, read: u64) -> Tokens {
        Tokens {
            input,
            output,
            cache_write_5m: cw5,
            cache_write_1h: cw1h,
            cache_read: read,
            reasoning: 0,
        }
    }

    #[test]
    fn builtin_table_loads_with_its_version() {
        let t = PriceTable::builtin();
        assert_eq!(t.version(), "ccusage-20.0.24-offline-1");
        assert_eq!(t.date(), Some("2026-11-30"));
        assert!(t.len() > 30, "{} models", t.len());
    }

    /// The hand checks of USAGE-FORMATS §1.9 and §1.8, in pico-dollars.
    #[test]
    fn claude_costs_match_ccusage_examples() {
        let t = PriceTable::builtin();
        let cases = [
            // L1 sonnet: 100 in, 200 out, 1000 5m writes, 5000 reads.
            (
                "claude-sonnet-4-20250514",
                tokens(100, 200, 1000, 0, 5000),
                Speed::Standard,
                0.00855,
            ),
            // L2 opus-4: 10 in, 50 out, 20000 reads.
            (
                "claude-opus-4-20250514",
                tokens(10, 50, 0, 0, 20_000),
                Speed::Standard,
                0.0339,
            ),
            // L3 sonnet: 1h writes at twice the input price.
            (
                "claude-sonnet-4-20250514",
                tokens(5, 70, 0, 300, 0),
                Speed::Standard,
                0.002_865,
            ),
            // Tiering: 300k sonnet-4 input is 200k·3e-6 + 100k·6e-6.
            (
                "claude-sonnet-4-20250514",
                tokens(300_000, 0, 0, 0, 0),
                Speed::Standard,
                1.2,
            ),
            // Fast mode: opus-4-6 at 6×.
            (
                "claude-opus-4-6",
                tokens(1_000, 0, 0, 0, 0),
                Speed::Fast,
                0.03,
            ),
            // No fast multiplier: fast costs the same.
            (
                "claude-sonnet-4-20250514",
                tokens(1_000, 0, 0, 0, 0),
                Speed::Fast,
                0.003,
            ),
        ];
        for (model, tokens, speed, want) in cases {
            let got = usd(t.claude_cost(model, &tokens, speed).unwrap());
            assert!(
                (got - want).abs() <= want * 1e-12,
                "{model} {tokens:?}: {got} ≠ {want}"
            );
        }
    }

    #[test]
    fn codex_cost_matches_the_ccusage_example() {
        // §2.5: 4277 non-cached in, 22272 cached, 1590 out of gpt-5-codex.
        let t = PriceTable::builtin();
        let tokens = Tokens {
            input: 4277,
            cache_read: 22_272,
            output: 1590,
            reasoning: 1152,
            ..Tokens::default()
        };
        let got = usd(t
            .codex_cost("gpt-5-codex", &tokens, Speed::Standard)
            .unwrap());
        assert!((got - 0.024_030_25).abs() < 1e-15, "{got}");
    }

    #[test]
    fn model_names_match_exactly_or_by_the_longest_key_at_boundaries() {
        let t = PriceTable::from_json(
            r#"{"claude-sonnet-4": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5},
                "claude-sonnet-4-5": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5},
                "gpt-5": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5},
                "gpt-5.1-codex": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5},
                "sample_spec": {"max_tokens": "LEGACY parameter"},
                "no-prices": {"max_tokens": 10}}"#,
            "test",
        )
        .unwrap();
        let cases = [
            ("claude-sonnet-4", Some("claude-sonnet-4")),
            ("claude-sonnet-4-20250514", Some("claude-sonnet-4")),
            ("claude-sonnet-4-5-20250929", Some("claude-sonnet-4-5")),
            (
                "anthropic.claude-sonnet-4-5@20250929",
                Some("claude-sonnet-4-5"),
            ),
            ("gpt-5.1-codex", Some("gpt-5.1-codex")),
            ("gpt-5-1-codex", Some("gpt-5.1-codex")),
            ("gpt-5-mini", Some("gpt-5")),
            ("gpt-50", None),
            ("claude-sonnet-40", None),
            ("no-prices", None),
            ("<synthetic>", None),
        ];
        for (model, want) in cases {
            assert_eq!(t.key_for(model), want, "{model}");
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.version(), "test");
    }

    #[test]
    fn a_stored_fast_model_is_priced_as_the_fast_mode_of_its_base() {
        let t = PriceTable::builtin();
        let tokens = tokens(1_000, 0, 0, 0, 0);
        let claude = super::super::Source::ClaudeCode;
        assert_eq!(
            t.event_cost(claude, "claude-opus-4-6-fast", &tokens),
            t.claude_cost("claude-opus-4-6", &tokens, Speed::Fast)
        );
        assert_eq!(
            t.event_cost(claude, "claude-sonnet-4-20250514", &tokens),
            t.claude_cost("claude-sonnet-4-20250514", &tokens, Speed::Standard)
        );
        let codex = super::super::Source::Codex;
        assert_eq!(
            t.event_cost(codex, "gpt-5-codex", &tokens),
            t.codex_cost("gpt-5-codex", &tokens, Speed::Standard)
        );
    }

    #[test]
    fn cache_prices_default_from_the_input_price() {
        let t = PriceTable::from_json(
            r#"{"m": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}"#,
            "t",
        )
        .unwrap();
        // 1000 writes at 1.25e-6, 1000 reads at 1e-7.
        let cost = t.claude_cost("m", &tokens(0, 0, 1000, 0, 1000), Speed::Standard);
        assert_eq!(cost, Some(1_250_000_000 + 100_000_000));
    }

    #[test]
    fn negative_or_malformed_tables_are_refused() {
        for text in [
            r#"{"m": {"input_cost_per_token": -1e-6, "output_cost_per_token": 2e-6}}"#,
            "[1, 2]",
            "not json",
        ] {
            assert!(PriceTable::from_json(text, "t").is_err(), "{text}");
        }
    }
}
