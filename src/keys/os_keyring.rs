//! The OS keyring as a home for the vault's key-encryption key (KEK).
//!
//! One keyring entry per vault, under service [`SERVICE`] and user
//! `vault-<vault_id>`, holding exactly the 32 raw KEK bytes (DESIGN.md §4).
//!
//! * Linux: the Secret Service (gnome-keyring, `KWallet`'s bridge, ...) through
//!   `zbus-secret-service-keyring-store`, pure Rust, no libdbus. Items go in
//!   the default ("login") collection.
//! * Other platforms: not wired up yet; every call returns
//!   [`KeyringError::Unavailable`].
//!
//! Every call runs on a helper thread and is abandoned after
//! [`KEYRING_TIMEOUT`], so a hung D-Bus call (for example a locked collection
//! waiting for an unlock prompt nobody will answer) cannot hang the process.
//! Running on a fresh thread also keeps the store's internal tokio runtime out
//! of the caller's: the functions may be called from inside a tokio runtime
//! (they block the calling thread for at most the timeout, so async code
//! should prefer `spawn_blocking`).
//!
//! The credential store is created on first use and kept for the rest of the
//! process; a failed creation (no session bus, no Secret Service) is not
//! cached, so a later call tries again. The crate never touches
//! `keyring_core`'s global default store, so nothing else in the process can
//! swap in a non-persistent store behind our back.
//!
//! No secret byte ever appears in an error, a log line or a panic message.

use std::fmt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyring_core::{CredentialPersistence, CredentialStore, Entry};
use zeroize::Zeroizing;

/// Why the OS keyring could not be used. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringError {
    /// No usable keyring on this machine/session (no session bus, no Secret
    /// Service, locked or missing collection, non-persistent store).
    /// String = human reason.
    Unavailable(String),
    /// The keyring works but holds no entry for this vault.
    NotFound,
    /// A keyring call did not answer within the timeout (e.g. a locked
    /// collection waiting for a prompt).
    TimedOut(Duration),
    /// The keyring answered with something unusable (e.g. the stored secret
    /// is not 32 bytes), or another failure. String = reason, never the
    /// secret.
    Failed(String),
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(reason) => write!(f, "OS keyring unavailable: {reason}"),
            Self::NotFound => f.write_str("OS keyring holds no key for this vault"),
            Self::TimedOut(after) => write!(
                f,
                "OS keyring did not answer within {} ms (is the keyring locked and waiting for an unlock prompt?)",
                after.as_millis()
            ),
            Self::Failed(reason) => write!(f, "OS keyring failed: {reason}"),
        }
    }
}

impl std::error::Error for KeyringError {}

/// How long one keyring call may take before it is abandoned with
/// [`KeyringError::TimedOut`].
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(4);

/// Service name used for every entry.
pub const SERVICE: &str = "authvault";

/// Length of the key-encryption key, in bytes.
const KEK_LEN: usize = 32;

/// User name used by [`probe`]: never of the form `vault-<id>`, so it can
/// never match a real entry.
const PROBE_USER: &str = "authvault-probe (never stored)";

/// Checks that a persistent OS keyring is usable right now (may create
/// nothing). Returns [`KeyringError::Unavailable`] with the reason otherwise.
///
/// It connects to the store (on Linux: the session bus and the Secret
/// Service, opening a transfer session), checks that the store persists its
/// items, and runs a search that matches nothing. It does not write, so it
/// cannot tell whether the default collection exists and is unlocked: a
/// missing or locked collection shows up on [`store_kek`] as
/// [`KeyringError::Unavailable`] or [`KeyringError::TimedOut`].
///
/// # Errors
///
/// [`KeyringError::Unavailable`] when there is no usable persistent keyring,
/// [`KeyringError::TimedOut`] when it does not answer in time,
/// [`KeyringError::Failed`] for anything else.
pub fn probe() -> Result<(), KeyringError> {
    run("probe", "-", || {
        let store = platform::store()?;
        let spec =
            std::collections::HashMap::from([("service", SERVICE), ("username", PROBE_USER)]);
        store.search(&spec).map_err(map_error)?;
        Ok(())
    })
}

/// Stores the 32-byte key-encryption key under ([`SERVICE`], user) where user =
/// `vault-<vault_id>`. Exactly one entry; bytes stored raw (32 bytes).
///
/// An existing entry for the same vault is overwritten in place.
///
/// # Errors
///
/// [`KeyringError::Unavailable`] when there is no usable persistent keyring
/// (including a missing or locked default collection),
/// [`KeyringError::TimedOut`] when it does not answer in time,
/// [`KeyringError::Failed`] for anything else (e.g. several entries already
/// match this vault, or an empty `vault_id`).
pub fn store_kek(vault_id: &str, kek: &[u8; 32]) -> Result<(), KeyringError> {
    let user = user_for(vault_id)?;
    let kek = Zeroizing::new(*kek);
    run("store", vault_id, move || {
        entry(&user)?.set_secret(kek.as_slice()).map_err(map_error)
    })
}

/// Reads it back.
///
/// # Errors
///
/// [`KeyringError::NotFound`] when the keyring holds no entry for this vault,
/// [`KeyringError::Failed`] when the entry does not hold exactly 32 bytes or
/// several entries match, [`KeyringError::Unavailable`] /
/// [`KeyringError::TimedOut`] as for [`store_kek`].
pub fn load_kek(vault_id: &str) -> Result<Zeroizing<[u8; 32]>, KeyringError> {
    let user = user_for(vault_id)?;
    run("load", vault_id, move || {
        let raw = Zeroizing::new(entry(&user)?.get_secret().map_err(map_error)?);
        if raw.len() != KEK_LEN {
            return Err(KeyringError::Failed(format!(
                "the keyring entry holds {} bytes, expected {KEK_LEN}",
                raw.len()
            )));
        }
        let mut kek = Zeroizing::new([0u8; KEK_LEN]);
        kek.copy_from_slice(&raw);
        Ok(kek)
    })
}

/// Deletes it ([`KeyringError::NotFound`] if absent).
///
/// # Errors
///
/// [`KeyringError::NotFound`] when there is no entry for this vault;
/// otherwise as for [`store_kek`].
pub fn delete_kek(vault_id: &str) -> Result<(), KeyringError> {
    let user = user_for(vault_id)?;
    run("delete", vault_id, move || {
        entry(&user)?.delete_credential().map_err(map_error)
    })
}

/// The keyring user name for a vault.
fn user_for(vault_id: &str) -> Result<String, KeyringError> {
    if vault_id.is_empty() {
        return Err(KeyringError::Failed("empty vault id".to_owned()));
    }
    Ok(format!("vault-{vault_id}"))
}

/// The entry for `user` in our store.
fn entry(user: &str) -> Result<Entry, KeyringError> {
    let store = platform::store()?;
    Entry::new_in_store(&store, SERVICE, user).map_err(map_error)
}

/// Runs `op` on a helper thread and waits at most [`KEYRING_TIMEOUT`].
///
/// On timeout the thread is abandoned (detached): it finishes or stays blocked
/// on its own, and whatever it eventually returns is dropped (zeroized for a
/// loaded key).
fn run<T, F>(what: &'static str, vault_id: &str, op: F) -> Result<T, KeyringError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, KeyringError> + Send + 'static,
{
    run_within(KEYRING_TIMEOUT, what, vault_id, op)
}

/// Name of the lock file in `$XDG_RUNTIME_DIR` on which authvault processes
/// queue to connect to the Secret Service one at a time.
pub const CONVERSATION_LOCK: &str = "authvault-secret-service.lock";

/// Waits for this login session's turn to connect to the Secret Service: an
/// exclusive `flock` on [`CONVERSATION_LOCK`] in `$XDG_RUNTIME_DIR`, released
/// when the returned file is dropped.
///
/// gnome-keyring admits a new D-Bus client in an idle callback that a burst
/// of new clients can outrun; a request handled before its client is
/// admitted aborts the daemon, and the one D-Bus starts in its place has the
/// login keyring locked (upstream gnome-keyring #190/#196, seen in 42 and
/// 50). Many `vault` processes starting at once (an agent fleet asking for
/// tokens) are such a burst, so each holds the lock from connecting until
/// its session is open (its first requests); once admitted, a client's later
/// requests run concurrently with everyone's. This narrows the race but does
/// not close it: the daemon has been seen to abort with one new client at a
/// time while earlier ones were leaving. Only a fixed gnome-keyring does.
/// The wait counts against the caller's [`KEYRING_TIMEOUT`].
///
/// Best effort: without `$XDG_RUNTIME_DIR`, or when the file cannot be opened
/// or locked, the call goes ahead unserialized.
fn conversation_lock() -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;

    // `$XDG_RUNTIME_DIR`, private to the user by the XDG spec, shared by
    // every process of the login session, as the session bus is.
    let path = dirs::runtime_dir()?.join(CONVERSATION_LOCK);
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
        .open(&path);
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            tracing::debug!(error = %e, "no Secret Service lock file; going ahead unserialized");
            return None;
        }
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
        Ok(()) => Some(file),
        Err(e) => {
            tracing::debug!(error = %e, "cannot lock the Secret Service lock file; going ahead unserialized");
            None
        }
    }
}

/// [`run`] with an explicit timeout.
fn run_within<T, F>(
    timeout: Duration,
    what: &'static str,
    vault_id: &str,
    op: F,
) -> Result<T, KeyringError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, KeyringError> + Send + 'static,
{
    let started = Instant::now();
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(format!("authvault-keyring-{what}"))
        .spawn(move || {
            // The receiver is gone if we timed out; the result is just dropped.
            let _ = tx.send(op());
        })
        .map_err(|e| KeyringError::Failed(format!("could not start a keyring thread: {e}")))?;
    let result = match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(KeyringError::TimedOut(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(KeyringError::Failed("the keyring call panicked".to_owned()))
        }
    };
    let elapsed_ms = started.elapsed().as_millis();
    match &result {
        Ok(_) => tracing::debug!(op = what, vault_id, elapsed_ms, "keyring call succeeded"),
        Err(e) => {
            tracing::debug!(op = what, vault_id, elapsed_ms, error = %e, "keyring call failed");
        }
    }
    result
}

/// Maps a `keyring_core` error to ours, never formatting secret bytes.
fn map_error(err: keyring_core::Error) -> KeyringError {
    use keyring_core::Error as E;
    match err {
        E::NoEntry => KeyringError::NotFound,
        E::NoDefaultStore => KeyringError::Unavailable("no keyring store is configured".to_owned()),
        E::PlatformFailure(inner) => {
            KeyringError::Unavailable(format!("the keyring service is not usable: {inner}"))
        }
        E::NoStorageAccess(inner) => KeyringError::Unavailable(format!(
            "the keyring is locked or has no default collection: {inner}"
        )),
        E::BadEncoding(_) => {
            KeyringError::Failed("the keyring entry has an unexpected encoding".to_owned())
        }
        E::BadDataFormat(_, inner) => {
            KeyringError::Failed(format!("the keyring entry is malformed: {inner}"))
        }
        E::BadStoreFormat(reason) => {
            KeyringError::Failed(format!("the keyring store is malformed: {reason}"))
        }
        E::TooLong(attr, limit) => KeyringError::Failed(format!(
            "'{attr}' is longer than the keyring's limit of {limit}"
        )),
        E::Invalid(attr, reason) => {
            KeyringError::Failed(format!("invalid keyring parameter '{attr}': {reason}"))
        }
        E::Ambiguous(entries) => KeyringError::Failed(format!(
            "{} keyring entries match this vault, expected one",
            entries.len()
        )),
        E::NotSupportedByStore(what) => {
            KeyringError::Failed(format!("not supported by the keyring store: {what}"))
        }
        // keyring_core::Error is non-exhaustive; a future variant might carry
        // data, so do not format it.
        _ => KeyringError::Failed("unexpected keyring error".to_owned()),
    }
}

/// Refuses stores that do not keep items until deleted (DESIGN.md §4: a
/// non-persistent backend counts as "no keyring").
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn require_persistent(store: &CredentialStore) -> Result<(), KeyringError> {
    let lifetime = match store.persistence() {
        CredentialPersistence::UntilDelete => return Ok(()),
        CredentialPersistence::EntryOnly => "entry only",
        CredentialPersistence::ProcessOnly => "until the process exits",
        CredentialPersistence::UntilLogout => "until logout",
        CredentialPersistence::UntilReboot => "until reboot",
        _ => "unspecified",
    };
    Err(KeyringError::Unavailable(format!(
        "the keyring store does not persist its entries (it keeps them {lifetime})"
    )))
}

#[cfg(target_os = "linux")]
mod platform {
    use std::sync::{Arc, Mutex, PoisonError};

    use keyring_core::CredentialStore;

    use super::{KeyringError, conversation_lock, map_error, require_persistent};

    /// The store, created once per process on first success.
    static STORE: Mutex<Option<Arc<CredentialStore>>> = Mutex::new(None);

    /// The Secret Service store, connecting on first use.
    pub(super) fn store() -> Result<Arc<CredentialStore>, KeyringError> {
        let mut slot = STORE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = slot.as_ref() {
            return Ok(Arc::clone(store));
        }
        let store: Arc<CredentialStore> = {
            // Connecting opens the Secret Service session: the first
            // requests of a new client, which must not come in a burst.
            let _turn = conversation_lock();
            zbus_secret_service_keyring_store::Store::new().map_err(map_error)?
        };
        require_persistent(&*store)?;
        *slot = Some(Arc::clone(&store));
        Ok(store)
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::sync::Arc;

    use keyring_core::CredentialStore;

    use super::KeyringError;

    /// No store is wired up on this platform yet.
    pub(super) fn store() -> Result<Arc<CredentialStore>, KeyringError> {
        Err(KeyringError::Unavailable(
            "no supported keyring store on this platform yet".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_never_empty_and_mentions_reason() {
        let e = KeyringError::Unavailable("no session bus".into());
        assert_eq!(e.to_string(), "OS keyring unavailable: no session bus");
        assert!(KeyringError::NotFound.to_string().contains("no key"));
        let t = KeyringError::TimedOut(Duration::from_secs(4)).to_string();
        assert!(t.contains("4000 ms"), "{t}");
        assert_eq!(
            KeyringError::Failed("x".into()).to_string(),
            "OS keyring failed: x"
        );
    }

    #[test]
    fn user_name_includes_vault_id() {
        assert_eq!(user_for("abc").unwrap(), "vault-abc");
        assert!(matches!(user_for(""), Err(KeyringError::Failed(_))));
        assert!(!PROBE_USER.starts_with("vault-"));
    }

    #[test]
    fn error_mapping_hides_secret_bytes() {
        let secret = vec![0xAB_u8; 32];
        for mapped in [
            map_error(keyring_core::Error::BadEncoding(secret.clone())),
            map_error(keyring_core::Error::BadDataFormat(
                secret.clone(),
                "bad".into(),
            )),
        ] {
            assert!(matches!(mapped, KeyringError::Failed(_)));
            let text = format!("{mapped} {mapped:?}");
            assert!(
                !text.contains("171") && !text.to_lowercase().contains("ab, "),
                "{text}"
            );
        }
        assert_eq!(
            map_error(keyring_core::Error::NoEntry),
            KeyringError::NotFound
        );
        assert!(matches!(
            map_error(keyring_core::Error::NoDefaultStore),
            KeyringError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(keyring_core::Error::PlatformFailure("no bus".into())),
            KeyringError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(keyring_core::Error::NoStorageAccess("locked".into())),
            KeyringError::Unavailable(_)
        ));
    }

    #[test]
    fn empty_vault_id_is_refused_without_touching_the_keyring() {
        assert!(matches!(
            store_kek("", &[0; 32]),
            Err(KeyringError::Failed(_))
        ));
        assert!(matches!(load_kek(""), Err(KeyringError::Failed(_))));
        assert!(matches!(delete_kek(""), Err(KeyringError::Failed(_))));
    }

    #[test]
    fn timeout_is_reported() {
        let limit = Duration::from_millis(50);
        let r: Result<(), _> = run_within(limit, "test", "t", || {
            std::thread::sleep(Duration::from_millis(500));
            Ok(())
        });
        assert_eq!(r, Err(KeyringError::TimedOut(limit)));
        let r: Result<u8, _> = run_within(Duration::from_secs(30), "test", "t", || panic!("boom"));
        assert!(matches!(r, Err(KeyringError::Failed(_))));
    }
}
