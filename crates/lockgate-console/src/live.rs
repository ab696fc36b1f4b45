//! Live updates: a server-sent events stream that says `changed` whenever the pipeline a page
//! shows (or, for the pipelines list, any pipeline) has changed. The page then re-reads its live
//! region. The stream wakes on every engine commit (creating and deleting a pipeline included:
//! the engine wakes waiters only once the pipeline list has changed) and compares cheap
//! per-pipeline change counters, so an idle page costs nothing, and a burst of commits becomes
//! one event at most every [`MIN_GAP`].

use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Deserialize;
use tokio::sync::watch;

use crate::auth::SignedIn;
use crate::Console;

/// The shortest time between two events on one stream.
const MIN_GAP: Duration = Duration::from_millis(200);

/// The events stream's query: the pipeline to follow (all pipelines when absent).
#[derive(Deserialize)]
pub struct EventsQuery {
    pipeline: Option<String>,
}

/// A value that changes whenever what the page shows may have changed.
fn fingerprint(console: &Console, pipeline: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    let names = match pipeline {
        Some(p) => vec![p.to_string()],
        None => console.service.pipeline_names(),
    };
    for name in &names {
        name.hash(&mut h);
        console.service.change_count(name).hash(&mut h);
        if let Ok(view) = console.service.pipeline_state_view(name) {
            view.pipeline_version.hash(&mut h);
            view.updated.map(|t| t.0).hash(&mut h);
        }
    }
    h.finish()
}

/// Waits until the fingerprint differs from `last`; `None` when the server is shutting down.
async fn next_change(
    console: &Console,
    pipeline: Option<&str>,
    last: u64,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<u64> {
    loop {
        let notified = console.service.committed();
        tokio::pin!(notified);
        // Registered before looking, so a commit between the look and the wait still wakes us.
        notified.as_mut().enable();
        let now = fingerprint(console, pipeline);
        if now != last {
            return Some(now);
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return None,
        }
    }
}

/// `GET /console/events[?pipeline=NAME]`.
pub async fn events(
    State(console): State<Arc<Console>>,
    _user: SignedIn,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = fingerprint(&console, q.pipeline.as_deref());
    let shutdown = console.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (console, q.pipeline, start, shutdown),
        |(console, pipeline, last, mut shutdown)| async move {
            if *shutdown.borrow() {
                return None;
            }
            let next = next_change(&console, pipeline.as_deref(), last, &mut shutdown).await?;
            tokio::select! {
                _ = tokio::time::sleep(MIN_GAP) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => return None,
            }
            let event = Event::default().event("changed").data("changed");
            Some((Ok(event), (console, pipeline, next, shutdown)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
