//! The Codex write-back with a real vault: a ChatGPT login handed to Codex in a
//! private `CODEX_HOME`, and the tokens Codex leaves there merged back
//! (`Manager::write_back_codex`): newer tokens of the same identity are
//! stored, the vault's own or older ones change nothing, another identity's
//! are refused.

use std::path::Path;
use std::time::Duration;

use authvault::agent::CodexHome;
use authvault::config::Endpoints;
use authvault::import::export::codex_auth_json;
use authvault::manager::{Manager, WriteBack};
use authvault::model::{Credential, CredentialKind, OAuthTokens};
use secrecy::{ExposeSecret, SecretString};

use super::common::TempVault;
use super::fake_provider::{self as fake, FakeProvider};

const LABEL: &str = "work";

struct Env {
    tv: TempVault,
    fake: FakeProvider,
    who: fake::Identity,
    manager: Manager,
}

fn setup() -> Env {
    let tv = TempVault::new();
    let fake = FakeProvider::start();
    let who = fake::Identity::new("ada@example.com", "acct-ada", "plus");
    let mut store = tv.init_passphrase();
    store
        .add_account(&fake.seeded_chatgpt_account(LABEL, &who))
        .expect("seed");
    let manager =
        Manager::new(store, Endpoints::default(), Duration::from_secs(30)).expect("manager");
    Env {
        tv,
        fake,
        who,
        manager,
    }
}

impl Env {
    fn tokens(&mut self) -> OAuthTokens {
        match self
            .manager
            .store()
            .credential(LABEL, CredentialKind::OAuth, "test")
        {
            Ok((_, Credential::OAuth(t))) => t,
            other => panic!("no OAuth tokens: {other:?}"),
        }
    }

    /// What `vault export codex` writes for the account.
    fn exported(&mut self) -> Vec<u8> {
        let t = self.tokens();
        codex_auth_json(
            Some(&t),
            None,
            Some(&self.who.account_id),
            CredentialKind::OAuth,
        )
        .as_bytes()
        .to_vec()
    }

    /// What Codex writes after refreshing `who`'s login: new tokens, a new
    /// `last_refresh`.
    fn rotated(
        &self,
        who: &fake::Identity,
        last_refresh: chrono::DateTime<chrono::Utc>,
    ) -> (OAuthTokens, Vec<u8>) {
        let Credential::OAuth(mut t) = self
            .fake
            .seeded_chatgpt_account("x", who)
            .credentials
            .remove(0)
        else {
            unreachable!("a ChatGPT login")
        };
        t.last_refresh = Some(last_refresh);
        let bytes = codex_auth_json(Some(&t), None, Some(&who.account_id), CredentialKind::OAuth)
            .as_bytes()
            .to_vec();
        (t, bytes)
    }

    fn generation(&self) -> i64 {
        self.tv
            .raw()
            .query_row(
                "SELECT generation FROM credentials WHERE kind = 'oauth'",
                [],
                |r| r.get(0),
            )
            .expect("generation")
    }

    fn actions(&mut self) -> Vec<String> {
        let entries = self.manager.store().audit_entries(None).expect("audit");
        entries.into_iter().map(|e| e.action).collect()
    }
}

/// The secrets of a token set, to compare whole.
fn secrets(t: &OAuthTokens) -> [Option<String>; 3] {
    let s = |v: Option<&SecretString>| v.map(|v| v.expose_secret().to_owned());
    [
        s(Some(&t.access_token)),
        s(t.refresh_token.as_ref()),
        s(t.id_token.as_ref()),
    ]
}

fn later() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::seconds(5)
}

/// Codex replaces its `auth.json` when it refreshes.
fn codex_writes(home: &CodexHome, bytes: &[u8]) {
    let auth = home.path().join("auth.json");
    std::fs::remove_file(&auth).expect("remove");
    std::fs::write(&auth, bytes).expect("write");
}

#[test]
fn tokens_codex_refreshed_in_its_private_home_end_up_in_the_vault_and_the_home_is_gone() {
    let mut env = setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real-codex");
    std::fs::create_dir(&real).expect("real home");
    std::fs::write(real.join("config.toml"), b"").expect("config");
    let home = CodexHome::create(&env.tv.vault_dir().join("run"), &real, &env.exported())
        .expect("private home");
    let (rotated, bytes) = env.rotated(&env.who.clone(), later());
    codex_writes(&home, &bytes);
    let generation = env.generation();

    let auth = home.path().join("auth.json");
    let left = home.read_auth().expect("read back");
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, &auth, &left)
            .expect("write back"),
        WriteBack::Updated
    );
    assert_eq!(secrets(&env.tokens()), secrets(&rotated));
    assert_eq!(env.generation(), generation + 1);
    assert!(env.actions().contains(&"credential.writeback".to_owned()));

    let path = home.path().to_path_buf();
    drop(home);
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(&real).expect("real").count(),
        1,
        "the real CODEX_HOME keeps its one file"
    );
}

#[test]
fn the_tokens_the_vault_handed_out_change_nothing() {
    let mut env = setup();
    let before = env.tokens();
    let generation = env.generation();
    let bytes = env.exported();
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, Path::new("auth.json"), &bytes)
            .expect("write back"),
        WriteBack::Unchanged
    );
    assert_eq!(secrets(&env.tokens()), secrets(&before));
    assert_eq!(env.generation(), generation);
    assert!(!env.actions().contains(&"credential.writeback".to_owned()));
}

#[test]
fn tokens_older_than_the_vaults_are_not_taken() {
    let mut env = setup();
    let before = env.tokens();
    let (_, bytes) = env.rotated(
        &env.who.clone(),
        chrono::Utc::now() - chrono::Duration::hours(2),
    );
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, Path::new("auth.json"), &bytes)
            .expect("write back"),
        WriteBack::VaultNewer
    );
    assert_eq!(secrets(&env.tokens()), secrets(&before));
}

#[test]
fn another_identitys_tokens_are_refused_and_change_nothing() {
    let mut env = setup();
    let before = env.tokens();
    let generation = env.generation();
    let other = env.who.switched();
    let (_, bytes) = env.rotated(&other, later());
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, Path::new("auth.json"), &bytes)
            .expect("write back"),
        WriteBack::RefusedOtherIdentity {
            field: "ChatGPT account id"
        }
    );
    // Same account id, another e-mail.
    let other_email = fake::Identity::new("eve@example.com", &env.who.account_id, "plus");
    let (_, bytes) = env.rotated(&other_email, later());
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, Path::new("auth.json"), &bytes)
            .expect("write back"),
        WriteBack::RefusedOtherIdentity { field: "e-mail" }
    );
    assert_eq!(secrets(&env.tokens()), secrets(&before));
    assert_eq!(env.generation(), generation);
}

#[test]
fn tokens_that_name_no_identity_are_refused() {
    let mut env = setup();
    let before = env.tokens();
    let anonymous = OAuthTokens {
        access_token: SecretString::from("at-anonymous"),
        refresh_token: Some(SecretString::from("rt-anonymous")),
        id_token: None,
        expires_at: None,
        scopes: vec![],
        last_refresh: Some(later()),
    };
    let bytes = codex_auth_json(Some(&anonymous), None, None, CredentialKind::OAuth);
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, Path::new("auth.json"), bytes.as_bytes())
            .expect("write back"),
        WriteBack::RefusedOtherIdentity {
            field: "ChatGPT account id or e-mail"
        }
    );
    assert_eq!(secrets(&env.tokens()), secrets(&before));
}

#[test]
fn a_file_without_chatgpt_tokens_or_unreadable_changes_nothing() {
    let mut env = setup();
    let before = env.tokens();
    let api_key = SecretString::from("sk-proj-writeback-canary");
    let bytes = codex_auth_json(None, Some(&api_key), None, CredentialKind::ApiKey);
    assert_eq!(
        env.manager
            .write_back_codex(LABEL, Path::new("auth.json"), bytes.as_bytes())
            .expect("write back"),
        WriteBack::NoTokens
    );
    let truncated = &bytes.as_bytes()[..bytes.len() - 3];
    let err = env
        .manager
        .write_back_codex(LABEL, Path::new("/run/codex/auth.json"), truncated)
        .expect_err("truncated");
    let message = err.to_string();
    assert!(message.starts_with("/run/codex/auth.json:"), "{message}");
    assert!(
        message.ends_with("; the vault's tokens were kept"),
        "{message}"
    );
    assert!(!message.contains("canary"), "{message}");
    assert_eq!(secrets(&env.tokens()), secrets(&before));
}
