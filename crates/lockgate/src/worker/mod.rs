//! Where the built-in executors run: in the server's own process (`local.rs`, the default of
//! `lockgate serve`), or in `lockgate worker` on another machine (`remote.rs`, through the API
//! with the AWS CLI's credentials). Both give `lockgate_worker::Worker` a `JobChannel`; the
//! worker cannot tell them apart.

pub mod local;
pub mod remote;

use std::path::PathBuf;
use std::sync::Arc;

use lockgate_worker::executors::{CodeBuild, Commands, GitSource, S3Deploy};
use lockgate_worker::Executor;
use serde::{Deserialize, Serialize};

/// The per-job timeout of the built-in action types unless `[worker] job_timeout_seconds` says.
pub const DEFAULT_JOB_TIMEOUT_SECONDS: u64 = 600;
/// The shortest per-job timeout: a worker beats at a tenth of it, so shorter makes little sense
/// (CodePipeline's own range starts at 60 s; tests use a few seconds).
pub const MIN_JOB_TIMEOUT_SECONDS: u64 = 3;
/// The longest per-job timeout: CodePipeline's largest `jobTimeout`.
pub const MAX_JOB_TIMEOUT_SECONDS: u64 = 43_200;

/// `[worker]`: how jobs of the built-in executors are run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Whether `lockgate serve` runs the built-in executors itself (`--no-local-worker` turns
    /// it off, for when `lockgate worker` processes elsewhere run them).
    pub local: bool,
    /// How many jobs run at once.
    pub concurrency: usize,
    /// Where job workspaces are made [default: `<data_dir>/work`].
    pub work_dir: Option<PathBuf>,
    /// How much of each run's output is kept, in KiB (the tail).
    pub log_kib: usize,
    /// Seconds running jobs get to finish when the worker stops.
    pub grace_seconds: u64,
    /// Seconds one job of the built-in action types may be held (CodePipeline's per-job
    /// `jobTimeout`): the server times out a job neither finished nor continued within it, and
    /// the worker hands a longer run's job back with a continuation token every third of it.
    /// A worker that dies is noticed within it. `lockgate worker` must use the server's value
    /// or a smaller one.
    pub job_timeout_seconds: u64,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            local: true,
            concurrency: 4,
            work_dir: None,
            log_kib: 1024,
            grace_seconds: 30,
            job_timeout_seconds: DEFAULT_JOB_TIMEOUT_SECONDS,
        }
    }
}

impl WorkerConfig {
    /// Checks the values.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.concurrency > 256 {
            anyhow::bail!("[worker] concurrency must be between 1 and 256");
        }
        if self.log_kib == 0 {
            anyhow::bail!("[worker] log_kib must be at least 1");
        }
        if !(MIN_JOB_TIMEOUT_SECONDS..=MAX_JOB_TIMEOUT_SECONDS).contains(&self.job_timeout_seconds)
        {
            anyhow::bail!(
                "[worker] job_timeout_seconds must be between {MIN_JOB_TIMEOUT_SECONDS} and \
                 {MAX_JOB_TIMEOUT_SECONDS} (12 hours, CodePipeline's largest job timeout)"
            );
        }
        Ok(())
    }

    /// The worker settings, workspaces under `data_dir/work` unless `work_dir` says.
    pub fn settings(&self, data_dir: &std::path::Path) -> lockgate_worker::WorkerSettings {
        let mut settings = lockgate_worker::WorkerSettings::new(
            self.work_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("work")),
        );
        settings.concurrency = self.concurrency;
        settings.log_bytes = self.log_kib * 1024;
        settings.grace = std::time::Duration::from_secs(self.grace_seconds);
        settings.job_timeout = self.job_timeout();
        settings
    }

    /// How long one job of the built-in action types may be held.
    pub fn job_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.job_timeout_seconds)
    }
}

/// The built-in executors, configured by `config`.
pub fn executors(config: &crate::Config) -> Vec<Arc<dyn Executor>> {
    vec![
        Arc::new(Commands),
        Arc::new(CodeBuild::new(config.codebuild.projects.clone())),
        Arc::new(GitSource::new(
            config.repositories.clone(),
            config.connections.clone(),
        )),
        Arc::new(S3Deploy),
    ]
}
