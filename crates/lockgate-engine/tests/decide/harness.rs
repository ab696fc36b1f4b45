//! The decision-test harness, and the one place these tests call the engine's `Decider`.
//!
//! A [`Harness`] holds one pipeline's [`PipelineState`] in memory, a manual clock (an `i64` that
//! only moves when told to) and ids that count up, and applies commands to it the way
//! `PipelineService` does, without a store, a lock or an async runtime: copy the state, run the
//! `Decider` on the copy, and on success install the copy, note the jobs it reported created and
//! closed, and arm the deadlines of the executions it changed; on a refusal drop the copy. Jobs
//! are read from the decided state (`Execution::jobs`), where the `Decider` records them and the
//! service stores them, so the tests see what the service really keeps; the harness keeps no job
//! list of its own. The few rules the service applies around the `Decider` (an approval's stage
//! and action must exist, the active-execution limit, finding a job and its status before a
//! worker's report, how a transition is changed) are repeated here, each next to a note of where
//! the service has it.
//!
//! Everything the tests know about the `Decider`'s signatures (its requests, `Outcome`,
//! `JobRecord`) stays in this file, so when those change only this file has to follow. Tests
//! read the decided state (`Execution`, `StageRun`, `ActionRun`) through the accessors below.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lockgate_engine::decide::{
    stage_position, ApprovalAnswer, Decider, IdSource, JobReport, Outcome, StartRequest,
};
use lockgate_engine::service::FINISHED_EXECUTIONS_IN_MEMORY;
use lockgate_engine::state::job_finished;
use lockgate_engine::state::{ActionRun, Execution, JobRecord, PipelineEntry, PipelineState};
use lockgate_engine::EngineConfig;
use lockgate_model::notice::NoticeKind;
use lockgate_model::{ActionTypeRegistry, ApprovalToken, ExecutionId, JobId};
use lockgate_shapes::{
    ActionExecutionStatus, ErrorCode, ExecutionMode, FailureDetails, FailureType, JobStatus,
    PipelineDeclaration, PipelineExecutionStatus, ServiceError, StageExecutionStatus,
    StageRetryMode, StageTransitionType, TriggerType,
};

use crate::pipelines::{build_type, source_type};

/// Where the manual clock starts: 2023-11-14T22:13:20Z.
pub const START: i64 = 1_700_000_000_000;
/// One minute in milliseconds.
pub const MINUTE: i64 = 60 * 1000;
/// One hour in milliseconds.
pub const HOUR: i64 = 60 * MINUTE;
/// One day in milliseconds.
pub const DAY: i64 = 24 * HOUR;
/// How long a job may run before its action times out, in these tests.
pub const JOB_TIMEOUT: i64 = HOUR;
/// The job timeout of one job of an action type Lockgate runs itself.
pub const BUILTIN_JOB_TIMEOUT: i64 = 10 * MINUTE;
/// Who answers approvals and changes transitions.
pub const ALICE: &str = "arn:aws:iam::123456789012:user/Alice";
/// The most executions a QUEUED or PARALLEL pipeline holds in progress; the service's
/// `MAX_ACTIVE_EXECUTIONS` (service/executions.rs).
pub const MAX_ACTIVE_EXECUTIONS: usize = 50;

/// Ids that count up: `00000000-0000-4000-8000-000000000001`, ... and `nonce-1`, ...
#[derive(Debug, Default)]
pub struct CountingIds {
    next: u64,
}

impl IdSource for CountingIds {
    fn uuid(&mut self) -> String {
        self.next += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next)
    }

    fn nonce(&mut self) -> String {
        self.next += 1;
        format!("nonce-{}", self.next)
    }
}

/// What one command changed, as the service would persist it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// Executions the decider reported changed.
    pub executions: BTreeSet<String>,
    /// Whether the pipeline entry (sequence counter, transitions) changed.
    pub entry: bool,
    /// Jobs created, by id.
    pub jobs_created: Vec<String>,
    /// Jobs closed, with the status they closed with.
    pub jobs_closed: Vec<(String, JobStatus)>,
    /// Approval notices recorded: their kind and the approval's action execution id.
    pub notices: Vec<(NoticeKind, String)>,
    /// What the decider changed in the state without reporting it in its outcome: the service
    /// persists only what the outcome names, so anything here would be lost on a restart.
    pub unreported: Vec<String>,
}

impl Changes {
    /// Whether the command changed nothing at all.
    pub fn is_empty(&self) -> bool {
        self.executions.is_empty()
            && !self.entry
            && self.jobs_created.is_empty()
            && self.jobs_closed.is_empty()
            && self.notices.is_empty()
            && self.unreported.is_empty()
    }
}

/// A job, as a worker and the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// The job id.
    pub id: String,
    /// The execution it belongs to.
    pub execution_id: String,
    /// The stage index within the execution's pipeline version.
    pub stage: usize,
    /// The action index within the stage.
    pub action: usize,
    /// The action execution it belongs to.
    pub action_execution_id: String,
    /// Its status.
    pub status: JobStatus,
    /// The continuation token a worker handed back for it, for a continuation job.
    pub continuation_token: Option<String>,
    /// When it was created.
    pub created: i64,
    /// The nonce a worker presents to acknowledge it.
    pub nonce: String,
}

impl JobView {
    /// Whether a worker may still report on it.
    pub fn is_open(&self) -> bool {
        !job_finished(self.status)
    }
}

/// A deadline the harness fired.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredDeadline {
    /// When it was due (`i64::MAX` when the action execution had no deadline).
    pub due: i64,
    /// When it was fired.
    pub at: i64,
    /// The action execution it was for.
    pub action_execution_id: String,
    /// Whether it changed anything (an action still in progress timed out).
    pub changed: bool,
}

/// A command the decider refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The error the caller gets.
    pub error: ServiceError,
    /// Whether the decider had changed its working copy before refusing (the service drops that
    /// copy, but a refusal should not have touched it).
    pub touched: bool,
}

/// One pipeline's decided state with a manual clock; see the module documentation.
pub struct Harness {
    state: PipelineState,
    now: i64,
    ids: CountingIds,
    cfg: EngineConfig,
    /// Armed deadlines: (due, execution id, action execution id), as the service's scheduler.
    deadlines: BTreeSet<(i64, String, String)>,
    last: Changes,
    last_refusal: Option<Refusal>,
    creations: Vec<String>,
    closures: Vec<(String, JobStatus)>,
    accepted_tokens: Vec<String>,
    fired: Vec<FiredDeadline>,
}

impl Harness {
    /// Creates the pipeline as CreatePipeline does (validation, defaults, version 1) and starts
    /// its first execution. Panics if the declaration is invalid.
    pub fn new(decl: PipelineDeclaration) -> Harness {
        Harness::create(decl).unwrap_or_else(|e| panic!("the pipeline is valid: {e}"))
    }

    /// Creates the pipeline, or answers the error CreatePipeline would.
    pub fn create(decl: PipelineDeclaration) -> Result<Harness, ServiceError> {
        let mut registry = ActionTypeRegistry::new();
        registry.insert(source_type());
        registry.insert(build_type());
        // Validation fills in the defaults, as in `handle_create_pipeline`.
        let mut decl = lockgate_model::validate_pipeline(&decl, &registry)?.into_declaration();
        decl.version = Some(1);
        let decl = Arc::new(decl);
        let state = PipelineState {
            entry: PipelineEntry {
                declaration: Arc::clone(&decl),
                created: START,
                updated: START,
                transitions: BTreeMap::new(),
                next_seq: 0,
            },
            versions: BTreeMap::from([(1, decl)]),
            executions: Vec::new(),
            history_truncated: false,
            complete_from_seq: 0,
        };
        let mut h = Harness {
            state,
            now: START,
            ids: CountingIds::default(),
            cfg: EngineConfig {
                account_id: "123456789012".to_string(),
                region: "us-east-1".to_string(),
                job_timeout_millis: JOB_TIMEOUT,
                builtin_job_timeout_millis: BUILTIN_JOB_TIMEOUT,
                notification_topics: BTreeSet::new(),
                pipeline_cache: lockgate_engine::DEFAULT_PIPELINE_CACHE,
                console_url: "http://127.0.0.1:4680".to_string(),
            },
            deadlines: BTreeSet::new(),
            last: Changes::default(),
            last_refusal: None,
            creations: Vec::new(),
            closures: Vec::new(),
            accepted_tokens: Vec::new(),
            fired: Vec::new(),
        };
        h.begin();
        h.decide(|d| {
            Ok(d.start(StartRequest {
                trigger_type: TriggerType::CreatePipeline,
                trigger_detail: ALICE.to_string(),
                client_request_token: None,
                variables: BTreeMap::new(),
                source_overrides: Vec::new(),
            }))
        })?;
        Ok(h)
    }

    // ----- commands -----

    /// StartPipelineExecution; returns the new execution's id.
    pub fn start(&mut self) -> Result<String, ServiceError> {
        self.begin();
        self.decide(|d| {
            // The active-execution limit of `handle_start_pipeline_execution`.
            let mode = d.state.entry.execution_mode();
            let active = d.state.executions.iter().filter(|e| e.is_active()).count();
            if mode != ExecutionMode::Superseded && active >= MAX_ACTIVE_EXECUTIONS {
                return Err(ServiceError::new(
                    ErrorCode::ConcurrentPipelineExecutionsLimitExceededException,
                    "too many executions in progress",
                ));
            }
            Ok(d.start(StartRequest {
                trigger_type: TriggerType::StartPipelineExecution,
                trigger_detail: ALICE.to_string(),
                client_request_token: None,
                variables: BTreeMap::new(),
                source_overrides: Vec::new(),
            }))
        })
        .map(String::from)
    }

    /// PutApprovalResult with Approved; returns when it was approved.
    pub fn approve(&mut self, stage: &str, action: &str, token: &str) -> Result<i64, ServiceError> {
        self.answer(stage, action, token, true)
    }

    /// PutApprovalResult with Rejected.
    pub fn reject(&mut self, stage: &str, action: &str, token: &str) -> Result<i64, ServiceError> {
        self.answer(stage, action, token, false)
    }

    /// PutApprovalResult.
    pub fn answer(
        &mut self,
        stage: &str,
        action: &str,
        token: &str,
        approved: bool,
    ) -> Result<i64, ServiceError> {
        self.begin();
        let answer = ApprovalAnswer {
            stage: stage.to_string(),
            action: action.to_string(),
            token: ApprovalToken::from(token),
            approved,
            summary: if approved {
                "Looks good"
            } else {
                "Not this one"
            }
            .to_string(),
            approver: ALICE.to_string(),
        };
        let at = self.decide(|d| {
            check_approval_target(d.state, stage, action)?;
            d.answer_approval(&answer)
        })?;
        self.accepted_tokens.push(token.to_string());
        Ok(at)
    }

    /// PutJobSuccessResult without a continuation token.
    pub fn succeed_job(&mut self, job_id: &str) -> Result<(), ServiceError> {
        self.report(job_id, success(None))
    }

    /// PutJobSuccessResult reporting output variables.
    pub fn succeed_job_with_variables(
        &mut self,
        job_id: &str,
        variables: &[(&str, &str)],
    ) -> Result<(), ServiceError> {
        let output_variables = variables
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.report(
            job_id,
            JobReport::Success {
                current_revision: None,
                continuation_token: None,
                details: None,
                output_variables,
            },
        )
    }

    /// The configuration job `job_id` hands its worker.
    pub fn job_configuration(&self, job_id: &str) -> Option<BTreeMap<String, String>> {
        self.job_record(job_id)?
            .data
            .action_configuration
            .as_ref()?
            .configuration
            .clone()
    }

    /// PutJobSuccessResult with a continuation token: the action goes on with a new job.
    pub fn continue_job(&mut self, job_id: &str, token: &str) -> Result<(), ServiceError> {
        self.report(job_id, success(Some(token.to_string())))
    }

    /// PutJobFailureResult (JobFailed).
    pub fn fail_job(&mut self, job_id: &str, message: &str) -> Result<(), ServiceError> {
        self.report(
            job_id,
            JobReport::Failure(FailureDetails {
                r#type: FailureType::JobFailed,
                message: message.to_string(),
                external_execution_id: None,
            }),
        )
    }

    /// A worker's report, checked against the job's status first as `report_job` does
    /// (service/workers.rs).
    fn report(&mut self, job_id: &str, report: JobReport) -> Result<(), ServiceError> {
        self.begin();
        let Some(job) = self.job_record(job_id).cloned() else {
            return self.refuse(job_not_found(job_id));
        };
        if job_finished(job.status) {
            return self.refuse(ServiceError::new(
                ErrorCode::InvalidJobStateException,
                format!("The job {job_id} takes no further results"),
            ));
        }
        self.decide(|d| d.job_report(&job, report))
    }

    /// AcknowledgeJob; returns the job's status afterwards. Finding the job is the service's
    /// `find_job` (service/workers.rs); the nonce and status checks that follow are the
    /// `Decider`'s (`handle_acknowledge_job` repeats them before deciding, with the same
    /// answers, to skip a write that would change nothing), so they are left to it here.
    pub fn acknowledge_job(
        &mut self,
        job_id: &str,
        nonce: &str,
    ) -> Result<JobStatus, ServiceError> {
        self.begin();
        let Some(execution_id) = self.job_record(job_id).map(|j| j.execution_id.clone()) else {
            return self.refuse(job_not_found(job_id));
        };
        self.decide(|d| d.acknowledge_job(&execution_id, &JobId::from(job_id), nonce))
    }

    /// The scheduler's call for one deadline, at the current time, whether or not it is due.
    /// Returns whether anything changed.
    pub fn deadline_reached(&mut self, execution_id: &str, action_execution_id: &str) -> bool {
        self.begin();
        let due = self.deadline_of(action_execution_id);
        let changed = self
            .decide(|d| Ok(d.deadline_reached(&execution_id.into(), &action_execution_id.into())))
            .unwrap_or(false);
        self.fired.push(FiredDeadline {
            due: due.unwrap_or(i64::MAX),
            at: self.now,
            action_execution_id: action_execution_id.to_string(),
            changed,
        });
        changed
    }

    /// Moves the clock forward and fires every armed deadline then due, earliest first, as the
    /// service's `fire_due_deadlines`. Returns how many changed an execution.
    pub fn advance(&mut self, millis: i64) -> usize {
        self.begin();
        self.now += millis;
        let mut changed = 0;
        while let Some(first) = self.deadlines.first().cloned() {
            if first.0 > self.now {
                break;
            }
            self.deadlines.pop_first();
            let (due, execution, action_execution) = first;
            let fired = self
                .decide(|d| {
                    Ok(d.deadline_reached(
                        &execution.as_str().into(),
                        &action_execution.as_str().into(),
                    ))
                })
                .unwrap_or(false);
            changed += usize::from(fired);
            self.fired.push(FiredDeadline {
                due,
                at: self.now,
                action_execution_id: action_execution,
                changed: fired,
            });
        }
        changed
    }

    /// StopPipelineExecution: abandoning in-progress actions, or letting jobs finish.
    pub fn stop(&mut self, execution_id: &str, abandon: bool) -> Result<(), ServiceError> {
        self.begin();
        self.decide(|d| {
            d.stop(
                &execution_id.into(),
                abandon,
                Some("Stopped by a test".to_string()),
            )
        })
    }

    /// RetryStageExecution.
    pub fn retry(
        &mut self,
        execution_id: &str,
        stage: &str,
        mode: StageRetryMode,
    ) -> Result<(), ServiceError> {
        self.begin();
        self.decide(|d| {
            stage_position(d.state, stage)?;
            d.retry(&execution_id.into(), stage, mode)
        })
    }

    /// DisableStageTransition of a stage's inbound transition.
    pub fn disable_inbound(&mut self, stage: &str) -> Result<(), ServiceError> {
        self.set_transition(stage, StageTransitionType::Inbound, false)
    }

    /// EnableStageTransition of a stage's inbound transition.
    pub fn enable_inbound(&mut self, stage: &str) -> Result<(), ServiceError> {
        self.set_transition(stage, StageTransitionType::Inbound, true)
    }

    /// Disable- or EnableStageTransition through `Decider::set_transition`, as the service
    /// does.
    pub fn set_transition(
        &mut self,
        stage: &str,
        kind: StageTransitionType,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        self.begin();
        let reason = (!enabled).then(|| "Held by a test".to_string());
        self.decide(|d| d.set_transition(stage, kind, ALICE.to_string(), reason))
    }

    // ----- what happened -----

    /// The current time.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The decided state.
    pub fn state(&self) -> &PipelineState {
        &self.state
    }

    /// What the last command changed.
    pub fn last(&self) -> &Changes {
        &self.last
    }

    /// The last command's refusal, if it was refused.
    pub fn last_refusal(&self) -> Option<&Refusal> {
        self.last_refusal.as_ref()
    }

    /// Every job the decider reported created so far, in order.
    pub fn creations(&self) -> &[String] {
        &self.creations
    }

    /// Every job closure so far, in order.
    pub fn closures(&self) -> &[(String, JobStatus)] {
        &self.closures
    }

    /// Every approval token an answer was accepted for, in order.
    pub fn accepted_tokens(&self) -> &[String] {
        &self.accepted_tokens
    }

    /// Every deadline fired so far, in order.
    pub fn fired(&self) -> &[FiredDeadline] {
        &self.fired
    }

    /// Everything decided, for "nothing changed" comparisons: the entry and every execution,
    /// jobs included. (Armed deadlines are the scheduler's bookkeeping, not decided state: firing
    /// one that finds nothing to do disarms it and changes nothing.)
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "entry": self.state.entry,
            "executions": self.state.executions.iter().map(|e| e.as_ref()).collect::<Vec<_>>(),
        })
    }

    // ----- reading the state -----

    /// Execution ids in start order.
    pub fn execution_ids(&self) -> Vec<String> {
        self.state
            .executions
            .iter()
            .map(|e| e.id.to_string())
            .collect()
    }

    /// The newest execution's id.
    pub fn latest(&self) -> String {
        self.state
            .executions
            .last()
            .map(|e| e.id.to_string())
            .expect("the pipeline has an execution")
    }

    /// An execution.
    pub fn execution(&self, id: &str) -> &Execution {
        self.state
            .execution(&ExecutionId::from(id))
            .unwrap_or_else(|| panic!("execution {id} is in memory"))
    }

    /// An execution's status.
    pub fn status(&self, id: &str) -> PipelineExecutionStatus {
        self.execution(id).status
    }

    /// The status of an execution's run of a stage (`None`: not entered).
    pub fn stage_status(&self, id: &str, stage: &str) -> Option<StageExecutionStatus> {
        let s = self.stage_index(stage);
        self.execution(id).stages[s].as_ref().map(|r| r.status)
    }

    /// An execution's current run of an action (`None`: not started).
    pub fn run(&self, id: &str, stage: &str, action: &str) -> Option<&ActionRun> {
        let s = self.stage_index(stage);
        self.execution(id).stages[s]
            .as_ref()?
            .actions
            .iter()
            .flatten()
            .find(|r| r.name == action)
    }

    /// The status of an execution's current run of an action.
    pub fn action_status(
        &self,
        id: &str,
        stage: &str,
        action: &str,
    ) -> Option<ActionExecutionStatus> {
        self.run(id, stage, action).map(|r| r.status)
    }

    /// The approval token of an execution's current run of an approval.
    pub fn token(&self, id: &str, stage: &str, action: &str) -> String {
        self.run(id, stage, action)
            .and_then(|r| r.token.clone())
            .map(String::from)
            .unwrap_or_else(|| panic!("{stage}/{action} of {id} has a token"))
    }

    /// The current job of an execution's run of a custom action.
    pub fn job_for(&self, id: &str, stage: &str, action: &str) -> String {
        self.run(id, stage, action)
            .and_then(|r| r.job_id.clone())
            .map(String::from)
            .unwrap_or_else(|| panic!("{stage}/{action} of {id} has a job"))
    }

    /// A job of an execution in memory, as its execution records it.
    pub fn job(&self, job_id: &str) -> Option<JobView> {
        self.job_record(job_id).map(view)
    }

    /// Every job the executions in memory record, by id. (Executions dropped from memory take
    /// their jobs with them; the service reads those from the store, these tests never start
    /// that many.)
    pub fn jobs(&self) -> Vec<JobView> {
        let mut jobs: Vec<JobView> = self
            .state
            .executions
            .iter()
            .flat_map(|e| e.jobs.iter().map(view))
            .collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        jobs
    }

    /// A job's record in its execution.
    fn job_record(&self, job_id: &str) -> Option<&JobRecord> {
        self.state
            .executions
            .iter()
            .flat_map(|e| e.jobs.iter())
            .find(|j| j.id.as_str() == job_id)
    }

    /// Jobs a worker may still report on, by id.
    pub fn open_jobs(&self) -> Vec<JobView> {
        self.jobs().into_iter().filter(JobView::is_open).collect()
    }

    /// Whether the inbound transition of `stage` is enabled.
    pub fn transition_enabled(&self, stage: &str) -> bool {
        self.state.entry.transition_enabled(stage)
    }

    /// The index of a stage in the current declaration.
    pub fn stage_index(&self, stage: &str) -> usize {
        self.state
            .entry
            .declaration
            .stages
            .iter()
            .position(|s| s.name == stage)
            .unwrap_or_else(|| panic!("stage {stage} is declared"))
    }

    /// The deadline of an in-progress action execution.
    pub fn deadline_of(&self, action_execution_id: &str) -> Option<i64> {
        self.state
            .executions
            .iter()
            .flat_map(|e| e.action_runs())
            .find(|(_, r)| r.action_execution_id == *action_execution_id)
            .and_then(|(_, r)| r.deadline)
    }

    // ----- the write path -----

    /// Starts a command: forgets what the previous one changed.
    fn begin(&mut self) {
        self.last = Changes::default();
        self.last_refusal = None;
    }

    /// Records a refusal decided before the `Decider` was asked.
    fn refuse<R>(&mut self, error: ServiceError) -> Result<R, ServiceError> {
        self.last_refusal = Some(Refusal {
            error: error.clone(),
            touched: false,
        });
        Err(error)
    }

    /// Runs `f` on a copy of the state at the current time; installs the copy when `f` succeeds
    /// and changed something, as the service's `mutate` does.
    fn decide<R>(
        &mut self,
        f: impl FnOnce(&mut Decider<'_>) -> Result<R, ServiceError>,
    ) -> Result<R, ServiceError> {
        let mut next = self.state.clone();
        let (result, outcome) = {
            let mut d = Decider::new(&mut next, self.now, &mut self.ids, &self.cfg);
            let r = f(&mut d);
            (r, d.out)
        };
        let unreported = unreported_changes(&self.state, &next, &outcome);
        match result {
            Err(error) => {
                let touched = !unreported.is_empty() || !outcome_is_empty(&outcome);
                self.last_refusal = Some(Refusal {
                    error: error.clone(),
                    touched,
                });
                Err(error)
            }
            Ok(value) => {
                self.last.unreported.extend(unreported);
                if !outcome_is_empty(&outcome) {
                    self.install(next, outcome);
                }
                Ok(value)
            }
        }
    }

    /// Installs a decided state: notes the jobs it reports and arms its deadlines.
    fn install(&mut self, mut next: PipelineState, outcome: Outcome) {
        next.forget_old_executions(FINISHED_EXECUTIONS_IN_MEMORY);
        self.state = next;
        self.last.entry |= outcome.entry_dirty;
        for job in outcome.jobs_created {
            self.creations.push(job.id.to_string());
            self.last.jobs_created.push(job.id.to_string());
        }
        for (id, status) in outcome.jobs_closed {
            let id = String::from(id);
            self.closures.push((id.clone(), status));
            self.last.jobs_closed.push((id, status));
        }
        for notice in outcome.notices {
            self.last
                .notices
                .push((notice.kind, notice.action_execution_id));
        }
        for id in &outcome.dirty {
            let Some(e) = self.state.execution(id) else {
                continue;
            };
            for (_, run) in e.action_runs() {
                if let (Some(due), ActionExecutionStatus::InProgress) = (run.due_at(), run.status) {
                    self.deadlines.insert((
                        due,
                        e.id.to_string(),
                        run.action_execution_id.to_string(),
                    ));
                }
            }
        }
        self.last
            .executions
            .extend(outcome.dirty.into_iter().map(String::from));
    }
}

fn success(continuation_token: Option<String>) -> JobReport {
    JobReport::Success {
        current_revision: None,
        continuation_token,
        details: None,
        output_variables: BTreeMap::new(),
    }
}

fn view(job: &JobRecord) -> JobView {
    JobView {
        id: job.id.to_string(),
        execution_id: job.execution_id.to_string(),
        stage: job.stage_index,
        action: job.action_index,
        action_execution_id: job.action_execution_id.to_string(),
        status: job.status,
        continuation_token: job.data.continuation_token.clone(),
        created: job.created,
        nonce: job.nonce.clone(),
    }
}

fn job_not_found(job_id: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::JobNotFoundException,
        format!("The job with id {job_id} was not found"),
    )
}

/// Whether a decision changed nothing the service would write (it then installs nothing).
fn outcome_is_empty(outcome: &Outcome) -> bool {
    outcome.dirty.is_empty()
        && !outcome.entry_dirty
        && outcome.jobs_created.is_empty()
        && outcome.jobs_closed.is_empty()
        && outcome.notices.is_empty()
        && outcome.notices_withdrawn.is_empty()
}

/// What differs between `before` and `after` that `outcome` does not report.
fn unreported_changes(
    before: &PipelineState,
    after: &PipelineState,
    outcome: &Outcome,
) -> Vec<String> {
    let mut missing = Vec::new();
    if !outcome.entry_dirty
        && serde_json::to_value(&before.entry).ok() != serde_json::to_value(&after.entry).ok()
    {
        missing.push("the pipeline entry".to_string());
    }
    for e in &after.executions {
        if outcome.dirty.contains(&e.id) {
            continue;
        }
        let unchanged = before.execution(&e.id).is_some_and(|old| {
            Arc::ptr_eq(old, e)
                || serde_json::to_value(old.as_ref()).ok() == serde_json::to_value(e.as_ref()).ok()
        });
        if !unchanged {
            missing.push(format!("execution {}", e.id));
        }
    }
    missing
}

/// The service's `check_approval_target` (service/approvals.rs): the stage and action must
/// exist in the current declaration before the token is looked at.
fn check_approval_target(
    state: &PipelineState,
    stage: &str,
    action: &str,
) -> Result<(), ServiceError> {
    let decl = &state.entry.declaration;
    let Some(st) = decl.stages.iter().find(|s| s.name == stage) else {
        return Err(ServiceError::new(
            ErrorCode::StageNotFoundException,
            format!("Stage {stage} was not found in pipeline {}", decl.name),
        ));
    };
    if !st.actions.iter().any(|a| a.name == action) {
        return Err(ServiceError::new(
            ErrorCode::ActionNotFoundException,
            format!("Action {action} was not found in stage {stage}"),
        ));
    }
    Ok(())
}
