//! The job-worker protocol: PollForJobs, AcknowledgeJob, GetJobDetails and
//! PutJobSuccessResult / PutJobFailureResult.

use lockgate_model::Caller;
use lockgate_shapes::{
    AcknowledgeJobInput, AcknowledgeJobOutput, ErrorCode, GetJobDetailsInput, GetJobDetailsOutput,
    JobDetails, JobStatus, PollForJobsInput, PollForJobsOutput, PutJobFailureResultInput,
    PutJobSuccessResultInput, ServiceError,
};
use lockgate_store::{Collection, Mutation, Record};

use super::{err, to_json, PipelineService};
use crate::decide::JobReport;
use crate::jobs::action_type_key;
use crate::state::JobRecord;
use crate::views;

impl PipelineService {
    pub(super) async fn handle_poll_for_jobs(
        &self,
        _caller: &Caller,
        input: PollForJobsInput,
    ) -> Result<PollForJobsOutput, ServiceError> {
        if !self.registry().contains(&input.action_type_id) {
            return Err(err(
                ErrorCode::ActionTypeNotFoundException,
                format!(
                    "The action type {} was not found",
                    action_type_key(&input.action_type_id)
                ),
            ));
        }
        let max = usize::try_from(input.max_batch_size.unwrap_or(1).clamp(1, 100)).unwrap_or(1);
        let query = input.query_param.unwrap_or_default();
        let jobs = self
            .jobs
            .poll(&action_type_key(&input.action_type_id), max, &query);
        Ok(PollForJobsOutput {
            jobs: Some(jobs.iter().map(|j| views::job(j, &self.cfg)).collect()),
        })
    }

    pub(super) async fn handle_acknowledge_job(
        &self,
        _caller: &Caller,
        input: AcknowledgeJobInput,
    ) -> Result<AcknowledgeJobOutput, ServiceError> {
        let job = self.find_job(&input.job_id)?;
        if job.nonce != input.nonce {
            return Err(err(
                ErrorCode::InvalidNonceException,
                format!("The nonce for job {} does not match", input.job_id),
            ));
        }
        if !matches!(job.status, JobStatus::Dispatched | JobStatus::Queued) {
            return Ok(AcknowledgeJobOutput {
                status: Some(job.status),
            });
        }
        let job_id = input.job_id.clone();
        let status = self
            .mutate(&job.pipeline_name, |_, extra| {
                let mut job = self.find_job(&job_id)?;
                if matches!(job.status, JobStatus::Dispatched | JobStatus::Queued) {
                    job.status = JobStatus::InProgress;
                    extra.push(self.job_record(&job));
                }
                Ok(job.status)
            })
            .await?;
        if status == JobStatus::InProgress {
            self.jobs.mark_acknowledged(&input.job_id);
        }
        Ok(AcknowledgeJobOutput {
            status: Some(status),
        })
    }

    pub(super) async fn handle_get_job_details(
        &self,
        _caller: &Caller,
        input: GetJobDetailsInput,
    ) -> Result<GetJobDetailsOutput, ServiceError> {
        let job = self.find_job(&input.job_id)?;
        Ok(GetJobDetailsOutput {
            job_details: Some(JobDetails {
                id: Some(job.id.clone()),
                data: Some(job.data.clone()),
                account_id: Some(self.cfg.account_id.clone()),
            }),
        })
    }

    pub(super) async fn handle_put_job_success_result(
        &self,
        _caller: &Caller,
        input: PutJobSuccessResultInput,
    ) -> Result<(), ServiceError> {
        self.report_job(
            &input.job_id,
            JobReport::Success {
                current_revision: input.current_revision,
                continuation_token: input.continuation_token,
                details: input.execution_details,
                output_variables: input.output_variables.unwrap_or_default(),
            },
        )
        .await
    }

    pub(super) async fn handle_put_job_failure_result(
        &self,
        _caller: &Caller,
        input: PutJobFailureResultInput,
    ) -> Result<(), ServiceError> {
        self.report_job(&input.job_id, JobReport::Failure(input.failure_details))
            .await
    }

    /// Applies a worker's result to a job.
    async fn report_job(&self, job_id: &str, report: JobReport) -> Result<(), ServiceError> {
        let job = self.find_job(job_id)?;
        if !matches!(
            job.status,
            JobStatus::Dispatched | JobStatus::InProgress | JobStatus::Queued
        ) {
            return Err(err(
                ErrorCode::InvalidJobStateException,
                format!(
                    "The job {job_id} is {} and takes no further results",
                    job.status.as_str()
                ),
            ));
        }
        self.mutate(&job.pipeline_name, |d, _| d.job_report(&job, report))
            .await
    }

    /// A job from the job board, or JobNotFoundException.
    fn find_job(&self, id: &str) -> Result<JobRecord, ServiceError> {
        self.jobs.get(id).ok_or_else(|| {
            err(
                ErrorCode::JobNotFoundException,
                format!("The job with id {id} was not found"),
            )
        })
    }

    /// The store write that saves a job's record.
    fn job_record(&self, job: &JobRecord) -> Mutation {
        Mutation::Put(
            Record::new(Collection::Job, job.id.clone(), to_json(job))
                .with_parent(job.pipeline_name.clone()),
        )
    }
}
