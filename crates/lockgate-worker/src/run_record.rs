//! The record of a run that carries on across continuation jobs. A run that lasts longer than
//! its worker's continuation interval hands its job back with a continuation token (as
//! CodePipeline's job workers do for long work) and from then on keeps this record in the
//! artifact store, next to its log: a heartbeat counter and a summary of its progress, and
//! once it ends, its outcome beside it. Whichever worker takes a continuation job reads the record to report
//! progress, the outcome, or that the run's worker stopped beating.

use std::collections::BTreeMap;

use lockgate_artifacts::{ArtifactLocation, ArtifactStore};
use lockgate_shapes::{CurrentRevision, FailureType};
use serde::{Deserialize, Serialize};

use crate::executor::{Failure, Success};

/// The first part of every continuation token this worker hands out.
pub const TOKEN_PREFIX: &str = "lockgate-run/";

/// What a continued run tells the workers that hold its continuation jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The continuation token the run's jobs carry.
    pub token: String,
    /// Which worker runs it (host and process id), for messages.
    pub worker: String,
    /// Counts the run's heartbeats: a count that stops moving means its worker stopped.
    pub beat: u64,
    /// What the run is doing, for the action's summary.
    pub summary: String,
}

/// How a continued run ended, with its token; kept in an object of its own (see
/// [`outcome_location`]) so that no late heartbeat can overwrite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ending {
    /// The continuation token of the run.
    pub token: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// How a continued run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum Outcome {
    /// It succeeded.
    Succeeded {
        /// A short summary shown with the action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
        /// The variables it exported.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        output_variables: BTreeMap<String, String>,
        /// The revision a source action fetched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current_revision: Option<CurrentRevision>,
        /// The id of the run in the system that ran it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_execution_id: Option<String>,
    },
    /// It failed.
    Failed {
        /// CodePipeline's failure type.
        kind: FailureType,
        /// What went wrong.
        message: String,
    },
}

impl Outcome {
    /// The outcome of a finished run.
    pub fn of(result: &Result<Success, Failure>) -> Outcome {
        match result {
            Ok(s) => Outcome::Succeeded {
                summary: s.summary.clone(),
                output_variables: s.output_variables.clone(),
                current_revision: s.current_revision.clone(),
                external_execution_id: s.external_execution_id.clone(),
            },
            Err(f) => Outcome::Failed {
                kind: f.kind,
                message: f.message.clone(),
            },
        }
    }

    /// The result to report for it.
    pub fn into_result(self) -> Result<Success, Failure> {
        match self {
            Outcome::Succeeded {
                summary,
                output_variables,
                current_revision,
                external_execution_id,
            } => Ok(Success {
                summary,
                output_variables,
                current_revision,
                external_execution_id,
            }),
            Outcome::Failed { kind, message } => Err(Failure { kind, message }),
        }
    }
}

/// The continuation token of the run that `first_job_id` started.
pub fn token_for(first_job_id: &str) -> String {
    format!("{TOKEN_PREFIX}{first_job_id}")
}

/// Where the outcome of the run whose record is at `place` is kept.
pub fn outcome_location(place: &ArtifactLocation) -> ArtifactLocation {
    ArtifactLocation {
        bucket: place.bucket.clone(),
        key: format!("{}-outcome", place.key),
    }
}

/// Stores `value` (a record or an ending) at `place`.
pub async fn write<T: Serialize>(
    store: &dyn ArtifactStore,
    place: &ArtifactLocation,
    value: &T,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    store.put(place, bytes).await.map_err(|e| e.to_string())
}

/// Reads the record or ending at `place`: `Ok(None)` when there is none.
pub async fn read<T: serde::de::DeserializeOwned>(
    store: &dyn ArtifactStore,
    place: &ArtifactLocation,
) -> Result<Option<T>, String> {
    match store.get(place).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("the run record at {place} cannot be read: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// This worker as messages name it: its host and process id.
pub fn worker_name() -> String {
    let uname = rustix::system::uname();
    format!(
        "{} (pid {})",
        uname.nodename().to_string_lossy(),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_round_trips_through_its_record() {
        let success = Success {
            summary: Some("built".into()),
            output_variables: BTreeMap::from([("VERSION".into(), "1.2.3".into())]),
            current_revision: None,
            external_execution_id: Some("x".into()),
        };
        let ending = Ending {
            token: token_for("job"),
            outcome: Outcome::of(&Ok(success.clone())),
        };
        let text = serde_json::to_string(&ending).unwrap();
        let back: Ending = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ending);
        assert_eq!(back.outcome.into_result(), Ok(success));

        let failure = Failure::job("exit 2");
        assert_eq!(
            Outcome::of(&Err(failure.clone())).into_result(),
            Err(failure)
        );
    }
}
