//! Failing an action whose deadline passed: an expired approval or a timed-out job.

use lockgate_model::notice::NoticeKind;
use lockgate_model::{ActionExecutionId, ExecutionId};
use lockgate_shapes::{ActionExecutionStatus, JobStatus};

use super::Decider;
use crate::jobs::action_type_key;
use crate::state::ActionKind;

impl<'a> Decider<'a> {
    /// Fails the action execution whose deadline has passed, if it is still in progress.
    /// Returns whether anything changed.
    pub fn deadline_reached(
        &mut self,
        execution_id: &ExecutionId,
        action_execution_id: &ActionExecutionId,
    ) -> bool {
        let Some((i, s, k)) = self.find_run(execution_id, action_execution_id) else {
            return false;
        };
        let now = self.now;
        let run = self.state.executions[i].stages[s]
            .as_ref()
            .and_then(|st| st.actions[k].as_ref());
        let Some(run) = run else { return false };
        let Some(expires) = run.due_at().filter(|d| *d <= now) else {
            return false;
        };
        // Only the current job's own timeout has passed, not the action's.
        let job_timeout = run.deadline.is_none_or(|d| d > now);
        if run.status != ActionExecutionStatus::InProgress {
            return false;
        }
        let approval = run.kind == ActionKind::Approval;
        // A job still queued at its timeout was never acknowledged: no worker runs its type.
        let untaken = run
            .job_id
            .as_ref()
            .and_then(|id| self.state.executions[i].jobs.iter().find(|j| &j.id == id))
            .filter(|job| job.status == JobStatus::Queued)
            .map(|job| action_type_key(&job.action_type_id));
        let job_timeout_millis = self.cfg.builtin_job_timeout_millis;
        let mut closed = None;
        if let Some(run) = self.run_mut(i, s, k) {
            run.status = ActionExecutionStatus::Failed;
            run.last_change = now;
            run.disarm();
            match run.kind {
                ActionKind::Approval => {
                    run.summary = Some(
                        "Approval expired: no response was received before the approval timed out"
                            .into(),
                    );
                    run.error = Some((
                        "ApprovalExpired".into(),
                        "The approval request expired without a response".into(),
                    ));
                }
                ActionKind::Job => {
                    let message = match untaken {
                        Some(action_type) if job_timeout => format!(
                            "No job worker took the continuation job for action type \
                             {action_type} within the job timeout ({}): the worker running \
                             the action has stopped, or every worker is busy",
                            seconds(job_timeout_millis)
                        ),
                        None if job_timeout => format!(
                            "The job was neither finished nor continued within the job timeout \
                             ({}): the job worker running it has stopped",
                            seconds(job_timeout_millis)
                        ),
                        Some(action_type) => format!(
                            "No job worker acknowledged the job for action type {action_type} \
                             before the action timed out: Lockgate hands this provider's work \
                             to job workers (PollForJobs, AcknowledgeJob), and none took it"
                        ),
                        None => "The job did not complete before the action timed out".into(),
                    };
                    run.error = Some(("JobTimedOut".into(), message));
                    closed = run.job_id.take();
                }
            }
        }
        if let Some(job) = closed {
            self.close_jobs(i, vec![(job, JobStatus::TimedOut)]);
        }
        if approval {
            self.notice(i, s, k, NoticeKind::Expired, expires);
        }
        self.advance();
        true
    }
}

/// A duration in milliseconds, as people read it: `600 s`.
fn seconds(millis: i64) -> String {
    format!("{} s", millis / 1000)
}
