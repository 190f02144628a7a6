//! Task-level authentication: [`Manager::authenticate_for_task`] chooses an
//! account for an agent's task (the selector), makes sure its token is valid
//! (the single-flight refresh), and grants it: reservation, selection
//! history row and session in one transaction. When the chosen account's
//! token cannot be had (a dead login, an unreachable provider), the attempt
//! is recorded and the next candidate is tried.
//!
//! [`candidates`] gathers the selector's inputs from the store (also for
//! `vault select`, which only shows a decision).

use chrono::{TimeDelta, Utc};

use super::Manager;
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, OAuthTokens, Provider, Snapshot};
use crate::process::ProcessRef;
use crate::quota::{Scope, Unit};
use crate::selector::{self, BudgetUnit, BudgetView, Candidate, Decision, Policy, TaskContext};
use crate::store::{
    AccountInfo, AccountSelector, BudgetStatus, GrantRequest, Reservation, Selection, SessionEnd,
    SessionKind, Store,
};

/// Every account as a selector [`Candidate`]: its kind, provider, state and
/// priority, its newest snapshot, when it was last granted, its health over
/// the last hour and its running cooldown, and the budgets that apply to it
/// and to `task`'s agent.
///
/// # Errors
/// Store errors (SQLite, `Integrity`).
pub fn candidates(store: &mut Store, task: &TaskContext) -> Result<Vec<Candidate>> {
    let budgets = store.budgets()?;
    let accounts = store.accounts()?;
    let mut last_grants = store.last_grants()?;
    let mut snapshots = store.latest_snapshots()?;
    let health = store.health(chrono::Utc::now())?;
    let mut out = Vec::with_capacity(accounts.len());
    for a in accounts {
        let mut c = Candidate::new(&a.label, a.provider, a.kind);
        c.enabled = a.enabled;
        c.needs_login = a.needs_login;
        c.priority = a.priority;
        c.snapshot = snapshots.remove(&a.id);
        c.last_used = last_grants.remove(&a.label);
        if let Some(h) = health.get(&a.id) {
            c.health = h.health;
            c.cooldown = h.cooldown;
        }
        c.budgets = budgets
            .iter()
            .filter_map(|b| budget_view(b, &a.label, a.provider.as_str(), task))
            .collect();
        out.push(c);
    }
    Ok(out)
}

/// The vault's selection policy (its settings).
///
/// # Errors
/// `Policy` for a setting the selector cannot use; store errors.
pub fn policy(store: &mut Store) -> Result<Policy> {
    let settings = store.settings()?;
    Ok(Policy::from_settings(
        settings.iter().map(|(k, v)| (k.as_str(), v)),
    )?)
}

/// `b` as the selector sees it, when it applies to the account `label` of
/// `provider` serving `task`.
fn budget_view(
    b: &BudgetStatus,
    label: &str,
    provider: &str,
    task: &TaskContext,
) -> Option<BudgetView> {
    let subject = b.budget.subject.as_str();
    let scope = match b.budget.scope {
        Scope::Account if subject == label => None,
        Scope::Provider if subject == provider => Some(format!("provider {subject}")),
        Scope::Agent if task.agent.as_deref() == Some(subject) => Some(format!("agent {subject}")),
        _ => return None,
    };
    // USD budgets are kept in micro-dollars; the selector counts dollars.
    let (unit, per) = match b.budget.unit {
        Unit::Tokens => (BudgetUnit::Tokens, 1.0),
        Unit::Usd => (BudgetUnit::Usd, 1_000_000.0),
        Unit::Requests => (BudgetUnit::Requests, 1.0),
    };
    #[allow(clippy::cast_precision_loss)] // exact below 2^53; budgets stay far below
    let amount = |n: u64| n as f64 / per;
    Some(BudgetView {
        scope,
        window: b.budget.period.to_string(),
        unit,
        limit: amount(b.budget.limit),
        used: amount(b.used),
        reserved: amount(b.reserved),
        resets_at: b.resets_at,
    })
}

/// A granted OAuth token is refreshed first when it expires within this
/// (unless it was refreshed within it), so the task does not outlive it.
pub const GRANT_LASTING: std::time::Duration = std::time::Duration::from_hours(1);

/// How a grant is handed out, besides the task.
#[derive(Debug, Clone)]
pub struct GrantOptions {
    /// The agent it is for (`task.agent` is set to it).
    pub agent: String,
    /// Tokens to reserve.
    pub tokens: u64,
    /// How long the reservation holds without a commit or release.
    pub ttl: TimeDelta,
    /// Exec or env.
    pub kind: SessionKind,
    /// The process that holds the session.
    pub process: ProcessRef,
    /// Whether a ChatGPT login can be handed out: only through a private
    /// `CODEX_HOME`, which `vault exec` makes and `vault env` cannot.
    pub chatgpt: bool,
    /// The working directory the agent runs in, when known (the session
    /// keeps its fingerprint, see [`Manager::attribute_claude_run`]).
    pub cwd: Option<std::path::PathBuf>,
}

/// An account granted to an agent for a task.
#[derive(Debug)]
pub struct Grant {
    /// The account.
    pub account: AccountInfo,
    /// Its valid credential (OAuth: every token, for tools that refresh
    /// themselves).
    pub credential: Credential,
    /// The reservation made for the task.
    pub reservation: Reservation,
    /// The agent session.
    pub session: i64,
    /// The agent id.
    pub agent: String,
    /// The decision that chose the account, every candidate included.
    pub decision: Decision,
    /// The account's newest snapshot (tier and utilization for the agent).
    pub snapshot: Option<Snapshot>,
    /// Things the user should be told (never secret).
    pub warnings: Vec<String>,
}

/// Why a chosen account is passed over for the next candidate: its token
/// cannot be had now, for a reason another account does not share.
fn passes_over(e: &Error) -> bool {
    matches!(
        e,
        Error::NeedsLogin { .. }
            | Error::Provider { .. }
            | Error::IdentityMismatch { .. }
            | Error::RefreshBusy(_)
            | Error::AccountDisabled(_)
    )
}

impl Manager {
    /// The decision for `task` now, from the store's state: nothing is
    /// refreshed, reserved or recorded (`vault select`).
    ///
    /// # Errors
    /// Store and policy errors.
    pub fn decide(&mut self, task: &TaskContext) -> Result<Decision> {
        let policy = policy(&mut self.store)?;
        let candidates = candidates(&mut self.store, task)?;
        Ok(selector::select(task, &candidates, &policy, Utc::now()))
    }

    /// Chooses an account for `task`, makes sure its token is valid and
    /// grants it to `opts.agent`: one transaction writes the reservation,
    /// the selection history row (origin `selector`, every candidate) and
    /// the session. Stale snapshots of the candidates that could change the
    /// decision are refreshed first, all at once (within the probe bound). A task naming an account gets that
    /// account or nothing.
    ///
    /// When the chosen account's token cannot be had (its login is dead, its
    /// provider unreachable), that attempt is recorded in the history and
    /// the next candidate is chosen.
    ///
    /// # Errors
    /// `NoEligibleAccount` (with the selector's reason), `OverBudget`, the
    /// token error of a task's named account, store and policy errors.
    pub fn authenticate_for_task(
        &mut self,
        task: &TaskContext,
        opts: &GrantOptions,
    ) -> Result<Grant> {
        let task = TaskContext {
            agent: Some(opts.agent.clone()),
            ..task.clone()
        };
        let policy = policy(&mut self.store)?;
        // Sessions whose process died give their reservations back first.
        self.close_dead_sessions()?;
        let mut warnings = Vec::new();
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut refreshed = false;
        loop {
            let candidates = self.grant_candidates(&task, opts, &failed)?;
            let decision = selector::select(&task, &candidates, &policy, Utc::now());
            if !refreshed {
                refreshed = true;
                let stale: Vec<String> = decision
                    .needs_refresh()
                    .map(|c| c.account.clone())
                    .collect();
                if !stale.is_empty() {
                    warnings.extend(self.refresh_stale(&stale));
                    continue;
                }
            }
            let mut selection = Selection {
                task_type: task.task_type.clone(),
                strategy: decision.strategy.as_str().to_owned(),
                provider: decision.provider,
                account: decision.account.clone(),
                reason: decision.reason.clone(),
                candidates: serde_json::to_value(&decision.candidates)
                    .unwrap_or(serde_json::Value::Null),
                agent: Some(opts.agent.clone()),
                outcome: "granted".to_owned(),
            };
            let Some(label) = decision.account.clone() else {
                "no eligible account".clone_into(&mut selection.outcome);
                self.store.record_selection(&selection)?;
                return Err(Error::NoEligibleAccount {
                    reason: decision.reason,
                });
            };
            let credential = match self.valid_credential(&label, opts, &mut warnings) {
                Ok(c) => c,
                Err(e) if passes_over(&e) && task.account.is_none() => {
                    let why = format!("failed just now: {e}");
                    selection.outcome.clone_from(&why);
                    self.store.record_selection(&selection)?;
                    warnings.push(format!("`{label}` {why}; choosing again"));
                    failed.push((label, why));
                    continue;
                }
                Err(e) => {
                    selection.outcome = format!("failed: {e}");
                    self.store.record_selection(&selection)?;
                    return Err(e);
                }
            };
            let record = self.store.grant(&GrantRequest {
                selection: &selection,
                agent: &opts.agent,
                tokens: opts.tokens,
                ttl: opts.ttl,
                kind: opts.kind,
                process: &opts.process,
                cwd: opts.cwd.as_deref(),
            })?;
            let snapshot = candidates
                .into_iter()
                .find(|c| c.label == label)
                .and_then(|c| c.snapshot);
            return Ok(Grant {
                account: self.store.account(&label)?,
                credential,
                reservation: record.reservation,
                session: record.session,
                agent: opts.agent.clone(),
                decision,
                snapshot,
                warnings,
            });
        }
    }

    /// Ends a grant's session (its agent exited with `status`, if it had
    /// one) and releases its reservation unless it was committed.
    ///
    /// # Errors
    /// Store errors.
    pub fn end_grant(&mut self, session: i64, status: Option<i32>) -> Result<Option<i64>> {
        self.store.end_session(session, SessionEnd::Exited(status))
    }

    /// The candidates for a grant: a task naming an account sees only it; a
    /// ChatGPT login is unavailable where it cannot be handed out; accounts
    /// that failed in this call are unavailable with the reason.
    fn grant_candidates(
        &mut self,
        task: &TaskContext,
        opts: &GrantOptions,
        failed: &[(String, String)],
    ) -> Result<Vec<Candidate>> {
        let mut all = candidates(&mut self.store, task)?;
        if let Some(label) = &task.account {
            if !all.iter().any(|c| &c.label == label) {
                // The store's error names the known labels.
                self.store.account(label)?;
            }
            all.retain(|c| &c.label == label);
        }
        for c in &mut all {
            if !opts.chatgpt
                && c.provider == Provider::OpenAi
                && c.credential == CredentialKind::OAuth
            {
                c.unavailable = Some(
                    "a ChatGPT login reaches Codex only through the private CODEX_HOME of `vault exec`"
                        .to_owned(),
                );
            }
            if let Some((_, why)) = failed.iter().find(|(l, _)| *l == c.label) {
                c.unavailable = Some(why.clone());
            }
        }
        Ok(all)
    }

    /// A valid credential of `label`: refreshed through the single-flight
    /// path when due; an OAuth login with every token.
    fn valid_credential(
        &mut self,
        label: &str,
        opts: &GrantOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Credential> {
        // Claude Code cannot refresh a token it gets in a variable: hand out
        // one that lasts for a task.
        let served = self.token_lasting(
            AccountSelector {
                label: Some(label),
                provider: None,
            },
            GRANT_LASTING,
        )?;
        warnings.extend(served.warnings);
        let token = served.token;
        Ok(match token.kind {
            CredentialKind::ApiKey => Credential::ApiKey(token.secret),
            CredentialKind::OAuth if token.account.provider == Provider::OpenAi && opts.chatgpt => {
                // Codex refreshes by itself: it needs the refresh and id token too.
                self.store
                    .credential(label, CredentialKind::OAuth, "codex home")?
                    .1
            }
            CredentialKind::OAuth => Credential::OAuth(OAuthTokens {
                access_token: token.secret,
                refresh_token: None,
                id_token: None,
                expires_at: token.expires_at,
                scopes: Vec::new(),
                last_refresh: None,
            }),
        })
    }

    /// Refreshes the snapshots of `labels`, all at once within the probe
    /// bound; what failed is returned as warnings.
    fn refresh_stale(&mut self, labels: &[String]) -> Vec<String> {
        self.refresh_snapshots(labels)
            .into_iter()
            .filter_map(|(label, result)| {
                result
                    .err()
                    .map(|e| format!("the usage snapshot of `{label}` could not be refreshed: {e}"))
            })
            .collect()
    }
}
