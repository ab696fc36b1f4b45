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
mod stored;
mod timeouts;
mod transitions;
mod variables;

use lockgate_shapes::{ErrorCode, ServiceError};

/// Asserts that a command was refused with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, ServiceError>, code: ErrorCode) {
    match result {
        Ok(v) => panic!("expected {}, got Ok({v:?})", code.as_str()),
        Err(e) => assert_eq!(e.code, code, "unexpected error: {e}"),
    }
}

/// The standard pipeline with its first execution's source job done, so that it waits at the
/// approval. Returns the harness and the execution id.
pub fn standard_at_approval() -> (harness::Harness, String) {
    let mut h = harness::Harness::new(pipelines::standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");
    h.succeed_job(&job).expect("the source job succeeds");
    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(lockgate_shapes::ActionExecutionStatus::InProgress)
    );
    (h, id)
}

/// Runs the current job of `stage`/`action` of execution `id` to success.
#[track_caller]
pub fn succeed(h: &mut harness::Harness, id: &str, stage: &str, action: &str) {
    let job = h.job_for(id, stage, action);
    h.succeed_job(&job).expect("the job's success is accepted");
}

/// Approves the pending approval `stage`/`action` of execution `id` with its token.
#[track_caller]
pub fn approve(h: &mut harness::Harness, id: &str, stage: &str, action: &str) {
    let token = h.token(id, stage, action);
    h.approve(stage, action, &token)
        .expect("the approval is accepted");
}
