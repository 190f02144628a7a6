//! The worker thread: it owns the [`Manager`] (store and network), takes
//! [`Request`]s over a channel and answers with [`Update`]s, and reloads
//! the state every `interval` on its own. The UI thread never waits on it.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use authvault::manager::{LoginTarget, Manager, ProbeOptions};
use authvault::model::Provider;
use authvault::selector::{Policy, Strategy};
use authvault::store::ProbeOutcome;

use super::state::{Loaded, load};

/// What the UI asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Fetch this account's usage snapshot now.
    Refresh(String),
    /// Probe every enabled account.
    HealthCheck,
    /// Enable or disable an account.
    SetEnabled(String, bool),
    /// Pin an account (as `vault switch LABEL`).
    Pin(String),
    /// Set the policy's strategy (as `vault policy set strategy …`).
    Strategy(Strategy),
    /// Log in to a new account of this provider in the browser (as
    /// `vault login PROVIDER`).
    Login(Provider),
}

/// How long a login from the dashboard waits for the browser (as `vault
/// login`'s default `--timeout`).
pub const LOGIN_TIMEOUT: Duration = Duration::from_mins(5);

/// What the worker needs besides the `Manager`.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Time between reloads (`--interval`).
    pub interval: Duration,
    /// The local state directory, where a login writes the page the browser
    /// opens; `None` when there is no display to open a browser on.
    pub browser: Option<PathBuf>,
}

/// What the worker sends back.
#[derive(Debug)]
pub enum Update {
    /// Fresh state from the vault.
    Loaded(Box<Loaded>),
    /// Work started (shown until the next `Done`).
    Busy(String),
    /// Work finished: its outcome or error, one line.
    Done(String),
    /// The worker panicked and stopped.
    Stopped,
}

/// Starts the worker with `manager`. It hands each update to `send`, and
/// ends when `requests` is closed or `send` returns false (the UI is gone).
pub fn spawn(
    manager: Manager,
    setup: Setup,
    requests: Receiver<Request>,
    send: impl Fn(Update) -> bool + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dashboard-worker".into())
        .spawn(move || {
            // A panic here has restored the terminal (the hook): the UI is told
            // to stop rather than draw on a terminal no longer in raw mode.
            let run = AssertUnwindSafe(|| run(manager, &setup, &requests, &send));
            if std::panic::catch_unwind(run).is_err() {
                send(Update::Stopped);
            }
        })
}

fn run(
    mut manager: Manager,
    setup: &Setup,
    requests: &Receiver<Request>,
    send: &impl Fn(Update) -> bool,
) {
    loop {
        if !send(reload(&mut manager)) {
            return;
        }
        match requests.recv_timeout(setup.interval) {
            Ok(request) => {
                send(Update::Busy(progress(&mut manager, &request)));
                let done = match perform(&mut manager, setup, &request) {
                    Ok(text) => text,
                    Err(e) => format!("{}: {e:#}", busy(&request)),
                };
                if !send(Update::Done(done)) {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn reload(manager: &mut Manager) -> Update {
    match load(manager) {
        Ok(loaded) => Update::Loaded(Box::new(loaded)),
        Err(e) => Update::Done(format!("reading the vault failed: {e:#}")),
    }
}

/// What the status line shows while `request` runs: as [`busy`], with
/// how many accounts a health check probes and how many at a time.
fn progress(manager: &mut Manager, request: &Request) -> String {
    if *request != Request::HealthCheck {
        return busy(request);
    }
    let options = ProbeOptions::default();
    match manager.store().accounts() {
        Ok(accounts) => format!(
            "health check of {} enabled accounts, {} at a time, each within {} s",
            accounts.iter().filter(|a| a.enabled).count(),
            options.concurrency,
            options.timeout.as_secs()
        ),
        Err(_) => busy(request),
    }
}

fn busy(request: &Request) -> String {
    match request {
        Request::Refresh(label) => format!("refreshing `{label}`"),
        Request::HealthCheck => "health check of every account".into(),
        Request::SetEnabled(label, true) => format!("enabling `{label}`"),
        Request::SetEnabled(label, false) => format!("disabling `{label}`"),
        Request::Pin(label) => format!("pinning `{label}`"),
        Request::Strategy(s) => format!("setting strategy {s}"),
        Request::Login(p) => format!(
            "logging in to {p}: waiting for the browser (up to {} s)",
            LOGIN_TIMEOUT.as_secs()
        ),
    }
}

fn perform(manager: &mut Manager, setup: &Setup, request: &Request) -> Result<String> {
    Ok(match request {
        Request::Refresh(label) => {
            manager.subscription(label, true)?;
            format!("Refreshed the usage of `{label}`.")
        }
        Request::HealthCheck => {
            let reports = manager.probe_all(ProbeOptions::default())?;
            let ok = reports
                .iter()
                .filter(|r| r.probe.outcome == ProbeOutcome::Ok)
                .count();
            format!(
                "Health check: {ok} of {} accounts answered ok.",
                reports.len()
            )
        }
        Request::SetEnabled(label, enabled) => {
            manager.store().set_enabled(label, *enabled)?;
            format!(
                "{} `{label}`.",
                if *enabled { "Enabled" } else { "Disabled" }
            )
        }
        Request::Pin(label) => {
            super::super::policy::pin(manager.store(), label)?;
            format!("Pinned `{label}` (strategy user-preference).")
        }
        Request::Strategy(s) => {
            let row = Policy::set("strategy", s.as_str())?;
            manager.store().set_policy(&[(row.key, row.value)])?;
            format!("Strategy set to {s}.")
        }
        Request::Login(provider) => login(manager, setup, *provider)?,
    })
}

/// The browser login of `vault login PROVIDER`, without the paste mode: a
/// loopback listener, the private page handed to the desktop's opener,
/// the callback, the code exchange. The authorize address (its `state` is
/// a secret) goes to the page only, never into an [`Update`].
fn login(manager: &mut Manager, setup: &Setup, provider: Provider) -> Result<String> {
    // First, for narrow terminals: what to do instead.
    let use_cli = format!("Run `vault login {provider}` in a shell");
    let Some(state_dir) = &setup.browser else {
        return Ok(format!(
            "{use_cli}: there is no display to open a browser on."
        ));
    };
    // The ports `vault login` listens on by default.
    let port = if provider == Provider::OpenAi {
        1455
    } else {
        0
    };
    let session = manager.start_login(provider, Some(port))?;
    // Removed (with its directory) when the login ends, however it ends.
    let _page = match super::super::login::open_browser(state_dir, &session.pending.url) {
        Ok(page) => page,
        Err(e) => return Ok(format!("{use_cli}: no browser could be opened ({e:#}).")),
    };
    let callback = manager.wait_for_callback(&session, LOGIN_TIMEOUT)?;
    let done = manager.complete_login(&session, &callback, &LoginTarget::default())?;
    let info = &done.account;
    let plan = info
        .plan
        .as_deref()
        .map(|p| format!(", plan {p}"))
        .unwrap_or_default();
    Ok(format!(
        "Logged in {} account `{}`{plan}.",
        info.provider, info.label
    ))
}
