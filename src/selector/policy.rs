//! The selection policy: strategy, per-task strategies, threshold, pin,
//! fallback, rotation and cooldown, read from the vault's settings.
//!
//! Settings are (key, JSON value) pairs. The policy's own keys are
//! `policy.<key>` with the keys of [`Policy::set`]. The preferences a legacy
//! `auth.json` carried are imported as `provider_preferences.*` and honoured
//! wherever no `policy.*` key says otherwise:
//!
//! | imported key | becomes |
//! |---|---|
//! | `provider_preferences.selection_strategy` (`CostOptimized`, `PreferClaude`, …) | `strategy` |
//! | `provider_preferences.cost_optimization` = `true` | `strategy` = `cost-optimized`, unless `selection_strategy` names one |
//! | `provider_preferences.preferred_provider` (`Claude`, `OpenAI`) | `provider`; and `strategy` = `user-preference` when nothing else names one |
//! | `provider_preferences.fallback_enabled` | `fallback` |
//!
//! Pure: nothing here reads or writes the store. [`Policy::set`] and
//! [`Policy::unset`] validate a change and name the setting row to write or
//! delete; the caller persists it and reads the policy again.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::model::Provider;

/// Prefix of the policy's own settings keys.
const PREFIX: &str = "policy.";
/// Prefix of the imported legacy preferences.
const LEGACY: &str = "provider_preferences.";

/// How candidates are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The chain Claude subscription → Claude API key → OpenAI subscription
    /// → OpenAI API key.
    PreferClaude,
    /// The mirrored chain: OpenAI first.
    PreferOpenai,
    /// Subscriptions with headroom (already paid for) before API keys; API
    /// keys by estimated price for the task, cheapest first.
    CostOptimized,
    /// Recently probed accounts first, by error rate (whole percent) then
    /// latency; then headroom.
    PerformanceOptimized,
    /// The chain of the policy's preferred provider (Claude when none).
    UserPreference,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Self; 5] = [
        Self::PreferClaude,
        Self::PreferOpenai,
        Self::CostOptimized,
        Self::PerformanceOptimized,
        Self::UserPreference,
    ];

    /// The name used in settings, the CLI and `--json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PreferClaude => "prefer-claude",
            Self::PreferOpenai => "prefer-openai",
            Self::CostOptimized => "cost-optimized",
            Self::PerformanceOptimized => "performance-optimized",
            Self::UserPreference => "user-preference",
        }
    }

    /// A legacy name (`CostOptimized`, `PreferOpenAI`) or a current one.
    fn from_any(name: &str) -> Option<Self> {
        let squashed: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().replace('-', "") == squashed)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

/// How accounts are chosen. [`Policy::default`] is the default:
/// prefer-claude, 80 % threshold, fallback on, rotation off, 5-minute
/// cooldown, no pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The strategy for tasks without their own.
    pub strategy: Strategy,
    /// Strategies per task type (`quick-query` → cost-optimized).
    pub task_strategies: BTreeMap<String, Strategy>,
    /// Utilization (percent) at or over which a window excludes an account.
    pub threshold_percent: f64,
    /// Whether another account may serve when the pinned or preferred one
    /// cannot. Off: only the pin, else the preferred provider, may serve.
    pub fallback: bool,
    /// Whether subscription accounts of one provider take turns.
    pub rotation: bool,
    /// Cooldown after a failure when the provider gives no time.
    pub cooldown: TimeDelta,
    /// An account to use whenever it is eligible.
    pub pin: Option<String>,
    /// The provider of [`Strategy::UserPreference`].
    pub provider: Option<Provider>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            strategy: Strategy::PreferClaude,
            task_strategies: BTreeMap::new(),
            threshold_percent: 80.0,
            fallback: true,
            rotation: false,
            cooldown: TimeDelta::minutes(5),
            pin: None,
            provider: None,
        }
    }
}

/// One settings row to write: `policy.<key>` and its JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The settings key.
    pub key: String,
    /// The JSON value.
    pub value: Value,
}

/// A policy key or value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not a policy key.
    #[error(
        "unknown policy key `{key}` (expected one of: strategy, task.<type>, threshold, \
         fallback, rotation, cooldown, pin, provider)"
    )]
    UnknownKey {
        /// The key given.
        key: String,
    },
    /// A value the key does not accept.
    #[error("policy key `{key}`: `{value}` is not valid (expected {expected})")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given, as text.
        value: String,
        /// What the key accepts.
        expected: &'static str,
    },
}

const STRATEGIES: &str =
    "prefer-claude, prefer-openai, cost-optimized, performance-optimized, user-preference";

impl Policy {
    /// The policy that `settings` describe, defaults elsewhere. Keys other
    /// than `policy.*` and `provider_preferences.*` are ignored.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first setting that cannot be understood.
    /// A `policy.*` key overrides its imported counterpart, which is then
    /// not read: setting it is how to get past an imported value that the
    /// selector does not know.
    pub fn from_settings<'a>(
        settings: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<Self, PolicyError> {
        let mut own = BTreeMap::new();
        let mut legacy = BTreeMap::new();
        for (key, value) in settings {
            if let Some(k) = key.strip_prefix(PREFIX) {
                own.insert(k, value);
            } else if let Some(k) = key.strip_prefix(LEGACY) {
                legacy.insert(k, value);
            }
        }
        let mut policy = Self::default();
        policy.apply_legacy(&legacy, &own)?;
        for (key, value) in own {
            policy.apply(key, value)?;
        }
        Ok(policy)
    }

    fn apply_legacy(
        &mut self,
        legacy: &BTreeMap<&str, &Value>,
        own: &BTreeMap<&str, &Value>,
    ) -> Result<(), PolicyError> {
        let invalid = |key: &str, value: &Value, expected| PolicyError::InvalidValue {
            key: format!("{LEGACY}{key}"),
            value: value.to_string(),
            expected,
        };
        if let (false, Some(&v)) = (
            own.contains_key("provider"),
            legacy.get("preferred_provider"),
        ) {
            let provider = v
                .as_str()
                .and_then(|s| s.to_ascii_lowercase().parse().ok())
                .ok_or_else(|| invalid("preferred_provider", v, "Claude or OpenAI"))?;
            self.provider = Some(provider);
        }
        if let (false, Some(&v)) = (own.contains_key("fallback"), legacy.get("fallback_enabled")) {
            self.fallback = v
                .as_bool()
                .ok_or_else(|| invalid("fallback_enabled", v, "true or false"))?;
        }
        if own.contains_key("strategy") {
            return Ok(());
        }
        if let Some(&v) = legacy.get("selection_strategy") {
            self.strategy = v
                .as_str()
                .and_then(Strategy::from_any)
                .ok_or_else(|| invalid("selection_strategy", v, STRATEGIES))?;
        } else if legacy.get("cost_optimization").and_then(|v| v.as_bool()) == Some(true) {
            self.strategy = Strategy::CostOptimized;
        } else if self.provider.is_some() {
            self.strategy = Strategy::UserPreference;
        }
        Ok(())
    }

    /// Applies one `policy.<key>` value as stored (a JSON string or the
    /// JSON value [`Policy::set`] wrote).
    fn apply(&mut self, key: &str, value: &Value) -> Result<(), PolicyError> {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let parsed = parse(key, &text).map_err(|e| match e {
            PolicyError::UnknownKey { key } => PolicyError::UnknownKey {
                key: format!("{PREFIX}{key}"),
            },
            PolicyError::InvalidValue {
                key,
                value,
                expected,
            } => PolicyError::InvalidValue {
                key: format!("{PREFIX}{key}"),
                value,
                expected,
            },
        })?;
        match parsed {
            Parsed::Strategy(s) => match key.strip_prefix("task.") {
                Some(task) => {
                    self.task_strategies.insert(task.to_owned(), s);
                }
                None => self.strategy = s,
            },
            Parsed::Percent(p) => self.threshold_percent = p,
            Parsed::Switch(on) if key == "fallback" => self.fallback = on,
            Parsed::Switch(on) => self.rotation = on,
            Parsed::Seconds(s) => self.cooldown = TimeDelta::seconds(s),
            Parsed::Label(label) => self.pin = Some(label),
            Parsed::Provider(p) => self.provider = Some(p),
        }
        Ok(())
    }

    /// Validates `vault policy set KEY VALUE` and returns the settings row
    /// to write. Keys and values:
    ///
    /// * `strategy`, `task.<type>`: a strategy name;
    /// * `threshold`: a percentage above 0 and at most 100 (`80`, `80%`);
    /// * `fallback`, `rotation`: `on`/`off` or `true`/`false`;
    /// * `cooldown`: seconds, or a number with `s`, `m` or `h` (`90s`, `5m`);
    /// * `pin`: an account label; `provider`: `claude` or `openai`.
    ///
    /// # Errors
    /// [`PolicyError`] naming the key and the values it accepts.
    pub fn set(key: &str, value: &str) -> Result<Setting, PolicyError> {
        let value = match parse(key, value)? {
            Parsed::Strategy(s) => Value::from(s.as_str()),
            Parsed::Percent(p) => Value::from(p),
            Parsed::Switch(on) => Value::from(on),
            Parsed::Seconds(s) => Value::from(s),
            Parsed::Label(label) => Value::from(label),
            Parsed::Provider(p) => Value::from(p.as_str()),
        };
        Ok(Setting {
            key: format!("{PREFIX}{key}"),
            value,
        })
    }

    /// Validates `vault policy unset KEY` and returns the settings key to
    /// delete; an imported preference for it, if any, then applies again.
    ///
    /// # Errors
    /// [`PolicyError::UnknownKey`].
    pub fn unset(key: &str) -> Result<String, PolicyError> {
        describe(key)?;
        Ok(format!("{PREFIX}{key}"))
    }

    /// The strategy for `task_type`.
    #[must_use]
    pub fn strategy_for(&self, task_type: &str) -> Strategy {
        self.task_strategies
            .get(task_type)
            .copied()
            .unwrap_or(self.strategy)
    }

    /// When a cooldown after a failure at `now` ends: the provider's
    /// retry-after or window reset when known (the later of the two), else
    /// `now` plus the policy's cooldown.
    #[must_use]
    pub fn cooldown_until(
        &self,
        now: DateTime<Utc>,
        retry_after: Option<DateTime<Utc>>,
        window_reset: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        retry_after
            .max(window_reset)
            .filter(|&t| t > now)
            .unwrap_or(now + self.cooldown)
    }
}

enum Kind {
    Strategy,
    Percent,
    Switch,
    Seconds,
    Label,
    Provider,
}

/// What `key` holds and the words for its accepted values.
fn describe(key: &str) -> Result<(Kind, &'static str), PolicyError> {
    Ok(match key {
        "strategy" => (Kind::Strategy, STRATEGIES),
        "threshold" => (Kind::Percent, "a percentage above 0 and at most 100"),
        "fallback" | "rotation" => (Kind::Switch, "on, off, true or false"),
        "cooldown" => (Kind::Seconds, "seconds, or a number with s, m or h"),
        "pin" => (Kind::Label, "an account label"),
        "provider" => (Kind::Provider, "claude or openai"),
        _ if key.strip_prefix("task.").is_some_and(is_task_type) => (Kind::Strategy, STRATEGIES),
        _ => {
            return Err(PolicyError::UnknownKey {
                key: key.to_owned(),
            });
        }
    })
}

/// A task type is one word: lowercase letters, digits, `-` and `_`.
fn is_task_type(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A policy value, checked.
enum Parsed {
    Strategy(Strategy),
    Percent(f64),
    Switch(bool),
    Seconds(i64),
    Label(String),
    Provider(Provider),
}

fn parse(key: &str, text: &str) -> Result<Parsed, PolicyError> {
    let (kind, expected) = describe(key)?;
    let invalid = || PolicyError::InvalidValue {
        key: key.to_owned(),
        value: text.to_owned(),
        expected,
    };
    Ok(match kind {
        Kind::Strategy => Parsed::Strategy(text.parse().map_err(|()| invalid())?),
        Kind::Percent => {
            let n: f64 = text
                .trim_end_matches('%')
                .trim()
                .parse()
                .map_err(|_| invalid())?;
            if !(n > 0.0 && n <= 100.0) {
                return Err(invalid());
            }
            Parsed::Percent(n)
        }
        Kind::Switch => Parsed::Switch(match text {
            "on" | "true" => true,
            "off" | "false" => false,
            _ => return Err(invalid()),
        }),
        Kind::Seconds => Parsed::Seconds(parse_seconds(text).ok_or_else(invalid)?),
        Kind::Label => {
            if text.is_empty() || text.chars().any(char::is_control) {
                return Err(invalid());
            }
            Parsed::Label(text.to_owned())
        }
        Kind::Provider => Parsed::Provider(text.parse().map_err(|_| invalid())?),
    })
}

/// `300`, `90s`, `5m`, `1h` → seconds (at least one, at most a week).
fn parse_seconds(text: &str) -> Option<i64> {
    let (number, unit) = match text.char_indices().last()? {
        (at, 's') => (&text[..at], 1),
        (at, 'm') => (&text[..at], 60),
        (at, 'h') => (&text[..at], 3600),
        _ => (text, 1),
    };
    let seconds = number.parse::<i64>().ok()?.checked_mul(unit)?;
    (1..=7 * 24 * 3600).contains(&seconds).then_some(seconds)
}

#[cfg(test)]
mod tests;
