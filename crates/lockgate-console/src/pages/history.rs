//! Execution history: a pipeline's executions (status, trigger, source revision, start and
//! end), and one execution's action executions with who approved or rejected them, and when.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lockgate_shapes::{
    ActionExecutionDetail, ActionExecutionFilter, CodePipelineService, GetPipelineExecutionInput,
    ListActionExecutionsInput, ListPipelineExecutionsInput, ServiceError,
};
use maud::html;
use serde::Deserialize;

use crate::auth::SignedIn;
use crate::markup::{self, external_link, seg, status, time, user_name, Page};
use crate::pages::service_error_page;
use crate::Console;

/// Executions shown per page of history.
const PAGE_SIZE: i32 = 50;

/// The history page's query: where the page starts.
#[derive(Deserialize)]
pub struct HistoryQuery {
    next: Option<String>,
}

/// `GET /console/pipelines/{pipeline}/executions`.
pub async fn executions(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path(pipeline): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let out = match console
        .service
        .list_pipeline_executions(
            &user.caller(),
            ListPipelineExecutionsInput {
                pipeline_name: pipeline.clone(),
                max_results: Some(PAGE_SIZE),
                next_token: q.next.clone(),
                ..Default::default()
            },
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return service_error_page(&user, &e),
    };
    let base = format!("/console/pipelines/{}", seg(&pipeline));
    let body = html! {
        div.page-head {
            div {
                p.crumbs { a href="/console/pipelines" { "Pipelines" } " / " a href=(base) { (pipeline) } " / " }
                h1 { "Execution history" }
            }
        }
        div #live {
            @let list = out.pipeline_execution_summaries.clone().unwrap_or_default();
            @if list.is_empty() {
                p { "No executions yet." }
            } @else {
                div.table-wrap {
                    table #executions {
                        thead { tr { th { "Execution" } th { "Status" } th { "Trigger" } th { "Source revision" } th { "Started" } th { "Last change" } } }
                        tbody {
                            @for e in &list {
                                @let id = e.pipeline_execution_id.clone().unwrap_or_default();
                                tr data-execution-id=(id) {
                                    td { a href=(format!("{base}/executions/{}", seg(&id))) { code { (id) } } }
                                    td { (status(e.status.map_or("InProgress", |s| s.as_str()), "execution-status"))
                                        @if let Some(s) = &e.status_summary { div.summary { (s) } } }
                                    td {
                                        @if let Some(t) = &e.trigger {
                                            (t.trigger_type.map_or("", |t| t.as_str()))
                                            @if let Some(d) = &t.trigger_detail { div.muted { (user_name(d)) } }
                                        }
                                    }
                                    td {
                                        @for rev in e.source_revisions.iter().flatten() {
                                            div { (rev.action_name) ": " code { (rev.revision_id.as_deref().unwrap_or("—")) } }
                                        }
                                    }
                                    td { (time(e.start_time)) }
                                    td { (time(e.last_update_time)) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(t) = &out.next_token {
                p { a href=(format!("{base}/executions?next={}", seg(t))) { "Older executions" } }
            }
        }
    };
    markup::respond(
        StatusCode::OK,
        markup::layout(
            Page {
                title: "Execution history",
                user: Some(&user),
                live_events: q
                    .next
                    .is_none()
                    .then(|| format!("/console/events?pipeline={}", seg(&pipeline))),
                live_page: Some(format!("{base}/executions")),
                live_poll_ms: None,
            },
            body,
        ),
    )
}

/// Every action execution of one execution (ListActionExecutions, page by page).
pub async fn action_executions(
    console: &Console,
    caller: &lockgate_model::Caller,
    pipeline: &str,
    execution: &str,
) -> Result<Vec<ActionExecutionDetail>, ServiceError> {
    let mut details = Vec::new();
    let mut next_token = None;
    loop {
        let page = console
            .service
            .list_action_executions(
                caller,
                ListActionExecutionsInput {
                    pipeline_name: pipeline.to_string(),
                    filter: Some(ActionExecutionFilter {
                        pipeline_execution_id: Some(execution.to_string()),
                        ..Default::default()
                    }),
                    max_results: Some(100),
                    next_token,
                },
            )
            .await?;
        details.extend(page.action_execution_details.unwrap_or_default());
        match page.next_token {
            Some(t) => next_token = Some(t),
            None => return Ok(details),
        }
    }
}

/// `GET /console/pipelines/{pipeline}/executions/{execution}`.
pub async fn execution(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path((pipeline, execution)): Path<(String, String)>,
) -> Response {
    let caller = user.caller();
    let summary = match console
        .service
        .get_pipeline_execution(
            &caller,
            GetPipelineExecutionInput {
                pipeline_name: pipeline.clone(),
                pipeline_execution_id: execution.clone(),
            },
        )
        .await
    {
        Ok(o) => o.pipeline_execution.unwrap_or_default(),
        Err(e) => return service_error_page(&user, &e),
    };
    let mut details = match action_executions(&console, &caller, &pipeline, &execution).await {
        Ok(details) => details,
        Err(e) => return service_error_page(&user, &e),
    };
    details.sort_by_key(|d| d.start_time.map(|t| t.0));
    let base = format!("/console/pipelines/{}", seg(&pipeline));
    let body = html! {
        div.page-head {
            div {
                p.crumbs {
                    a href="/console/pipelines" { "Pipelines" } " / " a href=(base) { (pipeline) } " / "
                    a href=(format!("{base}/executions")) { "History" } " / "
                }
                h1 { "Execution " code { (execution) } }
            }
        }
        div #live {
            p {
                (status(summary.status.map_or("InProgress", |s| s.as_str()), "execution-status"))
                @if let Some(s) = &summary.status_summary { " " span.summary { (s) } }
                @if let Some(t) = &summary.trigger {
                    " · triggered by " (t.trigger_type.map_or("", |t| t.as_str()))
                    @if let Some(d) = &t.trigger_detail { " (" (user_name(d)) ")" }
                }
            }
            @for rev in summary.artifact_revisions.iter().flatten() {
                p.muted { (rev.name.as_deref().unwrap_or("")) ": " code { (rev.revision_id.as_deref().unwrap_or("—")) }
                    @if let Some(s) = &rev.revision_summary { " " (s) } }
            }
            div.table-wrap {
                table #action-executions {
                    thead { tr { th { "Stage" } th { "Action" } th { "Status" } th { "Summary" } th { "Updated by" } th { "Started" } th { "Last change" } th { "Error" } } }
                    tbody {
                        @for d in &details {
                            @let out = d.output.as_ref().and_then(|o| o.execution_result.as_ref());
                            tr data-action-execution=(d.action_execution_id.as_deref().unwrap_or("")) {
                                td { (d.stage_name.as_deref().unwrap_or("")) }
                                td { (d.action_name.as_deref().unwrap_or("")) }
                                td { (status(d.status.map_or("InProgress", |s| s.as_str()), "action-status")) }
                                td data-testid="action-summary" { (out.and_then(|o| o.external_execution_summary.as_deref()).unwrap_or("")) }
                                td data-testid="updated-by" {
                                    @if let Some(by) = &d.updated_by { strong { (user_name(by)) } div.muted { (by) } }
                                }
                                td { (time(d.start_time)) }
                                td { (time(d.last_update_time)) }
                                td {
                                    @if let Some(err) = out.and_then(|o| o.error_details.as_ref()) {
                                        (err.code.as_deref().unwrap_or("")) ": " (err.message.as_deref().unwrap_or(""))
                                    }
                                    @if let Some(url) = out.and_then(|o| o.external_execution_url.as_deref()) {
                                        " " (external_link(url, "Details"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    markup::respond(
        StatusCode::OK,
        markup::layout(
            Page {
                title: "Execution",
                user: Some(&user),
                live_events: Some(format!("/console/events?pipeline={}", seg(&pipeline))),
                live_page: Some(format!("{base}/executions/{}", seg(&execution))),
                live_poll_ms: None,
            },
            body,
        ),
    )
}
