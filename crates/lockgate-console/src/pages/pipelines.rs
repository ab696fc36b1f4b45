//! All pipelines: each with its latest execution's status, source revision and time; pipelines
//! waiting for an approval stand out and come first.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lockgate_shapes::{
    CodePipelineService, ListPipelineExecutionsInput, ListPipelinesInput, PipelineExecutionSummary,
    ServiceError,
};
use maud::html;

use crate::auth::SignedIn;
use crate::markup::{self, seg, status, time, Page};
use crate::pages::service_error_page;
use crate::Console;

/// One row of the list.
struct Row {
    name: String,
    latest: Option<PipelineExecutionSummary>,
    awaiting: Vec<String>,
}

async fn rows(console: &Console, user: &SignedIn) -> Result<Vec<Row>, ServiceError> {
    let caller = user.caller();
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let page = console
            .service
            .list_pipelines(
                &caller,
                ListPipelinesInput {
                    next_token,
                    max_results: Some(1000),
                },
            )
            .await?;
        names.extend(
            page.pipelines
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.name),
        );
        match page.next_token {
            Some(t) => next_token = Some(t),
            None => break,
        }
    }
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        // A pipeline deleted while the list is built is simply left out.
        let Ok(view) = console.service.pipeline_state_view(&name) else {
            continue;
        };
        let awaiting = view
            .stage_states
            .iter()
            .flatten()
            .flat_map(|s| s.action_states.iter().flatten())
            .filter(|a| {
                a.latest_execution.as_ref().is_some_and(|l| {
                    l.token.is_some() && l.status.map(|s| s.as_str()) == Some("InProgress")
                })
            })
            .filter_map(|a| a.action_name.clone())
            .collect();
        let latest = console
            .service
            .list_pipeline_executions(
                &caller,
                ListPipelineExecutionsInput {
                    pipeline_name: name.clone(),
                    max_results: Some(1),
                    ..Default::default()
                },
            )
            .await
            .ok()
            .and_then(|o| o.pipeline_execution_summaries)
            .and_then(|v| v.into_iter().next());
        rows.push(Row {
            name,
            latest,
            awaiting,
        });
    }
    // Pipelines waiting for someone come first; the order is otherwise by name.
    rows.sort_by_key(|r| r.awaiting.is_empty());
    Ok(rows)
}

/// `GET /console/pipelines`.
pub async fn list(State(console): State<Arc<Console>>, user: SignedIn) -> Response {
    let rows = match rows(&console, &user).await {
        Ok(r) => r,
        Err(e) => return service_error_page(&user, &e),
    };
    let waiting = rows.iter().filter(|r| !r.awaiting.is_empty()).count();
    let body = html! {
        div.page-head { h1 { "Pipelines" } }
        div #live {
            @if waiting > 0 {
                p.alert.alert-attention role="status" {
                    (waiting) @if waiting == 1 { " pipeline is" } @else { " pipelines are" } " waiting for approval."
                }
            }
            @if rows.is_empty() {
                p { "No pipelines yet. Create one with " code { "aws codepipeline create-pipeline" } "." }
            } @else {
                div.table-wrap {
                    table #pipelines {
                        thead { tr { th { "Name" } th { "Latest execution" } th { "Source revision" } th { "Started" } } }
                        tbody {
                            @for r in &rows {
                                tr.awaiting-approval[!r.awaiting.is_empty()] data-pipeline=(r.name) {
                                    td {
                                        a href=(format!("/console/pipelines/{}", seg(&r.name))) { (r.name) }
                                        @if !r.awaiting.is_empty() {
                                            " " span.badge-attention { "Waiting for approval" }
                                            @for a in &r.awaiting { " " span.muted { (a) } }
                                        }
                                    }
                                    @match &r.latest {
                                        Some(e) => {
                                            td { (status(e.status.map_or("InProgress", |s| s.as_str()), "latest-status")) }
                                            td {
                                                @for rev in e.source_revisions.iter().flatten() {
                                                    div { code { (rev.revision_id.as_deref().unwrap_or("—")) }
                                                        @if let Some(s) = &rev.revision_summary { " " span.summary { (s) } } }
                                                }
                                            }
                                            td { (time(e.start_time)) }
                                        }
                                        None => { td data-testid="latest-status" { "No executions" } td { "—" } td { "—" } }
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
                title: "Pipelines",
                user: Some(&user),
                live_events: Some("/console/events".into()),
                live_page: Some("/console/pipelines".into()),
            },
            body,
        ),
    )
}
