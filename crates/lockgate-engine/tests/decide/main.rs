//! Pure tests of the execution semantics: the engine's `Decider` driven in memory, with a
//! manual clock and counting ids, no store and no async runtime, so hundreds of decisions run in
//! milliseconds. The service-level tests (`tests/engine`) check the same semantics through
//! SQLite and the `CodePipelineService` trait; these check the decisions themselves, each
//! command's refusals (with "nothing changed" compared on the whole state), and, in
//! `properties`, invariants over random pipelines and random command sequences.
//!
//! Every call into the `Decider` goes through `harness`; tests speak only to the harness.

mod harness;
mod invariants;
mod pipelines;

mod approvals;
mod jobs;
mod modes;
mod properties;
mod retry;
mod stages;
mod stop;
mod timeouts;
mod transitions;

use lockgate_shapes::{ErrorCode, ServiceError};

/// Asserts that a command was refused with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, ServiceError>, code: ErrorCode) {
    match result {
        Ok(v) => panic!("expected {}, got Ok({v:?})", code.as_str()),
        Err(e) => assert_eq!(e.code, code, "unexpected error: {e}"),
    }
}
