//! The brake on password guessing: after too many failed sign-ins for one user name, further
//! attempts for that name are refused for a while, even with the right password.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed within [`WINDOW`] before the brake engages.
pub const MAX_FAILURES: usize = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long the brake holds once engaged.
pub const HOLD: Duration = Duration::from_secs(15 * 60);
/// Beyond this many tracked names, names with no recent failure are forgotten.
const TRACKED_NAMES: usize = 10_000;

#[derive(Default)]
struct Failures {
    at: VecDeque<Instant>,
    held_until: Option<Instant>,
}

/// Failed sign-ins by (case-folded) user name, in memory.
#[derive(Default)]
pub struct SignInBrake {
    names: Mutex<HashMap<String, Failures>>,
}

impl SignInBrake {
    fn names(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` when attempts for `user` are held for `wait` longer.
    pub fn check(&self, user: &str, now: Instant) -> Result<(), Duration> {
        let names = self.names();
        match names.get(&user.to_lowercase()).and_then(|f| f.held_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt; engages the brake at [`MAX_FAILURES`] within [`WINDOW`].
    pub fn failed(&self, user: &str, now: Instant) {
        let mut names = self.names();
        if names.len() >= TRACKED_NAMES {
            names.retain(|_, f| {
                f.held_until.is_some_and(|u| u > now)
                    || f.at.back().is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        let f = names.entry(user.to_lowercase()).or_default();
        while f
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            f.at.pop_front();
        }
        f.at.push_back(now);
        if f.at.len() >= MAX_FAILURES {
            f.held_until = Some(now + HOLD);
            f.at.clear();
        }
    }

    /// Forgets the failures of `user` after a successful sign-in.
    pub fn succeeded(&self, user: &str) {
        self.names().remove(&user.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brake_engages_after_five_failures_and_releases_after_the_hold() {
        let brake = SignInBrake::default();
        let t0 = Instant::now();
        for i in 0..4 {
            brake.failed("Alice", t0 + Duration::from_secs(i));
            assert!(brake.check("alice", t0 + Duration::from_secs(i)).is_ok());
        }
        brake.failed("ALICE", t0 + Duration::from_secs(5));
        let wait = brake
            .check("Alice", t0 + Duration::from_secs(6))
            .expect_err("held");
        assert!(wait <= HOLD && wait > HOLD - Duration::from_secs(2));
        assert!(brake
            .check("Alice", t0 + HOLD + Duration::from_secs(6))
            .is_ok());
        assert!(brake.check("Bob", t0 + Duration::from_secs(6)).is_ok());
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_engage_the_brake() {
        let brake = SignInBrake::default();
        let t0 = Instant::now();
        for i in 0..10u32 {
            let at = t0 + WINDOW / 4 * i;
            brake.failed("Alice", at);
            assert!(brake.check("Alice", at).is_ok(), "attempt {i}");
        }
    }

    #[test]
    fn a_successful_sign_in_forgets_earlier_failures() {
        let brake = SignInBrake::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            brake.failed("Alice", t0);
        }
        brake.succeeded("Alice");
        brake.failed("Alice", t0);
        assert!(brake.check("Alice", t0).is_ok());
    }
}
