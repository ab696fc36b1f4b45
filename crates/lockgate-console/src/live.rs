//! Live updates: a server-sent events stream that says `changed` whenever what a page shows
//! may have changed: the one pipeline a pipeline page follows, or, for the list of pipelines,
//! a pipeline on the page or any pipeline's place in the list (created, deleted, a new latest
//! status, started or stopped waiting for approval). The page then re-reads its live region.
//! The stream wakes on every engine commit and reads the engine's change feed from where it
//! last looked, so an open page costs the commits that happened, never the number of
//! pipelines, and a burst of commits becomes one event at most every [`MIN_GAP`].

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Deserialize;
use tokio::sync::watch;

use lockgate_engine::service::changes::Change;

use crate::auth::SignedIn;
use crate::Console;

/// The shortest time between two events on one stream.
const MIN_GAP: Duration = Duration::from_millis(200);

/// The events stream's query: the pipeline to follow, or for the list of pipelines the names
/// on the page (comma-separated).
#[derive(Deserialize)]
pub struct EventsQuery {
    pipeline: Option<String>,
    names: Option<String>,
}

/// What a stream watches for.
enum Watch {
    /// One pipeline's page.
    Pipeline(String),
    /// The list of pipelines: these rows, and any change of place in the list.
    List(HashSet<String>),
}

impl Watch {
    fn of(q: EventsQuery) -> Watch {
        match q.pipeline {
            Some(p) => Watch::Pipeline(p),
            None => Watch::List(
                q.names
                    .unwrap_or_default()
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        }
    }

    fn concerns(&self, change: &Change) -> bool {
        match self {
            Watch::Pipeline(p) => change.pipeline == *p,
            Watch::List(names) => change.listing || names.contains(&change.pipeline),
        }
    }
}

/// Waits until a change the stream watches for happened after point `seq` of the change feed
/// and returns the feed's new point; `None` when the server is shutting down.
async fn next_change(
    console: &Console,
    watch: &Watch,
    mut seq: u64,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<u64> {
    loop {
        let notified = console.service.committed();
        tokio::pin!(notified);
        // Registered before looking, so a commit between the look and the wait still wakes us.
        notified.as_mut().enable();
        let since = console.service.changes_since(seq);
        seq = since.seq;
        // A reader too far behind missed some changes: it must assume one concerns it.
        let changed = since
            .changes
            .is_none_or(|changes| changes.iter().any(|c| watch.concerns(c)));
        if changed {
            return Some(seq);
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
    let start = console.service.change_seq();
    let shutdown = console.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (console, Arc::new(Watch::of(q)), start, shutdown),
        |(console, watch, last, mut shutdown)| async move {
            if *shutdown.borrow() {
                return None;
            }
            let next = next_change(&console, &watch, last, &mut shutdown).await?;
            tokio::select! {
                _ = tokio::time::sleep(MIN_GAP) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => return None,
            }
            let event = Event::default().event("changed").data("changed");
            Some((Ok(event), (console, watch, next, shutdown)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
