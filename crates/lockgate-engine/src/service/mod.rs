//! `PipelineService`: the one facade the API (and later the console and workers) call.
//!
//! Every write follows the same order: take the pipeline's write lock (its slot's; or, to
//! change action types or tags, the admin lock), copy its state, run the [`Decider`], and hand
//! the result to [`PipelineService::commit`] as a [`Decision`]: the store mutations and an
//! explicit list of [`Effect`]s. `commit` is the one write path: it writes the mutations in one
//! store commit (durable before anything else), then applies the effects in order (install the
//! new state and view, queue and close jobs, arm and disarm deadlines, wake the relay, ...),
//! then records the change in the change feed and wakes whoever waits on `committed`. Reads
//! never take the write lock: they copy an `Arc` of the last committed state or view.
//!
//! Memory holds what is hot, not everything: a bounded cache of pipeline slots (`cache`),
//! loaded from the store's indexes on a miss (`index`: a pipeline's active and shown
//! executions and its newest finished ones), the job queues workers poll (`crate::jobs`) and
//! the deadlines due soon (`deadlines`). Start-up reads none of the pipelines.
//!
//! This module holds the service's state, its loading, the write path every change goes
//! through, and the [`CodePipelineService`] impl, which only routes each operation to the
//! submodule for its part of the API:
//! - `pipelines`: pipeline declarations (Create/Get/Update/Delete/ListPipelines).
//! - `listing`: the console's list of pipelines (paged, searched, filtered by status).
//! - `executions`: starting, stopping and retrying executions; stage transitions.
//! - `history`: reading executions and the pipeline state, older ones from the store.
//! - `approvals`: answers to manual approvals.
//! - `action_types`: custom action types.
//! - `workers`: the job-worker protocol (PollForJobs, AcknowledgeJob, PutJob*Result).
//! - `tags`: tags on pipelines and action types.
//! - `deadlines`: action timeouts and the scheduler that fires them.
//! - `state_view`: the cached GetPipelineState answer, typed and encoded per wire protocol.
//! - `upgrade`: indexing a store written before the indexes existed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use lockgate_model::notice::{outbox_body, outbox_key, NoticeKind};
use lockgate_model::{ActionTypeRegistry, Caller, JobId};
use lockgate_shapes::*;
use lockgate_store::{Collection, Mutation, Record, Scan, Store, StoreError};
use tokio::sync::Notify;

// The model has a shape named `Result`; the glob import above must not shadow std's.
use std::result::Result;

use crate::clock::Clock;
use crate::decide::{Decider, EngineConfig, IdSource, Outcome, RandomIds};
use crate::jobs::{action_type_key, JobBoard, JobPlace, QueuedJob};
use crate::state::{Execution, PipelineState};
use crate::stored;
use crate::stored::pipeline::version_key;
use cache::{PipelineSlot, SlotCache};
use changes::{Change, ChangeFeed};
use deadlines::{deadline_changes, Deadline, DeadlineKey, DeadlineTable};

mod action_types;
mod approvals;
mod cache;
pub mod changes;
mod deadlines;
mod executions;
mod history;
pub mod index;
pub mod listing;
mod pipelines;
mod rule_types;
mod state_view;
mod tags;
mod unheard;
mod upgrade;
mod workers;

pub use unheard::UnheardTopic;

/// How many finished executions per pipeline stay in memory for reads and views; older ones are
/// read from the store when asked for, so a long history costs no work on every write.
pub const FINISHED_EXECUTIONS_IN_MEMORY: usize = 20;

/// How many pipelines memory keeps by default (least recently used ones leave first).
pub const DEFAULT_PIPELINE_CACHE: usize = 10_000;

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// The CodePipeline service over a store: pipelines, executions, approvals, jobs, tags.
pub struct PipelineService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cfg: EngineConfig,
    /// The pipelines in memory.
    cache: SlotCache,
    /// Serialises changes to action types and tags (read-modify-write of one record).
    admin: tokio::sync::Mutex<()>,
    jobs: JobBoard,
    action_types: RwLock<ActionTypeRegistry>,
    deadlines: Mutex<DeadlineTable>,
    deadline_changed: Notify,
    /// Woken after every commit; the benchmark and live views wait on it.
    committed: Notify,
    /// Which pipelines the last commits changed.
    changes: ChangeFeed,
    /// Woken (with a stored permit, so no wake-up is lost) after a commit wrote outbox rows;
    /// the notification relay waits on it.
    outbox_written: Arc<Notify>,
    /// Approvals naming a topic nobody is subscribed to, for the console.
    unheard: unheard::UnheardTopics,
    /// The artifact store's credentials, handed to job workers as `artifactCredentials` (set
    /// once, when the artifact store is an S3 API with keys of its own).
    artifact_credentials: std::sync::OnceLock<lockgate_shapes::AWSSessionCredentials>,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ServiceError {
    ServiceError::new(code, msg.into())
}

/// What a client is told when the store's disk is full. `ServiceUnavailable` (503) is a code
/// every operation may return; SDKs retry it, which is harmless because nothing was changed.
pub const DISK_FULL_MESSAGE: &str =
    "Lockgate cannot store the change: the disk holding its data is full. Nothing was changed.";

fn internal(e: StoreError) -> ServiceError {
    if let StoreError::Full(_) = e {
        tracing::error!(error = %e, "the store's disk is full; the change was refused");
        return ServiceError::new(ErrorCode::ServiceUnavailable, DISK_FULL_MESSAGE);
    }
    tracing::error!(error = %e, "store failure");
    ServiceError::new(
        ErrorCode::InternalFailure,
        "An internal error occurred".to_string(),
    )
}

/// What a write decided: the records to store and what to do in memory once they are durable.
#[derive(Default)]
struct Decision {
    /// Written in one store commit.
    pub mutations: Vec<Mutation>,
    /// Applied in order after the commit, never before and never if it failed.
    pub effects: Vec<Effect>,
}

/// An in-memory consequence of a committed write.
enum Effect {
    /// A pipeline's new state becomes what readers see in its slot; `listing` says whether its
    /// place in the list of pipelines changed.
    Install {
        slot: Arc<PipelineSlot>,
        state: Box<PipelineState>,
        listing: bool,
    },
    /// A deleted pipeline leaves memory with its queued jobs and deadlines.
    RemovePipeline(Arc<PipelineSlot>, String),
    /// New jobs are queued for workers.
    QueueJobs(Vec<QueuedJob>),
    /// Jobs no longer wait for a worker.
    CloseJobs(Vec<JobId>),
    /// Deadlines of actions that started (or moved) are armed.
    ArmDeadlines(Vec<Deadline>),
    /// Deadlines of actions that were decided are disarmed.
    DisarmDeadlines(Vec<DeadlineKey>),
    /// The notification relay is woken: outbox rows were written.
    WakeOutbox,
    /// A custom action type is added.
    AddActionType(Box<ActionType>),
    /// A custom action type is removed.
    RemoveActionType(ActionTypeId),
}

impl PipelineService {
    /// Opens the service over a store: reads the action types (and, once, indexes a store
    /// written before the indexes existed). Pipelines are read when first used, deadlines by
    /// the scheduler's first tick (those that passed while the server was down fire then), and
    /// job queues when workers first poll, so start-up does not grow with the installation.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: EngineConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let mut registry = ActionTypeRegistry::new();
        for r in store.load(Collection::ActionType).await? {
            registry.insert(stored::action_type::read(&r)?);
        }
        upgrade::index_if_needed(store.as_ref()).await?;
        Ok(Arc::new(PipelineService {
            cache: SlotCache::new(cfg.pipeline_cache),
            store,
            clock,
            cfg,
            admin: tokio::sync::Mutex::new(()),
            jobs: JobBoard::default(),
            action_types: RwLock::new(registry),
            deadlines: Mutex::new(DeadlineTable::default()),
            deadline_changed: Notify::new(),
            committed: Notify::new(),
            changes: ChangeFeed::default(),
            outbox_written: Arc::new(Notify::new()),
            unheard: unheard::UnheardTopics::default(),
            artifact_credentials: std::sync::OnceLock::new(),
        }))
    }

    /// Hands `credentials` to every job worker with its jobs (`artifactCredentials`), so
    /// workers elsewhere can read and write the artifacts in the S3 API the server uses. Only
    /// the first call counts.
    pub fn hand_out_artifact_credentials(
        &self,
        credentials: lockgate_shapes::AWSSessionCredentials,
    ) {
        let _ = self.artifact_credentials.set(credentials);
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Signalled after every commit that wrote approval notices to the outbox, so the
    /// notification relay can send them at once instead of at its next scheduled look.
    pub fn outbox_written(&self) -> Arc<Notify> {
        self.outbox_written.clone()
    }

    /// Resolves when the next commit has been installed (for benchmarks and live views).
    pub fn committed(&self) -> tokio::sync::futures::Notified<'_> {
        self.committed.notified()
    }

    /// Changes each time new jobs wait for workers (after their commit), so an in-process
    /// worker can wait for work instead of polling on a timer.
    pub fn jobs_offered(&self) -> tokio::sync::watch::Receiver<u64> {
        self.jobs.offers()
    }

    /// The point the change feed has reached.
    pub fn change_seq(&self) -> u64 {
        self.changes.seq()
    }

    /// The pipelines changed after point `seq` of the change feed.
    pub fn changes_since(&self, seq: u64) -> changes::Changes {
        self.changes.since(seq)
    }

    /// How many queued jobs memory holds: those of the action types workers poll. Finished
    /// jobs are not kept, so this does not grow with the history.
    pub fn queued_jobs_in_memory(&self) -> usize {
        self.jobs.queued_count()
    }

    /// How many pipelines memory holds.
    pub fn pipelines_in_memory(&self) -> usize {
        self.cache.len()
    }

    fn not_found(&self, name: &str) -> ServiceError {
        err(
            ErrorCode::PipelineNotFoundException,
            format!(
                "Account '{}' does not have a pipeline with name '{}'",
                self.cfg.account_id, name
            ),
        )
    }

    /// The slot of a pipeline, read from the store if memory does not hold it. The slot holds
    /// no state when there is no such pipeline.
    async fn slot(&self, name: &str) -> Result<Arc<PipelineSlot>, ServiceError> {
        let slot = self.cache.slot(name);
        slot.ensure_loaded(|| self.read_pipeline(name))
            .await
            .map_err(internal)?;
        Ok(slot)
    }

    /// The last committed state of a pipeline.
    pub async fn pipeline(&self, name: &str) -> Result<Arc<PipelineState>, ServiceError> {
        self.slot(name)
            .await?
            .state()
            .ok_or_else(|| self.not_found(name))
    }

    /// The configuration each action's latest run started with, references resolved (see
    /// [`views::resolved_configurations`]).
    pub async fn resolved_configurations(
        &self,
        name: &str,
    ) -> Result<BTreeMap<(String, String), BTreeMap<String, String>>, ServiceError> {
        Ok(crate::views::resolved_configurations(
            &*self.pipeline(name).await?,
        ))
    }

    /// Approvals whose `NotificationArn` names a topic the configuration neither lists nor
    /// catches, as pipelines were created and updated since the server started.
    pub fn unheard_topics(&self) -> Vec<UnheardTopic> {
        self.unheard.all()
    }

    /// The output of GetPipelineState, from the cached view.
    pub async fn pipeline_state_view(
        &self,
        name: &str,
    ) -> Result<Arc<GetPipelineStateOutput>, ServiceError> {
        Ok(self.state_view(name).await?.output().clone())
    }

    /// Reads one pipeline from the store: its entry, its active executions, the finished ones
    /// GetPipelineState shows, the newest finished ones, and the declarations they ran.
    async fn read_pipeline(&self, name: &str) -> Result<Option<PipelineState>, StoreError> {
        // The entry and the newest executions are read together; only a pipeline with more
        // executions than that also needs its active and shown ones found by label.
        let newest_limit = FINISHED_EXECUTIONS_IN_MEMORY + 1;
        let (entry, newest) = self
            .store
            .get_and_scan(
                Collection::Pipeline,
                name,
                Scan::new(Collection::Execution, newest_limit)
                    .parent(name)
                    .by_position()
                    .descending(),
            )
            .await?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let entry = stored::pipeline::read_entry(&entry)?;
        let truncated = newest.len() == newest_limit;
        let (active, shown) = if truncated {
            tokio::try_join!(
                self.labelled_executions(name, index::ACTIVE),
                self.labelled_executions(name, index::SHOWN),
            )?
        } else {
            (Vec::new(), Vec::new())
        };
        let complete_from_seq = if truncated {
            newest
                .last()
                .map_or(0, |r| u64::try_from(r.position).unwrap_or(0))
        } else {
            0
        };
        let records: BTreeMap<String, Record> = active
            .into_iter()
            .chain(shown)
            .chain(newest)
            .map(|r| (r.key.clone(), r))
            .collect();
        let mut executions = Vec::with_capacity(records.len());
        for r in records.values() {
            let mut e = stored::execution::read(r)?;
            e.jobs
                .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            executions.push(Arc::new(e));
        }
        executions.sort_by_key(|e| e.seq);
        let mut versions = BTreeMap::new();
        let current = entry.version();
        versions.insert(current, Arc::clone(&entry.declaration));
        let needed: std::collections::BTreeSet<i32> =
            executions.iter().map(|e| e.pipeline_version).collect();
        for v in needed.into_iter().filter(|v| *v != current) {
            if let Some(r) = self
                .store
                .get(Collection::PipelineVersion, &version_key(name, v))
                .await?
            {
                versions.insert(v, Arc::new(stored::pipeline::read_version(&r)?));
            }
        }
        let mut state = PipelineState {
            entry,
            versions,
            executions,
            history_truncated: truncated,
            complete_from_seq,
        };
        state.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
        Ok(Some(state))
    }

    /// Every execution record of a pipeline with this label, oldest first.
    async fn labelled_executions(
        &self,
        name: &str,
        label: &str,
    ) -> Result<Vec<Record>, StoreError> {
        const PAGE: usize = 1000;
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .scan(
                    Scan::new(Collection::Execution, PAGE)
                        .parent(name)
                        .label(label)
                        .by_position()
                        .after(after),
                )
                .await?;
            after = page.last().map(Record::cursor);
            let full = page.len() == PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// The action types pipelines may use: the built-in ones and the custom ones.
    fn registry(&self) -> std::sync::RwLockReadGuard<'_, ActionTypeRegistry> {
        read(&self.action_types)
    }

    /// Runs `decide` on a copy of the pipeline's state and commits what it decided.
    /// `extra` mutations (tags, declaration versions) are committed in the same transaction.
    async fn mutate<R>(
        &self,
        name: &str,
        decide: impl FnOnce(&mut Decider<'_>, &mut Vec<Mutation>) -> Result<R, ServiceError>,
    ) -> Result<R, ServiceError> {
        let slot = self.slot(name).await?;
        let _write = slot.write.lock().await;
        let Some(before) = slot.state() else {
            return Err(self.not_found(name));
        };
        let mut next = (*before).clone();
        let mut ids = RandomIds;
        let now = self.clock.now_millis();
        let mut extra = Vec::new();
        let (result, outcome) = {
            let ids: &mut dyn IdSource = &mut ids;
            let mut d = Decider::new(&mut next, now, ids, &self.cfg);
            let r = decide(&mut d, &mut extra)?;
            (r, d.out)
        };
        let mut decision = self.decision(&slot, Some(&before), next, &outcome);
        decision.mutations.extend(extra);
        if decision.mutations.is_empty() {
            // The decision changed nothing (e.g. a deadline for an action already answered):
            // the installed state and its view are still exact, so there is nothing to rebuild.
            return Ok(result);
        }
        self.commit(decision).await?;
        Ok(result)
    }

    /// The decision a Decider reached on a pipeline: the records it changed and the effects of
    /// installing `next` (`before` is the state it started from; `None` for a new pipeline).
    fn decision(
        &self,
        slot: &Arc<PipelineSlot>,
        before: Option<&PipelineState>,
        next: PipelineState,
        outcome: &Outcome,
    ) -> Decision {
        let name = next.entry.declaration.name.clone();
        let (arm, disarm) = deadline_changes(before, &next, outcome.dirty.iter());
        let listing_before = before.map(index::listing);
        let listing_after = index::listing(&next);
        let left_queue = jobs_leaving_queue(before, &next, outcome);
        let mut mutations = self.mutations_for(
            before,
            &next,
            outcome,
            listing_before.as_ref(),
            &listing_after,
        );
        mutations.extend(arm.iter().map(|d| Mutation::Put(index::timer_record(d))));
        mutations.extend(disarm.iter().map(index::timer_removal));
        // Installed first, so that a poller offered a new job, or a deadline the scheduler
        // fires at once, finds the state that holds it.
        let mut effects = vec![Effect::Install {
            slot: slot.clone(),
            state: Box::new(next),
            listing: listing_before.as_ref() != Some(&listing_after),
        }];
        if !disarm.is_empty() {
            effects.push(Effect::DisarmDeadlines(disarm));
        }
        if !left_queue.is_empty() {
            effects.push(Effect::CloseJobs(left_queue));
        }
        if !outcome.jobs_created.is_empty() {
            effects.push(Effect::QueueJobs(
                outcome
                    .jobs_created
                    .iter()
                    .enumerate()
                    .map(|(n, job)| QueuedJob {
                        id: job.id.clone(),
                        type_key: action_type_key(&job.action_type_id),
                        order: index::job_position(job.created, n),
                        place: JobPlace {
                            pipeline: name.clone(),
                            execution_id: job.execution_id.to_string(),
                        },
                    })
                    .collect(),
            ));
        }
        if !arm.is_empty() {
            effects.push(Effect::ArmDeadlines(arm));
        }
        if !outcome.notices.is_empty() {
            effects.push(Effect::WakeOutbox);
        }
        Decision { mutations, effects }
    }

    /// The records a decision changed, with their labels and positions kept true.
    fn mutations_for(
        &self,
        before: Option<&PipelineState>,
        state: &PipelineState,
        outcome: &Outcome,
        listing_before: Option<&index::Listing>,
        listing: &index::Listing,
    ) -> Vec<Mutation> {
        let name = &state.entry.declaration.name;
        let mut m = Vec::new();
        if outcome.entry_dirty || before.is_none() {
            m.push(Mutation::Put(
                stored::pipeline::entry_record(&state.entry)
                    .with_label(listing.status.clone())
                    .with_position(listing.position()),
            ));
        } else if listing_before != Some(listing) {
            m.push(Mutation::Relabel {
                collection: Collection::Pipeline,
                key: name.clone(),
                label: Some(listing.status.clone()),
                position: listing.position(),
            });
        }
        let labels = index::execution_labels(state);
        let labels_before = before.map(index::execution_labels).unwrap_or_default();
        for e in &state.executions {
            let label = labels.get(&e.id).copied();
            if outcome.dirty.contains(&e.id) {
                m.push(Mutation::Put(index::execution_record(name, e, label)));
                m.extend(job_relabels(
                    before.and_then(|b| b.execution(&e.id)).map(|e| &**e),
                    e,
                    outcome,
                ));
            } else if labels_before.get(&e.id).copied() != label {
                m.push(Mutation::Relabel {
                    collection: Collection::Execution,
                    key: e.id.to_string(),
                    label: label.map(str::to_string),
                    position: index::position(e.seq),
                });
            }
        }
        // The job itself is stored in its execution; this record says where it lives, so a job
        // of an execution no longer in memory can still be found by its id, and its label
        // queues it for workers.
        for (n, job) in outcome.jobs_created.iter().enumerate() {
            let mut r = stored::job::place_record(name, job)
                .with_position(index::job_position(job.created, n));
            r.label = index::job_label(job);
            m.push(Mutation::Put(r));
        }
        // An approval that ends before its approval-needed message went out takes that message
        // with it in the same commit: only the decision itself is still sent.
        for id in &outcome.notices_withdrawn {
            m.push(Mutation::Delete {
                collection: Collection::Outbox,
                key: outbox_key(id.as_str(), NoticeKind::ApprovalNeeded),
            });
        }
        for notice in &outcome.notices {
            if notice.kind.is_decision() {
                m.push(Mutation::Delete {
                    collection: Collection::Outbox,
                    key: outbox_key(&notice.action_execution_id, NoticeKind::ApprovalNeeded),
                });
            }
            m.push(Mutation::Put(
                Record::new(Collection::Outbox, notice.outbox_key(), outbox_body(notice))
                    .with_parent(name.clone())
                    .with_due_at(notice.at),
            ));
        }
        m
    }

    /// The one write path: makes `decision.mutations` durable in one store commit, then applies
    /// its effects in order, then wakes whoever waits for a commit. If the commit fails nothing
    /// in memory changes and the caller gets `InternalFailure`. Callers hold the lock that
    /// serialises writes to what they change (a pipeline's write lock, or the admin lock).
    async fn commit(&self, decision: Decision) -> Result<(), ServiceError> {
        let Decision { mutations, effects } = decision;
        if !mutations.is_empty() {
            self.store.commit(mutations).await.map_err(internal)?;
        }
        for effect in effects {
            self.apply(effect);
        }
        self.committed.notify_waiters();
        Ok(())
    }

    /// Applies one effect of a committed decision.
    fn apply(&self, effect: Effect) {
        match effect {
            Effect::Install {
                slot,
                state,
                listing,
            } => {
                let mut next = *state;
                // Only after the commit: an execution that just finished must be stored before
                // it may leave memory.
                next.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
                let pipeline = next.entry.declaration.name.clone();
                slot.install(next);
                self.changes.record(Change { pipeline, listing });
            }
            Effect::RemovePipeline(slot, name) => {
                slot.clear();
                self.jobs.remove_pipeline(&name);
                self.disarm_pipeline_deadlines(&name);
                self.changes.record(Change {
                    pipeline: name,
                    listing: true,
                });
            }
            Effect::QueueJobs(jobs) => self.jobs.open(jobs),
            Effect::CloseJobs(ids) => self.jobs.close(ids.iter()),
            Effect::ArmDeadlines(deadlines) => self.arm_deadlines(deadlines),
            Effect::DisarmDeadlines(keys) => self.disarm_deadlines(&keys),
            Effect::WakeOutbox => self.outbox_written.notify_one(),
            Effect::AddActionType(t) => {
                write(&self.action_types).insert(*t);
            }
            Effect::RemoveActionType(id) => {
                write(&self.action_types).remove(&id);
            }
        }
    }
}

/// Jobs that waited for a worker before a decision and no longer do (acknowledged, finished):
/// they leave their queue.
fn jobs_leaving_queue(
    before: Option<&PipelineState>,
    after: &PipelineState,
    outcome: &Outcome,
) -> Vec<JobId> {
    let waiting = |s: JobStatus| matches!(s, JobStatus::Queued | JobStatus::Dispatched);
    let mut left: Vec<JobId> = outcome
        .jobs_closed
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    for id in &outcome.dirty {
        let (Some(old), Some(new)) = (before.and_then(|b| b.execution(id)), after.execution(id))
        else {
            continue;
        };
        for job in &new.jobs {
            if !waiting(job.status) && old.job(&job.id).is_some_and(|j| waiting(j.status)) {
                left.push(job.id.clone());
            }
        }
    }
    left
}

/// Relabels of the jobs of a changed execution whose label changed (queued → held → done).
fn job_relabels(before: Option<&Execution>, after: &Execution, outcome: &Outcome) -> Vec<Mutation> {
    after
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| !outcome.jobs_created.iter().any(|c| c.id == j.id))
        .filter_map(|(n, j)| {
            let label = index::job_label(j);
            let old = before.and_then(|b| b.job(&j.id)).map(index::job_label);
            (old.as_ref() != Some(&label)).then(|| Mutation::Relabel {
                collection: Collection::Job,
                key: j.id.to_string(),
                label,
                // Only queued jobs are read in position order, and a relabelled job has left
                // its queue, so its position need not match the one it was queued at.
                position: index::job_position(j.created, n),
            })
        })
        .collect()
}

/// The table of contents: each operation calls `handle_<operation>`, defined in the submodule for
/// its part of the API. The distinct names make a missing handler a compile error rather than a
/// call that would resolve back to this trait method.
#[async_trait::async_trait]
impl CodePipelineService for PipelineService {
    type Context = Caller;

    async fn create_pipeline(
        &self,
        caller: &Caller,
        input: CreatePipelineInput,
    ) -> Result<CreatePipelineOutput, ServiceError> {
        self.handle_create_pipeline(caller, input).await
    }

    async fn get_pipeline(
        &self,
        caller: &Caller,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ServiceError> {
        self.handle_get_pipeline(caller, input).await
    }

    async fn update_pipeline(
        &self,
        caller: &Caller,
        input: UpdatePipelineInput,
    ) -> Result<UpdatePipelineOutput, ServiceError> {
        self.handle_update_pipeline(caller, input).await
    }

    async fn delete_pipeline(
        &self,
        caller: &Caller,
        input: DeletePipelineInput,
    ) -> Result<(), ServiceError> {
        self.handle_delete_pipeline(caller, input).await
    }

    async fn list_pipelines(
        &self,
        caller: &Caller,
        input: ListPipelinesInput,
    ) -> Result<ListPipelinesOutput, ServiceError> {
        self.handle_list_pipelines(caller, input).await
    }

    async fn start_pipeline_execution(
        &self,
        caller: &Caller,
        input: StartPipelineExecutionInput,
    ) -> Result<StartPipelineExecutionOutput, ServiceError> {
        self.handle_start_pipeline_execution(caller, input).await
    }

    async fn stop_pipeline_execution(
        &self,
        caller: &Caller,
        input: StopPipelineExecutionInput,
    ) -> Result<StopPipelineExecutionOutput, ServiceError> {
        self.handle_stop_pipeline_execution(caller, input).await
    }

    async fn get_pipeline_execution(
        &self,
        caller: &Caller,
        input: GetPipelineExecutionInput,
    ) -> Result<GetPipelineExecutionOutput, ServiceError> {
        self.handle_get_pipeline_execution(caller, input).await
    }

    async fn list_pipeline_executions(
        &self,
        caller: &Caller,
        input: ListPipelineExecutionsInput,
    ) -> Result<ListPipelineExecutionsOutput, ServiceError> {
        self.handle_list_pipeline_executions(caller, input).await
    }

    async fn get_pipeline_state(
        &self,
        caller: &Caller,
        input: GetPipelineStateInput,
    ) -> Result<GetPipelineStateOutput, ServiceError> {
        self.handle_get_pipeline_state(caller, input).await
    }

    async fn list_action_executions(
        &self,
        caller: &Caller,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ServiceError> {
        self.handle_list_action_executions(caller, input).await
    }

    async fn put_approval_result(
        &self,
        caller: &Caller,
        input: PutApprovalResultInput,
    ) -> Result<PutApprovalResultOutput, ServiceError> {
        self.handle_put_approval_result(caller, input).await
    }

    async fn retry_stage_execution(
        &self,
        caller: &Caller,
        input: RetryStageExecutionInput,
    ) -> Result<RetryStageExecutionOutput, ServiceError> {
        self.handle_retry_stage_execution(caller, input).await
    }

    async fn enable_stage_transition(
        &self,
        caller: &Caller,
        input: EnableStageTransitionInput,
    ) -> Result<(), ServiceError> {
        self.handle_enable_stage_transition(caller, input).await
    }

    async fn disable_stage_transition(
        &self,
        caller: &Caller,
        input: DisableStageTransitionInput,
    ) -> Result<(), ServiceError> {
        self.handle_disable_stage_transition(caller, input).await
    }

    async fn create_custom_action_type(
        &self,
        caller: &Caller,
        input: CreateCustomActionTypeInput,
    ) -> Result<CreateCustomActionTypeOutput, ServiceError> {
        self.handle_create_custom_action_type(caller, input).await
    }

    async fn delete_custom_action_type(
        &self,
        caller: &Caller,
        input: DeleteCustomActionTypeInput,
    ) -> Result<(), ServiceError> {
        self.handle_delete_custom_action_type(caller, input).await
    }

    async fn list_action_types(
        &self,
        caller: &Caller,
        input: ListActionTypesInput,
    ) -> Result<ListActionTypesOutput, ServiceError> {
        self.handle_list_action_types(caller, input).await
    }

    async fn get_action_type(
        &self,
        caller: &Caller,
        input: GetActionTypeInput,
    ) -> Result<GetActionTypeOutput, ServiceError> {
        self.handle_get_action_type(caller, input).await
    }

    async fn list_rule_types(
        &self,
        caller: &Caller,
        input: ListRuleTypesInput,
    ) -> Result<ListRuleTypesOutput, ServiceError> {
        self.handle_list_rule_types(caller, input).await
    }

    async fn poll_for_jobs(
        &self,
        caller: &Caller,
        input: PollForJobsInput,
    ) -> Result<PollForJobsOutput, ServiceError> {
        self.handle_poll_for_jobs(caller, input).await
    }

    async fn acknowledge_job(
        &self,
        caller: &Caller,
        input: AcknowledgeJobInput,
    ) -> Result<AcknowledgeJobOutput, ServiceError> {
        self.handle_acknowledge_job(caller, input).await
    }

    async fn get_job_details(
        &self,
        caller: &Caller,
        input: GetJobDetailsInput,
    ) -> Result<GetJobDetailsOutput, ServiceError> {
        self.handle_get_job_details(caller, input).await
    }

    async fn put_job_success_result(
        &self,
        caller: &Caller,
        input: PutJobSuccessResultInput,
    ) -> Result<(), ServiceError> {
        self.handle_put_job_success_result(caller, input).await
    }

    async fn put_job_failure_result(
        &self,
        caller: &Caller,
        input: PutJobFailureResultInput,
    ) -> Result<(), ServiceError> {
        self.handle_put_job_failure_result(caller, input).await
    }

    async fn tag_resource(
        &self,
        caller: &Caller,
        input: TagResourceInput,
    ) -> Result<TagResourceOutput, ServiceError> {
        self.handle_tag_resource(caller, input).await
    }

    async fn untag_resource(
        &self,
        caller: &Caller,
        input: UntagResourceInput,
    ) -> Result<UntagResourceOutput, ServiceError> {
        self.handle_untag_resource(caller, input).await
    }

    async fn list_tags_for_resource(
        &self,
        caller: &Caller,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        self.handle_list_tags_for_resource(caller, input).await
    }
}
