//! The one interface every local executor implements, and what it is given: the job, the
//! action as declared, the variables of its execution, a fresh workspace, the artifact store,
//! a log and a cancellation signal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lockgate_artifacts::{ArtifactLocation, ArtifactStore};
use lockgate_model::variables::{resolve, ExecutionVariables};
use lockgate_shapes::{
    ActionDeclaration, ActionTypeId, Artifact, CurrentRevision, FailureType, JobData,
};
use tokio::sync::watch;

use crate::runlog::RunLog;
use crate::workspace::Workspace;

/// The most characters a failure message may have (PutJobFailureResult's limit).
pub const MAX_FAILURE_MESSAGE: usize = 5000;

/// Everything an executor needs to run one job.
pub struct JobContext {
    /// The job's id.
    pub job_id: String,
    /// The job as the worker received it (configuration resolved, artifact locations).
    pub data: JobData,
    /// The action as its pipeline version declares it (commands, output variables, files).
    pub action: ActionDeclaration,
    /// The variables of the job's execution, for the references in commands and environment
    /// variables.
    pub variables: ExecutionVariables,
    /// The job's own directories.
    pub workspace: Workspace,
    /// Where artifacts are read from and written to.
    pub artifacts: Arc<dyn ArtifactStore>,
    /// The run's output.
    pub log: RunLog,
    /// Turns true when the job must stop (its execution was stopped, it timed out, or the
    /// worker is shutting down).
    pub cancel: watch::Receiver<bool>,
}

impl JobContext {
    /// The action's configuration (as resolved when the action started).
    pub fn configuration(&self) -> Option<&BTreeMap<String, String>> {
        self.data
            .action_configuration
            .as_ref()
            .and_then(|c| c.configuration.as_ref())
    }

    /// One configuration value.
    pub fn config(&self, key: &str) -> Option<&str> {
        self.configuration()
            .and_then(|c| c.get(key))
            .map(String::as_str)
    }

    /// A configuration value the action type requires.
    pub fn required(&self, key: &str) -> Result<&str, Failure> {
        self.config(key).ok_or_else(|| {
            Failure::configuration(format!(
                "The action {} has no {key} in its configuration",
                self.action.name
            ))
        })
    }

    /// The job's input artifacts, in declaration order.
    pub fn input_artifacts(&self) -> &[Artifact] {
        self.data.input_artifacts.as_deref().unwrap_or_default()
    }

    /// The job's output artifacts, in declaration order.
    pub fn output_artifacts(&self) -> &[Artifact] {
        self.data.output_artifacts.as_deref().unwrap_or_default()
    }

    /// The execution the job belongs to.
    pub fn execution_id(&self) -> &str {
        &self.variables.execution_id
    }

    /// The pipeline's name.
    pub fn pipeline_name(&self) -> &str {
        self.data
            .pipeline_context
            .as_ref()
            .and_then(|c| c.pipeline_name.as_deref())
            .unwrap_or_default()
    }

    /// How long the action may run, when its declaration says (`timeoutInMinutes`).
    pub fn timeout(&self) -> Option<Duration> {
        self.action
            .timeout_in_minutes
            .and_then(|m| u64::try_from(m).ok())
            .map(|m| Duration::from_secs(m * 60))
    }

    /// `text` with its variable references resolved; `part` names where it comes from in the
    /// failure message.
    pub fn resolve(&self, text: &str, part: &str) -> Result<String, Failure> {
        resolve(text, &self.variables)
            .map_err(|u| Failure::configuration(u.message(&self.action.name, part)))
    }

    /// Where an artifact of this job is stored.
    pub fn location(&self, artifact: &Artifact) -> Result<ArtifactLocation, Failure> {
        let name = artifact.name.as_deref().unwrap_or_default();
        let s3 = artifact
            .location
            .as_ref()
            .and_then(|l| l.s3_location.as_ref())
            .ok_or_else(|| Failure::job(format!("The artifact {name} has no location")))?;
        ArtifactLocation::new(s3.bucket_name.clone(), s3.object_key.clone()).map_err(|e| {
            Failure::configuration(format!("The artifact {name} cannot be stored: {e}"))
        })
    }
}

/// What a job produced when it succeeded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Success {
    /// A short summary shown with the action.
    pub summary: Option<String>,
    /// Variables later actions can refer to through the action's namespace.
    pub output_variables: BTreeMap<String, String>,
    /// The revision a source action fetched.
    pub current_revision: Option<CurrentRevision>,
    /// The id of the run in the system that ran it, if there is one.
    pub external_execution_id: Option<String>,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// CodePipeline's failure type.
    pub kind: FailureType,
    /// What went wrong, for the person reading the action's error.
    pub message: String,
}

impl Failure {
    /// The job ran and failed (`JobFailed`).
    pub fn job(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureType::JobFailed,
            message: message.into(),
        }
    }

    /// The action is configured in a way that cannot run (`ConfigurationError`).
    pub fn configuration(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureType::ConfigurationError,
            message: message.into(),
        }
    }

    /// Something the job needs is not there (`SystemUnavailable`).
    pub fn system(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureType::SystemUnavailable,
            message: message.into(),
        }
    }
}

/// Runs one kind of action on this machine.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// The action types it runs.
    fn action_types(&self) -> Vec<ActionTypeId>;
    /// Runs one job to its end.
    async fn run(&self, job: &mut JobContext) -> Result<Success, Failure>;
}
