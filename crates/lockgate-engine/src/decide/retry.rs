//! Retrying a failed or stopped stage of an execution.

use lockgate_model::ExecutionId;
use lockgate_shapes::{
    ActionExecutionStatus, ErrorCode, ExecutionMode, PipelineExecutionStatus, ServiceError,
    StageExecutionStatus, StageRetryMode,
};

use super::{err, Decider};
use crate::state::{Execution, Position};

impl<'a> Decider<'a> {
    /// Retries a failed or stopped stage of an execution, re-running its failed actions or all.
    pub fn retry(
        &mut self,
        execution_id: &ExecutionId,
        stage_name: &str,
        mode: StageRetryMode,
    ) -> Result<(), ServiceError> {
        let i = self.index_of(execution_id).ok_or_else(|| {
            err(
                ErrorCode::StageNotRetryableException,
                format!("Pipeline execution {execution_id} was not found"),
            )
        })?;
        let e = &self.state.executions[i];
        let decl = self.state.declaration(e.pipeline_version);
        let s = decl
            .stages
            .iter()
            .position(|st| st.name == stage_name)
            .ok_or_else(|| {
                err(
                    ErrorCode::StageNotFoundException,
                    format!("Stage {stage_name} was not found in the execution's pipeline version"),
                )
            })?;
        let retryable = matches!(e.position, Position::Done(Some(last)) if last == s)
            && matches!(
                e.status,
                PipelineExecutionStatus::Failed | PipelineExecutionStatus::Stopped
            )
            && e.stages[s].as_ref().is_some_and(|r| {
                matches!(
                    r.status,
                    StageExecutionStatus::Failed | StageExecutionStatus::Stopped
                )
            });
        if !retryable {
            return Err(err(
                ErrorCode::StageNotRetryableException,
                format!(
                    "Stage {stage_name} in execution {execution_id} is not in a failed or stopped state and cannot be retried"
                ),
            ));
        }
        // Where another execution's pipeline version has this stage: versions may differ, so
        // the stage is found by name, not by this execution's index.
        let index_in = |o: &Execution| {
            self.state
                .declaration(o.pipeline_version)
                .stages
                .iter()
                .position(|st| st.name == stage_name)
        };
        // Only the newest execution that ran this stage may retry it.
        if self.state.executions.iter().any(|o| {
            o.seq > e.seq
                && index_in(o).is_some_and(|j| o.stages.get(j).is_some_and(|r| r.is_some()))
        }) {
            return Err(err(
                ErrorCode::NotLatestPipelineExecutionException,
                format!("Execution {execution_id} is not the latest execution to run stage {stage_name}"),
            ));
        }
        if e.mode != ExecutionMode::Parallel
            && self.state.executions.iter().any(|o| {
                o.id != e.id
                    && o.is_active()
                    && index_in(o).is_some_and(|j| o.position == Position::Running(j))
            })
        {
            return Err(err(
                ErrorCode::ConflictException,
                format!("Another execution is running in stage {stage_name}"),
            ));
        }
        let e = self.exec_mut(i);
        e.status = PipelineExecutionStatus::InProgress;
        e.status_summary = None;
        e.stop_reason = None;
        e.stop_abandon = false;
        e.position = Position::Running(s);
        if let Some(run) = e.stages[s].as_mut() {
            run.status = StageExecutionStatus::InProgress;
            run.manual_retries += 1;
            for slot in run.actions.iter_mut() {
                let redo = match (mode, slot.as_ref()) {
                    (_, None) => false,
                    (StageRetryMode::AllActions, Some(_)) => true,
                    (_, Some(r)) => r.status != ActionExecutionStatus::Succeeded,
                };
                if redo {
                    if let Some(old) = slot.take() {
                        run.history.push(old);
                    }
                }
            }
        }
        self.advance();
        Ok(())
    }
}
