//! `Job` records: where a job lives (its pipeline and execution), so that a job of an
//! execution no longer in memory can be found by its id. The job itself is stored in its
//! execution. Format 1 records from before executions owned their jobs hold the whole job.

use lockgate_store::{Collection, Record, StoreError};
use serde::{Deserialize, Serialize};

use super::{opened, parse, read_as, sealed, Format};
use crate::jobs::JobPlace;
use crate::state::JobRecord;

/// The body of a `Job` record: where the job lives.
#[derive(Serialize, Deserialize)]
struct Place {
    pipeline_name: String,
    execution_id: String,
}

/// The record saying where the job `job` of the pipeline `pipeline` lives.
pub fn place_record(pipeline: &str, job: &JobRecord) -> Record {
    let place = Place {
        pipeline_name: pipeline.to_string(),
        execution_id: job.execution_id.to_string(),
    };
    Record::new(Collection::Job, job.id.clone(), sealed(&place)).with_parent(pipeline.to_string())
}

/// Where a job lives, from its record (every format says so).
pub fn read_place(r: &Record) -> Result<JobPlace, StoreError> {
    let place: Place = read_as(r)?;
    Ok(JobPlace {
        pipeline: place.pipeline_name,
        execution_id: place.execution_id,
    })
}

/// The whole job held by a format 1 `Job` record written before executions owned their jobs;
/// `None` for records that only say where a job lives.
pub fn read_legacy(r: &Record) -> Result<Option<JobRecord>, StoreError> {
    match opened(r)? {
        (Format::V1, body) if body.get("nonce").is_some() => parse(r, body).map(Some),
        _ => Ok(None),
    }
}
