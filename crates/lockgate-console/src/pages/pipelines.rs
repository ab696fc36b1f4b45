//! All pipelines, a page at a time: each with its latest execution's status, source revision
//! and time; pipelines waiting for an approval stand out and come first. The list can be
//! searched by name and filtered by status; each page is one index scan in the engine
//! (`PipelineService::pipeline_listing`), so it costs the page, not the installation.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lockgate_engine::service::listing::{ListingQuery, ListingRow};
use lockgate_shapes::{
    CodePipelineService, ListPipelineExecutionsInput, PipelineExecutionSummary, ServiceError,
};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::SignedIn;
use crate::markup::{self, seg, status, time, Page};
use crate::pages::service_error_page;
use crate::Console;

/// Rows on one page.
pub const PAGE_SIZE: usize = 50;

/// The statuses the list can be filtered by (the latest execution's), with their words.
const FILTERS: &[(&str, &str)] = &[
    ("", "All"),
    ("awaiting", "Waiting for approval"),
    ("InProgress", "In progress"),
    ("Succeeded", "Succeeded"),
    ("Failed", "Failed"),
    ("Stopped", "Stopped"),
    ("Superseded", "Superseded"),
    ("None", "Never run"),
];

/// The list's query string: search text, status filter and the page's token.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    next: Option<String>,
}

impl ListQuery {
    /// The query string of this search and filter at page `next`.
    fn href(&self, next: Option<&str>) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            url.append_pair("q", &self.q);
        }
        if !self.status.is_empty() {
            url.append_pair("status", &self.status);
        }
        if let Some(n) = next {
            url.append_pair("next", n);
        }
        let query = url.finish();
        if query.is_empty() {
            "/console/pipelines".to_string()
        } else {
            format!("/console/pipelines?{query}")
        }
    }
}

/// One row of the list.
struct Row {
    name: String,
    latest: Option<PipelineExecutionSummary>,
    awaiting: Vec<String>,
}

async fn row(console: &Console, user: &SignedIn, listed: ListingRow) -> Option<Row> {
    // A pipeline deleted while the page is built is simply left out.
    let view = console
        .service
        .pipeline_state_view(&listed.name)
        .await
        .ok()?;
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
            &user.caller(),
            ListPipelineExecutionsInput {
                pipeline_name: listed.name.clone(),
                max_results: Some(1),
                ..Default::default()
            },
        )
        .await
        .ok()
        .and_then(|o| o.pipeline_execution_summaries)
        .and_then(|v| v.into_iter().next());
    Some(Row {
        name: listed.name,
        latest,
        awaiting,
    })
}

/// The rows of one page and the next page's token.
async fn page(
    console: &Console,
    user: &SignedIn,
    q: &ListQuery,
) -> Result<(Vec<Row>, Option<String>), ServiceError> {
    let listing = console
        .service
        .pipeline_listing(ListingQuery {
            search: Some(q.q.trim().to_string()).filter(|s| !s.is_empty()),
            status: Some(q.status.clone()).filter(|s| !s.is_empty() && s != "awaiting"),
            awaiting_only: q.status == "awaiting",
            next_token: q.next.clone(),
            limit: PAGE_SIZE,
        })
        .await?;
    let mut rows = Vec::with_capacity(listing.rows.len());
    for listed in listing.rows {
        if let Some(r) = row(console, user, listed).await {
            rows.push(r);
        }
    }
    Ok((rows, listing.next_token))
}

/// The search and filter form.
fn search_form(q: &ListQuery) -> Markup {
    html! {
        form.list-filter method="get" action="/console/pipelines" role="search" {
            label for="pipeline-search" { "Name contains" }
            input #pipeline-search type="search" name="q" value=(q.q) autocomplete="off";
            label for="pipeline-status" { "Status" }
            select #pipeline-status name="status" {
                @for (value, words) in FILTERS {
                    option value=(value) selected[q.status == *value] { (words) }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

/// `GET /console/pipelines`.
pub async fn list(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let (rows, next) = match page(&console, &user, &q).await {
        Ok(r) => r,
        Err(e) => return service_error_page(&user, &e),
    };
    let waiting = match console.service.awaiting_count().await {
        Ok(c) => c,
        Err(e) => return service_error_page(&user, &e),
    };
    let filtered = !q.q.trim().is_empty() || !q.status.is_empty();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let events = format!(
        "/console/events?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("names", &names.join(","))
            .finish()
    );
    let body = html! {
        div.page-head { h1 { "Pipelines" } }
        (search_form(&q))
        div #live {
            @if waiting.count > 0 {
                p.alert.alert-attention role="status" {
                    @if waiting.at_least { "More than " }
                    (waiting.count) @if waiting.count == 1 && !waiting.at_least { " pipeline is" } @else { " pipelines are" } " waiting for approval."
                }
            }
            @if rows.is_empty() && q.next.is_none() && !filtered {
                p { "No pipelines yet. Create one with " code { "aws codepipeline create-pipeline" } "." }
            } @else if rows.is_empty() {
                p data-testid="no-match" { "No pipelines match." }
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
            nav.pager aria-label="Pages" {
                @if q.next.is_some() {
                    a href=(q.href(None)) { "First page" }
                }
                @if let Some(n) = &next {
                    " " a rel="next" href=(q.href(Some(n))) { "Next page" }
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
                live_events: Some(events),
                live_page: Some(q.href(q.next.as_deref())),
                live_poll_ms: None,
            },
            body,
        ),
    )
}
