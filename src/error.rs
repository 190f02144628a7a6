//! The crate's one error type. Every variant carries the context a user needs
//! (path, account label, table/row) and never a secret; every message says
//! what happened and what to do next.

use std::path::PathBuf;

use crate::crypto::CryptoError;
use crate::keys::{KeyringError, KeysError};

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in authvault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create directory", "read", …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite reported an error while the vault was doing `op`.
    #[error("vault database, {op}: {source}")]
    Sqlite {
        /// What was being done ("listing accounts", "rotating the data
        /// key", …): named by the public store or `db` function that met
        /// the error.
        op: &'static str,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// PostgreSQL refused a statement, or the connection to it failed,
    /// while the vault was doing `op`. Never holds the database password.
    #[error("vault database, {op}: {source}")]
    Postgres {
        /// What was being done, as for [`Error::Sqlite`].
        op: &'static str,
        /// The driver's error.
        source: PgError,
    },
    /// The vault directory or a vault file is accessible to other users.
    #[error(
        "{what} {path} has mode {mode:04o}, which lets other users read it; \
         run `chmod {want:o} {path}` or `vault doctor --fix`"
    )]
    InsecureMode {
        /// "directory" or "file".
        what: &'static str,
        /// The offending path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode it should have.
        want: u32,
    },
    /// The file belongs to another user.
    #[error("{path} belongs to uid {owner}, not to you (uid {me}); refusing to use it")]
    ForeignOwner {
        /// The offending path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The current user.
        me: u32,
    },
    /// No vault exists at the path.
    #[error(
        "no vault at {path}; run `vault init` (or `vault migrate` to import existing credentials)"
    )]
    NoVault {
        /// The vault path looked at.
        path: PathBuf,
    },
    /// `init` on a path that already holds something.
    #[error("{path} already exists; use another `--vault` path or remove it first")]
    AlreadyExists {
        /// The path.
        path: PathBuf,
    },
    /// The file is not an authvault vault.
    #[error("{path} is not an authvault vault ({reason})")]
    NotAVault {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Written by a newer authvault; refused untouched.
    #[error(
        "{path} has format version {found}, newer than this authvault supports ({supported}); \
         upgrade authvault — nothing in it was changed"
    )]
    NewerFormat {
        /// The path.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A sealed value failed to open: it was altered, moved or truncated.
    #[error(
        "integrity error in {table}.{column} row {row}: {source}; the vault was tampered with or corrupted"
    )]
    Integrity {
        /// Table of the value.
        table: &'static str,
        /// Column of the value.
        column: &'static str,
        /// Row id.
        row: i64,
        /// What failed.
        source: CryptoError,
    },
    /// A sealed plaintext was not what its column expects (not UTF-8, wrong length).
    #[error("integrity error in {table}.{column} row {row}: {reason}")]
    Malformed {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// Row id.
        row: i64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The passphrase does not unlock this vault.
    #[error("wrong passphrase for {path}; nothing was changed")]
    WrongPassphrase {
        /// The vault path.
        path: PathBuf,
    },
    /// The key check matched but the wrapped data key does not open: corruption.
    #[error(
        "the {method} unlock method's wrapped data key {key_id} is corrupted (the key itself is right); \
         unlock with another method and run `vault doctor`"
    )]
    CorruptKeyWrap {
        /// Unlock method.
        method: &'static str,
        /// Data key id.
        key_id: u32,
    },
    /// The KEK held by the OS keyring does not match this vault.
    #[error(
        "the OS keyring entry for vault {vault_id} does not match this vault; unlock with the passphrase instead"
    )]
    KeyringMismatch {
        /// The vault id.
        vault_id: String,
    },
    /// Another process changed the unlock methods after this one unlocked;
    /// acting on stale keys could wrap data keys under a key nobody has.
    #[error(
        "the {} changed meanwhile (another `vault` command changed it after this one unlocked); \
         nothing was changed: run the command again",
        changed_what(method)
    )]
    UnlockMethodChanged {
        /// The unlock method that was added, removed or replaced.
        method: &'static str,
    },
    /// An unlock method that must keep working after a removal does not
    /// open the vault now.
    #[error(
        "the {method} unlock method does not open the vault now ({reason}), so `{removing}` cannot \
         be removed: it may be the only way in; nothing was changed"
    )]
    UnprovenMethod {
        /// The method that failed its proof.
        method: &'static str,
        /// The method whose removal was asked for.
        removing: &'static str,
        /// Why the proof failed.
        reason: String,
    },
    /// The OS keyring already holds an entry under this vault's id that
    /// this vault did not write; it is never overwritten.
    #[error(
        "the OS keyring already holds an entry for vault {vault_id} that this vault did not write \
         (another vault file with the same id?); refusing to overwrite it. If it is stale, delete it \
         with `secret-tool clear service authvault username vault-{vault_id}` and run the command again"
    )]
    KeyringEntryExists {
        /// The vault id.
        vault_id: String,
    },
    /// A passphrase is needed and none could be read.
    #[error(
        "this vault needs its passphrase: set AUTHVAULT_PASSPHRASE or run in a terminal to be prompted"
    )]
    PassphraseRequired,
    /// The OS keyring failed.
    #[error("OS keyring: {0}")]
    Keyring(#[from] KeyringError),
    /// The passphrase method's stored Argon2id parameters cannot be read.
    #[error("invalid passphrase key-derivation parameters: {0}")]
    KdfParams(String),
    /// The key layer failed: Argon2id parameters out of range, or no salt.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// A random-number or cipher failure outside any stored value.
    #[error("cryptography failed: {0}")]
    Crypto(#[from] CryptoError),
    /// A credential file another program wrote (Codex's `auth.json` after a
    /// run) cannot be read; the vault keeps what it had.
    /// The text is the parse error (file, line, column, what was expected;
    /// never a value from the file).
    #[error("{0}; the vault's tokens were kept")]
    CredentialFile(String),
    /// No account with that label.
    #[error("no account `{label}`{}; see `vault accounts`", known_list(.known))]
    AccountNotFound {
        /// Label asked for.
        label: String,
        /// Labels that exist.
        known: Vec<String>,
    },
    /// Several accounts could serve and none was named.
    #[error("{what} has several accounts ({}); choose one with `--account NAME`", .candidates.join(", "))]
    AmbiguousAccount {
        /// "openai", "claude" or "the vault".
        what: String,
        /// Their labels.
        candidates: Vec<String>,
    },
    /// No account at all matches.
    #[error("{what} has no accounts; add one with `vault login` or `vault migrate`")]
    NoAccounts {
        /// "openai", "claude" or "the vault".
        what: String,
    },
    /// The label is taken.
    #[error(
        "an account labelled `{0}` already exists; pick another `--label` or use `--account {0}` to replace its credential"
    )]
    LabelTaken(String),
    /// No numbered form of a default label is free.
    #[error(
        "the labels `{base}` and `{base}-2` to `{base}-{last}` are all taken; name the account with `--label`, or remove accounts you no longer use (`vault accounts remove LABEL`)"
    )]
    NoFreeLabel {
        /// The default label.
        base: String,
        /// The highest number tried.
        last: u32,
    },
    /// The label is not acceptable.
    #[error("invalid label `{label}`: {reason}")]
    InvalidLabel {
        /// The label.
        label: String,
        /// Why.
        reason: &'static str,
    },
    /// The account is disabled.
    #[error("account `{0}` is disabled; run `vault accounts enable {0}`")]
    AccountDisabled(String),
    /// The account has no credential of the needed kind.
    #[error("account `{label}` holds no {kind} credential")]
    NoCredential {
        /// The account.
        label: String,
        /// The kind missing.
        kind: crate::model::CredentialKind,
    },
    /// Input given to a command is not acceptable.
    #[error("{what}: {reason}")]
    InvalidInput {
        /// What was wrong ("API key on stdin", …).
        what: String,
        /// Why.
        reason: String,
    },
    /// Removing the only way to unlock the vault.
    #[error(
        "`{0}` is the vault's only unlock method; add another first (`vault passphrase add` or `vault keyring add`)"
    )]
    LastUnlockMethod(&'static str),
    /// Sources of an import could not be read or parsed; nothing was written.
    #[error(
        "{} source file(s) could not be imported, so nothing was written:\n  {}\n\
         fix them, leave them out, or pass --skip-invalid to import the others",
        .0.len(), .0.join("\n  ")
    )]
    InvalidSources(Vec<String>),
    /// An import was committed but reading it back did not give the same credentials.
    #[error("import verification failed: {0}; no source file was removed")]
    ImportVerification(String),
    /// `vault copy` refused before writing anything at the destination.
    #[error("cannot copy the vault to {destination}: {reason}; nothing was written there")]
    CopyRefused {
        /// The destination, without any password.
        destination: String,
        /// Why.
        reason: String,
    },
    /// A copy did not match its source when read back at the destination.
    #[error(
        "the copy at {destination} did not verify: {reason}; {}",
        if *.left_in_place {
            "it was left there for inspection: remove it (or drop its tables) before copying \
             again; the source holds no `vault.copy` entry"
        } else {
            "nothing was written there, and the source is unchanged"
        }
    )]
    CopyNotVerified {
        /// The destination, without any password.
        destination: String,
        /// What differed (names tables and counts, never a value).
        reason: String,
        /// Whether the copy had already been committed (then it stays).
        left_in_place: bool,
    },
    /// The export target exists.
    #[error("{0} exists; pass --force to replace it")]
    ExportTargetExists(PathBuf),
    /// The account's login died; the user must log in again.
    #[error("account `{label}` needs a new login: run `vault login {provider} --account {label}`")]
    NeedsLogin {
        /// Provider name.
        provider: crate::model::Provider,
        /// The account.
        label: String,
    },
    /// A provider call failed.
    #[error("{provider}: {source}")]
    Provider {
        /// Which provider.
        provider: crate::model::Provider,
        /// What failed.
        source: crate::providers::ProviderError,
    },
    /// A login did not complete; nothing was stored.
    #[error("login failed, nothing was stored: {0}")]
    Login(String),
    /// The provider answered for another account than this one.
    #[error(
        "the provider answered for a different account than `{label}` ({what} differs); \
         the answer was rejected and nothing was stored"
    )]
    IdentityMismatch {
        /// The account.
        label: String,
        /// Which identity field differs ("ChatGPT account id", "e-mail").
        what: &'static str,
    },
    /// Another process holds the refresh lease for too long.
    #[error("another process is refreshing account `{0}` and did not finish in time; try again")]
    RefreshBusy(String),
    /// An unlock method was added that the vault has already.
    #[error(
        "this vault already has a {method} unlock method, so nothing was changed; {}",
        replace_hint(method)
    )]
    MethodPresent {
        /// The unlock method.
        method: &'static str,
    },
    /// The vault lacks the unlock method that was asked for.
    #[error(
        "this vault has no {method} unlock method (it has: {}); nothing was changed. \
         Use one it has, or add this one with `vault {method} add`",
        .have.join(", ")
    )]
    NoSuchMethod {
        /// The unlock method asked for.
        method: &'static str,
        /// The unlock methods the vault has.
        have: Vec<&'static str>,
    },
    /// This host's OS keyring has no usable unlock method row: never
    /// enrolled, or a `vault rekey` elsewhere left it without a wrap of the
    /// new data key.
    #[error(
        "the OS keyring of host `{host}` does not unlock this vault: {reason}. Unlock with the \
         passphrase on this host and run `vault keyring add` to enrol it; nothing was changed"
    )]
    KeyringNeedsEnrol {
        /// The host (`AUTHVAULT_HOST`, else the node name).
        host: String,
        /// Why.
        reason: &'static str,
    },
    /// A key rotation would leave other hosts' keyrings without the new data
    /// key in a vault without a passphrase, which is how they re-enrol.
    #[error(
        "`vault rekey` would leave host(s) {} unable to unlock: a host re-enrols after a rekey by \
         unlocking with the passphrase, and this vault has none; nothing was changed. Add one \
         first (`vault passphrase add`), or revoke those hosts (`vault keyring remove --host NAME`)",
        .hosts.join(", ")
    )]
    NoWayToReEnrol {
        /// The hosts that would be locked out.
        hosts: Vec<String>,
    },
    /// A key rotation was started without the KEK of every unlock method.
    #[error(
        "`vault rekey` wraps the new data key for every unlock method, so it needs the {method} \
         unlock method too; nothing was changed: {}",
        kek_hint(method)
    )]
    MissingKek {
        /// The unlock method whose KEK this session does not hold.
        method: &'static str,
    },
    /// Another process rotated the data key to one this session cannot unwrap.
    #[error(
        "data key {key_id} is not wrapped for the unlock method this session used (another \
         `vault` command changed the keys after this one unlocked); nothing was changed: run the \
         command again"
    )]
    DataKeyUnavailable {
        /// The data key id.
        key_id: u32,
    },
    /// A reservation would take a budget over its limit; nothing was reserved.
    /// The binary exits with status 3 for this error alone.
    #[error(
        "over budget: {budget} has used {used} and reserved {reserved} of {limit}, \
         so {requested} more does not fit; nothing was reserved. {}",
        retry_hint(.resets_at.as_deref())
    )]
    OverBudget {
        /// The budget, described: account `work` tokens per day.
        budget: String,
        /// Committed in the current window.
        used: u64,
        /// Held by open reservations.
        reserved: u64,
        /// Asked for.
        requested: u64,
        /// The budget's limit.
        limit: u64,
        /// When the window frees usage (RFC 3339), when known.
        resets_at: Option<String>,
    },
    /// The selector found no account that may serve the task (every reason
    /// is in `vault select`'s candidate list). The binary exits with status 4
    /// A policy setting the selector cannot use.
    #[error(transparent)]
    Policy(#[from] crate::selector::PolicyError),
    /// for this error alone.
    #[error("no account is eligible: {reason}")]
    NoEligibleAccount {
        /// The selector's reason, in one sentence.
        reason: String,
    },
    /// No reservation has that id.
    #[error("no reservation {0}; `vault reserve` prints the id of each reservation it makes")]
    ReservationNotFound(i64),
    /// The reservation was committed, released, or has expired.
    #[error("reservation {id} is {state}, so it cannot be {action}; nothing was changed{}", if *.state == "expired" { " (reserve again with a longer --ttl)" } else { "" })]
    ReservationClosed {
        /// The reservation id.
        id: i64,
        /// "committed", "released" or "expired".
        state: &'static str,
        /// "committed" or "released".
        action: &'static str,
    },
}

fn replace_hint(method: &str) -> &'static str {
    if method == "passphrase" {
        "to replace it, run `vault passphrase change`"
    } else {
        "to write a new keyring entry, run `vault keyring remove`, then `vault keyring add`"
    }
}

fn kek_hint(method: &str) -> &'static str {
    if method == "passphrase" {
        "give the passphrase as well (AUTHVAULT_PASSPHRASE, or run in a terminal to be prompted)"
    } else {
        "make sure the OS keyring answers and holds this vault's entry, or remove that method \
         with `vault keyring remove`"
    }
}

fn changed_what(method: &str) -> String {
    if method == "passphrase" {
        "passphrase".to_owned()
    } else {
        format!("{method} unlock method")
    }
}

fn retry_hint(resets_at: Option<&str>) -> String {
    resets_at.map_or_else(
        || {
            "Release or commit open reservations, or raise the limit with `vault quota set`"
                .to_owned()
        },
        |t| format!("Try again after {t}, or raise the limit with `vault quota set`"),
    )
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (the vault has no accounts)".to_owned()
    } else {
        format!(" (known: {})", known.join(", "))
    }
}

/// An error of the PostgreSQL driver (`db::pg`), defined here, below the
/// `db` layer, so that [`Error`] can carry it; its methods and the
/// classification of driver errors live in `db::pg`. Messages never hold a password, the
/// URL's password, or a server DETAIL line (it can quote row values).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The connection is gone (I/O error, server shut down, SQLSTATE class 08,
    /// 57P01/57P02/57P03). `sent_commit`: whether a COMMIT had been sent on it
    /// (then whether it took effect is unknown).
    #[error("{}", lost_message(*.sent_commit, .reason))]
    ConnectionLost {
        /// A COMMIT was sent and its answer never came.
        sent_commit: bool,
        /// What the driver or the server said.
        reason: String,
    },
    /// The server refused the statement: SQLSTATE and primary message only,
    /// never DETAIL (it can quote values), never the URL.
    #[error("PostgreSQL refused the statement: {message} (SQLSTATE {code})")]
    Database {
        /// The SQLSTATE, e.g. `23505` for a unique violation.
        code: String,
        /// The server's primary message.
        message: String,
    },
    /// Bad URL, TLS setup, a column of an unsupported type, anything else.
    #[error("{0}")]
    Other(String),
}

fn lost_message(sent_commit: bool, reason: &str) -> String {
    if sent_commit {
        format!(
            "the connection to PostgreSQL was lost after COMMIT was sent, so whether the \
             transaction took effect is unknown: {reason}"
        )
    } else {
        format!("the connection to PostgreSQL was lost: {reason}")
    }
}

/// The operation of an SQLite error that no public function has named yet.
const UNNAMED_OP: &str = "accessing the vault file";

impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Self {
        Self::Sqlite {
            op: UNNAMED_OP,
            source,
        }
    }
}

impl From<PgError> for Error {
    fn from(source: PgError) -> Self {
        Self::Postgres {
            op: UNNAMED_OP,
            source,
        }
    }
}

/// Runs `body` and names `op` in the database error it returns, unless a
/// function it called named a more specific one already. Every public store
/// and `db` function wraps its body in it, so that every "vault database"
/// error says what was being done.
pub(crate) fn during<T>(op: &'static str, body: impl FnOnce() -> Result<T>) -> Result<T> {
    body().map_err(|e| match e {
        Error::Sqlite {
            op: UNNAMED_OP,
            source,
        } => Error::Sqlite { op, source },
        Error::Postgres {
            op: UNNAMED_OP,
            source,
        } => Error::Postgres { op, source },
        other => other,
    })
}

impl Error {
    /// The PostgreSQL connection was lost and no COMMIT was pending: the
    /// server rolled the transaction back, nothing of it was written.
    pub(crate) fn lost_before_commit(&self) -> bool {
        matches!(
            self,
            Self::Postgres {
                source: PgError::ConnectionLost {
                    sent_commit: false,
                    ..
                },
                ..
            }
        )
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
