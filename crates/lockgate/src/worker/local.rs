//! The job channel of the server's own worker: the `PipelineService` called directly, as a
//! caller named `lockgate-worker`, woken by the engine when new jobs are offered.

use std::sync::Arc;
use std::time::Duration;

use lockgate_engine::PipelineService;
use lockgate_model::Caller;
use lockgate_shapes::{
    AcknowledgeJobInput, CodePipelineService, GetPipelineExecutionInput,
    GetPipelineExecutionOutput, GetPipelineInput, GetPipelineOutput, Job, JobStatus,
    ListActionExecutionsInput, ListActionExecutionsOutput, PollForJobsInput,
    PutJobFailureResultInput, PutJobSuccessResultInput, ServiceError,
};
use lockgate_worker::{ChannelError, JobChannel};
use tokio::sync::{watch, Mutex};

/// The name the server's own worker acts as.
pub const LOCAL_WORKER_USER: &str = "lockgate-worker";

/// The server's own service, as a job channel.
pub struct LocalChannel {
    service: Arc<PipelineService>,
    caller: Caller,
    offers: Mutex<watch::Receiver<u64>>,
}

impl LocalChannel {
    /// A channel to `service`.
    pub fn new(service: Arc<PipelineService>) -> LocalChannel {
        let caller = Caller::new(LOCAL_WORKER_USER, service.config().account_id.clone());
        let offers = Mutex::new(service.jobs_offered());
        LocalChannel {
            service,
            caller,
            offers,
        }
    }
}

fn channel_error(e: ServiceError) -> ChannelError {
    ChannelError::Service {
        code: e.code.as_str().to_string(),
        message: e.message,
    }
}

#[async_trait::async_trait]
impl JobChannel for LocalChannel {
    async fn poll_for_jobs(&self, input: PollForJobsInput) -> Result<Vec<Job>, ChannelError> {
        // Offers are marked seen only by `wait_for_jobs`: one made while the worker polls its
        // types makes the next wait return at once, so no job waits for the idle timeout.
        let out = self
            .service
            .poll_for_jobs(&self.caller, input)
            .await
            .map_err(channel_error)?;
        Ok(out.jobs.unwrap_or_default())
    }

    async fn acknowledge_job(&self, job_id: &str, nonce: &str) -> Result<JobStatus, ChannelError> {
        let input = AcknowledgeJobInput {
            job_id: job_id.to_string(),
            nonce: nonce.to_string(),
        };
        let out = self
            .service
            .acknowledge_job(&self.caller, input)
            .await
            .map_err(channel_error)?;
        Ok(out.status.unwrap_or(JobStatus::Failed))
    }

    async fn put_job_success_result(
        &self,
        input: PutJobSuccessResultInput,
    ) -> Result<(), ChannelError> {
        self.service
            .put_job_success_result(&self.caller, input)
            .await
            .map_err(channel_error)
    }

    async fn put_job_failure_result(
        &self,
        input: PutJobFailureResultInput,
    ) -> Result<(), ChannelError> {
        self.service
            .put_job_failure_result(&self.caller, input)
            .await
            .map_err(channel_error)
    }

    async fn get_pipeline(
        &self,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ChannelError> {
        self.service
            .get_pipeline(&self.caller, input)
            .await
            .map_err(channel_error)
    }

    async fn get_pipeline_execution(
        &self,
        input: GetPipelineExecutionInput,
    ) -> Result<GetPipelineExecutionOutput, ChannelError> {
        self.service
            .get_pipeline_execution(&self.caller, input)
            .await
            .map_err(channel_error)
    }

    async fn list_action_executions(
        &self,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ChannelError> {
        self.service
            .list_action_executions(&self.caller, input)
            .await
            .map_err(channel_error)
    }

    async fn wait_for_jobs(&self, at_most: Duration) {
        let mut offers = self.offers.lock().await;
        let _ = tokio::time::timeout(at_most, offers.changed()).await;
    }
}
