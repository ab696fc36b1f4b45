//! The console's pages and forms, one module each:
//! - `pipelines`: all pipelines;
//! - `pipeline`: one pipeline's stages, actions and transitions, and the review dialog;
//! - `review`: the Approve/Reject form;
//! - `changes`: Release change, Stop execution, stage transitions;
//! - `history`: execution history and one execution's action executions;
//! - `logs`: the log of a locally run action (live while it runs);
//! - `notifications`: pending and failed approval notifications.

use axum::http::StatusCode;
use axum::response::Response;
use lockgate_shapes::{ErrorCode, ServiceError};

use crate::auth::SignedIn;
use crate::markup;

pub mod changes;
pub mod history;
pub mod logs;
pub mod notifications;
pub mod pipeline;
pub mod pipelines;
pub mod review;

/// The HTTP status a service error is shown with.
pub fn status_of(e: &ServiceError) -> StatusCode {
    StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// A page for an error a read operation answered (a missing pipeline, most often).
pub fn service_error_page(user: &SignedIn, e: &ServiceError) -> Response {
    let title = match e.code {
        ErrorCode::PipelineNotFoundException => "Pipeline not found",
        ErrorCode::PipelineExecutionNotFoundException => "Execution not found",
        _ => "Something went wrong",
    };
    markup::error_page(status_of(e), Some(user), title, &e.message)
}
