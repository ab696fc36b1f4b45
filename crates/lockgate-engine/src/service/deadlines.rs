//! Deadlines: the timeouts of running actions (approvals, jobs), the table of those armed, and
//! the scheduler that sleeps until the earliest one and fires what is due.
//!
//! Every armed deadline is a `Timer` record, written in the same commit as the decision that
//! armed it and deleted in the one that disarmed it. Memory holds only the deadlines due within
//! the next [`WINDOW_MILLIS`] (at most [`WINDOW_LIMIT`] of them): the scheduler reads them from
//! the store's due-time index when the window runs out, and a commit arms a deadline in memory
//! only when it falls inside the window read so far. A million approvals waiting seven days
//! therefore cost nothing in memory, and deadlines that passed while the server was down are
//! read and fired on the scheduler's first tick.
//!
//! Deadlines are armed and disarmed only by the effects of committed decisions (an approval
//! answered, a job finished, an execution stopped disarms its action's deadline at once). A
//! deadline that cannot be applied (the store fails) is retried with capped exponential backoff
//! counted from the failed attempt, so one days overdue is not retried in a tight loop, and
//! logged once per attempt. Each firing runs in its own task: a panic there is caught, logged
//! and retried the same way, and the scheduler carries on.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use lockgate_model::{ActionExecutionId, ExecutionId, PipelineName};
use lockgate_shapes::{ActionExecutionStatus, ErrorCode};

use lockgate_store::Collection;

use super::{index, PipelineService};
use crate::state::{Execution, PipelineState};

/// The first retry of a deadline that could not be applied waits this long (ms).
const FIRST_RETRY_MILLIS: i64 = 1_000;
/// Retries wait at most this long (ms).
const MAX_RETRY_MILLIS: i64 = 60_000;
/// How far ahead of now the deadlines in memory reach (ms).
pub const WINDOW_MILLIS: i64 = 10 * 60_000;
/// The most deadlines one look at the store brings into memory.
pub const WINDOW_LIMIT: usize = 10_000;

/// Which action a deadline belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeadlineKey {
    /// The pipeline.
    pub pipeline: PipelineName,
    /// The execution.
    pub execution_id: ExecutionId,
    /// The action execution that times out.
    pub action_execution_id: ActionExecutionId,
}

/// The time an in-progress action times out: an approval expires or a job times out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Deadline {
    /// When it is due (ms since the epoch).
    pub due_at: i64,
    /// The action it belongs to.
    pub key: DeadlineKey,
}

/// An armed deadline: when to try it next, and how many tries failed.
#[derive(Debug, Clone)]
struct Armed {
    deadline: Deadline,
    attempt_at: i64,
    failures: u32,
}

/// The armed deadlines due within the window read from the store, by action and in the order
/// they are due.
#[derive(Debug)]
pub(super) struct DeadlineTable {
    armed: HashMap<DeadlineKey, Armed>,
    queue: BTreeSet<(i64, DeadlineKey)>,
    /// Every stored deadline due at or before this is in memory (or being fired).
    loaded_until: i64,
}

impl Default for DeadlineTable {
    fn default() -> Self {
        DeadlineTable {
            armed: HashMap::new(),
            queue: BTreeSet::new(),
            loaded_until: i64::MIN,
        }
    }
}

impl DeadlineTable {
    /// Arms a deadline a commit made if it falls inside the window (later ones are read from
    /// the store when the window reaches them); true when it is new.
    fn arm_committed(&mut self, deadline: Deadline) -> bool {
        if deadline.due_at > self.loaded_until {
            return false;
        }
        self.arm(deadline)
    }

    /// Arms a deadline read from the store unless it is armed already (it may be waiting for
    /// a retry).
    fn arm_stored(&mut self, deadline: Deadline) -> bool {
        if self.armed.contains_key(&deadline.key) {
            return false;
        }
        self.arm(deadline)
    }

    /// Arms a deadline, replacing one armed for the same action; true when it is new.
    fn arm(&mut self, deadline: Deadline) -> bool {
        let key = deadline.key.clone();
        let due = deadline.due_at;
        let old = self.armed.insert(
            key.clone(),
            Armed {
                deadline,
                attempt_at: due,
                failures: 0,
            },
        );
        if let Some(old) = &old {
            self.queue.remove(&(old.attempt_at, key.clone()));
        }
        self.queue.insert((due, key));
        old.is_none_or(|o| o.deadline.due_at != due)
    }

    /// Disarms the deadline of an action, if one is armed.
    fn disarm(&mut self, key: &DeadlineKey) {
        if let Some(old) = self.armed.remove(key) {
            self.queue.remove(&(old.attempt_at, key.clone()));
        }
    }

    /// Takes every deadline whose next attempt is due at `now`, with its failure count.
    fn take_due(&mut self, now: i64) -> Vec<(Deadline, u32)> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            let Some((_, key)) = self.queue.pop_first() else {
                break;
            };
            if let Some(armed) = self.armed.remove(&key) {
                due.push((armed.deadline, armed.failures));
            }
        }
        due
    }

    /// Arms again a deadline whose attempt failed, `failures` failures so far, to be tried
    /// after a backoff counted from `now` (1 s, doubling, at most a minute), unless a decision
    /// armed the action anew meanwhile. Returns the backoff.
    fn retry_later(&mut self, deadline: Deadline, failures: u32, now: i64) -> i64 {
        let shift = failures.saturating_sub(1).min(16);
        let delay = (FIRST_RETRY_MILLIS << shift).min(MAX_RETRY_MILLIS);
        let attempt_at = now.saturating_add(delay);
        let key = deadline.key.clone();
        if self.armed.contains_key(&key) {
            return delay;
        }
        self.queue.insert((attempt_at, key.clone()));
        self.armed.insert(
            key,
            Armed {
                deadline,
                attempt_at,
                failures,
            },
        );
        delay
    }

    /// Forgets the deadlines of a pipeline.
    fn remove_pipeline(&mut self, pipeline: &str) {
        self.armed.retain(|k, _| k.pipeline != *pipeline);
        self.queue.retain(|(_, k)| k.pipeline != *pipeline);
    }

    fn next_attempt(&self) -> Option<i64> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Whether the window must be read further to cover `now`.
    fn needs_reading(&self, now: i64) -> bool {
        now.saturating_add(WINDOW_MILLIS / 2) > self.loaded_until
    }
}

/// The deadlines of the in-progress actions of an execution.
pub(super) fn deadlines_of(pipeline: &str, e: &Execution) -> Vec<Deadline> {
    e.action_runs()
        .filter(|(_, run)| run.status == ActionExecutionStatus::InProgress)
        .filter_map(|(_, run)| {
            Some(Deadline {
                due_at: run.due_at()?,
                key: DeadlineKey {
                    pipeline: PipelineName::from(pipeline),
                    execution_id: e.id.clone(),
                    action_execution_id: run.action_execution_id.clone(),
                },
            })
        })
        .collect()
}

/// The deadlines a decision arms (new, or moved) and disarms (its action was decided), found
/// by comparing the changed executions before and after it.
pub(super) fn deadline_changes<'a>(
    before: Option<&PipelineState>,
    after: &PipelineState,
    changed: impl Iterator<Item = &'a ExecutionId>,
) -> (Vec<Deadline>, Vec<DeadlineKey>) {
    let pipeline = &after.entry.declaration.name;
    let mut arm = Vec::new();
    let mut disarm = Vec::new();
    for id in changed {
        let old = before
            .and_then(|s| s.execution(id))
            .map(|e| deadlines_of(pipeline, e))
            .unwrap_or_default();
        let new = after
            .execution(id)
            .map(|e| deadlines_of(pipeline, e))
            .unwrap_or_default();
        disarm.extend(
            old.iter()
                .filter(|d| !new.iter().any(|n| n.key == d.key))
                .map(|d| d.key.clone()),
        );
        arm.extend(new.into_iter().filter(|d| !old.contains(d)));
    }
    (arm, disarm)
}

impl PipelineService {
    fn deadline_table(&self) -> std::sync::MutexGuard<'_, DeadlineTable> {
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms deadlines and wakes the scheduler when one is new.
    pub(super) fn arm_deadlines(&self, deadlines: Vec<Deadline>) {
        let mut table = self.deadline_table();
        let mut added = false;
        for d in deadlines {
            added |= table.arm_committed(d);
        }
        drop(table);
        if added {
            self.deadline_changed.notify_one();
        }
    }

    /// Disarms the deadlines of decided actions.
    pub(super) fn disarm_deadlines(&self, keys: &[DeadlineKey]) {
        let mut table = self.deadline_table();
        for k in keys {
            table.disarm(k);
        }
    }

    /// Disarms every deadline of a deleted pipeline.
    pub(super) fn disarm_pipeline_deadlines(&self, pipeline: &str) {
        self.deadline_table().remove_pipeline(pipeline);
    }

    /// How many deadlines are armed: one timer record per in-progress action with a timeout.
    pub async fn armed_deadlines(&self) -> Result<u64, lockgate_store::StoreError> {
        self.store.count(Collection::Timer, None, None).await
    }

    /// How many deadlines memory holds (those due within the window).
    pub fn deadlines_in_memory(&self) -> usize {
        self.deadline_table().armed.len()
    }

    /// Reads the stored deadlines due within the window ahead of `now` into memory. The window
    /// is widened before the store is read, so a commit that lands meanwhile either is in what
    /// is read or arms its deadline in memory itself.
    async fn read_window(&self, now: i64) -> Result<(), lockgate_store::StoreError> {
        let until = now.saturating_add(WINDOW_MILLIS);
        {
            let mut table = self.deadline_table();
            if !table.needs_reading(now) {
                return Ok(());
            }
            table.loaded_until = table.loaded_until.max(until);
        }
        let records = self
            .store
            .due(Collection::Timer, until, WINDOW_LIMIT)
            .await?;
        let mut deadlines = Vec::with_capacity(records.len());
        for r in &records {
            deadlines.push(index::read_timer(r)?);
        }
        let mut table = self.deadline_table();
        if records.len() == WINDOW_LIMIT {
            // More are due than one look brings in: the window ends before the last one read,
            // and the next look (soon, since the window is short) reads on from there.
            if let Some(last) = deadlines.last() {
                table.loaded_until = last.due_at.saturating_sub(1);
            }
        }
        for d in deadlines {
            table.arm_stored(d);
        }
        Ok(())
    }

    /// Fires every deadline due at the current time; returns how many changed an execution.
    /// Each runs in its own task, so a panic in one is logged (and retried later) and the
    /// others still fire.
    pub async fn fire_due_deadlines(self: &Arc<Self>) -> usize {
        let now = self.clock.now_millis();
        if let Err(e) = self.read_window(now).await {
            tracing::warn!(error = %e, "reading due deadlines from the store failed; retrying in a second");
            // Read again in about a second (every read starts from the earliest due timer, so
            // nothing is skipped meanwhile).
            self.deadline_table().loaded_until =
                now.saturating_add(WINDOW_MILLIS / 2 + FIRST_RETRY_MILLIS);
        }
        let due = self.deadline_table().take_due(now);
        let mut fired = 0;
        for (deadline, failures) in due {
            let svc = self.clone();
            let d = deadline.clone();
            let result = tokio::spawn(async move { svc.fire(&d).await }).await;
            let failure = match result {
                Ok(Ok(true)) => {
                    fired += 1;
                    continue;
                }
                Ok(Ok(false)) => continue,
                Ok(Err(e)) if e.code == ErrorCode::PipelineNotFoundException => continue,
                Ok(Err(e)) => e.to_string(),
                // A panic is caught here rather than ending the scheduler; the pipeline's
                // state is untouched (writes are copy-then-install), so it is retried too.
                Err(join) => format!("applying the deadline panicked: {join}"),
            };
            if !self.still_pending(&deadline).await {
                // Decided meanwhile (answered, stopped, finished): nothing to retry.
                continue;
            }
            let failures = failures + 1;
            let now = self.clock.now_millis();
            let delay = self
                .deadline_table()
                .retry_later(deadline.clone(), failures, now);
            tracing::warn!(
                error = failure,
                pipeline = %deadline.key.pipeline,
                execution = %deadline.key.execution_id,
                action_execution = %deadline.key.action_execution_id,
                failures,
                retry_in_ms = delay,
                "deadline could not be applied; retrying later"
            );
        }
        fired
    }

    /// Whether the committed state still has the deadline's action in progress with it.
    async fn still_pending(&self, d: &Deadline) -> bool {
        let Ok(state) = self.pipeline(d.key.pipeline.as_str()).await else {
            return false;
        };
        state
            .execution(&d.key.execution_id)
            .is_some_and(|e| deadlines_of(d.key.pipeline.as_str(), e).contains(d))
    }

    /// Applies one deadline: fails its action if it is still in progress. A timer whose action
    /// was decided without it (which the write path does not leave behind) is deleted.
    async fn fire(&self, d: &Deadline) -> Result<bool, lockgate_shapes::ServiceError> {
        let fired = self
            .mutate(d.key.pipeline.as_str(), |decider, _| {
                Ok(decider.deadline_reached(&d.key.execution_id, &d.key.action_execution_id))
            })
            .await;
        match fired {
            Ok(true) => Ok(true),
            Ok(false) if !self.still_pending(d).await => {
                self.store
                    .commit(vec![index::timer_removal(&d.key)])
                    .await
                    .map_err(super::internal)?;
                Ok(false)
            }
            other => other,
        }
    }

    /// When the scheduler next has something to do (ms since the epoch): fire a deadline, or
    /// read the store's next window.
    pub fn next_deadline(&self) -> Option<i64> {
        let table = self.deadline_table();
        let refill = table
            .loaded_until
            .saturating_sub(WINDOW_MILLIS / 2)
            .max(i64::MIN + 1);
        Some(table.next_attempt().map_or(refill, |at| at.min(refill)))
    }

    /// Runs the deadline scheduler until `shutdown` resolves: sleeps until the earliest
    /// deadline or until a new one is armed, then fires what is due.
    pub async fn run_scheduler(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.fire_due_deadlines().await;
            let wait = match self.next_deadline() {
                Some(due) => {
                    let ms = (due - self.clock.now_millis()).clamp(0, 60_000);
                    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                }
                // Wake up now and then anyway: the wall clock may jump (suspend, NTP, faketime).
                None => std::time::Duration::from_secs(60),
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.deadline_changed.notified() => {}
                _ = tokio::time::sleep(wait.max(std::time::Duration::from_millis(1))) => {}
            }
        }
    }
}
