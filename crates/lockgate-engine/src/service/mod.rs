//! `PipelineService`: the one facade the API (and later the console and workers) call.
//!
//! Every write follows the same order: take the pipeline's write lock (or, to create or delete
//! a pipeline or an action type, the admin lock), copy its state, run the [`Decider`], and hand
//! the result to [`PipelineService::commit`] as a [`Decision`]: the store mutations and an
//! explicit list of [`Effect`]s. `commit` is the one write path: it writes the mutations in one
//! store commit (durable before anything else), then applies the effects in order (install the
//! new state and view, offer and close jobs, arm and disarm deadlines, wake the relay, ...),
//! then wakes whoever waits on `committed`. Reads never take the write lock: they copy an `Arc`
//! of the last committed state or view.
//!
//! This module holds the service's state, its loading from the store, the write path every
//! change goes through, and the [`CodePipelineService`] impl, which only routes each operation
//! to the submodule for its part of the API:
//! - `pipelines`: pipeline declarations (Create/Get/Update/Delete/ListPipelines).
//! - `executions`: starting, stopping and retrying executions; stage transitions.
//! - `history`: reading executions and the pipeline state, older ones from the store.
//! - `approvals`: answers to manual approvals.
//! - `action_types`: custom action types.
//! - `workers`: the job-worker protocol (PollForJobs, AcknowledgeJob, PutJob*Result).
//! - `tags`: tags on pipelines and action types.
//! - `deadlines`: action timeouts and the scheduler that fires them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use lockgate_model::notice::{outbox_body, outbox_key, NoticeKind};
use lockgate_model::{ActionTypeRegistry, Caller, JobId};
use lockgate_shapes::*;
use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use tokio::sync::Notify;

// The model has a shape named `Result`; the glob import above must not shadow std's.
use std::result::Result;

use crate::clock::Clock;
use crate::decide::{Decider, EngineConfig, IdSource, Outcome, RandomIds};
use crate::jobs::{action_type_key, JobBoard, JobPlace, OpenJob};
use crate::state::{job_finished, Execution, PipelineState};
use crate::stored;
use crate::stored::pipeline::version_key;
use crate::views;
use deadlines::{deadline_changes, deadlines_of, Deadline, DeadlineKey, DeadlineTable};

mod action_types;
mod approvals;
mod deadlines;
mod executions;
mod history;
mod pipelines;
mod tags;
mod workers;

/// How many finished executions per pipeline stay in memory for reads and views; older ones are
/// read from the store when asked for, so a long history costs no work on every write.
pub const FINISHED_EXECUTIONS_IN_MEMORY: usize = 100;

/// One pipeline's slot: a write lock, the last committed state and its cached state view.
struct PipelineSlot {
    write: tokio::sync::Mutex<bool>,
    state: RwLock<Arc<PipelineState>>,
    view: RwLock<Arc<GetPipelineStateOutput>>,
    /// How many commits have been installed; live views compare it to notice a change.
    changes: std::sync::atomic::AtomicU64,
}

impl PipelineSlot {
    fn new(state: PipelineState) -> Arc<Self> {
        let view = Arc::new(views::pipeline_state(&state));
        Arc::new(PipelineSlot {
            write: tokio::sync::Mutex::new(true),
            state: RwLock::new(Arc::new(state)),
            view: RwLock::new(view),
            changes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn state(&self) -> Arc<PipelineState> {
        read(&self.state).clone()
    }
}

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
    pipelines: RwLock<BTreeMap<String, Arc<PipelineSlot>>>,
    /// Serialises pipeline creation and deletion so a name is checked and claimed atomically.
    admin: tokio::sync::Mutex<()>,
    jobs: JobBoard,
    action_types: RwLock<ActionTypeRegistry>,
    tags: RwLock<HashMap<String, Vec<Tag>>>,
    deadlines: Mutex<DeadlineTable>,
    deadline_changed: Notify,
    /// Woken after every commit; the benchmark and live views wait on it.
    committed: Notify,
    /// Woken (with a stored permit, so no wake-up is lost) after a commit wrote outbox rows;
    /// the notification relay waits on it.
    outbox_written: Arc<Notify>,
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
pub(super) struct Decision {
    /// Written in one store commit.
    pub mutations: Vec<Mutation>,
    /// Applied in order after the commit, never before and never if it failed.
    pub effects: Vec<Effect>,
}

/// An in-memory consequence of a committed write.
pub(super) enum Effect {
    /// A pipeline's new state becomes what readers see (a new pipeline gets its slot here, so
    /// it is listed by the time anyone is woken).
    Install(Box<PipelineState>),
    /// A deleted pipeline leaves memory with its open jobs and deadlines.
    RemovePipeline(String),
    /// New jobs are offered to workers.
    OfferJobs(Vec<OpenJob>),
    /// Finished jobs leave the job board.
    CloseJobs(Vec<JobId>),
    /// Deadlines of actions that started (or moved) are armed.
    ArmDeadlines(Vec<Deadline>),
    /// Deadlines of actions that were decided are disarmed.
    DisarmDeadlines(Vec<DeadlineKey>),
    /// The notification relay is woken: outbox rows were written.
    WakeOutbox,
    /// A resource's tags are replaced (`None`: removed).
    SetTags(String, Option<Vec<Tag>>),
    /// A custom action type is added.
    AddActionType(Box<ActionType>),
    /// A custom action type is removed.
    RemoveActionType(ActionTypeId),
}

impl PipelineService {
    /// Loads every pipeline, execution, job, action type and tag from the store and builds the
    /// in-memory view. Deadlines that passed while the server was down fire on the first
    /// scheduler tick.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        cfg: EngineConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let mut registry = ActionTypeRegistry::new();
        for r in store.load(Collection::ActionType).await? {
            registry.insert(stored::action_type::read(&r)?);
        }
        let mut tags = HashMap::new();
        for r in store.load(Collection::Tags).await? {
            tags.insert(r.key.clone(), stored::tags::read(&r)?);
        }
        let mut states: BTreeMap<String, PipelineState> = BTreeMap::new();
        for r in store.load(Collection::Pipeline).await? {
            let entry = stored::pipeline::read_entry(&r)?;
            states.insert(
                r.key.clone(),
                PipelineState {
                    entry,
                    versions: BTreeMap::new(),
                    executions: Vec::new(),
                    history_truncated: false,
                    complete_from_seq: 0,
                },
            );
        }
        let mut executions: HashMap<String, Execution> = HashMap::new();
        let mut owners: HashMap<String, String> = HashMap::new();
        for r in store.load(Collection::Execution).await? {
            let e = stored::execution::read(&r)?;
            if let Some(p) = r.parent.as_ref().filter(|p| states.contains_key(*p)) {
                owners.insert(e.id.to_string(), p.clone());
                executions.insert(e.id.to_string(), e);
            }
        }
        // Records written before executions owned their jobs keep each job in its own `Job`
        // record; such a job joins its execution here, and is stored with it at its next change.
        for r in store.load(Collection::Job).await? {
            if let Some(job) = stored::job::read_legacy(&r)? {
                if let Some(e) = executions.get_mut(job.execution_id.as_str()) {
                    if e.job(&job.id).is_none() {
                        e.jobs.push(job);
                    }
                }
            }
        }
        let mut needed_versions: BTreeSet<(String, i32)> = BTreeSet::new();
        for (id, mut e) in executions {
            let Some(st) = owners.get(&id).and_then(|p| states.get_mut(p)) else {
                continue;
            };
            e.jobs
                .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            needed_versions.insert((st.entry.declaration.name.clone(), e.pipeline_version));
            st.executions.push(Arc::new(e));
        }
        for (name, version) in needed_versions {
            if let Some(r) = store
                .get(Collection::PipelineVersion, &version_key(&name, version))
                .await?
            {
                let decl = stored::pipeline::read_version(&r)?;
                if let Some(st) = states.get_mut(&name) {
                    st.versions.insert(version, Arc::new(decl));
                }
            }
        }
        let service = Arc::new(PipelineService {
            store,
            clock,
            cfg,
            pipelines: RwLock::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            jobs: JobBoard::default(),
            action_types: RwLock::new(registry),
            tags: RwLock::new(tags),
            deadlines: Mutex::new(DeadlineTable::default()),
            deadline_changed: Notify::new(),
            committed: Notify::new(),
            outbox_written: Arc::new(Notify::new()),
        });
        let mut open_jobs = Vec::new();
        let mut deadlines = Vec::new();
        {
            let mut pipelines = write(&service.pipelines);
            for (name, mut st) in states {
                st.executions.sort_by_key(|e| e.seq);
                st.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
                let current = st.entry.version();
                st.versions
                    .insert(current, Arc::new(st.entry.declaration.clone()));
                for e in &st.executions {
                    deadlines.extend(deadlines_of(&name, e));
                    open_jobs.extend(open_jobs_of(&name, e));
                }
                pipelines.insert(name, PipelineSlot::new(st));
            }
        }
        // Queued jobs are offered in the order they were created, across pipelines.
        open_jobs.sort_by_key(|(created, _)| *created);
        service.jobs.open(open_jobs.into_iter().map(|(_, job)| job));
        service.arm_deadlines(deadlines);
        Ok(service)
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

    /// How many jobs the job board holds: the open ones (queued or held by a worker). Finished
    /// jobs are not kept, so this does not grow with the history.
    pub fn open_jobs(&self) -> usize {
        self.jobs.open_count()
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

    fn slot(&self, name: &str) -> Result<Arc<PipelineSlot>, ServiceError> {
        read(&self.pipelines)
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// The last committed state of a pipeline.
    pub fn pipeline(&self, name: &str) -> Result<Arc<PipelineState>, ServiceError> {
        Ok(self.slot(name)?.state())
    }

    /// The names of every pipeline, in order.
    pub fn pipeline_names(&self) -> Vec<String> {
        read(&self.pipelines).keys().cloned().collect()
    }

    /// The output of GetPipelineState, from the cached view.
    pub fn pipeline_state_view(
        &self,
        name: &str,
    ) -> Result<Arc<GetPipelineStateOutput>, ServiceError> {
        Ok(read(&self.slot(name)?.view).clone())
    }

    /// How many changes of the pipeline have been installed since the server started; it grows
    /// with every commit that changes the pipeline, so a live view can tell it is out of date.
    pub fn change_count(&self, name: &str) -> Option<u64> {
        read(&self.pipelines)
            .get(name)
            .map(|s| s.changes.load(std::sync::atomic::Ordering::Acquire))
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
        let slot = self.slot(name)?;
        let alive = slot.write.lock().await;
        if !*alive {
            return Err(self.not_found(name));
        }
        let before = slot.state();
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
        let mut decision = self.decision(Some(&before), next, &outcome);
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
        before: Option<&PipelineState>,
        next: PipelineState,
        outcome: &Outcome,
    ) -> Decision {
        let mutations = self.mutations_for(&next, outcome);
        let name = next.entry.declaration.name.clone();
        let (arm, disarm) = deadline_changes(before, &next, outcome.dirty.iter());
        // Installed first, so that a poller offered a new job, or a deadline the scheduler
        // fires at once, finds the state that holds it.
        let mut effects = vec![Effect::Install(Box::new(next))];
        if !disarm.is_empty() {
            effects.push(Effect::DisarmDeadlines(disarm));
        }
        if !outcome.jobs_closed.is_empty() {
            effects.push(Effect::CloseJobs(
                outcome
                    .jobs_closed
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect(),
            ));
        }
        if !outcome.jobs_created.is_empty() {
            effects.push(Effect::OfferJobs(
                outcome
                    .jobs_created
                    .iter()
                    .map(|job| OpenJob {
                        id: job.id.clone(),
                        type_key: action_type_key(&job.action_type_id),
                        place: JobPlace {
                            pipeline: name.clone(),
                            execution_id: job.execution_id.to_string(),
                        },
                        queued: true,
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

    /// The records a decision changed.
    fn mutations_for(&self, state: &PipelineState, outcome: &Outcome) -> Vec<Mutation> {
        let name = &state.entry.declaration.name;
        let mut m = Vec::new();
        if outcome.entry_dirty {
            m.push(Mutation::Put(stored::pipeline::entry_record(&state.entry)));
        }
        for id in &outcome.dirty {
            if let Some(e) = state.execution(id) {
                m.push(Mutation::Put(stored::execution::record(name, e)));
            }
        }
        // The job itself is stored in its execution; this record only says where it lives, so
        // a job of an execution no longer in memory can still be found by its id.
        for job in &outcome.jobs_created {
            m.push(Mutation::Put(stored::job::place_record(name, job)));
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
            Effect::Install(next) => {
                let mut next = *next;
                // Only after the commit: an execution that just finished must be stored before
                // it may leave memory.
                next.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
                let name = next.entry.declaration.name.clone();
                let slot = read(&self.pipelines).get(&name).cloned();
                match slot {
                    Some(slot) => {
                        let view = Arc::new(views::pipeline_state(&next));
                        *write(&slot.state) = Arc::new(next);
                        *write(&slot.view) = view;
                        slot.changes
                            .fetch_add(1, std::sync::atomic::Ordering::Release);
                    }
                    None => {
                        write(&self.pipelines).insert(name, PipelineSlot::new(next));
                    }
                }
            }
            Effect::RemovePipeline(name) => {
                write(&self.pipelines).remove(&name);
                self.jobs.remove_pipeline(&name);
                self.disarm_pipeline_deadlines(&name);
            }
            Effect::OfferJobs(jobs) => self.jobs.open(jobs),
            Effect::CloseJobs(ids) => self.jobs.close(ids.iter()),
            Effect::ArmDeadlines(deadlines) => self.arm_deadlines(deadlines),
            Effect::DisarmDeadlines(keys) => self.disarm_deadlines(&keys),
            Effect::WakeOutbox => self.outbox_written.notify_one(),
            Effect::SetTags(arn, Some(tags)) => {
                write(&self.tags).insert(arn, tags);
            }
            Effect::SetTags(arn, None) => {
                write(&self.tags).remove(&arn);
            }
            Effect::AddActionType(t) => {
                write(&self.action_types).insert(*t);
            }
            Effect::RemoveActionType(id) => {
                write(&self.action_types).remove(&id);
            }
        }
    }
}

/// The open jobs of an execution, with their creation times, for the job board.
fn open_jobs_of(pipeline: &str, e: &Execution) -> Vec<(i64, OpenJob)> {
    e.jobs
        .iter()
        .filter(|j| !job_finished(j.status))
        .map(|j| {
            (
                j.created,
                OpenJob {
                    id: j.id.clone(),
                    type_key: action_type_key(&j.action_type_id),
                    place: JobPlace {
                        pipeline: pipeline.to_string(),
                        execution_id: e.id.to_string(),
                    },
                    queued: j.status != JobStatus::InProgress,
                },
            )
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
