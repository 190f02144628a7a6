//! Tokens and their refresh: `token` / `refresh` hand out a valid
//! credential, refreshing it first when it is due. Refresh is single-flight
//! across processes (see `store::refresh`): one holder takes the lease and
//! calls the provider, the others wait for its result.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{Manager, identity_differs, net, provider_error};
use crate::error::{Error, Result};
use crate::model::{CredentialKind, OAuthTokens, Provider};
use crate::providers::{AuthProvider, ProviderError};
use crate::store::{AccountInfo, AccountSelector, Lease, Token};

/// Refresh when the access token expires within this.
pub const REFRESH_MARGIN: Duration = Duration::from_mins(5);
/// OpenAI: also refresh when the last refresh is older than this.
pub const OPENAI_MAX_AGE: Duration = Duration::from_hours(8 * 24);

/// Whether a credential is due for refresh at `now`.
#[must_use]
pub fn needs_refresh(
    provider: Provider,
    expires_at: Option<DateTime<Utc>>,
    last_refresh: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let margin = chrono::Duration::from_std(REFRESH_MARGIN).expect("five minutes");
    let soon = expires_at.is_some_and(|e| e - now < margin);
    let stale = provider == Provider::OpenAi
        && last_refresh.is_some_and(|l| {
            now - l > chrono::Duration::from_std(OPENAI_MAX_AGE).expect("eight days")
        });
    soon || stale
}

/// When a token is due for refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// By [`needs_refresh`].
    Normal,
    /// Also when it expires within this, unless refreshed within it.
    Lasting(Duration),
    /// Now (`vault refresh`).
    Now,
}

impl Due {
    /// Whether `Lasting` makes a token due that [`needs_refresh`] does not.
    fn early(
        self,
        expires_at: Option<DateTime<Utc>>,
        last_refresh: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> bool {
        let Self::Lasting(lasting) = self else {
            return false;
        };
        let lasting = chrono::Duration::from_std(lasting).unwrap_or(chrono::Duration::MAX);
        expires_at.is_some_and(|e| e - now < lasting)
            && last_refresh.is_none_or(|l| now - l >= lasting)
    }
}

/// A credential handed out, with anything the caller should be told.
#[derive(Debug)]
pub struct Served {
    /// The token.
    pub token: Token,
    /// Warnings for stderr (never secret).
    pub warnings: Vec<String>,
    /// Whether this call refreshed it.
    pub refreshed: bool,
}

impl Manager {
    /// A valid token for the selected account, refreshing it first when it
    /// expires within five minutes (OpenAI: also after eight days). A
    /// proactive refresh that fails transiently serves the still-valid token
    /// with a warning.
    ///
    /// # Errors
    /// `NeedsLogin` (permanent refresh failure, now or before), provider
    /// errors, `IdentityMismatch`, `RefreshBusy`, store errors.
    pub fn token(&mut self, selector: AccountSelector<'_>) -> Result<Served> {
        self.token_with(selector, Due::Normal)
    }

    /// As [`Manager::token`], for a token handed to a tool that cannot
    /// refresh it (Claude Code reading `CLAUDE_CODE_OAUTH_TOKEN`): also
    /// refreshed when it expires within `lasting`, unless it was refreshed
    /// within `lasting` already (a login whose tokens live shorter than that
    /// is not refreshed on every call).
    ///
    /// # Errors
    /// As [`Manager::token`].
    pub fn token_lasting(
        &mut self,
        selector: AccountSelector<'_>,
        lasting: Duration,
    ) -> Result<Served> {
        self.token_with(selector, Due::Lasting(lasting))
    }

    /// Forces a refresh of the selected account's OAuth tokens.
    ///
    /// # Errors
    /// As [`Manager::token`]; `NoCredential` for API-key accounts.
    pub fn refresh(&mut self, selector: AccountSelector<'_>) -> Result<Served> {
        self.token_with(selector, Due::Now)
    }

    fn token_with(&mut self, selector: AccountSelector<'_>, due_when: Due) -> Result<Served> {
        let force = due_when == Due::Now;
        let deadline = Instant::now() + self.lease + Duration::from_secs(30);
        let mut first_generation = None;
        let warnings = Vec::new();
        loop {
            let (account, state) = self.store.oauth_state(selector)?;
            let state = match state {
                Some(s) if account.kind == CredentialKind::OAuth || force => s,
                _ if force => {
                    return Err(Error::NoCredential {
                        label: account.label,
                        kind: CredentialKind::OAuth,
                    });
                }
                _ => return self.serve(selector, warnings, false),
            };
            if account.needs_login {
                return Err(Error::NeedsLogin {
                    provider: account.provider,
                    label: account.label,
                });
            }
            let now = Utc::now();
            let refreshed_by_other = first_generation.is_some_and(|g| g != state.generation);
            first_generation.get_or_insert(state.generation);
            let expired = state.expires_at.is_some_and(|e| e <= now);
            let due = if refreshed_by_other {
                // Someone refreshed while we waited: theirs is the newest there is.
                expired
            } else {
                force
                    || needs_refresh(account.provider, state.expires_at, state.last_refresh, now)
                    || due_when.early(state.expires_at, state.last_refresh, now)
            };
            if !due {
                return self.serve(selector, warnings, refreshed_by_other);
            }
            match self.store.take_refresh_lease(
                &account.label,
                &self.holder,
                state.generation,
                self.lease,
            )? {
                Lease::Changed => {}
                Lease::Held(until) => {
                    if Instant::now() > deadline {
                        return Err(Error::RefreshBusy(account.label));
                    }
                    let left = (until - Utc::now()).to_std().unwrap_or_default();
                    std::thread::sleep(
                        left.min(Duration::from_millis(100)) + Duration::from_millis(5),
                    );
                }
                Lease::Acquired(tokens) => {
                    return self.refresh_held(
                        selector,
                        &account,
                        tokens,
                        state.expires_at,
                        warnings,
                    );
                }
            }
        }
    }

    fn refresh_held(
        &mut self,
        selector: AccountSelector<'_>,
        account: &AccountInfo,
        tokens: OAuthTokens,
        expires_at: Option<DateTime<Utc>>,
        mut warnings: Vec<String>,
    ) -> Result<Served> {
        let label = account.label.clone();
        let Some(refresh_token) = tokens.refresh_token else {
            self.store
                .fail_refresh(&label, &self.holder, true, "no refresh token stored")?;
            return Err(Error::NeedsLogin {
                provider: account.provider,
                label,
            });
        };
        let provider = self.provider(account.provider);
        // Finish well inside the lease: past it, another process may take over
        // and redeem the same single-use refresh token.
        let deadline = self
            .lease
            .saturating_sub(Duration::from_secs(5))
            .max(self.lease / 2);
        let net = net(&self.net)?;
        let result = net.runtime.block_on(async {
            tokio::time::timeout(deadline, provider.refresh(&net.http, &refresh_token))
                .await
                .unwrap_or_else(|_| {
                    Err(ProviderError::Transient {
                        status: None,
                        detail: format!("no answer within {} s", deadline.as_secs()),
                        retry_after: None,
                    })
                })
        });
        match result {
            Ok(grant) => {
                if let Some(what) = identity_differs(account, &grant.identity) {
                    self.store.fail_refresh(
                        &label,
                        &self.holder,
                        false,
                        &format!("rejected: {what} differs"),
                    )?;
                    return Err(Error::IdentityMismatch { label, what });
                }
                self.store
                    .complete_refresh(&label, &grant.tokens, &grant.identity)?;
                self.serve(selector, warnings, true)
            }
            Err(e) if e.is_transient() => {
                self.store
                    .fail_refresh(&label, &self.holder, false, &e.to_string())?;
                match expires_at.filter(|t| *t > Utc::now()) {
                    Some(valid_until) => {
                        warnings.push(format!(
                            "refreshing `{label}` failed ({e}); using the current token, valid until {valid_until}"
                        ));
                        self.serve(selector, warnings, false)
                    }
                    None => Err(provider_error(account.provider)(e)),
                }
            }
            Err(e) => {
                let permanent = matches!(e, ProviderError::Permanent { .. });
                self.store
                    .fail_refresh(&label, &self.holder, permanent, &e.to_string())?;
                if permanent {
                    Err(Error::NeedsLogin {
                        provider: account.provider,
                        label,
                    })
                } else {
                    Err(provider_error(account.provider)(e))
                }
            }
        }
    }

    fn serve(
        &mut self,
        selector: AccountSelector<'_>,
        warnings: Vec<String>,
        refreshed: bool,
    ) -> Result<Served> {
        Ok(Served {
            token: self.store.token(selector)?,
            warnings,
            refreshed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_for_a_task_is_due_when_it_would_not_last_unless_just_refreshed() {
        let now = Utc::now();
        let min = chrono::Duration::minutes;
        let hour = Duration::from_hours(1);
        let lasting = Due::Lasting(hour);
        // (expires in, refreshed ago, due)
        let cases = [
            (Some(min(30)), Some(min(120)), true),
            (Some(min(90)), Some(min(120)), false),
            (Some(min(30)), Some(min(10)), false), // a short-lived login: not on every call
            (Some(min(30)), None, true),
            (None, Some(min(120)), false),
        ];
        for (expires_in, ago, due) in cases {
            let expires_at = expires_in.map(|d| now + d);
            let last = ago.map(|d| now - d);
            assert_eq!(
                lasting.early(expires_at, last, now),
                due,
                "{expires_in:?} {ago:?}"
            );
            assert!(!Due::Normal.early(expires_at, last, now));
        }
    }

    #[test]
    fn refresh_is_due_within_five_minutes_of_expiry_or_after_eight_days_for_openai() {
        let now = Utc::now();
        let min = chrono::Duration::minutes;
        let days = chrono::Duration::days;
        let cases = [
            (Provider::Claude, Some(now + min(4)), None, true),
            (Provider::Claude, Some(now + min(6)), None, false),
            (Provider::Claude, Some(now - min(1)), None, true),
            (Provider::Claude, None, Some(now - days(30)), false),
            (
                Provider::OpenAi,
                Some(now + min(60)),
                Some(now - days(9)),
                true,
            ),
            (
                Provider::OpenAi,
                Some(now + min(60)),
                Some(now - days(7)),
                false,
            ),
            (Provider::OpenAi, None, None, false),
        ];
        for (provider, exp, last, want) in cases {
            assert_eq!(
                needs_refresh(provider, exp, last, now),
                want,
                "{provider} {exp:?} {last:?}"
            );
        }
    }
}
