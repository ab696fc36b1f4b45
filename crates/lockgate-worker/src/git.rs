//! The `git` CLI, run the same way by every part that fetches: no terminal prompt, no system
//! configuration, and a token for an https remote given as an `Authorization` header through
//! the environment (`GIT_CONFIG_*`), so it is in no process's arguments and never logged.

use std::path::Path;
use std::process::Stdio;

use secrecy::{ExposeSecret, SecretString};
use tokio::process::Command;

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// git ran and failed.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// What git said.
        stderr: String,
    },
}

/// Runs `git --git-dir DIR ARGS`; its standard output. `auth` is the remote URL the command
/// talks to with the token for it.
pub async fn run(
    dir: &Path,
    args: &[&str],
    auth: Option<(&str, &SecretString)>,
) -> Result<String, GitError> {
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some((url, token)) = auth {
        if url.starts_with("https://") || url.starts_with("http://") {
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("x-access-token:{}", token.expose_secret()));
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
    }
    let output = command
        .spawn()
        .map_err(GitError::Spawn)?
        .wait_with_output()
        .await
        .map_err(GitError::Spawn)?;
    if !output.status.success() {
        return Err(GitError::Failed {
            command: args.first().unwrap_or(&"").to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `url` without a password in it.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(
            redact("https://user:secret@git.example.com/o/r"),
            "https://***@git.example.com/o/r"
        );
        assert_eq!(redact("/srv/git/app.git"), "/srv/git/app.git");
    }
}
