//! A bare mirror of one watched repository under the data directory: each fetch compares the
//! refs before and after and reports the branches and tags that moved, with the files each
//! branch move changed. The first fetch of a new mirror has no earlier refs: it reports the
//! branches as they are, which the watcher compares with what the pipelines last fetched; a
//! mirror kept on disk remembers the refs across restarts, so a push made while the server was
//! down is found by the first fetch after it starts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lockgate_worker::git::{self, redact, GitError};
use secrecy::SecretString;

use super::watches::RefMove;

/// A mirror and the remote it follows.
pub struct Mirror {
    dir: PathBuf,
    url: String,
    token: Option<SecretString>,
}

impl Mirror {
    /// The mirror of `url` in `dir`.
    pub fn new(dir: PathBuf, url: String, token: Option<SecretString>) -> Mirror {
        Mirror { dir, url, token }
    }

    /// The remote, without a password.
    pub fn shown_url(&self) -> String {
        redact(&self.url)
    }

    async fn git(&self, args: &[&str]) -> Result<String, GitError> {
        let auth = self.token.as_ref().map(|t| (self.url.as_str(), t));
        git::run(&self.dir, args, auth).await
    }

    /// Fetches the remote's branches and tags; the refs that moved. The first fetch of a new
    /// mirror has nothing to compare with: it answers `first` and every branch, as found.
    pub async fn fetch(&self) -> Result<(bool, Vec<RefMove>), GitError> {
        let first = !self.dir.join("HEAD").exists();
        if first {
            std::fs::create_dir_all(&self.dir).map_err(GitError::Spawn)?;
            self.git(&["init", "--quiet", "--bare"]).await?;
        }
        let before = self.refs().await?;
        self.git(&[
            "fetch",
            "--quiet",
            "--prune",
            "--no-tags",
            &self.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ])
        .await?;
        let after = self.refs().await?;
        if first {
            let branches = after
                .iter()
                .filter_map(|(name, commit)| {
                    Some(RefMove {
                        name: name.strip_prefix("refs/heads/")?.to_string(),
                        tag: false,
                        commit: commit.clone(),
                        files: Vec::new(),
                    })
                })
                .collect();
            return Ok((true, branches));
        }
        let mut moves = Vec::new();
        for (name, commit) in &after {
            let old = before.get(name);
            if old == Some(commit) {
                continue;
            }
            let (short, tag) = match (
                name.strip_prefix("refs/heads/"),
                name.strip_prefix("refs/tags/"),
            ) {
                (Some(branch), _) => (branch, false),
                (_, Some(tag)) => (tag, true),
                _ => continue,
            };
            let files = if tag {
                Vec::new()
            } else {
                self.changed_files(old.map(String::as_str), commit).await
            };
            moves.push(RefMove {
                name: short.to_string(),
                tag,
                commit: commit.clone(),
                files,
            });
        }
        Ok((false, moves))
    }

    /// Every ref and the commit it points at (tags peeled).
    async fn refs(&self) -> Result<BTreeMap<String, String>, GitError> {
        let out = self
            .git(&[
                "for-each-ref",
                "--format=%(refname) %(objectname) %(*objectname)",
                "refs/heads",
                "refs/tags",
            ])
            .await?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                let name = parts.next()?;
                let object = parts.next()?;
                let peeled = parts.next().filter(|p| !p.is_empty()).unwrap_or(object);
                Some((name.to_string(), peeled.to_string()))
            })
            .collect())
    }

    /// The files changed from `old` to `new` (a new branch: those of its tip commit).
    async fn changed_files(&self, old: Option<&str>, new: &str) -> Vec<String> {
        let out = match old {
            Some(old) => self.git(&["diff", "--name-only", old, new]).await,
            None => {
                self.git(&[
                    "diff-tree",
                    "--no-commit-id",
                    "--name-only",
                    "-r",
                    "--root",
                    new,
                ])
                .await
            }
        };
        out.map(|o| o.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}
