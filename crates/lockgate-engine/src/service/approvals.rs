//! Manual approvals: PutApprovalResult, checked against the pipeline's current declaration.

use lockgate_model::{ApprovalToken, Caller};
use lockgate_shapes::{
    ApprovalStatus, ErrorCode, PutApprovalResultInput, PutApprovalResultOutput, ServiceError,
    Timestamp,
};

use super::{err, PipelineService};
use crate::decide::ApprovalAnswer;
use crate::state::PipelineState;

impl PipelineService {
    pub(super) async fn handle_put_approval_result(
        &self,
        caller: &Caller,
        input: PutApprovalResultInput,
    ) -> Result<PutApprovalResultOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name).await?;
        check_approval_target(&state, &input.stage_name, &input.action_name)?;
        let answer = ApprovalAnswer {
            stage: input.stage_name,
            action: input.action_name,
            token: ApprovalToken::from(input.token),
            approved: input.result.status == ApprovalStatus::Approved,
            summary: input.result.summary,
            approver: caller.arn(),
        };
        let at = self
            .mutate(&input.pipeline_name, |d, _| {
                check_approval_target(d.state, &answer.stage, &answer.action)?;
                d.answer_approval(&answer)
            })
            .await?;
        Ok(PutApprovalResultOutput {
            approved_at: Some(Timestamp(at)),
        })
    }
}

/// Checks that the stage and action of an approval exist in the pipeline's current declaration.
fn check_approval_target(
    state: &PipelineState,
    stage: &str,
    action: &str,
) -> Result<(), ServiceError> {
    let decl = &state.entry.declaration;
    let Some(st) = decl.stages.iter().find(|s| s.name == stage) else {
        return Err(err(
            ErrorCode::StageNotFoundException,
            format!("Stage {stage} was not found in pipeline {}", decl.name),
        ));
    };
    if !st.actions.iter().any(|a| a.name == action) {
        return Err(err(
            ErrorCode::ActionNotFoundException,
            format!("Action {action} was not found in stage {stage}"),
        ));
    }
    Ok(())
}
