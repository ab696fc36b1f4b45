//! The engine's working state: pipelines, their executions, stage and action executions, and
//! the jobs each execution handed to job workers.
//!
//! These types are what the store keeps (as JSON bodies) and what the in-memory view is made of.
//! They use the service model's status enums so that what a client sees is exactly what is kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use lockgate_model::{ActionExecutionId, ApprovalToken, ExecutionId, JobId};
use lockgate_shapes::{
    ActionDeclaration, ActionExecutionStatus, ActionTypeId, ExecutionMode, JobData, JobStatus,
    PipelineDeclaration, PipelineExecutionStatus, SourceRevisionOverride, StageExecutionStatus,
    TriggerType,
};
use serde::{Deserialize, Serialize};

/// A pipeline as stored: its current declaration and what is kept about it besides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineEntry {
    /// The current declaration, with `version` set; shared with [`PipelineState::versions`],
    /// so that copying the state for a decision does not copy the declaration.
    pub declaration: Arc<PipelineDeclaration>,
    /// When the pipeline was created (ms since the epoch).
    pub created: i64,
    /// When the pipeline was last updated (ms since the epoch).
    pub updated: i64,
    /// Inbound transitions that have been disabled or re-enabled, by stage name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transitions: BTreeMap<String, Transition>,
    /// The next execution sequence number; orders executions by start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_seq: u64,
}

impl PipelineEntry {
    /// The pipeline's current version.
    pub fn version(&self) -> i32 {
        self.declaration.version.unwrap_or(1)
    }

    /// The pipeline's execution mode (SUPERSEDED when the declaration names none).
    pub fn execution_mode(&self) -> ExecutionMode {
        self.declaration
            .execution_mode
            .unwrap_or(ExecutionMode::Superseded)
    }

    /// Whether the inbound transition of `stage` is enabled.
    pub fn transition_enabled(&self, stage: &str) -> bool {
        self.transitions.get(stage).is_none_or(|t| t.enabled)
    }
}

/// The state of one stage's inbound transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    /// Whether executions may enter the stage.
    pub enabled: bool,
    /// ARN of who last changed it.
    pub last_changed_by: String,
    /// When it last changed (ms since the epoch).
    pub last_changed_at: i64,
    /// Why it was disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

/// Where an execution is in its pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// Waiting at the inbound transition of the stage with this index.
    Waiting(usize),
    /// Inside the stage with this index.
    Running(usize),
    /// Finished (succeeded, failed, stopped, superseded); the index is the last stage it was in.
    Done(Option<usize>),
}

/// One pipeline execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    /// The execution id (a lowercase UUID).
    pub id: ExecutionId,
    /// Start order within the pipeline; larger is newer.
    pub seq: u64,
    /// The pipeline version this execution runs.
    pub pipeline_version: i32,
    /// Overall status.
    pub status: PipelineExecutionStatus,
    /// Why it ended the way it did, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<String>,
    /// What started it.
    pub trigger_type: TriggerType,
    /// Who or what started it (the caller's ARN).
    pub trigger_detail: String,
    /// The execution mode it runs under.
    pub mode: ExecutionMode,
    /// When it started (ms since the epoch).
    pub started: i64,
    /// When it last changed (ms since the epoch).
    pub updated: i64,
    /// Where it is.
    pub position: Position,
    /// The stage executions, by stage index; `None` for stages not entered yet.
    pub stages: Vec<Option<StageRun>>,
    /// The reason given when it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Whether a stop asked for in-progress actions to be abandoned.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stop_abandon: bool,
    /// The idempotency token of the StartPipelineExecution call that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
    /// Pipeline variables given at start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Source revision overrides given at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_overrides: Vec<SourceRevisionOverride>,
    /// Artifacts produced so far, by artifact name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, ArtifactRecord>,
    /// Every job handed to job workers for this execution's custom actions, oldest first, in
    /// whatever status it is now. The execution owns its jobs: they are decided and stored with
    /// it, in the same commit. Records written before jobs moved here have none; their jobs
    /// are read from the old `Job` records when the service loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobRecord>,
}

impl Execution {
    /// Whether the execution is still going (in progress or stopping).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
        )
    }

    /// The job with this id.
    pub fn job(&self, id: &JobId) -> Option<&JobRecord> {
        self.jobs.iter().find(|j| j.id == *id)
    }

    /// Every action execution of this execution, current and replaced by retries.
    pub fn action_runs(&self) -> impl Iterator<Item = (usize, &ActionRun)> {
        self.stages.iter().enumerate().flat_map(|(i, s)| {
            s.iter().flat_map(move |s| {
                s.history
                    .iter()
                    .chain(s.actions.iter().flatten())
                    .map(move |r| (i, r))
            })
        })
    }
}

/// An artifact an action produced: where it lives and which revision it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// Bucket (the pipeline's artifact store location).
    pub bucket: String,
    /// Object key within the bucket.
    pub object_key: String,
    /// The revision, once the producing action reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The change identifier reported with the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_identifier: Option<String>,
    /// The revision summary reported with the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_summary: Option<String>,
    /// When the revision was created (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// The action that produces it.
    pub producer: String,
}

/// One stage execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRun {
    /// The stage's status.
    pub status: StageExecutionStatus,
    /// The current action executions, by action index in the stage declaration.
    pub actions: Vec<Option<ActionRun>>,
    /// Action executions replaced by a retry, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<ActionRun>,
    /// How many times the stage was retried by hand.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub manual_retries: u32,
}

/// What kind of work an action does, which decides how it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    /// A manual approval: answered by PutApprovalResult.
    Approval,
    /// A custom action: answered by a job worker through PollForJobs and PutJob*Result.
    Job,
}

/// One action execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRun {
    /// Index of the action in its stage declaration.
    pub action_index: usize,
    /// The action's name.
    pub name: String,
    /// How it is answered.
    pub kind: ActionKind,
    /// The action execution id (a lowercase UUID).
    pub action_execution_id: ActionExecutionId,
    /// Status.
    pub status: ActionExecutionStatus,
    /// The summary given by the approver or job worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When it started (ms since the epoch).
    pub started: i64,
    /// When its status last changed (ms since the epoch).
    pub last_change: i64,
    /// The approval token (approvals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<ApprovalToken>,
    /// ARN of who answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_by: Option<String>,
    /// External execution id (the token for approvals; the worker's id for jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_id: Option<String>,
    /// External execution URL reported by the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_url: Option<String>,
    /// Percent complete reported by the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<i32>,
    /// Error code and message when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<(String, String)>,
    /// The current job (custom actions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// When it times out (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<i64>,
    /// When its current job times out, if sooner than `deadline` (ms since the epoch): a job
    /// of an action type Lockgate runs itself must be finished or continued within the job
    /// timeout ([`crate::EngineConfig::builtin_job_timeout_millis`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_deadline: Option<i64>,
    /// Output variables reported by the worker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_variables: BTreeMap<String, String>,
    /// The action's configuration with its variable references (`#{Namespace.Name}`) resolved
    /// when it started; absent when it had none, the declared configuration being the resolved
    /// one then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_configuration: Option<BTreeMap<String, String>>,
    /// Whether an approver decided it (approved or rejected), as opposed to expiry or abandonment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub decided: bool,
}

impl ActionRun {
    /// When the next of its deadlines is due: the action's, or its current job's.
    pub fn due_at(&self) -> Option<i64> {
        match (self.deadline, self.job_deadline) {
            (Some(a), Some(j)) => Some(a.min(j)),
            (a, j) => a.or(j),
        }
    }

    /// Arms the current job's timeout, `timeout` ms from `now`, unless the action's own
    /// deadline comes first.
    pub fn arm_job_deadline(&mut self, now: i64, timeout: i64) {
        let due = now.saturating_add(timeout);
        self.job_deadline = self.deadline.is_none_or(|d| due < d).then_some(due);
    }

    /// Disarms both deadlines (the action is decided).
    pub fn disarm(&mut self) {
        self.deadline = None;
        self.job_deadline = None;
    }

    /// The configuration the run started with: its variable references resolved, or else
    /// `declared`'s own (an action whose configuration had no references).
    pub fn configuration<'a>(
        &'a self,
        declared: &'a ActionDeclaration,
    ) -> Option<&'a BTreeMap<String, String>> {
        self.resolved_configuration
            .as_ref()
            .or(declared.configuration.as_ref())
    }
}

/// Stored format 3 leaves out a `false` flag (see `crate::stored`).
fn is_false(flag: &bool) -> bool {
    !*flag
}

/// Stored format 3 leaves out a zero count (see `crate::stored`).
fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

/// Whether a job is finished (succeeded, failed or timed out) and takes no further results.
pub fn job_finished(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Succeeded | JobStatus::Failed | JobStatus::TimedOut
    )
}

/// A job handed to job workers for one custom action execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id (a lowercase UUID).
    pub id: JobId,
    /// The nonce the worker must present to acknowledge it.
    pub nonce: String,
    /// Status.
    pub status: JobStatus,
    /// The action type it is for.
    pub action_type_id: ActionTypeId,
    /// The pipeline it belongs to.
    pub pipeline_name: String,
    /// The execution it belongs to.
    pub execution_id: ExecutionId,
    /// The stage index within the execution's pipeline version.
    pub stage_index: usize,
    /// The action index within the stage.
    pub action_index: usize,
    /// The action execution it belongs to.
    pub action_execution_id: ActionExecutionId,
    /// What the worker is given.
    pub data: JobData,
    /// When it was created (ms since the epoch).
    pub created: i64,
}

/// A pipeline's in-memory state: its entry, the declarations its executions run, and executions.
#[derive(Debug, Clone)]
pub struct PipelineState {
    /// The stored pipeline.
    pub entry: PipelineEntry,
    /// Declarations by version, for the versions executions run.
    pub versions: BTreeMap<i32, Arc<PipelineDeclaration>>,
    /// Executions in start order (oldest first): every active one and the newest finished ones.
    pub executions: Vec<Arc<Execution>>,
    /// Whether older finished executions were dropped from memory (they stay in the store).
    pub history_truncated: bool,
    /// Memory holds every execution whose `seq` is at least this; below it only the active ones
    /// and those GetPipelineState shows. Pages served from memory stop here.
    pub complete_from_seq: u64,
}

impl PipelineState {
    /// The declaration of `version`, falling back to the current one.
    pub fn declaration(&self, version: i32) -> Arc<PipelineDeclaration> {
        self.versions
            .get(&version)
            .cloned()
            .unwrap_or_else(|| Arc::clone(&self.entry.declaration))
    }

    /// Drops the oldest finished executions from memory so that at most `keep` finished ones
    /// remain, besides those GetPipelineState still shows (see [`Self::shown_executions`]).
    /// The store keeps them all; this only bounds what every write copies and scans.
    pub fn forget_old_executions(&mut self, keep: usize) {
        let finished = self.executions.iter().filter(|e| !e.is_active()).count();
        if finished <= keep {
            return;
        }
        let shown = self.shown_executions();
        let mut drop = finished - keep;
        let mut index = 0;
        let mut complete_from = self.complete_from_seq;
        self.executions.retain(|e| {
            let forget = drop > 0 && !e.is_active() && !shown[index];
            index += 1;
            if forget {
                drop -= 1;
                complete_from = complete_from.max(e.seq + 1);
            }
            !forget
        });
        self.complete_from_seq = complete_from;
        self.history_truncated = true;
    }

    /// Which executions (by position) GetPipelineState shows: for each stage of the current
    /// declaration the newest execution that entered it, for each action the newest that ran
    /// it, and for each source output the newest revision. One of these can be far older than
    /// the rest (a stage behind a transition disabled for a hundred executions), and it must
    /// stay in memory or the stage would show no latest execution at all. There are at most
    /// as many as stages, actions and outputs, so memory stays bounded.
    pub fn shown_executions(&self) -> Vec<bool> {
        let mut shown = vec![false; self.executions.len()];
        let decl = &self.entry.declaration;
        for stage in &decl.stages {
            let mut stage_found = false;
            let mut actions_missing: Vec<&str> =
                stage.actions.iter().map(|a| a.name.as_str()).collect();
            for (i, e) in self.executions.iter().enumerate().rev() {
                if stage_found && actions_missing.is_empty() {
                    break;
                }
                let run_decl = self.declaration(e.pipeline_version);
                let Some(idx) = run_decl.stages.iter().position(|st| st.name == stage.name) else {
                    continue;
                };
                let Some(run) = e.stages.get(idx).and_then(Option::as_ref) else {
                    continue;
                };
                if !stage_found {
                    stage_found = true;
                    shown[i] = true;
                }
                let before = actions_missing.len();
                actions_missing.retain(|name| {
                    !run.actions
                        .iter()
                        .flatten()
                        .chain(run.history.iter())
                        .any(|r| r.name == *name)
                });
                if actions_missing.len() != before {
                    shown[i] = true;
                }
            }
            for out in stage
                .actions
                .iter()
                .flat_map(|a| a.output_artifacts.iter().flatten())
            {
                if let Some(i) = self.executions.iter().rposition(|e| {
                    e.artifacts
                        .get(&out.name)
                        .is_some_and(|a| a.revision.is_some())
                }) {
                    shown[i] = true;
                }
            }
        }
        shown
    }

    /// The execution with this id.
    pub fn execution(&self, id: &ExecutionId) -> Option<&Arc<Execution>> {
        self.executions.iter().find(|e| e.id == *id)
    }
}
