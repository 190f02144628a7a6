//! Account health: probing every account at once, cooldowns after a
//! provider's refusal, and refreshing several snapshots concurrently.
//!
//! The token step of every account runs first, one after another, through
//! the single-flight [`Manager::token`] (store calls, and a refresh when one
//! is due). Only then do the network calls run, concurrently, on the
//! manager's current-thread runtime: each one a task of a `LocalSet`,
//! limited by a semaphore to [`ProbeOptions::concurrency`] at once and by a
//! timeout each. Their answers are written to the store after the runtime
//! has returned, so no SQLite lock is ever taken on the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Semaphore;

use super::subscription::SnapshotRequest;
use super::{Manager, net};
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Provider, Snapshot};
use crate::providers::http::{Http, RetryPolicy};
use crate::providers::{AuthProvider, KeyCheck, ProviderError};
use crate::selector::{Cooldown, CooldownCause, Policy};
use crate::store::{Probe, ProbeOutcome};

/// Longest a probe may take by default (`vault health --timeout`).
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many probes run at once by default (`vault health --concurrency`).
pub const DEFAULT_PROBE_CONCURRENCY: usize = 8;

/// What a caller saw when it used an account, for [`Manager::report_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded. Nothing changes: a cooldown runs until it ends.
    Ok,
    /// HTTP 429.
    RateLimited {
        /// The provider's `retry-after`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// HTTP 529 or 503.
    Overloaded {
        /// The provider's `retry-after`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// HTTP 401 / 403: the credential was refused.
    AuthFailed,
}

/// How [`Manager::probe_all`] and [`Manager::refresh_snapshots`] run their
/// network calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Longest one call may take; a slower one is reported as a timeout.
    pub timeout: Duration,
    /// How many calls run at once (at least one).
    pub concurrency: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_PROBE_TIMEOUT,
            concurrency: DEFAULT_PROBE_CONCURRENCY,
        }
    }
}

/// One account's probe, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The account's label.
    pub account: String,
    /// Its provider.
    pub provider: Provider,
    /// Its active credential's kind.
    pub credential: CredentialKind,
    /// What the probe found (stored in the account's health).
    pub probe: Probe,
    /// The cooldown in force after this probe, if any.
    pub cooldown: Option<Cooldown>,
}

/// One network call, owning everything it needs: a snapshot, or with
/// `key_check` and an API key, the provider's key check.
struct Job {
    request: SnapshotRequest,
    key_check: bool,
}

enum Answer {
    Snapshot(std::result::Result<Snapshot, ProviderError>),
    KeyCheck(KeyCheck),
    TimedOut,
}

struct Timed {
    answer: Answer,
    latency: Duration,
    at: DateTime<Utc>,
}

impl Job {
    async fn run(self, http: &Http) -> Answer {
        let r = self.request;
        match (&r.credential, self.key_check) {
            (Credential::ApiKey(key), true) => {
                Answer::KeyCheck(r.provider.validate_api_key(http, key).await)
            }
            _ => Answer::Snapshot(r.provider.snapshot(http, &r.credential, &r.identity).await),
        }
    }
}

/// Runs `jobs` on `runtime`, at most `options.concurrency` at once, each
/// within `options.timeout`; answers in the order of `jobs`.
fn run_jobs(
    runtime: &tokio::runtime::Runtime,
    http: &Http,
    jobs: Vec<Job>,
    options: ProbeOptions,
) -> Vec<Timed> {
    let permits = Arc::new(Semaphore::new(
        options.concurrency.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(async move {
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let (permits, http) = (Arc::clone(&permits), http.clone());
                tokio::task::spawn_local(async move {
                    let _permit = permits.acquire_owned().await;
                    let start = Instant::now();
                    let answer = tokio::time::timeout(options.timeout, job.run(&http))
                        .await
                        .unwrap_or(Answer::TimedOut);
                    Timed {
                        answer,
                        latency: start.elapsed(),
                        at: Utc::now(),
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(
                task.await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
            );
        }
        out
    }))
}

/// A probe's outcome, HTTP status and `retry-after` from a provider error.
fn classify(e: &ProviderError) -> (ProbeOutcome, Option<u16>, Option<Duration>) {
    match e {
        ProviderError::Transient {
            status,
            retry_after,
            ..
        } => (by_status(*status), *status, *retry_after),
        ProviderError::Permanent { .. } => (ProbeOutcome::AuthFailed, None, None),
        ProviderError::Rejected { status, .. } => (
            match status {
                Some(401 | 403) => ProbeOutcome::AuthFailed,
                _ => ProbeOutcome::Rejected,
            },
            *status,
            None,
        ),
        ProviderError::Unreachable(_) => (ProbeOutcome::Unreachable, None, None),
        ProviderError::InvalidResponse(_) | ProviderError::Config(_) => {
            (ProbeOutcome::Rejected, None, None)
        }
    }
}

/// The outcome of a transient status: 429 rate limited, 503 / 529
/// overloaded, anything else (other 5xx, 408) unreachable.
const fn by_status(status: Option<u16>) -> ProbeOutcome {
    match status {
        Some(429) => ProbeOutcome::RateLimited,
        Some(503 | 529) => ProbeOutcome::Overloaded,
        _ => ProbeOutcome::Unreachable,
    }
}

/// What a probe found, before it is stored.
struct Finding {
    outcome: ProbeOutcome,
    status: Option<u16>,
    retry_after: Option<Duration>,
    detail: Option<String>,
}

impl Finding {
    const OK: Self = Self {
        outcome: ProbeOutcome::Ok,
        status: None,
        retry_after: None,
        detail: None,
    };

    fn of(e: &ProviderError) -> Self {
        let (outcome, status, retry_after) = classify(e);
        Self {
            outcome,
            status,
            retry_after,
            detail: Some(e.to_string()),
        }
    }

    fn failed(outcome: ProbeOutcome, status: Option<u16>, detail: String) -> Self {
        Self {
            outcome,
            status,
            retry_after: None,
            detail: Some(detail),
        }
    }

    /// The failure of a token step (before any probe was sent). Errors that
    /// say the vault itself cannot be used are returned.
    fn of_token_step(e: Error) -> Result<Self> {
        let outcome = match &e {
            Error::Provider { source, .. } => {
                return Ok(Self {
                    detail: Some(e.to_string()),
                    ..Self::of(source)
                });
            }
            Error::NeedsLogin { .. } => ProbeOutcome::AuthFailed,
            Error::IdentityMismatch { .. } => ProbeOutcome::Rejected,
            Error::RefreshBusy(_) => ProbeOutcome::Timeout,
            _ => return Err(e),
        };
        Ok(Self::failed(outcome, None, e.to_string()))
    }

    /// What an answer says, and the snapshot it brought, to be stored.
    fn of_answer(answer: Answer, timeout: Duration) -> (Self, Option<Snapshot>) {
        let finding = match answer {
            Answer::Snapshot(Ok(snapshot)) => return (Self::OK, Some(snapshot)),
            Answer::Snapshot(Err(e)) => Self::of(&e),
            Answer::KeyCheck(KeyCheck::Valid) => Self::OK,
            Answer::KeyCheck(KeyCheck::Rejected(s)) => Self::failed(
                if matches!(s, 401 | 403) {
                    ProbeOutcome::AuthFailed
                } else {
                    ProbeOutcome::Rejected
                },
                Some(s),
                format!("the provider refused the key (HTTP {s})"),
            ),
            Answer::KeyCheck(KeyCheck::Throttled {
                status,
                retry_after,
            }) => Self {
                retry_after,
                ..Self::failed(
                    by_status(Some(status)),
                    Some(status),
                    format!("the provider answered HTTP {status}"),
                )
            },
            Answer::KeyCheck(KeyCheck::Unverified(why)) => {
                Self::failed(ProbeOutcome::Unreachable, None, why)
            }
            Answer::TimedOut => Self::failed(
                ProbeOutcome::Timeout,
                None,
                format!("no answer within {} s", timeout.as_secs_f64()),
            ),
        };
        (finding, None)
    }

    fn probe(&self, probed_at: DateTime<Utc>, latency: Duration) -> Probe {
        Probe {
            probed_at,
            latency_ms: u32::try_from(latency.as_millis()).unwrap_or(u32::MAX),
            outcome: self.outcome,
            status: self.status,
            detail: self.detail.as_deref().map(short),
        }
    }

    /// What to report to [`Manager::report_outcome`].
    const fn reported(&self) -> Outcome {
        let retry_after = self.retry_after;
        match self.outcome {
            ProbeOutcome::RateLimited => Outcome::RateLimited { retry_after },
            ProbeOutcome::Overloaded => Outcome::Overloaded { retry_after },
            ProbeOutcome::AuthFailed => Outcome::AuthFailed,
            _ => Outcome::Ok,
        }
    }
}

/// Short words on a failure for the health row (never secret: provider
/// errors carry statuses, error codes and host names only).
fn short(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The latest reset among the snapshot's exhausted windows (used up, or
/// nothing remaining) that is still ahead.
fn exhausted_reset(snapshot: &Snapshot, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    snapshot
        .windows
        .iter()
        .filter(|w| w.utilization_percent.is_some_and(|u| u >= 100.0) || w.remaining == Some(0))
        .filter_map(|w| w.resets_at)
        .filter(|&t| t > now)
        .max()
}

impl Manager {
    /// Records what a caller saw when it used the account `label`: a rate
    /// limit, an overload or a refused credential puts it in cooldown
    /// until the provider's `retry-after` or, for a rate limit, the reset
    /// of an exhausted window of its newest snapshot (the later of the
    /// two), else for the policy's `cooldown` (default 5 minutes). A
    /// running cooldown that lasts longer is kept. [`Outcome::Ok`] changes
    /// nothing. Returns the cooldown in force.
    ///
    /// # Errors
    /// `AccountNotFound`, an unusable policy setting (`InvalidInput`),
    /// SQLite.
    pub fn report_outcome(&mut self, label: &str, outcome: Outcome) -> Result<Option<Cooldown>> {
        let (cause, retry_after) = match outcome {
            Outcome::Ok => return Ok(None),
            Outcome::RateLimited { retry_after } => (CooldownCause::RateLimited, retry_after),
            Outcome::Overloaded { retry_after } => (CooldownCause::Overloaded, retry_after),
            Outcome::AuthFailed => (CooldownCause::AuthFailed, None),
        };
        let settings = self.store.settings()?;
        let policy =
            Policy::from_settings(settings.iter().map(|(k, v)| (k.as_str(), v))).map_err(|e| {
                Error::InvalidInput {
                    what: "the selection policy".to_owned(),
                    reason: e.to_string(),
                }
            })?;
        let now = Utc::now();
        let window_reset = match cause {
            CooldownCause::RateLimited => self
                .store
                .latest_snapshot(label)?
                .and_then(|s| exhausted_reset(&s, now)),
            _ => None,
        };
        let retry_at = retry_after
            .and_then(|d| TimeDelta::from_std(d).ok())
            .map(|d| now + d);
        let until = policy.cooldown_until(now, retry_at, window_reset);
        Ok(Some(
            self.store.set_cooldown(label, Cooldown { until, cause })?,
        ))
    }

    /// Probes every enabled account at once: a subscription by fetching
    /// its usage snapshot (which is stored), an API key by the provider's
    /// key check. Tokens due for refresh are refreshed first, one account
    /// after another. Each probe is sent once (no retries), measured and
    /// stored in the account's health; a rate limit, overload or refused
    /// credential also puts the account in cooldown
    /// ([`Manager::report_outcome`]). A probe that fails is a result, not
    /// an error. Reports come in account order.
    ///
    /// # Errors
    /// Only when the vault cannot be used: store errors, the network
    /// runtime failing to start.
    pub fn probe_all(&mut self, options: ProbeOptions) -> Result<Vec<ProbeReport>> {
        let accounts: Vec<_> = self
            .store
            .accounts()?
            .into_iter()
            .filter(|a| a.enabled)
            .collect();
        let mut jobs = Vec::new();
        let mut failed = Vec::new();
        for account in &accounts {
            let start = Instant::now();
            match self.snapshot_request(&account.label) {
                Ok(request) => {
                    jobs.push(Job {
                        request,
                        key_check: true,
                    });
                    failed.push(None);
                }
                Err(e) => failed.push(Some((Finding::of_token_step(e)?, start.elapsed()))),
            }
        }
        let net = net(&self.net)?;
        let http = net.http.with_policy(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        });
        let mut answers = run_jobs(&net.runtime, &http, jobs, options).into_iter();
        // Cooldowns running before this round, for accounts it does not cool down.
        let running = self.store.health(Utc::now())?;
        let mut reports = Vec::with_capacity(accounts.len());
        for (account, failed) in accounts.into_iter().zip(failed) {
            let (finding, probe) = if let Some((finding, latency)) = failed {
                let probe = finding.probe(Utc::now(), latency);
                (finding, probe)
            } else {
                let timed = answers.next().expect("one answer per job");
                let (finding, snapshot) = Finding::of_answer(timed.answer, options.timeout);
                if let Some(snapshot) = snapshot {
                    self.store.save_snapshot(&account.label, &snapshot)?;
                }
                let probe = finding.probe(timed.at, timed.latency);
                (finding, probe)
            };
            self.store.record_probe(&account.label, &probe)?;
            let cooldown = match self.report_outcome(&account.label, finding.reported())? {
                Some(c) => Some(c),
                None => running.get(&account.id).and_then(|h| h.cooldown),
            };
            reports.push(ProbeReport {
                account: account.label,
                provider: account.provider,
                credential: account.kind,
                probe,
                cooldown,
            });
        }
        Ok(reports)
    }

    /// Fetches and stores a fresh snapshot of each account in `labels`,
    /// concurrently (at most [`DEFAULT_PROBE_CONCURRENCY`] at once, each
    /// within [`DEFAULT_PROBE_TIMEOUT`]) after the token step of each. One
    /// result per label, in order; one account's failure does not stop the
    /// others.
    pub fn refresh_snapshots(&mut self, labels: &[String]) -> Vec<(String, Result<Snapshot>)> {
        let options = ProbeOptions::default();
        let mut jobs = Vec::new();
        let mut results: Vec<(String, Option<Result<Snapshot>>)> = Vec::new();
        let mut providers = Vec::new();
        for label in labels {
            match self.snapshot_request(label) {
                Ok(request) => {
                    providers.push(request.account.provider);
                    jobs.push(Job {
                        request,
                        key_check: false,
                    });
                    results.push((label.clone(), None));
                }
                Err(e) => results.push((label.clone(), Some(Err(e)))),
            }
        }
        let answers = match net(&self.net) {
            Ok(net) => run_jobs(&net.runtime, &net.http, jobs, options),
            Err(e) => {
                let why = e.to_string();
                jobs.iter()
                    .map(|_| Timed {
                        answer: Answer::Snapshot(Err(ProviderError::Config(why.clone()))),
                        latency: Duration::ZERO,
                        at: Utc::now(),
                    })
                    .collect()
            }
        };
        let mut answers = answers.into_iter().zip(providers);
        results
            .into_iter()
            .map(|(label, done)| {
                let result = done.unwrap_or_else(|| {
                    let (timed, provider) = answers.next().expect("one answer per job");
                    let snapshot = match timed.answer {
                        Answer::Snapshot(r) => r,
                        Answer::TimedOut | Answer::KeyCheck(_) => Err(ProviderError::Transient {
                            status: None,
                            detail: format!("no answer within {} s", options.timeout.as_secs_f64()),
                            retry_after: None,
                        }),
                    };
                    let snapshot =
                        snapshot.map_err(|source| Error::Provider { provider, source })?;
                    self.store.save_snapshot(&label, &snapshot)?;
                    Ok(snapshot)
                });
                (label, result)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SnapshotSource, UsageWindow};

    #[test]
    fn a_provider_answer_becomes_one_probe_outcome() {
        let transient = |status, secs: Option<u64>| ProviderError::Transient {
            status,
            detail: "GET /x".into(),
            retry_after: secs.map(Duration::from_secs),
        };
        let rejected = |status| ProviderError::Rejected {
            status,
            detail: "GET /x".into(),
        };
        let cases = [
            (
                transient(Some(429), Some(30)),
                (
                    ProbeOutcome::RateLimited,
                    Some(429),
                    Some(Duration::from_secs(30)),
                ),
            ),
            (
                transient(Some(529), None),
                (ProbeOutcome::Overloaded, Some(529), None),
            ),
            (
                transient(Some(503), Some(5)),
                (
                    ProbeOutcome::Overloaded,
                    Some(503),
                    Some(Duration::from_secs(5)),
                ),
            ),
            (
                transient(Some(500), None),
                (ProbeOutcome::Unreachable, Some(500), None),
            ),
            (
                transient(None, None),
                (ProbeOutcome::Unreachable, None, None),
            ),
            (
                ProviderError::Permanent {
                    code: "GET /x: HTTP 401".into(),
                },
                (ProbeOutcome::AuthFailed, None, None),
            ),
            (
                rejected(Some(403)),
                (ProbeOutcome::AuthFailed, Some(403), None),
            ),
            (
                rejected(Some(404)),
                (ProbeOutcome::Rejected, Some(404), None),
            ),
            (
                ProviderError::InvalidResponse("usage".into()),
                (ProbeOutcome::Rejected, None, None),
            ),
        ];
        for (error, want) in cases {
            assert_eq!(classify(&error), want, "{error}");
        }
    }

    #[test]
    fn a_rate_limit_lasts_until_the_latest_exhausted_window_resets() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T14:00:00Z")
            .unwrap()
            .to_utc();
        let window = |name: &str, used: Option<f64>, remaining: Option<u64>, minutes: i64| {
            let mut w = UsageWindow::named(name);
            w.utilization_percent = used;
            w.remaining = remaining;
            w.resets_at = Some(now + TimeDelta::minutes(minutes));
            w
        };
        let snap = |windows| {
            let mut s = Snapshot::empty(Provider::Claude, SnapshotSource::Headers, now);
            s.windows = windows;
            s
        };
        let cases = [
            (
                "nothing exhausted",
                snap(vec![window("five_hour", Some(99.0), None, 30)]),
                None,
            ),
            (
                "a used-up window",
                snap(vec![
                    window("five_hour", Some(100.0), None, 30),
                    window("seven_day", Some(40.0), None, 600),
                ]),
                Some(now + TimeDelta::minutes(30)),
            ),
            (
                "the later of two exhausted windows",
                snap(vec![
                    window("requests", None, Some(0), 1),
                    window("five_hour", Some(101.0), None, 45),
                ]),
                Some(now + TimeDelta::minutes(45)),
            ),
            (
                "a reset already past does not count",
                snap(vec![window("requests", None, Some(0), -1)]),
                None,
            ),
        ];
        for (name, snapshot, want) in cases {
            assert_eq!(exhausted_reset(&snapshot, now), want, "{name}");
        }
    }
}
