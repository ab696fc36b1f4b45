//! `PipelineService`: the one facade the API (and later the console and workers) call.
//!
//! Every write follows the same order: take the pipeline's write lock, copy its state, run the
//! [`Decider`], commit every changed record in one store commit (durable before anything else),
//! then install the new state, refresh the cached views, offer new jobs and arm deadlines.
//! Reads never take the write lock: they copy an `Arc` of the last committed state or view.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use lockgate_model::{ActionTypeRegistry, Caller};
use lockgate_shapes::*;
// The model has a shape named `Result`; the glob import above must not shadow std's.
use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use std::result::Result;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::decide::{
    ApprovalAnswer, Decider, EngineConfig, IdSource, JobReport, Outcome, RandomIds, StartRequest,
};
use crate::jobs::{action_type_key, JobBoard};
use crate::paging;
use crate::state::{Execution, JobRecord, PipelineEntry, PipelineState, Transition};
use crate::views;

/// Most executions a QUEUED or PARALLEL pipeline holds in progress at once.
const MAX_ACTIVE_EXECUTIONS: usize = 50;
/// How many finished executions per pipeline stay in memory for reads and views; older ones are
/// read from the store when asked for, so a long history costs no work on every write.
pub const FINISHED_EXECUTIONS_IN_MEMORY: usize = 100;
/// Most tags on one resource.
const MAX_TAGS: usize = 50;

/// One pipeline's slot: a write lock, the last committed state and its cached state view.
struct PipelineSlot {
    write: tokio::sync::Mutex<bool>,
    state: RwLock<Arc<PipelineState>>,
    view: RwLock<Arc<GetPipelineStateOutput>>,
}

impl PipelineSlot {
    fn new(state: PipelineState) -> Arc<Self> {
        let view = Arc::new(views::pipeline_state(&state));
        Arc::new(PipelineSlot {
            write: tokio::sync::Mutex::new(true),
            state: RwLock::new(Arc::new(state)),
            view: RwLock::new(view),
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

/// A deadline the scheduler waits for: (due at, pipeline, execution id, action execution id).
type Deadline = (i64, String, String, String);

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
    deadlines: Mutex<BTreeSet<Deadline>>,
    deadline_changed: Notify,
    /// Woken after every commit; the benchmark and live views wait on it.
    committed: Notify,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ServiceError {
    ServiceError::new(code, msg.into())
}

fn internal(e: StoreError) -> ServiceError {
    tracing::error!(error = %e, "store failure");
    ServiceError::new(
        ErrorCode::InternalFailure,
        "An internal error occurred".to_string(),
    )
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn from_json<T: serde::de::DeserializeOwned>(r: &Record) -> Result<T, StoreError> {
    serde_json::from_value(r.body.clone()).map_err(|e| StoreError::Corrupt {
        collection: r.collection.as_str(),
        key: r.key.clone(),
        reason: e.to_string(),
    })
}

fn version_key(name: &str, version: i32) -> String {
    format!("{name}/{version:010}")
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
            registry.insert(from_json(&r)?);
        }
        let mut tags = HashMap::new();
        for r in store.load(Collection::Tags).await? {
            tags.insert(r.key.clone(), from_json::<Vec<Tag>>(&r)?);
        }
        let mut states: BTreeMap<String, PipelineState> = BTreeMap::new();
        for r in store.load(Collection::Pipeline).await? {
            let entry: PipelineEntry = from_json(&r)?;
            states.insert(
                r.key.clone(),
                PipelineState {
                    entry,
                    versions: BTreeMap::new(),
                    executions: Vec::new(),
                    history_truncated: false,
                },
            );
        }
        let mut needed_versions: BTreeSet<(String, i32)> = BTreeSet::new();
        for r in store.load(Collection::Execution).await? {
            let e: Execution = from_json(&r)?;
            if let Some(st) = r.parent.as_ref().and_then(|p| states.get_mut(p)) {
                needed_versions.insert((st.entry.declaration.name.clone(), e.pipeline_version));
                st.executions.push(Arc::new(e));
            }
        }
        for (name, version) in needed_versions {
            if let Some(r) = store
                .get(Collection::PipelineVersion, &version_key(&name, version))
                .await?
            {
                let decl: PipelineDeclaration = from_json(&r)?;
                if let Some(st) = states.get_mut(&name) {
                    st.versions.insert(version, Arc::new(decl));
                }
            }
        }
        let jobs = JobBoard::default();
        for r in store.load(Collection::Job).await? {
            let job: JobRecord = from_json(&r)?;
            if !matches!(
                job.status,
                JobStatus::Succeeded | JobStatus::Failed | JobStatus::TimedOut
            ) {
                jobs.insert(job);
            }
        }
        let service = Arc::new(PipelineService {
            store,
            clock,
            cfg,
            pipelines: RwLock::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            jobs,
            action_types: RwLock::new(registry),
            tags: RwLock::new(tags),
            deadlines: Mutex::new(BTreeSet::new()),
            deadline_changed: Notify::new(),
            committed: Notify::new(),
        });
        {
            let mut pipelines = write(&service.pipelines);
            for (name, mut st) in states {
                st.executions.sort_by_key(|e| e.seq);
                st.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
                let current = st.entry.version();
                st.versions
                    .insert(current, Arc::new(st.entry.declaration.clone()));
                let ids: Vec<String> = st.executions.iter().map(|e| e.id.clone()).collect();
                service.arm_deadlines(&name, &st, ids.iter());
                pipelines.insert(name, PipelineSlot::new(st));
            }
        }
        Ok(service)
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Resolves when the next commit has been installed (for benchmarks and live views).
    pub fn committed(&self) -> tokio::sync::futures::Notified<'_> {
        self.committed.notified()
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

    /// Runs `decide` on a copy of the pipeline's state, commits what it changed, installs it.
    /// `extra` mutations (tags, job acknowledgements) are committed in the same transaction.
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
        let mut next = (*slot.state()).clone();
        let mut ids = RandomIds;
        let now = self.clock.now_millis();
        let mut extra = Vec::new();
        let (result, outcome) = {
            let ids: &mut dyn IdSource = &mut ids;
            let mut d = Decider::new(&mut next, now, ids, &self.cfg);
            let r = decide(&mut d, &mut extra)?;
            (r, d.out)
        };
        let mut mutations = self.mutations_for(&next, &outcome);
        mutations.extend(extra);
        if !mutations.is_empty() {
            self.store.commit(mutations).await.map_err(internal)?;
        }
        // Only after the commit: an execution that just finished must be stored before it may
        // leave memory.
        next.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
        self.install(&slot, next, &outcome);
        Ok(result)
    }

    /// The records a decision changed.
    fn mutations_for(&self, state: &PipelineState, outcome: &Outcome) -> Vec<Mutation> {
        let name = &state.entry.declaration.name;
        let mut m = Vec::new();
        if outcome.entry_dirty {
            m.push(Mutation::Put(Record::new(
                Collection::Pipeline,
                name.clone(),
                to_json(&state.entry),
            )));
        }
        for id in &outcome.dirty {
            if let Some(e) = state.execution(id) {
                m.push(Mutation::Put(
                    Record::new(Collection::Execution, id.clone(), to_json(e.as_ref()))
                        .with_parent(name.clone()),
                ));
            }
        }
        for job in &outcome.jobs_created {
            m.push(Mutation::Put(
                Record::new(Collection::Job, job.id.clone(), to_json(job))
                    .with_parent(name.clone()),
            ));
        }
        for (id, status) in &outcome.jobs_closed {
            if let Some(mut job) = self.jobs.get(id) {
                job.status = *status;
                m.push(Mutation::Put(
                    Record::new(Collection::Job, id.clone(), to_json(&job))
                        .with_parent(name.clone()),
                ));
            }
        }
        m
    }

    /// Publishes a committed state: readers see it, workers see its jobs, deadlines are armed.
    fn install(&self, slot: &PipelineSlot, next: PipelineState, outcome: &Outcome) {
        let view = Arc::new(views::pipeline_state(&next));
        let name = next.entry.declaration.name.clone();
        self.arm_deadlines(&name, &next, outcome.dirty.iter());
        *write(&slot.state) = Arc::new(next);
        *write(&slot.view) = view;
        for (id, status) in &outcome.jobs_closed {
            self.jobs.set_status(id, *status);
        }
        for job in &outcome.jobs_created {
            self.jobs.insert(job.clone());
        }
        self.committed.notify_waiters();
    }

    fn arm_deadlines<'a>(
        &self,
        pipeline: &str,
        state: &PipelineState,
        executions: impl Iterator<Item = &'a String>,
    ) {
        let mut added = false;
        let mut deadlines = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
        for id in executions {
            let Some(e) = state.execution(id) else {
                continue;
            };
            for (_, run) in e.action_runs() {
                if let (Some(due), ActionExecutionStatus::InProgress) = (run.deadline, run.status) {
                    added |= deadlines.insert((
                        due,
                        pipeline.to_string(),
                        e.id.clone(),
                        run.action_execution_id.clone(),
                    ));
                }
            }
        }
        drop(deadlines);
        if added {
            self.deadline_changed.notify_one();
        }
    }

    /// Fires every deadline due at the current time; returns how many changed an execution.
    pub async fn fire_due_deadlines(&self) -> usize {
        let now = self.clock.now_millis();
        let due: Vec<Deadline> = {
            let mut deadlines = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
            let mut due = Vec::new();
            while let Some(first) = deadlines.first() {
                if first.0 > now {
                    break;
                }
                if let Some(d) = deadlines.pop_first() {
                    due.push(d);
                }
            }
            due
        };
        let mut fired = 0;
        for (at, pipeline, execution, action_execution) in due {
            let result = self
                .mutate(&pipeline, |d, _| {
                    Ok(d.deadline_reached(&execution, &action_execution))
                })
                .await;
            match result {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(e) if e.code == ErrorCode::PipelineNotFoundException => {}
                Err(e) => {
                    tracing::warn!(error = %e, pipeline, "deadline could not be applied; retrying");
                    let mut deadlines = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
                    deadlines.insert((at + 1000, pipeline, execution, action_execution));
                }
            }
        }
        fired
    }

    /// The earliest armed deadline (ms since the epoch).
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .map(|d| d.0)
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

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, ActionTypeRegistry> {
        read(&self.action_types)
    }

    fn check_tags(&self, tags: &[Tag]) -> Result<(), ServiceError> {
        if tags.len() > MAX_TAGS {
            return Err(err(
                ErrorCode::TooManyTagsException,
                format!("A resource can have at most {MAX_TAGS} tags"),
            ));
        }
        if let Some(t) = tags
            .iter()
            .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
        {
            return Err(err(
                ErrorCode::InvalidTagsException,
                format!("Tag key '{}' uses the reserved prefix 'aws:'", t.key),
            ));
        }
        let mut seen = BTreeSet::new();
        if let Some(t) = tags.iter().find(|t| !seen.insert(t.key.as_str())) {
            return Err(err(
                ErrorCode::InvalidTagsException,
                format!("Tag key '{}' is given more than once", t.key),
            ));
        }
        Ok(())
    }

    fn action_type_arn(&self, id: &ActionTypeId) -> String {
        format!(
            "arn:aws:codepipeline:{}:{}:actiontype:{}/{}/{}/{}",
            self.cfg.region,
            self.cfg.account_id,
            id.owner.as_str(),
            id.category.as_str(),
            id.provider,
            id.version
        )
    }

    /// Checks that `arn` names an existing pipeline or custom action type of this account.
    fn check_resource(&self, arn: &str) -> Result<(), ServiceError> {
        let prefix = format!(
            "arn:aws:codepipeline:{}:{}:",
            self.cfg.region, self.cfg.account_id
        );
        let missing = || {
            err(
                ErrorCode::ResourceNotFoundException,
                format!("The resource with the ARN {arn} does not exist"),
            )
        };
        if !arn.starts_with("arn:aws") || arn.split(':').count() < 6 {
            return Err(err(
                ErrorCode::InvalidArnException,
                format!("The ARN {arn} is not valid"),
            ));
        }
        let Some(rest) = arn.strip_prefix(&prefix) else {
            return Err(missing());
        };
        if let Some(t) = rest.strip_prefix("actiontype:") {
            let exists = self.registry().list(None).iter().any(|at| {
                self.action_type_arn(&at.id)
                    .ends_with(&format!(":actiontype:{t}"))
            });
            return if exists { Ok(()) } else { Err(missing()) };
        }
        if read(&self.pipelines).contains_key(rest) {
            Ok(())
        } else {
            Err(missing())
        }
    }

    fn find_job(&self, id: &str) -> Result<JobRecord, ServiceError> {
        self.jobs.get(id).ok_or_else(|| {
            err(
                ErrorCode::JobNotFoundException,
                format!("The job with id {id} was not found"),
            )
        })
    }

    fn job_record(&self, job: &JobRecord) -> Mutation {
        Mutation::Put(
            Record::new(Collection::Job, job.id.clone(), to_json(job))
                .with_parent(job.pipeline_name.clone()),
        )
    }

    /// Changes the tags of an existing resource: checks the ARN, applies `edit`, checks the
    /// result against the tag rules, commits, and only then shows the new tags.
    async fn edit_tags(
        &self,
        arn: &str,
        edit: impl FnOnce(&mut Vec<Tag>),
    ) -> Result<(), ServiceError> {
        // Tag edits are read-modify-write; the admin lock keeps two of them from interleaving.
        let _admin = self.admin.lock().await;
        self.check_resource(arn)?;
        let mut tags = read(&self.tags).get(arn).cloned().unwrap_or_default();
        edit(&mut tags);
        self.check_tags(&tags)?;
        self.store
            .commit(vec![Mutation::Put(Record::new(
                Collection::Tags,
                arn.to_string(),
                to_json(&tags),
            ))])
            .await
            .map_err(internal)?;
        write(&self.tags).insert(arn.to_string(), tags);
        Ok(())
    }

    /// One execution of a pipeline, from memory or, for an old one, from the store.
    async fn find_execution(
        &self,
        state: &PipelineState,
        id: &str,
    ) -> Result<Option<Arc<Execution>>, ServiceError> {
        if let Some(e) = state.execution(id) {
            return Ok(Some(e.clone()));
        }
        if !state.history_truncated {
            return Ok(None);
        }
        let Some(r) = self
            .store
            .get(Collection::Execution, id)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if r.parent.as_deref() != Some(state.entry.declaration.name.as_str()) {
            return Ok(None);
        }
        Ok(Some(Arc::new(from_json(&r).map_err(internal)?)))
    }

    /// Every execution of a pipeline, newest first: from memory while it holds them all,
    /// otherwise from the store (only deep pages of a long history get here).
    async fn all_executions(
        &self,
        state: &PipelineState,
    ) -> Result<Vec<Arc<Execution>>, ServiceError> {
        if !state.history_truncated {
            return Ok(state.executions.iter().rev().cloned().collect());
        }
        let records = self
            .store
            .list_children(Collection::Execution, &state.entry.declaration.name)
            .await
            .map_err(internal)?;
        let mut all = Vec::with_capacity(records.len());
        for r in &records {
            all.push(Arc::new(from_json::<Execution>(r).map_err(internal)?));
        }
        all.sort_by_key(|e| std::cmp::Reverse(e.seq));
        Ok(all)
    }

    /// A copy of `state` that also knows the declarations `executions` ran, for views of old
    /// executions whose pipeline version is no longer in memory.
    async fn with_versions(
        &self,
        state: &Arc<PipelineState>,
        executions: &[Arc<Execution>],
    ) -> Result<Arc<PipelineState>, ServiceError> {
        let missing: BTreeSet<i32> = executions
            .iter()
            .map(|e| e.pipeline_version)
            .filter(|v| !state.versions.contains_key(v))
            .collect();
        if missing.is_empty() {
            return Ok(state.clone());
        }
        let mut copy = (**state).clone();
        let name = copy.entry.declaration.name.clone();
        for v in missing {
            if let Some(r) = self
                .store
                .get(Collection::PipelineVersion, &version_key(&name, v))
                .await
                .map_err(internal)?
            {
                copy.versions
                    .insert(v, Arc::new(from_json(&r).map_err(internal)?));
            }
        }
        Ok(Arc::new(copy))
    }

    /// Applies a worker's result to a job.
    async fn report_job(&self, job_id: &str, report: JobReport) -> Result<(), ServiceError> {
        let job = self.find_job(job_id)?;
        if !matches!(
            job.status,
            JobStatus::Dispatched | JobStatus::InProgress | JobStatus::Queued
        ) {
            return Err(err(
                ErrorCode::InvalidJobStateException,
                format!(
                    "The job {job_id} is {} and takes no further results",
                    job.status.as_str()
                ),
            ));
        }
        self.mutate(&job.pipeline_name, |d, _| d.job_report(&job, report))
            .await
    }

    /// The output of GetPipelineState, from the cached view.
    pub fn pipeline_state_view(
        &self,
        name: &str,
    ) -> Result<Arc<GetPipelineStateOutput>, ServiceError> {
        Ok(read(&self.slot(name)?.view).clone())
    }
}

/// One page of ListPipelineExecutions from `executions` (newest first): those older than the
/// cursor `before`, optionally only those that succeeded in a stage, and the next cursor.
fn execution_page(
    state: &PipelineState,
    executions: &[Arc<Execution>],
    before: Option<u64>,
    succeeded_in: Option<&str>,
    max: usize,
) -> (Vec<PipelineExecutionSummary>, Option<String>) {
    let mut page = Vec::new();
    for e in executions {
        if before.is_some_and(|b| e.seq >= b) {
            continue;
        }
        if let Some(stage) = succeeded_in {
            let decl = state.declaration(e.pipeline_version);
            let ok = decl
                .stages
                .iter()
                .position(|s| s.name == stage)
                .and_then(|i| e.stages.get(i)?.as_ref())
                .is_some_and(|r| r.status == StageExecutionStatus::Succeeded);
            if !ok {
                continue;
            }
        }
        if page.len() == max {
            return (page, Some(paging::encode(&(e.seq + 1).to_string())));
        }
        page.push(views::execution_summary(state, e));
    }
    (page, None)
}

/// Checks that the stage and action of an approval exist in the pipeline's current declaration.
fn check_approval_target(
    state: &PipelineState,
    stage: &str,
    action: &str,
) -> Result<(), ServiceError> {
    let decl = &state.entry.declaration;
    let Some(st) = decl.stages.iter().find(|s| s.name == stage) else {
        return Err(err(
            ErrorCode::StageNotFoundException,
            format!("Stage {stage} was not found in pipeline {}", decl.name),
        ));
    };
    if !st.actions.iter().any(|a| a.name == action) {
        return Err(err(
            ErrorCode::ActionNotFoundException,
            format!("Action {action} was not found in stage {stage}"),
        ));
    }
    Ok(())
}

fn stage_position(state: &PipelineState, stage: &str) -> Result<usize, ServiceError> {
    state
        .entry
        .declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| {
            err(
                ErrorCode::StageNotFoundException,
                format!(
                    "Stage {stage} was not found in pipeline {}",
                    state.entry.declaration.name
                ),
            )
        })
}

#[async_trait::async_trait]
impl CodePipelineService for PipelineService {
    type Context = Caller;

    async fn create_pipeline(
        &self,
        caller: &Caller,
        input: CreatePipelineInput,
    ) -> Result<CreatePipelineOutput, ServiceError> {
        let mut decl = input.pipeline;
        lockgate_model::validate::validate_pipeline(&decl, &self.registry())?;
        let tags = input.tags.unwrap_or_default();
        self.check_tags(&tags)?;
        decl.version = Some(1);
        fill_defaults(&mut decl);
        let _admin = self.admin.lock().await;
        if read(&self.pipelines).contains_key(&decl.name) {
            return Err(err(
                ErrorCode::PipelineNameInUseException,
                format!("A pipeline with the name '{}' already exists", decl.name),
            ));
        }
        let now = self.clock.now_millis();
        let name = decl.name.clone();
        let mut state = PipelineState {
            entry: PipelineEntry {
                declaration: decl.clone(),
                created: now,
                updated: now,
                transitions: BTreeMap::new(),
                next_seq: 0,
            },
            versions: BTreeMap::from([(1, Arc::new(decl.clone()))]),
            executions: Vec::new(),
            history_truncated: false,
        };
        let mut ids = RandomIds;
        let outcome = {
            let mut d = Decider::new(&mut state, now, &mut ids, &self.cfg);
            d.start(StartRequest {
                trigger_type: TriggerType::CreatePipeline,
                trigger_detail: caller.arn(),
                client_request_token: None,
                variables: default_variables(&decl),
                source_overrides: Vec::new(),
            });
            d.out
        };
        let mut mutations = self.mutations_for(&state, &outcome);
        mutations.push(Mutation::Put(
            Record::new(
                Collection::PipelineVersion,
                version_key(&name, 1),
                to_json(&decl),
            )
            .with_parent(name.clone()),
        ));
        let arn = self.cfg.pipeline_arn(&name);
        if !tags.is_empty() {
            mutations.push(Mutation::Put(Record::new(
                Collection::Tags,
                arn.clone(),
                to_json(&tags),
            )));
        }
        self.store.commit(mutations).await.map_err(internal)?;
        let slot = PipelineSlot::new(PipelineState {
            entry: state.entry.clone(),
            versions: state.versions.clone(),
            executions: Vec::new(),
            history_truncated: false,
        });
        self.install(&slot, state, &outcome);
        write(&self.pipelines).insert(name, slot);
        if !tags.is_empty() {
            write(&self.tags).insert(arn, tags.clone());
        }
        Ok(CreatePipelineOutput {
            pipeline: Some(decl),
            tags: (!tags.is_empty()).then_some(tags),
        })
    }

    async fn get_pipeline(
        &self,
        _caller: &Caller,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ServiceError> {
        let state = self.pipeline(&input.name)?;
        let current = state.entry.version();
        let pipeline = match input.version {
            None => state.entry.declaration.clone(),
            Some(v) if v == current => state.entry.declaration.clone(),
            Some(v) => {
                let found = match state.versions.get(&v) {
                    Some(d) => Some((**d).clone()),
                    None => match self
                        .store
                        .get(Collection::PipelineVersion, &version_key(&input.name, v))
                        .await
                        .map_err(internal)?
                    {
                        Some(r) => Some(from_json(&r).map_err(internal)?),
                        None => None,
                    },
                };
                found.ok_or_else(|| {
                    err(
                        ErrorCode::PipelineVersionNotFoundException,
                        format!("Pipeline {} has no version {v}", input.name),
                    )
                })?
            }
        };
        Ok(GetPipelineOutput {
            pipeline: Some(pipeline),
            metadata: Some(views::pipeline_metadata(&state.entry, &self.cfg)),
        })
    }

    async fn update_pipeline(
        &self,
        _caller: &Caller,
        input: UpdatePipelineInput,
    ) -> Result<UpdatePipelineOutput, ServiceError> {
        let mut decl = input.pipeline;
        if !read(&self.pipelines).contains_key(&decl.name) {
            return Err(err(
                ErrorCode::ValidationException,
                format!(
                    "Account '{}' does not have a pipeline with name '{}'",
                    self.cfg.account_id, decl.name
                ),
            ));
        }
        lockgate_model::validate::validate_pipeline(&decl, &self.registry())?;
        fill_defaults(&mut decl);
        let name = decl.name.clone();
        let now = self.clock.now_millis();
        self.mutate(&name, |d, extra| {
            let version = d.state.entry.version() + 1;
            decl.version = Some(version);
            let stages: BTreeSet<&str> = decl.stages.iter().map(|s| s.name.as_str()).collect();
            let entry = &mut d.state.entry;
            entry.transitions.retain(|k, _| stages.contains(k.as_str()));
            entry.declaration = decl.clone();
            entry.updated = now;
            d.state.versions.insert(version, Arc::new(decl.clone()));
            d.out.entry_dirty = true;
            extra.push(Mutation::Put(
                Record::new(
                    Collection::PipelineVersion,
                    version_key(&name, version),
                    to_json(&decl),
                )
                .with_parent(name.clone()),
            ));
            d.advance();
            Ok(UpdatePipelineOutput {
                pipeline: Some(decl.clone()),
            })
        })
        .await
    }

    async fn delete_pipeline(
        &self,
        _caller: &Caller,
        input: DeletePipelineInput,
    ) -> Result<(), ServiceError> {
        let _admin = self.admin.lock().await;
        let Some(slot) = read(&self.pipelines).get(&input.name).cloned() else {
            return Ok(());
        };
        let mut alive = slot.write.lock().await;
        let name = input.name;
        let arn = self.cfg.pipeline_arn(&name);
        let mut mutations = vec![
            Mutation::Delete {
                collection: Collection::Pipeline,
                key: name.clone(),
            },
            Mutation::Delete {
                collection: Collection::Tags,
                key: arn.clone(),
            },
        ];
        for c in [
            Collection::PipelineVersion,
            Collection::Execution,
            Collection::Job,
        ] {
            mutations.push(Mutation::DeleteChildren {
                collection: c,
                parent: name.clone(),
            });
        }
        self.store.commit(mutations).await.map_err(internal)?;
        *alive = false;
        write(&self.pipelines).remove(&name);
        write(&self.tags).remove(&arn);
        self.jobs.remove_pipeline(&name);
        Ok(())
    }

    async fn list_pipelines(
        &self,
        _caller: &Caller,
        input: ListPipelinesInput,
    ) -> Result<ListPipelinesOutput, ServiceError> {
        let max = paging::max_results(input.max_results, 100, 1000);
        let after = paging::decode(input.next_token.as_deref())?;
        let pipelines = read(&self.pipelines);
        let mut page = Vec::new();
        let mut next = None;
        for (name, slot) in pipelines.iter() {
            if after.as_ref().is_some_and(|a| name <= a) {
                continue;
            }
            if page.len() == max {
                next = page.last().and_then(|p: &PipelineSummary| p.name.clone());
                break;
            }
            page.push(views::pipeline_summary(&slot.state().entry));
        }
        Ok(ListPipelinesOutput {
            pipelines: Some(page),
            next_token: next.map(|n| paging::encode(&n)),
        })
    }

    async fn start_pipeline_execution(
        &self,
        caller: &Caller,
        input: StartPipelineExecutionInput,
    ) -> Result<StartPipelineExecutionOutput, ServiceError> {
        let state = self.pipeline(&input.name)?;
        let mut variables = default_variables(&state.entry.declaration);
        let declared: BTreeSet<&str> = state
            .entry
            .declaration
            .variables
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        for v in input.variables.iter().flatten() {
            if !declared.contains(v.name.as_str()) {
                return Err(err(
                    ErrorCode::ValidationException,
                    format!(
                        "Pipeline variable '{}' is not declared in the pipeline",
                        v.name
                    ),
                ));
            }
            variables.insert(v.name.clone(), v.value.clone());
        }
        let source_actions: BTreeSet<&str> = state
            .entry
            .declaration
            .stages
            .first()
            .into_iter()
            .flat_map(|s| s.actions.iter().map(|a| a.name.as_str()))
            .collect();
        if let Some(o) = input
            .source_revisions
            .iter()
            .flatten()
            .find(|o| !source_actions.contains(o.action_name.as_str()))
        {
            return Err(err(
                ErrorCode::ValidationException,
                format!(
                    "Source revision override names unknown source action '{}'",
                    o.action_name
                ),
            ));
        }
        let request = StartRequest {
            trigger_type: TriggerType::StartPipelineExecution,
            trigger_detail: caller.arn(),
            client_request_token: input.client_request_token.clone(),
            variables,
            source_overrides: input.source_revisions.unwrap_or_default(),
        };
        let id = self
            .mutate(&input.name, |d, _| {
                if let Some(token) = &request.client_request_token {
                    if let Some(e) = d
                        .state
                        .executions
                        .iter()
                        .find(|e| e.client_request_token.as_ref() == Some(token))
                    {
                        return Ok(e.id.clone());
                    }
                }
                let mode = d.state.entry.execution_mode();
                let active = d.state.executions.iter().filter(|e| e.is_active()).count();
                if mode != ExecutionMode::Superseded && active >= MAX_ACTIVE_EXECUTIONS {
                    return Err(err(
                        ErrorCode::ConcurrentPipelineExecutionsLimitExceededException,
                        format!(
                            "The pipeline already has {active} executions in progress, the most a {} pipeline may have",
                            mode.as_str()
                        ),
                    ));
                }
                Ok(d.start(request))
            })
            .await?;
        Ok(StartPipelineExecutionOutput {
            pipeline_execution_id: Some(id),
        })
    }

    async fn stop_pipeline_execution(
        &self,
        _caller: &Caller,
        input: StopPipelineExecutionInput,
    ) -> Result<StopPipelineExecutionOutput, ServiceError> {
        let id = input.pipeline_execution_id.clone();
        self.mutate(&input.pipeline_name, |d, _| {
            d.stop(&id, input.abandon.unwrap_or(false), input.reason.clone())
        })
        .await?;
        Ok(StopPipelineExecutionOutput {
            pipeline_execution_id: Some(input.pipeline_execution_id),
        })
    }

    async fn get_pipeline_execution(
        &self,
        _caller: &Caller,
        input: GetPipelineExecutionInput,
    ) -> Result<GetPipelineExecutionOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name)?;
        let e = self
            .find_execution(&state, &input.pipeline_execution_id)
            .await?
            .ok_or_else(|| {
                err(
                    ErrorCode::PipelineExecutionNotFoundException,
                    format!(
                        "Pipeline execution {} was not found in pipeline {}",
                        input.pipeline_execution_id, input.pipeline_name
                    ),
                )
            })?;
        Ok(GetPipelineExecutionOutput {
            pipeline_execution: Some(views::pipeline_execution(&state, &e)),
        })
    }

    async fn list_pipeline_executions(
        &self,
        _caller: &Caller,
        input: ListPipelineExecutionsInput,
    ) -> Result<ListPipelineExecutionsOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name)?;
        let max = paging::max_results(input.max_results, 100, 100);
        let before: Option<u64> = match paging::decode(input.next_token.as_deref())? {
            Some(s) => Some(s.parse().map_err(|_| paging::invalid())?),
            None => None,
        };
        let succeeded_in = input
            .filter
            .and_then(|f| f.succeeded_in_stage)
            .and_then(|f| f.stage_name);
        let in_memory: Vec<Arc<Execution>> = state.executions.iter().rev().cloned().collect();
        let (page, next) = execution_page(&state, &in_memory, before, succeeded_in.as_deref(), max);
        // The newest executions are in memory; only a page reaching past them reads the store.
        let (page, next) = if next.is_none() && state.history_truncated {
            let all = self.all_executions(&state).await?;
            let state = self.with_versions(&state, &all).await?;
            execution_page(&state, &all, before, succeeded_in.as_deref(), max)
        } else {
            (page, next)
        };
        Ok(ListPipelineExecutionsOutput {
            pipeline_execution_summaries: Some(page),
            next_token: next,
        })
    }

    async fn get_pipeline_state(
        &self,
        _caller: &Caller,
        input: GetPipelineStateInput,
    ) -> Result<GetPipelineStateOutput, ServiceError> {
        Ok((*self.pipeline_state_view(&input.name)?).clone())
    }

    async fn list_action_executions(
        &self,
        _caller: &Caller,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name)?;
        let max = paging::max_results(input.max_results, 100, 100);
        let offset: usize = match paging::decode(input.next_token.as_deref())? {
            Some(s) => s.parse().map_err(|_| paging::invalid())?,
            None => 0,
        };
        let filter_id = input.filter.as_ref().and_then(|f| {
            f.pipeline_execution_id.clone().or_else(|| {
                f.latest_in_pipeline_execution
                    .as_ref()
                    .map(|l| l.pipeline_execution_id.clone())
            })
        });
        let mut details = Vec::new();
        match filter_id {
            Some(id) => {
                let e = self.find_execution(&state, &id).await?.ok_or_else(|| {
                    err(
                        ErrorCode::PipelineExecutionNotFoundException,
                        format!(
                            "Pipeline execution {id} was not found in pipeline {}",
                            input.pipeline_name
                        ),
                    )
                })?;
                let state = self.with_versions(&state, std::slice::from_ref(&e)).await?;
                details = views::action_execution_details(&state, &e, &self.cfg);
            }
            None => {
                let mut executions: Vec<Arc<Execution>> =
                    state.executions.iter().rev().cloned().collect();
                let in_memory: usize = executions.iter().map(|e| e.action_runs().count()).sum();
                if state.history_truncated && in_memory <= offset + max {
                    executions = self.all_executions(&state).await?;
                }
                let state = self.with_versions(&state, &executions).await?;
                for e in &executions {
                    details.extend(views::action_execution_details(&state, e, &self.cfg));
                    if details.len() > offset + max {
                        break;
                    }
                }
            }
        }
        let total = details.len();
        let page: Vec<ActionExecutionDetail> = details.into_iter().skip(offset).take(max).collect();
        let next = (offset + page.len() < total)
            .then(|| paging::encode(&(offset + page.len()).to_string()));
        Ok(ListActionExecutionsOutput {
            action_execution_details: Some(page),
            next_token: next,
        })
    }

    async fn put_approval_result(
        &self,
        caller: &Caller,
        input: PutApprovalResultInput,
    ) -> Result<PutApprovalResultOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name)?;
        check_approval_target(&state, &input.stage_name, &input.action_name)?;
        let answer = ApprovalAnswer {
            stage: input.stage_name,
            action: input.action_name,
            token: input.token,
            approved: input.result.status == ApprovalStatus::Approved,
            summary: input.result.summary,
            approver: caller.arn(),
        };
        let at = self
            .mutate(&input.pipeline_name, |d, _| {
                check_approval_target(d.state, &answer.stage, &answer.action)?;
                d.answer_approval(&answer)
            })
            .await?;
        Ok(PutApprovalResultOutput {
            approved_at: Some(Timestamp(at)),
        })
    }

    async fn retry_stage_execution(
        &self,
        _caller: &Caller,
        input: RetryStageExecutionInput,
    ) -> Result<RetryStageExecutionOutput, ServiceError> {
        let id = input.pipeline_execution_id.clone();
        self.mutate(&input.pipeline_name, |d, _| {
            stage_position(d.state, &input.stage_name)?;
            d.retry(&id, &input.stage_name, input.retry_mode)
        })
        .await?;
        Ok(RetryStageExecutionOutput {
            pipeline_execution_id: Some(input.pipeline_execution_id),
        })
    }

    async fn enable_stage_transition(
        &self,
        caller: &Caller,
        input: EnableStageTransitionInput,
    ) -> Result<(), ServiceError> {
        self.set_transition(
            caller,
            &input.pipeline_name,
            &input.stage_name,
            input.transition_type,
            None,
        )
        .await
    }

    async fn disable_stage_transition(
        &self,
        caller: &Caller,
        input: DisableStageTransitionInput,
    ) -> Result<(), ServiceError> {
        self.set_transition(
            caller,
            &input.pipeline_name,
            &input.stage_name,
            input.transition_type,
            Some(input.reason),
        )
        .await
    }

    async fn create_custom_action_type(
        &self,
        _caller: &Caller,
        input: CreateCustomActionTypeInput,
    ) -> Result<CreateCustomActionTypeOutput, ServiceError> {
        let tags = input.tags.unwrap_or_default();
        self.check_tags(&tags)?;
        let id = ActionTypeId {
            category: input.category,
            owner: ActionOwner::Custom,
            provider: input.provider,
            version: input.version,
        };
        let props = input.configuration_properties.unwrap_or_default();
        let keys = props.iter().filter(|p| p.key).count();
        if keys > 3 {
            return Err(err(
                ErrorCode::ValidationException,
                "A custom action type can have at most 3 key configuration properties",
            ));
        }
        let mut names = BTreeSet::new();
        if let Some(p) = props.iter().find(|p| !names.insert(p.name.as_str())) {
            return Err(err(
                ErrorCode::ValidationException,
                format!(
                    "Configuration property '{}' is declared more than once",
                    p.name
                ),
            ));
        }
        for details in [
            &input.input_artifact_details,
            &input.output_artifact_details,
        ] {
            if details.minimum_count > details.maximum_count {
                return Err(err(
                    ErrorCode::ValidationException,
                    "minimumCount must not exceed maximumCount",
                ));
            }
        }
        let action_type = ActionType {
            id: id.clone(),
            settings: input.settings,
            action_configuration_properties: Some(props),
            input_artifact_details: input.input_artifact_details,
            output_artifact_details: input.output_artifact_details,
        };
        let _admin = self.admin.lock().await;
        if self.registry().contains(&id) {
            return Err(err(
                ErrorCode::ValidationException,
                format!("The action type {} already exists", action_type_key(&id)),
            ));
        }
        let arn = self.action_type_arn(&id);
        let mut mutations = vec![Mutation::Put(Record::new(
            Collection::ActionType,
            action_type_key(&id),
            to_json(&action_type),
        ))];
        if !tags.is_empty() {
            mutations.push(Mutation::Put(Record::new(
                Collection::Tags,
                arn.clone(),
                to_json(&tags),
            )));
        }
        self.store.commit(mutations).await.map_err(internal)?;
        write(&self.action_types).insert(action_type.clone());
        if !tags.is_empty() {
            write(&self.tags).insert(arn, tags.clone());
        }
        Ok(CreateCustomActionTypeOutput {
            action_type,
            tags: (!tags.is_empty()).then_some(tags),
        })
    }

    async fn delete_custom_action_type(
        &self,
        _caller: &Caller,
        input: DeleteCustomActionTypeInput,
    ) -> Result<(), ServiceError> {
        let id = ActionTypeId {
            category: input.category,
            owner: ActionOwner::Custom,
            provider: input.provider,
            version: input.version,
        };
        let _admin = self.admin.lock().await;
        if !self.registry().contains(&id) {
            return Err(err(
                ErrorCode::ValidationException,
                format!("The action type {} does not exist", action_type_key(&id)),
            ));
        }
        let arn = self.action_type_arn(&id);
        self.store
            .commit(vec![
                Mutation::Delete {
                    collection: Collection::ActionType,
                    key: action_type_key(&id),
                },
                Mutation::Delete {
                    collection: Collection::Tags,
                    key: arn.clone(),
                },
            ])
            .await
            .map_err(internal)?;
        write(&self.action_types).remove(&id);
        write(&self.tags).remove(&arn);
        Ok(())
    }

    async fn list_action_types(
        &self,
        _caller: &Caller,
        input: ListActionTypesInput,
    ) -> Result<ListActionTypesOutput, ServiceError> {
        if input.next_token.is_some() {
            paging::decode(input.next_token.as_deref())?;
        }
        Ok(ListActionTypesOutput {
            action_types: self.registry().list(input.action_owner_filter),
            next_token: None,
        })
    }

    async fn poll_for_jobs(
        &self,
        _caller: &Caller,
        input: PollForJobsInput,
    ) -> Result<PollForJobsOutput, ServiceError> {
        if !self.registry().contains(&input.action_type_id) {
            return Err(err(
                ErrorCode::ActionTypeNotFoundException,
                format!(
                    "The action type {} was not found",
                    action_type_key(&input.action_type_id)
                ),
            ));
        }
        let max = usize::try_from(input.max_batch_size.unwrap_or(1).clamp(1, 100)).unwrap_or(1);
        let query = input.query_param.unwrap_or_default();
        let jobs = self
            .jobs
            .poll(&action_type_key(&input.action_type_id), max, &query);
        Ok(PollForJobsOutput {
            jobs: Some(jobs.iter().map(|j| views::job(j, &self.cfg)).collect()),
        })
    }

    async fn acknowledge_job(
        &self,
        _caller: &Caller,
        input: AcknowledgeJobInput,
    ) -> Result<AcknowledgeJobOutput, ServiceError> {
        let job = self.find_job(&input.job_id)?;
        if job.nonce != input.nonce {
            return Err(err(
                ErrorCode::InvalidNonceException,
                format!("The nonce for job {} does not match", input.job_id),
            ));
        }
        if !matches!(job.status, JobStatus::Dispatched | JobStatus::Queued) {
            return Ok(AcknowledgeJobOutput {
                status: Some(job.status),
            });
        }
        let job_id = input.job_id.clone();
        let status = self
            .mutate(&job.pipeline_name, |_, extra| {
                let mut job = self.find_job(&job_id)?;
                if matches!(job.status, JobStatus::Dispatched | JobStatus::Queued) {
                    job.status = JobStatus::InProgress;
                    extra.push(self.job_record(&job));
                }
                Ok(job.status)
            })
            .await?;
        if status == JobStatus::InProgress {
            self.jobs.mark_acknowledged(&input.job_id);
        }
        Ok(AcknowledgeJobOutput {
            status: Some(status),
        })
    }

    async fn get_job_details(
        &self,
        _caller: &Caller,
        input: GetJobDetailsInput,
    ) -> Result<GetJobDetailsOutput, ServiceError> {
        let job = self.find_job(&input.job_id)?;
        Ok(GetJobDetailsOutput {
            job_details: Some(JobDetails {
                id: Some(job.id.clone()),
                data: Some(job.data.clone()),
                account_id: Some(self.cfg.account_id.clone()),
            }),
        })
    }

    async fn put_job_success_result(
        &self,
        _caller: &Caller,
        input: PutJobSuccessResultInput,
    ) -> Result<(), ServiceError> {
        self.report_job(
            &input.job_id,
            JobReport::Success {
                current_revision: input.current_revision,
                continuation_token: input.continuation_token,
                details: input.execution_details,
                output_variables: input.output_variables.unwrap_or_default(),
            },
        )
        .await
    }

    async fn put_job_failure_result(
        &self,
        _caller: &Caller,
        input: PutJobFailureResultInput,
    ) -> Result<(), ServiceError> {
        self.report_job(&input.job_id, JobReport::Failure(input.failure_details))
            .await
    }

    async fn tag_resource(
        &self,
        _caller: &Caller,
        input: TagResourceInput,
    ) -> Result<TagResourceOutput, ServiceError> {
        self.check_tags(&input.tags)?;
        self.edit_tags(&input.resource_arn, |tags| {
            for t in input.tags {
                match tags.iter_mut().find(|x| x.key == t.key) {
                    Some(x) => x.value = t.value,
                    None => tags.push(t),
                }
            }
        })
        .await?;
        Ok(TagResourceOutput {})
    }

    async fn untag_resource(
        &self,
        _caller: &Caller,
        input: UntagResourceInput,
    ) -> Result<UntagResourceOutput, ServiceError> {
        self.edit_tags(&input.resource_arn, |tags| {
            tags.retain(|t| !input.tag_keys.contains(&t.key));
        })
        .await?;
        Ok(UntagResourceOutput {})
    }

    async fn list_tags_for_resource(
        &self,
        _caller: &Caller,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        self.check_resource(&input.resource_arn)?;
        let tags = read(&self.tags)
            .get(&input.resource_arn)
            .cloned()
            .unwrap_or_default();
        let max = paging::max_results(input.max_results, 100, 100);
        let offset: usize = match paging::decode(input.next_token.as_deref())? {
            Some(s) => s.parse().map_err(|_| paging::invalid())?,
            None => 0,
        };
        let page: Vec<Tag> = tags.iter().skip(offset).take(max).cloned().collect();
        let next = (offset + page.len() < tags.len())
            .then(|| paging::encode(&(offset + page.len()).to_string()));
        Ok(ListTagsForResourceOutput {
            tags: Some(page),
            next_token: next,
        })
    }
}

impl PipelineService {
    async fn set_transition(
        &self,
        caller: &Caller,
        pipeline: &str,
        stage: &str,
        kind: StageTransitionType,
        disabled_reason: Option<String>,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_millis();
        self.mutate(pipeline, |d, _| {
            let mut s = stage_position(d.state, stage)?;
            if kind == StageTransitionType::Outbound {
                s += 1;
                if s >= d.state.entry.declaration.stages.len() {
                    return Err(err(
                        ErrorCode::ValidationException,
                        format!("Stage {stage} is the last stage and has no outbound transition"),
                    ));
                }
            }
            let target = d.state.entry.declaration.stages[s].name.clone();
            d.state.entry.transitions.insert(
                target,
                Transition {
                    enabled: disabled_reason.is_none(),
                    last_changed_by: caller.arn(),
                    last_changed_at: now,
                    disabled_reason: disabled_reason.clone(),
                },
            );
            d.out.entry_dirty = true;
            d.advance();
            Ok(())
        })
        .await
    }
}

/// Spells out the defaults CodePipeline reports back in a declaration: pipeline type V1 and
/// execution mode SUPERSEDED when the request named none.
fn fill_defaults(decl: &mut PipelineDeclaration) {
    decl.pipeline_type.get_or_insert(PipelineType::V1);
    decl.execution_mode.get_or_insert(ExecutionMode::Superseded);
}

fn default_variables(decl: &PipelineDeclaration) -> BTreeMap<String, String> {
    decl.variables
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.default_value.clone()?)))
        .collect()
}
