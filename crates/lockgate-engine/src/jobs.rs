//! The job board: an index of the jobs that are not finished, so PollForJobs and the job-worker
//! calls find them without a database round trip.
//!
//! The jobs themselves live in their executions (the decided state); the board only records,
//! per action type, which job ids wait to be offered, and for every open job where it lives
//! (pipeline and execution). It is rebuilt from the state at start-up and changed only by the
//! effects of committed decisions, plus polling, which takes ids off their queue. Handing a job
//! out is not persisted: after a restart an unacknowledged job is offered again, which the
//! job-worker protocol allows (at least once). Finished jobs leave the board, so its size
//! follows the open jobs, not the history; a finished job is found through the store.

use std::collections::{HashMap, VecDeque};
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

/// Where an open job lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlace {
    /// The pipeline.
    pub pipeline: String,
    /// The execution that owns the job.
    pub execution_id: String,
}

/// A job to offer to workers of its action type.
#[derive(Debug, Clone)]
pub struct OpenJob {
    /// The job id.
    pub id: JobId,
    /// Its action type's key ([`action_type_key`]).
    pub type_key: String,
    /// Where it lives.
    pub place: JobPlace,
    /// Whether it waits to be offered (queued), rather than held by a worker.
    pub queued: bool,
}

/// What a poll does with a queued job it looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Hand it to the worker.
    Take,
    /// Leave it queued (its configuration does not match the query, or the batch is full).
    Keep,
    /// Take it off the queue: it is no longer waiting (acknowledged or finished meanwhile).
    Drop,
}

#[derive(Default)]
struct Board {
    open: HashMap<JobId, JobPlace>,
    queues: HashMap<String, VecDeque<JobId>>,
}

/// Queued job ids per action type, and the place of every open job.
#[derive(Default)]
pub struct JobBoard {
    inner: Mutex<Board>,
}

impl JobBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        // The board is an index rebuilt from the state; a panic while holding the lock cannot
        // leave it less true than a lost update would, so recover the guard.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records open jobs; queued ones are offered to workers, in the order given.
    pub fn open(&self, jobs: impl IntoIterator<Item = OpenJob>) {
        let mut b = self.lock();
        for job in jobs {
            if job.queued {
                b.queues
                    .entry(job.type_key)
                    .or_default()
                    .push_back(job.id.clone());
            }
            b.open.insert(job.id, job.place);
        }
    }

    /// Forgets finished jobs.
    pub fn close<'a>(&self, ids: impl IntoIterator<Item = &'a JobId>) {
        let mut b = self.lock();
        let mut closed = Vec::new();
        for id in ids {
            if b.open.remove(id).is_some() {
                closed.push(id);
            }
        }
        if closed.is_empty() {
            return;
        }
        for q in b.queues.values_mut() {
            q.retain(|id| !closed.contains(&id));
        }
    }

    /// Where an open job lives.
    pub fn place(&self, id: &JobId) -> Option<JobPlace> {
        self.lock().open.get(id).cloned()
    }

    /// Walks the queue of an action type in order, asking `offer` what to do with each job;
    /// returns the ids taken (off the queue) with their places.
    pub fn poll(
        &self,
        type_key: &str,
        mut offer: impl FnMut(&JobId, &JobPlace) -> Offer,
    ) -> Vec<(JobId, JobPlace)> {
        let mut b = self.lock();
        let Board { open, queues } = &mut *b;
        let Some(queue) = queues.get_mut(type_key) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        queue.retain(|id| {
            let Some(place) = open.get(id) else {
                return false;
            };
            match offer(id, place) {
                Offer::Take => {
                    taken.push((id.clone(), place.clone()));
                    false
                }
                Offer::Keep => true,
                Offer::Drop => false,
            }
        });
        taken
    }

    /// Forgets every job of a pipeline (when the pipeline is deleted).
    pub fn remove_pipeline(&self, pipeline: &str) {
        let mut b = self.lock();
        b.open.retain(|_, p| p.pipeline != pipeline);
        let Board { open, queues } = &mut *b;
        for q in queues.values_mut() {
            q.retain(|id| open.contains_key(id));
        }
    }

    /// How many open jobs the board knows (for tests: it must not grow with finished jobs).
    pub fn open_count(&self) -> usize {
        self.lock().open.len()
    }
}
