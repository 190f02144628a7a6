//! `vault dashboard`: a terminal UI over accounts, quota, sessions and the
//! provider choice.
//!
//! Two threads: the worker ([`worker`]) owns the `Manager` and does every
//! store and network call; this thread only reads keys and draws
//! ([`view`], pure functions of a [`state::DashboardState`]). They talk
//! over channels, so a redraw never waits on a provider or a SQLite lock.
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
use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};

use super::Ctx;
use state::DashboardState;
use worker::{Request, Update};

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
    let (update_tx, update_rx) = mpsc::channel();
    worker::spawn(
        manager,
        Duration::from_secs(args.interval),
        request_rx,
        update_tx,
    )
    .context("starting the dashboard's worker thread")?;
    let _guard = TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let mut state = DashboardState::new(ctx.config.no_color, Utc::now());
    loop {
        for update in update_rx.try_iter() {
            match update {
                Update::Loaded(loaded) => state.apply(*loaded),
                Update::Busy(what) => state.busy = Some(what),
                Update::Done(text) => {
                    state.busy = None;
                    state.message = Some(text);
                }
            }
        }
        state.now = Utc::now();
        term.draw(|frame| view::draw(frame, &state))?;
        if !event::poll(Duration::from_millis(200))? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        if state.help {
            state.help = false;
            continue;
        }
        let selected = state.selected_label().map(str::to_owned);
        let request = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => break,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => break,
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
        if let Some(request) = request {
            // Shown at once; the worker's `Busy` and `Done` follow.
            state.busy = Some("working".into());
            if request_tx.send(request).is_err() {
                anyhow::bail!("the dashboard's worker stopped");
            }
        }
    }
    // The worker may be inside a network call: it is not waited for. It
    // ends with the process; SQLite rolls back whatever it had not committed.
    Ok(ExitCode::SUCCESS)
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
