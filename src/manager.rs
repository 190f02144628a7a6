//! The manager: hands out valid credentials. It ties the store (sync SQLite)
//! to the providers (async HTTP): every network call runs on a private
//! current-thread runtime between store calls, so no async code ever waits on
//! a SQLite lock and nothing is written twice.
//!
//! Refresh is single-flight across processes (see `store::refresh`): one
//! holder calls the provider, the others wait for its result.

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Endpoints;
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens, Provider, Snapshot};
use crate::providers::http::{Http, RetryPolicy};
use crate::providers::loopback::{self, Callback};
use crate::providers::oauth::{self, PendingLogin};
use crate::providers::snapshot;
use crate::providers::{AnyProvider, AuthProvider, KeyCheck, ProviderError};
use crate::store::{AccountInfo, AccountSelector, Lease, MergeInput, MergeItem, Store, Token};

/// Refresh when the access token expires within this.
pub const REFRESH_MARGIN: Duration = Duration::from_mins(5);
/// OpenAI: also refresh when the last refresh is older than this.
pub const OPENAI_MAX_AGE: Duration = Duration::from_hours(8 * 24);
/// How long a cached snapshot is served.
pub const SNAPSHOT_TTL: Duration = Duration::from_mins(15);

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

/// A login waiting for its code.
pub struct LoginSession {
    provider: AnyProvider,
    /// The authorize URL to open.
    pub pending: PendingLogin,
    listener: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSession")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// Where a login's tokens go.
#[derive(Debug, Clone, Default)]
pub struct LoginTarget {
    /// Label for a new account.
    pub label: Option<String>,
    /// An existing account to log in again.
    pub account: Option<String>,
}

/// What a login stored.
#[derive(Debug)]
pub struct LoggedIn {
    /// The account, as stored.
    pub account: AccountInfo,
    /// Identity fields the existing `--account` lacked and now has from this
    /// login ("added e-mail"…); empty otherwise.
    pub identity_recorded: Vec<String>,
}

/// The HTTP client and the runtime its calls run on.
struct Net {
    http: Http,
    runtime: tokio::runtime::Runtime,
}

fn net(cell: &OnceCell<Net>) -> Result<&Net> {
    if let Some(n) = cell.get() {
        return Ok(n);
    }
    let http = Http::new(RetryPolicy::default()).map_err(|e| Error::Provider {
        provider: Provider::OpenAi,
        source: e.into(),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::io("start the network runtime", "-"))?;
    Ok(cell.get_or_init(|| Net { http, runtime }))
}

/// The store plus everything needed to talk to providers.
pub struct Manager {
    store: Store,
    endpoints: Endpoints,
    /// Built on first use: a `vault token` that needs no network pays nothing for TLS.
    net: OnceCell<Net>,
    lease: Duration,
    holder: String,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("store", &self.store)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

fn provider_error(provider: Provider) -> impl FnOnce(ProviderError) -> Error {
    move |source| Error::Provider { provider, source }
}

/// Which identity field differs between an account and a provider's answer.
fn identity_differs(account: &AccountInfo, answer: &Identity) -> Option<&'static str> {
    if let (Some(a), Some(b)) = (&account.provider_account_id, &answer.provider_account_id)
        && a != b
    {
        return Some(if account.provider == Provider::OpenAi {
            "ChatGPT account id"
        } else {
            "account id"
        });
    }
    if let (Some(a), Some(b)) = (&account.email, &answer.email)
        && !a.eq_ignore_ascii_case(b)
    {
        return Some("e-mail");
    }
    None
}

impl Manager {
    /// Wraps an unlocked store.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn new(store: Store, endpoints: Endpoints, lease: Duration) -> Result<Self> {
        let mut nonce = [0u8; 6];
        crate::crypto::fill_random(&mut nonce)?;
        Ok(Self {
            store,
            endpoints,
            net: OnceCell::new(),
            lease,
            holder: format!("pid {} {}", std::process::id(), crate::crypto::hex(&nonce)),
        })
    }

    /// The store.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    fn provider(&self, p: Provider) -> AnyProvider {
        AnyProvider::new(p, &self.endpoints)
    }

    /// A valid token for the selected account, refreshing it first when it
    /// expires within five minutes (OpenAI: also after eight days). A
    /// proactive refresh that fails transiently serves the still-valid token
    /// with a warning.
    ///
    /// # Errors
    /// `NeedsLogin` (permanent refresh failure, now or before), provider
    /// errors, `IdentityMismatch`, `RefreshBusy`, store errors.
    pub fn token(&mut self, selector: AccountSelector<'_>) -> Result<Served> {
        self.token_with(selector, false)
    }

    /// Forces a refresh of the selected account's OAuth tokens.
    ///
    /// # Errors
    /// As [`Manager::token`]; `NoCredential` for API-key accounts.
    pub fn refresh(&mut self, selector: AccountSelector<'_>) -> Result<Served> {
        self.token_with(selector, true)
    }

    fn token_with(&mut self, selector: AccountSelector<'_>, force: bool) -> Result<Served> {
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
                force || needs_refresh(account.provider, state.expires_at, state.last_refresh, now)
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

    /// Stores an API key, validated against the provider unless `validate`
    /// is false. A key the provider refuses is not stored; when the provider
    /// cannot be reached, the key is stored and a warning returned.
    ///
    /// # Errors
    /// `Provider` (rejected key), store errors.
    pub fn login_api_key(
        &mut self,
        provider: Provider,
        key: SecretString,
        target: &LoginTarget,
        validate: bool,
    ) -> Result<(AccountInfo, Vec<String>)> {
        let mut warnings = Vec::new();
        if let Some(label) = &target.label {
            crate::store::check_label(label)?;
        }
        if validate {
            let check = net(&self.net)?.runtime.block_on(
                self.provider(provider)
                    .validate_api_key(&net(&self.net)?.http, &key),
            );
            match check {
                KeyCheck::Valid => {}
                KeyCheck::Rejected(status) => {
                    return Err(Error::Provider {
                        provider,
                        source: ProviderError::Rejected {
                            status: Some(status),
                            detail: "the API key was refused; nothing was stored".into(),
                        },
                    });
                }
                KeyCheck::Unverified(why) => {
                    warnings.push(format!("the key was stored but not validated: {why}"));
                }
            }
        }
        let credential = Credential::ApiKey(key);
        let info = if let Some(label) = &target.account {
            self.store.set_credential(label, &credential)?
        } else {
            let label = match &target.label {
                Some(l) => l.clone(),
                None => free_label(&self.store.accounts()?, &format!("{provider}-api-key")),
            };
            self.store.add_account(&crate::store::NewAccount {
                provider,
                label,
                identity: Identity::default(),
                credentials: vec![credential],
                active: CredentialKind::ApiKey,
            })?
        };
        Ok((info, warnings))
    }

    /// Starts an OAuth login: PKCE + state, and (unless `paste`) a loopback
    /// listener on `port` (0: any free port).
    ///
    /// # Errors
    /// `Login` when the port cannot be bound; provider configuration errors.
    pub fn start_login(&self, provider: Provider, port: Option<u16>) -> Result<LoginSession> {
        let p = self.provider(provider);
        let (listener, redirect) = match port {
            Some(port) => {
                let (l, actual) = net(&self.net)?
                    .runtime
                    .block_on(loopback::bind(port))
                    .map_err(|e| Error::Login(e.to_string()))?;
                (Some(l), p.redirect_uri(Some(actual)))
            }
            None => (None, p.redirect_uri(None)),
        };
        let pending = oauth::start(&p.oauth_spec(), &redirect).map_err(provider_error(provider))?;
        Ok(LoginSession {
            provider: p,
            pending,
            listener,
        })
    }

    /// Waits for the browser's redirect on the session's listener.
    ///
    /// # Errors
    /// `Login` on timeout, or when the session has no listener.
    pub fn wait_for_callback(&self, session: &LoginSession, timeout: Duration) -> Result<Callback> {
        let listener = session
            .listener
            .as_ref()
            .ok_or_else(|| Error::Login("this login has no listener".into()))?;
        net(&self.net)?
            .runtime
            .block_on(loopback::wait(listener, timeout, |state| {
                session.pending.state_matches(state)
            }))
            .map_err(|e| Error::Login(e.to_string()))
    }

    /// Checks the callback's state (of a code or an error alike), exchanges
    /// the code and stores the tokens: into `target.account`, or a matching
    /// existing account, or a new one.
    /// An existing `target.account` must be of the same provider and must not
    /// know a different identity; identity fields it lacks are recorded in the
    /// same transaction as the tokens (and listed in the result).
    ///
    /// # Errors
    /// `Login` (denied, state mismatch), provider errors, `IdentityMismatch`.
    pub fn complete_login(
        &mut self,
        session: &LoginSession,
        callback: &Callback,
        target: &LoginTarget,
    ) -> Result<LoggedIn> {
        let provider = session.provider.provider();
        if !callback
            .state()
            .is_some_and(|s| session.pending.state_matches(s))
        {
            return Err(Error::Login(
                "the answer's state does not match this login (a stale or forged redirect)".into(),
            ));
        }
        let code = match callback {
            Callback::Denied {
                error, description, ..
            } => {
                let why = description.as_deref().unwrap_or("consent denied?");
                return Err(Error::Login(format!(
                    "the provider reported `{error}` ({why})"
                )));
            }
            Callback::Code { code, .. } => code,
        };
        let grant = net(&self.net)?
            .runtime
            .block_on(
                session
                    .provider
                    .finish_login(&net(&self.net)?.http, &session.pending, code),
            )
            .map_err(provider_error(provider))?;
        if let Some(label) = &target.account {
            let credential = Credential::OAuth(grant.tokens);
            let identity = grant.identity;
            let (account, identity_recorded) =
                self.store
                    .store_login(label, &credential, &identity, |account| {
                        if account.provider != provider {
                            return Err(Error::InvalidInput {
                                what: format!("account `{label}`"),
                                reason: format!(
                                    "it is a {} account, not {provider}",
                                    account.provider
                                ),
                            });
                        }
                        match identity_differs(account, &identity) {
                            Some(what) => Err(Error::IdentityMismatch {
                                label: label.clone(),
                                what,
                            }),
                            None => Ok(()),
                        }
                    })?;
            return Ok(LoggedIn {
                account,
                identity_recorded,
            });
        }
        let item = MergeItem {
            source: format!("vault login {provider}"),
            format: "oauth".into(),
            provider,
            identity: grant.identity,
            credentials: vec![Credential::OAuth(grant.tokens)],
            active: CredentialKind::OAuth,
            label: target.label.clone(),
        };
        let report = self.store.merge(
            &MergeInput {
                items: vec![item],
                ..MergeInput::default()
            },
            false,
        )?;
        let label = report
            .outcomes
            .first()
            .map(|o| o.label.clone())
            .unwrap_or_default();
        Ok(LoggedIn {
            account: self.store.account(&label)?,
            identity_recorded: Vec::new(),
        })
    }

    /// The account's subscription snapshot: the stored one when younger than
    /// 15 minutes (unless `refresh`), else fetched (refreshing the token
    /// first if needed) and stored.
    ///
    /// # Errors
    /// Provider and store errors.
    pub fn subscription(&mut self, label: &str, refresh: bool) -> Result<Snapshot> {
        let ttl = chrono::Duration::from_std(SNAPSHOT_TTL).expect("fifteen minutes");
        if !refresh
            && let Some(s) = self.store.latest_snapshot(label)?
            && Utc::now() - s.fetched_at < ttl
        {
            return Ok(s);
        }
        let served = self.token(AccountSelector {
            label: Some(label),
            provider: None,
        })?;
        let account = served.token.account.clone();
        let credential = match served.token.kind {
            CredentialKind::ApiKey => Credential::ApiKey(served.token.secret),
            CredentialKind::OAuth => Credential::OAuth(OAuthTokens {
                access_token: served.token.secret,
                refresh_token: None,
                id_token: None,
                expires_at: served.token.expires_at,
                scopes: Vec::new(),
                last_refresh: None,
            }),
        };
        let identity = Identity {
            email: account.email.clone(),
            provider_account_id: account.provider_account_id.clone(),
            plan: account.plan.clone(),
            rate_limit_tier: account.rate_limit_tier.clone(),
        };
        let snap = net(&self.net)?
            .runtime
            .block_on(self.provider(account.provider).snapshot(
                &net(&self.net)?.http,
                &credential,
                &identity,
            ))
            .map_err(provider_error(account.provider))?;
        self.store.save_snapshot(label, &snap)?;
        Ok(snap)
    }

    /// Records the rate-limit headers of any provider response as a snapshot
    /// of the account (for agents that call the APIs themselves).
    ///
    /// # Errors
    /// `AccountNotFound`, SQLite. Headers that say nothing are not stored.
    pub fn observe_headers(
        &mut self,
        label: &str,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<Option<Snapshot>> {
        let account = self.store.account(label)?;
        let Some(snap) = snapshot::from_headers(account.provider, headers, Utc::now()) else {
            return Ok(None);
        };
        self.store.save_snapshot(label, &snap)?;
        Ok(Some(snap))
    }

    /// Removes the account's OAuth tokens; with `revoke`, first asks the
    /// provider to revoke the refresh token where it supports that (OpenAI).
    /// Returns a note for the user.
    ///
    /// # Errors
    /// Store errors; a failed revocation is reported in the note, and the
    /// local tokens are removed anyway.
    pub fn logout(&mut self, label: &str, revoke: bool) -> Result<(AccountInfo, Option<String>)> {
        let mut note = None;
        if revoke {
            let (account, credential) =
                self.store
                    .credential(label, CredentialKind::OAuth, "revoke")?;
            note = Some(match (account.provider, credential) {
                (Provider::OpenAi, Credential::OAuth(t)) => {
                    let token = t.refresh_token.unwrap_or(t.access_token);
                    let url = self.endpoints.openai_revoke_url.clone();
                    let client_id = self.endpoints.openai_client_id.clone();
                    let result = net(&self.net)?
                        .runtime
                        .block_on(net(&self.net)?.http.send(|c| {
                            c.post(&url).form(&[
                                ("token", token.expose_secret()),
                                ("token_type_hint", "refresh_token"),
                                ("client_id", client_id.as_str()),
                            ])
                        }));
                    match result {
                        Ok(r) if r.status().is_success() => "revoked at the provider".to_owned(),
                        Ok(r) => format!(
                            "the provider refused the revocation (HTTP {})",
                            r.status().as_u16()
                        ),
                        Err(e) => format!("revocation failed: {e}"),
                    }
                }
                _ => "Claude offers no token revocation; the tokens were removed locally only"
                    .to_owned(),
            });
        }
        let info = self.store.remove_oauth(label)?;
        Ok((info, note))
    }
}

/// `base`, or `base-2`, `base-3`… whichever is free.
#[must_use]
pub fn free_label(accounts: &[AccountInfo], base: &str) -> String {
    let taken = |l: &str| accounts.iter().any(|a| a.label == l);
    if !taken(base) {
        return base.to_owned();
    }
    (2..=accounts.len() + 2)
        .map(|n| format!("{base}-{n}"))
        .find(|l| !taken(l))
        .expect("pigeonhole: more candidates than accounts")
}

#[cfg(test)]
mod tests {
    use super::*;

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
