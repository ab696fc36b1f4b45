//! The job board: custom-action jobs waiting for, or held by, job workers.
//!
//! PollForJobs is served from memory: each action type has a queue of job ids, so a poll costs
//! no database round trip. Handing a job out (Dispatched) is not persisted; after a restart an
//! unacknowledged job is offered again, which the job-worker protocol allows (at least once).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use lockgate_shapes::{ActionTypeId, JobStatus};

use crate::state::JobRecord;

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

#[derive(Default)]
struct Board {
    jobs: HashMap<String, JobRecord>,
    queues: HashMap<String, VecDeque<String>>,
}

/// Jobs by id, plus a queue of offered jobs per action type.
#[derive(Default)]
pub struct JobBoard {
    inner: Mutex<Board>,
}

impl JobBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        // A panic while holding this lock cannot leave the board half-updated in a way that
        // matters more than losing it, so recover the guard rather than propagate the poison.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a job; queued or dispatched jobs are offered to workers.
    pub fn insert(&self, mut job: JobRecord) {
        let mut b = self.lock();
        if matches!(
            job.status,
            JobStatus::Created | JobStatus::Queued | JobStatus::Dispatched
        ) {
            job.status = JobStatus::Queued;
            b.queues
                .entry(action_type_key(&job.action_type_id))
                .or_default()
                .push_back(job.id.clone());
        }
        b.jobs.insert(job.id.clone(), job);
    }

    /// A copy of the job with this id.
    pub fn get(&self, id: &str) -> Option<JobRecord> {
        self.lock().jobs.get(id).cloned()
    }

    /// Hands out up to `max` queued jobs of an action type whose configuration matches `query`,
    /// marking them Dispatched.
    pub fn poll(
        &self,
        type_key: &str,
        max: usize,
        query: &BTreeMap<String, String>,
    ) -> Vec<JobRecord> {
        let mut b = self.lock();
        let Board { jobs, queues } = &mut *b;
        let Some(queue) = queues.get_mut(type_key) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(queue.len());
        while let Some(id) = queue.pop_front() {
            let Some(job) = jobs.get_mut(&id) else {
                continue;
            };
            if job.status != JobStatus::Queued {
                continue;
            }
            let matches = taken.len() < max
                && query.iter().all(|(k, v)| {
                    job.data
                        .action_configuration
                        .as_ref()
                        .and_then(|c| c.configuration.as_ref())
                        .and_then(|c| c.get(k))
                        == Some(v)
                });
            if matches {
                job.status = JobStatus::Dispatched;
                taken.push(job.clone());
            } else {
                kept.push_back(id);
            }
        }
        *queue = kept;
        taken
    }

    /// Sets a job's status; terminal statuses take it off its queue.
    pub fn set_status(&self, id: &str, status: JobStatus) -> Option<JobRecord> {
        let mut b = self.lock();
        let job = b.jobs.get_mut(id)?;
        job.status = status;
        Some(job.clone())
    }

    /// Marks an acknowledged job InProgress, unless it ended meanwhile (a timeout or a stop that
    /// committed between the acknowledgement's commit and this call keeps its final status).
    pub fn mark_acknowledged(&self, id: &str) {
        let mut b = self.lock();
        if let Some(job) = b.jobs.get_mut(id) {
            if matches!(job.status, JobStatus::Dispatched | JobStatus::Queued) {
                job.status = JobStatus::InProgress;
            }
        }
    }

    /// Removes every job of a pipeline (when the pipeline is deleted).
    pub fn remove_pipeline(&self, pipeline: &str) {
        let mut b = self.lock();
        b.jobs.retain(|_, j| j.pipeline_name != pipeline);
        let Board { jobs, queues } = &mut *b;
        for q in queues.values_mut() {
            q.retain(|id| jobs.contains_key(id));
        }
    }
}
