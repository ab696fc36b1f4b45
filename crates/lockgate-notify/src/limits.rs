//! How much delivery runs at once: at most `max_messages_in_flight` outbox rows in all, and at
//! most `max_connections_per_endpoint` of them sending to the same server (SMTP server, webhook
//! origin, SNS endpoint). A row is only started when it can have every slot it needs at once;
//! otherwise it waits, still due, for a delivery to finish. So a server that hangs holds at most
//! its own slots, and messages for every other server keep flowing past it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots rows take while they are being delivered.
pub(crate) struct Limits {
    messages: Arc<Semaphore>,
    per_endpoint: usize,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The slots one row holds until its delivery ends (they are released when this is dropped).
pub(crate) struct Admission {
    _message: OwnedSemaphorePermit,
    _endpoints: Vec<OwnedSemaphorePermit>,
}

impl Limits {
    /// Room for `messages` rows at once, and `per_endpoint` of them per server.
    pub(crate) fn new(messages: usize, per_endpoint: usize) -> Limits {
        Limits {
            messages: Arc::new(Semaphore::new(messages.max(1))),
            per_endpoint: per_endpoint.max(1),
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// Whether another row could start at all.
    pub(crate) fn has_room(&self) -> bool {
        self.messages.available_permits() > 0
    }

    /// A message slot plus one slot on each of `endpoints`, or nothing (and nothing taken)
    /// when any of them is full.
    pub(crate) fn try_admit(&self, endpoints: &BTreeSet<String>) -> Option<Admission> {
        let message = self.messages.clone().try_acquire_owned().ok()?;
        // The map only ever holds the configured servers, so it stays small.
        let mut known = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut permits = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let slots = known
                .entry(endpoint.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)))
                .clone();
            permits.push(slots.try_acquire_owned().ok()?);
        }
        Some(Admission {
            _message: message,
            _endpoints: permits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_full_endpoint_refuses_rows_without_taking_other_slots() {
        let limits = Limits::new(3, 1);
        let first = limits.try_admit(&set(&["http://a"])).expect("room");
        assert!(limits.try_admit(&set(&["http://a", "http://b"])).is_none());
        // The refused row took nothing: two message slots and b's slot are still free.
        let second = limits.try_admit(&set(&["http://b"])).expect("b is free");
        let third = limits.try_admit(&set(&[])).expect("a message slot is free");
        assert!(!limits.has_room());
        drop((first, second, third));
        assert!(limits.try_admit(&set(&["http://a", "http://b"])).is_some());
    }
}
