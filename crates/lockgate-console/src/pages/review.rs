//! The review dialog's form: Approve or Reject, through the same PutApprovalResult the API
//! serves, as the signed-in user.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use lockgate_shapes::{
    ApprovalResult, ApprovalStatus, CodePipelineService, ErrorCode, Operation,
    PutApprovalResultInput,
};
use serde::Deserialize;

use crate::auth::{see_other, SignedIn};
use crate::call::checked;
use crate::markup::seg;
use crate::pages::pipeline::{render, Focus};
use crate::pages::status_of;
use crate::Console;

/// The review form's fields.
#[derive(Deserialize)]
pub struct ReviewForm {
    csrf_token: Option<String>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    comments: String,
    decision: Option<String>,
}

/// `POST /console/pipelines/{pipeline}/stages/{stage}/actions/{action}/review`.
pub async fn decide(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path((pipeline, stage, action)): Path<(String, String, String)>,
    Form(form): Form<ReviewForm>,
) -> Response {
    if let Err(r) = user.check_csrf(form.csrf_token.as_deref()) {
        return r;
    }
    let refused = |text: String, code: StatusCode, comments: String| {
        let focus = Focus {
            review: Some((stage.clone(), action.clone())),
            notice: Some((text, true)),
            comments: Some(comments),
        };
        (focus, code)
    };
    let status = match form.decision.as_deref() {
        Some("Approve") => ApprovalStatus::Approved,
        Some("Reject") => ApprovalStatus::Rejected,
        _ => {
            let (focus, code) = refused(
                "Choose Approve or Reject.".into(),
                StatusCode::BAD_REQUEST,
                form.comments,
            );
            return render(&console, &user, &pipeline, focus, code).await;
        }
    };
    let input = PutApprovalResultInput {
        pipeline_name: pipeline.clone(),
        stage_name: stage.clone(),
        action_name: action.clone(),
        result: ApprovalResult {
            summary: form.comments.clone(),
            status,
        },
        token: form.token,
    };
    let result = match checked(Operation::PutApprovalResult, input) {
        Ok(input) => {
            console
                .service
                .put_approval_result(&user.caller(), input)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            let done = match status {
                ApprovalStatus::Approved => "approved",
                ApprovalStatus::Rejected => "rejected",
            };
            tracing::info!(user = %user.user.name, pipeline, stage, action, decision = done, "approval answered in the console");
            see_other(&format!(
                "/console/pipelines/{}?done={done}",
                seg(&pipeline)
            ))
        }
        Err(e) => {
            let text = match e.code {
                ErrorCode::InvalidApprovalTokenException => format!(
                    "{action} is no longer waiting for this answer: it was answered, expired, \
                     stopped or superseded by a newer execution. Nothing was changed."
                ),
                ErrorCode::ApprovalAlreadyCompletedException => {
                    format!("{action} was already approved or rejected. Nothing was changed.")
                }
                _ => format!("{} Nothing was changed.", e.message),
            };
            let (focus, code) = refused(text, status_of(&e), form.comments);
            render(&console, &user, &pipeline, focus, code).await
        }
    }
}
