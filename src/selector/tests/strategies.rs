//! The table, part one: how each strategy ranks the usual mix.

use super::*;

#[allow(clippy::too_many_lines)] // one table, read top to bottom
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "prefer-claude walks the Claude-first chain",
            task: task(),
            policy: policy(Strategy::PreferClaude),
            candidates: mix(),
            chosen: Some("claude-max"),
            report: vec![
                (
                    "claude-max",
                    Some(1),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        CM,
                    ],
                ),
                (
                    "claude-key",
                    Some(2),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "openai-plus",
                    Some(3),
                    vec![
                        "openai subscription: step 3 of 4 in the prefer-claude chain",
                        OP,
                    ],
                ),
                (
                    "openai-key",
                    Some(4),
                    vec![
                        "openai API key: step 4 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
            ],
            reason: Some("`claude-max` (claude oauth) ranks first of 4 eligible"),
        },
        Case {
            name: "prefer-openai mirrors it",
            task: task(),
            policy: policy(Strategy::PreferOpenai),
            candidates: mix(),
            chosen: Some("openai-plus"),
            report: vec![
                (
                    "openai-plus",
                    Some(1),
                    vec![
                        "openai subscription: step 1 of 4 in the prefer-openai chain",
                        OP,
                    ],
                ),
                (
                    "openai-key",
                    Some(2),
                    vec![
                        "openai API key: step 2 of 4 in the prefer-openai chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "claude-max",
                    Some(3),
                    vec![
                        "claude subscription: step 3 of 4 in the prefer-openai chain",
                        CM,
                    ],
                ),
                (
                    "claude-key",
                    Some(4),
                    vec![
                        "claude API key: step 4 of 4 in the prefer-openai chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "user-preference follows the policy's provider",
            task: task(),
            policy: Policy {
                provider: Some(OpenAi),
                ..policy(Strategy::UserPreference)
            },
            candidates: mix(),
            chosen: Some("openai-plus"),
            report: vec![
                (
                    "openai-plus",
                    Some(1),
                    vec![
                        "openai subscription: step 1 of 4 in the user-preference chain",
                        OP,
                    ],
                ),
                (
                    "openai-key",
                    Some(2),
                    vec![
                        "openai API key: step 2 of 4 in the user-preference chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "claude-max",
                    Some(3),
                    vec![
                        "claude subscription: step 3 of 4 in the user-preference chain",
                        CM,
                    ],
                ),
                (
                    "claude-key",
                    Some(4),
                    vec![
                        "claude API key: step 4 of 4 in the user-preference chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "cost-optimized: subscriptions by headroom, then keys by price",
            task: task(),
            policy: policy(Strategy::CostOptimized),
            candidates: mix(),
            chosen: Some("openai-plus"),
            report: vec![
                (
                    "openai-plus",
                    Some(1),
                    vec!["subscription: already paid for", OP],
                ),
                (
                    "claude-max",
                    Some(2),
                    vec!["subscription: already paid for", CM],
                ),
                (
                    "openai-key",
                    Some(3),
                    vec![
                        "API key: about $0.0172 for 5,000 tokens at gpt-5 list price",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "claude-key",
                    Some(4),
                    vec![
                        "API key: about $0.0300 for 5,000 tokens at sonnet list price",
                        NONE,
                        NOSNAP,
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "cost-optimized: the model picks the price",
            task: TaskContext {
                model: Some("claude-haiku-4-5".to_owned()),
                ..task()
            },
            policy: policy(Strategy::CostOptimized),
            candidates: vec![key("claude-key", Claude), key("openai-key", OpenAi)],
            chosen: Some("claude-key"),
            report: vec![
                (
                    "claude-key",
                    Some(1),
                    vec![
                        "API key: about $0.0100 for 5,000 tokens at haiku list price",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "openai-key",
                    Some(2),
                    vec![
                        "API key: about $0.0172 for 5,000 tokens at gpt-5 list price",
                        NONE,
                        NOSNAP,
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "performance-optimized: recent probes by error rate, then latency, then the rest by headroom",
            task: task(),
            policy: policy(Strategy::PerformanceOptimized),
            candidates: with(
                with(
                    with(mix(), "claude-key", |c| {
                        c.health = Some(Health {
                            latency_ms: 300,
                            error_rate: 0.01,
                            probed_at: minutes(-5),
                        });
                    }),
                    "openai-key",
                    |c| {
                        c.health = Some(Health {
                            latency_ms: 900,
                            error_rate: 0.0,
                            probed_at: minutes(-5),
                        });
                    },
                ),
                "claude-max",
                |c| {
                    c.health = Some(Health {
                        latency_ms: 100,
                        error_rate: 0.0,
                        probed_at: minutes(-61),
                    });
                },
            ),
            chosen: Some("openai-key"),
            report: vec![
                (
                    "openai-key",
                    Some(1),
                    vec![
                        "error rate 0 %, latency 900 ms (probed 12:55 UTC)",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "claude-key",
                    Some(2),
                    vec![
                        "error rate 1 %, latency 300 ms (probed 12:55 UTC)",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "openai-plus",
                    Some(3),
                    vec!["no health probe in the last 60 min", OP],
                ),
                (
                    "claude-max",
                    Some(4),
                    vec!["no health probe in the last 60 min", CM],
                ),
            ],
            reason: None,
        },
        Case {
            name: "the task's provider goes before the strategy's chain",
            task: TaskContext {
                provider: Some(OpenAi),
                ..task()
            },
            policy: policy(Strategy::PreferClaude),
            candidates: vec![sub("claude-max", Claude, 30.0), key("openai-key", OpenAi)],
            chosen: Some("openai-key"),
            report: vec![
                (
                    "openai-key",
                    Some(1),
                    vec![
                        "preferred provider openai",
                        "openai API key: step 4 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "claude-max",
                    Some(2),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        CM,
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "a task type's own strategy overrides the default",
            task: TaskContext {
                task_type: "quick-query".to_owned(),
                ..task()
            },
            policy: Policy {
                task_strategies: [("quick-query".to_owned(), Strategy::CostOptimized)].into(),
                ..policy(Strategy::PreferClaude)
            },
            candidates: vec![key("claude-key", Claude), sub("openai-plus", OpenAi, 10.0)],
            chosen: Some("openai-plus"),
            report: vec![
                (
                    "openai-plus",
                    Some(1),
                    vec!["subscription: already paid for", OP],
                ),
                (
                    "claude-key",
                    Some(2),
                    vec![
                        "API key: about $0.0300 for 5,000 tokens at sonnet list price",
                        NONE,
                        NOSNAP,
                    ],
                ),
            ],
            reason: None,
        },
    ]
}
