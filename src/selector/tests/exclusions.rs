//! The table, part two: what excludes a candidate, in words.

use super::*;

#[allow(clippy::too_many_lines)] // one table, read top to bottom
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a subscription over the threshold is excluded with its window and reset",
            task: task(),
            policy: policy(Strategy::PreferClaude),
            candidates: with(mix(), "claude-max", |c| {
                *c = sub("claude-max", Claude, 85.0);
            }),
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
                (
                    "claude-max",
                    None,
                    vec!["5-hour window at 85 % ≥ 80 % threshold, resets 14:05 UTC"],
                ),
            ],
            reason: None,
        },
        Case {
            name: "the threshold applies to every window, and exactly at it excludes",
            task: task(),
            policy: Policy {
                threshold_percent: 90.0,
                ..policy(Strategy::PreferClaude)
            },
            candidates: vec![Candidate {
                snapshot: Some(snapshot(
                    Claude,
                    1,
                    vec![window("five_hour", 40.0), window("seven_day", 90.0)],
                )),
                ..Candidate::new("claude-max", Claude, OAuth)
            }],
            chosen: None,
            report: vec![(
                "claude-max",
                None,
                vec!["7-day window at 90 % ≥ 90 % threshold, resets 14:05 UTC"],
            )],
            reason: Some("no eligible account (1 excluded)"),
        },
        Case {
            name: "a per-model window counts only for its model",
            task: TaskContext {
                model: Some("claude-opus-4-1".to_owned()),
                ..task()
            },
            policy: policy(Strategy::PreferClaude),
            candidates: vec![
                Candidate {
                    snapshot: Some(snapshot(
                        Claude,
                        1,
                        vec![window("five_hour", 20.0), window("seven_day_opus", 95.0)],
                    )),
                    ..Candidate::new("claude-max", Claude, OAuth)
                },
                Candidate {
                    snapshot: Some(snapshot(
                        Claude,
                        1,
                        vec![window("five_hour", 20.0), window("seven_day_sonnet", 95.0)],
                    )),
                    ..Candidate::new("claude-pro", Claude, OAuth)
                },
            ],
            chosen: Some("claude-pro"),
            report: vec![
                (
                    "claude-pro",
                    Some(1),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        "headroom 80 % (5-hour window at 20 %)",
                    ],
                ),
                (
                    "claude-max",
                    None,
                    vec!["7-day opus window at 95 % ≥ 80 % threshold, resets 14:05 UTC"],
                ),
            ],
            reason: None,
        },
        Case {
            name: "a stale snapshot still counts until its windows reset, and says so",
            task: task(),
            policy: policy(Strategy::PreferClaude),
            candidates: vec![
                Candidate {
                    snapshot: Some(snapshot(Claude, 42, vec![window("five_hour", 85.0)])),
                    ..Candidate::new("claude-max", Claude, OAuth)
                },
                Candidate {
                    snapshot: Some(snapshot(
                        Claude,
                        200,
                        vec![UsageWindow {
                            resets_at: Some(minutes(-10)),
                            ..window("five_hour", 99.0)
                        }],
                    )),
                    ..Candidate::new("claude-pro", Claude, OAuth)
                },
                Candidate {
                    snapshot: Some(snapshot(Claude, 20, vec![window("five_hour", 20.0)])),
                    ..Candidate::new("claude-team", Claude, OAuth)
                },
            ],
            chosen: Some("claude-pro"),
            report: vec![
                (
                    "claude-pro",
                    Some(1),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        NONE,
                        "snapshot 3 h 20 min old (older than the 15-minute TTL)",
                    ],
                ),
                (
                    "claude-team",
                    Some(2),
                    vec![
                        "claude subscription: step 1 of 4 in the prefer-claude chain",
                        "headroom 80 % (5-hour window at 20 %)",
                        "snapshot 20 min old (older than the 15-minute TTL)",
                    ],
                ),
                (
                    "claude-max",
                    None,
                    vec![
                        "5-hour window at 85 % ≥ 80 % threshold, resets 14:05 UTC",
                        "snapshot 42 min old (older than the 15-minute TTL)",
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "disabled, needs login and a running cooldown exclude; an expired cooldown does not",
            task: task(),
            policy: policy(Strategy::PreferClaude),
            candidates: with(
                with(
                    with(
                        with(mix(), "claude-max", |c| c.enabled = false),
                        "claude-key",
                        |c| c.needs_login = true,
                    ),
                    "openai-plus",
                    |c| {
                        c.cooldown = Some(Cooldown {
                            until: minutes(65),
                            cause: CooldownCause::RateLimited,
                        });
                    },
                ),
                "openai-key",
                |c| {
                    c.cooldown = Some(Cooldown {
                        until: minutes(-1),
                        cause: CooldownCause::AuthFailed,
                    });
                },
            ),
            chosen: Some("openai-key"),
            report: vec![
                (
                    "openai-key",
                    Some(1),
                    vec![
                        "openai API key: step 4 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                ("claude-key", None, vec!["needs login"]),
                ("claude-max", None, vec!["disabled"]),
                (
                    "openai-plus",
                    None,
                    vec!["in cooldown until 14:05 UTC (rate limited)"],
                ),
            ],
            reason: None,
        },
        Case {
            name: "a budget the task would overrun excludes, with its arithmetic",
            task: TaskContext {
                estimated_tokens: Some(500),
                ..task()
            },
            policy: policy(Strategy::PreferClaude),
            candidates: vec![
                Candidate {
                    budgets: vec![BudgetView {
                        scope: None,
                        window: "daily".to_owned(),
                        unit: BudgetUnit::Tokens,
                        limit: 100_000.0,
                        used: 99_800.0,
                        reserved: 0.0,
                        resets_at: None,
                    }],
                    ..key("claude-key", Claude)
                },
                Candidate {
                    budgets: vec![BudgetView {
                        scope: Some("agent ci-bot".to_owned()),
                        window: "monthly".to_owned(),
                        unit: BudgetUnit::Usd,
                        limit: 5.0,
                        used: 4.0,
                        reserved: 1.0,
                        resets_at: Some(minutes(60 * 24 * 2)),
                    }],
                    ..key("openai-key", OpenAi)
                },
                Candidate {
                    budgets: vec![BudgetView {
                        scope: None,
                        window: "daily".to_owned(),
                        unit: BudgetUnit::Requests,
                        limit: 100.0,
                        used: 98.0,
                        reserved: 0.0,
                        resets_at: None,
                    }],
                    ..key("openai-spare", OpenAi)
                },
            ],
            chosen: Some("openai-spare"),
            report: vec![
                (
                    "openai-spare",
                    Some(1),
                    vec![
                        "openai API key: step 4 of 4 in the prefer-claude chain",
                        NONE,
                        NOSNAP,
                    ],
                ),
                (
                    "claude-key",
                    None,
                    vec!["daily budget 100,000 tokens: 99,800 used + 500 requested"],
                ),
                (
                    "openai-key",
                    None,
                    vec![
                        "monthly budget $5.00 for agent ci-bot: $4.00 used + $1.00 reserved + $0.0017 requested, resets 2026-12-02 13:00 UTC",
                    ],
                ),
            ],
            reason: None,
        },
        Case {
            name: "a token rate limit with less left than the estimate excludes",
            task: TaskContext {
                estimated_tokens: Some(500_000),
                ..task()
            },
            policy: policy(Strategy::PreferClaude),
            candidates: vec![Candidate {
                snapshot: Some(snapshot(
                    Claude,
                    1,
                    vec![UsageWindow {
                        limit: Some(1_000_000),
                        remaining: Some(300_000),
                        ..UsageWindow::named("tokens")
                    }],
                )),
                ..key("claude-key", Claude)
            }],
            chosen: None,
            report: vec![(
                "claude-key",
                None,
                vec!["tokens window: 300,000 tokens left < 500,000 requested"],
            )],
            reason: None,
        },
        Case {
            name: "no candidates at all",
            task: task(),
            policy: Policy::default(),
            candidates: vec![],
            chosen: None,
            report: vec![],
            reason: Some("no accounts to choose from"),
        },
    ]
}
