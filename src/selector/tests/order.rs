//! The table, part three: pins, fallback, subscription queues, tie-breaks.

use super::*;

#[allow(clippy::too_many_lines)] // one table, read top to bottom
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a pinned account goes first",
            task: TaskContext {
                account: Some("openai-key".to_owned()),
                ..task()
            },
            policy: policy(Strategy::PreferClaude),
            candidates: mix(),
            chosen: Some("openai-key"),
            report: vec![
                (
                    "openai-key",
                    Some(1),
                    vec![
                        "pinned",
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
                (
                    "claude-key",
                    Some(3),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "openai-plus",
                    Some(4),
                    vec![
                        "openai subscription: step 3 of 4 in the prefer-claude chain",
                        OP,
                    ],
                ),
            ],
            reason: Some("pinned account `openai-key`"),
        },
        Case {
            name: "an unusable pin falls back and says why",
            task: task(),
            policy: Policy {
                pin: Some("claude-max".to_owned()),
                ..policy(Strategy::PreferClaude)
            },
            candidates: with(mix(), "claude-max", |c| c.needs_login = true),
            chosen: Some("claude-key"),
            report: vec![
                (
                    "claude-key",
                    Some(1),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "openai-plus",
                    Some(2),
                    vec![
                        "openai subscription: step 3 of 4 in the prefer-claude chain",
                        OP,
                    ],
                ),
                (
                    "openai-key",
                    Some(3),
                    vec![
                        "openai API key: step 4 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                ("claude-max", None, vec!["needs login"]),
            ],
            reason: Some(
                "pinned account `claude-max` cannot serve (needs login); `claude-key` (claude api_key) ranks first of 3 eligible",
            ),
        },
        Case {
            name: "an unusable pin without fallback chooses nothing",
            task: task(),
            policy: Policy {
                pin: Some("claude-max".to_owned()),
                fallback: false,
                ..policy(Strategy::PreferClaude)
            },
            candidates: with(mix(), "claude-max", |c| c.enabled = false),
            chosen: None,
            report: vec![
                (
                    "claude-key",
                    None,
                    vec!["fallback is off: only the pinned account `claude-max` may serve"],
                ),
                ("claude-max", None, vec!["disabled"]),
                (
                    "openai-key",
                    None,
                    vec!["fallback is off: only the pinned account `claude-max` may serve"],
                ),
                (
                    "openai-plus",
                    None,
                    vec!["fallback is off: only the pinned account `claude-max` may serve"],
                ),
            ],
            reason: Some(
                "pinned account `claude-max` cannot serve (disabled); no eligible account (4 excluded; fallback is off)",
            ),
        },
        Case {
            name: "a pin that names no candidate is reported",
            task: TaskContext {
                account: Some("gone".to_owned()),
                ..task()
            },
            policy: policy(Strategy::PreferOpenai),
            candidates: vec![key("openai-key", OpenAi)],
            chosen: Some("openai-key"),
            report: vec![(
                "openai-key",
                Some(1),
                vec![
                    "openai API key: step 2 of 4 in the prefer-openai chain",
                    NONE,
                    NOSNAP,
                ],
            )],
            reason: Some(
                "pinned account `gone` not found; `openai-key` (openai api_key) ranks first of 1 eligible",
            ),
        },
        Case {
            name: "without fallback only the strategy's provider serves",
            task: task(),
            policy: Policy {
                fallback: false,
                ..policy(Strategy::PreferClaude)
            },
            candidates: vec![
                sub("claude-max", Claude, 90.0),
                sub("openai-plus", OpenAi, 10.0),
            ],
            chosen: None,
            report: vec![
                (
                    "claude-max",
                    None,
                    vec!["5-hour window at 90 % ≥ 80 % threshold, resets 14:05 UTC"],
                ),
                (
                    "openai-plus",
                    None,
                    vec!["fallback is off: only claude accounts may serve"],
                ),
            ],
            reason: Some("no eligible account (2 excluded; fallback is off)"),
        },
        Case {
            name: "without rotation, subscriptions of one provider fail over in account order, not by headroom",
            task: task(),
            policy: policy(Strategy::CostOptimized),
            candidates: vec![
                sub("max-b", Claude, 10.0),
                sub("max-a", Claude, 50.0),
                sub("max-c", Claude, 0.0),
                sub("plus", OpenAi, 60.0),
            ],
            chosen: Some("max-a"),
            report: vec![
                (
                    "max-a",
                    Some(1),
                    vec![
                        "subscription: already paid for",
                        "headroom 50 % (5-hour window at 50 %)",
                    ],
                ),
                (
                    "max-b",
                    Some(2),
                    vec![
                        "subscription: already paid for",
                        "headroom 90 % (5-hour window at 10 %)",
                    ],
                ),
                (
                    "max-c",
                    Some(3),
                    vec![
                        "subscription: already paid for",
                        "headroom 100 % (5-hour window at 0 %)",
                    ],
                ),
                (
                    "plus",
                    Some(4),
                    vec![
                        "subscription: already paid for",
                        "headroom 40 % (5-hour window at 60 %)",
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "without rotation, the first subscription excluded hands over to the next",
            task: task(),
            policy: policy(Strategy::PreferClaude),
            candidates: vec![
                sub("max-a", Claude, 80.0),
                Candidate {
                    priority: -1,
                    ..sub("max-b", Claude, 10.0)
                },
            ],
            chosen: Some("max-b"),
            report: vec![
                (
                    "max-b",
                    Some(1),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        "headroom 90 % (5-hour window at 10 %)",
                    ],
                ),
                (
                    "max-a",
                    None,
                    vec!["5-hour window at 80 % ≥ 80 % threshold, resets 14:05 UTC"],
                ),
            ],
            reason: None,
        },
        Case {
            name: "with rotation, the least recently used subscription goes first",
            task: task(),
            policy: Policy {
                rotation: true,
                ..policy(Strategy::PreferClaude)
            },
            candidates: vec![
                Candidate {
                    last_used: Some(minutes(-30)),
                    ..sub("max-a", Claude, 10.0)
                },
                Candidate {
                    last_used: Some(minutes(-60)),
                    ..sub("max-b", Claude, 10.0)
                },
                Candidate {
                    last_used: None,
                    priority: -5,
                    ..sub("max-c", Claude, 70.0)
                },
            ],
            chosen: Some("max-c"),
            report: vec![
                (
                    "max-c",
                    Some(1),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        "headroom 30 % (5-hour window at 70 %)",
                        "never used",
                    ],
                ),
                (
                    "max-b",
                    Some(2),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        "headroom 90 % (5-hour window at 10 %)",
                        "last used 12:00 UTC",
                    ],
                ),
                (
                    "max-a",
                    Some(3),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        "headroom 90 % (5-hour window at 10 %)",
                        "last used 12:30 UTC",
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "API keys tie-break by headroom, then priority, then label",
            task: task(),
            policy: policy(Strategy::PreferClaude),
            candidates: vec![
                key("key-c", Claude),
                Candidate {
                    priority: 1,
                    ..key("key-d", Claude)
                },
                Candidate {
                    snapshot: Some(snapshot(
                        Claude,
                        1,
                        vec![UsageWindow {
                            limit: Some(1_000_000),
                            remaining: Some(900_000),
                            ..UsageWindow::named("tokens")
                        }],
                    )),
                    ..key("key-b", Claude)
                },
                key("key-a", Claude),
                Candidate {
                    snapshot: Some(snapshot(
                        Claude,
                        1,
                        vec![UsageWindow {
                            limit: Some(1_000_000),
                            remaining: Some(4_000),
                            ..UsageWindow::named("input_tokens")
                        }],
                    )),
                    ..key("key-e", Claude)
                },
            ],
            chosen: Some("key-b"),
            report: vec![
                (
                    "key-b",
                    Some(1),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        "headroom 90 % (tokens window at 10 %)",
                    ],
                ),
                (
                    "key-d",
                    Some(2),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "key-a",
                    Some(3),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "key-c",
                    Some(4),
                    vec![
                        "claude API key: step 2 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "key-e",
                    None,
                    vec!["input_tokens window at 99.6 % ≥ 80 % threshold"],
                ),
            ],
            reason: None,
        },
    ]
}
