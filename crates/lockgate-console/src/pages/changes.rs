//! The pipeline page's other changes: Release change (StartPipelineExecution), Stop execution
//! (StopPipelineExecution) and enabling or disabling a stage's inbound transition, each through
//! the same operation the API serves, as the signed-in user.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use lockgate_shapes::{
    CodePipelineService, DisableStageTransitionInput, EnableStageTransitionInput, Operation,
    ServiceError, StageTransitionType, StartPipelineExecutionInput, StopPipelineExecutionInput,
};
use serde::Deserialize;

use crate::auth::{see_other, SignedIn};
use crate::call::checked;
use crate::markup::seg;
use crate::pages::pipeline::{render, Focus};
use crate::pages::status_of;
use crate::Console;

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct PlainForm {
    csrf_token: Option<String>,
}

async fn after(
    console: &Console,
    user: &SignedIn,
    pipeline: &str,
    result: Result<(), ServiceError>,
    done: &str,
) -> Response {
    match result {
        Ok(()) => see_other(&format!("/console/pipelines/{}?done={done}", seg(pipeline))),
        Err(e) => {
            let focus = Focus {
                notice: Some((format!("{} Nothing was changed.", e.message), true)),
                ..Focus::default()
            };
            render(console, user, pipeline, focus, status_of(&e)).await
        }
    }
}

/// `POST /console/pipelines/{pipeline}/release`: starts an execution.
pub async fn release(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path(pipeline): Path<String>,
    Form(form): Form<PlainForm>,
) -> Response {
    if let Err(r) = user.check_csrf(form.csrf_token.as_deref()) {
        return r;
    }
    let input = StartPipelineExecutionInput {
        name: pipeline.clone(),
        client_request_token: Some(crate::csrf::random_token()),
        ..Default::default()
    };
    let result = match checked(Operation::StartPipelineExecution, input) {
        Ok(i) => console
            .service
            .start_pipeline_execution(&user.caller(), i)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    after(&console, &user, &pipeline, result, "released").await
}

/// The Stop execution dialog's fields.
#[derive(Deserialize)]
pub struct StopForm {
    csrf_token: Option<String>,
    #[serde(default)]
    execution_id: String,
    mode: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /console/pipelines/{pipeline}/stop`: stops (or abandons) an execution.
pub async fn stop(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path(pipeline): Path<String>,
    Form(form): Form<StopForm>,
) -> Response {
    if let Err(r) = user.check_csrf(form.csrf_token.as_deref()) {
        return r;
    }
    let reason = form.reason.trim();
    let input = StopPipelineExecutionInput {
        pipeline_name: pipeline.clone(),
        pipeline_execution_id: form.execution_id,
        abandon: Some(form.mode.as_deref() == Some("abandon")),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
    };
    let result = match checked(Operation::StopPipelineExecution, input) {
        Ok(i) => console
            .service
            .stop_pipeline_execution(&user.caller(), i)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    after(&console, &user, &pipeline, result, "stopped").await
}

/// The transition forms' fields.
#[derive(Deserialize)]
pub struct TransitionForm {
    csrf_token: Option<String>,
    enable: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /console/pipelines/{pipeline}/stages/{stage}/transition`: enables or disables the
/// stage's inbound transition.
pub async fn transition(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path((pipeline, stage)): Path<(String, String)>,
    Form(form): Form<TransitionForm>,
) -> Response {
    if let Err(r) = user.check_csrf(form.csrf_token.as_deref()) {
        return r;
    }
    let caller = user.caller();
    let (result, done) = if form.enable.as_deref() == Some("true") {
        let input = EnableStageTransitionInput {
            pipeline_name: pipeline.clone(),
            stage_name: stage,
            transition_type: StageTransitionType::Inbound,
        };
        let r = match checked(Operation::EnableStageTransition, input) {
            Ok(i) => console.service.enable_stage_transition(&caller, i).await,
            Err(e) => Err(e),
        };
        (r, "transition-enabled")
    } else {
        let input = DisableStageTransitionInput {
            pipeline_name: pipeline.clone(),
            stage_name: stage,
            transition_type: StageTransitionType::Inbound,
            reason: form.reason.trim().to_string(),
        };
        let r = match checked(Operation::DisableStageTransition, input) {
            Ok(i) => console.service.disable_stage_transition(&caller, i).await,
            Err(e) => Err(e),
        };
        (r, "transition-disabled")
    };
    after(&console, &user, &pipeline, result, done).await
}
