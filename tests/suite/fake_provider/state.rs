//! The fake's bookkeeping: authorization codes, refresh-token families,
//! access grants, counters and the fault queues.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Ep, Fault, Identity, Prov};

/// What a queued fault leaves for a handler that answers normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Twist {
    None,
    InvalidGrant,
    IdentitySwitch,
    DenyConsent,
}

/// What the server thread and the [`super::FakeProvider`] handle share.
pub(super) struct Shared {
    state: Mutex<St>,
    /// Server start, whole unix seconds: the origin of every reset time.
    pub(super) started: i64,
}

impl Shared {
    pub(super) fn new() -> Self {
        let nonce = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            state: Mutex::new(St {
                nonce,
                serial: 0,
                counts: HashMap::new(),
                in_flight: 0,
                max_in_flight: 0,
                faults: HashMap::new(),
                next_identity: [
                    Identity::default_for(Prov::OpenAi),
                    Identity::default_for(Prov::Claude),
                ],
                access_ttl: 3600,
                codes: HashMap::new(),
                families: Vec::new(),
                refresh_family: HashMap::new(),
                access: HashMap::new(),
                newest_access: HashMap::new(),
                api_keys: HashSet::new(),
                refreshes: [0; 2],
                invalid_grants: [0; 2],
                revoked: [0; 2],
            }),
            started: Utc::now().timestamp(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, St> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct PendingCode {
    pub(super) prov: Prov,
    pub(super) challenge: String,
    pub(super) redirect_uri: String,
    pub(super) client_id: String,
    pub(super) state: String,
    pub(super) identity: Identity,
}

pub(super) struct Family {
    pub(super) prov: Prov,
    pub(super) identity: Identity,
    /// The one refresh token that is still redeemable.
    pub(super) current: String,
    pub(super) revoked: bool,
}

pub(super) struct AccessGrant {
    pub(super) prov: Prov,
    pub(super) family: usize,
    pub(super) exp: i64,
}

pub(super) struct Issued {
    pub(super) access: String,
    pub(super) refresh: String,
    pub(super) id_token: String,
    pub(super) identity: Identity,
    pub(super) expires_in: u64,
}

/// Why a refresh token was refused (all permanent).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Unknown,
    Revoked,
    Reused,
    Expired,
}

/// Why an access token was refused.
pub(super) enum Denied {
    Unknown,
    Expired,
    Revoked,
}

pub(super) struct St {
    pub(super) nonce: u64,
    pub(super) serial: u64,
    pub(super) counts: HashMap<Ep, usize>,
    /// Requests being served now, and the most there ever were at once.
    pub(super) in_flight: usize,
    pub(super) max_in_flight: usize,
    pub(super) faults: HashMap<Ep, VecDeque<Fault>>,
    pub(super) next_identity: [Identity; 2],
    pub(super) access_ttl: u64,
    pub(super) codes: HashMap<String, PendingCode>,
    pub(super) families: Vec<Family>,
    /// Every refresh token ever issued → its family.
    pub(super) refresh_family: HashMap<String, usize>,
    pub(super) access: HashMap<String, AccessGrant>,
    pub(super) newest_access: HashMap<(Prov, String), String>,
    pub(super) api_keys: HashSet<(Prov, String)>,
    pub(super) refreshes: [usize; 2],
    pub(super) invalid_grants: [usize; 2],
    pub(super) revoked: [usize; 2],
}

impl St {
    /// 43 url-safe characters, unique per fake instance and call.
    pub(super) fn random(&mut self, kind: &str) -> String {
        self.serial += 1;
        let digest = Sha256::digest(format!("{}:{kind}:{}", self.nonce, self.serial).as_bytes());
        URL_SAFE_NO_PAD.encode(digest)
    }

    /// Issues an access/refresh pair to `identity`: into `family` (rotation) or a new one.
    pub(super) fn issue(
        &mut self,
        prov: Prov,
        identity: Identity,
        family: Option<usize>,
    ) -> Issued {
        let now = Utc::now().timestamp();
        let ttl = self.access_ttl;
        let exp = now + ttl as i64;
        let (access, refresh) = match prov {
            Prov::OpenAi => {
                let jti = self.random("jti");
                let access = jwt(&json!({
                    "iss": "https://auth.openai.com",
                    "aud": ["https://api.openai.com/v1"],
                    "sub": user_id(&identity),
                    "iat": now,
                    "exp": exp,
                    "jti": jti,
                    "scp": ["openid", "profile", "email", "offline_access"],
                    "https://api.openai.com/auth": {
                        "chatgpt_account_id": identity.account_id,
                        "chatgpt_plan_type": identity.plan,
                        "chatgpt_user_id": user_id(&identity),
                    },
                    "https://api.openai.com/profile": {
                        "email": identity.email,
                        "email_verified": true,
                    },
                }));
                (access, format!("rt_{}", self.random("rt")))
            }
            Prov::Claude => (
                format!("sk-ant-oat01-{}{}", self.random("oat"), self.random("oat")),
                format!("sk-ant-ort01-{}{}", self.random("ort"), self.random("ort")),
            ),
        };
        let fid = if let Some(fid) = family {
            self.families[fid].current.clone_from(&refresh);
            fid
        } else {
            self.families.push(Family {
                prov,
                identity: identity.clone(),
                current: refresh.clone(),
                revoked: false,
            });
            self.families.len() - 1
        };
        self.refresh_family.insert(refresh.clone(), fid);
        self.access.insert(
            access.clone(),
            AccessGrant {
                prov,
                family: fid,
                exp,
            },
        );
        self.newest_access
            .insert((prov, identity.account_id.clone()), access.clone());
        let id_token = openai_id_token(&identity, now, exp);
        Issued {
            access,
            refresh,
            id_token,
            identity,
            expires_in: ttl,
        }
    }

    /// Redeems a refresh token: single use, reuse revokes the family.
    pub(super) fn refresh(
        &mut self,
        prov: Prov,
        token: &str,
        twist: Twist,
    ) -> Result<Issued, Refusal> {
        let fid = match self.refresh_family.get(token) {
            Some(&fid) if self.families[fid].prov == prov => fid,
            _ => return Err(Refusal::Unknown),
        };
        let family = &mut self.families[fid];
        if family.revoked {
            return Err(Refusal::Revoked);
        }
        if family.current != token {
            family.revoked = true;
            self.revoked[prov.idx()] += 1;
            return Err(Refusal::Reused);
        }
        match twist {
            Twist::InvalidGrant => {
                family.revoked = true;
                Err(Refusal::Expired)
            }
            Twist::IdentitySwitch => {
                let other = family.identity.switched();
                Ok(self.issue(prov, other, None))
            }
            _ => {
                let identity = family.identity.clone();
                Ok(self.issue(prov, identity, Some(fid)))
            }
        }
    }

    /// Redeems an authorization code (single use, consumed by any attempt).
    pub(super) fn exchange(
        &mut self,
        prov: Prov,
        p: &HashMap<String, String>,
        twist: Twist,
    ) -> Result<Issued, String> {
        let code = p.get("code").map_or("", String::as_str);
        let pending = match self.codes.remove(code) {
            Some(pending) if pending.prov == prov => pending,
            _ => return Err("Invalid authorization code".into()),
        };
        if twist == Twist::InvalidGrant {
            return Err("Authorization code expired".into());
        }
        let field = |k: &str| p.get(k).map_or("", String::as_str);
        if field("redirect_uri") != pending.redirect_uri {
            return Err("redirect_uri does not match the authorization request".into());
        }
        if field("client_id") != pending.client_id {
            return Err("client_id does not match the authorization request".into());
        }
        if prov == Prov::Claude && field("state") != pending.state {
            return Err("Invalid 'state' in request".into());
        }
        if !pkce_matches(field("code_verifier"), &pending.challenge) {
            return Err("code_verifier does not match the code_challenge".into());
        }
        let identity = if twist == Twist::IdentitySwitch {
            pending.identity.switched()
        } else {
            pending.identity
        };
        Ok(self.issue(prov, identity, None))
    }

    pub(super) fn check_access(&self, prov: Prov, token: &str) -> Result<Identity, Denied> {
        let grant = self
            .access
            .get(token)
            .filter(|g| g.prov == prov)
            .ok_or(Denied::Unknown)?;
        let family = &self.families[grant.family];
        if family.revoked {
            return Err(Denied::Revoked);
        }
        if grant.exp <= Utc::now().timestamp() {
            return Err(Denied::Expired);
        }
        Ok(family.identity.clone())
    }
}

/// RFC 7636: a 43–128 character unreserved verifier whose S256 is the challenge.
pub(super) fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// The id token of a ChatGPT login: e-mail, plan and account id claims.
pub(super) fn openai_id_token(identity: &Identity, now: i64, exp: i64) -> String {
    jwt(&json!({
        "iss": "https://auth.openai.com",
        "aud": ["app_EMoamEEZ73f0CkXaXp7hrann"],
        "sub": user_id(identity),
        "iat": now,
        "exp": exp,
        "email": identity.email,
        "email_verified": true,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": identity.plan,
            "chatgpt_account_id": identity.account_id,
            "chatgpt_user_id": user_id(identity),
            "user_id": user_id(identity),
        },
    }))
}

/// An unsigned-looking JWT: the vault decodes claims, never verifies signatures.
pub(super) fn jwt(payload: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"fake"}"#);
    let body = URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes());
    format!("{head}.{body}.c2ln")
}

pub(super) fn user_id(identity: &Identity) -> String {
    format!(
        "user-{}",
        &uuid_from(&identity.email)[..24].replace('-', "")
    )
}

/// A stable uuid-shaped string derived from `seed`.
pub(super) fn uuid_from(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    let mut hex = String::with_capacity(36);
    for (i, b) in d.iter().take(16).enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            hex.push('-');
        }
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

pub(super) fn org_uuid(identity: &Identity) -> String {
    uuid_from(&format!("org:{}", identity.account_id))
}
