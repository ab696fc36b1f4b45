//! Git sources: `Source/AWS/CodeCommit/1` (RepositoryName, BranchName) and
//! `Source/AWS/CodeStarSourceConnection/1` (ConnectionArn, FullRepositoryId, BranchName),
//! fetched with the `git` CLI from where lockgate.toml says the repository is
//! (`[[repositories]]`, `[[connections]]`). The branch head (or the commit the execution was
//! started with) is fetched alone, its tree becomes the output artifact (`git archive`, a zip
//! as CodePipeline's CODE_ZIP), and the commit becomes the execution's source revision and the
//! provider's source variables.

use std::collections::BTreeMap;
use std::path::Path;

use lockgate_shapes::{ActionCategory, ActionTypeId, CurrentRevision, Timestamp};
use serde::Deserialize;

use super::aws;
use crate::executor::{Executor, Failure, JobContext, Success};
use crate::git::redact;

/// `[[repositories]]`: a CodeCommit repository name and where git fetches it from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// The `RepositoryName` pipelines use.
    pub name: String,
    /// Anything `git fetch` accepts: a path, `file://`, `https://`, `ssh://`.
    pub url: String,
    /// The secret a push hook must present (`POST /hooks/git/<name>` of the server); without
    /// one the repository has no push hook and changes are found by polling alone.
    #[serde(default)]
    pub hook_secret: Option<secrecy::SecretString>,
}

/// `[[connections]]`: a CodeStar connection ARN and the git server behind it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The `ConnectionArn` pipelines use.
    pub arn: String,
    /// The server's base URL; `FullRepositoryId` (`owner/repo`) is appended.
    pub base_url: String,
    /// A token for https servers, sent as the password of user `x-access-token` (never on a
    /// command line, never logged).
    #[serde(default)]
    pub token: Option<secrecy::SecretString>,
}

/// Fetches git sources.
pub struct GitSource {
    repositories: BTreeMap<String, Repository>,
    connections: BTreeMap<String, Connection>,
}

impl GitSource {
    /// A git source executor knowing `repositories` and `connections`.
    pub fn new(repositories: Vec<Repository>, connections: Vec<Connection>) -> GitSource {
        GitSource {
            repositories: repositories
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect(),
            connections: connections
                .into_iter()
                .map(|c| (c.arn.clone(), c))
                .collect(),
        }
    }

    /// Where the job's repository is, its token, and the variables naming it.
    fn remote(&self, job: &JobContext) -> Result<Remote, Failure> {
        let provider = job
            .data
            .action_type_id
            .as_ref()
            .map(|t| t.provider.as_str())
            .unwrap_or_default();
        if provider == CODECOMMIT {
            let name = job.required("RepositoryName")?;
            let repository = self.repositories.get(name).ok_or_else(|| {
                Failure::configuration(format!(
                    "The repository {name} is not configured: add [[repositories]] with \
                     name = \"{name}\" and the url git fetches it from to lockgate.toml"
                ))
            })?;
            return Ok((
                repository.url.clone(),
                None,
                vec![("RepositoryName", name.to_string())],
            ));
        }
        let arn = job.required("ConnectionArn")?;
        let full_id = job.required("FullRepositoryId")?;
        let connection = self.connections.get(arn).ok_or_else(|| {
            Failure::configuration(format!(
                "The connection {arn} is not configured: add [[connections]] with arn = \
                 \"{arn}\" and the base_url of its git server to lockgate.toml"
            ))
        })?;
        let url = format!("{}/{}", connection.base_url.trim_end_matches('/'), full_id);
        Ok((
            url,
            connection.token.clone(),
            vec![
                ("ConnectionArn", arn.to_string()),
                ("FullRepositoryId", full_id.to_string()),
            ],
        ))
    }
}

const CODECOMMIT: &str = "CodeCommit";

/// A source's remote URL, its token, and the source variables that name it.
type Remote = (
    String,
    Option<secrecy::SecretString>,
    Vec<(&'static str, String)>,
);

#[async_trait::async_trait]
impl Executor for GitSource {
    fn action_types(&self) -> Vec<ActionTypeId> {
        vec![
            aws(ActionCategory::Source, CODECOMMIT),
            aws(ActionCategory::Source, "CodeStarSourceConnection"),
        ]
    }

    async fn run(&self, job: &mut JobContext) -> Result<Success, Failure> {
        let (url, token, mut variables) = self.remote(job)?;
        let branch = job.required("BranchName")?.to_string();
        let output =
            job.output_artifacts().first().cloned().ok_or_else(|| {
                Failure::configuration("A source action needs an output artifact")
            })?;
        // The commit the execution was started with (sourceRevisions), else the branch head.
        let wanted = output.revision.clone();
        let git_dir = job.workspace.meta("repo.git");
        let git = Git {
            dir: &git_dir,
            token: token.as_ref(),
        };
        git.run(job, &["init", "--quiet", "--bare"], None).await?;
        let refspec = match &wanted {
            Some(commit) => commit.clone(),
            None => format!("+refs/heads/{branch}:refs/remotes/source/{branch}"),
        };
        job.log.line(&format!(
            "Fetching {} of {}",
            wanted.as_deref().unwrap_or(&branch),
            redact(&url)
        ));
        git.run(
            job,
            &["fetch", "--quiet", "--depth", "1", &url, &refspec],
            Some(&url),
        )
        .await
        .map_err(|f| {
            Failure::job(format!(
                "Cannot fetch {} of {}: {}",
                wanted.as_deref().unwrap_or(&format!("branch {branch}")),
                redact(&url),
                f.message
            ))
        })?;
        let fetched = match &wanted {
            Some(commit) => commit.clone(),
            None => format!("refs/remotes/source/{branch}"),
        };
        let show = git
            .run(
                job,
                &[
                    "log",
                    "-1",
                    "--format=%H%x00%aI%x00%cI%x00%B",
                    &fetched,
                    "--",
                ],
                None,
            )
            .await?;
        let mut parts = show.splitn(4, '\0');
        let commit = parts.next().unwrap_or_default().trim().to_string();
        let author_date = parts.next().unwrap_or_default().to_string();
        let committer_date = parts.next().unwrap_or_default().to_string();
        let message = parts.next().unwrap_or_default().trim().to_string();
        let zip_path = job.workspace.meta("source.zip");
        let zip_arg = zip_path.display().to_string();
        git.run(
            job,
            &["archive", "--format=zip", "-o", &zip_arg, &commit],
            None,
        )
        .await?;
        let location = job.location(&output)?;
        let zip = std::fs::read(&zip_path)
            .map_err(|e| Failure::system(format!("Reading the archive of {commit}: {e}")))?;
        job.artifacts
            .put(&location, zip)
            .await
            .map_err(|e| Failure::system(format!("Storing the source artifact: {e}")))?;
        job.log
            .line(&format!("Fetched {commit}: {}", first_line(&message)));
        variables.extend([
            ("CommitId", commit.clone()),
            ("CommitMessage", message.clone()),
            ("BranchName", branch.clone()),
            ("AuthorDate", author_date),
            ("CommitterDate", committer_date.clone()),
        ]);
        let created = time::OffsetDateTime::parse(
            &committer_date,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
        .map(|t| Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64));
        Ok(Success {
            summary: Some(truncate(&message, 2048)),
            output_variables: variables
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            current_revision: Some(CurrentRevision {
                revision: commit.clone(),
                change_identifier: commit.clone(),
                created,
                revision_summary: Some(truncate(&message, 2048)),
            }),
            external_execution_id: Some(commit),
        })
    }
}

/// The `git` CLI on one repository directory, within a job: cancelled with it, its errors
/// written to the job's log.
struct Git<'a> {
    dir: &'a Path,
    token: Option<&'a secrecy::SecretString>,
}

impl Git<'_> {
    /// Runs `git <args>`; its standard output. `url` is the remote the command talks to, given
    /// for the token's header.
    async fn run(
        &self,
        job: &mut JobContext,
        args: &[&str],
        url: Option<&str>,
    ) -> Result<String, Failure> {
        let auth = url.zip(self.token);
        let run = crate::git::run(self.dir, args, auth);
        let out = tokio::select! {
            out = run => out,
            () = cancelled(&mut job.cancel) => return Err(Failure::job("The fetch was cancelled")),
        };
        out.map_err(|e| {
            for line in e.to_string().lines() {
                job.log.line(line);
            }
            Failure::job(e.to_string())
        })
    }
}

/// Resolves when `cancel` turns true.
async fn cancelled(cancel: &mut tokio::sync::watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn truncate(text: &str, n: usize) -> String {
    crate::worker::truncate_chars(text, n)
}
