//! Execution semantics: how executions move through stages, and what each command does to them.
//!
//! Everything here is pure: a [`Decider`] mutates a copy of one pipeline's [`PipelineState`] at a
//! given time and records what changed ([`Outcome`]). The service then persists exactly the
//! changed executions and jobs in one commit before anyone sees the new state.
//!
//! This module holds the decider itself, the requests it takes and the helpers every command
//! shares; each command lives in its own submodule.

mod actions;
mod advance;
mod approval;
mod deadlines;
mod jobs;
mod notices;
mod retry;
mod stop;
mod transitions;
mod variables;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lockgate_model::notice::ApprovalNotice;
use lockgate_model::{ActionExecutionId, ApprovalToken, ExecutionId, JobId};
use lockgate_shapes::{ActionDeclaration, ErrorCode, JobStatus, ServiceError, TriggerType};

pub use lockgate_model::action_types::is_manual_approval;
pub use transitions::stage_position;

use crate::state::{ActionRun, Execution, JobRecord, PipelineState};

/// Default approval timeout: seven days, in minutes.
pub const DEFAULT_APPROVAL_TIMEOUT_MINUTES: i64 = 7 * 24 * 60;

/// Settings the execution semantics depend on.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The account pipelines belong to (12 digits).
    pub account_id: String,
    /// The region pipelines live in.
    pub region: String,
    /// How long a custom action's job may take, from the action's start, before it times out.
    pub job_timeout_millis: i64,
    /// How long one job of an action type Lockgate runs itself (`is_run_by_lockgate`) may be
    /// held, from its acknowledgement (a continuation job: from its creation), before it times
    /// out: CodePipeline's per-job `jobTimeout`. A longer run reports a continuation token
    /// within it and carries on in the next job; a worker that dies is noticed within it.
    pub builtin_job_timeout_millis: i64,
    /// The SNS topic ARNs the server's configuration can deliver to (`*` when a catch-all topic
    /// takes every other one). A pipeline whose approval names another topic is accepted, as
    /// CodePipeline accepts it, with a warning in the log.
    pub notification_topics: BTreeSet<String>,
    /// How many pipelines the service keeps in memory (least recently used ones leave first;
    /// they are read from the store again when next used).
    pub pipeline_cache: usize,
    /// The base URL of the console (`public_url`), for the links the engine writes into action
    /// executions (a locally run action's `externalExecutionUrl`, its log).
    pub console_url: String,
}

impl EngineConfig {
    /// The timeout of one job of `action_type`, when it has one shorter than its action's
    /// (see [`EngineConfig::builtin_job_timeout_millis`]).
    pub fn job_timeout_of(&self, action_type: &lockgate_shapes::ActionTypeId) -> Option<i64> {
        lockgate_model::action_types::is_run_by_lockgate(action_type)
            .then_some(self.builtin_job_timeout_millis)
    }

    /// The console page with the log of one action execution.
    pub fn action_log_url(
        &self,
        pipeline: &str,
        execution: &str,
        action_execution: &str,
    ) -> String {
        format!(
            "{}/console/pipelines/{pipeline}/executions/{execution}/actions/{action_execution}/log",
            self.console_url.trim_end_matches('/')
        )
    }

    /// The ARN of a pipeline.
    pub fn pipeline_arn(&self, pipeline: &str) -> String {
        format!(
            "arn:aws:codepipeline:{}:{}:{}",
            self.region, self.account_id, pipeline
        )
    }
}

/// Where new ids come from; random in production, predictable in tests.
pub trait IdSource: Send {
    /// A new lowercase UUID (executions, action executions, jobs, approval tokens).
    fn uuid(&mut self) -> String;
    /// A new job nonce.
    fn nonce(&mut self) -> String;
}

/// Ids from the operating system's random source.
#[derive(Debug, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn uuid(&mut self) -> String {
        lockgate_model::ids::new_execution_id()
    }
    fn nonce(&mut self) -> String {
        lockgate_model::ids::new_nonce()
    }
}

/// What a decision changed, for the service to persist and act on.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Ids of executions whose state changed.
    pub dirty: BTreeSet<ExecutionId>,
    /// Jobs created (already in their execution's `jobs`; to be offered to workers).
    pub jobs_created: Vec<JobRecord>,
    /// Jobs that ended, with their final status (already set in their execution's `jobs`).
    pub jobs_closed: Vec<(JobId, JobStatus)>,
    /// Whether the pipeline entry itself changed (sequence counter, transitions).
    pub entry_dirty: bool,
    /// Approval events of actions with a `NotificationArn`, to be written to the outbox in the
    /// same commit (started, approved, rejected, expired).
    pub notices: Vec<ApprovalNotice>,
    /// Action execution ids of notifying approvals that ended without a decision (stopped,
    /// abandoned): their approval-needed message, if still unsent, must not go out.
    pub notices_withdrawn: Vec<ActionExecutionId>,
}

/// Applies commands to one pipeline's state at one instant.
pub struct Decider<'a> {
    /// The state being changed.
    pub state: &'a mut PipelineState,
    /// The time of the decision (ms since the epoch).
    pub now: i64,
    /// Where new ids come from.
    pub ids: &'a mut dyn IdSource,
    /// Engine settings.
    pub cfg: &'a EngineConfig,
    /// What changed so far.
    pub out: Outcome,
}

/// What a start request asks for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// What started it.
    pub trigger_type: TriggerType,
    /// Who started it.
    pub trigger_detail: String,
    /// Idempotency token.
    pub client_request_token: Option<String>,
    /// Pipeline variables.
    pub variables: BTreeMap<String, String>,
    /// Source revision overrides.
    pub source_overrides: Vec<lockgate_shapes::SourceRevisionOverride>,
}

/// An approver's answer.
#[derive(Debug, Clone)]
pub struct ApprovalAnswer {
    /// The stage name.
    pub stage: String,
    /// The action name.
    pub action: String,
    /// The token presented.
    pub token: ApprovalToken,
    /// Approved (true) or rejected (false).
    pub approved: bool,
    /// The approver's summary.
    pub summary: String,
    /// The approver's ARN.
    pub approver: String,
}

/// A job worker's report on a job.
#[derive(Debug, Clone)]
pub enum JobReport {
    /// PutJobSuccessResult.
    Success {
        /// The revision a source action produced.
        current_revision: Option<lockgate_shapes::CurrentRevision>,
        /// Asks for another job for the same action (long-running work).
        continuation_token: Option<String>,
        /// Summary, external id, percent complete.
        details: Option<lockgate_shapes::ExecutionDetails>,
        /// Output variables.
        output_variables: BTreeMap<String, String>,
    },
    /// PutJobFailureResult.
    Failure(lockgate_shapes::FailureDetails),
}

fn err(code: ErrorCode, msg: impl Into<String>) -> ServiceError {
    ServiceError::new(code, msg.into())
}

impl<'a> Decider<'a> {
    /// A decider over `state` at time `now`.
    pub fn new(
        state: &'a mut PipelineState,
        now: i64,
        ids: &'a mut dyn IdSource,
        cfg: &'a EngineConfig,
    ) -> Self {
        Decider {
            state,
            now,
            ids,
            cfg,
            out: Outcome::default(),
        }
    }

    fn exec_mut(&mut self, i: usize) -> &mut Execution {
        let e = Arc::make_mut(&mut self.state.executions[i]);
        self.out.dirty.insert(e.id.clone());
        e.updated = self.now;
        e
    }

    /// Hands a new job to execution `i`, which keeps it, and records it for offering.
    fn open_job(&mut self, i: usize, job: JobRecord) {
        self.out.jobs_created.push(job.clone());
        self.exec_mut(i).jobs.push(job);
    }

    /// Ends jobs of execution `i` with the given statuses.
    fn close_jobs(&mut self, i: usize, closing: Vec<(JobId, JobStatus)>) {
        if closing.is_empty() {
            return;
        }
        let e = self.exec_mut(i);
        for (id, status) in &closing {
            if let Some(job) = e.jobs.iter_mut().find(|j| &j.id == id) {
                job.status = *status;
            }
        }
        self.out.jobs_closed.extend(closing);
    }

    fn index_of(&self, execution_id: &ExecutionId) -> Option<usize> {
        self.state
            .executions
            .iter()
            .position(|e| *execution_id == e.id)
    }

    /// Finds the in-progress run of `(stage, action)` by execution and action execution id.
    fn find_run(
        &self,
        execution_id: &ExecutionId,
        action_execution_id: &ActionExecutionId,
    ) -> Option<(usize, usize, usize)> {
        let i = self.index_of(execution_id)?;
        let e = &self.state.executions[i];
        for (s, stage) in e.stages.iter().enumerate() {
            if let Some(stage) = stage {
                for (k, run) in stage.actions.iter().enumerate() {
                    if run
                        .as_ref()
                        .is_some_and(|r| *action_execution_id == r.action_execution_id)
                    {
                        return Some((i, s, k));
                    }
                }
            }
        }
        None
    }

    fn run_mut(&mut self, i: usize, s: usize, k: usize) -> Option<&mut ActionRun> {
        self.exec_mut(i).stages[s]
            .as_mut()
            .and_then(|st| st.actions[k].as_mut())
    }
}

/// An action's run order (1 when not given).
pub fn run_order(action: &ActionDeclaration) -> i32 {
    action.run_order.unwrap_or(1)
}
