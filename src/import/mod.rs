//! Legacy files in, exports out.
//!
//! [`formats`] parses every legacy credential file into plain values;
//! [`migrate`] merges them into a [`Store`] in one transaction, reads every
//! credential back, and only then (optionally) removes the sources. It never
//! calls a provider: logging out or revoking would kill the refresh token for
//! every copy. [`export`] renders vault credentials in the legacy formats for
//! tools that still need a file.

pub mod export;
pub(crate) mod files;
pub mod formats;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use files::write_private_atomic;
use formats::{LegacyFormat, ParsedSource};

use crate::error::{Error, Result};
use crate::model::CredentialKind;
use crate::store::{
    CredentialCheck, HistoryEntry, MergeAction, MergeInput, MergeItem, MergeOutcome, Store,
};

/// What to import and how.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Files (or directories of `*.json` files) named with `--from`; when
    /// empty, the standard locations are read and missing ones skipped.
    pub from: Vec<PathBuf>,
    /// The standard locations (used when `from` is empty).
    pub defaults: Vec<PathBuf>,
    /// Report the plan; write nothing.
    pub dry_run: bool,
    /// Import the valid sources when others fail.
    pub skip_invalid: bool,
    /// Delete each source after its credentials were verified in the vault.
    pub remove_source: bool,
}

/// One source file's fate. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// The file.
    pub path: PathBuf,
    /// `imported`, `invalid` (with `error`), or `not_found` (a standard location that does not exist).
    pub status: &'static str,
    /// The detected format.
    pub format: Option<LegacyFormat>,
    /// Why it could not be imported (`file:line:column: …`).
    pub error: Option<String>,
    /// Notes from the parser (unknown fields, trailing bytes, …).
    pub notes: Vec<String>,
    /// Warnings (a file other users could read).
    pub warnings: Vec<String>,
    /// Whether it was deleted (`--remove-source`).
    pub removed: bool,
    /// Why it was kept despite `--remove-source`.
    pub kept_because: Option<String>,
}

/// The whole result of `vault migrate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Every source looked at.
    pub sources: Vec<SourceReport>,
    /// Every account found, with what happened to it.
    pub accounts: Vec<MergeOutcome>,
    /// Accounts created.
    pub created: usize,
    /// Accounts updated.
    pub updated: usize,
    /// Accounts left as they were.
    pub unchanged: usize,
    /// Settings changed (provider preferences).
    pub settings_changed: Vec<String>,
    /// Selection-history entries added.
    pub history_added: usize,
}

struct Loaded {
    index: usize,
    path: PathBuf,
    parsed: ParsedSource,
}

/// Reads and parses the sources; returns the parsed ones and a report for each.
fn load(options: &MigrateOptions) -> (Vec<Loaded>, Vec<SourceReport>) {
    let explicit = !options.from.is_empty();
    let paths = if explicit {
        files::expand(&options.from)
    } else {
        options.defaults.clone()
    };
    let mut loaded = Vec::new();
    let mut reports = Vec::new();
    for path in paths {
        let mut report = SourceReport {
            path: path.clone(),
            status: "imported",
            format: None,
            error: None,
            notes: Vec::new(),
            warnings: Vec::new(),
            removed: false,
            kept_because: None,
        };
        let file = match files::read_source(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                report.status = "not_found";
                reports.push(report);
                continue;
            }
            Err(e) => {
                report.status = "invalid";
                report.error = Some(format!("{}: cannot read: {e}", path.display()));
                reports.push(report);
                continue;
            }
        };
        if let Some(mode) = file.exposed_mode {
            report.warnings.push(format!(
                "the file has mode {mode:04o}: other users could read its secrets; consider rotating them"
            ));
        }
        match formats::parse(&path, &file.bytes) {
            Ok(parsed) => {
                report.format = Some(parsed.format);
                report.notes.clone_from(&parsed.notes);
                loaded.push(Loaded {
                    index: reports.len(),
                    path,
                    parsed,
                });
            }
            Err(e) => {
                report.status = "invalid";
                report.error = Some(e.to_string());
            }
        }
        reports.push(report);
    }
    (loaded, reports)
}

fn merge_input(loaded: &[Loaded]) -> MergeInput {
    let mut input = MergeInput::default();
    for l in loaded {
        let source = l.path.display().to_string();
        for a in &l.parsed.accounts {
            input.items.push(MergeItem {
                source: source.clone(),
                format: l.parsed.format.to_string(),
                provider: a.provider,
                identity: a.identity.clone(),
                credentials: a.credentials.clone(),
                active: a.active,
                label: None,
            });
        }
        if let Some(p) = &l.parsed.preferences {
            let mut set = |key: &str, value: serde_json::Value| {
                input
                    .settings
                    .push((format!("provider_preferences.{key}"), value));
            };
            if let Some(v) = &p.preferred_provider {
                set("preferred_provider", v.clone().into());
            }
            if let Some(v) = p.fallback_enabled {
                set("fallback_enabled", v.into());
            }
            if let Some(v) = &p.selection_strategy {
                set("selection_strategy", v.clone().into());
            }
            if let Some(v) = p.cost_optimization {
                set("cost_optimization", v.into());
            }
        }
        if let Some(s) = &l.parsed.last_selection {
            input.history.push(HistoryEntry {
                at: s.timestamp,
                provider: s.provider.clone(),
                reason: s.reason.clone(),
                task_context: s.task_context.clone(),
            });
        }
    }
    input
}

/// Reads and parses the sources without touching any vault.
///
/// # Errors
/// [`Error::InvalidSources`] when a source fails and `skip_invalid` is off.
pub fn preflight(options: &MigrateOptions) -> Result<()> {
    let (_, sources) = load(options);
    let invalid: Vec<String> = sources.iter().filter_map(|s| s.error.clone()).collect();
    if invalid.is_empty() || options.skip_invalid {
        Ok(())
    } else {
        Err(Error::InvalidSources(invalid))
    }
}

/// Imports the sources into `store`: one transaction for all of them, then a
/// read-back of every credential, then (with `remove_source`) removal of the
/// verified sources.
///
/// # Errors
/// [`Error::InvalidSources`] when a source fails and `skip_invalid` is off
/// (nothing is written); [`Error::ImportVerification`] when the read-back
/// disagrees; store errors.
pub fn migrate(store: &mut Store, options: &MigrateOptions) -> Result<MigrateReport> {
    let (loaded, mut sources) = load(options);
    let invalid: Vec<String> = sources.iter().filter_map(|s| s.error.clone()).collect();
    if !invalid.is_empty() && !options.skip_invalid {
        return Err(Error::InvalidSources(invalid));
    }
    let input = merge_input(&loaded);
    let merged = store.merge(&input, options.dry_run)?;

    if !options.dry_run {
        // Any disagreement is an error here, before a single source is touched.
        verify(store, &input, &merged.outcomes)?;
        if options.remove_source {
            for l in &loaded {
                let report = &mut sources[l.index];
                let path = l.path.display().to_string();
                let mine = || merged.outcomes.iter().filter(|o| o.source == path);
                if l.parsed.holds_other_data {
                    report.kept_because =
                        Some("it also holds other tools' data, which was not imported".into());
                } else if mine().next().is_none() {
                    report.kept_because = Some("it holds no credential".into());
                } else if mine().any(|o| !o.kept.is_empty()) {
                    report.kept_because = Some(
                        "the vault kept its own copy of some of its credentials; compare them before deleting it"
                            .into(),
                    );
                } else {
                    remove(&l.path)?;
                    report.removed = true;
                }
            }
        }
    }
    let count = |a: MergeAction| merged.outcomes.iter().filter(|o| o.action == a).count();
    Ok(MigrateReport {
        dry_run: options.dry_run,
        created: count(MergeAction::Create),
        updated: count(MergeAction::Update),
        unchanged: count(MergeAction::Unchanged),
        sources,
        accounts: merged.outcomes,
        settings_changed: merged.settings_changed,
        history_added: merged.history_added,
    })
}

/// Reads every imported credential back. A credential the vault kept a newer
/// copy of verifies when that copy is present.
fn verify(store: &mut Store, input: &MergeInput, outcomes: &[MergeOutcome]) -> Result<()> {
    for (i, (item, outcome)) in input.items.iter().zip(outcomes).enumerate() {
        for credential in &item.credentials {
            let kind: CredentialKind = credential.kind();
            // A later source of the same run may have replaced it.
            let superseded = outcomes[i + 1..].iter().any(|later| {
                later.label == outcome.label
                    && later.credentials.contains(&kind)
                    && !later.kept.contains(&kind)
            });
            match store.check_credential(&outcome.label, credential)? {
                CredentialCheck::Same => {}
                CredentialCheck::Different if outcome.kept.contains(&kind) || superseded => {}
                other => {
                    return Err(Error::ImportVerification(format!(
                        "the {kind} credential of account `{}` from {} reads back as {other:?}",
                        outcome.label, item.source
                    )));
                }
            }
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(Error::io("remove", path))
}
