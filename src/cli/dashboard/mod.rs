//! `vault dashboard`: a terminal UI over accounts, quota, sessions and the
//! provider choice.
//!
//! Three threads: the worker ([`worker`]) owns the `Manager` and does every
//! store and network call; an input thread reads terminal events; this
//! thread only draws ([`view`], pure functions of a
//! [`state::DashboardState`]), woken by whichever of them sends first or by
//! a tick for the countdowns. A redraw never waits on a provider or a
//! SQLite lock, and new data is drawn as soon as it arrives.
//! The terminal is restored on every way out: a guard on return and on
//! unwinding, and a panic hook before the panic message is printed.

mod state;
mod view;
mod worker;

#[cfg(test)]
mod tests;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use authvault::model::Provider;
use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};

use super::Ctx;
use state::{DashboardState, UsageBy};
use worker::{Request, Update};

/// How often the screen is redrawn with nothing new (countdowns, spinner).
const TICK: Duration = Duration::from_millis(250);

/// What wakes the UI thread.
enum Wake {
    /// A terminal event (a key, a resize).
    Input(Event),
    /// The worker's news.
    Worker(Update),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds between reloads of accounts, snapshots and sessions.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "vault dashboard needs a terminal; use `vault quota`, `vault sessions` or `vault select` in scripts"
        );
    }
    // Unlock first: a passphrase prompt needs the terminal as it is.
    let manager = ctx.manager()?;
    let (request_tx, request_rx) = mpsc::channel();
    let (wake_tx, wake_rx) = mpsc::channel();
    let worker_tx = wake_tx.clone();
    let setup = worker::Setup {
        interval: Duration::from_secs(args.interval),
        browser: if ctx.config.has_display {
            Some(ctx.config.local_state()?.to_path_buf())
        } else {
            None
        },
    };
    worker::spawn(manager, setup, request_rx, move |update| {
        worker_tx.send(Wake::Worker(update)).is_ok()
    })
    .context("starting the dashboard's worker thread")?;
    let _guard = TerminalGuard::enter()?;
    std::thread::Builder::new()
        .name("dashboard-input".into())
        .spawn(move || {
            while let Ok(e) = event::read() {
                if wake_tx.send(Wake::Input(e)).is_err() {
                    return;
                }
            }
        })
        .context("starting the dashboard's input thread")?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let mut state = DashboardState::new(ctx.config.no_color, Utc::now());
    loop {
        state.now = Utc::now();
        term.draw(|frame| view::draw(frame, &state))?;
        let wake = match wake_rx.recv_timeout(TICK) {
            Ok(wake) => wake,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the dashboard's worker and input threads stopped")
            }
        };
        let key = match wake {
            Wake::Worker(Update::Loaded(loaded)) => {
                state.apply(*loaded);
                continue;
            }
            Wake::Worker(Update::Busy(what)) => {
                state.busy = Some(what);
                continue;
            }
            Wake::Worker(Update::Done(text)) => {
                state.busy = None;
                state.message = Some(text);
                continue;
            }
            Wake::Worker(Update::Stopped) => {
                anyhow::bail!("the dashboard's worker stopped unexpectedly")
            }
            Wake::Input(Event::Key(key)) if key.kind == KeyEventKind::Press => key,
            Wake::Input(_) => continue,
        };
        match on_key(&mut state, key) {
            Action::Quit => break,
            Action::Stay => {}
            Action::Send(request) => {
                // Shown at once; the worker's `Busy` and `Done` follow.
                state.busy = Some("working".into());
                if request_tx.send(request).is_err() {
                    anyhow::bail!("the dashboard's worker stopped");
                }
            }
        }
    }
    // The worker may be inside a network call: it is not waited for. It
    // ends with the process; SQLite rolls back whatever it had not committed.
    Ok(ExitCode::SUCCESS)
}

/// What a key does.
enum Action {
    Quit,
    Stay,
    Send(Request),
}

fn on_key(state: &mut DashboardState, key: KeyEvent) -> Action {
    if state.help {
        state.help = false;
        return Action::Stay;
    }
    if state.login_choice {
        state.login_choice = false;
        return match key.code {
            KeyCode::Char('c') => Action::Send(Request::Login(Provider::Claude)),
            KeyCode::Char('o') => Action::Send(Request::Login(Provider::OpenAi)),
            _ => Action::Stay,
        };
    }
    let selected = state.selected_label().map(str::to_owned);
    let request = match key.code {
        KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            return Action::Quit;
        }
        KeyCode::Char('?') => {
            state.help = true;
            None
        }
        KeyCode::Up | KeyCode::Char('k') => {
            state.select_by(-1);
            None
        }
        KeyCode::Down | KeyCode::Char('j') => {
            state.select_by(1);
            None
        }
        KeyCode::Char('u') => {
            state.usage_by = match state.usage_by {
                UsageBy::Account => UsageBy::Model,
                UsageBy::Model => UsageBy::Account,
            };
            None
        }
        KeyCode::Char('l') => {
            state.login_choice = true;
            None
        }
        KeyCode::Char('h') => Some(Request::HealthCheck),
        KeyCode::Char('r') => selected.map(Request::Refresh),
        KeyCode::Char('e') => selected.map(|l| Request::SetEnabled(l, true)),
        KeyCode::Char('d') => selected.map(|l| Request::SetEnabled(l, false)),
        KeyCode::Char('p') => selected.map(Request::Pin),
        KeyCode::Char(c @ '1'..='5') => {
            let index = usize::from(c as u8 - b'1');
            Some(Request::Strategy(view::STRATEGY_KEYS[index]))
        }
        _ => None,
    };
    request.map_or(Action::Stay, Action::Send)
}

/// Raw mode and the alternate screen while it lives; restored when it is
/// dropped (return, error, unwinding) and by the panic hook it installs.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        // From here on, `Drop` restores whatever was changed.
        let guard = Self;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen; safe to call more than once.
fn restore() {
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}
