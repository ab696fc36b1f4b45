//! Stopping an execution, at once or after its in-progress jobs finish.

use lockgate_model::ExecutionId;
use lockgate_shapes::{
    ActionExecutionStatus, ErrorCode, JobStatus, PipelineExecutionStatus, ServiceError,
    StageExecutionStatus,
};

use super::{err, Decider};
use crate::state::{ActionKind, Position};

impl<'a> Decider<'a> {
    /// Stops an execution: at once when `abandon`, otherwise after in-progress jobs finish.
    /// Pending approvals are abandoned either way, since nobody can finish them once stopping.
    pub fn stop(
        &mut self,
        execution_id: &ExecutionId,
        abandon: bool,
        reason: Option<String>,
    ) -> Result<(), ServiceError> {
        let i = self.index_of(execution_id).ok_or_else(|| {
            err(
                ErrorCode::PipelineExecutionNotStoppableException,
                format!("Pipeline execution {execution_id} is not stoppable"),
            )
        })?;
        let e = &self.state.executions[i];
        match e.status {
            PipelineExecutionStatus::InProgress => {}
            PipelineExecutionStatus::Stopping if abandon && !e.stop_abandon => {}
            PipelineExecutionStatus::Stopping => {
                return Err(err(
                    ErrorCode::DuplicatedStopRequestException,
                    format!("Pipeline execution {execution_id} is already stopping"),
                ))
            }
            _ => {
                return Err(err(
                    ErrorCode::PipelineExecutionNotStoppableException,
                    format!(
                        "Pipeline execution {execution_id} is {} and cannot be stopped",
                        e.status.as_str()
                    ),
                ))
            }
        }
        let now = self.now;
        let position = e.position;
        let mut closing = Vec::new();
        let mut abandoned_approvals = Vec::new();
        {
            let e = self.exec_mut(i);
            e.stop_reason = reason.or(e.stop_reason.take());
            e.stop_abandon |= abandon;
            e.status = PipelineExecutionStatus::Stopping;
            if let Position::Running(s) = position {
                if let Some(run) = e.stages[s].as_mut() {
                    run.status = StageExecutionStatus::Stopping;
                    for (k, a) in run.actions.iter_mut().enumerate() {
                        let Some(a) = a else { continue };
                        if a.status == ActionExecutionStatus::InProgress
                            && (abandon || a.kind == ActionKind::Approval)
                        {
                            if a.kind == ActionKind::Approval {
                                abandoned_approvals.push((s, k));
                            }
                            a.status = ActionExecutionStatus::Abandoned;
                            a.last_change = now;
                            a.disarm();
                            if let Some(job) = a.job_id.take() {
                                closing.push((job, JobStatus::Failed));
                            }
                        }
                    }
                }
            }
        }
        self.close_jobs(i, closing);
        for (s, k) in abandoned_approvals {
            self.withdraw_notice(i, s, k);
        }
        self.advance();
        Ok(())
    }
}
