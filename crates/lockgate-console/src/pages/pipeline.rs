//! One pipeline: its latest execution, the stages in order with their actions and the
//! transitions between them, and the dialogs that change them (review, stop, disable transition).
//!
//! The part that changes as the pipeline runs is inside `#live`; the browser re-reads it when
//! the server announces a change, and everything a user types lives in dialogs outside it, so an
//! update never loses what is being typed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lockgate_model::Caller;
use lockgate_shapes::{
    ActionCategory, ActionDeclaration, ActionState, CodePipelineService, GetPipelineInput,
    ListPipelineExecutionsInput, PipelineDeclaration, PipelineExecutionStatus,
    PipelineExecutionSummary, ServiceError, StageState,
};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::SignedIn;
use crate::markup::{self, csrf_field, external_link, seg, status, time, Page};
use crate::pages::service_error_page;
use crate::Console;

/// The approval a page opens the review dialog for, and a notice to show.
#[derive(Default)]
pub struct Focus {
    /// `(stage, action)` whose review dialog is open.
    pub review: Option<(String, String)>,
    /// A notice above the page: `(text, is_error)`.
    pub notice: Option<(String, bool)>,
    /// The comments to put back in the review dialog (after a refused decision).
    pub comments: Option<String>,
}

/// The query of the pipeline page: which change just succeeded.
#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

/// The notice for a change that just succeeded (fixed texts, never echoed from the URL).
fn done_notice(done: Option<&str>) -> Option<(String, bool)> {
    let text = match done? {
        "approved" => "Approved. The execution continues.",
        "rejected" => "Rejected. The stage and its execution have failed.",
        "released" => "Release change started a new execution.",
        "stopped" => "The execution is stopping.",
        "transition-enabled" => "The transition is enabled.",
        "transition-disabled" => "The transition is disabled.",
        _ => return None,
    };
    Some((text.to_string(), false))
}

/// `GET /console/pipelines/{pipeline}`.
pub async fn show(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path(pipeline): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let focus = Focus {
        notice: done_notice(q.done.as_deref()),
        ..Focus::default()
    };
    render(&console, &user, &pipeline, focus, StatusCode::OK).await
}

/// `GET /console/pipelines/{pipeline}/stages/{stage}/actions/{action}/review`: the pipeline page
/// with that approval's review dialog open (the link notifications carry).
pub async fn review(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    Path((pipeline, stage, action)): Path<(String, String, String)>,
) -> Response {
    let focus = Focus {
        review: Some((stage, action)),
        ..Focus::default()
    };
    render(&console, &user, &pipeline, focus, StatusCode::OK).await
}

/// What the page is made from, read through the CodePipeline operations.
struct Snapshot {
    declaration: PipelineDeclaration,
    stages: Vec<StageState>,
    latest: Option<PipelineExecutionSummary>,
    /// The configuration actions' latest runs started with, variable references resolved, by
    /// (stage, action); absent for actions without references.
    resolved: BTreeMap<(String, String), BTreeMap<String, String>>,
}

async fn snapshot(
    console: &Console,
    caller: &Caller,
    name: &str,
) -> Result<Snapshot, ServiceError> {
    let declaration = console
        .service
        .get_pipeline(
            caller,
            GetPipelineInput {
                name: name.to_string(),
                version: None,
            },
        )
        .await?
        .pipeline
        .unwrap_or_default();
    let state = console.service.pipeline_state_view(name).await?;
    let latest = console
        .service
        .list_pipeline_executions(
            caller,
            ListPipelineExecutionsInput {
                pipeline_name: name.to_string(),
                max_results: Some(1),
                ..Default::default()
            },
        )
        .await?
        .pipeline_execution_summaries
        .and_then(|v| v.into_iter().next());
    let resolved = console.service.resolved_configurations(name).await?;
    Ok(Snapshot {
        declaration,
        stages: state.stage_states.clone().unwrap_or_default(),
        latest,
        resolved,
    })
}

/// Renders the pipeline page with `focus`.
pub async fn render(
    console: &Console,
    user: &SignedIn,
    name: &str,
    mut focus: Focus,
    status_code: StatusCode,
) -> Response {
    let snap = match snapshot(console, &user.caller(), name).await {
        Ok(s) => s,
        Err(e) => return service_error_page(user, &e),
    };
    let review = focus
        .review
        .as_ref()
        .map(|(s, a)| review_target(&snap, s, a));
    let mut code = status_code;
    if let Some(Err(msg)) = &review {
        focus.notice.get_or_insert((msg.clone(), true));
        if code == StatusCode::OK {
            code = StatusCode::NOT_FOUND;
        }
    }
    let review = review.and_then(Result::ok);
    let path = format!("/console/pipelines/{}", seg(name));
    let body = html! {
        div.page-head {
            div {
                p.crumbs { a href="/console/pipelines" { "Pipelines" } " / " }
                h1 { (name) }
            }
            div.head-actions {
                a.button href=(format!("{path}/executions")) { "History" }
                form method="post" action=(format!("{path}/release")) {
                    (csrf_field(user))
                    button.primary type="submit" { "Release change" }
                }
            }
        }
        @if let Some((text, error)) = &focus.notice { (markup::notice(text, *error)) }
        div #live { (live_region(name, user, &snap)) }
        (review_dialog(name, user, review.as_ref(), focus.comments.as_deref()))
        (stop_dialog(name, user))
        (transition_dialog(name, user))
    };
    markup::respond(
        code,
        markup::layout(
            Page {
                title: name,
                user: Some(user),
                live_events: Some(format!("/console/events?pipeline={}", seg(name))),
                live_page: Some(path),
                live_poll_ms: None,
            },
            body,
        ),
    )
}

/// The approval a review link points at, with what the dialog shows.
pub struct ReviewTarget {
    stage: String,
    action: String,
    token: String,
    custom_data: Option<String>,
    link: Option<String>,
}

/// Finds the approval `stage`/`action` and checks it is waiting for an answer.
fn review_target(snap: &Snapshot, stage: &str, action: &str) -> Result<ReviewTarget, String> {
    let decl = snap
        .declaration
        .stages
        .iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.actions.iter().find(|a| a.name == action))
        .filter(|a| is_approval(a))
        .ok_or_else(|| format!("There is no approval action {action} in stage {stage}."))?;
    let state = action_state(snap, stage, action);
    let latest = state.and_then(|s| s.latest_execution.as_ref());
    match latest.and_then(|l| {
        l.token
            .clone()
            .filter(|_| is_in_progress(l.status.map(|s| s.as_str())))
    }) {
        Some(token) => Ok(ReviewTarget {
            stage: stage.to_string(),
            action: action.to_string(),
            token,
            custom_data: shown_config(snap, stage, decl, "CustomData"),
            link: shown_config(snap, stage, decl, "ExternalEntityLink"),
        }),
        None => Err(format!(
            "{action} is not waiting for a review (its latest status is {}).",
            latest
                .and_then(|l| l.status)
                .map_or("Didn't run", |s| markup::status_word(s.as_str()))
        )),
    }
}

fn is_in_progress(status: Option<&str>) -> bool {
    status == Some("InProgress")
}

fn is_approval(a: &ActionDeclaration) -> bool {
    a.action_type_id.category == ActionCategory::Approval
}

fn config(a: &ActionDeclaration, key: &str) -> Option<String> {
    a.configuration.as_ref().and_then(|c| c.get(key)).cloned()
}

/// A configuration value as the action's latest run started with it (variable references
/// resolved), or else as declared.
fn shown_config(snap: &Snapshot, stage: &str, a: &ActionDeclaration, key: &str) -> Option<String> {
    match snap.resolved.get(&(stage.to_string(), a.name.clone())) {
        Some(resolved) => resolved.get(key).cloned(),
        None => config(a, key),
    }
}

fn action_state<'a>(snap: &'a Snapshot, stage: &str, action: &str) -> Option<&'a ActionState> {
    snap.stages
        .iter()
        .find(|s| s.stage_name.as_deref() == Some(stage))
        .and_then(|s| s.action_states.as_ref())
        .and_then(|a| a.iter().find(|a| a.action_name.as_deref() == Some(action)))
}

/// The part of the page that follows the pipeline as it runs.
fn live_region(name: &str, user: &SignedIn, snap: &Snapshot) -> Markup {
    html! {
        (latest_execution(name, snap.latest.as_ref()))
        ol.stages {
            @for (si, stage) in snap.declaration.stages.iter().enumerate() {
                @let state = snap.stages.iter().find(|s| s.stage_name.as_deref() == Some(stage.name.as_str()));
                @if si > 0 { li.transition-item { (transition(name, user, &stage.name, state)) } }
                li {
                    section.stage data-stage=(stage.name) aria-labelledby=(format!("stage-{si}")) {
                        div.stage-head {
                            h2 #(format!("stage-{si}")) { (stage.name) }
                            @match state.and_then(|s| s.latest_execution.as_ref()) {
                                Some(e) => (status(e.status.as_str(), "stage-status")),
                                None => span.status.status-none data-testid="stage-status" { "Didn't run" },
                            }
                        }
                        @for (ai, action) in stage.actions.iter().enumerate() {
                            (action_card(name, si, ai, &stage.name, action, state, snap))
                        }
                    }
                }
            }
        }
    }
}

fn latest_execution(name: &str, latest: Option<&PipelineExecutionSummary>) -> Markup {
    html! {
        section.latest aria-label="Latest execution" {
            @match latest {
                None => p { "No execution yet. " strong { "Release change" } " starts one." },
                Some(e) => {
                    @let id = e.pipeline_execution_id.clone().unwrap_or_default();
                    @let st = e.status.map_or("InProgress", |s| s.as_str());
                    p {
                        "Latest execution "
                        a href=(format!("/console/pipelines/{}/executions/{}", seg(name), seg(&id))) { code { (id) } }
                        " " (status(st, "latest-status"))
                        " started " (time(e.start_time))
                        @if let Some(revs) = &e.source_revisions {
                            @for r in revs {
                                " · " (r.action_name) ": "
                                code { (r.revision_id.as_deref().unwrap_or("—")) }
                                @if let Some(s) = &r.revision_summary { " " span.summary { (s) } }
                            }
                        }
                    }
                    @if e.status == Some(PipelineExecutionStatus::InProgress) {
                        button type="button" data-open-dialog="stop-dialog" data-execution-id=(id) { "Stop execution" }
                    }
                }
            }
        }
    }
}

fn transition(name: &str, user: &SignedIn, stage: &str, state: Option<&StageState>) -> Markup {
    let t = state.and_then(|s| s.inbound_transition_state.as_ref());
    let enabled = t.and_then(|t| t.enabled).unwrap_or(true);
    html! {
        div.transition.disabled[!enabled] data-testid="transition" data-stage=(stage) {
            span.arrow aria-hidden="true" { "↓" }
            @if enabled {
                span { "Transition enabled" }
                button type="button" data-open-dialog="transition-dialog" data-stage=(stage)
                    data-action-url=(format!("/console/pipelines/{}/stages/{}/transition", seg(name), seg(stage))) { "Disable transition" }
            } @else {
                span {
                    "Transition disabled"
                    @if let Some(r) = t.and_then(|t| t.disabled_reason.as_deref()) { ": " span.summary { (r) } }
                    @if let Some(by) = t.and_then(|t| t.last_changed_by.as_deref()) {
                        " (by " (markup::user_name(by)) ", " (time(t.and_then(|t| t.last_changed_at))) ")"
                    }
                }
                form method="post" action=(format!("/console/pipelines/{}/stages/{}/transition", seg(name), seg(stage))) {
                    (csrf_field(user))
                    input type="hidden" name="enable" value="true";
                    button type="submit" { "Enable transition" }
                }
            }
        }
    }
}

fn action_card(
    name: &str,
    si: usize,
    ai: usize,
    stage: &str,
    action: &ActionDeclaration,
    state: Option<&StageState>,
    snap: &Snapshot,
) -> Markup {
    let astate = state.and_then(|s| s.action_states.as_ref()).and_then(|a| {
        a.iter()
            .find(|a| a.action_name.as_deref() == Some(action.name.as_str()))
    });
    let latest = astate.and_then(|a| a.latest_execution.as_ref());
    let st = latest.and_then(|l| l.status).map(|s| s.as_str());
    let approval = is_approval(action);
    let custom_data = shown_config(snap, stage, action, "CustomData");
    let link = shown_config(snap, stage, action, "ExternalEntityLink");
    let tip = format!("tip-{si}-{ai}");
    html! {
        div.action data-action=(action.name) {
            div.action-head {
                span.action-name { (action.name) }
                @if approval {
                    span.info {
                        button.info-button type="button" aria-label="Information" aria-describedby=(tip) { "i" }
                        span.tooltip role="tooltip" id=(tip) {
                            span.tip-label { "Comments" }
                            span.tip-value data-testid="approval-comments" { (custom_data.as_deref().unwrap_or("—")) }
                            span.tip-label { "URL for review" }
                            span.tip-value data-testid="approval-url" { (link.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
            div.provider {
                @if approval {
                    @match link.as_deref() {
                        Some(url) => (external_link(url, "Manual approval")),
                        None => span { "Manual approval" },
                    }
                } @else {
                    (action.action_type_id.provider) " (" (action.action_type_id.owner.as_str()) ")"
                }
            }
            @match st {
                Some(s) => (status(s, "action-status")),
                None => span.status.status-none data-testid="action-status" { "Didn't run" },
            }
            @if let Some(l) = latest {
                div.meta {
                    span data-testid="action-last-change" { (time(l.last_status_change)) }
                }
                @if let Some(s) = l.summary.as_deref().filter(|s| !s.is_empty()) {
                    p.summary data-testid="action-summary" { (s) }
                }
                @if let Some(by) = l.last_updated_by.as_deref() {
                    p.updated-by data-testid="action-updated-by" {
                        @if approval && st == Some("Succeeded") { "Approved by " }
                        @else if approval && st == Some("Failed") { "Rejected by " }
                        @else { "Updated by " }
                        strong { (markup::user_name(by)) } " (" (by) ")"
                    }
                }
                @if let Some(err) = &l.error_details {
                    p.error-details { (err.code.as_deref().unwrap_or("Error")) ": " (err.message.as_deref().unwrap_or("")) }
                }
                @if let Some(url) = l.external_execution_url.as_deref() {
                    p { (external_link(url, "Details")) }
                }
            }
            @if approval && is_in_progress(st) {
                @if let Some(token) = latest.and_then(|l| l.token.as_deref()) {
                    button.primary type="button" data-open-dialog="review-dialog"
                        data-action-url=(format!("/console/pipelines/{}/stages/{}/actions/{}/review", seg(name), seg(stage), seg(&action.name)))
                        data-token=(token) data-stage=(stage) data-action=(action.name)
                        data-custom-data=(custom_data.as_deref().unwrap_or("—"))
                        data-link=(link.as_deref().unwrap_or("")) { "Review" }
                }
            }
        }
    }
}

fn review_dialog(
    name: &str,
    user: &SignedIn,
    target: Option<&ReviewTarget>,
    comments: Option<&str>,
) -> Markup {
    let action_url = target.map(|t| {
        format!(
            "/console/pipelines/{}/stages/{}/actions/{}/review",
            seg(name),
            seg(&t.stage),
            seg(&t.action)
        )
    });
    html! {
        dialog #review-dialog aria-labelledby="review-title" open[target.is_some()] {
            form method="post" action=[action_url] data-fill-action="actionUrl" {
                h2 #review-title { "Approve or reject the revision" }
                dl.review-facts {
                    dt { "Pipeline" } dd { (name) }
                    dt { "Stage" } dd data-fill-text="stage" { (target.map_or("", |t| t.stage.as_str())) }
                    dt { "Action" } dd data-fill-text="action" { (target.map_or("", |t| t.action.as_str())) }
                    dt { "Approval comments" } dd data-fill-text="customData" { (target.and_then(|t| t.custom_data.as_deref()).unwrap_or("—")) }
                    dt { "URL for review" }
                    dd {
                        @match target.and_then(|t| t.link.as_deref()) {
                            Some(url) if markup::is_web_url(url) => a data-fill-href="link" href=(url) target="_blank" rel="noopener" { (url) },
                            Some(url) => a data-fill-href="link" { (url) },
                            None => a data-fill-href="link" { "—" },
                        }
                    }
                }
                (csrf_field(user))
                input type="hidden" name="token" value=(target.map_or("", |t| t.token.as_str())) data-fill-value="token";
                label for="review-comments" { "Comments" }
                textarea #review-comments name="comments" rows="4" maxlength="512" { (comments.unwrap_or("")) }
                div.dialog-buttons {
                    button type="button" data-close-dialog { "Cancel" }
                    button.danger type="submit" name="decision" value="Reject" { "Reject" }
                    button.primary type="submit" name="decision" value="Approve" { "Approve" }
                }
            }
        }
    }
}

fn stop_dialog(name: &str, user: &SignedIn) -> Markup {
    html! {
        dialog #stop-dialog aria-labelledby="stop-title" {
            form method="post" action=(format!("/console/pipelines/{}/stop", seg(name))) {
                h2 #stop-title { "Stop execution" }
                (csrf_field(user))
                input type="hidden" name="execution_id" data-fill-value="executionId";
                fieldset {
                    legend { "How to stop" }
                    label { input type="radio" name="mode" value="wait" checked; " Stop and wait: in-progress actions finish first" }
                    label { input type="radio" name="mode" value="abandon"; " Stop and abandon: in-progress actions are abandoned" }
                }
                label for="stop-reason" { "Reason (optional)" }
                textarea #stop-reason name="reason" rows="3" maxlength="200" {}
                div.dialog-buttons {
                    button type="button" data-close-dialog { "Cancel" }
                    button.danger type="submit" { "Stop" }
                }
            }
        }
    }
}

fn transition_dialog(_name: &str, user: &SignedIn) -> Markup {
    html! {
        dialog #transition-dialog aria-labelledby="transition-title" {
            form method="post" data-fill-action="actionUrl" {
                h2 #transition-title { "Disable transition" }
                p { "Executions will not enter stage " strong data-fill-text="stage" {} " until the transition is enabled again." }
                (csrf_field(user))
                input type="hidden" name="enable" value="false";
                label for="transition-reason" { "Reason" }
                textarea #transition-reason name="reason" rows="3" maxlength="300" required {}
                div.dialog-buttons {
                    button type="button" data-close-dialog { "Cancel" }
                    button.danger type="submit" { "Disable" }
                }
            }
        }
    }
}
