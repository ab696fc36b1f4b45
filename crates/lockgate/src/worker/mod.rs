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
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            local: true,
            concurrency: 4,
            work_dir: None,
            log_kib: 1024,
            grace_seconds: 30,
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
        settings
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
