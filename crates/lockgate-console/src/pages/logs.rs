//! The log of one action execution that Lockgate's own executors ran (Commands, CodeBuild, git
//! sources, S3 deploys): its output, timestamped, read from the artifact store where the worker
//! keeps it, re-read every two seconds while the action runs. The action's
//! `externalExecutionUrl` points here.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use lockgate_artifacts::ArtifactLocation;
use lockgate_model::artifact_names::{artifact_bucket, log_key};
use lockgate_shapes::{ActionExecutionStatus, CodePipelineService, GetPipelineInput};
use maud::html;

use crate::auth::SignedIn;
use crate::markup::{self, seg, status, time, Page};
use crate::pages::history::action_executions;
use crate::pages::service_error_page;
use crate::Console;

/// How often an open log page of a running action is re-read.
const POLL_MS: u32 = 2000;

/// `GET /console/pipelines/{pipeline}/executions/{execution}/actions/{action}/log`.
pub async fn show(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path((pipeline, execution, action_execution)): Path<(String, String, String)>,
) -> Response {
    let caller = user.caller();
    let detail = match action_executions(&console, &caller, &pipeline, &execution).await {
        Ok(details) => details
            .into_iter()
            .find(|d| d.action_execution_id.as_deref() == Some(&action_execution)),
        Err(e) => return service_error_page(&user, &e),
    };
    let Some(detail) = detail else {
        return markup::error_page(
            StatusCode::NOT_FOUND,
            Some(&user),
            "Action execution not found",
            &format!(
                "Execution {execution} of {pipeline} has no action execution {action_execution}"
            ),
        );
    };
    let stage = detail.stage_name.clone().unwrap_or_default();
    let action = detail.action_name.clone().unwrap_or_default();
    let declaration = match console
        .service
        .get_pipeline(
            &caller,
            GetPipelineInput {
                name: pipeline.clone(),
                version: detail.pipeline_version,
            },
        )
        .await
    {
        Ok(o) => o.pipeline,
        Err(e) => return service_error_page(&user, &e),
    };
    let bucket = declaration.as_ref().and_then(|d| {
        let decl = d
            .stages
            .iter()
            .find(|s| s.name == stage)?
            .actions
            .iter()
            .find(|a| a.name == action)?;
        Some(artifact_bucket(d, decl))
    });
    let text = match (&console.artifacts, bucket) {
        (Some(store), Some(bucket)) => {
            match ArtifactLocation::new(bucket, log_key(&pipeline, &action_execution)) {
                Ok(location) => match store.get(&location).await {
                    Ok(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!("cannot read the log at {location}: {e}");
                        None
                    }
                },
                Err(_) => None,
            }
        }
        _ => None,
    };
    let running = detail.status == Some(ActionExecutionStatus::InProgress);
    let base = format!("/console/pipelines/{}", seg(&pipeline));
    let execution_page = format!("{base}/executions/{}", seg(&execution));
    let body = html! {
        div.page-head {
            div {
                p.crumbs {
                    a href="/console/pipelines" { "Pipelines" } " / " a href=(base) { (pipeline) } " / "
                    a href=(format!("{base}/executions")) { "History" } " / "
                    a href=(execution_page) { (execution) } " / "
                }
                h1 { (stage) " / " (action) ": log" }
            }
        }
        div #live {
            p {
                (status(detail.status.map_or("InProgress", |s| s.as_str()), "action-status"))
                " started " (time(detail.start_time))
                @if !running { span data-live-done="" {} }
            }
            @match &text {
                Some(text) => pre #action-log { (text) },
                None => p.muted #action-log-missing {
                    @if running { "No output yet." }
                    @else { "No log was kept for this action: it was not run by Lockgate's own executors, or its artifacts have since been deleted." }
                },
            }
        }
    };
    markup::respond(
        StatusCode::OK,
        markup::layout(
            Page {
                title: "Action log",
                user: Some(&user),
                live_events: Some(format!("/console/events?pipeline={}", seg(&pipeline))),
                live_page: Some(format!(
                    "{execution_page}/actions/{}/log",
                    seg(&action_execution)
                )),
                live_poll_ms: running.then_some(POLL_MS),
            },
            body,
        ),
    )
}
