//! One client connection's phase (waiting for headers, a request in progress, idle) and the
//! watchdog that closes it when the phase's timeout passes or when the server needs its slot.
//!
//! hyper's own `header_read_timeout` starts whenever hyper waits for a request head, which on a
//! kept-alive connection is right after the previous response: it would close idle connections at
//! the header timeout. Tracking the phase here lets an idle connection live for the (longer) idle
//! timeout while a client that has started a request must finish its headers promptly.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::http::ConnectionLimits;

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected, or bytes of a request arrived, and the headers are not complete yet.
    AwaitingHeaders {
        /// When the connection opened or its request's first byte arrived.
        since: Instant,
    },
    /// Requests are being handled; their bodies are timed separately.
    Busy {
        /// Requests whose responses are not finished.
        requests: usize,
    },
    /// The last response is finished and nothing new has arrived.
    Idle {
        /// When the last response finished.
        since: Instant,
    },
}

/// Why a connection was closed by the server rather than by its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// The headers did not arrive within the header timeout.
    HeaderTimeout,
    /// No request came within the idle timeout.
    IdleTimeout,
    /// The server needed the slot (connection cap or shutdown) and no request was in progress.
    Evicted,
}

/// The shared view of one connection, updated by its I/O and its requests.
#[derive(Debug)]
pub(crate) struct Tracker {
    phase: Mutex<Phase>,
    close: Notify,
}

impl Tracker {
    /// A connection that has just been accepted.
    pub fn new() -> Arc<Tracker> {
        Arc::new(Tracker {
            phase: Mutex::new(Phase::AwaitingHeaders {
                since: Instant::now(),
            }),
            close: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        // A phase is a plain value written whole; a poisoned lock still holds a valid one.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.lock()
    }

    /// Bytes arrived: an idle connection starts a request, whose headers are now timed.
    fn bytes_arrived(&self) {
        let mut phase = self.lock();
        if matches!(*phase, Phase::Idle { .. }) {
            *phase = Phase::AwaitingHeaders {
                since: Instant::now(),
            };
        }
    }

    /// hyper parsed a request's headers and handed it to the application.
    pub fn request_started(self: &Arc<Self>) -> ResponseGuard {
        let mut phase = self.lock();
        *phase = match *phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            _ => Phase::Busy { requests: 1 },
        };
        ResponseGuard(Arc::clone(self))
    }

    /// When the current phase times out, and as what; `None` while a request is in progress.
    pub fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Closed)> {
        match self.phase() {
            Phase::AwaitingHeaders { since } => {
                Some((since + limits.header_timeout, Closed::HeaderTimeout))
            }
            Phase::Idle { since } => Some((since + limits.idle_timeout, Closed::IdleTimeout)),
            Phase::Busy { .. } => None,
        }
    }

    /// Since when the connection has had no request in progress, if it has none.
    pub fn unbusy_since(&self) -> Option<Instant> {
        match self.phase() {
            Phase::AwaitingHeaders { since } | Phase::Idle { since } => Some(since),
            Phase::Busy { .. } => None,
        }
    }

    /// Asks the watchdog to close the connection (it does so only if no request is in progress).
    pub fn evict(&self) {
        // `notify_one` keeps a permit when the watchdog is not waiting, so no request is lost.
        self.close.notify_one();
    }

    /// Resolves when the connection should be closed, and why. Never closes a connection while a
    /// request is in progress: the API's handlers and the console's event streams end on their
    /// own (body timeout, shutdown signal).
    pub async fn watchdog(&self, limits: ConnectionLimits) -> Closed {
        // While busy, look again this often; the phase changes without waking the watchdog.
        let recheck = limits.header_timeout.min(limits.idle_timeout);
        loop {
            let wake = match self.deadline(&limits) {
                Some((at, reason)) if at <= Instant::now() => return reason,
                Some((at, _)) => at,
                None => Instant::now() + recheck,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.close.notified() => {
                    if self.unbusy_since().is_some() {
                        return Closed::Evicted;
                    }
                }
            }
        }
    }
}

/// Held by a response until hyper has finished with it; dropping it ends the request's part of
/// the busy phase.
#[derive(Debug)]
pub(crate) struct ResponseGuard(Arc<Tracker>);

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        let mut phase = self.0.lock();
        *phase = match *phase {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        };
    }
}

/// The client's socket, reporting arriving bytes to the connection's [`Tracker`].
pub(crate) struct TrackedIo<S> {
    inner: S,
    tracker: Arc<Tracker>,
}

impl<S> TrackedIo<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, tracker: Arc<Tracker>) -> Self {
        TrackedIo { inner, tracker }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.bytes_arrived();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The defaults' proportions (10 s, 60 s) scaled down so that the tests run in real time.
    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(600),
            body_timeout: Duration::from_millis(300),
            max_connections: 8,
        }
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_at_the_header_timeout() {
        let tracker = Tracker::new();
        let started = Instant::now();
        assert_eq!(tracker.watchdog(limits()).await, Closed::HeaderTimeout);
        let lived = started.elapsed();
        assert!(lived >= Duration::from_millis(100), "{lived:?}");
        assert!(lived < Duration::from_millis(600), "{lived:?}");
    }

    #[tokio::test]
    async fn an_idle_connection_lives_for_the_idle_timeout_and_a_busy_one_is_never_closed() {
        let tracker = Tracker::new();
        let guard = tracker.request_started();
        let watchdog = tokio::spawn({
            let tracker = Arc::clone(&tracker);
            async move { tracker.watchdog(limits()).await }
        });
        // Well past both timeouts, and asked to make room: a request is in progress.
        tracker.evict();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(!watchdog.is_finished(), "a request is in progress");
        let idle_from = Instant::now();
        drop(guard);
        assert_eq!(watchdog.await.unwrap(), Closed::IdleTimeout);
        // The watchdog notices within its recheck interval (the header timeout).
        let lived = idle_from.elapsed();
        assert!(lived >= Duration::from_millis(600), "{lived:?}");
    }

    #[tokio::test]
    async fn an_idle_connection_that_starts_a_request_must_finish_its_headers_in_time() {
        let tracker = Tracker::new();
        drop(tracker.request_started());
        tracker.bytes_arrived();
        let started = Instant::now();
        assert_eq!(tracker.watchdog(limits()).await, Closed::HeaderTimeout);
        assert!(started.elapsed() < Duration::from_millis(600));
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_at_once_when_its_slot_is_needed() {
        let tracker = Tracker::new();
        drop(tracker.request_started());
        tracker.evict();
        let started = Instant::now();
        assert_eq!(tracker.watchdog(limits()).await, Closed::Evicted);
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
