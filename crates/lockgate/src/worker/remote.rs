//! The job channel of `lockgate worker`: the CodePipeline API of a server elsewhere, called as
//! the AWS CLI would call it (awsJson1.1, SigV4, the AWS CLI's credentials). It cannot be told
//! about new jobs, so it polls every `poll_interval`.

use std::time::Duration;

use lockgate_shapes::{
    AcknowledgeJobInput, AcknowledgeJobOutput, GetPipelineExecutionInput,
    GetPipelineExecutionOutput, GetPipelineInput, GetPipelineOutput, Job, JobStatus,
    ListActionExecutionsInput, ListActionExecutionsOutput, PollForJobsInput, PollForJobsOutput,
    PutJobFailureResultInput, PutJobSuccessResultInput,
};
use lockgate_worker::{ChannelError, JobChannel};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::Client;

/// A server's API, as a job channel.
pub struct RemoteChannel {
    client: Client,
    poll_interval: Duration,
}

impl RemoteChannel {
    /// A channel through `client`, polling every `poll_interval` while idle.
    pub fn new(client: Client, poll_interval: Duration) -> RemoteChannel {
        RemoteChannel {
            client,
            poll_interval,
        }
    }

    async fn call<I: Serialize + Sync, O: DeserializeOwned>(
        &self,
        operation: &str,
        input: &I,
    ) -> Result<O, ChannelError> {
        match self.client.call_typed(operation, input).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(ChannelError::Service {
                code: e.code,
                message: e.message,
            }),
            Err(e) => Err(ChannelError::Transport(format!("{e:#}"))),
        }
    }
}

/// The empty answer of the operations that return nothing.
#[derive(serde::Deserialize)]
struct Nothing {}

#[async_trait::async_trait]
impl JobChannel for RemoteChannel {
    async fn poll_for_jobs(&self, input: PollForJobsInput) -> Result<Vec<Job>, ChannelError> {
        let out: PollForJobsOutput = self.call("PollForJobs", &input).await?;
        Ok(out.jobs.unwrap_or_default())
    }

    async fn acknowledge_job(&self, job_id: &str, nonce: &str) -> Result<JobStatus, ChannelError> {
        let input = AcknowledgeJobInput {
            job_id: job_id.to_string(),
            nonce: nonce.to_string(),
        };
        let out: AcknowledgeJobOutput = self.call("AcknowledgeJob", &input).await?;
        Ok(out.status.unwrap_or(JobStatus::Failed))
    }

    async fn put_job_success_result(
        &self,
        input: PutJobSuccessResultInput,
    ) -> Result<(), ChannelError> {
        let _: Nothing = self.call("PutJobSuccessResult", &input).await?;
        Ok(())
    }

    async fn put_job_failure_result(
        &self,
        input: PutJobFailureResultInput,
    ) -> Result<(), ChannelError> {
        let _: Nothing = self.call("PutJobFailureResult", &input).await?;
        Ok(())
    }

    async fn get_pipeline(
        &self,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ChannelError> {
        self.call("GetPipeline", &input).await
    }

    async fn get_pipeline_execution(
        &self,
        input: GetPipelineExecutionInput,
    ) -> Result<GetPipelineExecutionOutput, ChannelError> {
        self.call("GetPipelineExecution", &input).await
    }

    async fn list_action_executions(
        &self,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ChannelError> {
        self.call("ListActionExecutions", &input).await
    }

    async fn wait_for_jobs(&self, at_most: Duration) {
        tokio::time::sleep(at_most.min(self.poll_interval)).await;
    }
}
