//! The job-worker protocol: PollForJobs, AcknowledgeJob, GetJobDetails and
//! PutJobSuccessResult / PutJobFailureResult.

use lockgate_model::{Caller, ExecutionId, JobId};
use lockgate_shapes::{
    AcknowledgeJobInput, AcknowledgeJobOutput, ErrorCode, GetJobDetailsInput, GetJobDetailsOutput,
    JobDetails, JobStatus, PollForJobsInput, PollForJobsOutput, PutJobFailureResultInput,
    PutJobSuccessResultInput, ServiceError,
};
use lockgate_store::Collection;

use super::{err, internal, PipelineService};
use crate::decide::JobReport;
use crate::jobs::{action_type_key, JobPlace, Offer};
use crate::state::{job_finished, JobRecord};
use crate::stored;
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
        // Served from memory: the board says which jobs wait, their executions hold them.
        let mut jobs = Vec::new();
        self.jobs
            .poll(&action_type_key(&input.action_type_id), |id, place| {
                let Some(job) = self.open_job(id, place) else {
                    return Offer::Drop;
                };
                if !matches!(job.status, JobStatus::Queued | JobStatus::Dispatched) {
                    return Offer::Drop;
                }
                let matches = jobs.len() < max
                    && query.iter().all(|(k, v)| {
                        job.data
                            .action_configuration
                            .as_ref()
                            .and_then(|c| c.configuration.as_ref())
                            .and_then(|c| c.get(k))
                            == Some(v)
                    });
                if matches {
                    jobs.push(views::job(&job, &self.cfg));
                    Offer::Take
                } else {
                    Offer::Keep
                }
            });
        Ok(PollForJobsOutput { jobs: Some(jobs) })
    }

    pub(super) async fn handle_acknowledge_job(
        &self,
        _caller: &Caller,
        input: AcknowledgeJobInput,
    ) -> Result<AcknowledgeJobOutput, ServiceError> {
        let job_id = JobId::from(input.job_id);
        let (job, place) = self.find_job(&job_id).await?;
        if job.nonce != input.nonce {
            return Err(err(
                ErrorCode::InvalidNonceException,
                format!("The nonce for job {job_id} does not match"),
            ));
        }
        if !matches!(job.status, JobStatus::Dispatched | JobStatus::Queued) {
            return Ok(AcknowledgeJobOutput {
                status: Some(job.status),
            });
        }
        let status = self
            .mutate(&place.pipeline, |d, _| {
                d.acknowledge_job(
                    &ExecutionId::from(place.execution_id.as_str()),
                    &job_id,
                    &input.nonce,
                )
            })
            .await?;
        Ok(AcknowledgeJobOutput {
            status: Some(status),
        })
    }

    pub(super) async fn handle_get_job_details(
        &self,
        _caller: &Caller,
        input: GetJobDetailsInput,
    ) -> Result<GetJobDetailsOutput, ServiceError> {
        let (job, _) = self.find_job(&JobId::from(input.job_id)).await?;
        Ok(GetJobDetailsOutput {
            job_details: Some(JobDetails {
                id: Some(job.id.to_string()),
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
            &JobId::from(input.job_id),
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
        self.report_job(
            &JobId::from(input.job_id),
            JobReport::Failure(input.failure_details),
        )
        .await
    }

    /// Applies a worker's result to a job.
    async fn report_job(&self, job_id: &JobId, report: JobReport) -> Result<(), ServiceError> {
        let (job, place) = self.find_job(job_id).await?;
        if job_finished(job.status) {
            return Err(err(
                ErrorCode::InvalidJobStateException,
                format!(
                    "The job {job_id} is {} and takes no further results",
                    job.status.as_str()
                ),
            ));
        }
        self.mutate(&place.pipeline, |d, _| d.job_report(&job, report))
            .await
    }

    /// An open job from the committed state of the execution the board says holds it.
    fn open_job(&self, id: &JobId, place: &JobPlace) -> Option<JobRecord> {
        let state = self.pipeline(&place.pipeline).ok()?;
        let job = state
            .execution(&ExecutionId::from(place.execution_id.as_str()))?
            .job(id)?
            .clone();
        Some(job)
    }

    /// A job and where it lives, or JobNotFoundException. Open jobs are found through the job
    /// board, in memory; a finished one through its `Job` record, which names its execution
    /// (in memory if recent, otherwise read from the store).
    async fn find_job(&self, id: &JobId) -> Result<(JobRecord, JobPlace), ServiceError> {
        let not_found = || {
            err(
                ErrorCode::JobNotFoundException,
                format!("The job with id {id} was not found"),
            )
        };
        if let Some(place) = self.jobs.place(id) {
            if let Some(job) = self.open_job(id, &place) {
                return Ok((job, place));
            }
        }
        let record = self
            .store
            .get(Collection::Job, id.as_str())
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let place = stored::job::read_place(&record).map_err(internal)?;
        // A job whose pipeline was deleted (and recreated) is gone with it.
        let state = self.pipeline(&place.pipeline).map_err(|_| not_found())?;
        let execution = self
            .find_execution(&state, &ExecutionId::from(place.execution_id.as_str()))
            .await?;
        if let Some(job) = execution.as_ref().and_then(|e| e.job(id)) {
            return Ok((job.clone(), place));
        }
        // Stored before executions owned their jobs: the record is the job itself.
        match stored::job::read_legacy(&record).map_err(internal)? {
            Some(job) if execution.is_some() => Ok((job, place)),
            _ => Err(not_found()),
        }
    }
}
