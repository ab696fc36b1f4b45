//! Time as Lockgate sees it: milliseconds since the Unix epoch from an injectable clock.
//!
//! Nothing else reads the system clock (`clippy.toml` disallows `SystemTime::now` and
//! `OffsetDateTime::now_utc` elsewhere), so tests can move time forward by hand (deadlines,
//! expiry, sessions) without sleeping, and every part of the server agrees on what "now" is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now_millis(&self) -> i64;

    /// The current time as a [`SystemTime`](std::time::SystemTime) (for signing and HTTP dates).
    fn now_system(&self) -> std::time::SystemTime {
        let millis = u64::try_from(self.now_millis()).unwrap_or(0);
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis)
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let now = self
            .now_system()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the one place the wall clock is read"
    )]
    fn now_system(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock showing `start_millis`.
    pub fn new(start_millis: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_millis)))
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
