//! Logging in and out: API keys (validated, then added or replaced), the
//! OAuth flow (start, wait for the loopback redirect, complete: state check,
//! code exchange, identity check, store) and logout with optional
//! revocation.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{Manager, identity_differs, net, provider_error};
use crate::error::{Error, Result};
use crate::model::{Credential, CredentialKind, Identity, Provider};
use crate::providers::loopback::{self, Callback};
use crate::providers::oauth::{self, PendingLogin};
use crate::providers::{AnyProvider, AuthProvider, KeyCheck, ProviderError};
use crate::store::labels::free_label;
use crate::store::{AccountInfo, MergeInput, MergeItem};

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

impl Manager {
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
                KeyCheck::Throttled { status, .. } => {
                    warnings.push(format!(
                        "the key was stored but not validated: the provider answered HTTP {status}"
                    ));
                }
            }
        }
        let credential = Credential::ApiKey(key);
        let info = if let Some(label) = &target.account {
            self.store.set_credential(label, &credential)?
        } else {
            let label = if let Some(l) = &target.label {
                l.clone()
            } else {
                let accounts = self.store.accounts()?;
                free_label(&format!("{provider}-api-key"), |l| {
                    Ok(accounts.iter().any(|a| a.label == l))
                })?
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
