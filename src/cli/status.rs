//! `vault status`: what the vault is and whether it is sound.

use std::process::ExitCode;

use anyhow::Result;
use authvault::db::Location;
use authvault::keys::{KdfCost, KekStore, Method, OsKeyring, Unlock};
use authvault::store::{AuditReport, ChainState, Vault, VaultInfo};
use serde::Serialize;

use super::Ctx;

#[derive(Debug, Serialize)]
struct Status {
    /// The file, or the PostgreSQL URL without its password.
    location: String,
    /// `ok` for a vault file (it opened, so its modes are private);
    /// `not_applicable` for PostgreSQL.
    file_modes: &'static str,
    #[serde(flatten)]
    info: VaultInfo,
    /// Each unlock method and whether it opens the vault now.
    methods: Vec<MethodState>,
    keyring: KeyringState,
    audit: AuditState,
}

#[derive(Debug, Serialize)]
struct MethodState {
    method: Method,
    /// The host whose keyring this row is ('' for the passphrase and for
    /// the keyring of a vault made before format 11).
    host: String,
    /// `None`: not checked (a passphrase that was not given).
    usable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl MethodState {
    /// Checks `method` for real: a keyring method whose entry is gone, or a
    /// passphrase that no longer fits, is not usable. Another host's keyring
    /// row can only be checked on that host.
    fn check(vault: &Vault, (method, host): (Method, String), ctx: &Ctx) -> Self {
        let here = vault.row_host(method, &ctx.config.host).ok().flatten();
        if method == Method::Keyring && here.as_ref() != Some(&host) {
            return Self {
                method,
                host,
                usable: None,
                reason: Some("another host's keyring: checked only on that host".into()),
            };
        }
        let checked = match (method, &ctx.config.passphrase) {
            (Method::Keyring, _) => vault.check(&Unlock::Keyring(&ctx.keyring())),
            (Method::Passphrase, Some(p)) => {
                vault.check(&Unlock::Passphrase(p, KdfCost::default()))
            }
            (Method::Passphrase, None) => {
                return Self {
                    method,
                    host,
                    usable: None,
                    reason: Some("not checked: set AUTHVAULT_PASSPHRASE to check it".into()),
                };
            }
        };
        Self {
            method,
            host,
            usable: Some(checked.is_ok()),
            reason: checked.err().map(|e| e.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KeyringState {
    pub usable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl KeyringState {
    pub fn probe() -> Self {
        match OsKeyring.probe() {
            Ok(()) => Self {
                usable: true,
                reason: None,
            },
            Err(e) => Self {
                usable: false,
                reason: Some(e.to_string()),
            },
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "chain", rename_all = "snake_case")]
enum AuditState {
    Verified(AuditReport),
    Unverified { reason: String },
}

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let location = &ctx.config.location;
    let vault = Vault::open_at(location)?;
    let info = vault.info()?;
    let methods = vault
        .method_rows()?
        .into_iter()
        .map(|row| MethodState::check(&vault, row, ctx))
        .collect();
    drop(vault);
    let keyring = KeyringState::probe();
    // Verify the chain only when unlocking needs no prompt.
    let can_unlock = (keyring.usable && info.unlock_methods.contains(&Method::Keyring))
        || (ctx.config.passphrase.is_some() && info.unlock_methods.contains(&Method::Passphrase));
    let audit = if can_unlock {
        match ctx.unlock_with(false).and_then(|s| Ok(s.verify_audit()?)) {
            Ok(report) => AuditState::Verified(report),
            Err(e) => AuditState::Unverified {
                reason: format!("{e:#}"),
            },
        }
    } else {
        AuditState::Unverified {
            reason: "locked: set AUTHVAULT_PASSPHRASE to verify the chain".into(),
        }
    };
    let status = Status {
        location: location.to_string(),
        file_modes: match location {
            Location::File(_) => "ok",
            Location::Postgres(_) => "not_applicable",
        },
        info,
        methods,
        keyring,
        audit,
    };
    ctx.emit(&status, || text(&status))?;
    Ok(ExitCode::SUCCESS)
}

fn text(s: &Status) -> String {
    let methods: Vec<_> = s
        .methods
        .iter()
        .map(|m| {
            let name = if m.host.is_empty() {
                m.method.to_string()
            } else {
                format!("{}@{}", m.method, m.host)
            };
            match (m.usable, &m.reason) {
                (Some(true), _) => format!("{name} (usable)"),
                (Some(false), Some(r)) => format!("{name} (NOT USABLE: {r})"),
                _ => format!("{name} (not checked)"),
            }
        })
        .collect();
    let accounts = if s.info.accounts.is_empty() {
        "none".to_owned()
    } else {
        s.info
            .accounts
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let keyring = match &s.keyring.reason {
        None => "usable".to_owned(),
        Some(r) => format!("not usable ({r})"),
    };
    let chain = match &s.audit {
        AuditState::Verified(AuditReport {
            state: ChainState::Intact,
            ..
        }) => "intact".to_owned(),
        AuditState::Verified(AuditReport {
            state: ChainState::Broken { first_bad, reason },
            ..
        }) => format!("BROKEN at entry {first_bad}: {reason}"),
        AuditState::Unverified { reason } => format!("not verified ({reason})"),
    };
    let modes = if s.file_modes == "ok" {
        "directory 0700, files 0600"
    } else {
        "not applicable (PostgreSQL)"
    };
    format!(
        "vault:          {}\nmodes:          {modes}\nvault id:       {}\nformat:         {}\nunlock methods: {}\nOS keyring:     {keyring}\naccounts:       {accounts}\naudit:          {} entries, chain {chain}",
        s.location,
        s.info.vault_id,
        s.info.format_version,
        methods.join(", "),
        s.info.audit_entries,
    )
}
