//! The indexes kept beside the records, so that what must be found without loading a pipeline
//! is found from the store's indexes: labels and positions of executions, pipelines and jobs,
//! and the timer records of armed deadlines.
//!
//! - An execution record sits at its `seq` and is labelled [`ACTIVE`] while in progress,
//!   [`SHOWN`] when finished but still shown by GetPipelineState (a stage's or action's newest
//!   run, a source output's newest revision), and unlabelled otherwise. Loading a pipeline reads
//!   its active and shown executions and the newest finished ones, never its whole history.
//! - A pipeline record is labelled with its latest execution's status (or [`NO_EXECUTIONS`])
//!   and sits at position 0 while an approval waits (1 otherwise), so the console lists
//!   pipelines waiting for approval first, and filters by status, straight from an index.
//! - A job record is labelled `queued/<action type>` while it waits for a worker, [`HELD`]
//!   once acknowledged, and unlabelled once finished; it sits at its creation time (then the
//!   order it was created in), so a job queue is read oldest first.
//! - A deadline is a `Timer` record keyed by its action execution, due when it fires.

use std::collections::HashMap;

use lockgate_model::{ActionExecutionId, ExecutionId, PipelineName};
use lockgate_shapes::{ActionExecutionStatus, JobStatus};
use lockgate_store::{Collection, Mutation, Record, StoreError};
use serde::{Deserialize, Serialize};

use super::deadlines::{Deadline, DeadlineKey};
use crate::jobs::action_type_key;
use crate::state::{job_finished, ActionKind, Execution, JobRecord, PipelineState};

/// The label of an execution in progress.
pub const ACTIVE: &str = "active";
/// The label of a finished execution GetPipelineState still shows.
pub const SHOWN: &str = "shown";
/// The label of a pipeline that has never run.
pub const NO_EXECUTIONS: &str = "None";
/// The label of a job a worker has acknowledged.
pub const HELD: &str = "held";
/// The prefix of the label of a job waiting for a worker; the action type's key follows.
pub const QUEUED_PREFIX: &str = "queued/";

/// The label of a queued job of the action type with this key.
pub fn queued_label(type_key: &str) -> String {
    format!("{QUEUED_PREFIX}{type_key}")
}

/// The label each execution of `state` carries, by id (unlabelled ones are left out).
pub fn execution_labels(state: &PipelineState) -> HashMap<ExecutionId, &'static str> {
    let shown = state.shown_executions();
    state
        .executions
        .iter()
        .zip(shown)
        .filter_map(|(e, shown)| {
            let label = if e.is_active() {
                ACTIVE
            } else if shown {
                SHOWN
            } else {
                return None;
            };
            Some((e.id.clone(), label))
        })
        .collect()
}

/// How a pipeline stands in the list of pipelines: its latest execution's status and whether
/// an approval of it waits for an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The latest execution's status, or [`NO_EXECUTIONS`].
    pub status: String,
    /// Whether a manual approval of an execution in progress waits for an answer.
    pub awaiting: bool,
}

impl Listing {
    /// Where the pipeline sorts: those waiting for approval first.
    pub fn position(&self) -> i64 {
        if self.awaiting {
            0
        } else {
            1
        }
    }
}

/// How `state` stands in the list of pipelines.
pub fn listing(state: &PipelineState) -> Listing {
    let status = state
        .executions
        .iter()
        .max_by_key(|e| e.seq)
        .map_or(NO_EXECUTIONS.to_string(), |e| e.status.as_str().to_string());
    let awaiting = state.executions.iter().any(|e| {
        e.is_active()
            && e.action_runs().any(|(_, r)| {
                r.kind == ActionKind::Approval && r.status == ActionExecutionStatus::InProgress
            })
    });
    Listing { status, awaiting }
}

/// The label of a job in this status.
pub fn job_label(job: &JobRecord) -> Option<String> {
    if job_finished(job.status) {
        None
    } else if job.status == JobStatus::InProgress {
        Some(HELD.to_string())
    } else {
        Some(queued_label(&action_type_key(&job.action_type_id)))
    }
}

/// The body of a timer record: the action whose deadline it is.
#[derive(Serialize, Deserialize)]
struct TimerBody {
    pipeline: String,
    execution_id: String,
    action_execution_id: String,
}

/// The timer record of an armed deadline.
pub fn timer_record(d: &Deadline) -> Record {
    let body = TimerBody {
        pipeline: d.key.pipeline.to_string(),
        execution_id: d.key.execution_id.to_string(),
        action_execution_id: d.key.action_execution_id.to_string(),
    };
    Record::new(
        Collection::Timer,
        d.key.action_execution_id.to_string(),
        serde_json::to_value(body).unwrap_or_default(),
    )
    .with_parent(d.key.pipeline.to_string())
    .with_due_at(d.due_at)
}

/// Removes the timer of a disarmed deadline.
pub fn timer_removal(key: &DeadlineKey) -> Mutation {
    Mutation::Delete {
        collection: Collection::Timer,
        key: key.action_execution_id.to_string(),
    }
}

/// The deadline a timer record holds.
pub fn read_timer(r: &Record) -> Result<Deadline, StoreError> {
    let body: TimerBody = r.body.decode().map_err(|e| StoreError::Corrupt {
        collection: Collection::Timer.as_str(),
        key: r.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(Deadline {
        due_at: r.due_at.unwrap_or(0),
        key: DeadlineKey {
            pipeline: PipelineName::from(body.pipeline.as_str()),
            execution_id: ExecutionId::from(body.execution_id.as_str()),
            action_execution_id: ActionExecutionId::from(body.action_execution_id.as_str()),
        },
    })
}

/// An execution's record with its position and label.
pub fn execution_record(pipeline: &str, e: &Execution, label: Option<&str>) -> Record {
    let r = crate::stored::execution::record(pipeline, e).with_position(position(e.seq));
    match label {
        Some(l) => r.with_label(l),
        None => r,
    }
}

/// Where a job sits in its queue: by creation time, then by the order its decision created
/// jobs in (`n`), so jobs created together are offered in run order.
pub fn job_position(created: i64, n: usize) -> i64 {
    created
        .saturating_mul(JOBS_PER_MILLI)
        .saturating_add(i64::try_from(n).unwrap_or(0) % JOBS_PER_MILLI)
}

/// How many jobs created at the same millisecond keep their order.
const JOBS_PER_MILLI: i64 = 1024;

/// A sequence number as a store position.
pub fn position(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
