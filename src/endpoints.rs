//! Provider endpoints: the real ones by default, overridden by the
//! configuration file and then by `AUTHVAULT_*_URL` variables (read in
//! `config.rs`). Its own module, below `config` and `providers`, so that
//! neither depends on the other.

use std::path::Path;

use serde::Deserialize;

/// Every provider URL, with the real endpoints as defaults. Full URLs for the
/// authorize and token endpoints; base URLs for APIs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    /// Claude's OAuth authorize page (`AUTHVAULT_CLAUDE_AUTHORIZE_URL`).
    pub claude_authorize_url: String,
    /// Claude's OAuth token endpoint (`AUTHVAULT_CLAUDE_TOKEN_URL`).
    pub claude_token_url: String,
    /// Where Claude shows `code#state` for the paste flow.
    pub claude_manual_redirect_url: String,
    /// Anthropic API base (`AUTHVAULT_ANTHROPIC_API_URL`): `/v1/models`, `/api/oauth/usage`, `/api/oauth/profile`.
    pub anthropic_api_url: String,
    /// OpenAI's OAuth authorize page (`AUTHVAULT_OPENAI_AUTHORIZE_URL`).
    pub openai_authorize_url: String,
    /// OpenAI's OAuth token endpoint (`AUTHVAULT_OPENAI_TOKEN_URL`).
    pub openai_token_url: String,
    /// OpenAI's token revocation endpoint (`vault logout --revoke`).
    pub openai_revoke_url: String,
    /// OpenAI API base (`AUTHVAULT_OPENAI_API_URL`): `/v1/models`.
    pub openai_api_url: String,
    /// ChatGPT backend base (`AUTHVAULT_CHATGPT_API_URL`): `/wham/usage`.
    pub chatgpt_api_url: String,
    /// Claude Code's public OAuth client id.
    pub claude_client_id: String,
    /// Codex CLI's public OAuth client id.
    pub openai_client_id: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            claude_authorize_url: "https://claude.ai/oauth/authorize".into(),
            claude_token_url: "https://console.anthropic.com/v1/oauth/token".into(),
            claude_manual_redirect_url: "https://console.anthropic.com/oauth/code/callback".into(),
            anthropic_api_url: "https://api.anthropic.com".into(),
            openai_authorize_url: "https://auth.openai.com/oauth/authorize".into(),
            openai_token_url: "https://auth.openai.com/oauth/token".into(),
            openai_revoke_url: "https://auth.openai.com/oauth/revoke".into(),
            openai_api_url: "https://api.openai.com".into(),
            chatgpt_api_url: "https://chatgpt.com/backend-api".into(),
            claude_client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".into(),
            openai_client_id: "app_EMoamEEZ73f0CkXaXp7hrann".into(),
        }
    }
}

/// The configuration file's shape (`~/.config/authvault/config.json`, or `AUTHVAULT_CONFIG`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    endpoints: Option<Endpoints>,
}

/// Environment variables that override single endpoints.
pub const ENDPOINT_VARS: [&str; 7] = [
    "AUTHVAULT_CLAUDE_AUTHORIZE_URL",
    "AUTHVAULT_CLAUDE_TOKEN_URL",
    "AUTHVAULT_ANTHROPIC_API_URL",
    "AUTHVAULT_OPENAI_AUTHORIZE_URL",
    "AUTHVAULT_OPENAI_TOKEN_URL",
    "AUTHVAULT_OPENAI_API_URL",
    "AUTHVAULT_CHATGPT_API_URL",
];

impl Endpoints {
    /// Applies `(variable, value)` overrides named as in [`ENDPOINT_VARS`].
    #[must_use]
    pub fn with_overrides<'a>(mut self, vars: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        for (name, value) in vars {
            let slot = match name {
                "AUTHVAULT_CLAUDE_AUTHORIZE_URL" => &mut self.claude_authorize_url,
                "AUTHVAULT_CLAUDE_TOKEN_URL" => &mut self.claude_token_url,
                "AUTHVAULT_ANTHROPIC_API_URL" => &mut self.anthropic_api_url,
                "AUTHVAULT_OPENAI_AUTHORIZE_URL" => &mut self.openai_authorize_url,
                "AUTHVAULT_OPENAI_TOKEN_URL" => &mut self.openai_token_url,
                "AUTHVAULT_OPENAI_API_URL" => &mut self.openai_api_url,
                "AUTHVAULT_CHATGPT_API_URL" => &mut self.chatgpt_api_url,
                _ => continue,
            };
            value.trim_end_matches('/').clone_into(slot);
        }
        self
    }

    /// Reads the `endpoints` object of a JSON configuration file. The file
    /// decides where tokens are sent, so it is refused unless it and its
    /// directory are yours and nobody else can write them (see
    /// `check_trusted`).
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it (and the fix).
    pub fn from_file(path: &Path) -> Result<Option<Self>, String> {
        use std::io::Read as _;
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        check_trusted(path, &file)?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let file: FileConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        // Base URLs lose a trailing slash, as they do from the environment.
        Ok(file.endpoints.map(|e| {
            let bases = [
                ("AUTHVAULT_ANTHROPIC_API_URL", e.anthropic_api_url.clone()),
                ("AUTHVAULT_OPENAI_API_URL", e.openai_api_url.clone()),
                ("AUTHVAULT_CHATGPT_API_URL", e.chatgpt_api_url.clone()),
            ];
            e.with_overrides(bases)
        }))
    }
}

/// Refuses a configuration file that another user owns or could write, or
/// that lies in a directory another user owns or could write to (except a
/// sticky one such as `/tmp`, where others cannot replace your file). `file`
/// is the opened file: its own metadata is checked, not the path's again.
fn check_trusted(path: &Path, file: &std::fs::File) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::getuid().as_raw();
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let shown = path.display();
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.uid() != me {
        return Err(format!(
            "configuration file {shown} belongs to uid {}, not to you (uid {me}); refusing to use it",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "configuration file {shown} has mode {:04o}, which lets other users change where \
             tokens are sent; refusing to use it: run `chmod 600 {shown}`",
            meta.mode() & 0o7777
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if dir_meta.uid() != me && dir_meta.uid() != 0 {
        return Err(format!(
            "the directory {} of configuration file {shown} belongs to uid {}, not to you \
             (uid {me}); refusing to use it: move the file into a directory of yours",
            dir.display(),
            dir_meta.uid()
        ));
    }
    if dir_meta.mode() & 0o022 != 0 && dir_meta.mode() & 0o1000 == 0 {
        return Err(format!(
            "the directory {} of configuration file {shown} has mode {:04o}, which lets other \
             users replace the file; refusing to use it: run `chmod go-w {}`",
            dir.display(),
            dir_meta.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}
