//! The job-worker protocol's decisions: acknowledging a job, and applying a worker's report
//! (success, continuation or failure) to its action.

use std::sync::Arc;

use lockgate_model::{ExecutionId, JobId};
use lockgate_shapes::{ActionExecutionStatus, ErrorCode, JobStatus, ServiceError};

use super::{err, Decider, JobReport};
use crate::state::{job_finished, JobRecord};

impl<'a> Decider<'a> {
    /// Applies a job worker's report to the job's action execution.
    pub fn job_report(&mut self, job: &JobRecord, report: JobReport) -> Result<(), ServiceError> {
        let Some((i, s, k)) = self.find_run(&job.execution_id, &job.action_execution_id) else {
            return Err(invalid_job_state());
        };
        let e = &self.state.executions[i];
        let in_progress = e.stages[s]
            .as_ref()
            .and_then(|st| st.actions[k].as_ref())
            .is_some_and(|r| {
                r.status == ActionExecutionStatus::InProgress && r.job_id.as_ref() == Some(&job.id)
            });
        let open = e.job(&job.id).is_some_and(|j| !job_finished(j.status));
        if !in_progress || !open {
            return Err(invalid_job_state());
        }
        let now = self.now;
        match report {
            JobReport::Failure(details) => {
                if let Some(run) = self.run_mut(i, s, k) {
                    run.status = ActionExecutionStatus::Failed;
                    run.last_change = now;
                    run.disarm();
                    run.job_id = None;
                    run.summary = Some(details.message.clone());
                    run.error = Some((details.r#type.as_str().to_string(), details.message));
                    if details.external_execution_id.is_some() {
                        run.external_execution_id = details.external_execution_id;
                    }
                }
                self.close_jobs(i, vec![(job.id.clone(), JobStatus::Failed)]);
            }
            JobReport::Success {
                current_revision,
                continuation_token,
                details,
                output_variables,
            } => {
                let decl = self
                    .state
                    .declaration(self.state.executions[i].pipeline_version);
                let job_timeout = self.cfg.job_timeout_of(&job.action_type_id);
                if let Some(rev) = current_revision {
                    let outputs: Vec<String> = decl.stages[s].actions[k]
                        .output_artifacts
                        .iter()
                        .flatten()
                        .map(|o| o.name.clone())
                        .collect();
                    let e = self.exec_mut(i);
                    for name in outputs {
                        if let Some(a) = e.artifacts.get_mut(&name) {
                            a.revision = Some(rev.revision.clone());
                            a.change_identifier = Some(rev.change_identifier.clone());
                            a.revision_summary = rev.revision_summary.clone();
                            a.created = Some(rev.created.map(|t| t.0).unwrap_or(now));
                        }
                    }
                }
                let next_job = continuation_token.map(|token| {
                    // The continuation carries the configuration the action started with.
                    let configuration = job
                        .data
                        .action_configuration
                        .as_ref()
                        .and_then(|c| c.configuration.clone());
                    let id = job.action_execution_id.clone();
                    self.new_job(i, s, k, &decl, &id, configuration, Some(token))
                });
                if let Some(run) = self.run_mut(i, s, k) {
                    run.last_change = now;
                    if let Some(d) = details {
                        if d.summary.is_some() {
                            run.summary = d.summary;
                        }
                        if d.external_execution_id.is_some() {
                            run.external_execution_id = d.external_execution_id;
                        }
                        if d.percent_complete.is_some() {
                            run.percent_complete = d.percent_complete;
                        }
                    }
                    run.output_variables.extend(output_variables);
                    match &next_job {
                        Some(next) => {
                            run.job_id = Some(next.id.clone());
                            // The continuation must be taken and answered within the job
                            // timeout: a worker that stopped is noticed then.
                            run.job_deadline = None;
                            if let Some(timeout) = job_timeout {
                                run.arm_job_deadline(now, timeout);
                            }
                        }
                        None => {
                            run.status = ActionExecutionStatus::Succeeded;
                            run.disarm();
                            run.job_id = None;
                        }
                    }
                }
                self.close_jobs(i, vec![(job.id.clone(), JobStatus::Succeeded)]);
                if let Some(next) = next_job {
                    self.open_job(i, next);
                }
            }
        }
        self.advance();
        Ok(())
    }
}

impl<'a> Decider<'a> {
    /// A worker acknowledges a job it was offered: a queued job becomes InProgress. Returns the
    /// job's status afterwards (a job acknowledged again, or already finished, keeps its status).
    pub fn acknowledge_job(
        &mut self,
        execution_id: &ExecutionId,
        job_id: &JobId,
        nonce: &str,
    ) -> Result<JobStatus, ServiceError> {
        let not_found = || {
            err(
                ErrorCode::JobNotFoundException,
                format!("The job with id {job_id} was not found"),
            )
        };
        let i = self.index_of(execution_id).ok_or_else(not_found)?;
        let job = self.state.executions[i].job(job_id).ok_or_else(not_found)?;
        if job.nonce != nonce {
            return Err(err(
                ErrorCode::InvalidNonceException,
                format!("The nonce for job {job_id} does not match"),
            ));
        }
        if !matches!(job.status, JobStatus::Queued | JobStatus::Dispatched) {
            return Ok(job.status);
        }
        let job_timeout = self.cfg.job_timeout_of(&job.action_type_id);
        let now = self.now;
        // Acknowledging changes the job, not the execution: its last update time stays.
        let e = Arc::make_mut(&mut self.state.executions[i]);
        self.out.dirty.insert(e.id.clone());
        if let Some(job) = e.jobs.iter_mut().find(|j| *job_id == j.id) {
            job.status = JobStatus::InProgress;
        }
        // A job with a timeout of its own must be finished or continued within it from now.
        if let Some(timeout) = job_timeout {
            let run = e
                .stages
                .iter_mut()
                .flatten()
                .flat_map(|st| st.actions.iter_mut().flatten())
                .find(|r| r.job_id.as_ref() == Some(job_id));
            if let Some(run) = run.filter(|r| r.job_deadline.is_none()) {
                run.arm_job_deadline(now, timeout);
            }
        }
        Ok(JobStatus::InProgress)
    }
}

fn invalid_job_state() -> ServiceError {
    err(
        ErrorCode::InvalidJobStateException,
        "The job is not in a state that accepts this result",
    )
}
