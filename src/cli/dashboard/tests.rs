//! The dashboard's panels rendered into a `TestBackend`: what each shows for
//! an empty vault, accounts in every state, sessions, the provider choice,
//! usage history (none, some, by account and by model, the active block),
//! the key help, `NO_COLOR` and an 80×24 terminal.

use authvault::model::{CredentialKind, Provider};
use authvault::selector::{BudgetUnit, Strategy};
use authvault::store::EventRow;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::state::{
    AccountRow, AccountState, Budget, DashboardState, Loaded, SessionRow, USAGE_DAYS, UsageBlock,
    UsageBy, UsageSummary, Window, blocks_settled, current_block,
};
use super::view::{KEYS, draw};
use super::worker::Request;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 12, 0, 0).unwrap()
}

fn account(label: &str, provider: Provider, five: f64, seven: f64) -> AccountRow {
    AccountRow {
        label: label.into(),
        provider,
        credential: CredentialKind::OAuth,
        plan: Some("max".into()),
        state: AccountState::Ok,
        five_hour: Some(Window {
            percent: Some(five),
            resets_at: Some(now() + TimeDelta::minutes(299)),
        }),
        seven_day: Some(Window {
            percent: Some(seven),
            resets_at: Some(now() + TimeDelta::hours(50)),
        }),
        fetched_at: Some(now()),
        budgets: Vec::new(),
    }
}

fn loaded(accounts: Vec<AccountRow>) -> Loaded {
    Loaded {
        pick: accounts.first().map(|a| a.label.clone()),
        accounts,
        sessions: Vec::new(),
        strategy: Strategy::PreferClaude,
        pin: None,
        threshold: 80.0,
        reason: "first in the fallback order".into(),
        usage: UsageSummary::default(),
    }
}

fn state(loaded: Option<Loaded>) -> DashboardState {
    let mut s = DashboardState::new(false, now());
    if let Some(l) = loaded {
        s.apply(l);
    }
    s
}

fn render(state: &DashboardState, width: u16, height: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    term.draw(|f| draw(f, state)).expect("draw");
    term.backend().buffer().clone()
}

/// The screen as lines of text.
fn lines(buffer: &Buffer) -> Vec<String> {
    let width = usize::from(buffer.area.width);
    buffer
        .content
        .chunks(width)
        .map(|row| row.iter().map(ratatui::buffer::Cell::symbol).collect())
        .collect()
}

fn screen(state: &DashboardState, width: u16, height: u16) -> String {
    lines(&render(state, width, height)).join("\n")
}

/// The first line inside a panel that names `label`.
fn line_of(screen: &str, label: &str) -> String {
    let found: Vec<_> = screen
        .lines()
        .filter(|l| l.starts_with('│') && l.contains(label))
        .collect();
    assert!(
        !found.is_empty(),
        "`{label}` is not on the screen:\n{screen}"
    );
    found[0].to_owned()
}

#[test]
fn before_the_first_load_the_accounts_panel_says_it_is_loading() {
    let text = screen(&state(None), 120, 40);
    assert!(text.contains("Loading the vault"), "{text}");
}

#[test]
fn an_empty_vault_says_how_to_add_accounts_and_shows_no_sessions() {
    let text = screen(&state(Some(loaded(Vec::new()))), 120, 40);
    assert!(text.contains("Accounts (0)"), "{text}");
    assert!(
        text.contains("No accounts yet: run `vault login`"),
        "{text}"
    );
    assert!(text.contains("No live agent sessions."), "{text}");
    assert!(text.contains("next pick: none"), "{text}");
    assert!(text.contains("1 (x) prefer-claude"), "{text}");
}

#[test]
fn each_account_shows_provider_plan_state_utilization_and_resets() {
    let s = state(Some(loaded(vec![
        account("work", Provider::Claude, 12.0, 34.0),
        account("home", Provider::OpenAi, 85.0, 40.0),
    ])));
    let text = screen(&s, 120, 40);
    let work = line_of(&text, "work");
    for part in ["*", "claude", "max", "ok", "12%", "4h59m", "34%", "2d02h"] {
        assert!(work.contains(part), "`{part}` missing: {work}");
    }
    // Over the 80 % threshold: marked, for NO_COLOR too.
    let home = line_of(&text, "home");
    assert!(home.contains("85%!"), "{home}");
    assert!(!home.contains('*'), "only the pick is starred: {home}");
    assert!(text.contains("next pick: * work"), "{text}");
}

#[test]
fn needs_login_disabled_and_cooldown_are_told_apart() {
    let mut login = account("expired", Provider::Claude, 0.0, 0.0);
    login.state = AccountState::NeedsLogin;
    login.five_hour = None;
    login.seven_day = None;
    let mut off = account("off", Provider::Claude, 1.0, 1.0);
    off.state = AccountState::Disabled;
    let mut cool = account("cool", Provider::OpenAi, 1.0, 1.0);
    cool.state = AccountState::Cooldown(now() + TimeDelta::minutes(4));
    let text = screen(&state(Some(loaded(vec![login, off, cool]))), 120, 40);
    let expired = line_of(&text, "expired");
    assert!(expired.contains("needs login"), "{expired}");
    assert!(expired.contains(" - "), "no snapshot, no gauge: {expired}");
    assert!(line_of(&text, "off").contains("disabled"));
    assert!(line_of(&text, "cool").contains("cool 4m"));
}

#[test]
fn a_local_budget_is_a_bar_with_its_share_on_wide_terminals() {
    let mut a = account("work", Provider::Claude, 1.0, 1.0);
    a.budgets = vec![Budget {
        name: "daily".into(),
        unit: BudgetUnit::Tokens,
        spent: 850.0,
        limit: 1000.0,
    }];
    let text = screen(&state(Some(loaded(vec![a]))), 120, 40);
    let work = line_of(&text, "work");
    assert!(work.contains("#####. 85% daily"), "{work}");
}

#[test]
fn sessions_show_agent_account_age_and_reserved_tokens() {
    let mut l = loaded(vec![account("work", Provider::Claude, 1.0, 1.0)]);
    l.sessions = vec![SessionRow {
        agent: "ci-bot".into(),
        account: Some("work".into()),
        started_at: now() - TimeDelta::minutes(3),
        reserved_tokens: Some(5000),
    }];
    let text = screen(&state(Some(l)), 120, 40);
    assert!(text.contains("Agent sessions (1)"), "{text}");
    let row = line_of(&text, "ci-bot");
    for part in ["work", "3m ago", "5000"] {
        assert!(row.contains(part), "`{part}` missing: {row}");
    }
}

#[test]
fn the_provider_choice_marks_the_strategy_and_names_the_pin() {
    let mut l = loaded(vec![account("work", Provider::Claude, 1.0, 1.0)]);
    l.strategy = Strategy::CostOptimized;
    l.pin = Some("work".into());
    let text = screen(&state(Some(l)), 120, 40);
    assert!(text.contains("3 (x) cost-optimized"), "{text}");
    assert!(text.contains("1 ( ) prefer-claude"), "{text}");
    assert!(text.contains("pin work  threshold 80%"), "{text}");
}

#[test]
fn question_mark_help_lists_every_key() {
    let mut s = state(Some(loaded(Vec::new())));
    s.help = true;
    let text = screen(&s, 80, 24);
    for (key, what) in KEYS {
        assert!(
            text.contains(&format!("{key:>10}  {what}")),
            "`{key}` missing:\n{text}"
        );
    }
}

#[test]
fn at_80_by_24_every_account_shows_with_its_utilization() {
    let accounts: Vec<_> = (0..6)
        .map(|i| {
            account(
                &format!("acct-{i}"),
                Provider::Claude,
                f64::from(10 + i),
                34.0,
            )
        })
        .collect();
    let text = screen(&state(Some(loaded(accounts))), 80, 24);
    for i in 0..6 {
        let row = line_of(&text, &format!("acct-{i}"));
        assert!(row.contains(&format!("{}%", 10 + i)), "{row}");
        assert!(row.contains("34%"), "{row}");
    }
    assert!(text.contains("q quit"), "{text}");
}

#[test]
fn gauges_are_coloured_by_the_threshold_and_no_color_draws_none() {
    let l = loaded(vec![
        account("low", Provider::Claude, 10.0, 10.0),
        account("high", Provider::Claude, 90.0, 10.0),
    ]);
    let mut s = state(Some(l));
    let colours = |buffer: &Buffer| -> Vec<Color> {
        buffer
            .content
            .iter()
            .map(|c| c.fg)
            .filter(|c| *c != Color::Reset)
            .collect()
    };
    let coloured = render(&s, 120, 40);
    assert!(colours(&coloured).contains(&Color::Red));
    assert!(colours(&coloured).contains(&Color::Green));
    s.no_color = true;
    assert_eq!(colours(&render(&s, 120, 40)), Vec::<Color>::new());
}

#[test]
fn a_reload_keeps_the_selected_account_and_moves_stay_in_the_list() {
    let mut s = state(Some(loaded(vec![
        account("a", Provider::Claude, 1.0, 1.0),
        account("b", Provider::Claude, 1.0, 1.0),
    ])));
    s.select_by(5);
    assert_eq!(s.selected_label(), Some("b"));
    s.apply(loaded(vec![
        account("0", Provider::Claude, 1.0, 1.0),
        account("a", Provider::Claude, 1.0, 1.0),
        account("b", Provider::Claude, 1.0, 1.0),
    ]));
    assert_eq!(s.selected_label(), Some("b"));
    s.select_by(-9);
    assert_eq!(s.selected_label(), Some("0"));
}

#[test]
fn tiny_terminals_draw_without_panicking() {
    let mut s = state(Some(loaded(vec![account(
        "work",
        Provider::Claude,
        99.0,
        1.0,
    )])));
    s.help = true;
    for (width, height) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23)] {
        let text = screen(&s, width, height);
        assert_eq!(text.lines().count(), usize::from(height));
    }
}

/// Pico-dollars from cents.
fn cents(n: u64) -> u64 {
    n * 10_000_000_000
}

/// 30 days of usage: a little every day, $1.23 today, an active block, an
/// account, unattributed usage and two models.
fn history() -> UsageSummary {
    let mut days: Vec<u64> = (1..=USAGE_DAYS as u64).map(|d| cents(d * 10)).collect();
    *days.last_mut().unwrap() = cents(123);
    UsageSummary {
        today: cents(123),
        block: Some(UsageBlock {
            start: now() - TimeDelta::hours(3),
            end: now() + TimeDelta::minutes(130),
            cost_pico: cents(45),
        }),
        by_account: vec![(Some("work".into()), cents(3000)), (None, cents(1458))],
        by_model: vec![
            ("opus-x".into(), cents(4000)),
            ("haiku-y".into(), cents(458)),
        ],
        days,
    }
}

#[test]
fn with_no_usage_history_the_panel_says_how_to_import_at_both_sizes() {
    for (width, height) in [(80, 24), (120, 40)] {
        let text = screen(&state(Some(loaded(Vec::new()))), width, height);
        assert!(text.contains("Usage 30d by account"), "{text}");
        assert!(text.contains("today $0.00"), "{text}");
        assert!(text.contains("block: none active"), "{text}");
        assert!(text.contains("No usage in 30 days"), "{text}");
    }
}

#[test]
fn usage_history_shows_today_the_block_the_days_and_unattributed_usage_at_both_sizes() {
    for (width, height) in [(80, 24), (120, 40)] {
        let mut l = loaded(vec![account("acct", Provider::Claude, 1.0, 1.0)]);
        l.usage = history();
        let text = screen(&state(Some(l)), width, height);
        assert!(text.contains("today $1.23"), "{text}");
        assert!(text.contains("block $0.45 ends 2h10m"), "{text}");
        assert!(line_of(&text, "work").contains("$30.00"), "{text}");
        let unattributed = line_of(&text, "unattributed");
        assert!(unattributed.contains("$14.58"), "{unattributed}");
        assert!(!text.contains("No usage in 30 days"), "{text}");
        // The bar chart of the days.
        assert!(text.contains('█'), "no bars:\n{text}");
    }
}

#[test]
fn u_switches_the_usage_panel_between_accounts_and_models() {
    let mut l = loaded(Vec::new());
    l.usage = history();
    let mut s = state(Some(l));
    let key = |s: &mut DashboardState| {
        super::on_key(s, KeyEvent::from(KeyCode::Char('u')));
    };
    key(&mut s);
    assert_eq!(s.usage_by, UsageBy::Model);
    let text = screen(&s, 120, 40);
    assert!(text.contains("Usage 30d by model"), "{text}");
    assert!(line_of(&text, "opus-x").contains("$40.00"), "{text}");
    assert!(line_of(&text, "haiku-y").contains("$4.58"), "{text}");
    assert!(!text.contains("unattributed"), "{text}");
    key(&mut s);
    assert_eq!(s.usage_by, UsageBy::Account);
    assert!(screen(&s, 120, 40).contains("unattributed"));
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a test time")
}

/// Events at the given times with the given costs, oldest first.
fn events(list: &[(&str, u64)]) -> Vec<EventRow> {
    let mut rows: Vec<EventRow> = list
        .iter()
        .map(|&(t, cost_pico)| EventRow {
            at: at(t),
            provider: Provider::Claude,
            account: None,
            model: "claude-sonnet-4".into(),
            agent: None,
            task_type: None,
            session: None,
            project: None,
            source: authvault::usage::Source::ClaudeCode,
            events: 1,
            tokens: authvault::usage::Tokens::default(),
            cost_pico,
        })
        .collect();
    rows.sort_by_key(|e| e.at);
    rows
}

#[test]
fn the_active_block_starts_at_the_hour_of_its_first_event_and_sums_its_costs() {
    let events = events(&[
        ("2026-05-04T09:40:00Z", 7),
        ("2026-05-04T08:20:00Z", 5),
        ("2026-05-04T11:00:00Z", 1),
    ]);
    let block = current_block(&events, at("2026-05-04T12:00:00Z")).expect("active");
    assert_eq!(block.start, at("2026-05-04T08:00:00Z"));
    assert_eq!(block.end, at("2026-05-04T13:00:00Z"));
    assert_eq!(block.cost_pico, 13);
}

#[test]
fn a_new_block_starts_after_five_hours_from_the_start_or_a_five_hour_gap() {
    // 13:05 is more than 5 h after the block's start (08:00), though not
    // after the previous event.
    let long = events(&[
        ("2026-05-04T08:10:00Z", 1),
        ("2026-05-04T12:00:00Z", 2),
        ("2026-05-04T13:05:00Z", 4),
    ]);
    let block = current_block(&long, at("2026-05-04T14:00:00Z")).expect("active");
    assert_eq!(
        (block.start, block.cost_pico),
        (at("2026-05-04T13:00:00Z"), 4)
    );
    // Exactly five hours after the start still belongs to the block.
    let edge = events(&[("2026-05-04T08:00:00Z", 1), ("2026-05-04T13:00:00Z", 2)]);
    let block = current_block(&edge, at("2026-05-04T12:59:00Z")).expect("active");
    assert_eq!(
        (block.start, block.cost_pico),
        (at("2026-05-04T08:00:00Z"), 3)
    );
}

#[test]
fn no_block_is_active_five_hours_after_the_last_event_or_after_its_end() {
    let events = events(&[("2026-05-04T08:30:00Z", 1)]);
    assert!(current_block(&events, at("2026-05-04T12:59:59Z")).is_some());
    assert_eq!(current_block(&events, at("2026-05-04T13:00:00Z")), None);
    assert_eq!(current_block(&[], at("2026-05-04T13:00:00Z")), None);
}

#[test]
fn l_asks_for_the_provider_and_c_or_o_starts_its_browser_login() {
    let mut s = state(Some(loaded(Vec::new())));
    let press =
        |s: &mut DashboardState, c: char| super::on_key(s, KeyEvent::from(KeyCode::Char(c)));
    assert!(matches!(press(&mut s, 'l'), super::Action::Stay));
    let text = screen(&s, 80, 24);
    assert!(text.contains("Log in to: c Claude, o OpenAI"), "{text}");
    assert!(matches!(
        press(&mut s, 'c'),
        super::Action::Send(Request::Login(Provider::Claude))
    ));
    assert!(!screen(&s, 80, 24).contains("Log in to:"));
    press(&mut s, 'l');
    assert!(matches!(
        press(&mut s, 'o'),
        super::Action::Send(Request::Login(Provider::OpenAi))
    ));
    // Any other key cancels, and does nothing else.
    press(&mut s, 'l');
    assert!(matches!(press(&mut s, 'q'), super::Action::Stay));
    assert!(!s.login_choice);
}

#[test]
fn the_block_is_settled_by_a_five_hour_gap_or_no_recent_event() {
    let from = at("2026-05-03T12:00:00Z");
    let now = at("2026-05-04T12:00:00Z");
    // Activity every four hours since before `from`: earlier events could
    // move the blocks' starts, so more days are needed.
    let busy: Vec<_> = (0..6).map(|i| from + TimeDelta::hours(4 * i + 1)).collect();
    assert!(!blocks_settled(from, &busy, now));
    // A gap of more than five hours after `from`, or before the first event.
    let mut gap = busy.clone();
    gap.remove(2);
    gap.remove(2);
    assert!(blocks_settled(from, &gap, now));
    let late = vec![from + TimeDelta::hours(6), from + TimeDelta::hours(23)];
    assert!(blocks_settled(from, &late, now));
    // Nothing in the last five hours: no block is active anyway.
    assert!(blocks_settled(from, &[from + TimeDelta::hours(1)], now));
    assert!(blocks_settled(from, &[], now));
}
