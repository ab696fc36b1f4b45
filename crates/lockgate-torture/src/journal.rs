//! What each client knows for certain: the writes the server acknowledged (2xx), kept in the
//! client's own memory, and the counts of everything it sent. A write whose answer was lost to
//! the kill is "in doubt": it may or may not have happened, so nothing is asserted about it.

use std::collections::BTreeMap;

/// The approval's stage and action in every torture pipeline.
pub const APPROVAL_STAGE: &str = "Approve";
/// The manual approval action.
pub const APPROVAL_ACTION: &str = "Approval";
/// The stage whose inbound transition the clients disable and enable.
pub const GATED_STAGE: &str = "Build";

/// What a client knows about the inbound transition of a pipeline's gated stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The last acknowledged change enabled it (or it was never changed).
    Enabled,
    /// The last acknowledged change disabled it. `entered` is the execution the gated stage
    /// showed as its latest right after the disable was acknowledged: while disabled, no other
    /// execution may enter the stage.
    Disabled {
        /// `pipelineExecutionId` of the stage's latest execution, `None` if not read yet.
        entered: Option<Option<String>>,
    },
    /// A change was sent and its answer lost (or refused): to be read back from the server.
    Unknown,
}

/// A pipeline a client created.
#[derive(Debug, Clone)]
pub struct PipelineRecord {
    /// The pipeline's name.
    pub name: String,
    /// Whether CreatePipeline was acknowledged (false: the answer was lost to the kill).
    pub acknowledged: bool,
    /// The gated stage's inbound transition.
    pub transition: Transition,
}

/// An acknowledged PutApprovalResult.
#[derive(Debug, Clone)]
pub struct ApprovalRecord {
    /// The pipeline.
    pub pipeline: String,
    /// The answered action execution, read with its token from GetPipelineState.
    pub action_execution_id: String,
    /// The token that was answered.
    pub token: String,
    /// `Approved` or `Rejected`.
    pub status: &'static str,
    /// The summary sent; unique in the campaign.
    pub summary: String,
    /// Whether a second answer to the token has been tried (and refused) since.
    pub answered_twice: bool,
}

/// An acknowledged PutJobSuccessResult or PutJobFailureResult.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The job id.
    pub job_id: String,
    /// The pipeline the job belongs to (from its job data).
    pub pipeline: String,
    /// The action execution the job ran.
    pub action_execution_id: String,
    /// Whether the job succeeded.
    pub succeeded: bool,
    /// The success summary or failure message sent; unique in the campaign.
    pub text: String,
    /// Whether a second completion has been tried (and refused) since.
    pub completed_twice: bool,
}

/// An acknowledged StartPipelineExecution.
#[derive(Debug, Clone)]
pub struct StartRecord {
    /// The pipeline.
    pub pipeline: String,
    /// The execution id the server answered.
    pub execution_id: String,
}

/// One client's journal and counters.
#[derive(Debug, Default)]
pub struct Journal {
    /// The client's pipelines by name.
    pub pipelines: BTreeMap<String, PipelineRecord>,
    /// Acknowledged approval answers.
    pub approvals: Vec<ApprovalRecord>,
    /// Acknowledged job results.
    pub jobs: Vec<JobRecord>,
    /// Acknowledged starts.
    pub starts: Vec<StartRecord>,
    /// Acknowledged operations by kind.
    pub acknowledged: BTreeMap<String, u64>,
    /// Refused operations by error code (races the load makes on purpose, e.g. an approval
    /// superseded between reading its token and answering it).
    pub refused: BTreeMap<String, u64>,
    /// Second answers and results the server refused, as it must.
    pub probes: u64,
    /// Writes whose answer was lost to a kill.
    pub in_doubt: u64,
    /// Invariant violations seen while the load ran.
    pub violations: Vec<String>,
    /// Pipelines created so far, for unique names.
    pub created: u64,
}

impl Journal {
    /// Counts an acknowledged operation of `kind`.
    pub fn ack(&mut self, kind: &str) {
        *self.acknowledged.entry(kind.to_owned()).or_default() += 1;
    }

    /// Counts a refusal with `code`.
    pub fn refuse(&mut self, code: &str) {
        *self.refused.entry(code.to_owned()).or_default() += 1;
    }

    /// Records a violation.
    pub fn violate(&mut self, what: String) {
        self.violations.push(what);
    }

    /// Pipelines whose creation was acknowledged.
    pub fn live_pipelines(&self) -> Vec<String> {
        self.pipelines
            .values()
            .filter(|p| p.acknowledged)
            .map(|p| p.name.clone())
            .collect()
    }
}

/// Adds `from` into `into`, key by key.
pub fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}
