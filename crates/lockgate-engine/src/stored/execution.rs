//! `Execution` records: one pipeline execution with its stage and action executions and the
//! jobs it handed to workers, a child of its pipeline.

use lockgate_store::{Collection, Record, StoreError};

use super::{read_as, sealed};
use crate::state::Execution;

/// The record of an execution of the pipeline `pipeline`.
pub fn record(pipeline: &str, execution: &Execution) -> Record {
    Record::new(
        Collection::Execution,
        execution.id.to_string(),
        sealed(execution),
    )
    .with_parent(pipeline.to_string())
}

/// An execution from its record. Format 1 records written before executions owned their jobs
/// have no `jobs`; theirs are in `Job` records (see [`super::job::read_legacy`]).
pub fn read(r: &Record) -> Result<Execution, StoreError> {
    // Every format holds the same fields (3 leaves out those at their default).
    read_as(r)
}
