//! Running executions: StartPipelineExecution, StopPipelineExecution, RetryStageExecution, and
//! EnableStageTransition / DisableStageTransition, which release or hold executions between
//! stages.

use std::collections::BTreeSet;

use lockgate_model::{Caller, ExecutionId};
use lockgate_shapes::{
    DisableStageTransitionInput, EnableStageTransitionInput, ErrorCode, ExecutionMode,
    RetryStageExecutionInput, RetryStageExecutionOutput, ServiceError, StageTransitionType,
    StartPipelineExecutionInput, StartPipelineExecutionOutput, StopPipelineExecutionInput,
    StopPipelineExecutionOutput, TriggerType,
};

use super::pipelines::default_variables;
use super::{err, PipelineService};
use crate::decide::{stage_position, StartRequest};

/// Most executions a QUEUED or PARALLEL pipeline holds in progress at once.
const MAX_ACTIVE_EXECUTIONS: usize = 50;

impl PipelineService {
    pub(super) async fn handle_start_pipeline_execution(
        &self,
        caller: &Caller,
        input: StartPipelineExecutionInput,
    ) -> Result<StartPipelineExecutionOutput, ServiceError> {
        self.start_triggered(input, TriggerType::StartPipelineExecution, caller.arn())
            .await
    }

    /// Starts an execution as StartPipelineExecution does, recording `trigger_type` and
    /// `trigger_detail` as what started it (a source change found by polling or a push hook
    /// starts executions this way, with the revision to fetch in `sourceRevisions`).
    pub async fn start_triggered(
        &self,
        input: StartPipelineExecutionInput,
        trigger_type: TriggerType,
        trigger_detail: String,
    ) -> Result<StartPipelineExecutionOutput, ServiceError> {
        let state = self.pipeline(&input.name).await?;
        let mut variables = default_variables(&state.entry.declaration);
        let declared: BTreeSet<&str> = state
            .entry
            .declaration
            .variables
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        for v in input.variables.iter().flatten() {
            if !declared.contains(v.name.as_str()) {
                return Err(err(
                    ErrorCode::ValidationException,
                    format!(
                        "Pipeline variable '{}' is not declared in the pipeline",
                        v.name
                    ),
                ));
            }
            variables.insert(v.name.clone(), v.value.clone());
        }
        let source_actions: BTreeSet<&str> = state
            .entry
            .declaration
            .stages
            .first()
            .into_iter()
            .flat_map(|s| s.actions.iter().map(|a| a.name.as_str()))
            .collect();
        if let Some(o) = input
            .source_revisions
            .iter()
            .flatten()
            .find(|o| !source_actions.contains(o.action_name.as_str()))
        {
            return Err(err(
                ErrorCode::ValidationException,
                format!(
                    "Source revision override names unknown source action '{}'",
                    o.action_name
                ),
            ));
        }
        let request = StartRequest {
            trigger_type,
            trigger_detail,
            client_request_token: input.client_request_token.clone(),
            variables,
            source_overrides: input.source_revisions.unwrap_or_default(),
        };
        let id = self
            .mutate(&input.name, |d, _| {
                if let Some(token) = &request.client_request_token {
                    if let Some(e) = d
                        .state
                        .executions
                        .iter()
                        .find(|e| e.client_request_token.as_ref() == Some(token))
                    {
                        return Ok(e.id.clone());
                    }
                }
                let mode = d.state.entry.execution_mode();
                let active = d.state.executions.iter().filter(|e| e.is_active()).count();
                if mode != ExecutionMode::Superseded && active >= MAX_ACTIVE_EXECUTIONS {
                    return Err(err(
                        ErrorCode::ConcurrentPipelineExecutionsLimitExceededException,
                        format!(
                            "The pipeline already has {active} executions in progress, the most a {} pipeline may have",
                            mode.as_str()
                        ),
                    ));
                }
                Ok(d.start(request))
            })
            .await?;
        Ok(StartPipelineExecutionOutput {
            pipeline_execution_id: Some(id.into()),
        })
    }

    pub(super) async fn handle_stop_pipeline_execution(
        &self,
        _caller: &Caller,
        input: StopPipelineExecutionInput,
    ) -> Result<StopPipelineExecutionOutput, ServiceError> {
        let id = ExecutionId::from(input.pipeline_execution_id.as_str());
        self.mutate(&input.pipeline_name, |d, _| {
            d.stop(&id, input.abandon.unwrap_or(false), input.reason.clone())
        })
        .await?;
        Ok(StopPipelineExecutionOutput {
            pipeline_execution_id: Some(input.pipeline_execution_id),
        })
    }

    pub(super) async fn handle_retry_stage_execution(
        &self,
        _caller: &Caller,
        input: RetryStageExecutionInput,
    ) -> Result<RetryStageExecutionOutput, ServiceError> {
        let id = ExecutionId::from(input.pipeline_execution_id.as_str());
        self.mutate(&input.pipeline_name, |d, _| {
            stage_position(d.state, &input.stage_name)?;
            d.retry(&id, &input.stage_name, input.retry_mode)
        })
        .await?;
        Ok(RetryStageExecutionOutput {
            pipeline_execution_id: Some(input.pipeline_execution_id),
        })
    }

    pub(super) async fn handle_enable_stage_transition(
        &self,
        caller: &Caller,
        input: EnableStageTransitionInput,
    ) -> Result<(), ServiceError> {
        self.set_transition(
            caller,
            &input.pipeline_name,
            &input.stage_name,
            input.transition_type,
            None,
        )
        .await
    }

    pub(super) async fn handle_disable_stage_transition(
        &self,
        caller: &Caller,
        input: DisableStageTransitionInput,
    ) -> Result<(), ServiceError> {
        self.set_transition(
            caller,
            &input.pipeline_name,
            &input.stage_name,
            input.transition_type,
            Some(input.reason),
        )
        .await
    }

    async fn set_transition(
        &self,
        caller: &Caller,
        pipeline: &str,
        stage: &str,
        kind: StageTransitionType,
        disabled_reason: Option<String>,
    ) -> Result<(), ServiceError> {
        self.mutate(pipeline, |d, _| {
            d.set_transition(stage, kind, caller.arn(), disabled_reason.clone())
        })
        .await
    }
}
