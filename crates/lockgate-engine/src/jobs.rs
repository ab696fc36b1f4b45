//! The job board: per action type, the queue of jobs waiting for a worker, so PollForJobs finds
//! them without a database round trip.
//!
//! The jobs themselves live in their executions (the decided state) and each has a `Job`
//! record labelled `queued/<action type>` while it waits (see `service::index`). A type's queue
//! is read from that index the first time a worker polls for the type, and from then on kept by
//! the effects of committed decisions; commits made while it is being read are replayed onto
//! it, so none is lost. Memory therefore holds the queues of the types workers poll, ordered by
//! creation time, never the finished jobs or the jobs workers hold. Handing a job out is not
//! persisted: after a restart an unacknowledged job is offered again, which the job-worker
//! protocol allows (at least once).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use lockgate_model::JobId;
use lockgate_shapes::ActionTypeId;

/// A key identifying an action type: `Category/Owner/Provider/Version`.
pub fn action_type_key(id: &ActionTypeId) -> String {
    format!(
        "{}/{}/{}/{}",
        id.category.as_str(),
        id.owner.as_str(),
        id.provider,
        id.version
    )
}

/// Where a job lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlace {
    /// The pipeline.
    pub pipeline: String,
    /// The execution that owns the job.
    pub execution_id: String,
}

/// A job waiting for a worker of its action type.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    /// The job id.
    pub id: JobId,
    /// Its action type's key ([`action_type_key`]).
    pub type_key: String,
    /// Its place in the queue: creation time, then creation order (see
    /// `service::index::job_position`); queues are served oldest first.
    pub order: i64,
    /// Where it lives.
    pub place: JobPlace,
}

/// A queue's order: creation time, then id.
type QueueKey = (i64, JobId);

/// A change to the queues, kept while a queue is being read so it can be replayed onto it.
#[derive(Debug, Clone)]
enum Change {
    Queued(QueuedJob),
    Gone(JobId),
}

enum Queue {
    /// Being read from the store; changes meanwhile are replayed once it is read.
    Loading(Vec<Change>),
    Loaded(BTreeMap<QueueKey, JobPlace>),
}

#[derive(Default)]
struct Board {
    queues: HashMap<String, Queue>,
    /// Where each job of a loaded queue sits.
    queued: HashMap<JobId, (String, QueueKey)>,
}

impl Board {
    fn apply(&mut self, change: Change) {
        match change {
            Change::Queued(job) => {
                let Some(Queue::Loaded(queue)) = self.queues.get_mut(&job.type_key) else {
                    return;
                };
                if self.queued.contains_key(&job.id) {
                    return;
                }
                let key = (job.order, job.id.clone());
                queue.insert(key.clone(), job.place);
                self.queued.insert(job.id, (job.type_key, key));
            }
            Change::Gone(id) => {
                if let Some((type_key, key)) = self.queued.remove(&id) {
                    if let Some(Queue::Loaded(queue)) = self.queues.get_mut(&type_key) {
                        queue.remove(&key);
                    }
                }
            }
        }
    }

    fn record(&mut self, change: Change) {
        let loading_type = match &change {
            Change::Queued(job) => Some(job.type_key.clone()),
            Change::Gone(_) => None,
        };
        for (type_key, queue) in &mut self.queues {
            if let Queue::Loading(pending) = queue {
                if loading_type.as_ref().is_none_or(|t| t == type_key) {
                    pending.push(change.clone());
                }
            }
        }
        self.apply(change);
    }
}

/// The queues of the action types workers poll.
pub struct JobBoard {
    inner: Mutex<Board>,
    /// Held while a queue is read from the store, so it is read once.
    loading: tokio::sync::Mutex<()>,
    /// Counts the times new jobs were offered, so an in-process worker waits for work instead
    /// of polling on a timer.
    offered: tokio::sync::watch::Sender<u64>,
}

impl Default for JobBoard {
    fn default() -> JobBoard {
        JobBoard {
            inner: Mutex::default(),
            loading: tokio::sync::Mutex::default(),
            offered: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl JobBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        // The board is an index of the store; a panic while holding the lock cannot leave it
        // less true than a lost update would, so recover the guard.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the queue of `type_key` is in memory.
    pub fn is_loaded(&self, type_key: &str) -> bool {
        matches!(self.lock().queues.get(type_key), Some(Queue::Loaded(_)))
    }

    /// Reads the queue of `type_key` with `read` (the store's queued jobs of that type, oldest
    /// first) unless it is in memory already; commits installed meanwhile are replayed onto it.
    pub async fn ensure_loaded<F, Fut, E>(&self, type_key: &str, read: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<QueuedJob>, E>>,
    {
        if self.is_loaded(type_key) {
            return Ok(());
        }
        let _loading = self.loading.lock().await;
        if self.is_loaded(type_key) {
            return Ok(());
        }
        self.lock()
            .queues
            .insert(type_key.to_string(), Queue::Loading(Vec::new()));
        let jobs = match read().await {
            Ok(jobs) => jobs,
            Err(e) => {
                self.lock().queues.remove(type_key);
                return Err(e);
            }
        };
        let mut board = self.lock();
        let pending = match board
            .queues
            .insert(type_key.to_string(), Queue::Loaded(BTreeMap::new()))
        {
            Some(Queue::Loading(pending)) => pending,
            _ => Vec::new(),
        };
        for job in jobs {
            board.apply(Change::Queued(job));
        }
        for change in pending {
            board.apply(change);
        }
        Ok(())
    }

    /// New jobs wait for workers.
    pub fn open(&self, jobs: impl IntoIterator<Item = QueuedJob>) {
        let mut opened = false;
        {
            let mut board = self.lock();
            for job in jobs {
                board.record(Change::Queued(job));
                opened = true;
            }
        }
        if opened {
            self.offered.send_modify(|n| *n += 1);
        }
    }

    /// Changes each time new jobs are offered (the value counts the offers).
    pub fn offers(&self) -> tokio::sync::watch::Receiver<u64> {
        self.offered.subscribe()
    }

    /// Jobs that no longer wait (acknowledged, finished, or their pipeline deleted).
    pub fn close<'a>(&self, ids: impl IntoIterator<Item = &'a JobId>) {
        let mut board = self.lock();
        for id in ids {
            board.record(Change::Gone(id.clone()));
        }
    }

    /// Up to `n` jobs of the queue of `type_key`, oldest first, after `after` (exclusive).
    pub fn candidates(
        &self,
        type_key: &str,
        after: Option<&(i64, JobId)>,
        n: usize,
    ) -> Vec<((i64, JobId), JobPlace)> {
        let board = self.lock();
        let Some(Queue::Loaded(queue)) = board.queues.get(type_key) else {
            return Vec::new();
        };
        let range = match after {
            Some(a) => queue.range((
                std::ops::Bound::Excluded(a.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => queue.range(..),
        };
        range.take(n).map(|(k, p)| (k.clone(), p.clone())).collect()
    }

    /// Takes jobs off their queue; returns those that were still on it (another poller may
    /// have taken the rest first).
    pub fn take(&self, ids: &[JobId]) -> Vec<JobId> {
        let mut board = self.lock();
        let mut taken = Vec::new();
        for id in ids {
            if board.queued.contains_key(id) {
                board.record(Change::Gone(id.clone()));
                taken.push(id.clone());
            }
        }
        taken
    }

    /// Forgets every queued job of a pipeline (when the pipeline is deleted).
    pub fn remove_pipeline(&self, pipeline: &str) {
        let mut board = self.lock();
        let gone: Vec<JobId> = board
            .queues
            .values()
            .filter_map(|q| match q {
                Queue::Loaded(queue) => Some(queue),
                Queue::Loading(_) => None,
            })
            .flat_map(|queue| queue.iter())
            .filter(|(_, place)| place.pipeline == pipeline)
            .map(|((_, id), _)| id.clone())
            .collect();
        for id in gone {
            board.record(Change::Gone(id));
        }
    }

    /// How many queued jobs memory holds (it must not grow with finished jobs).
    pub fn queued_count(&self) -> usize {
        self.lock().queued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, created: i64) -> QueuedJob {
        QueuedJob {
            id: JobId::from(id),
            type_key: "Build/Custom/X/1".into(),
            order: created,
            place: JobPlace {
                pipeline: "p".into(),
                execution_id: "e".into(),
            },
        }
    }

    fn ids(board: &JobBoard) -> Vec<String> {
        board
            .candidates("Build/Custom/X/1", None, 100)
            .into_iter()
            .map(|((_, id), _)| id.to_string())
            .collect()
    }

    #[tokio::test]
    async fn changes_made_while_a_queue_is_read_are_replayed_onto_it() {
        let board = JobBoard::default();
        board
            .ensure_loaded("Build/Custom/X/1", || async {
                // A commit lands while the store is being read: one job queued, one gone.
                board.open([job("c", 3)]);
                board.close([&JobId::from("a")]);
                Ok::<_, ()>(vec![job("a", 1), job("b", 2)])
            })
            .await
            .unwrap();
        assert_eq!(ids(&board), ["b", "c"]);
        assert_eq!(board.queued_count(), 2);
    }

    #[tokio::test]
    async fn a_job_is_taken_once_and_queues_are_served_oldest_first() {
        let board = JobBoard::default();
        board
            .ensure_loaded("Build/Custom/X/1", || async { Ok::<_, ()>(vec![]) })
            .await
            .unwrap();
        board.open([job("late", 5), job("early", 1)]);
        assert_eq!(ids(&board), ["early", "late"]);
        let first = board.take(&[JobId::from("early")]);
        let second = board.take(&[JobId::from("early")]);
        assert_eq!(first.len(), 1);
        assert!(second.is_empty());
        board.remove_pipeline("p");
        assert_eq!(board.queued_count(), 0);
    }

    #[test]
    fn jobs_of_a_queue_nobody_polled_are_not_kept() {
        let board = JobBoard::default();
        board.open([job("a", 1)]);
        assert_eq!(board.queued_count(), 0);
    }
}
