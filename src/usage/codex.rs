//! Codex rollouts (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-….jsonl`):
//! cumulative token counts turned into per-response events as ccusage does
//! (USAGE-FORMATS §2.2–2.4). Pure and stateful per file: feed the lines of
//! one rollout in order.
//!
//! A `token_count` event whose cumulative total equals the previous one is a
//! duplicate emit and skipped. Otherwise the response used
//! `last_token_usage` when given, else the growth of the total. Input
//! includes cached input in Codex's counts; here input is the non-cached
//! part and cached input is a cache read. The model is the last
//! `turn_context`'s (or the event's own), else `gpt-5`. The rate limits a
//! `token_count` event carries (5-hour `primary`, weekly `secondary`) are
//! kept, the newest per rollout: [`Rollout::rate_limits`].

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Tokens;
use super::claude::{LineError, describe};
use super::price::{PriceTable, Speed};
use crate::model::{Provider, Snapshot, SnapshotSource, UsageWindow};
use crate::store::UsageEvent;
use crate::usage::Source;

/// The model ccusage assumes when a rollout names none.
const FALLBACK_MODEL: &str = "gpt-5";

#[derive(Deserialize)]
struct Line {
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<serde_json::Value>,
}

/// Codex's `TokenUsage`, with the aliases ccusage accepts (field names
/// as Codex writes them).
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
struct Usage {
    #[serde(default, alias = "prompt_tokens")]
    input_tokens: u64,
    #[serde(default, alias = "cache_read_input_tokens", alias = "cached_tokens")]
    cached_input_tokens: u64,
    #[serde(default, alias = "completion_tokens")]
    output_tokens: u64,
    #[serde(default)]
    reasoning_output_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

impl Usage {
    /// The five counts as text, for identities.
    fn key(self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.input_tokens,
            self.cached_input_tokens,
            self.output_tokens,
            self.reasoning_output_tokens,
            self.total_tokens
        )
    }

    const fn saturating_sub(self, before: Self) -> Self {
        Self {
            input_tokens: self.input_tokens.saturating_sub(before.input_tokens),
            cached_input_tokens: self
                .cached_input_tokens
                .saturating_sub(before.cached_input_tokens),
            output_tokens: self.output_tokens.saturating_sub(before.output_tokens),
            reasoning_output_tokens: self
                .reasoning_output_tokens
                .saturating_sub(before.reasoning_output_tokens),
            total_tokens: self.total_tokens.saturating_sub(before.total_tokens),
        }
    }
}

#[derive(Deserialize)]
struct Info {
    total_token_usage: Option<Usage>,
    last_token_usage: Option<Usage>,
    model: Option<String>,
}

/// Reads one rollout, line by line, in order.
#[derive(Debug, Clone)]
pub struct Rollout {
    session: String,
    project: Option<String>,
    model: Option<String>,
    total: Option<Usage>,
    rate_limits: Option<Snapshot>,
}

/// One of Codex's rate-limit windows.
#[derive(Deserialize)]
struct Limit {
    used_percent: Option<f64>,
    window_minutes: Option<u64>,
    resets_at: Option<i64>,
}

#[derive(Deserialize)]
struct Limits {
    primary: Option<Limit>,
    secondary: Option<Limit>,
    plan_type: Option<String>,
}

impl Limits {
    /// As a snapshot taken at `at`, in the window names of ChatGPT's usage
    /// endpoint (`primary`, `secondary`); `None` when it says nothing.
    fn snapshot(self, at: DateTime<Utc>) -> Option<Snapshot> {
        let window = |name: &str, l: Option<Limit>| {
            l.map(|l| UsageWindow {
                utilization_percent: l.used_percent,
                window_seconds: l.window_minutes.map(|m| m * 60),
                resets_at: l
                    .resets_at
                    .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
                ..UsageWindow::named(name)
            })
            .filter(UsageWindow::has_data)
        };
        let windows: Vec<UsageWindow> = [
            window("primary", self.primary),
            window("secondary", self.secondary),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!windows.is_empty()).then(|| Snapshot {
            plan: self.plan_type,
            windows,
            ..Snapshot::empty(Provider::OpenAi, SnapshotSource::CodexLog, at)
        })
    }
}

impl Rollout {
    /// A reader for the rollout whose session id (its path below
    /// `sessions/` without `.jsonl`) is `session`.
    #[must_use]
    pub const fn new(session: String) -> Self {
        Self {
            session,
            project: None,
            model: None,
            total: None,
            rate_limits: None,
        }
    }

    /// The newest rate limits the lines read so far logged, as a snapshot
    /// (source `codex_log`, taken at that line's time).
    #[must_use]
    pub const fn rate_limits(&self) -> Option<&Snapshot> {
        self.rate_limits.as_ref()
    }

    /// Keeps the rate limits of a `token_count` event at `timestamp` when
    /// they are the newest seen (unreadable ones are ignored: they are not
    /// usage).
    fn keep_rate_limits(&mut self, timestamp: Option<&str>, payload: &serde_json::Value) {
        let at = timestamp
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc());
        if let (Some(at), Some(limits)) = (at, payload.get("rate_limits"))
            && let Ok(limits) = serde_json::from_value::<Limits>(limits.clone())
            && let Some(snapshot) = limits.snapshot(at)
            && self.rate_limits.as_ref().is_none_or(|s| s.fetched_at <= at)
        {
            self.rate_limits = Some(snapshot);
        }
    }

    /// The usage event `line` records, if it records one.
    ///
    /// # Errors
    /// [`LineError`] for a line that is not JSON, or a token count without
    /// a valid timestamp.
    pub fn line(
        &mut self,
        line: &[u8],
        prices: &PriceTable,
    ) -> Result<Option<UsageEvent>, LineError> {
        let parsed: Line =
            serde_json::from_slice(line).map_err(|e| LineError::Json(describe(&e)))?;
        let Some(payload) = parsed.payload else {
            return Ok(None);
        };
        let text = |v: &serde_json::Value, k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        match parsed.kind.as_deref() {
            Some("session_meta") => {
                self.project = text(&payload, "cwd").or(self.project.take());
                return Ok(None);
            }
            Some("turn_context") => {
                let model = text(&payload, "model").or_else(|| text(&payload, "model_name"));
                self.model = model.or(self.model.take());
                if self.project.is_none() {
                    self.project = text(&payload, "cwd");
                }
                return Ok(None);
            }
            Some("event_msg") if text(&payload, "type").as_deref() == Some("token_count") => {}
            _ => return Ok(None),
        }
        self.keep_rate_limits(parsed.timestamp.as_deref(), &payload);
        let Some(info) = payload.get("info").filter(|i| !i.is_null()) else {
            return Ok(None);
        };
        let info: Info =
            serde_json::from_value(info.clone()).map_err(|e| LineError::Shape(describe(&e)))?;
        let at: DateTime<Utc> = parsed
            .timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or(LineError::Timestamp)?
            .to_utc();
        let before = self.total;
        if let Some(total) = info.total_token_usage {
            if before == Some(total) {
                return Ok(None);
            }
            self.total = Some(total);
        }
        let delta = match (info.last_token_usage, info.total_token_usage) {
            (Some(last), _) => last,
            (None, Some(total)) => total.saturating_sub(before.unwrap_or_default()),
            (None, None) => return Ok(None),
        };
        if delta.input_tokens == 0
            && delta.cached_input_tokens == 0
            && delta.output_tokens == 0
            && delta.reasoning_output_tokens == 0
        {
            return Ok(None);
        }
        let cached = delta.cached_input_tokens.min(delta.input_tokens);
        let tokens = Tokens {
            input: delta.input_tokens - cached,
            cache_read: cached,
            output: delta.output_tokens,
            reasoning: delta.reasoning_output_tokens,
            ..Tokens::default()
        };
        let model = info
            .model
            .or_else(|| text(&payload, "model"))
            .or_else(|| self.model.clone())
            .unwrap_or_else(|| FALLBACK_MODEL.to_owned());
        let (cost_pico, price_version) = match prices.codex_cost(&model, &tokens, Speed::Standard) {
            Some(pico) => (pico, Some(prices.version().to_owned())),
            None => (0, None),
        };
        // The position in the session: the cumulative total after this
        // response (or, without totals, its time and counts).
        let position = info.total_token_usage.map_or_else(
            || format!("at\0{}\0{}", at.timestamp_micros(), delta.key()),
            |t| format!("total\0{}", t.key()),
        );
        Ok(Some(UsageEvent {
            at,
            provider: Provider::OpenAi,
            account: None,
            model,
            agent: None,
            task_type: None,
            session: Some(self.session.clone()),
            project: self.project.clone(),
            source: Source::Codex,
            tokens,
            cost_pico,
            price_version,
            identity: format!("{}\0{position}", self.session),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The five lines of USAGE-FORMATS §2.2.
    const ROLLOUT: &str = r#"{"timestamp":"2025-10-17T05:50:00.100Z","type":"session_meta","payload":{"id":"0199f0a1-1111-7222-8333-944445555666","timestamp":"2025-10-17T05:50:00.000Z","cwd":"/home/u/demo","originator":"codex_cli_rs","cli_version":"0.46.0","instructions":null,"source":"cli","model_provider":"openai"}}
{"timestamp":"2025-10-17T05:50:05.000Z","type":"turn_context","payload":{"cwd":"/home/u/demo","approval_policy":"on-request","sandbox_policy":{"mode":"workspace-write","network_access":false,"exclude_tmpdir_env_var":false,"exclude_slash_tmp":false},"model":"gpt-5-codex","effort":"medium","summary":"auto"}}
{"timestamp":"2025-10-17T05:50:06.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"primary":{"used_percent":7.0,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":31.0,"window_minutes":10080,"resets_at":1761100000}}}}
{"timestamp":"2025-10-17T05:50:20.209Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":20304,"cached_input_tokens":16896,"output_tokens":1183,"reasoning_output_tokens":832,"total_tokens":21487},"last_token_usage":{"input_tokens":20304,"cached_input_tokens":16896,"output_tokens":1183,"reasoning_output_tokens":832,"total_tokens":21487},"model_context_window":272000},"rate_limits":{"primary":{"used_percent":8.0,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":31.0,"window_minutes":10080,"resets_at":1761100000}}}}
{"timestamp":"2025-10-17T05:54:20.209Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":26549,"cached_input_tokens":22272,"output_tokens":1590,"reasoning_output_tokens":1152,"total_tokens":28139},"last_token_usage":{"input_tokens":6245,"cached_input_tokens":5376,"output_tokens":407,"reasoning_output_tokens":320,"total_tokens":6652},"model_context_window":272000},"rate_limits":{"primary":{"used_percent":9.0,"window_minutes":300,"resets_at":1760695805},"secondary":{"used_percent":31.0,"window_minutes":10080,"resets_at":1761100000}}}}"#;

    fn read(text: &str) -> Vec<UsageEvent> {
        let mut r = Rollout::new("2025/10/17/rollout-x".into());
        text.lines()
            .filter_map(|l| r.line(l.as_bytes(), PriceTable::builtin()).unwrap())
            .collect()
    }

    fn sum(events: &[UsageEvent]) -> (Tokens, u64) {
        let mut t = Tokens::default();
        let mut cost = 0;
        for e in events {
            t.add(&e.tokens);
            cost += e.cost_pico;
        }
        (t, cost)
    }

    #[test]
    fn the_reference_rollout_gives_ccusages_totals() {
        let events = read(ROLLOUT);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.model == "gpt-5-codex"));
        assert_eq!(events[0].project.as_deref(), Some("/home/u/demo"));
        let (tokens, cost) = sum(&events);
        // §2.5: inputTokens 4277 (non-cached), cacheReadTokens 22272,
        // outputTokens 1590, reasoning 1152, totalTokens 28139.
        assert_eq!(
            tokens,
            Tokens {
                input: 4277,
                cache_read: 22_272,
                output: 1590,
                reasoning: 1152,
                ..Tokens::default()
            }
        );
        assert_eq!(tokens.total(), 28_139);
        assert_eq!(cost, 24_030_250_000);
    }

    #[test]
    fn the_newest_rate_limits_become_a_snapshot() {
        let mut rollout = Rollout::new("s".into());
        for line in ROLLOUT.lines() {
            rollout
                .line(line.as_bytes(), PriceTable::builtin())
                .unwrap();
        }
        let s = rollout.rate_limits().unwrap();
        assert_eq!(s.source, SnapshotSource::CodexLog);
        assert_eq!(
            s.fetched_at,
            "2025-10-17T05:54:20.209Z".parse::<DateTime<Utc>>().unwrap()
        );
        let windows: Vec<_> = s
            .windows
            .iter()
            .map(|w| {
                (
                    w.name.as_str(),
                    w.utilization_percent,
                    w.window_seconds,
                    w.resets_at.map(|t| t.timestamp()),
                )
            })
            .collect();
        assert_eq!(
            windows,
            [
                ("primary", Some(9.0), Some(300 * 60), Some(1_760_695_805)),
                (
                    "secondary",
                    Some(31.0),
                    Some(10_080 * 60),
                    Some(1_761_100_000)
                ),
            ]
        );
    }

    #[test]
    fn a_repeated_total_is_skipped_and_a_total_only_line_adds_its_growth() {
        let last = ROLLOUT.lines().last().unwrap();
        let repeated = last.replace("05:54:20.209Z", "05:54:20.221Z");
        let total_only = r#"{"timestamp":"2025-10-17T06:00:00.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":27549,"cached_input_tokens":22272,"output_tokens":1690,"reasoning_output_tokens":1152,"total_tokens":29239}},"rate_limits":null}}"#;
        let events = read(&format!("{ROLLOUT}\n{repeated}\n{total_only}"));
        assert_eq!(events.len(), 3);
        let added = events[2].tokens;
        assert_eq!(
            (added.input, added.cache_read, added.output),
            (1000, 0, 100)
        );
    }

    #[test]
    fn without_a_model_the_fallback_is_gpt_5_and_identities_are_positions() {
        let text: String = ROLLOUT
            .lines()
            .filter(|l| !l.contains("turn_context"))
            .collect::<Vec<_>>()
            .join("\n");
        let events = read(&text);
        assert!(events.iter().all(|e| e.model == "gpt-5"));
        assert_ne!(events[0].identity, events[1].identity);
        // Reading again gives the same identities.
        assert_eq!(
            read(&text)
                .into_iter()
                .map(|e| e.identity)
                .collect::<Vec<_>>(),
            events.into_iter().map(|e| e.identity).collect::<Vec<_>>()
        );
    }
}
