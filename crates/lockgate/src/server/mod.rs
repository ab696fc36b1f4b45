//! The HTTP/1.1 server: an accept loop with a connection cap, per-connection timeouts and a
//! graceful drain, in front of the application's router.
//!
//! - **Cap.** A permit is taken before each `accept`, so the process never holds more client
//!   sockets than [`ConnectionLimits::max_connections`] and never runs out of descriptors for its
//!   store. At the cap, the connection that has gone longest without a request in progress
//!   (silent since it connected, or idle after a response) is closed to make room; connections
//!   with a request in progress are never closed for this. A flood of idle connections therefore
//!   cycles through the slots instead of locking everyone else out.
//! - **Timeouts.** Headers must be complete within the header timeout of a connection's first
//!   byte (or of connecting), bodies within the body timeout of their headers, and a connection
//!   with no request in progress is closed after the idle timeout (see [`connection`]).
//! - **Accept errors.** A failing `accept` (out of descriptors, say) backs off exponentially up
//!   to a second instead of spinning, closes an idle connection to free a descriptor, and is
//!   logged at most once per [`ERROR_LOG_INTERVAL`] with the number of errors in between.
//! - **Shutdown.** Accepting stops, connections with no request in progress are closed, and
//!   in-flight requests finish (hyper closes each connection after its response).
//!
//! Each request carries `ConnectInfo<SocketAddr>` with the peer's address, as
//! `into_make_service_with_connect_info` would give it.

mod body;
mod connection;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use self::body::{GuardedBody, TimedBody};
use self::connection::{Closed, TrackedIo, Tracker};
use crate::http::ConnectionLimits;

/// How often at most a run of the same kind of trouble (accept errors, the cap being reached) is
/// logged; the lines in between are counted, not written.
pub const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The longest pause after a failed `accept`.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// The first pause after a failed `accept`.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
/// How often the accept loop, waiting at the cap for a connection to finish, looks again for one
/// that has become idle.
const CAP_RECHECK: Duration = Duration::from_millis(250);

/// Serves `app` on `listener` until `shutdown` resolves, then drains: returns once every
/// in-flight request has been answered.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = Arc::new(Connections::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut accept_errors = Throttled::new(ERROR_LOG_INTERVAL);
    let mut at_cap = Throttled::new(ERROR_LOG_INTERVAL);
    let mut backoff = MIN_ACCEPT_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = connections.acquire(&mut at_cap) => permit,
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                let watched = graceful.watcher();
                let connections = Arc::clone(&connections);
                let app = app.clone();
                tokio::spawn(async move {
                    serve_connection(stream, peer, app, limits, &connections, watched).await;
                    drop(permit);
                });
            }
            // The client gave up before it was accepted: nothing is wrong with the server.
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                if let Some(suppressed) = accept_errors.should_log() {
                    tracing::warn!(
                        error = %e,
                        suppressed,
                        retry_in_ms = backoff.as_millis() as u64,
                        "cannot accept connections"
                    );
                }
                // Out of descriptors: an idle client's socket is the one we can give back.
                connections.evict_longest_unbusy();
                drop(permit);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
    drop(listener);
    let open = connections.evict_all_unbusy();
    tracing::info!(
        closed_idle = open,
        draining = graceful.count(),
        "stopped accepting connections; draining requests in progress"
    );
    graceful.shutdown().await;
}

/// Serves one connection until its client closes it, hyper ends it, or the watchdog does.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    connections: &Connections,
    watcher: hyper_util::server::graceful::Watcher,
) {
    // Responses are small and sent whole; Nagle's delay would only add latency.
    let _ = stream.set_nodelay(true);
    let tracker = Tracker::new();
    let id = connections.register(Arc::clone(&tracker));
    let service = {
        let tracker = Arc::clone(&tracker);
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let guard = tracker.request_started();
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let request = http::Request::from_parts(
                parts,
                axum::body::Body::new(TimedBody::new(body, limits.body_timeout)),
            );
            let app = app.clone();
            async move {
                let response = match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| GuardedBody::new(body, guard)))
            }
        })
    };
    let io = TokioIo::new(TrackedIo::new(stream, Arc::clone(&tracker)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The watchdog times headers from a request's first byte; hyper's own header timer would
    // also run while a kept-alive connection is idle (see `connection`).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = watcher.watch(builder.serve_connection(io, service));
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        reason = tracker.watchdog(limits) => {
            let reason = match reason {
                Closed::HeaderTimeout => "header timeout",
                Closed::IdleTimeout => "idle timeout",
                Closed::Evicted => "slot needed",
            };
            tracing::debug!(%peer, reason, "closing connection");
        }
    }
    connections.unregister(id);
}

/// Whether an `accept` error concerns only the connection being accepted.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}

/// The open connections: the permits of the cap and a tracker per connection, so the accept loop
/// can find one to close.
struct Connections {
    permits: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Tracker>>>,
    next_id: AtomicU64,
}

impl Connections {
    fn new(max: usize) -> Self {
        Connections {
            permits: Arc::new(Semaphore::new(max)),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        // The map is only inserted into and removed from; a poisoned one is still consistent.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, tracker: Arc<Tracker>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open().insert(id, tracker);
        id
    }

    fn unregister(&self, id: u64) {
        self.open().remove(&id);
    }

    /// A slot for the next connection; at the cap, makes one by closing the connection that has
    /// gone longest without a request in progress, or waits for one to finish.
    async fn acquire(&self, at_cap: &mut Throttled) -> OwnedSemaphorePermit {
        loop {
            if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
                return permit;
            }
            if let Some(suppressed) = at_cap.should_log() {
                tracing::warn!(
                    open = self.open().len(),
                    suppressed,
                    "connection limit reached; closing the longest-idle connections to make room \
                     (see [http] max_connections)"
                );
            }
            self.evict_longest_unbusy();
            tokio::select! {
                permit = Arc::clone(&self.permits).acquire_owned() => {
                    // The semaphore is never closed.
                    if let Ok(permit) = permit {
                        return permit;
                    }
                }
                () = tokio::time::sleep(CAP_RECHECK) => {}
            }
        }
    }

    /// Closes the connection that has gone longest without a request in progress, if any.
    fn evict_longest_unbusy(&self) {
        let oldest = self
            .open()
            .values()
            .filter_map(|t| t.unbusy_since().map(|since| (since, Arc::clone(t))))
            .min_by_key(|(since, _)| *since);
        if let Some((_, tracker)) = oldest {
            tracker.evict();
        }
    }

    /// Closes every connection without a request in progress; returns how many there were.
    fn evict_all_unbusy(&self) -> usize {
        let open = self.open();
        let mut closed = 0;
        for tracker in open.values().filter(|t| t.unbusy_since().is_some()) {
            tracker.evict();
            closed += 1;
        }
        closed
    }
}

/// Rate-limits one kind of log line: the first one is written, then at most one per interval,
/// each saying how many were skipped.
#[derive(Debug)]
struct Throttled {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new(interval: Duration) -> Self {
        Throttled {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(skipped since the last line)` when a line should be written now.
    fn should_log(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_error_is_logged_once_per_interval_with_the_count_skipped() {
        let interval = Duration::from_millis(200);
        let mut throttled = Throttled::new(interval);
        assert_eq!(throttled.should_log(), Some(0));
        for _ in 0..99 {
            assert_eq!(throttled.should_log(), None);
        }
        tokio::time::sleep(interval).await;
        assert_eq!(throttled.should_log(), Some(99));
        assert_eq!(throttled.should_log(), None);
    }
}
