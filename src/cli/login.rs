//! `vault login`: a subscription login (OAuth with PKCE, loopback or paste),
//! or an API key from stdin, for a new or an existing account.

use std::fs::DirBuilder;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use authvault::manager::{LoggedIn, LoginTarget, Manager};
use authvault::model::Provider;
use authvault::providers::loopback::{self, Callback};
use authvault::store::AccountInfo;
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
pub(super) fn read_stdin(what: &str, max: usize, line: bool) -> Result<Zeroizing<Vec<u8>>> {
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
    let done = if let Some(key) = key {
        let (account, warnings) =
            manager.login_api_key(args.provider, key, &target, !args.no_validate)?;
        for w in warnings {
            super::print_warn(&format!("warning: {w}"));
        }
        LoggedIn {
            account,
            identity_recorded: Vec::new(),
        }
    } else {
        oauth_login(ctx, args, &mut manager, &target)?
    };
    let info = &done.account;
    if target.account.is_some()
        && !args.api_key_stdin
        && info.email.is_none()
        && info.provider_account_id.is_none()
    {
        super::print_warn(&format!(
            "warning: the provider named no e-mail or account id for this login, so account `{}` still has no identity to check later logins against",
            info.label
        ));
    }
    let json = serde_json::json!({ "account": info, "identity_recorded": done.identity_recorded });
    ctx.emit(&json, || {
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
        let recorded = if done.identity_recorded.is_empty() {
            String::new()
        } else {
            format!(
                "\nRecorded for account `{label}` who it belongs to, as the provider answered this login: \
                 {who} ({what}). Later logins into `{label}` must be this account; if it is not the \
                 one you meant, remove it with `vault accounts remove {label}`.",
                label = info.label,
                who = identity_text(info),
                what = done.identity_recorded.join(", "),
            )
        };
        format!(
            "Logged in {} account `{}`{who}{plan}: {} stored.{recorded}",
            info.provider, info.label, info.kind
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// "e-mail a@b, account id U", as far as known.
fn identity_text(info: &AccountInfo) -> String {
    let parts: Vec<String> = [
        info.email.as_deref().map(|e| format!("e-mail {e}")),
        info.provider_account_id
            .as_deref()
            .map(|a| format!("account id {a}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "an account it did not name".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The browser login: listener or paste, then the code exchange.
fn oauth_login(
    ctx: &Ctx,
    args: &Args,
    manager: &mut Manager,
    target: &LoginTarget,
) -> Result<LoggedIn> {
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
    // The address goes to this terminal only: never on a command line.
    super::print_err(&format!(
        "Open this address in a browser to log in to {}:\n\n  {}\n",
        args.provider, session.pending.url
    ));
    // Removed (with its directory) when the login ends, however it ends.
    let _page = if port.is_some() && ctx.config.has_display {
        ctx.config
            .local_state()
            .map_err(anyhow::Error::from)
            .and_then(|dir| open_browser(dir, &session.pending.url))
            .map_err(|e| {
                super::print_warn(&format!(
                    "warning: not opening a browser ({e:#}); open the address above yourself"
                ));
            })
            .ok()
    } else {
        None
    };
    let callback = if args.paste {
        super::print_err(
            "Then paste the code the provider shows (code#state), or the address the browser was sent to:",
        );
        read_pasted()?
    } else {
        super::print_err(&format!(
            "Waiting for the browser (up to {} s)…",
            args.timeout
        ));
        manager.wait_for_callback(&session, Duration::from_secs(args.timeout))?
    };
    Ok(manager.complete_login(&session, &callback, target)?)
}

/// A page that sends the browser to the authorize address, readable only by
/// this user: a 0600 file in a fresh 0700 directory in the local state
/// directory (beside a vault file; see `Config::state_dir`). The
/// opener gets the file's path, so the address (with its `state` and PKCE
/// challenge) never appears on a command line other users can read.
pub(super) struct BrowserPage {
    dir: PathBuf,
}

impl BrowserPage {
    fn write(state_dir: &Path, url: &str) -> Result<Self> {
        let mut nonce = [0u8; 16];
        authvault::crypto::fill_random(&mut nonce)?;
        let dir = state_dir.join(format!(".login-{}", authvault::crypto::hex(&nonce)));
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let page = Self { dir };
        std::fs::set_permissions(&page.dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting the mode of {}", page.dir.display()))?;
        let escaped = html_escape(url);
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
             <meta name=\"referrer\" content=\"no-referrer\">\
             <meta http-equiv=\"refresh\" content=\"0;url={escaped}\">\
             <title>authvault login</title></head>\
             <body><p><a href=\"{escaped}\">Continue to the login page</a></p></body></html>\n"
        );
        let path = page.path();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(html.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(page)
    }

    fn path(&self) -> PathBuf {
        self.dir.join("login.html")
    }
}

impl Drop for BrowserPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes the page and hands its path to the desktop's opener (`xdg-open`,
/// `open` on macOS), which inherits no `AUTHVAULT_*` variable. Returns the
/// page, to be removed when the login ends.
///
/// # Errors
/// When the page cannot be written or the opener cannot be started (the
/// page is removed then).
pub(super) fn open_browser(state_dir: &Path, url: &str) -> Result<BrowserPage> {
    let page = BrowserPage::write(state_dir, url)?;
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let mut command = std::process::Command::new(opener);
    command
        .arg(page.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for name in authvault::config::own_variables() {
        command.env_remove(name);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting `{opener}`"))?;
    // Reaped when it exits (at once, usually), so that a long-running
    // dashboard gathers no zombie per login.
    let _ = std::thread::Builder::new()
        .name("browser-opener".into())
        .spawn(move || child.wait());
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cannot_be_broken_out_of_by_the_address() {
        assert_eq!(
            html_escape(r#"https://x/a?b=1&c="><script>'"#),
            "https://x/a?b=1&amp;c=&quot;&gt;&lt;script&gt;&#39;"
        );
    }
}
