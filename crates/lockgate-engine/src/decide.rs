//! Execution semantics: how executions move through stages, and what each command does to them.
//!
//! Everything here is pure: a [`Decider`] mutates a copy of one pipeline's [`PipelineState`] at a
//! given time and records what changed ([`Outcome`]). The service then persists exactly the
//! changed executions and jobs in one commit before anyone sees the new state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lockgate_shapes::{
    ActionDeclaration, ActionExecutionStatus, Artifact, ArtifactLocation, ArtifactLocationType,
    ErrorCode, ExecutionMode, JobData, JobStatus, PipelineContext, PipelineDeclaration,
    PipelineExecutionStatus, S3ArtifactLocation, ServiceError, StageExecutionStatus,
    StageRetryMode, TriggerType,
};

pub use lockgate_model::action_types::is_manual_approval;

use crate::state::{
    ActionKind, ActionRun, ArtifactRecord, Execution, JobRecord, PipelineState, Position, StageRun,
};

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
}

impl EngineConfig {
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
    pub dirty: BTreeSet<String>,
    /// Jobs created (to store and offer to workers).
    pub jobs_created: Vec<JobRecord>,
    /// Jobs that ended, with their final status.
    pub jobs_closed: Vec<(String, JobStatus)>,
    /// Whether the pipeline entry itself changed (sequence counter, transitions).
    pub entry_dirty: bool,
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
    pub token: String,
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

    fn index_of(&self, execution_id: &str) -> Option<usize> {
        self.state
            .executions
            .iter()
            .position(|e| e.id == execution_id)
    }

    /// Starts a new execution of the current pipeline version and runs it as far as it goes.
    pub fn start(&mut self, req: StartRequest) -> String {
        let id = self.ids.uuid();
        let entry = &mut self.state.entry;
        let seq = entry.next_seq;
        entry.next_seq += 1;
        self.out.entry_dirty = true;
        let version = entry.version();
        let mode = entry.execution_mode();
        let stage_count = entry.declaration.stages.len();
        self.state
            .versions
            .entry(version)
            .or_insert_with(|| Arc::new(self.state.entry.declaration.clone()));
        let execution = Execution {
            id: id.clone(),
            seq,
            pipeline_version: version,
            status: PipelineExecutionStatus::InProgress,
            status_summary: None,
            trigger_type: req.trigger_type,
            trigger_detail: req.trigger_detail,
            mode,
            started: self.now,
            updated: self.now,
            position: Position::Waiting(0),
            stages: vec![None; stage_count],
            stop_reason: None,
            stop_abandon: false,
            client_request_token: req.client_request_token,
            variables: req.variables,
            source_overrides: req.source_overrides,
            artifacts: BTreeMap::new(),
        };
        self.state.executions.push(Arc::new(execution));
        self.out.dirty.insert(id.clone());
        self.advance();
        id
    }

    /// Moves every active execution as far as it can go: finishes stages whose actions are done,
    /// starts the next run-order group, supersedes and admits executions waiting at transitions.
    pub fn advance(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.state.executions.len() {
                if let Position::Running(s) = self.state.executions[i].position {
                    if self.state.executions[i].is_active() {
                        progressed |= self.step_stage(i, s);
                    }
                }
            }
            progressed |= self.supersede_waiting();
            for i in 0..self.state.executions.len() {
                if let Position::Waiting(s) = self.state.executions[i].position {
                    if self.state.executions[i].is_active() {
                        progressed |= self.try_enter(i, s);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Settles the stage `s` that execution `i` is in. Returns whether anything changed.
    fn step_stage(&mut self, i: usize, s: usize) -> bool {
        let decl = self
            .state
            .declaration(self.state.executions[i].pipeline_version);
        let Some(stage_decl) = decl.stages.get(s) else {
            return false;
        };
        let Some(run) = self.state.executions[i].stages[s].as_ref() else {
            return false;
        };
        let in_progress = run
            .actions
            .iter()
            .flatten()
            .any(|a| a.status == ActionExecutionStatus::InProgress);
        let failed = run.actions.iter().flatten().find(|a| {
            matches!(
                a.status,
                ActionExecutionStatus::Failed | ActionExecutionStatus::Abandoned
            )
        });
        let stage_name = stage_decl.name.clone();

        if self.state.executions[i].status == PipelineExecutionStatus::Stopping {
            if in_progress {
                return false;
            }
            let e = self.exec_mut(i);
            if let Some(run) = e.stages[s].as_mut() {
                run.status = StageExecutionStatus::Stopped;
            }
            e.status = PipelineExecutionStatus::Stopped;
            e.position = Position::Done(Some(s));
            return true;
        }

        if let Some(failed) = failed {
            let summary = match &failed.error {
                Some((_, message)) => format!(
                    "Execution failed in stage {stage_name}, action {}: {message}",
                    failed.name
                ),
                None => format!(
                    "Execution failed in stage {stage_name}, action {}",
                    failed.name
                ),
            };
            let closing = self.abandon_in_progress(i, s);
            let e = self.exec_mut(i);
            if let Some(run) = e.stages[s].as_mut() {
                run.status = StageExecutionStatus::Failed;
            }
            e.status = PipelineExecutionStatus::Failed;
            e.status_summary = Some(summary);
            e.position = Position::Done(Some(s));
            self.out.jobs_closed.extend(closing);
            return true;
        }
        if in_progress {
            return false;
        }
        // Start the next run-order group among the actions that have not run (or are to re-run).
        let pending: Vec<usize> = run
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_none())
            .map(|(k, _)| k)
            .collect();
        if let Some(order) = pending
            .iter()
            .map(|&k| run_order(&stage_decl.actions[k]))
            .min()
        {
            let group: Vec<usize> = pending
                .into_iter()
                .filter(|&k| run_order(&stage_decl.actions[k]) == order)
                .collect();
            for k in group {
                self.start_action(i, s, k, &decl);
            }
            return true;
        }
        // Every action succeeded: the stage succeeded.
        let last = s + 1 >= decl.stages.len();
        let e = self.exec_mut(i);
        if let Some(run) = e.stages[s].as_mut() {
            run.status = StageExecutionStatus::Succeeded;
        }
        if last {
            e.status = PipelineExecutionStatus::Succeeded;
            e.status_summary = None;
            e.position = Position::Done(Some(s));
        } else {
            e.position = Position::Waiting(s + 1);
        }
        true
    }

    /// Abandons every in-progress action of stage `s` of execution `i`; returns jobs to close.
    fn abandon_in_progress(&mut self, i: usize, s: usize) -> Vec<(String, JobStatus)> {
        let now = self.now;
        let mut closing = Vec::new();
        let e = self.exec_mut(i);
        if let Some(run) = e.stages[s].as_mut() {
            for a in run.actions.iter_mut().flatten() {
                if a.status == ActionExecutionStatus::InProgress {
                    a.status = ActionExecutionStatus::Abandoned;
                    a.last_change = now;
                    a.deadline = None;
                    if let Some(job) = a.job_id.take() {
                        closing.push((job, JobStatus::Failed));
                    }
                }
            }
        }
        closing
    }

    /// In SUPERSEDED mode, of the executions waiting at the same transition only the newest stays.
    fn supersede_waiting(&mut self) -> bool {
        // Keyed by stage name, not index: executions of different pipeline versions may wait
        // at the same index for different stages, and only those at the same stage compete.
        let mut newest: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        let mut waiting = Vec::new();
        for (i, e) in self.state.executions.iter().enumerate() {
            if let (Position::Waiting(s), true, ExecutionMode::Superseded) =
                (e.position, e.is_active(), e.mode)
            {
                let decl = self.state.declaration(e.pipeline_version);
                let Some(stage) = decl.stages.get(s) else {
                    continue;
                };
                waiting.push((i, s, stage.name.clone(), e.seq));
                let slot = newest.entry(stage.name.clone()).or_insert((e.seq, i));
                if e.seq > slot.0 {
                    *slot = (e.seq, i);
                }
            }
        }
        let mut changed = false;
        for (i, s, name, seq) in waiting {
            if let Some(&(_, newer)) = newest.get(&name).filter(|&&(n, _)| n != seq) {
                let newer_id = self.state.executions[newer].id.clone();
                let e = self.exec_mut(i);
                e.status = PipelineExecutionStatus::Superseded;
                e.status_summary = Some(format!("Superseded by execution {newer_id}"));
                e.position = Position::Done(s.checked_sub(1));
                changed = true;
            }
        }
        changed
    }

    /// Lets execution `i` into stage `s` when the transition and the mode allow it.
    fn try_enter(&mut self, i: usize, s: usize) -> bool {
        let decl = self
            .state
            .declaration(self.state.executions[i].pipeline_version);
        let Some(stage) = decl.stages.get(s) else {
            let e = self.exec_mut(i);
            e.status = PipelineExecutionStatus::Succeeded;
            e.position = Position::Done(s.checked_sub(1));
            return true;
        };
        if self.state.executions[i].status == PipelineExecutionStatus::Stopping {
            let e = self.exec_mut(i);
            e.status = PipelineExecutionStatus::Stopped;
            e.position = Position::Done(s.checked_sub(1));
            return true;
        }
        if !self.state.entry.transition_enabled(&stage.name) {
            return false;
        }
        let me = &self.state.executions[i];
        if me.mode != ExecutionMode::Parallel {
            let stage_name = &stage.name;
            let blocked = self.state.executions.iter().any(|other| {
                if other.id == me.id || !other.is_active() {
                    return false;
                }
                let other_decl = self.state.declaration(other.pipeline_version);
                let at = |idx: usize| {
                    other_decl
                        .stages
                        .get(idx)
                        .is_some_and(|st| &st.name == stage_name)
                };
                match other.position {
                    Position::Running(o) => at(o),
                    // QUEUED keeps arrival order: an older execution waiting here goes first.
                    Position::Waiting(o) => {
                        me.mode == ExecutionMode::Queued && other.seq < me.seq && at(o)
                    }
                    Position::Done(_) => false,
                }
            });
            if blocked {
                return false;
            }
        }
        let action_count = stage.actions.len();
        let e = self.exec_mut(i);
        e.position = Position::Running(s);
        e.stages[s] = Some(StageRun {
            status: StageExecutionStatus::InProgress,
            actions: vec![None; action_count],
            history: Vec::new(),
            manual_retries: 0,
        });
        true
    }

    /// Starts action `k` of stage `s` in execution `i`.
    fn start_action(&mut self, i: usize, s: usize, k: usize, decl: &PipelineDeclaration) {
        let action = &decl.stages[s].actions[k];
        let kind = if is_manual_approval(&action.action_type_id) {
            ActionKind::Approval
        } else {
            ActionKind::Job
        };
        let action_execution_id = self.ids.uuid();
        let mut run = ActionRun {
            action_index: k,
            name: action.name.clone(),
            kind,
            action_execution_id: action_execution_id.clone(),
            status: ActionExecutionStatus::InProgress,
            summary: None,
            started: self.now,
            last_change: self.now,
            token: None,
            last_updated_by: None,
            external_execution_id: None,
            external_execution_url: None,
            percent_complete: None,
            error: None,
            job_id: None,
            deadline: None,
            output_variables: BTreeMap::new(),
            decided: false,
        };
        match kind {
            ActionKind::Approval => {
                let token = self.ids.uuid();
                let minutes = action
                    .timeout_in_minutes
                    .map(i64::from)
                    .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_MINUTES);
                run.token = Some(token.clone());
                run.external_execution_id = Some(token);
                run.deadline = Some(self.now + minutes * 60_000);
            }
            ActionKind::Job => {
                let job = self.new_job(i, s, k, decl, &action_execution_id, None);
                run.job_id = Some(job.id.clone());
                run.deadline = Some(self.now + self.cfg.job_timeout_millis);
                self.out.jobs_created.push(job);
            }
        }
        let e = self.exec_mut(i);
        if let Some(stage) = e.stages[s].as_mut() {
            stage.actions[k] = Some(run);
        }
    }

    /// Builds the job a worker receives for action `k` of stage `s`.
    fn new_job(
        &mut self,
        i: usize,
        s: usize,
        k: usize,
        decl: &PipelineDeclaration,
        action_execution_id: &str,
        continuation_token: Option<String>,
    ) -> JobRecord {
        let pipeline_name = decl.name.clone();
        let stage = &decl.stages[s];
        let action = &stage.actions[k];
        let bucket = artifact_bucket(decl, action);
        let mut output_artifacts = Vec::new();
        let mut new_records = Vec::new();
        for out in action.output_artifacts.iter().flatten() {
            // A continuation job carries on the same action execution, so it must write where
            // the first job was told to: later actions read the artifact from that location.
            let recorded = continuation_token.as_ref().and_then(|_| {
                self.state.executions[i]
                    .artifacts
                    .get(&out.name)
                    .map(|r| (r.bucket.clone(), r.object_key.clone()))
            });
            if let Some((bucket, key)) = recorded {
                output_artifacts.push(artifact(&out.name, None, &bucket, &key));
                continue;
            }
            let key = format!(
                "{}/{}/{}",
                truncate(&pipeline_name, 20),
                truncate(&out.name, 20),
                &self.ids.uuid()[..7]
            );
            new_records.push((
                out.name.clone(),
                ArtifactRecord {
                    bucket: bucket.clone(),
                    object_key: key.clone(),
                    revision: None,
                    change_identifier: None,
                    revision_summary: None,
                    created: None,
                    producer: action.name.clone(),
                },
            ));
            output_artifacts.push(artifact(&out.name, None, &bucket, &key));
        }
        let execution = &self.state.executions[i];
        let input_artifacts = action
            .input_artifacts
            .iter()
            .flatten()
            .map(|input| match execution.artifacts.get(&input.name) {
                Some(r) => artifact(&input.name, r.revision.clone(), &r.bucket, &r.object_key),
                None => artifact(&input.name, None, &bucket, ""),
            })
            .collect();
        let execution_id = execution.id.clone();
        let job_id = self.ids.uuid();
        let nonce = self.ids.nonce();
        if continuation_token.is_none() {
            let e = self.exec_mut(i);
            for (name, rec) in new_records {
                e.artifacts.insert(name, rec);
            }
        }
        JobRecord {
            id: job_id,
            nonce,
            status: JobStatus::Queued,
            action_type_id: action.action_type_id.clone(),
            pipeline_name: pipeline_name.clone(),
            execution_id: execution_id.clone(),
            stage_index: s,
            action_index: k,
            action_execution_id: action_execution_id.to_string(),
            data: JobData {
                action_type_id: Some(action.action_type_id.clone()),
                action_configuration: Some(lockgate_shapes::ActionConfiguration {
                    configuration: action.configuration.clone(),
                }),
                pipeline_context: Some(PipelineContext {
                    pipeline_name: Some(pipeline_name.clone()),
                    stage: Some(lockgate_shapes::StageContext {
                        name: Some(stage.name.clone()),
                    }),
                    action: Some(lockgate_shapes::ActionContext {
                        name: Some(action.name.clone()),
                        action_execution_id: Some(action_execution_id.to_string()),
                    }),
                    pipeline_arn: Some(self.cfg.pipeline_arn(&pipeline_name)),
                    pipeline_execution_id: Some(execution_id),
                }),
                input_artifacts: Some(input_artifacts),
                output_artifacts: Some(output_artifacts),
                artifact_credentials: None,
                continuation_token,
                encryption_key: None,
            },
            created: self.now,
        }
    }

    /// Finds the in-progress run of `(stage, action)` by execution and action execution id.
    fn find_run(
        &self,
        execution_id: &str,
        action_execution_id: &str,
    ) -> Option<(usize, usize, usize)> {
        let i = self.index_of(execution_id)?;
        let e = &self.state.executions[i];
        for (s, stage) in e.stages.iter().enumerate() {
            if let Some(stage) = stage {
                for (k, run) in stage.actions.iter().enumerate() {
                    if run
                        .as_ref()
                        .is_some_and(|r| r.action_execution_id == action_execution_id)
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

    /// Answers a manual approval. The caller has already checked that the stage and action exist
    /// in the current declaration. Returns the time of the answer.
    pub fn answer_approval(&mut self, answer: &ApprovalAnswer) -> Result<i64, ServiceError> {
        let mut found = None;
        'search: for (i, e) in self.state.executions.iter().enumerate().rev() {
            let decl = self.state.declaration(e.pipeline_version);
            for (s, stage) in e.stages.iter().enumerate() {
                let Some(stage) = stage else { continue };
                if decl.stages.get(s).map(|d| d.name.as_str()) != Some(answer.stage.as_str()) {
                    continue;
                }
                for (k, run) in stage.actions.iter().enumerate() {
                    let Some(run) = run else { continue };
                    if run.name == answer.action
                        && run.kind == ActionKind::Approval
                        && run.token.as_deref() == Some(answer.token.as_str())
                    {
                        found = Some((i, s, k, run.status, run.decided));
                        break 'search;
                    }
                }
                if stage.history.iter().any(|r| {
                    r.name == answer.action && r.token.as_deref() == Some(answer.token.as_str())
                }) {
                    return Err(invalid_token(answer));
                }
            }
        }
        let Some((i, s, k, status, decided)) = found else {
            return Err(invalid_token(answer));
        };
        if status != ActionExecutionStatus::InProgress || !self.state.executions[i].is_active() {
            return Err(if decided {
                err(
                    ErrorCode::ApprovalAlreadyCompletedException,
                    format!(
                        "The approval action {} in stage {} has already been completed",
                        answer.action, answer.stage
                    ),
                )
            } else {
                invalid_token(answer)
            });
        }
        let now = self.now;
        if let Some(run) = self.run_mut(i, s, k) {
            run.status = if answer.approved {
                ActionExecutionStatus::Succeeded
            } else {
                ActionExecutionStatus::Failed
            };
            run.summary = Some(answer.summary.clone());
            run.last_updated_by = Some(answer.approver.clone());
            run.last_change = now;
            run.deadline = None;
            run.decided = true;
            if !answer.approved {
                run.error = Some((
                    "ApprovalRejected".to_string(),
                    format!("Rejected by {}: {}", answer.approver, answer.summary),
                ));
            }
        }
        self.advance();
        Ok(now)
    }

    /// Fails the action execution whose deadline has passed, if it is still in progress.
    /// Returns whether anything changed.
    pub fn deadline_reached(&mut self, execution_id: &str, action_execution_id: &str) -> bool {
        let Some((i, s, k)) = self.find_run(execution_id, action_execution_id) else {
            return false;
        };
        let now = self.now;
        let run = self.state.executions[i].stages[s]
            .as_ref()
            .and_then(|st| st.actions[k].as_ref());
        let Some(run) = run else { return false };
        if run.status != ActionExecutionStatus::InProgress || run.deadline.is_none_or(|d| d > now) {
            return false;
        }
        let mut closed = None;
        if let Some(run) = self.run_mut(i, s, k) {
            run.status = ActionExecutionStatus::Failed;
            run.last_change = now;
            run.deadline = None;
            match run.kind {
                ActionKind::Approval => {
                    run.summary = Some(
                        "Approval expired: no response was received before the approval timed out"
                            .into(),
                    );
                    run.error = Some((
                        "ApprovalExpired".into(),
                        "The approval request expired without a response".into(),
                    ));
                }
                ActionKind::Job => {
                    run.error = Some((
                        "JobTimedOut".into(),
                        "The job did not complete before the action timed out".into(),
                    ));
                    closed = run.job_id.take();
                }
            }
        }
        if let Some(job) = closed {
            self.out.jobs_closed.push((job, JobStatus::TimedOut));
        }
        self.advance();
        true
    }

    /// Applies a job worker's report to the job's action execution.
    pub fn job_report(&mut self, job: &JobRecord, report: JobReport) -> Result<(), ServiceError> {
        let Some((i, s, k)) = self.find_run(&job.execution_id, &job.action_execution_id) else {
            return Err(invalid_job_state());
        };
        let in_progress = self.state.executions[i].stages[s]
            .as_ref()
            .and_then(|st| st.actions[k].as_ref())
            .is_some_and(|r| {
                r.status == ActionExecutionStatus::InProgress
                    && r.job_id.as_deref() == Some(job.id.as_str())
            });
        if !in_progress {
            return Err(invalid_job_state());
        }
        let now = self.now;
        match report {
            JobReport::Failure(details) => {
                if let Some(run) = self.run_mut(i, s, k) {
                    run.status = ActionExecutionStatus::Failed;
                    run.last_change = now;
                    run.deadline = None;
                    run.job_id = None;
                    run.summary = Some(details.message.clone());
                    run.error = Some((details.r#type.as_str().to_string(), details.message));
                    if details.external_execution_id.is_some() {
                        run.external_execution_id = details.external_execution_id;
                    }
                }
                self.out
                    .jobs_closed
                    .push((job.id.clone(), JobStatus::Failed));
            }
            JobReport::Success {
                current_revision,
                continuation_token,
                details,
                output_variables,
            } => {
                let decl = self
                    .state
                    .declaration(self.state.executions[i].pipeline_version);
                if let Some(rev) = current_revision {
                    let outputs: Vec<String> = decl.stages[s].actions[k]
                        .output_artifacts
                        .iter()
                        .flatten()
                        .map(|o| o.name.clone())
                        .collect();
                    let e = self.exec_mut(i);
                    for name in outputs {
                        if let Some(a) = e.artifacts.get_mut(&name) {
                            a.revision = Some(rev.revision.clone());
                            a.change_identifier = Some(rev.change_identifier.clone());
                            a.revision_summary = rev.revision_summary.clone();
                            a.created = Some(rev.created.map(|t| t.0).unwrap_or(now));
                        }
                    }
                }
                let next_job = continuation_token.map(|token| {
                    self.new_job(i, s, k, &decl, &job.action_execution_id, Some(token))
                });
                if let Some(run) = self.run_mut(i, s, k) {
                    run.last_change = now;
                    if let Some(d) = details {
                        if d.summary.is_some() {
                            run.summary = d.summary;
                        }
                        if d.external_execution_id.is_some() {
                            run.external_execution_id = d.external_execution_id;
                        }
                        if d.percent_complete.is_some() {
                            run.percent_complete = d.percent_complete;
                        }
                    }
                    run.output_variables.extend(output_variables);
                    match &next_job {
                        Some(next) => run.job_id = Some(next.id.clone()),
                        None => {
                            run.status = ActionExecutionStatus::Succeeded;
                            run.deadline = None;
                            run.job_id = None;
                        }
                    }
                }
                self.out
                    .jobs_closed
                    .push((job.id.clone(), JobStatus::Succeeded));
                if let Some(next) = next_job {
                    self.out.jobs_created.push(next);
                }
            }
        }
        self.advance();
        Ok(())
    }

    /// Stops an execution: at once when `abandon`, otherwise after in-progress jobs finish.
    /// Pending approvals are abandoned either way, since nobody can finish them once stopping.
    pub fn stop(
        &mut self,
        execution_id: &str,
        abandon: bool,
        reason: Option<String>,
    ) -> Result<(), ServiceError> {
        let i = self.index_of(execution_id).ok_or_else(|| {
            err(
                ErrorCode::PipelineExecutionNotStoppableException,
                format!("Pipeline execution {execution_id} is not stoppable"),
            )
        })?;
        let e = &self.state.executions[i];
        match e.status {
            PipelineExecutionStatus::InProgress => {}
            PipelineExecutionStatus::Stopping if abandon && !e.stop_abandon => {}
            PipelineExecutionStatus::Stopping => {
                return Err(err(
                    ErrorCode::DuplicatedStopRequestException,
                    format!("Pipeline execution {execution_id} is already stopping"),
                ))
            }
            _ => {
                return Err(err(
                    ErrorCode::PipelineExecutionNotStoppableException,
                    format!(
                        "Pipeline execution {execution_id} is {} and cannot be stopped",
                        e.status.as_str()
                    ),
                ))
            }
        }
        let now = self.now;
        let position = e.position;
        let mut closing = Vec::new();
        {
            let e = self.exec_mut(i);
            e.stop_reason = reason.or(e.stop_reason.take());
            e.stop_abandon |= abandon;
            e.status = PipelineExecutionStatus::Stopping;
            if let Position::Running(s) = position {
                if let Some(run) = e.stages[s].as_mut() {
                    run.status = StageExecutionStatus::Stopping;
                    for a in run.actions.iter_mut().flatten() {
                        if a.status == ActionExecutionStatus::InProgress
                            && (abandon || a.kind == ActionKind::Approval)
                        {
                            a.status = ActionExecutionStatus::Abandoned;
                            a.last_change = now;
                            a.deadline = None;
                            if let Some(job) = a.job_id.take() {
                                closing.push((job, JobStatus::Failed));
                            }
                        }
                    }
                }
            }
        }
        self.out.jobs_closed.extend(closing);
        self.advance();
        Ok(())
    }

    /// Retries a failed or stopped stage of an execution, re-running its failed actions or all.
    pub fn retry(
        &mut self,
        execution_id: &str,
        stage_name: &str,
        mode: StageRetryMode,
    ) -> Result<(), ServiceError> {
        let i = self.index_of(execution_id).ok_or_else(|| {
            err(
                ErrorCode::StageNotRetryableException,
                format!("Pipeline execution {execution_id} was not found"),
            )
        })?;
        let e = &self.state.executions[i];
        let decl = self.state.declaration(e.pipeline_version);
        let s = decl
            .stages
            .iter()
            .position(|st| st.name == stage_name)
            .ok_or_else(|| {
                err(
                    ErrorCode::StageNotFoundException,
                    format!("Stage {stage_name} was not found in the execution's pipeline version"),
                )
            })?;
        let retryable = matches!(e.position, Position::Done(Some(last)) if last == s)
            && matches!(
                e.status,
                PipelineExecutionStatus::Failed | PipelineExecutionStatus::Stopped
            )
            && e.stages[s].as_ref().is_some_and(|r| {
                matches!(
                    r.status,
                    StageExecutionStatus::Failed | StageExecutionStatus::Stopped
                )
            });
        if !retryable {
            return Err(err(
                ErrorCode::StageNotRetryableException,
                format!(
                    "Stage {stage_name} in execution {execution_id} is not in a failed or stopped state and cannot be retried"
                ),
            ));
        }
        // Where another execution's pipeline version has this stage: versions may differ, so
        // the stage is found by name, not by this execution's index.
        let index_in = |o: &Execution| {
            self.state
                .declaration(o.pipeline_version)
                .stages
                .iter()
                .position(|st| st.name == stage_name)
        };
        // Only the newest execution that ran this stage may retry it.
        if self.state.executions.iter().any(|o| {
            o.seq > e.seq
                && index_in(o).is_some_and(|j| o.stages.get(j).is_some_and(|r| r.is_some()))
        }) {
            return Err(err(
                ErrorCode::NotLatestPipelineExecutionException,
                format!("Execution {execution_id} is not the latest execution to run stage {stage_name}"),
            ));
        }
        if e.mode != ExecutionMode::Parallel
            && self.state.executions.iter().any(|o| {
                o.id != e.id
                    && o.is_active()
                    && index_in(o).is_some_and(|j| o.position == Position::Running(j))
            })
        {
            return Err(err(
                ErrorCode::ConflictException,
                format!("Another execution is running in stage {stage_name}"),
            ));
        }
        let e = self.exec_mut(i);
        e.status = PipelineExecutionStatus::InProgress;
        e.status_summary = None;
        e.stop_reason = None;
        e.stop_abandon = false;
        e.position = Position::Running(s);
        if let Some(run) = e.stages[s].as_mut() {
            run.status = StageExecutionStatus::InProgress;
            run.manual_retries += 1;
            for slot in run.actions.iter_mut() {
                let redo = match (mode, slot.as_ref()) {
                    (_, None) => false,
                    (StageRetryMode::AllActions, Some(_)) => true,
                    (_, Some(r)) => r.status != ActionExecutionStatus::Succeeded,
                };
                if redo {
                    if let Some(old) = slot.take() {
                        run.history.push(old);
                    }
                }
            }
        }
        self.advance();
        Ok(())
    }
}

fn invalid_token(answer: &ApprovalAnswer) -> ServiceError {
    err(
        ErrorCode::InvalidApprovalTokenException,
        format!(
            "The token {} is not valid for action {} in stage {}",
            answer.token, answer.action, answer.stage
        ),
    )
}

fn invalid_job_state() -> ServiceError {
    err(
        ErrorCode::InvalidJobStateException,
        "The job is not in a state that accepts this result",
    )
}

/// An action's run order (1 when not given).
pub fn run_order(action: &ActionDeclaration) -> i32 {
    action.run_order.unwrap_or(1)
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((idx, _)) => &s[..idx],
        None => s,
    }
}

fn artifact_bucket(decl: &PipelineDeclaration, action: &ActionDeclaration) -> String {
    if let Some(store) = &decl.artifact_store {
        return store.location.clone();
    }
    if let Some(stores) = &decl.artifact_stores {
        if let Some(store) = action.region.as_ref().and_then(|r| stores.get(r)) {
            return store.location.clone();
        }
        if let Some(store) = stores.values().next() {
            return store.location.clone();
        }
    }
    String::new()
}

fn artifact(name: &str, revision: Option<String>, bucket: &str, key: &str) -> Artifact {
    Artifact {
        name: Some(name.to_string()),
        revision,
        location: Some(ArtifactLocation {
            r#type: Some(ArtifactLocationType::S3),
            s3_location: Some(S3ArtifactLocation {
                bucket_name: bucket.to_string(),
                object_key: key.to_string(),
            }),
        }),
    }
}
