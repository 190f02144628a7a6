//! The worker thread: it owns the [`Manager`] (store and network), takes
//! [`Request`]s over a channel and answers with [`Update`]s, and reloads
//! the state every `interval` on its own. The UI thread never waits on it.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use authvault::manager::{Manager, ProbeOptions};
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
    interval: Duration,
    requests: Receiver<Request>,
    send: impl Fn(Update) -> bool + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dashboard-worker".into())
        .spawn(move || {
            // A panic here has restored the terminal (the hook): the UI is told
            // to stop rather than draw on a terminal no longer in raw mode.
            let run = AssertUnwindSafe(|| run(manager, interval, &requests, &send));
            if std::panic::catch_unwind(run).is_err() {
                send(Update::Stopped);
            }
        })
}

fn run(
    mut manager: Manager,
    interval: Duration,
    requests: &Receiver<Request>,
    send: &impl Fn(Update) -> bool,
) {
    loop {
        if !send(reload(&mut manager)) {
            return;
        }
        match requests.recv_timeout(interval) {
            Ok(request) => {
                send(Update::Busy(progress(&mut manager, &request)));
                let done = match perform(&mut manager, &request) {
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
    }
}

fn perform(manager: &mut Manager, request: &Request) -> Result<String> {
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
    })
}
