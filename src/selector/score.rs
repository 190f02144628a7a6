//! The decision itself: exclusions, ranking keys, the subscription queues.
//! The rules are described in the module documentation of `selector`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::price::price_per_million;
use super::{
    BudgetUnit, BudgetView, Candidate, CandidateReport, Decision, Freshness, HEALTH_TTL, Policy,
    SNAPSHOT_TTL, Strategy, TaskContext,
};
use super::{approx, format};
use crate::model::{CredentialKind, Provider, UsageWindow};

/// What the selector found out about one candidate.
struct Assessed<'a> {
    candidate: &'a Candidate,
    /// Why it cannot serve; empty when eligible.
    exclusions: Vec<String>,
    /// Whether every exclusion comes from a usage window of a stale or
    /// missing snapshot, so a refresh could lift it.
    only_window_exclusions: bool,
    /// What ranked it (for eligible candidates).
    notes: Vec<String>,
    freshness: Freshness,
    pinned: bool,
    key: Key,
}

/// The ranking key: smaller ranks first.
struct Key {
    /// Not of the task's preferred provider.
    not_preferred: bool,
    /// The strategy's step (chain position, subscription before key…).
    tier: u8,
    /// The strategy's measure within a step (price, error rate, latency).
    measure: (u64, u64),
    /// Headroom in percent; `None` (unknown) after every known one.
    headroom: Option<f64>,
    priority: i64,
    label: String,
    provider: Provider,
    credential: CredentialKind,
}

impl Key {
    fn compare(&self, other: &Self) -> Ordering {
        let headroom = match (self.headroom, other.headroom) {
            (Some(a), Some(b)) => b.total_cmp(&a),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        (self.not_preferred, self.tier, self.measure)
            .cmp(&(other.not_preferred, other.tier, other.measure))
            .then(headroom)
            .then(other.priority.cmp(&self.priority))
            .then_with(|| {
                (&self.label, self.provider, self.credential).cmp(&(
                    &other.label,
                    other.provider,
                    other.credential,
                ))
            })
    }
}

pub(super) fn decide(
    task: &TaskContext,
    candidates: &[Candidate],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Decision {
    let strategy = policy.strategy_for(&task.task_type);
    let pin = task.account.as_deref().or(policy.pin.as_deref());
    let ctx = Ctx {
        task,
        policy,
        strategy,
        pin,
        now,
    };
    let assessed: Vec<Assessed<'_>> = candidates.iter().map(|c| assess(c, &ctx)).collect();
    let order = rank(&assessed, policy.rotation);

    let mut reports: Vec<CandidateReport> = order
        .iter()
        .enumerate()
        .map(|(place, &i)| report(&assessed[i], Some(place as u32 + 1)))
        .collect();
    let mut excluded: Vec<&Assessed<'_>> = assessed
        .iter()
        .filter(|a| !a.exclusions.is_empty())
        .collect();
    excluded.sort_by_key(|a| {
        let c = a.candidate;
        (c.label.as_str(), c.provider, c.credential)
    });
    reports.extend(excluded.into_iter().map(|a| report(a, None)));

    let chosen = order.first().map(|&i| assessed[i].candidate);
    let reason = reason(&assessed, chosen, pin, policy, order.len());
    Decision {
        account: chosen.map(|c| c.label.clone()),
        provider: chosen.map(|c| c.provider),
        credential: chosen.map(|c| c.credential),
        strategy,
        reason,
        candidates: reports,
    }
}

fn report(a: &Assessed<'_>, score: Option<u32>) -> CandidateReport {
    let eligible = a.exclusions.is_empty();
    let mut reasons = if eligible {
        a.notes.clone()
    } else {
        a.exclusions.clone()
    };
    match a.freshness {
        Freshness::Stale(age) => reasons.push(format!(
            "snapshot {} old (older than the {}-minute TTL)",
            format::age(age),
            SNAPSHOT_TTL.num_minutes()
        )),
        Freshness::Missing if eligible => reasons.push("no usage snapshot".to_owned()),
        Freshness::Missing | Freshness::Fresh => {}
    }
    CandidateReport {
        account: a.candidate.label.clone(),
        provider: a.candidate.provider,
        credential: a.candidate.credential,
        eligible,
        score,
        reasons,
        freshness: a.freshness,
        needs_refresh: a.freshness != Freshness::Fresh && (eligible || a.only_window_exclusions),
    }
}

/// The decision's one sentence.
fn reason(
    assessed: &[Assessed<'_>],
    chosen: Option<&Candidate>,
    pin: Option<&str>,
    policy: &Policy,
    eligible: usize,
) -> String {
    let pinned = assessed.iter().find(|a| a.pinned);
    let pin_note = match (pin, pinned) {
        (Some(label), None) => format!("pinned account `{label}` not found; "),
        (Some(label), Some(a)) if !a.exclusions.is_empty() => format!(
            "pinned account `{label}` cannot serve ({}); ",
            a.exclusions.join("; ")
        ),
        _ => String::new(),
    };
    match chosen {
        Some(c) if pinned.is_some_and(|a| a.candidate.label == c.label) => {
            format!("pinned account `{}`", c.label)
        }
        Some(c) => format!(
            "{pin_note}`{}` ({} {}) ranks first of {eligible} eligible",
            c.label, c.provider, c.credential
        ),
        None if assessed.is_empty() => "no accounts to choose from".to_owned(),
        None => format!(
            "{pin_note}no eligible account ({} excluded{})",
            assessed.len(),
            if policy.fallback {
                ""
            } else {
                "; fallback is off"
            }
        ),
    }
}

/// Eligible candidates in fallback order.
fn rank(assessed: &[Assessed<'_>], rotation: bool) -> Vec<usize> {
    let eligible = |i: &usize| assessed[*i].exclusions.is_empty();
    let mut order: Vec<usize> = (0..assessed.len())
        .filter(|i| eligible(i) && assessed[*i].pinned)
        .take(1)
        .collect();
    // Subscriptions of one provider queue up; every API key is its own queue.
    let mut queues: BTreeMap<(Provider, usize), Vec<usize>> = BTreeMap::new();
    for i in (0..assessed.len()).filter(|i| eligible(i) && !order.contains(i)) {
        let c = assessed[i].candidate;
        let queue = match c.credential {
            CredentialKind::OAuth => usize::MAX,
            CredentialKind::ApiKey => i,
        };
        queues.entry((c.provider, queue)).or_default().push(i);
    }
    let mut queues: Vec<Vec<usize>> = queues.into_values().collect();
    for queue in &mut queues {
        queue.sort_by(|&a, &b| {
            let (x, y) = (&assessed[a], &assessed[b]);
            let turn = if rotation {
                x.candidate.last_used.cmp(&y.candidate.last_used)
            } else {
                y.candidate
                    .priority
                    .cmp(&x.candidate.priority)
                    .then_with(|| x.candidate.label.cmp(&y.candidate.label))
            };
            turn.then_with(|| x.key.compare(&y.key))
        });
        queue.reverse(); // pop from the back
    }
    while let Some(best) = (0..queues.len())
        .filter(|&q| !queues[q].is_empty())
        .min_by(|&a, &b| {
            let head = |q: usize| &assessed[*queues[q].last().expect("non-empty")].key;
            head(a).compare(head(b))
        })
    {
        order.push(queues[best].pop().expect("non-empty"));
    }
    order
}

/// What every candidate is judged against.
struct Ctx<'t> {
    task: &'t TaskContext,
    policy: &'t Policy,
    strategy: Strategy,
    pin: Option<&'t str>,
    now: DateTime<Utc>,
}

/// Why `c` cannot serve (empty when it can), and whether only usage windows
/// say so (then a refresh of a stale snapshot could lift them).
fn exclusions(
    c: &Candidate,
    ctx: &Ctx<'_>,
    windows: &[(&UsageWindow, f64)],
) -> (Vec<String>, bool) {
    let (task, policy, now) = (ctx.task, ctx.policy, ctx.now);
    let mut exclusions = Vec::new();
    if !c.enabled {
        exclusions.push("disabled".to_owned());
    }
    if c.needs_login {
        exclusions.push("needs login".to_owned());
    }
    if let Some(why) = &c.unavailable {
        exclusions.push(why.clone());
    }
    if let Some(cooldown) = c.cooldown.filter(|cd| cd.until > now) {
        exclusions.push(format!(
            "in cooldown until {} ({})",
            format::time(cooldown.until, now),
            cooldown.cause.as_str()
        ));
    }
    let before_windows = exclusions.len();
    for (w, used) in windows {
        let resets = w
            .resets_at
            .map(|t| format!(", resets {}", format::time(t, now)))
            .unwrap_or_default();
        if *used >= policy.threshold_percent {
            exclusions.push(format!(
                "{} at {} ≥ {} threshold{resets}",
                format::window(w),
                format::percent(*used),
                format::percent(policy.threshold_percent)
            ));
        } else if let (Some(left), Some(wanted), true) = (
            w.remaining,
            task.estimated_tokens,
            w.name.ends_with("tokens"),
        ) && wanted > left
        {
            exclusions.push(format!(
                "{}: {} tokens left < {} requested{resets}",
                format::window(w),
                format::count(approx(left)),
                format::count(approx(wanted))
            ));
        }
    }
    let after_windows = exclusions.len();
    for budget in &c.budgets {
        if let Some(why) = budget_overrun(budget, c, task, now) {
            exclusions.push(why);
        }
    }
    if !policy.fallback {
        let only = task.provider.or(match ctx.strategy {
            Strategy::PreferClaude => Some(Provider::Claude),
            Strategy::PreferOpenai => Some(Provider::OpenAi),
            Strategy::UserPreference => Some(policy.provider.unwrap_or(Provider::Claude)),
            Strategy::CostOptimized | Strategy::PerformanceOptimized => policy.provider,
        });
        match (ctx.pin, only) {
            (Some(label), _) if label != c.label => exclusions.push(format!(
                "fallback is off: only the pinned account `{label}` may serve"
            )),
            (None, Some(p)) if c.provider != p => {
                exclusions.push(format!("fallback is off: only {p} accounts may serve"));
            }
            _ => {}
        }
    }
    let only_windows =
        before_windows == 0 && after_windows > 0 && exclusions.len() == after_windows;
    (exclusions, only_windows)
}

fn assess<'a>(c: &'a Candidate, ctx: &Ctx<'_>) -> Assessed<'a> {
    let (task, policy, now) = (ctx.task, ctx.policy, ctx.now);
    let pinned = ctx.pin == Some(c.label.as_str());
    let freshness = Freshness::of(c.snapshot.as_ref(), now);
    let windows = applicable_windows(c, task, now);
    let (exclusions, only_window_exclusions) = exclusions(c, ctx, &windows);
    let headroom = windows
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(w, used)| ((100.0 - used).max(0.0), format::window(w), *used));
    let (tier, measure, strategy_note) = strategy_key(c, ctx);
    let mut notes = Vec::new();
    if pinned {
        notes.push("pinned".to_owned());
    }
    let not_preferred = task.provider.is_some_and(|p| p != c.provider);
    if task.provider == Some(c.provider) {
        notes.push(format!("preferred provider {}", c.provider));
    }
    notes.push(strategy_note);
    notes.push(match &headroom {
        Some((room, window, used)) => format!(
            "headroom {} ({window} at {})",
            format::percent(*room),
            format::percent(*used)
        ),
        None => "headroom unknown".to_owned(),
    });
    if policy.rotation && c.credential == CredentialKind::OAuth {
        notes.push(c.last_used.map_or_else(
            || "never used".to_owned(),
            |t| format!("last used {}", format::time(t, now)),
        ));
    }
    Assessed {
        candidate: c,
        exclusions,
        only_window_exclusions,
        notes,
        freshness,
        pinned,
        key: Key {
            not_preferred,
            tier,
            measure,
            headroom: headroom.map(|h| h.0),
            priority: c.priority,
            label: c.label.clone(),
            provider: c.provider,
            credential: c.credential,
        },
    }
}

/// The windows of the candidate's snapshot that apply to the task, with
/// their utilization: not yet reset, per-model windows only for their
/// model, and only windows that say how much is used.
fn applicable_windows<'c>(
    c: &'c Candidate,
    task: &TaskContext,
    now: DateTime<Utc>,
) -> Vec<(&'c UsageWindow, f64)> {
    let model = task.model.as_deref().map(str::to_ascii_lowercase);
    let Some(snapshot) = &c.snapshot else {
        return Vec::new();
    };
    snapshot
        .windows
        .iter()
        .filter(|w| w.resets_at.is_none_or(|t| t > now))
        .filter(|w| match w.name.strip_prefix("seven_day_") {
            Some(family) => model.as_deref().is_some_and(|m| m.contains(family)),
            None => true,
        })
        .filter_map(|w| {
            let used = w
                .utilization_percent
                .or_else(|| match (w.limit, w.remaining) {
                    (Some(limit), Some(left)) if limit > 0 => {
                        Some(100.0 * approx(limit.saturating_sub(left)) / approx(limit))
                    }
                    _ => None,
                })?;
            Some((w, used))
        })
        .collect()
}

/// Why `budget` cannot take the task, if it cannot.
fn budget_overrun(
    budget: &BudgetView,
    c: &Candidate,
    task: &TaskContext,
    now: DateTime<Utc>,
) -> Option<String> {
    let tokens = task.estimated_tokens.unwrap_or(0);
    let requested = match budget.unit {
        BudgetUnit::Tokens => approx(tokens),
        BudgetUnit::Requests => 1.0,
        BudgetUnit::Usd if c.credential == CredentialKind::OAuth => 0.0,
        BudgetUnit::Usd => price_per_million(c.provider, task.model.as_deref()).estimate(tokens),
    };
    let taken = budget.used + budget.reserved;
    if taken + requested <= budget.limit && taken < budget.limit {
        return None;
    }
    let amount = |v: f64| match budget.unit {
        BudgetUnit::Usd => format::usd(v),
        BudgetUnit::Tokens | BudgetUnit::Requests => format::count(v),
    };
    let limit = match budget.unit {
        BudgetUnit::Usd => format::usd(budget.limit),
        BudgetUnit::Tokens => format!("{} tokens", format::count(budget.limit)),
        BudgetUnit::Requests => format!("{} requests", format::count(budget.limit)),
    };
    let scope = budget
        .scope
        .as_ref()
        .map(|s| format!(" for {s}"))
        .unwrap_or_default();
    let reserved = if budget.reserved > 0.0 {
        format!(" + {} reserved", amount(budget.reserved))
    } else {
        String::new()
    };
    let resets = budget
        .resets_at
        .map(|t| format!(", resets {}", format::time(t, now)))
        .unwrap_or_default();
    Some(format!(
        "{} budget {limit}{scope}: {} used{reserved} + {} requested{resets}",
        budget.window,
        amount(budget.used),
        amount(requested)
    ))
}

/// The strategy's step and measure for `c`, and the words for them.
fn strategy_key(c: &Candidate, ctx: &Ctx<'_>) -> (u8, (u64, u64), String) {
    let (task, policy, strategy, now) = (ctx.task, ctx.policy, ctx.strategy, ctx.now);
    let kind = match c.credential {
        CredentialKind::OAuth => "subscription",
        CredentialKind::ApiKey => "API key",
    };
    let chain = |first: Provider| {
        let step =
            u8::from(c.provider != first) * 2 + u8::from(c.credential == CredentialKind::ApiKey);
        (
            step,
            (0, 0),
            format!(
                "{} {kind}: step {} of 4 in the {strategy} chain",
                c.provider,
                step + 1
            ),
        )
    };
    match strategy {
        Strategy::PreferClaude => chain(Provider::Claude),
        Strategy::PreferOpenai => chain(Provider::OpenAi),
        Strategy::UserPreference => chain(policy.provider.unwrap_or(Provider::Claude)),
        Strategy::CostOptimized if c.credential == CredentialKind::OAuth => {
            (0, (0, 0), "subscription: already paid for".to_owned())
        }
        Strategy::CostOptimized => {
            let price = price_per_million(c.provider, task.model.as_deref());
            let note = match task.estimated_tokens {
                Some(tokens) => format!(
                    "API key: about {} for {} tokens at {} list price",
                    format::usd(price.estimate(tokens)),
                    format::count(approx(tokens)),
                    price.model
                ),
                None => format!(
                    "API key: {} per million tokens at {} list price",
                    format::usd(price.blended()),
                    price.model
                ),
            };
            // Micro-dollars per million tokens: an exact integer order.
            (1, ((price.blended() * 1e6).round() as u64, 0), note)
        }
        Strategy::PerformanceOptimized => {
            match c.health.filter(|h| now - h.probed_at <= HEALTH_TTL) {
                Some(h) => {
                    let errors = (h.error_rate * 100.0).round().max(0.0);
                    (
                        0,
                        (errors as u64, u64::from(h.latency_ms)),
                        format!(
                            "error rate {}, latency {} ms (probed {})",
                            format::percent(errors),
                            h.latency_ms,
                            format::time(h.probed_at, now)
                        ),
                    )
                }
                None => (
                    1,
                    (0, 0),
                    format!(
                        "no health probe in the last {} min",
                        HEALTH_TTL.num_minutes()
                    ),
                ),
            }
        }
    }
}
