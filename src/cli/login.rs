//! `vault login`: a subscription login (OAuth with PKCE, loopback or paste),
//! or an API key from stdin, for a new or an existing account.

use std::io::{BufRead, Read};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use authvault::manager::LoginTarget;
use authvault::model::Provider;
use authvault::providers::loopback::{self, Callback};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::Ctx;

#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // independent command-line flags
pub struct Args {
    /// openai or claude.
    provider: Provider,
    /// Store an API key read from standard input instead of logging in.
    #[arg(long)]
    api_key_stdin: bool,
    /// With --api-key-stdin: store without asking the provider whether the key works.
    #[arg(long, requires = "api_key_stdin")]
    no_validate: bool,
    /// Headless: paste the code the provider shows (`code#state`, or the
    /// address the browser was sent to) instead of running a local listener.
    #[arg(long, conflicts_with = "api_key_stdin")]
    paste: bool,
    /// Port of the local listener (default: 1455 for OpenAI, any free port for Claude).
    #[arg(long, conflicts_with_all = ["api_key_stdin", "paste"])]
    port: Option<u16>,
    /// How long to wait for the browser, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    timeout: u64,
    /// Label of a new account (default: `<provider>-<plan>` or `<provider>-api-key`).
    #[arg(long, value_name = "NAME", conflicts_with = "account")]
    label: Option<String>,
    /// Log in again to this existing account (its identity must match).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
}

/// Longest API key accepted.
const MAX_KEY_LEN: usize = 4096;
/// Longest pasted line accepted: a redirect address with code and state is a
/// few hundred bytes.
const MAX_PASTE_LEN: usize = 16 * 1024;

/// Reads standard input up to `max` bytes: all of it, or with `line` only up
/// to the first line end (not included). Never holds more than `max` + 1
/// bytes: longer input is refused without reading the rest.
fn read_stdin(what: &str, max: usize, line: bool) -> Result<Zeroizing<Vec<u8>>> {
    let mut raw = Zeroizing::new(Vec::new());
    let mut input = std::io::stdin().lock().take(max as u64 + 1);
    if line {
        input.read_until(b'\n', &mut raw)
    } else {
        input.read_to_end(&mut raw)
    }
    .with_context(|| format!("reading the {what}"))?;
    if line && raw.last() == Some(&b'\n') {
        raw.pop();
    }
    if raw.len() > max {
        let ending = if line { " without a line end" } else { "" };
        return Err(authvault::Error::InvalidInput {
            what: what.into(),
            reason: format!("longer than {max} bytes{ending}; nothing was stored"),
        }
        .into());
    }
    Ok(raw)
}

fn read_api_key() -> Result<SecretString> {
    // The key and a line end (CRLF) at most.
    let raw = read_stdin("API key on stdin", MAX_KEY_LEN + 2, false)?;
    let invalid = |reason: &str| authvault::Error::InvalidInput {
        what: "API key on stdin".into(),
        reason: reason.into(),
    };
    let text = std::str::from_utf8(&raw).map_err(|_| invalid("not UTF-8 text"))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(invalid("empty; pipe the key in, e.g. `printf %s \"$KEY\" | vault login openai --api-key-stdin`").into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid("longer than 4096 bytes").into());
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters inside the key").into());
    }
    Ok(SecretString::from(key))
}

fn read_pasted() -> Result<Callback> {
    let raw = read_stdin("pasted text on stdin", MAX_PASTE_LEN, true)?;
    let text = std::str::from_utf8(&raw).unwrap_or_default();
    Ok(loopback::parse_pasted(text).ok_or_else(|| {
        authvault::Error::Login(
            "the pasted text is not `code#state` or a redirect address with code and state".into(),
        )
    })?)
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode> {
    let target = LoginTarget {
        label: args.label.clone(),
        account: args.account.clone(),
    };
    let key = if args.api_key_stdin {
        Some(read_api_key()?)
    } else {
        None
    };
    let mut manager = ctx.manager()?;
    if let Some(l) = &target.account {
        let existing = manager.store().account(l)?;
        if existing.provider != args.provider {
            anyhow::bail!(
                "account `{l}` is a {} account, not {}",
                existing.provider,
                args.provider
            );
        }
    }
    let info = if let Some(key) = key {
        let (info, warnings) =
            manager.login_api_key(args.provider, key, &target, !args.no_validate)?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        info
    } else {
        let port = if args.paste {
            None
        } else {
            Some(args.port.unwrap_or(if args.provider == Provider::OpenAi {
                1455
            } else {
                0
            }))
        };
        let session = manager.start_login(args.provider, port)?;
        eprintln!(
            "Open this address in a browser to log in to {}:\n\n  {}\n",
            args.provider, session.pending.url
        );
        if port.is_some() && ctx.config.has_display {
            open_browser(&session.pending.url);
        }
        let callback = if args.paste {
            eprintln!(
                "Then paste the code the provider shows (code#state), or the address the browser was sent to:"
            );
            read_pasted()?
        } else {
            eprintln!("Waiting for the browser (up to {} s)…", args.timeout);
            manager.wait_for_callback(&session, Duration::from_secs(args.timeout))?
        };
        manager.complete_login(&session, &callback, &target)?
    };
    ctx.emit(&serde_json::json!({ "account": info }), || {
        let who = info
            .email
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        let plan = info
            .plan
            .as_deref()
            .map(|p| format!(", plan {p}"))
            .unwrap_or_default();
        format!(
            "Logged in {} account `{}`{who}{plan}: {} stored.",
            info.provider, info.label, info.kind
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Best effort: the URL is always printed as well.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
