//! The change feed: which pipelines the last commits changed, so a live page can tell whether
//! what it shows changed at a cost that follows the changes, not the number of pipelines.
//!
//! Every installed commit appends one entry (the pipeline, and whether its place in the list
//! of pipelines changed: created, deleted, started or stopped waiting for approval, a new
//! latest status). The feed keeps the newest [`KEPT`] entries; a reader further behind is told
//! that it missed some and should assume everything changed.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many changes the feed remembers.
const KEPT: usize = 4096;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The pipeline that changed.
    pub pipeline: String,
    /// Whether its place in the list of pipelines (existence, status, waiting for approval)
    /// changed.
    pub listing: bool,
}

/// The changes after some point of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The point the feed has reached; ask again from here.
    pub seq: u64,
    /// The changes since the point asked about, oldest first; `None` when the reader is so far
    /// behind that the feed no longer holds them all (treat everything as changed).
    pub changes: Option<Vec<Change>>,
}

#[derive(Default)]
struct Feed {
    /// Sequence number of the newest entry (0: none yet).
    seq: u64,
    recent: VecDeque<Change>,
}

/// The feed of changes, appended to by the one write path.
#[derive(Default)]
pub struct ChangeFeed {
    inner: Mutex<Feed>,
}

impl ChangeFeed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Feed> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a change.
    pub fn record(&self, change: Change) {
        let mut feed = self.lock();
        feed.seq += 1;
        if feed.recent.len() == KEPT {
            feed.recent.pop_front();
        }
        feed.recent.push_back(change);
    }

    /// The point the feed has reached.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// The changes after `seq`.
    pub fn since(&self, seq: u64) -> Changes {
        let feed = self.lock();
        let behind = feed.seq.saturating_sub(seq);
        let changes = usize::try_from(behind)
            .ok()
            .filter(|n| *n <= feed.recent.len())
            .map(|n| {
                feed.recent
                    .iter()
                    .skip(feed.recent.len() - n)
                    .cloned()
                    .collect()
            });
        Changes {
            seq: feed.seq,
            changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(p: &str) -> Change {
        Change {
            pipeline: p.to_string(),
            listing: false,
        }
    }

    #[test]
    fn a_reader_gets_exactly_the_changes_after_its_point() {
        let feed = ChangeFeed::default();
        let start = feed.seq();
        feed.record(change("a"));
        feed.record(change("b"));
        let got = feed.since(start);
        assert_eq!(got.changes, Some(vec![change("a"), change("b")]));
        assert_eq!(feed.since(got.seq).changes, Some(vec![]));
    }

    #[test]
    fn a_reader_too_far_behind_is_told_it_missed_changes() {
        let feed = ChangeFeed::default();
        for i in 0..KEPT + 1 {
            feed.record(change(&i.to_string()));
        }
        assert_eq!(feed.since(0).changes, None);
        assert_eq!(feed.since(1).changes.map(|c| c.len()), Some(KEPT));
    }
}
