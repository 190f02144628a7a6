//! Subscription snapshots: the cached or freshly fetched usage of an
//! account, and snapshots taken from the rate-limit headers of any provider
//! response.

use std::time::Duration;

use chrono::Utc;

use super::{Manager, net, provider_error};
use crate::error::Result;
use crate::model::Snapshot;
use crate::model::{Credential, CredentialKind, Identity, OAuthTokens};
use crate::providers::AuthProvider;
use crate::providers::snapshot;
use crate::store::AccountSelector;

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
}
