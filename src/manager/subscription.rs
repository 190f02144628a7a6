//! Subscription snapshots: the cached or freshly fetched usage of an
//! account, and snapshots taken from the rate-limit headers of any provider
//! response.

use std::time::Duration;

use chrono::Utc;

use super::{Manager, net, provider_error};
use crate::error::Result;
use crate::model::Snapshot;
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens};
use crate::providers::snapshot;
use crate::providers::{AnyProvider, AuthProvider};
use crate::store::{AccountInfo, AccountSelector};

/// Everything a provider call about one account needs, owned, so that it
/// can run on its own task.
pub(super) struct SnapshotRequest {
    pub(super) provider: AnyProvider,
    pub(super) credential: Credential,
    pub(super) identity: Identity,
    pub(super) account: AccountInfo,
}

/// How long a cached snapshot is served.
pub const SNAPSHOT_TTL: Duration = Duration::from_mins(15);

impl Manager {
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
        let request = self.snapshot_request(label)?;
        let net = net(&self.net)?;
        let snap = net
            .runtime
            .block_on(
                request
                    .provider
                    .snapshot(&net.http, &request.credential, &request.identity),
            )
            .map_err(provider_error(request.account.provider))?;
        self.store.save_snapshot(label, &snap)?;
        Ok(snap)
    }

    /// What a snapshot of the account `label` is fetched with: a valid
    /// token (refreshed first through the single-flight path when due) or
    /// the API key, and the identity the provider's answer is read against.
    /// Store and refresh only; no snapshot is fetched.
    pub(super) fn snapshot_request(&mut self, label: &str) -> Result<SnapshotRequest> {
        let served = self.token(AccountSelector {
            label: Some(label),
            provider: None,
        })?;
        let account = served.token.account;
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
        Ok(SnapshotRequest {
            provider: self.provider(account.provider),
            credential,
            identity,
            account,
        })
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
}
