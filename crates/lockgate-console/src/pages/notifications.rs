//! Notifications: messages still being delivered (with their retries), messages the relay
//! gave up on, so a failed delivery stays visible rather than lost in a log, and approvals that
//! name a topic nobody is subscribed to.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lockgate_notify::OutboxEntry;
use lockgate_shapes::Timestamp;
use maud::{html, Markup};

use crate::auth::SignedIn;
use crate::markup::{self, seg, time, Page};
use crate::Console;

/// `GET /console/notifications`.
pub async fn list(State(console): State<Arc<Console>>, user: SignedIn) -> Response {
    let Some(relay) = console.relay.as_ref() else {
        return markup::error_page(
            StatusCode::NOT_FOUND,
            Some(&user),
            "Notifications",
            "This server does not send notifications.",
        );
    };
    let (pending, failed) = match (relay.pending().await, relay.failed().await) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "could not read the notification outbox");
            return markup::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&user),
                "Something went wrong",
                "Lockgate could not read the notification outbox. Try again in a moment.",
            );
        }
    };
    let stats = relay.stats();
    let unheard = console.service.unheard_topics();
    let body = html! {
        div.page-head { h1 { "Notifications" } }
        div #live {
            p.muted {
                "Since the server started: " (stats.delivered) " delivered, "
                (stats.retries) " retries, " (stats.failed) " given up."
            }
            h2 { "Failed" }
            @if failed.is_empty() {
                p { "No failed notifications." }
            } @else {
                p.alert.alert-error role="alert" {
                    (failed.len()) " notification" @if failed.len() != 1 { "s" }
                    " could not be delivered after the last retry."
                }
                (table("failed-notifications", &failed))
            }
            @if !unheard.is_empty() {
                h2 { "Topics nobody is subscribed to" }
                p.alert.alert-attention role="status" {
                    "These approvals name a topic that no [[topics]] entry of the server's \
                     configuration lists, and there is no catch-all topic (arn = \"*\"): their \
                     messages will fail. (Pipelines created or updated since the server started.)"
                }
                table #unheard-topics {
                    thead { tr { th { "Pipeline" } th { "Stage" } th { "Action" } th { "Topic" } } }
                    tbody {
                        @for u in &unheard {
                            tr data-pipeline=(u.pipeline) {
                                td { a href={ "/console/pipelines/" (seg(&u.pipeline)) } { (u.pipeline) } }
                                td { (u.stage) }
                                td { (u.action) }
                                td { code { (u.topic) } }
                            }
                        }
                    }
                }
            }
            h2 { "Being delivered" }
            @if pending.is_empty() {
                p { "Nothing waiting." }
            } @else {
                (table("pending-notifications", &pending))
            }
        }
    };
    markup::respond(
        StatusCode::OK,
        markup::layout(
            Page {
                title: "Notifications",
                user: Some(&user),
                live_events: Some("/console/events".into()),
                live_page: Some("/console/notifications".into()),
                live_poll_ms: None,
            },
            body,
        ),
    )
}

fn table(id: &str, entries: &[OutboxEntry]) -> Markup {
    html! {
        div.table-wrap {
            table id=(id) {
                thead { tr { th { "Message" } th { "Approval" } th { "Topic" } th { "Attempts" } th { "Subscriptions" } th { "Next attempt" } } }
                tbody {
                    @for e in entries {
                        @let n = &e.notice;
                        tr data-notification=(e.key) {
                            td { (n.kind.as_str()) div.muted { (time(Some(Timestamp(n.at)))) } }
                            td {
                                a href=(format!("/console/pipelines/{}", seg(&n.pipeline_name))) { (n.pipeline_name) }
                                " / " (n.stage_name) " / " (n.action_name)
                            }
                            td { code { (n.topic_arn) } }
                            td { (e.delivery.attempts) }
                            td {
                                @if let Some(err) = &e.delivery.error { div.error-details { (err) } }
                                @for (sub, d) in &e.delivery.subscriptions {
                                    div {
                                        code { (sub) } ": "
                                        @if d.delivered_at.is_some() { span.status.status-succeeded { "Delivered" } }
                                        @else if let Some(err) = &d.last_error { span.error-details { (err) } }
                                        @else { "waiting" }
                                    }
                                }
                            }
                            td { (time(e.next_attempt.map(Timestamp))) }
                        }
                    }
                }
            }
        }
    }
}
