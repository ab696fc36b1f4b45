//! What clients read: the service model's output shapes, built from the engine's state.
//!
//! These functions are pure and cheap enough to run once per commit; the service caches the
//! results it serves most (GetPipelineState) so reads cost no work beyond a copy.

use std::collections::BTreeMap;

use lockgate_shapes::{
    ActionExecution, ActionExecutionDetail, ActionExecutionInput, ActionExecutionOutput,
    ActionExecutionResult, ActionExecutionStatus, ActionRevision, ActionState, ArtifactDetail,
    ArtifactRevision, ErrorDetails, ExecutionMode, ExecutionTrigger, ExecutionType,
    GetPipelineStateOutput, Job, PipelineDeclaration, PipelineExecution, PipelineExecutionSummary,
    PipelineMetadata, PipelineSummary, ResolvedPipelineVariable, S3Location, SourceRevision,
    StageExecution, StageState, StopExecutionTrigger, Timestamp, TransitionState,
};

use crate::decide::{is_manual_approval, EngineConfig};
use crate::state::{
    ActionKind, ActionRun, Execution, JobRecord, PipelineEntry, PipelineState, Position,
};

fn ts(millis: i64) -> Timestamp {
    Timestamp(millis)
}

/// GetPipelineState's answer for a pipeline.
pub fn pipeline_state(state: &PipelineState) -> GetPipelineStateOutput {
    let decl = &state.entry.declaration;
    let stage_states = decl
        .stages
        .iter()
        .enumerate()
        .map(|(s, stage)| stage_state(state, s, &stage.name))
        .collect();
    GetPipelineStateOutput {
        pipeline_name: Some(decl.name.clone()),
        pipeline_version: Some(state.entry.version()),
        stage_states: Some(stage_states),
        created: Some(ts(state.entry.created)),
        updated: Some(ts(state.entry.updated)),
    }
}

/// The index of the stage named `name` in the declaration an execution runs.
fn stage_index(state: &PipelineState, e: &Execution, name: &str) -> Option<usize> {
    state
        .declaration(e.pipeline_version)
        .stages
        .iter()
        .position(|st| st.name == name)
}

/// The latest run of `stage`/`action`, as GetPipelineState shows it: from the newest execution
/// that ran the stage, its current runs first, then its earlier ones (a retried stage).
fn latest_run<'a>(state: &'a PipelineState, stage: &str, action: &str) -> Option<&'a ActionRun> {
    state.executions.iter().rev().find_map(|e| {
        let idx = stage_index(state, e, stage)?;
        let run = e.stages.get(idx)?.as_ref()?;
        run.actions
            .iter()
            .flatten()
            .chain(run.history.iter().rev())
            .find(|r| r.name == action)
    })
}

/// The configuration each action's latest run started with, its variable references resolved,
/// by (stage, action); only actions whose configuration had references are listed (for the
/// others the declared configuration is what ran). The console shows approvals with these.
pub fn resolved_configurations(
    state: &PipelineState,
) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for stage in &state.entry.declaration.stages {
        for action in &stage.actions {
            let resolved = latest_run(state, &stage.name, &action.name)
                .and_then(|r| r.resolved_configuration.clone());
            if let Some(resolved) = resolved {
                out.insert((stage.name.clone(), action.name.clone()), resolved);
            }
        }
    }
    out
}

fn stage_state(state: &PipelineState, s: usize, name: &str) -> StageState {
    let decl = &state.entry.declaration;
    let stage_decl = &decl.stages[s];
    let newest_first = || state.executions.iter().rev();

    let latest = newest_first().find_map(|e| {
        let idx = stage_index(state, e, name)?;
        let run = e.stages.get(idx)?.as_ref()?;
        Some(StageExecution {
            pipeline_execution_id: e.id.to_string(),
            status: run.status,
            r#type: Some(ExecutionType::Standard),
        })
    });
    let inbound: Vec<StageExecution> = state
        .executions
        .iter()
        .filter(|e| e.is_active())
        .filter(|e| match e.position {
            Position::Waiting(idx) => stage_index(state, e, name) == Some(idx),
            _ => false,
        })
        .map(|e| StageExecution {
            pipeline_execution_id: e.id.to_string(),
            status: lockgate_shapes::StageExecutionStatus::InProgress,
            r#type: Some(ExecutionType::Standard),
        })
        .collect();

    let transition = (s > 0).then(|| {
        let t = state.entry.transitions.get(name);
        TransitionState {
            enabled: Some(t.is_none_or(|t| t.enabled)),
            last_changed_by: t.map(|t| t.last_changed_by.clone()),
            last_changed_at: t.map(|t| ts(t.last_changed_at)),
            disabled_reason: t.and_then(|t| t.disabled_reason.clone()),
        }
    });

    let parallel = state.entry.execution_mode() == ExecutionMode::Parallel;
    let action_states = stage_decl
        .actions
        .iter()
        .map(|action| {
            let latest_run = latest_run(state, name, &action.name);
            let current_revision = action
                .output_artifacts
                .iter()
                .flatten()
                .next()
                .and_then(|out| {
                    newest_first().find_map(|e| {
                        let a = e.artifacts.get(&out.name)?;
                        Some(ActionRevision {
                            revision_id: a.revision.clone()?,
                            revision_change_id: a.change_identifier.clone().unwrap_or_default(),
                            created: ts(a.created.unwrap_or(e.started)),
                        })
                    })
                })
                .filter(|_| action.action_type_id.category.as_str() == "Source");
            let entity_url = if is_manual_approval(&action.action_type_id) {
                // The latest run's link, references resolved, or else the declared one.
                match latest_run {
                    Some(run) => run.configuration(action),
                    None => action.configuration.as_ref(),
                }
                .and_then(|c| c.get("ExternalEntityLink"))
                .cloned()
            } else {
                None
            };
            ActionState {
                action_name: Some(action.name.clone()),
                current_revision,
                latest_execution: latest_run.map(|r| action_execution(r, parallel)),
                entity_url,
                revision_url: None,
            }
        })
        .collect();

    StageState {
        stage_name: Some(name.to_string()),
        inbound_execution: inbound.last().cloned(),
        inbound_executions: (!inbound.is_empty()).then_some(inbound),
        inbound_transition_state: transition,
        action_states: Some(action_states),
        latest_execution: latest,
        before_entry_condition_state: None,
        on_success_condition_state: None,
        on_failure_condition_state: None,
        retry_stage_metadata: None,
    }
}

fn error_details(run: &ActionRun) -> Option<ErrorDetails> {
    run.error.as_ref().map(|(code, message)| ErrorDetails {
        code: Some(code.clone()),
        message: Some(message.clone()),
    })
}

/// An action execution as GetPipelineState shows it. The approval token is shown only while
/// the approval waits, and never in PARALLEL mode, where approvers use the external execution id.
fn action_execution(run: &ActionRun, parallel: bool) -> ActionExecution {
    let show_token = run.kind == ActionKind::Approval
        && run.status == ActionExecutionStatus::InProgress
        && !parallel;
    ActionExecution {
        action_execution_id: Some(run.action_execution_id.to_string()),
        status: Some(run.status),
        summary: run.summary.clone(),
        last_status_change: Some(ts(run.last_change)),
        token: if show_token {
            run.token.clone().map(String::from)
        } else {
            None
        },
        last_updated_by: run.last_updated_by.clone(),
        external_execution_id: run.external_execution_id.clone(),
        external_execution_url: run.external_execution_url.clone(),
        percent_complete: run.percent_complete,
        error_details: error_details(run),
        log_stream_arn: None,
    }
}

fn trigger(e: &Execution) -> ExecutionTrigger {
    ExecutionTrigger {
        trigger_type: Some(e.trigger_type),
        trigger_detail: Some(e.trigger_detail.clone()),
    }
}

/// GetPipelineExecution's answer for one execution.
pub fn pipeline_execution(state: &PipelineState, e: &Execution) -> PipelineExecution {
    let artifact_revisions = e
        .artifacts
        .iter()
        .filter(|(_, a)| a.revision.is_some())
        .map(|(name, a)| ArtifactRevision {
            name: Some(name.clone()),
            revision_id: a.revision.clone(),
            revision_change_identifier: a.change_identifier.clone(),
            revision_summary: a.revision_summary.clone(),
            created: a.created.map(ts),
            revision_url: None,
        })
        .collect();
    PipelineExecution {
        pipeline_name: Some(state.entry.declaration.name.clone()),
        pipeline_version: Some(e.pipeline_version),
        pipeline_execution_id: Some(e.id.to_string()),
        status: Some(e.status),
        status_summary: e.status_summary.clone(),
        artifact_revisions: Some(artifact_revisions),
        variables: (!e.variables.is_empty()).then(|| {
            e.variables
                .iter()
                .map(|(k, v)| ResolvedPipelineVariable {
                    name: Some(k.clone()),
                    resolved_value: Some(v.clone()),
                })
                .collect()
        }),
        trigger: Some(trigger(e)),
        execution_mode: Some(e.mode),
        execution_type: Some(ExecutionType::Standard),
        rollback_metadata: None,
    }
}

/// One entry of ListPipelineExecutions.
pub fn execution_summary(state: &PipelineState, e: &Execution) -> PipelineExecutionSummary {
    let decl = state.declaration(e.pipeline_version);
    let source_revisions: Vec<SourceRevision> = decl
        .stages
        .first()
        .into_iter()
        .flat_map(|st| st.actions.iter())
        .filter_map(|action| {
            let out = action.output_artifacts.iter().flatten().next()?;
            let a = e.artifacts.get(&out.name)?;
            Some(SourceRevision {
                action_name: action.name.clone(),
                revision_id: a.revision.clone(),
                revision_summary: a.revision_summary.clone(),
                revision_url: None,
            })
        })
        .filter(|r| r.revision_id.is_some())
        .collect();
    PipelineExecutionSummary {
        pipeline_execution_id: Some(e.id.to_string()),
        status: Some(e.status),
        status_summary: e.status_summary.clone(),
        start_time: Some(ts(e.started)),
        last_update_time: Some(ts(e.updated)),
        source_revisions: Some(source_revisions),
        trigger: Some(trigger(e)),
        stop_trigger: e.stop_reason.as_ref().map(|r| StopExecutionTrigger {
            reason: Some(r.clone()),
        }),
        execution_mode: Some(e.mode),
        execution_type: Some(ExecutionType::Standard),
        rollback_metadata: None,
    }
}

/// Every action execution of an execution, newest first, as ListActionExecutions shows them.
pub fn action_execution_details(
    state: &PipelineState,
    e: &Execution,
    cfg: &EngineConfig,
) -> Vec<ActionExecutionDetail> {
    let decl = state.declaration(e.pipeline_version);
    let mut details: Vec<ActionExecutionDetail> = e
        .action_runs()
        .filter_map(|(s, run)| {
            let stage = decl.stages.get(s)?;
            let action = stage.actions.get(run.action_index)?;
            Some(action_detail(&decl, e, &stage.name, action, run, cfg))
        })
        .collect();
    details.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| b.action_execution_id.cmp(&a.action_execution_id))
    });
    details
}

fn artifact_details(e: &Execution, names: impl Iterator<Item = String>) -> Vec<ArtifactDetail> {
    names
        .map(|name| {
            let loc = e.artifacts.get(&name).map(|a| S3Location {
                bucket: Some(a.bucket.clone()),
                key: Some(a.object_key.clone()),
            });
            ArtifactDetail {
                name: Some(name),
                s3location: loc,
            }
        })
        .collect()
}

fn action_detail(
    decl: &PipelineDeclaration,
    e: &Execution,
    stage_name: &str,
    action: &lockgate_shapes::ActionDeclaration,
    run: &ActionRun,
    cfg: &EngineConfig,
) -> ActionExecutionDetail {
    let inputs = artifact_details(
        e,
        action
            .input_artifacts
            .iter()
            .flatten()
            .map(|a| a.name.clone()),
    );
    let outputs = artifact_details(
        e,
        action
            .output_artifacts
            .iter()
            .flatten()
            .map(|a| a.name.clone()),
    );
    let finished = run.status != ActionExecutionStatus::InProgress;
    ActionExecutionDetail {
        pipeline_execution_id: Some(e.id.to_string()),
        action_execution_id: Some(run.action_execution_id.to_string()),
        pipeline_version: Some(e.pipeline_version),
        stage_name: Some(stage_name.to_string()),
        action_name: Some(run.name.clone()),
        start_time: Some(ts(run.started)),
        last_update_time: Some(ts(run.last_change)),
        updated_by: run.last_updated_by.clone(),
        status: Some(run.status),
        input: Some(ActionExecutionInput {
            action_type_id: Some(action.action_type_id.clone()),
            configuration: action.configuration.clone(),
            resolved_configuration: run.configuration(action).cloned(),
            role_arn: action
                .role_arn
                .clone()
                .or_else(|| Some(decl.role_arn.clone())),
            region: Some(action.region.clone().unwrap_or_else(|| cfg.region.clone())),
            input_artifacts: Some(inputs),
            namespace: action.namespace.clone(),
        }),
        output: Some(ActionExecutionOutput {
            output_artifacts: Some(if finished { outputs } else { Vec::new() }),
            execution_result: Some(ActionExecutionResult {
                external_execution_id: run.external_execution_id.clone(),
                external_execution_summary: run.summary.clone(),
                external_execution_url: run.external_execution_url.clone(),
                error_details: error_details(run),
                log_stream_arn: None,
            }),
            output_variables: (!run.output_variables.is_empty())
                .then(|| run.output_variables.clone()),
        }),
    }
}

/// One entry of ListPipelines.
pub fn pipeline_summary(entry: &PipelineEntry) -> PipelineSummary {
    PipelineSummary {
        name: Some(entry.declaration.name.clone()),
        version: Some(entry.version()),
        pipeline_type: entry.declaration.pipeline_type,
        execution_mode: Some(entry.execution_mode()),
        created: Some(ts(entry.created)),
        updated: Some(ts(entry.updated)),
    }
}

/// GetPipeline's metadata.
pub fn pipeline_metadata(entry: &PipelineEntry, cfg: &EngineConfig) -> PipelineMetadata {
    PipelineMetadata {
        pipeline_arn: Some(cfg.pipeline_arn(&entry.declaration.name)),
        created: Some(ts(entry.created)),
        updated: Some(ts(entry.updated)),
        polling_disabled_at: None,
    }
}

/// A job as PollForJobs hands it to a worker.
pub fn job(job: &JobRecord, cfg: &EngineConfig) -> Job {
    Job {
        id: Some(job.id.to_string()),
        data: Some(job.data.clone()),
        nonce: Some(job.nonce.clone()),
        account_id: Some(cfg.account_id.clone()),
    }
}

/// Variables as a map, for pipeline variable resolution.
pub fn variables_map(vars: &[lockgate_shapes::PipelineVariable]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect()
}
