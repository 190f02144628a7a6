//! Selector benchmark (issue "unified auth manager": selection over 100
//! accounts, goal under 1 ms in the library).
//!
//! `select/100_accounts/<strategy>`: one [`authvault::selector::select`] call
//! over 100 candidates, a realistic mix built once outside the timing:
//! 25 subscriptions and 25 API keys per provider, each subscription with a
//! snapshot of three windows (some stale, some over the threshold), some
//! keys with rate-limit windows, health probes, budgets, cooldowns, disabled
//! accounts and accounts that need login. Run with
//! `cargo bench --bench selector`.

#![allow(
    missing_docs, // criterion_group! generates an undocumented `pub fn`
)]

use std::hint::black_box;

use authvault::model::{CredentialKind, Provider, Snapshot, SnapshotSource, UsageWindow};
use authvault::selector::{
    BudgetUnit, BudgetView, Candidate, Cooldown, CooldownCause, Health, Policy, Strategy,
    TaskContext, select,
};
use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

fn window(name: &str, used: f64, now: DateTime<Utc>) -> UsageWindow {
    UsageWindow {
        utilization_percent: Some(used),
        resets_at: Some(now + TimeDelta::minutes(90)),
        ..UsageWindow::named(name)
    }
}

fn candidates(now: DateTime<Utc>) -> Vec<Candidate> {
    (0..100_i32)
        .map(|i| {
            let provider = if i % 2 == 0 {
                Provider::Claude
            } else {
                Provider::OpenAi
            };
            let credential = if i % 4 < 2 {
                CredentialKind::OAuth
            } else {
                CredentialKind::ApiKey
            };
            let used = f64::from(i * 7 % 100);
            let windows = match credential {
                CredentialKind::OAuth => vec![
                    window("five_hour", used, now),
                    window("seven_day", used / 2.0, now),
                    window("seven_day_opus", used / 3.0, now),
                ],
                CredentialKind::ApiKey => vec![UsageWindow {
                    limit: Some(1_000_000),
                    remaining: Some(1_000_000 - (i as u64 * 9_000)),
                    ..UsageWindow::named("tokens")
                }],
            };
            let age = TimeDelta::minutes(i64::from(i % 30));
            let mut c = Candidate::new(&format!("account-{i:03}"), provider, credential);
            c.priority = i64::from(i % 3);
            c.enabled = i % 17 != 0;
            c.needs_login = i % 19 == 0;
            c.snapshot = Some(Snapshot {
                windows,
                ..Snapshot::empty(provider, SnapshotSource::Headers, now - age)
            });
            c.cooldown = (i % 13 == 0).then_some(Cooldown {
                until: now + TimeDelta::minutes(5),
                cause: CooldownCause::RateLimited,
            });
            c.health = Some(Health {
                latency_ms: 200 + (i as u32 * 37 % 800),
                error_rate: f64::from(i % 5) / 100.0,
                probed_at: now - TimeDelta::minutes(i64::from(i % 90)),
            });
            c.budgets = vec![BudgetView {
                scope: None,
                window: "daily".to_owned(),
                unit: BudgetUnit::Tokens,
                limit: 1_000_000.0,
                used: f64::from(i * 9_900),
                reserved: 1_000.0,
                resets_at: Some(now + TimeDelta::hours(10)),
            }];
            c.last_used = Some(now - TimeDelta::minutes(i64::from(i * 11 % 300)));
            c
        })
        .collect()
}

fn bench_select(c: &mut Criterion) {
    let now = DateTime::parse_from_rfc3339("2026-11-30T13:00:00Z")
        .expect("a valid time")
        .with_timezone(&Utc);
    let candidates = candidates(now);
    let task = TaskContext {
        task_type: "code-generation".to_owned(),
        estimated_tokens: Some(20_000),
        model: Some("claude-opus-4-1".to_owned()),
        ..TaskContext::default()
    };
    let mut group = c.benchmark_group("select/100_accounts");
    for strategy in Strategy::ALL {
        let policy = Policy {
            strategy,
            rotation: strategy == Strategy::CostOptimized,
            ..Policy::default()
        };
        let decision = select(&task, &candidates, &policy, now);
        assert!(
            decision.account.is_some(),
            "{strategy}: {}",
            decision.reason
        );
        assert_eq!(decision.candidates.len(), 100);
        group.bench_function(strategy.as_str(), |b| {
            b.iter(|| select(black_box(&task), black_box(&candidates), &policy, now));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_select);
criterion_main!(benches);
