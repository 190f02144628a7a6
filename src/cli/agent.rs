//! `vault env` (a grant as shell variables), `vault exec` (a grant for one
//! command) and `vault sessions` (the live grants).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use authvault::agent::{AgentCommand, CodexHome};
use authvault::import::export::codex_auth_json;
use authvault::manager::{AgentEnv, Grant, GrantOptions, Manager, WriteBack, agent_env};
use authvault::model::{Credential, CredentialKind, Provider};
use authvault::process::ProcessRef;
use authvault::quota;
use authvault::selector::TaskContext;
use authvault::store::{Session, SessionKind};
use authvault::terminal::escape;
use chrono::{TimeDelta, Utc};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::{Ctx, print_err, print_warn};

/// What a grant is for: shared by `env` and `exec`.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// Task type: code-generation, analysis, quick-query, validation, or any word.
    #[arg(long = "task", value_name = "T", default_value = "")]
    task: String,
    /// Use this account, or fail (exit status 4) when it cannot serve.
    #[arg(long, value_name = "L")]
    account: Option<String>,
    /// Prefer this provider's accounts (claude, openai).
    #[arg(long, value_name = "P")]
    provider: Option<Provider>,
    /// The agent [default: AUTHVAULT_AGENT_ID, else agent-PID].
    #[arg(long, value_name = "A")]
    agent: Option<String>,
    /// Tokens to reserve for the task (also its estimate for the selector).
    #[arg(long, value_name = "N", default_value_t = 0)]
    tokens: u64,
    /// The model, for per-model windows and prices.
    #[arg(long, value_name = "M")]
    model: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// `export NAME='value'` and `unset NAME` lines, for `eval`.
    Sh,
    /// One JSON object.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    task: TaskArgs,
    /// How long the reservation holds without a commit or release.
    #[arg(long, default_value = "1h", value_parser = quota::parse_ttl, value_name = "DURATION")]
    ttl: TimeDelta,
    /// Output format.
    #[arg(long, value_enum, default_value = "sh")]
    format: Format,
}

/// Grants an account for `args`' task to the session held by `process`,
/// working in `cwd`.
fn grant(
    ctx: &Ctx,
    manager: &mut Manager,
    args: &TaskArgs,
    (kind, ttl): (SessionKind, TimeDelta),
    process: ProcessRef,
    cwd: Option<PathBuf>,
) -> Result<Grant> {
    let agent = args
        .agent
        .clone()
        .or_else(|| ctx.config.agent_id.clone())
        .unwrap_or_else(|| format!("agent-{}", process.pid));
    let task = TaskContext {
        task_type: args.task.clone(),
        estimated_tokens: (args.tokens > 0).then_some(args.tokens),
        provider: args.provider,
        account: args.account.clone(),
        model: args.model.clone(),
        agent: None,
    };
    let grant = manager.authenticate_for_task(
        &task,
        &GrantOptions {
            agent,
            tokens: args.tokens,
            ttl,
            kind,
            process,
            chatgpt: kind == SessionKind::Exec,
            cwd,
        },
    )?;
    for w in &grant.warnings {
        print_warn(&format!("warning: {w}"));
    }
    for n in &grant.reservation.notices {
        print_warn(&format!(
            "notice: {} at {} % ({} of {})",
            n.budget, n.threshold, n.level, n.limit
        ));
    }
    Ok(grant)
}

pub fn env(ctx: &Ctx, args: &EnvArgs) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    // The session lives as long as the shell that evaluates the output.
    let grant = grant(
        ctx,
        &mut manager,
        &args.task,
        (SessionKind::Env, args.ttl),
        ProcessRef::parent().on(&ctx.config.host),
        std::env::current_dir().ok(),
    )?;
    let env = agent_env(&grant, None);
    let text = match (args.format, ctx.json) {
        (Format::Json, _) | (_, true) => {
            Zeroizing::new(serde_json::to_string_pretty(&env_json(&grant, &env))?)
        }
        (Format::Sh, false) => env_sh(&env),
    };
    super::print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `export` lines, values in single quotes (a `'` inside closes, escapes
/// and reopens), then `unset` lines. Zeroed when dropped: it holds secrets.
fn env_sh(env: &AgentEnv) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for v in &env.set {
        let quoted = Zeroizing::new(v.value.expose_secret().replace('\'', r"'\''"));
        let _ = writeln!(out, "export {}='{}'", v.name, quoted.as_str());
    }
    for name in &env.unset {
        let _ = writeln!(out, "unset {name}");
    }
    out.pop();
    out
}

/// `vault env`'s JSON: like `vault token`, printing the credential is its job.
fn env_json(grant: &Grant, env: &AgentEnv) -> serde_json::Value {
    let vars: serde_json::Map<String, serde_json::Value> = env
        .set
        .iter()
        .map(|v| (v.name.to_owned(), v.value.expose_secret().into()))
        .collect();
    serde_json::json!({
        "account": grant.account.label,
        "provider": grant.account.provider,
        "credential": grant.account.kind,
        "agent": grant.agent,
        "reservation": grant.reservation.id,
        "session": grant.session,
        "expires_at": grant.reservation.expires_at,
        "env": vars,
        "unset": env.unset,
    })
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    task: TaskArgs,
    /// How long the reservation holds without a commit or release (the
    /// session's end releases it anyway).
    #[arg(long, default_value = "24h", value_parser = quota::parse_ttl, value_name = "DURATION")]
    ttl: TimeDelta,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn exec(ctx: &Ctx, args: &ExecArgs) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let run_dir = ctx.config.local_state()?.join("run");
    recover_stale_homes(&mut manager, &run_dir, &ctx.config.codex_home);
    // The command runs where `vault exec` does.
    let cwd = std::env::current_dir().ok();
    let grant = grant(
        ctx,
        &mut manager,
        &args.task,
        (SessionKind::Exec, args.ttl),
        ProcessRef::current().on(&ctx.config.host),
        cwd.clone(),
    )?;
    // From here on the session is open: whatever happens, end it.
    let outcome = run_granted(ctx, &mut manager, &grant, &run_dir, &args.command);
    let status = match &outcome {
        Ok(status) => Some(*status),
        Err(_) => None,
    };
    manager.end_grant(grant.session, status)?;
    if let (Provider::Claude, Some(cwd)) = (grant.account.provider, &cwd) {
        attribute_claude_run(ctx, &mut manager, &grant, cwd);
    }
    let status = outcome?;
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}

/// Runs the command with the grant's environment; for a ChatGPT login in
/// a private `CODEX_HOME`, whose tokens are merged back afterwards and
/// which is removed. The command's exit status (128 + signal when killed).
fn run_granted(
    ctx: &Ctx,
    manager: &mut Manager,
    grant: &Grant,
    run_dir: &Path,
    command: &[OsString],
) -> Result<i32> {
    let home = match (&grant.credential, grant.account.provider) {
        (Credential::OAuth(tokens), Provider::OpenAi) => {
            let auth = codex_auth_json(
                Some(tokens),
                None,
                grant.account.provider_account_id.as_deref(),
                CredentialKind::OAuth,
            );
            Some(CodexHome::create(
                run_dir,
                &ctx.config.codex_home,
                auth.as_bytes(),
            )?)
        }
        _ => None,
    };
    let env = agent_env(grant, home.as_ref().map(CodexHome::path));
    let mut cmd = AgentCommand::new(&command[0]).args(&command[1..]);
    for v in env.set {
        cmd = cmd.env(v.name, v.value);
    }
    for name in env.unset {
        cmd = cmd.env_remove(name);
    }
    let status = match cmd.run() {
        Ok(status) => status,
        Err(e) => {
            print_err(&format!("error: {e}"));
            i32::from(e.exit_code())
        }
    };
    if let Some(home) = home {
        write_back(manager, &grant.account.label, &home);
        import_run_usage(manager, grant, &home);
        if keep_sessions(&home, &ctx.config.codex_home) {
            home.remove()?;
        } else {
            home.leave_sessions()?;
        }
    }
    Ok(status)
}

/// Imports the rollouts of this run (its private `sessions/`), attributed
/// to the granted account and agent. A failure is a warning: the rollouts
/// are moved to the real home anyway, where `vault usage import codex`
/// finds them.
fn import_run_usage(manager: &mut Manager, grant: &Grant, home: &CodexHome) {
    let store = manager.store();
    let result = authvault::usage::price_table(store).and_then(|prices| {
        authvault::usage::import::import_codex_by(
            store,
            &[home.sessions()],
            Some(&grant.account.label),
            Some(&grant.agent),
            &prices,
        )
    });
    if let Err(e) = result {
        print_warn(&format!(
            "warning: this run's Codex usage was not recorded for `{}`: {e}",
            escape(&grant.account.label)
        ));
    }
}

/// Attributes the Claude Code sessions of this run (started during it in
/// its directory, no other session there meanwhile) to the granted account
/// and agent. A failure is a warning: the run's outcome does not depend on
/// it, and `vault usage import claude-code` still finds the transcripts.
fn attribute_claude_run(ctx: &Ctx, manager: &mut Manager, grant: &Grant, cwd: &Path) {
    let roots = authvault::usage::import::claude_code_roots(&ctx.config.claude_usage_roots, &[]);
    let result = manager.attribute_claude_run(
        grant.session,
        cwd,
        &roots,
        (&grant.account.label, &grant.agent),
    );
    if let Err(e) = result {
        print_warn(&format!(
            "warning: this run's Claude Code usage was not recorded for `{}`: {e}",
            escape(&grant.account.label)
        ));
    }
}

/// Moves the run's rollouts into the real `CODEX_HOME`'s `sessions/` so
/// Codex's history keeps them; false (the private home must stay) when
/// some could not be moved.
fn keep_sessions(home: &CodexHome, real: &Path) -> bool {
    match home.move_sessions(real) {
        Ok(_) => true,
        Err(e) => {
            print_warn(&format!(
                "warning: Codex rollouts are left in {}: {e}",
                escape(&home.sessions().display().to_string())
            ));
            false
        }
    }
}

/// Merges the tokens Codex left in `home` into the vault, telling the user
/// what could not be taken (the run's outcome does not depend on it).
fn write_back(manager: &mut Manager, label: &str, home: &CodexHome) {
    let file = home.path().join("auth.json");
    let result = home
        .read_auth()
        .and_then(|bytes| manager.write_back_codex(label, &file, &bytes));
    match result {
        Ok(WriteBack::RefusedOtherIdentity { field }) => print_warn(&format!(
            "warning: the command left tokens of another ChatGPT account ({field} differs); \
             they were not stored, and `{}` keeps its own",
            escape(label)
        )),
        Ok(_) => {}
        Err(e) => print_warn(&format!(
            "warning: the tokens Codex left could not be merged into `{}`: {e}",
            escape(label)
        )),
    }
}

/// Private homes a killed `vault exec` left behind: their tokens are
/// offered to every ChatGPT account (the identity check takes them only for
/// their own), then the directories are removed.
fn recover_stale_homes(manager: &mut Manager, run_dir: &Path, real: &Path) {
    let stale = match authvault::agent::stale_homes(run_dir) {
        Ok(stale) => stale,
        Err(e) => {
            print_warn(&format!("warning: {e}"));
            return;
        }
    };
    let chatgpt: Vec<String> = manager
        .store()
        .accounts()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.provider == Provider::OpenAi && a.kind == CredentialKind::OAuth)
        .map(|a| a.label)
        .collect();
    for home in stale {
        for label in &chatgpt {
            let file = home.path().join("auth.json");
            let taken = home
                .read_auth()
                .and_then(|bytes| manager.write_back_codex(label, &file, &bytes));
            if matches!(
                taken,
                Ok(WriteBack::Updated | WriteBack::Unchanged | WriteBack::VaultNewer)
            ) {
                break;
            }
        }
        let removed = if keep_sessions(&home, real) {
            home.remove()
        } else {
            home.leave_sessions()
        };
        if let Err(e) = removed {
            print_warn(&format!("warning: {e}"));
        }
    }
}

pub fn sessions(ctx: &Ctx) -> Result<ExitCode> {
    let mut manager = ctx.manager()?;
    let sessions = manager.sessions()?;
    ctx.emit(&sessions, || sessions_table(&sessions))?;
    Ok(ExitCode::SUCCESS)
}

fn sessions_table(sessions: &[Session]) -> String {
    if sessions.is_empty() {
        return "No live agent sessions.".into();
    }
    let now = Utc::now();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header([
        "id",
        "agent",
        "account",
        "kind",
        "pid",
        "host",
        "started",
        "reservation",
    ]);
    for s in sessions {
        let age = (now - s.started_at).num_seconds().max(0);
        t.add_row([
            s.id.to_string(),
            escape(&s.agent).into_owned(),
            escape(s.account.as_deref().unwrap_or("(removed)")).into_owned(),
            match s.kind {
                SessionKind::Exec => "exec".to_owned(),
                SessionKind::Env => "env".to_owned(),
            },
            s.process.pid.to_string(),
            escape(&s.process.host).into_owned(),
            format!("{}m{:02}s ago", age / 60, age % 60),
            s.reservation.map(|r| r.to_string()).unwrap_or_default(),
        ]);
    }
    t.to_string()
}
