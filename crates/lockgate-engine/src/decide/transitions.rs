//! Stage transitions: DisableStageTransition and EnableStageTransition, and finding a stage by
//! name for the commands that name one.

use lockgate_shapes::{ErrorCode, ServiceError, StageTransitionType};

use super::{err, Decider};
use crate::state::{PipelineState, Transition};

/// The position of `stage` in the pipeline's current declaration, or StageNotFoundException.
pub fn stage_position(state: &PipelineState, stage: &str) -> Result<usize, ServiceError> {
    state
        .entry
        .declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| {
            err(
                ErrorCode::StageNotFoundException,
                format!(
                    "Stage {stage} was not found in pipeline {}",
                    state.entry.declaration.name
                ),
            )
        })
}

impl Decider<'_> {
    /// Disables (with `disabled_reason`) or enables (without one) the transition into `stage`
    /// (`Inbound`) or into the stage after it (`Outbound`), as `changed_by`, then lets executions
    /// move: enabling releases an execution held at the transition.
    pub fn set_transition(
        &mut self,
        stage: &str,
        kind: StageTransitionType,
        changed_by: String,
        disabled_reason: Option<String>,
    ) -> Result<(), ServiceError> {
        let mut s = stage_position(self.state, stage)?;
        if kind == StageTransitionType::Outbound {
            s += 1;
            if s >= self.state.entry.declaration.stages.len() {
                return Err(err(
                    ErrorCode::ValidationException,
                    format!("Stage {stage} is the last stage and has no outbound transition"),
                ));
            }
        }
        let target = self.state.entry.declaration.stages[s].name.clone();
        self.state.entry.transitions.insert(
            target,
            Transition {
                enabled: disabled_reason.is_none(),
                last_changed_by: changed_by,
                last_changed_at: self.now,
                disabled_reason,
            },
        );
        self.out.entry_dirty = true;
        self.advance();
        Ok(())
    }
}
