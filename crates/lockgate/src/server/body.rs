//! The bodies the server puts around each request and response: a request body that gives up
//! when the body timeout passes, and a response body that marks the end of its request for the
//! connection's watchdog when hyper is done with it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::connection::ResponseGuard;

/// A request body that must arrive within a deadline. Past it, reading fails with an
/// [`std::io::ErrorKind::TimedOut`] error, which the API answers with 408; the unread rest makes
/// hyper close the connection after the response.
pub(crate) struct TimedBody {
    inner: hyper::body::Incoming,
    /// When the request arrived.
    started: Instant,
    /// Armed the first time the body is not all there yet: most API bodies arrive with their
    /// headers and are read without ever needing a timer.
    deadline: Option<Pin<Box<Sleep>>>,
    limit: Duration,
}

impl TimedBody {
    /// `inner`, which must be read within `limit` from now.
    pub fn new(inner: hyper::body::Incoming, limit: Duration) -> Self {
        TimedBody {
            inner,
            started: Instant::now(),
            deadline: None,
            limit,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(std::io::Error::other)));
        }
        let (started, limit) = (self.started, self.limit);
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(started + limit)));
        if deadline.as_mut().poll(cx).is_ready() {
            let limit = self.limit.as_secs();
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the request body did not arrive within {limit} s"),
            ))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds its request's [`ResponseGuard`] until hyper drops it, which it does
/// once the body is written (or the connection is gone). An event stream stays busy for as long as
/// it is open.
pub(crate) struct GuardedBody {
    inner: axum::body::Body,
    _guard: ResponseGuard,
}

impl GuardedBody {
    /// `inner`, holding `guard`.
    pub fn new(inner: axum::body::Body, guard: ResponseGuard) -> Self {
        GuardedBody {
            inner,
            _guard: guard,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
