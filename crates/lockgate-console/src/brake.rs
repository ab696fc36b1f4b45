//! The brake on password guessing, by user name and by client address.
//!
//! Every sign-in attempt is counted as a failure *before* its password is checked: checking the
//! count and recording the attempt happen under one lock ([`SignInBrake::reserve`]), so however
//! many guesses arrive at once, no more than the limit are ever verified. A verified password
//! then takes its attempt back ([`SignInBrake::succeeded`]): it forgets the name's failures and
//! does not count against the address. An attempt that never reached a verdict (the store could
//! not be read) is taken back with [`SignInBrake::withdraw`].
//!
//! Two limits apply, each with its own window and hold ([`PER_NAME`], [`PER_ADDRESS`]): one stops
//! many guesses at one account, the other one client trying many accounts. Both tables are kept
//! in memory and bounded ([`TRACKED_KEYS`] keys each), so a flood of invented names or addresses
//! cannot grow them without limit.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures within a window engage the brake, and for how long it then holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Failed attempts allowed within `window`; the attempt that reaches it engages the brake.
    pub max_failures: usize,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long the brake holds once engaged.
    pub hold: Duration,
}

/// Per user name (case-folded): 5 failures in 15 minutes hold the name for 15 minutes.
pub const PER_NAME: Limit = Limit {
    max_failures: 5,
    window: Duration::from_secs(15 * 60),
    hold: Duration::from_secs(15 * 60),
};

/// Per client address: 20 failures in 15 minutes hold the address for 15 minutes. High enough
/// that a handful of people behind one NAT mistyping their passwords are not held, low enough
/// that one client cannot walk through a list of user names (at most 80 guesses an hour).
pub const PER_ADDRESS: Limit = Limit {
    max_failures: 20,
    window: Duration::from_secs(15 * 60),
    hold: Duration::from_secs(15 * 60),
};

/// The most keys each table keeps. When a table is full, keys with nothing recent are dropped
/// first; if that frees too little, the unheld keys whose records would expire soonest are
/// dropped (held keys only when every key is held).
pub const TRACKED_KEYS: usize = 10_000;

/// Why an attempt was refused without checking its password, and for how much longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Too many failures for this user name.
    Name(Duration),
    /// Too many failures from this client address.
    Address(Duration),
}

/// An attempt that passed the brake and is already counted as a failure; hand it back with
/// [`SignInBrake::succeeded`] or [`SignInBrake::withdraw`], or drop it to leave it counted.
#[derive(Debug)]
#[must_use = "an attempt is a failure unless it is handed back"]
pub struct Attempt {
    id: u64,
    name: String,
    address: IpAddr,
}

/// The failures of one key.
#[derive(Default)]
struct Failures {
    /// (attempt id, when), oldest first.
    at: VecDeque<(u64, Instant)>,
    held_until: Option<Instant>,
    /// The attempt that engaged the hold, so taking it back lifts the hold again.
    engaged_by: Option<u64>,
}

impl Failures {
    /// The remaining hold; an expired hold is lifted and its failures forgotten.
    fn held(&mut self, now: Instant) -> Option<Duration> {
        match self.held_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                *self = Failures::default();
                None
            }
            None => None,
        }
    }

    /// When this record stops mattering: its hold ends and its last failure leaves the window.
    fn expires(&self, limit: &Limit) -> Option<Instant> {
        let last = self.at.back().map(|(_, t)| *t + limit.window);
        last.max(self.held_until)
    }
}

/// Failures by key under one [`Limit`].
struct Table<K> {
    limit: Limit,
    keys: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(limit: Limit) -> Self {
        Table {
            limit,
            keys: HashMap::new(),
        }
    }

    fn held(&mut self, key: &K, now: Instant) -> Option<Duration> {
        self.keys.get_mut(key).and_then(|f| f.held(now))
    }

    /// Counts attempt `id` against `key`, engaging the hold when it reaches the limit.
    fn record(&mut self, key: &K, id: u64, now: Instant) {
        if !self.keys.contains_key(key) && self.keys.len() >= TRACKED_KEYS {
            self.make_room(now);
        }
        let limit = self.limit;
        let f = self.keys.entry(key.clone()).or_default();
        while f
            .at
            .front()
            .is_some_and(|(_, t)| now.duration_since(*t) >= limit.window)
        {
            f.at.pop_front();
        }
        f.at.push_back((id, now));
        if f.at.len() >= limit.max_failures && f.held_until.is_none() {
            f.held_until = Some(now + limit.hold);
            f.engaged_by = Some(id);
        }
    }

    /// Drops keys that no longer matter and then, while the table is still nearly full, the
    /// unheld keys that would stop mattering soonest (held keys last), until a sixteenth of it is
    /// free again; so a flood of new keys costs one pass over the table per sixteenth, not per key.
    fn make_room(&mut self, now: Instant) {
        let limit = self.limit;
        self.keys
            .retain(|_, f| f.expires(&limit).is_some_and(|e| e > now));
        let keep = TRACKED_KEYS - TRACKED_KEYS / 16;
        if self.keys.len() > keep {
            let mut order: Vec<(bool, Option<Instant>, K)> = self
                .keys
                .iter()
                .map(|(k, f)| {
                    let held = f.held_until.is_some_and(|u| u > now);
                    (held, f.expires(&limit), k.clone())
                })
                .collect();
            let drop = self.keys.len() - keep;
            order.select_nth_unstable_by(drop - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (_, _, k) in order.into_iter().take(drop) {
                self.keys.remove(&k);
            }
        }
    }

    /// Takes attempt `id` back from `key`, lifting the hold it engaged.
    fn withdraw(&mut self, key: &K, id: u64) {
        if let Some(f) = self.keys.get_mut(key) {
            f.at.retain(|(i, _)| *i != id);
            if f.engaged_by == Some(id) {
                f.held_until = None;
                f.engaged_by = None;
            }
            if f.at.is_empty() && f.held_until.is_none() {
                self.keys.remove(key);
            }
        }
    }

    fn forget(&mut self, key: &K) {
        self.keys.remove(key);
    }
}

struct Tables {
    names: Table<String>,
    addresses: Table<IpAddr>,
    next_id: u64,
}

/// Sign-in attempts by (case-folded) user name and by client address, in memory.
pub struct SignInBrake {
    tables: Mutex<Tables>,
}

impl Default for SignInBrake {
    fn default() -> Self {
        SignInBrake::new(PER_NAME, PER_ADDRESS)
    }
}

/// The key an address is counted under: IPv4 (also when written as IPv4-mapped IPv6) as is,
/// IPv6 by its /64 prefix, since one host or home network usually holds a whole /64.
pub fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl SignInBrake {
    /// A brake with the given limits.
    pub fn new(per_name: Limit, per_address: Limit) -> Self {
        SignInBrake {
            tables: Mutex::new(Tables {
                names: Table::new(per_name),
                addresses: Table::new(per_address),
                next_id: 0,
            }),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Every change below is complete before the lock is released, so a poisoned lock still
        // guards consistent tables.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the brake for `user` from `address` and, if it lets the attempt through, counts it
    /// as a failure at once, in the same critical section.
    pub fn reserve(&self, user: &str, address: IpAddr, now: Instant) -> Result<Attempt, Held> {
        let name = user.to_lowercase();
        let address = address_key(address);
        let mut t = self.tables();
        if let Some(wait) = t.names.held(&name, now) {
            return Err(Held::Name(wait));
        }
        if let Some(wait) = t.addresses.held(&address, now) {
            return Err(Held::Address(wait));
        }
        let id = t.next_id;
        t.next_id += 1;
        t.names.record(&name, id, now);
        t.addresses.record(&address, id, now);
        Ok(Attempt { id, name, address })
    }

    /// The attempt's password was right: the name's failures are forgotten and the attempt no
    /// longer counts against the address.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut t = self.tables();
        t.names.forget(&attempt.name);
        t.addresses.withdraw(&attempt.address, attempt.id);
    }

    /// The attempt reached no verdict (nothing was learnt about the password): it no longer
    /// counts at all.
    pub fn withdraw(&self, attempt: Attempt) {
        let mut t = self.tables();
        t.names.withdraw(&attempt.name, attempt.id);
        t.addresses.withdraw(&attempt.address, attempt.id);
    }

    /// How many names and addresses are tracked (for tests of the memory bound).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let t = self.tables();
        (t.names.keys.len(), t.addresses.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_attempt_that_reaches_the_limit_is_still_checked_and_the_next_is_held() {
        let brake = SignInBrake::default();
        let t0 = Instant::now();
        for i in 0..5 {
            let at = t0 + Duration::from_secs(i);
            // Dropped unanswered: a failure.
            let _ = brake.reserve("Alice", ip("192.0.2.1"), at).expect("passes");
        }
        let held = brake
            .reserve("ALICE", ip("192.0.2.2"), t0 + Duration::from_secs(6))
            .expect_err("held");
        let Held::Name(wait) = held else {
            panic!("held by name, got {held:?}")
        };
        assert!(wait <= PER_NAME.hold && wait > PER_NAME.hold - Duration::from_secs(5));
        assert!(brake
            .reserve(
                "Alice",
                ip("192.0.2.1"),
                t0 + PER_NAME.hold + Duration::from_secs(5)
            )
            .is_ok());
        assert!(brake
            .reserve("Bob", ip("192.0.2.1"), t0 + Duration::from_secs(6))
            .is_ok());
    }

    #[test]
    fn reservations_held_at_once_never_exceed_the_limit() {
        let brake = SignInBrake::default();
        let now = Instant::now();
        // A hundred guesses in flight at the same instant, none answered yet.
        let passed: Vec<Attempt> = (0..100)
            .filter_map(|_| brake.reserve("alice", ip("192.0.2.1"), now).ok())
            .collect();
        assert_eq!(passed.len(), PER_NAME.max_failures);
    }

    #[test]
    fn reservations_from_many_threads_never_exceed_the_limit() {
        let brake = SignInBrake::default();
        let now = Instant::now();
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(|| {
                        (0..20)
                            .filter(|_| brake.reserve("alice", ip("192.0.2.1"), now).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum()
        });
        assert_eq!(passed, PER_NAME.max_failures);
    }

    #[test]
    fn one_address_trying_many_names_is_held_after_twenty() {
        let brake = SignInBrake::default();
        let now = Instant::now();
        for i in 0..PER_ADDRESS.max_failures {
            let _ = brake
                .reserve(&format!("user{i}"), ip("198.51.100.7"), now)
                .expect("passes");
        }
        assert!(matches!(
            brake.reserve("someone-else", ip("198.51.100.7"), now),
            Err(Held::Address(_))
        ));
        // Another address is not held, and the names themselves are not either.
        assert!(brake.reserve("user0", ip("198.51.100.8"), now).is_ok());
    }

    #[test]
    fn ipv6_addresses_are_counted_by_their_64_bit_prefix() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn a_success_forgets_the_names_failures_and_does_not_count_against_the_address() {
        let brake = SignInBrake::default();
        let now = Instant::now();
        for _ in 0..4 {
            let _ = brake
                .reserve("Alice", ip("192.0.2.1"), now)
                .expect("passes");
        }
        let right = brake
            .reserve("Alice", ip("192.0.2.1"), now)
            .expect("passes");
        brake.succeeded(right);
        // The name starts again from zero...
        for _ in 0..4 {
            let _ = brake
                .reserve("alice", ip("192.0.2.2"), now)
                .expect("passes");
        }
        assert!(brake.reserve("alice", ip("192.0.2.3"), now).is_ok());
        // ...and the address carries the four failures only: 16 more pass, the 17th is held.
        for i in 0..16 {
            let _ = brake
                .reserve(&format!("n{i}"), ip("192.0.2.1"), now)
                .expect("passes");
        }
        assert!(matches!(
            brake.reserve("n16", ip("192.0.2.1"), now),
            Err(Held::Address(_))
        ));
    }

    #[test]
    fn a_withdrawn_attempt_no_longer_counts_and_lifts_the_hold_it_engaged() {
        let brake = SignInBrake::default();
        let now = Instant::now();
        for _ in 0..4 {
            let _ = brake
                .reserve("Alice", ip("192.0.2.1"), now)
                .expect("passes");
        }
        let fifth = brake
            .reserve("Alice", ip("192.0.2.1"), now)
            .expect("passes");
        assert!(matches!(
            brake.reserve("Alice", ip("192.0.2.1"), now),
            Err(Held::Name(_))
        ));
        brake.withdraw(fifth);
        let again = brake
            .reserve("Alice", ip("192.0.2.1"), now)
            .expect("passes");
        assert!(brake.reserve("Alice", ip("192.0.2.1"), now).is_err());
        brake.withdraw(again);
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_engage_the_brake() {
        let brake = SignInBrake::default();
        let t0 = Instant::now();
        for i in 0..10u32 {
            let at = t0 + PER_NAME.window / 4 * i;
            assert!(
                brake.reserve("Alice", ip("192.0.2.1"), at).is_ok(),
                "attempt {i}"
            );
        }
    }

    #[test]
    fn the_tables_stay_bounded_and_keep_held_keys_through_a_flood() {
        let brake = SignInBrake::default();
        let t0 = Instant::now();
        let _ = brake.reserve("early", ip("10.0.0.1"), t0).expect("passes");
        let later = t0 + PER_NAME.window + Duration::from_secs(1);
        for i in 0..(TRACKED_KEYS as u32 + 500) {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            let _ = brake.reserve(&format!("name{i}"), address, later);
        }
        let (names, addresses) = brake.tracked();
        assert!(names <= TRACKED_KEYS && addresses <= TRACKED_KEYS);
        // Keys still held survive eviction by newer, unheld ones.
        for _ in 0..5 {
            let _ = brake.reserve("target", ip("10.0.0.2"), later);
        }
        for i in 0..TRACKED_KEYS as u32 {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(0x0c00_0000 + i));
            let _ = brake.reserve(&format!("other{i}"), address, later);
        }
        assert!(matches!(
            brake.reserve("target", ip("10.0.0.3"), later),
            Err(Held::Name(_))
        ));
    }
}
