//! Where a worker's jobs come from and where its results go: the job-worker operations of the
//! CodePipeline API, plus the reads a worker needs to know the action it runs.

use std::time::Duration;

use lockgate_shapes::{
    GetPipelineExecutionInput, GetPipelineExecutionOutput, GetPipelineInput, GetPipelineOutput,
    Job, JobStatus, ListActionExecutionsInput, ListActionExecutionsOutput, PollForJobsInput,
    PutJobFailureResultInput, PutJobSuccessResultInput,
};

/// Why a call through a channel failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChannelError {
    /// The service answered with an error (`JobNotFoundException`, ...).
    #[error("{code}: {message}")]
    Service {
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// The service could not be reached or answered something that is not an answer.
    #[error("{0}")]
    Transport(String),
}

/// The CodePipeline operations a worker calls. Every method is the API operation of the same
/// name, so an implementation is either the service itself or a client of it.
#[async_trait::async_trait]
pub trait JobChannel: Send + Sync {
    /// PollForJobs: jobs of one action type waiting for a worker.
    async fn poll_for_jobs(&self, input: PollForJobsInput) -> Result<Vec<Job>, ChannelError>;
    /// AcknowledgeJob: takes a job offered to this worker, and tells the job's status (a worker
    /// calls it again while it runs the job, to learn that the job was stopped or timed out).
    async fn acknowledge_job(&self, job_id: &str, nonce: &str) -> Result<JobStatus, ChannelError>;
    /// PutJobSuccessResult.
    async fn put_job_success_result(
        &self,
        input: PutJobSuccessResultInput,
    ) -> Result<(), ChannelError>;
    /// PutJobFailureResult.
    async fn put_job_failure_result(
        &self,
        input: PutJobFailureResultInput,
    ) -> Result<(), ChannelError>;
    /// GetPipeline: the declaration (of the version an execution runs).
    async fn get_pipeline(
        &self,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ChannelError>;
    /// GetPipelineExecution: the execution's version and pipeline-level variables.
    async fn get_pipeline_execution(
        &self,
        input: GetPipelineExecutionInput,
    ) -> Result<GetPipelineExecutionOutput, ChannelError>;
    /// ListActionExecutions: the output variables of the execution's finished actions.
    async fn list_action_executions(
        &self,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ChannelError>;
    /// Waits until new jobs may be waiting, or at most `at_most`: a channel that can be told
    /// about new jobs returns as soon as there are some; one that cannot simply sleeps.
    async fn wait_for_jobs(&self, at_most: Duration);
}
