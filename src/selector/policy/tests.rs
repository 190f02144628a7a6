//! The policy from settings, imported preferences included, and the
//! validation behind `vault policy set` / `unset`.

use serde_json::{Value, json};

use super::*;

type Settings = Vec<(&'static str, Value)>;

fn from(pairs: &[(&str, Value)]) -> Result<Policy, PolicyError> {
    Policy::from_settings(pairs.iter().map(|(k, v)| (*k, v)))
}

/// The settings an import of `extended-auth.json` writes: its
/// `provider_preferences`, each under `provider_preferences.<key>`.
fn imported_fixture() -> Vec<(String, Value)> {
    let text = include_str!("../../../tests/fixtures/legacy/extended-auth.json");
    let file: Value = serde_json::from_str(text).unwrap();
    file["provider_preferences"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (format!("provider_preferences.{k}"), v.clone()))
        .collect()
}

#[test]
fn the_imported_legacy_preferences_are_honoured() {
    let settings = imported_fixture();
    let policy = Policy::from_settings(settings.iter().map(|(k, v)| (k.as_str(), v))).unwrap();
    assert_eq!(
        policy,
        Policy {
            strategy: Strategy::CostOptimized,
            provider: Some(Provider::Claude),
            fallback: true,
            ..Policy::default()
        }
    );
}

#[test]
fn settings_make_the_policy() {
    let default = Policy::default;
    let cases: Vec<(&str, Settings, Policy)> = vec![
        ("nothing set", vec![], default()),
        (
            "unrelated keys are not the policy's",
            vec![
                ("last_provider_selection.reason", json!("x")),
                ("theme", json!(1)),
            ],
            default(),
        ),
        (
            "a legacy strategy name",
            vec![(
                "provider_preferences.selection_strategy",
                json!("PreferOpenAI"),
            )],
            Policy {
                strategy: Strategy::PreferOpenai,
                ..default()
            },
        ),
        (
            "cost_optimization alone",
            vec![("provider_preferences.cost_optimization", json!(true))],
            Policy {
                strategy: Strategy::CostOptimized,
                ..default()
            },
        ),
        (
            "cost_optimization false changes nothing",
            vec![("provider_preferences.cost_optimization", json!(false))],
            default(),
        ),
        (
            "a preferred provider alone means user-preference",
            vec![("provider_preferences.preferred_provider", json!("OpenAI"))],
            Policy {
                strategy: Strategy::UserPreference,
                provider: Some(Provider::OpenAi),
                ..default()
            },
        ),
        (
            "fallback_enabled",
            vec![("provider_preferences.fallback_enabled", json!(false))],
            Policy {
                fallback: false,
                ..default()
            },
        ),
        (
            "the policy's own keys override imported ones, even ones it cannot read",
            vec![
                (
                    "provider_preferences.selection_strategy",
                    json!("CostOptimized"),
                ),
                ("provider_preferences.preferred_provider", json!("Gemini")),
                ("provider_preferences.fallback_enabled", json!(false)),
                ("policy.strategy", json!("performance-optimized")),
                ("policy.provider", json!("openai")),
                ("policy.fallback", json!(true)),
            ],
            Policy {
                strategy: Strategy::PerformanceOptimized,
                provider: Some(Provider::OpenAi),
                ..default()
            },
        ),
        (
            "every policy key",
            vec![
                ("policy.threshold", json!(72.5)),
                ("policy.rotation", json!(true)),
                ("policy.cooldown", json!(90)),
                ("policy.pin", json!("work")),
                ("policy.task.quick-query", json!("cost-optimized")),
                ("policy.task.review", json!("prefer-openai")),
            ],
            Policy {
                threshold_percent: 72.5,
                rotation: true,
                cooldown: TimeDelta::seconds(90),
                pin: Some("work".to_owned()),
                task_strategies: [
                    ("quick-query".to_owned(), Strategy::CostOptimized),
                    ("review".to_owned(), Strategy::PreferOpenai),
                ]
                .into(),
                ..default()
            },
        ),
    ];
    for (name, settings, want) in cases {
        assert_eq!(from(&settings), Ok(want), "{name}");
    }
}

#[test]
fn settings_that_cannot_be_understood_are_named() {
    let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
        (
            vec![("provider_preferences.preferred_provider", json!("Gemini"))],
            "policy key `provider_preferences.preferred_provider`: `\"Gemini\"` is not valid (expected Claude or OpenAI)",
        ),
        (
            vec![("provider_preferences.selection_strategy", json!("Fastest"))],
            "policy key `provider_preferences.selection_strategy`: `\"Fastest\"` is not valid (expected prefer-claude, prefer-openai, cost-optimized, performance-optimized, user-preference)",
        ),
        (
            vec![("policy.threshold", json!(150))],
            "policy key `policy.threshold`: `150` is not valid (expected a percentage above 0 and at most 100)",
        ),
        (
            vec![("policy.colour", json!("blue"))],
            "unknown policy key `policy.colour` (expected one of: strategy, task.<type>, threshold, fallback, rotation, cooldown, pin, provider)",
        ),
    ];
    for (settings, want) in cases {
        assert_eq!(from(&settings).unwrap_err().to_string(), want);
    }
}

#[test]
fn policy_set_checks_the_value_and_names_the_row() {
    let ok = [
        (
            "strategy",
            "cost-optimized",
            "policy.strategy",
            json!("cost-optimized"),
        ),
        (
            "task.quick-query",
            "prefer-openai",
            "policy.task.quick-query",
            json!("prefer-openai"),
        ),
        ("threshold", "85%", "policy.threshold", json!(85.0)),
        ("threshold", "100", "policy.threshold", json!(100.0)),
        ("rotation", "on", "policy.rotation", json!(true)),
        ("fallback", "false", "policy.fallback", json!(false)),
        ("cooldown", "5m", "policy.cooldown", json!(300)),
        ("cooldown", "90", "policy.cooldown", json!(90)),
        ("cooldown", "2h", "policy.cooldown", json!(7200)),
        ("pin", "work", "policy.pin", json!("work")),
        ("provider", "anthropic", "policy.provider", json!("claude")),
    ];
    for (key, value, row, json) in ok {
        let setting = Policy::set(key, value).unwrap();
        assert_eq!(
            setting,
            Setting {
                key: row.to_owned(),
                value: json
            },
            "{key} {value}"
        );
        // What set writes, from_settings reads back.
        assert!(from(&[(row, setting.value)]).is_ok(), "{key} {value}");
    }
    let bad = [
        (
            "strategy",
            "fastest",
            "policy key `strategy`: `fastest` is not valid (expected prefer-claude, prefer-openai, cost-optimized, performance-optimized, user-preference)",
        ),
        (
            "threshold",
            "0",
            "policy key `threshold`: `0` is not valid (expected a percentage above 0 and at most 100)",
        ),
        (
            "threshold",
            "NaN",
            "policy key `threshold`: `NaN` is not valid (expected a percentage above 0 and at most 100)",
        ),
        (
            "rotation",
            "yes",
            "policy key `rotation`: `yes` is not valid (expected on, off, true or false)",
        ),
        (
            "cooldown",
            "0s",
            "policy key `cooldown`: `0s` is not valid (expected seconds, or a number with s, m or h)",
        ),
        (
            "cooldown",
            "-5m",
            "policy key `cooldown`: `-5m` is not valid (expected seconds, or a number with s, m or h)",
        ),
        (
            "pin",
            "",
            "policy key `pin`: `` is not valid (expected an account label)",
        ),
        (
            "provider",
            "gemini",
            "policy key `provider`: `gemini` is not valid (expected claude or openai)",
        ),
        (
            "task.Quick Query",
            "cost-optimized",
            "unknown policy key `task.Quick Query` (expected one of: strategy, task.<type>, threshold, fallback, rotation, cooldown, pin, provider)",
        ),
        (
            "task.",
            "cost-optimized",
            "unknown policy key `task.` (expected one of: strategy, task.<type>, threshold, fallback, rotation, cooldown, pin, provider)",
        ),
    ];
    for (key, value, want) in bad {
        assert_eq!(
            Policy::set(key, value).unwrap_err().to_string(),
            want,
            "{key} {value}"
        );
    }
}

#[test]
fn policy_unset_names_the_row_and_the_imported_value_returns() {
    assert_eq!(
        Policy::unset("task.quick-query"),
        Ok("policy.task.quick-query".to_owned())
    );
    assert_eq!(
        Policy::unset("colour"),
        Err(PolicyError::UnknownKey {
            key: "colour".to_owned()
        })
    );
    let mut settings = vec![
        (
            "provider_preferences.selection_strategy",
            json!("CostOptimized"),
        ),
        ("policy.strategy", json!("prefer-openai")),
    ];
    assert_eq!(from(&settings).unwrap().strategy, Strategy::PreferOpenai);
    let row = Policy::unset("strategy").unwrap();
    settings.retain(|(k, _)| *k != row);
    assert_eq!(from(&settings).unwrap().strategy, Strategy::CostOptimized);
}
