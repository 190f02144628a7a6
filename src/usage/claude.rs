//! Claude Code transcripts (`<root>/projects/<project>/<session>.jsonl`):
//! which lines are usage and what they mean (USAGE-FORMATS §1.1–1.4).
//! Pure: a line and its file's session and project in, an event out.
//!
//! A line counts when its `message.usage` has `input_tokens` and
//! `output_tokens` and it has an RFC 3339 `timestamp`; so do Claude Code's
//! agent-progress lines, whose response sits in `data.message`. Where
//! ccusage 20.0.24 drops valid data this module keeps it (README, "Usage
//! history"): a key written as `null` is read as absent, timestamps with
//! microseconds are accepted, and a `"usage": {` with a space is read like
//! any other JSON.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Tokens;
use super::price::{PriceTable, Speed};
use crate::model::Provider;
use crate::store::UsageEvent;
use crate::usage::Source;

/// The model Claude Code writes on its own API-error stubs (zero usage).
const SYNTHETIC: &str = "<synthetic>";

#[derive(Deserialize)]
struct Line {
    timestamp: Option<String>,
    #[serde(rename = "requestId")]
    request_id: Option<String>,
    message: Option<Message>,
    #[serde(rename = "costUSD")]
    cost_usd: Option<f64>,
    data: Option<Progress>,
}

#[derive(Deserialize)]
struct Progress {
    message: Option<Box<Line>>,
}

#[derive(Deserialize)]
struct Message {
    id: Option<String>,
    model: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
    speed: Option<String>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    thinking_tokens: Option<u64>,
}

/// Why a line was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not JSON (a torn write, a stray byte).
    #[error("not JSON: {0}")]
    Json(String),
    /// Has usage, but no timestamp Claude Code would write.
    #[error("usage without a valid timestamp")]
    Timestamp,
    /// JSON with usage in a shape Claude Code does not write.
    #[error("usage in an unexpected shape: {0}")]
    Shape(String),
}

/// Where and how a line failed to parse, without its content: serde's own
/// message quotes the offending value, and a transcript line may hold
/// anything a user typed (keys included).
pub(crate) fn describe(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Eof => "the line ends early",
    };
    format!("{what} at column {}", e.column())
}

/// Session and project of a transcript, from its path below `projects/`
/// as ccusage takes them: `P/S.jsonl`, `P/S/x.jsonl` and
/// `P/S/subagents/x.jsonl` all give session `S` of project `P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The session id (the transcript's name or directory).
    pub session: String,
    /// The project directory name (the working directory with every
    /// character but letters and digits made `-`).
    pub project: String,
}

impl Transcript {
    /// Reads session and project from a path relative to `projects/`;
    /// `None` for a file directly in `projects/`.
    #[must_use]
    pub fn from_relative(relative: &Path) -> Option<Self> {
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let project = parts.next()?;
        let second = parts.next()?;
        let session = second.strip_suffix(".jsonl").unwrap_or(&second).to_owned();
        Some(Self { session, project })
    }
}

/// The longest project directory name Claude Code writes as is; a longer
/// one is cut to this and followed by `-` and a hash.
const PROJECT_NAME_MAX: usize = 200;

/// The project directory name Claude Code gives the working directory
/// `cwd`: every character but ASCII letters and digits made `-`. For a
/// name longer than 200 characters, the part every such directory of
/// `cwd` starts with (Claude Code adds `-` and a hash of its own).
#[must_use]
pub fn project_name(cwd: &Path) -> String {
    let mut name: String = cwd
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if name.len() > PROJECT_NAME_MAX {
        name.truncate(PROJECT_NAME_MAX);
        name.push('-');
    }
    name
}

/// Whether `dir` (a directory name below `projects/`) may hold `cwd`'s
/// transcripts (see [`project_name`]); their lines' `cwd` decides.
#[must_use]
pub fn may_be_project_of(dir: &str, cwd: &Path) -> bool {
    let name = project_name(cwd);
    if name.len() > PROJECT_NAME_MAX {
        dir.starts_with(&name)
    } else {
        dir == name
    }
}

/// How a transcript begins: the `timestamp` of its first line that has
/// one, and the `cwd` of its first line that has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscriptStart {
    /// When its session started.
    pub first: Option<DateTime<Utc>>,
    /// The directory Claude Code worked in, as it wrote it.
    pub cwd: Option<String>,
}

impl TranscriptStart {
    /// Reads `lines` until both are found; lines that are not JSON or have
    /// neither are skipped.
    ///
    /// # Errors
    /// I/O errors of `lines`.
    pub fn read(lines: impl std::io::BufRead) -> std::io::Result<Self> {
        #[derive(Deserialize)]
        struct Head {
            timestamp: Option<String>,
            cwd: Option<String>,
        }
        let mut start = Self::default();
        for line in lines.split(b'\n') {
            let line = line?;
            let Ok(head) = serde_json::from_slice::<Head>(&line) else {
                continue;
            };
            if start.first.is_none() {
                start.first = head
                    .timestamp
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.to_utc());
            }
            if start.cwd.is_none() {
                start.cwd = nonempty(head.cwd);
            }
            if start.first.is_some() && start.cwd.is_some() {
                break;
            }
        }
        Ok(start)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Tokens in the one meaning: the `cache_creation` breakdown when there is
/// one, else every cache write as 5-minute.
fn tokens_of(usage: Usage, input: u64, output: u64) -> Tokens {
    let (five_minutes, one_hour) = match usage.cache_creation {
        Some(c) => (
            c.ephemeral_5m_input_tokens.unwrap_or(0),
            c.ephemeral_1h_input_tokens.unwrap_or(0),
        ),
        None => (usage.cache_creation_input_tokens.unwrap_or(0), 0),
    };
    Tokens {
        input,
        cache_read: usage.cache_read_input_tokens.unwrap_or(0),
        cache_write_5m: five_minutes,
        cache_write_1h: one_hour,
        output,
        reasoning: usage
            .output_tokens_details
            .and_then(|d| d.thinking_tokens)
            .unwrap_or(0),
    }
}

/// The usage event a transcript line records, if it records one.
///
/// # Errors
/// [`LineError`] for a line that is not JSON, or has usage without a
/// valid timestamp.
pub fn parse_line(
    line: &[u8],
    transcript: &Transcript,
    prices: &PriceTable,
) -> Result<Option<UsageEvent>, LineError> {
    let mut parsed: Line = match serde_json::from_slice(line) {
        Ok(parsed) => parsed,
        Err(e) => {
            // Valid JSON of another shape is some other kind of line, unless
            // it mentions usage.
            serde_json::from_slice::<serde::de::IgnoredAny>(line)
                .map_err(|e| LineError::Json(describe(&e)))?;
            return if contains(line, b"\"usage\"") {
                Err(LineError::Shape(describe(&e)))
            } else {
                Ok(None)
            };
        }
    };
    let line_data = match parsed.data.take().and_then(|d| d.message) {
        Some(inner) if parsed.message.is_none() => *inner,
        _ => parsed,
    };
    let Line {
        timestamp,
        request_id,
        message,
        cost_usd,
        ..
    } = line_data;
    let Some(message) = message else {
        return Ok(None);
    };
    let Some(usage) = message.usage else {
        return Ok(None);
    };
    let (Some(input), Some(output)) = (usage.input_tokens, usage.output_tokens) else {
        return Ok(None);
    };
    let at: DateTime<Utc> = timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or(LineError::Timestamp)?
        .to_utc();
    let speed = if usage.speed.as_deref() == Some("fast") {
        Speed::Fast
    } else {
        Speed::Standard
    };
    let tokens = tokens_of(usage, input, output);
    let model = nonempty(message.model).unwrap_or_else(|| "unknown".to_owned());
    if model == SYNTHETIC && tokens.total() == 0 {
        return Ok(None);
    }
    let (cost_pico, price_version) = match cost_usd {
        Some(usd) if usd.is_finite() && usd >= 0.0 => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            // checked non-negative
            let pico = (usd * super::PICO_PER_USD).round() as u64;
            (pico, Some(super::GIVEN_COST.to_owned()))
        }
        _ => match prices.claude_cost(&model, &tokens, speed) {
            Some(pico) => (pico, Some(prices.version().to_owned())),
            None => (0, None),
        },
    };
    let label = match speed {
        Speed::Fast => format!("{model}-fast"),
        Speed::Standard => model,
    };
    let identity = match (nonempty(message.id), nonempty(request_id)) {
        (Some(id), Some(req)) => format!("id\0{id}\0{req}"),
        (Some(id), None) => format!("session\0{}\0{id}", transcript.session),
        (None, _) => format!(
            "line\0{}\0{}",
            transcript.session,
            String::from_utf8_lossy(line)
        ),
    };
    Ok(Some(UsageEvent {
        at,
        provider: Provider::Claude,
        account: None,
        model: label,
        agent: None,
        task_type: None,
        session: Some(transcript.session.clone()),
        project: Some(transcript.project.clone()),
        source: Source::ClaudeCode,
        tokens,
        cost_pico,
        price_version,
        identity,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_directory_is_the_working_directory_with_every_non_alphanumeric_made_a_dash() {
        assert_eq!(
            project_name(Path::new("/home/u/my.app_2")),
            "-home-u-my-app-2"
        );
        assert!(may_be_project_of("-home-u-a-b", Path::new("/home/u/a-b")));
        assert!(!may_be_project_of(
            "-home-u-a-b-c",
            Path::new("/home/u/a-b")
        ));
        // A long name is cut and followed by Claude Code's own hash.
        let long = Path::new("/").join("x".repeat(300));
        let dir = format!("-{}-1a2b3c", "x".repeat(199));
        assert!(may_be_project_of(&dir, &long));
        assert!(!may_be_project_of(
            &format!("-{}-1a2b3c", "y".repeat(199)),
            &long
        ));
    }

    #[test]
    fn a_transcript_starts_at_its_first_timestamp_in_its_first_cwd() {
        let text = concat!(
            "{\"type\":\"summary\",\"summary\":\"x\"}\n",
            "not json\n",
            "{\"type\":\"user\",\"timestamp\":\"2025-06-20T10:15:30.000Z\"}\n",
            "{\"cwd\":\"/home/u/demo\",\"timestamp\":\"2025-06-20T11:00:00.000Z\"}\n",
            "{\"cwd\":\"/home/u/other\",\"timestamp\":\"2025-06-20T12:00:00.000Z\"}\n",
        );
        let start = TranscriptStart::read(text.as_bytes()).unwrap();
        assert_eq!(
            start,
            TranscriptStart {
                first: Some("2025-06-20T10:15:30Z".parse().unwrap()),
                cwd: Some("/home/u/demo".into()),
            }
        );
        assert_eq!(
            TranscriptStart::read(&b"{\"cwd\":\"\"}\n"[..]).unwrap(),
            TranscriptStart::default()
        );
    }

    #[test]
    fn a_parse_error_names_where_but_never_the_value() {
        let e = serde_json::from_str::<u64>(r#""sk-ant-secret-value""#).unwrap_err();
        assert!(
            e.to_string().contains("sk-ant-secret-value"),
            "serde quotes it"
        );
        let said = describe(&e);
        assert!(!said.contains("sk-ant"), "{said}");
        assert_eq!(said, "a value of the wrong type at column 21");
    }

    fn demo() -> Transcript {
        Transcript {
            session: "11111111-2222-3333-4444-555555555555".into(),
            project: "-home-u-demo".into(),
        }
    }

    fn parse(line: &str) -> Result<Option<UsageEvent>, LineError> {
        parse_line(line.as_bytes(), &demo(), PriceTable::builtin())
    }

    const LINE1: &str = r#"{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/u/demo","sessionId":"11111111-2222-3333-4444-555555555555","version":"1.0.85","gitBranch":"main","message":{"id":"msg_01AAA","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":1000,"cache_read_input_tokens":5000,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":0},"output_tokens":200,"service_tier":"standard"}},"requestId":"req_01AAA","type":"assistant","uuid":"aaaaaaaa-0000-0000-0000-000000000001","timestamp":"2025-06-20T10:15:30.000Z"}"#;

    #[test]
    fn the_reference_line_becomes_one_event() {
        let e = parse(LINE1).unwrap().unwrap();
        assert_eq!(
            e,
            UsageEvent {
                at: "2025-06-20T10:15:30Z".parse().unwrap(),
                provider: Provider::Claude,
                account: None,
                model: "claude-sonnet-4-20250514".into(),
                agent: None,
                task_type: None,
                session: Some("11111111-2222-3333-4444-555555555555".into()),
                project: Some("-home-u-demo".into()),
                source: Source::ClaudeCode,
                tokens: Tokens {
                    input: 100,
                    cache_read: 5000,
                    cache_write_5m: 1000,
                    cache_write_1h: 0,
                    output: 200,
                    reasoning: 0,
                },
                cost_pico: 8_550_000_000,
                price_version: Some(PriceTable::builtin().version().into()),
                identity: "id\0msg_01AAA\0req_01AAA".into(),
            }
        );
    }

    #[test]
    fn lines_are_read_as_the_table_says() {
        // (line, Ok(Some((model, tokens total, identity kind))) | Ok(None) | Err)
        type Want = Result<Option<(&'static str, u64, &'static str)>, ()>;
        let cases: &[(&str, Want)] = &[
            // Not usage: a user line, a summary, a line without output tokens.
            (
                r#"{"type":"user","message":{"role":"user","content":"hi"},"timestamp":"2025-06-20T10:00:00Z"}"#,
                Ok(None),
            ),
            (
                r#"{"type":"summary","summary":"x","leafUuid":"u"}"#,
                Ok(None),
            ),
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","message":{"usage":{"input_tokens":5}}}"#,
                Ok(None),
            ),
            // `type` is not checked; cache fields default to 0.
            (
                r#"{"type":"user","timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"claude-sonnet-4","usage":{"input_tokens":5,"output_tokens":7}}}"#,
                Ok(Some(("claude-sonnet-4", 12, "id"))),
            ),
            // Without the breakdown, all cache creation is 5-minute.
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"m1","usage":{"input_tokens":1,"output_tokens":1,"cache_creation_input_tokens":40}}}"#,
                Ok(Some(("m1", 42, "id"))),
            ),
            // With the breakdown, its sum counts, not cache_creation_input_tokens.
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"m1","usage":{"input_tokens":1,"output_tokens":1,"cache_creation_input_tokens":40,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":20}}}}"#,
                Ok(Some(("m1", 32, "id"))),
            ),
            // ccusage drops these; authvault keeps them (README).
            (
                r#"{"costUSD":null,"cwd":null,"timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"m1","usage":{"input_tokens":1,"output_tokens":1,"cache_read_input_tokens":null}}}"#,
                Ok(Some(("m1", 2, "id"))),
            ),
            (
                r#"{"timestamp":"2025-06-20T10:00:00.123456Z","requestId":"r","message":{"id":"m","model":"m1","usage": {"input_tokens":1,"output_tokens":1}}}"#,
                Ok(Some(("m1", 2, "id"))),
            ),
            // Fast mode is a model of its own in reports.
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"claude-opus-4-6","usage":{"input_tokens":1,"output_tokens":1,"speed":"fast"}}}"#,
                Ok(Some(("claude-opus-4-6-fast", 2, "id"))),
            ),
            // Without requestId the key is scoped by session; without id there is none.
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","message":{"id":"m","model":"m1","usage":{"input_tokens":1,"output_tokens":1}}}"#,
                Ok(Some(("m1", 2, "session"))),
            ),
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","requestId":"","message":{"id":"","model":"m1","usage":{"input_tokens":1,"output_tokens":1}}}"#,
                Ok(Some(("m1", 2, "line"))),
            ),
            // Agent progress lines carry a response in data.message.
            (
                r#"{"type":"progress","data":{"message":{"timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"m1","usage":{"input_tokens":3,"output_tokens":1}}}}}"#,
                Ok(Some(("m1", 4, "id"))),
            ),
            // API-error stubs with no usage are not events.
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","isApiErrorMessage":true,"requestId":"r","message":{"id":"m","model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}"#,
                Ok(None),
            ),
            // Errors: torn JSON, usage without a timestamp.
            (
                r#"{"timestamp":"2025-06-20T10:00:00Z","message":{"id":"m","#,
                Err(()),
            ),
            (
                r#"{"timestamp":"yesterday","message":{"id":"m","model":"m1","usage":{"input_tokens":1,"output_tokens":1}}}"#,
                Err(()),
            ),
            (
                r#"{"message":{"id":"m","model":"m1","usage":{"input_tokens":1,"output_tokens":1}}}"#,
                Err(()),
            ),
        ];
        for (line, want) in cases {
            let got = parse(line).map(|e| e.map(|e| (e.model, e.tokens.total(), e.identity)));
            let got = got
                .as_ref()
                .map(|o| {
                    o.as_ref()
                        .map(|(m, t, i)| (m.as_str(), *t, i.split('\0').next().unwrap()))
                })
                .map_err(|_| ());
            assert_eq!(got, *want, "{line}");
        }
    }

    #[test]
    fn a_recorded_cost_is_used_as_is() {
        let line = r#"{"costUSD":0.5,"timestamp":"2025-06-20T10:00:00Z","requestId":"r","message":{"id":"m","model":"claude-sonnet-4","usage":{"input_tokens":10,"output_tokens":1}}}"#;
        let e = parse(line).unwrap().unwrap();
        assert_eq!(
            (e.cost_pico, e.price_version.as_deref()),
            (500_000_000_000, Some(crate::usage::GIVEN_COST))
        );
    }

    #[test]
    fn session_and_project_come_from_the_path() {
        let cases = [
            ("P/S.jsonl", Some(("S", "P"))),
            ("P/S/x.jsonl", Some(("S", "P"))),
            ("P/S/subagents/agent-1.jsonl", Some(("S", "P"))),
            ("S.jsonl", None),
        ];
        for (path, want) in cases {
            let got = Transcript::from_relative(Path::new(path));
            assert_eq!(
                got.as_ref()
                    .map(|t| (t.session.as_str(), t.project.as_str())),
                want,
                "{path}"
            );
        }
    }
}
