//! The environment an agent gets with a grant: the variables the real tools
//! read for the granted credential, and authvault's own.
//!
//! | grant | credential variables |
//! |---|---|
//! | Claude subscription | `CLAUDE_CODE_OAUTH_TOKEN` (never `ANTHROPIC_API_KEY`: the API refuses an OAuth token there) |
//! | Claude API key | `ANTHROPIC_API_KEY`, mirrored in `CLAUDE_API_KEY` |
//! | OpenAI API key | `OPENAI_API_KEY` |
//! | ChatGPT subscription | `CODEX_HOME`: a private directory whose `auth.json` holds the login (Codex reads no variable for it) |
//!
//! Every credential variable the grant does not set is removed from what the
//! agent inherits, so a stale key in the caller's environment never
//! overrides the granted one. Always set: `ACTIVE_AUTH_PROVIDER`,
//! `AGENT_ID` and `AUTHVAULT_AGENT_ID`, `AUTHVAULT_ACCOUNT`,
//! `AUTHVAULT_CREDENTIAL`, `AUTHVAULT_RESERVATION`, `AUTHVAULT_SESSION`, the
//! allocated quota (`CLAUDE_AGENT_QUOTA` / `OPENAI_AGENT_QUOTA`, tokens), and
//! when the newest snapshot tells them `AUTHVAULT_TIER` and
//! `AUTHVAULT_UTILIZATION` (the fullest window, percent).

use std::path::Path;

use secrecy::SecretString;

use super::Grant;
use crate::config::ENV_AGENT_ID;
use crate::model::{Credential, Provider};

/// Credential variables: each is either set by the grant or removed.
const CREDENTIAL_VARS: [&str; 5] = [
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "CLAUDE_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
];

/// Quota variables: the granted provider's is set, the other removed.
const QUOTA_VARS: [&str; 2] = ["CLAUDE_AGENT_QUOTA", "OPENAI_AGENT_QUOTA"];

/// One variable (its `Debug` never shows the value).
#[derive(Debug)]
pub struct EnvVar {
    /// Its name.
    pub name: &'static str,
    /// Its value.
    pub value: SecretString,
    /// Whether the value is a credential.
    pub secret: bool,
}

/// What to add to and remove from an agent's environment.
#[derive(Debug, Default)]
pub struct AgentEnv {
    /// Variables to set, in a stable order.
    pub set: Vec<EnvVar>,
    /// Variables to remove from what the agent inherits.
    pub unset: Vec<&'static str>,
}

impl AgentEnv {
    fn add(&mut self, name: &'static str, value: impl Into<String>) {
        self.set.push(EnvVar {
            name,
            value: SecretString::from(value.into()),
            secret: false,
        });
    }

    fn add_secret(&mut self, name: &'static str, value: &SecretString) {
        self.set.push(EnvVar {
            name,
            value: value.clone(),
            secret: true,
        });
    }
}

/// The environment for `grant`. A ChatGPT login needs `codex_home`, the
/// private directory holding its `auth.json` (see `vault exec`); without
/// one, it gets no credential variable.
#[must_use]
pub fn agent_env(grant: &Grant, codex_home: Option<&Path>) -> AgentEnv {
    let mut env = AgentEnv::default();
    let provider = grant.account.provider;
    match (&grant.credential, provider) {
        (Credential::OAuth(t), Provider::Claude) => {
            env.add_secret("CLAUDE_CODE_OAUTH_TOKEN", &t.access_token);
        }
        (Credential::ApiKey(key), Provider::Claude) => {
            env.add_secret("ANTHROPIC_API_KEY", key);
            env.add_secret("CLAUDE_API_KEY", key);
        }
        (Credential::ApiKey(key), Provider::OpenAi) => env.add_secret("OPENAI_API_KEY", key),
        (Credential::OAuth(_), Provider::OpenAi) => {
            if let Some(home) = codex_home {
                env.add("CODEX_HOME", home.to_string_lossy());
            }
        }
    }
    env.add("ACTIVE_AUTH_PROVIDER", provider.as_str());
    env.add("AGENT_ID", grant.agent.clone());
    env.add(ENV_AGENT_ID, grant.agent.clone());
    env.add("AUTHVAULT_ACCOUNT", grant.account.label.clone());
    env.add("AUTHVAULT_CREDENTIAL", grant.account.kind.as_str());
    env.add("AUTHVAULT_RESERVATION", grant.reservation.id.to_string());
    env.add("AUTHVAULT_SESSION", grant.session.to_string());
    let quota = match provider {
        Provider::Claude => QUOTA_VARS[0],
        Provider::OpenAi => QUOTA_VARS[1],
    };
    env.add(quota, grant.reservation.tokens.to_string());
    let plan = grant
        .snapshot
        .as_ref()
        .and_then(|s| s.plan.clone())
        .or_else(|| grant.account.plan.clone());
    if let Some(plan) = plan {
        env.add("AUTHVAULT_TIER", plan);
    }
    let fullest = grant.snapshot.as_ref().and_then(|s| {
        s.windows
            .iter()
            .filter_map(|w| w.utilization_percent)
            .reduce(f64::max)
    });
    if let Some(percent) = fullest {
        env.add("AUTHVAULT_UTILIZATION", format!("{percent:.1}"));
    }
    let set: Vec<&str> = env.set.iter().map(|v| v.name).collect();
    env.unset = CREDENTIAL_VARS
        .iter()
        .chain(&QUOTA_VARS)
        .copied()
        .filter(|name| !set.contains(name))
        .collect();
    env
}
