//! Indicative API prices, for ranking API keys under
//! [`Strategy::CostOptimized`](super::Strategy::CostOptimized).
//!
//! The figures are the providers' published list prices per million tokens
//! for common models, as of 2025, rounded. They are indicative only: they
//! rank keys against each other, they are not a bill, and they go stale as
//! providers change prices. A model is matched by the first table entry
//! whose name it contains (case-insensitive); an unknown or missing model
//! gets its provider's default entry (the first one).

use crate::model::Provider;

/// List price of a model, US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// The table entry that matched (`sonnet`, `gpt-5-mini`…).
    pub model: &'static str,
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
}

impl Price {
    /// One price per token mix: three input tokens for each output token,
    /// typical of coding agents that send context and get a diff back.
    #[must_use]
    pub fn blended(&self) -> f64 {
        (3.0 * self.input + self.output) / 4.0
    }

    /// Estimated cost of `tokens` tokens at [`Price::blended`].
    #[must_use]
    pub fn estimate(&self, tokens: u64) -> f64 {
        self.blended() * super::approx(tokens) / 1_000_000.0
    }
}

const fn p(model: &'static str, input: f64, output: f64) -> Price {
    Price {
        model,
        input,
        output,
    }
}

/// Claude: the default first.
const CLAUDE: &[Price] = &[
    p("sonnet", 3.0, 15.0),
    p("opus", 15.0, 75.0),
    p("haiku", 1.0, 5.0),
];

/// OpenAI: the default first; the longest matching name wins.
const OPENAI: &[Price] = &[
    p("gpt-5", 1.25, 10.0),
    p("gpt-5-nano", 0.05, 0.40),
    p("gpt-5-mini", 0.25, 2.0),
    p("gpt-4.1", 2.0, 8.0),
    p("gpt-4o", 2.5, 10.0),
    p("o3", 2.0, 8.0),
];

/// The indicative price of `model` (or the provider's default) at `provider`.
#[must_use]
pub fn price_per_million(provider: Provider, model: Option<&str>) -> Price {
    let table = match provider {
        Provider::Claude => CLAUDE,
        Provider::OpenAi => OPENAI,
    };
    let model = model.map(str::to_ascii_lowercase);
    model
        .and_then(|m| {
            table
                .iter()
                .filter(|p| m.contains(p.model))
                .max_by_key(|p| p.model.len())
        })
        .unwrap_or(&table[0])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_match_their_longest_entry_and_unknown_ones_the_default() {
        let cases = [
            (Provider::Claude, None, "sonnet"),
            (Provider::Claude, Some("claude-opus-4-1"), "opus"),
            (Provider::Claude, Some("Claude-Haiku-4-5"), "haiku"),
            (Provider::Claude, Some("mystery"), "sonnet"),
            (
                Provider::OpenAi,
                Some("gpt-5-mini-2025-08-07"),
                "gpt-5-mini",
            ),
            (Provider::OpenAi, Some("gpt-5-codex"), "gpt-5"),
            (Provider::OpenAi, Some("gpt-4o"), "gpt-4o"),
            (Provider::OpenAi, None, "gpt-5"),
        ];
        for (provider, model, want) in cases {
            assert_eq!(price_per_million(provider, model).model, want, "{model:?}");
        }
        assert!((p("x", 3.0, 15.0).estimate(1_000_000) - 6.0).abs() < 1e-9);
    }
}
