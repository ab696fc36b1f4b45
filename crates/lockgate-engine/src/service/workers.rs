//! The job-worker protocol: PollForJobs, AcknowledgeJob, GetJobDetails and
//! PutJobSuccessResult / PutJobFailureResult.

use lockgate_model::{Caller, ExecutionId, JobId};
use lockgate_shapes::{
    AcknowledgeJobInput, AcknowledgeJobOutput, ErrorCode, GetJobDetailsInput, GetJobDetailsOutput,
    JobDetails, JobStatus, PollForJobsInput, PollForJobsOutput, PutJobFailureResultInput,
    PutJobSuccessResultInput, ServiceError,
};
use lockgate_store::{Collection, Scan, StoreError};

use super::{err, index, internal, PipelineService};

/// The most queued jobs one poll looks at for ones matching its query.
const MAX_JOBS_LOOKED_AT: usize = 1000;
use crate::decide::JobReport;
use crate::jobs::{action_type_key, JobPlace, QueuedJob};
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
        let type_key = action_type_key(&input.action_type_id);
        // Served from memory: the type's queue (read from the store's index the first time a
        // worker asks for the type) says which jobs wait, their executions hold them.
        self.jobs
            .ensure_loaded(&type_key, || self.stored_queue(&type_key))
            .await
            .map_err(internal)?;
        let mut jobs = Vec::new();
        let mut after = None;
        let mut looked = 0;
        while jobs.len() < max && looked < MAX_JOBS_LOOKED_AT {
            let candidates = self.jobs.candidates(&type_key, after.as_ref(), max * 2);
            if candidates.is_empty() {
                break;
            }
            looked += candidates.len();
            after = candidates.last().map(|(k, _)| k.clone());
            let mut take = Vec::new();
            let mut gone = Vec::new();
            for ((_, id), place) in candidates {
                let Some(job) = self.open_job(&id, &place).await? else {
                    gone.push(id);
                    continue;
                };
                if !matches!(job.status, JobStatus::Queued | JobStatus::Dispatched) {
                    gone.push(id);
                    continue;
                }
                let matches = query.iter().all(|(k, v)| {
                    job.data
                        .action_configuration
                        .as_ref()
                        .and_then(|c| c.configuration.as_ref())
                        .and_then(|c| c.get(k))
                        == Some(v)
                });
                if matches && jobs.len() + take.len() < max {
                    take.push(job);
                }
            }
            self.jobs.close(gone.iter());
            // Another poller may have taken some of these meanwhile: only those still queued
            // are handed out here.
            let ids: Vec<JobId> = take.iter().map(|j| j.id.clone()).collect();
            let taken = self.jobs.take(&ids);
            jobs.extend(take.iter().filter(|j| taken.contains(&j.id)).map(|j| {
                let mut job = views::job(j, &self.cfg);
                job.data = job.data.map(|d| self.with_credentials(d));
                job
            }));
        }
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
                data: Some(self.with_credentials(job.data.clone())),
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
    /// `data` with the artifact store's credentials, when there are some to hand out.
    fn with_credentials(&self, mut data: lockgate_shapes::JobData) -> lockgate_shapes::JobData {
        if let Some(credentials) = self.artifact_credentials.get() {
            data.artifact_credentials = Some(credentials.clone());
        }
        data
    }

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

    /// A job from the committed state of the execution that holds it (`None` if the
    /// pipeline or execution is gone).
    async fn open_job(
        &self,
        id: &JobId,
        place: &JobPlace,
    ) -> Result<Option<JobRecord>, ServiceError> {
        let state = match self.pipeline(&place.pipeline).await {
            Ok(state) => state,
            Err(e) if e.code == ErrorCode::PipelineNotFoundException => return Ok(None),
            Err(e) => return Err(e),
        };
        let execution = self
            .find_execution(&state, &ExecutionId::from(place.execution_id.as_str()))
            .await?;
        Ok(execution.and_then(|e| e.job(id).cloned()))
    }

    /// The queued jobs of an action type, oldest first, from the store's index.
    async fn stored_queue(&self, type_key: &str) -> Result<Vec<QueuedJob>, StoreError> {
        let label = index::queued_label(type_key);
        let mut queue = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .scan(
                    Scan::new(Collection::Job, 1000)
                        .label(label.clone())
                        .by_position()
                        .after(after),
                )
                .await?;
            after = page.last().map(|r| r.cursor());
            let full = page.len() == 1000;
            for r in &page {
                queue.push(QueuedJob {
                    id: JobId::from(r.key.as_str()),
                    type_key: type_key.to_string(),
                    order: r.position,
                    place: stored::job::read_place(r)?,
                });
            }
            if !full {
                return Ok(queue);
            }
        }
    }

    /// A job and where it lives, or JobNotFoundException: found through its `Job` record,
    /// which names its execution (in memory if recent, otherwise read from the store).
    async fn find_job(&self, id: &JobId) -> Result<(JobRecord, JobPlace), ServiceError> {
        let not_found = || {
            err(
                ErrorCode::JobNotFoundException,
                format!("The job with id {id} was not found"),
            )
        };
        let record = self
            .store
            .get(Collection::Job, id.as_str())
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let place = stored::job::read_place(&record).map_err(internal)?;
        // A job whose pipeline was deleted (and recreated) is gone with it.
        let state = self
            .pipeline(&place.pipeline)
            .await
            .map_err(|_| not_found())?;
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
