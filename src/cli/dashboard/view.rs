//! Drawing: pure functions of a [`DashboardState`] into a ratatui frame,
//! so every panel is tested against a `TestBackend`.
//!
//! Layout, top to bottom: a status line (strategy, pin, the selector's
//! pick, work in progress, the last message), the accounts table, a row of
//! small panels (live sessions, provider choice, usage history), and a key
//! line. `?` draws the key
//! help over it all. Nothing secret is in the state, so nothing secret can
//! be drawn; every text that came from the vault goes through
//! [`authvault::terminal::escape`] first.

use authvault::selector::{BudgetUnit, Strategy};
use authvault::terminal::escape;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Sparkline, Table, TableState, Wrap};

use super::state::{
    AccountRow, AccountState, DashboardState, Loaded, USAGE_DAYS, UsageBy, UsageSummary, Window,
};

/// The strategies in number-key order (`1` … `5`).
pub const STRATEGY_KEYS: [Strategy; 5] = [
    Strategy::PreferClaude,
    Strategy::PreferOpenai,
    Strategy::CostOptimized,
    Strategy::PerformanceOptimized,
    Strategy::UserPreference,
];

/// Every key, as `?` shows them.
pub const KEYS: [(&str, &str); 14] = [
    ("↑ ↓ / k j", "select an account"),
    ("r", "refresh the selected account's usage now"),
    ("h", "health check of every account"),
    ("l c / l o", "log in to Claude / OpenAI in the browser"),
    ("e", "enable the selected account"),
    ("d", "disable the selected account"),
    ("p", "pin the selected account (strategy user-preference)"),
    ("1", "strategy prefer-claude"),
    ("2", "strategy prefer-openai"),
    ("3", "strategy cost-optimized"),
    ("4", "strategy performance-optimized"),
    ("5", "strategy user-preference"),
    ("u", "usage by account / by model"),
    ("? / q", "this help / quit"),
];

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame<'_>, state: &DashboardState) {
    let [status, accounts, panels, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(9),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let paint = Paint(state.no_color);
    frame.render_widget(Paragraph::new(status_lines(state, paint)), status);
    match &state.loaded {
        Some(loaded) => {
            draw_accounts(frame, accounts, loaded, state, paint);
            let [sessions, choice, usage] = Layout::horizontal([
                Constraint::Fill(1),
                Constraint::Length(30),
                Constraint::Fill(1),
            ])
            .areas(panels);
            draw_sessions(frame, sessions, loaded, state.now);
            draw_choice(frame, choice, loaded, paint);
            draw_usage(frame, usage, &loaded.usage, state, paint);
        }
        None => frame.render_widget(
            Paragraph::new("Loading the vault…").block(Block::bordered().title(" Accounts ")),
            accounts,
        ),
    }
    frame.render_widget(
        Paragraph::new(
            "↑↓ r refresh h health l login e/d on/off p pin 1-5 strategy u usage ? q quit",
        )
        .style(paint.style(Color::DarkGray)),
        keys,
    );
    if state.help {
        draw_help(frame, frame.area());
    }
}

/// Colours, or none under `NO_COLOR`.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn style(self, color: Color) -> Style {
        if self.0 {
            Style::default()
        } else {
            Style::default().fg(color)
        }
    }
}

fn status_lines(state: &DashboardState, paint: Paint) -> Vec<Line<'static>> {
    let mut first = vec![Span::styled(
        "authvault",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if let Some(l) = &state.loaded {
        first.push(Span::raw(format!(
            "  strategy {}  pin {}  next pick: {}",
            l.strategy,
            l.pin.as_deref().map_or_else(|| "none".into(), escape),
            l.pick
                .as_deref()
                .map_or_else(|| "none".into(), |p| format!("* {}", escape(p)))
        )));
    }
    let second = match (&state.busy, &state.message) {
        _ if state.login_choice => Line::from(Span::styled(
            "Log in to: c Claude, o OpenAI (in the browser; any other key cancels)",
            paint.style(Color::Yellow),
        )),
        (Some(busy), _) => Line::from(Span::styled(
            format!("{} {}…", spinner(state.now), escape(busy)),
            paint.style(Color::Yellow),
        )),
        (None, Some(m)) => Line::from(escape(m).into_owned()),
        (None, None) => Line::from(
            state
                .loaded
                .as_ref()
                .map(|l| escape(&l.reason).into_owned())
                .unwrap_or_default(),
        ),
    };
    vec![Line::from(first), second]
}

fn spinner(now: DateTime<Utc>) -> char {
    ['|', '/', '-', '\\'][(now.timestamp_subsec_millis() / 250) as usize % 4]
}

fn draw_accounts(
    frame: &mut Frame<'_>,
    area: Rect,
    loaded: &Loaded,
    state: &DashboardState,
    paint: Paint,
) {
    let block = Block::bordered().title(format!(" Accounts ({}) ", loaded.accounts.len()));
    if loaded.accounts.is_empty() {
        frame.render_widget(
            Paragraph::new("No accounts yet: run `vault login` or `vault migrate`.").block(block),
            area,
        );
        return;
    }
    // Narrow terminals get short bars and no budget bar.
    let wide = area.width >= 110;
    let bar = if wide { 10 } else { 4 };
    let header = Row::new(
        [
            "", "provider", "account", "plan", "state", "5-hour", "resets", "7-day", "resets",
        ]
        .into_iter()
        .chain(wide.then_some("budget")),
    )
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = loaded.accounts.iter().map(|a| {
        let picked = loaded.pick.as_deref() == Some(a.label.as_str());
        let mut cells = vec![
            Line::from(if picked { "*" } else { " " }),
            Line::from(a.provider.as_str()),
            Line::from(escape(&a.label).into_owned()),
            Line::from(
                a.plan
                    .as_deref()
                    .map(escape)
                    .unwrap_or_default()
                    .into_owned(),
            ),
            state_cell(a, state.now, paint),
            gauge(a.five_hour.as_ref(), loaded.threshold, bar, paint),
            Line::from(reset(a.five_hour.as_ref(), state.now)),
            gauge(a.seven_day.as_ref(), loaded.threshold, bar, paint),
            Line::from(reset(a.seven_day.as_ref(), state.now)),
        ];
        if wide {
            cells.push(budget_cell(a, paint));
        }
        Row::new(cells)
    });
    let gauge_width = bar + 6;
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Min(8),
        Constraint::Length(if wide { 10 } else { 6 }),
        Constraint::Length(11),
        Constraint::Length(gauge_width),
        Constraint::Length(6),
        Constraint::Length(gauge_width),
        Constraint::Length(6),
    ];
    if wide {
        widths.push(Constraint::Length(22));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut table_state = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn state_cell(a: &AccountRow, now: DateTime<Utc>, paint: Paint) -> Line<'static> {
    let (text, color) = match a.state {
        AccountState::Ok => ("ok".to_owned(), Color::Green),
        AccountState::NeedsLogin => ("needs login".to_owned(), Color::Red),
        AccountState::Disabled => ("disabled".to_owned(), Color::DarkGray),
        AccountState::Cooldown(until) => (format!("cool {}", countdown(now, until)), Color::Yellow),
    };
    Line::from(Span::styled(text, paint.style(color)))
}

/// A utilization bar `[###.] 12%`, green below the threshold less 10
/// points, yellow up to it, red at or over it (marked `!` too, for
/// `NO_COLOR`).
fn gauge(window: Option<&Window>, threshold: f64, width: u16, paint: Paint) -> Line<'static> {
    let Some(percent) = window.and_then(|w| w.percent) else {
        return Line::from("-");
    };
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * f64::from(width)).round() as usize;
    let color = if percent >= threshold {
        Color::Red
    } else if percent >= threshold - 10.0 {
        Color::Yellow
    } else {
        Color::Green
    };
    let over = if percent >= threshold { "!" } else { "" };
    Line::from(vec![
        Span::styled(
            format!(
                "{}{}",
                "#".repeat(filled),
                ".".repeat(usize::from(width) - filled)
            ),
            paint.style(color),
        ),
        Span::raw(format!(" {percent:.0}%{over}")),
    ])
}

fn reset(window: Option<&Window>, now: DateTime<Utc>) -> String {
    window
        .and_then(|w| w.resets_at)
        .map_or_else(|| "-".into(), |at| countdown(now, at))
}

/// Time from `now` to `at`, short: `45s`, `12m`, `4h59m`, `6d23h`.
pub fn countdown(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let s = (at - now).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn budget_cell(a: &AccountRow, paint: Paint) -> Line<'static> {
    let Some(b) = a
        .budgets
        .iter()
        .max_by(|x, y| (x.spent / x.limit).total_cmp(&(y.spent / y.limit)))
    else {
        return Line::from("-");
    };
    let share = if b.limit > 0.0 {
        b.spent / b.limit
    } else {
        1.0
    };
    let filled = (share.clamp(0.0, 1.0) * 6.0).round() as usize;
    let unit = match b.unit {
        BudgetUnit::Tokens => "",
        BudgetUnit::Usd => "$",
        BudgetUnit::Requests => "req",
    };
    let color = if share >= 0.95 {
        Color::Red
    } else if share >= 0.8 {
        Color::Yellow
    } else {
        Color::Green
    };
    Line::from(vec![
        Span::styled(
            format!("{}{}", "#".repeat(filled), ".".repeat(6 - filled)),
            paint.style(color),
        ),
        Span::raw(format!(
            " {:.0}% {}{}",
            share * 100.0,
            escape(&b.name),
            unit
        )),
    ])
}

fn draw_sessions(frame: &mut Frame<'_>, area: Rect, loaded: &Loaded, now: DateTime<Utc>) {
    let block = Block::bordered().title(format!(" Agent sessions ({}) ", loaded.sessions.len()));
    if loaded.sessions.is_empty() {
        frame.render_widget(Paragraph::new("No live agent sessions.").block(block), area);
        return;
    }
    let rows = loaded.sessions.iter().map(|s| {
        Row::new([
            escape(&s.agent).into_owned(),
            escape(s.account.as_deref().unwrap_or("(removed)")).into_owned(),
            format!("{} ago", countdown(s.started_at, now)),
            s.reserved_tokens.map(|t| t.to_string()).unwrap_or_default(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(6),
            Constraint::Min(6),
            Constraint::Length(10),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(["agent", "account", "started", "reserved"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(block);
    frame.render_widget(table, area);
}

fn draw_choice(frame: &mut Frame<'_>, area: Rect, loaded: &Loaded, paint: Paint) {
    let mut lines: Vec<Line<'static>> = STRATEGY_KEYS
        .iter()
        .zip(1..)
        .map(|(s, key)| {
            let on = *s == loaded.strategy;
            let text = format!("{key} {} {}", if on { "(x)" } else { "( )" }, s.as_str());
            if on {
                Line::from(Span::styled(
                    text,
                    paint.style(Color::Cyan).add_modifier(Modifier::BOLD),
                ))
            } else {
                Line::from(text)
            }
        })
        .collect();
    lines.push(Line::from(format!(
        "pin {}  threshold {:.0}%",
        loaded.pin.as_deref().map_or_else(|| "none".into(), escape),
        loaded.threshold
    )));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Provider choice ")),
        area,
    );
}

/// Dollars from pico-dollars, to the cent.
fn dollars(pico: u64) -> String {
    format!("${:.2}", authvault::usage::pico_to_usd(pico))
}

/// The usage panel: today's and the active block's cost, the last
/// [`USAGE_DAYS`] days' costs as a bar chart, and those days broken down
/// by account (unattributed usage its own entry) or by model.
fn draw_usage(
    frame: &mut Frame<'_>,
    area: Rect,
    usage: &UsageSummary,
    state: &DashboardState,
    paint: Paint,
) {
    let by = match state.usage_by {
        UsageBy::Account => "account",
        UsageBy::Model => "model",
    };
    let block = Block::bordered().title(format!(" Usage {USAGE_DAYS}d by {by} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let total: u64 = usage.days.iter().sum();
    let mut head = vec![Line::from(format!("today {}", dollars(usage.today)))];
    head.push(Line::from(usage.block.map_or_else(
        || "block: none active".to_owned(),
        |b| {
            format!(
                "block {} ends {}",
                dollars(b.cost_pico),
                countdown(state.now, b.end)
            )
        },
    )));
    let [head_area, chart_area, shares_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(2),
        Constraint::Fill(1),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(head), head_area);
    if total == 0 {
        frame.render_widget(
            Paragraph::new("No usage in 30 days: `vault usage import` reads agents' logs.")
                .wrap(Wrap { trim: true }),
            chart_area.union(shares_area),
        );
        return;
    }
    // One column per day, today at the right edge; on narrow terminals
    // the days that fit.
    let days = &usage.days[usage
        .days
        .len()
        .saturating_sub(usize::from(chart_area.width))..];
    frame.render_widget(
        Sparkline::default()
            .data(days)
            .style(paint.style(Color::Cyan)),
        chart_area,
    );
    let shares: Vec<(String, u64)> = match state.usage_by {
        UsageBy::Account => usage
            .by_account
            .iter()
            .map(|(label, cost)| {
                let name = label
                    .as_deref()
                    .map_or_else(|| "unattributed".into(), |l| escape(l).into_owned());
                (name, *cost)
            })
            .collect(),
        UsageBy::Model => usage
            .by_model
            .iter()
            .map(|(model, cost)| (escape(model).into_owned(), *cost))
            .collect(),
    };
    let width = usize::from(shares_area.width);
    // A bar when there is room for one besides the name and the cost.
    let bar = if width >= 36 { 10 } else { 0 };
    let name_width = width.saturating_sub(if bar > 0 { bar + 11 } else { 10 });
    let lines: Vec<Line<'static>> = shares
        .iter()
        .take(usize::from(shares_area.height))
        .map(|(name, cost)| {
            // The queries ran one after another: a share may exceed the
            // days' total when usage was recorded in between.
            let filled = usize::try_from(
                (u128::from(*cost) * bar as u128 + u128::from(total) / 2) / u128::from(total),
            )
            .map_or(bar, |f| f.min(bar));
            let name: String = if name.chars().count() > name_width {
                let mut short: String = name.chars().take(name_width.saturating_sub(1)).collect();
                short.push('…');
                short
            } else {
                name.clone()
            };
            let mut spans = vec![Span::raw(format!("{name:<name_width$} "))];
            if bar > 0 {
                spans.push(Span::styled(
                    format!("{}{} ", "#".repeat(filled), ".".repeat(bar - filled)),
                    paint.style(Color::Cyan),
                ));
            }
            spans.push(Span::raw(format!("{:>9}", dollars(*cost))));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), shares_area);
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let height = (KEYS.len() as u16 + 2).min(area.height);
    let width = 72.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(k, what)| Line::from(format!("{k:>10}  {what}")))
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys (any key closes) ")),
        popup,
    );
}
