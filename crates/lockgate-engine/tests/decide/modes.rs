//! Execution modes: SUPERSEDED keeps only the newest execution waiting at a transition, QUEUED
//! lets executions through one at a time in arrival order, PARALLEL runs them side by side.

use lockgate_shapes::{
    ErrorCode, ExecutionMode, PipelineExecutionStatus as Execution, StageExecutionStatus as Stage,
};

use crate::harness::{Harness, MAX_ACTIVE_EXECUTIONS};
use crate::pipelines::*;
use crate::{approve, assert_code, succeed};

/// The standard pipeline in `mode` with two executions, the first at the approval and the
/// second's source done, so it waits to enter the approval stage.
fn two_at_the_approval(mode: ExecutionMode) -> (Harness, String, String) {
    let mut h = Harness::new(pipeline_in(mode, standard_stages()));
    let first = h.latest();
    succeed(&mut h, &first, "Source", "Checkout");
    let second = h.start().expect("the second execution starts");
    succeed(&mut h, &second, "Source", "Checkout");
    (h, first, second)
}

#[test]
fn a_superseded_pipeline_is_the_default_mode() {
    let h = Harness::new(standard());
    assert_eq!(h.execution(&h.latest()).mode, ExecutionMode::Superseded);
}

#[test]
fn a_newer_execution_supersedes_the_one_waiting_at_the_same_transition() {
    let mut h = Harness::new(standard());
    let first = h.latest();
    succeed(&mut h, &first, "Source", "Checkout");
    let second = h.start().expect("starts");
    succeed(&mut h, &second, "Source", "Checkout");
    assert_eq!(
        h.status(&second),
        Execution::InProgress,
        "waits behind the first"
    );
    let third = h.start().expect("starts");
    succeed(&mut h, &third, "Source", "Checkout");

    assert_eq!(h.status(&second), Execution::Superseded);
    let summary = h
        .execution(&second)
        .status_summary
        .clone()
        .unwrap_or_default();
    assert!(summary.contains(&third), "{summary}");
    assert_eq!(h.status(&first), Execution::InProgress);
    assert_eq!(h.status(&third), Execution::InProgress);
}

#[test]
fn a_new_start_supersedes_an_execution_waiting_for_the_source_stage() {
    let mut h = Harness::new(standard());
    let first = h.latest();
    let second = h.start().expect("starts");
    assert_eq!(h.status(&second), Execution::InProgress);
    let third = h.start().expect("starts");
    assert_eq!(h.status(&second), Execution::Superseded);
    assert_eq!(h.status(&first), Execution::InProgress);
    assert_eq!(h.status(&third), Execution::InProgress);
}

#[test]
fn a_finished_execution_lets_the_one_waiting_behind_into_the_stage() {
    let (mut h, first, second) = two_at_the_approval(ExecutionMode::Superseded);
    assert_eq!(h.stage_status(&second, "Approve"), None);
    let token = h.token(&first, "Approve", "Approval");
    h.reject("Approve", "Approval", &token).expect("rejected");
    assert_eq!(h.status(&first), Execution::Failed);
    assert_eq!(h.stage_status(&second, "Approve"), Some(Stage::InProgress));
}

#[test]
fn queued_executions_enter_in_arrival_order_and_none_is_superseded() {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Queued, standard_stages()));
    let first = h.latest();
    succeed(&mut h, &first, "Source", "Checkout");
    let second = h.start().expect("starts");
    succeed(&mut h, &second, "Source", "Checkout");
    let third = h.start().expect("starts");
    succeed(&mut h, &third, "Source", "Checkout");
    for id in [&first, &second, &third] {
        assert_eq!(h.status(id), Execution::InProgress);
    }

    approve(&mut h, &first, "Approve", "Approval");
    assert_eq!(h.stage_status(&second, "Approve"), Some(Stage::InProgress));
    assert_eq!(h.stage_status(&third, "Approve"), None);
    approve(&mut h, &second, "Approve", "Approval");
    assert_eq!(h.stage_status(&third, "Approve"), Some(Stage::InProgress));
}

#[test]
fn a_queued_execution_waits_for_the_first_stage_instead_of_overtaking() {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Queued, standard_stages()));
    let first = h.latest();
    let second = h.start().expect("starts");
    assert_eq!(h.stage_status(&second, "Source"), None);
    assert_eq!(
        h.open_jobs().len(),
        1,
        "only the first execution's source runs"
    );
    succeed(&mut h, &first, "Source", "Checkout");
    assert_eq!(h.stage_status(&second, "Source"), Some(Stage::InProgress));
}

#[test]
fn parallel_executions_run_the_same_stage_side_by_side() {
    let (h, first, second) = two_at_the_approval(ExecutionMode::Parallel);
    assert_eq!(h.stage_status(&first, "Approve"), Some(Stage::InProgress));
    assert_eq!(h.stage_status(&second, "Approve"), Some(Stage::InProgress));
    assert_ne!(
        h.token(&first, "Approve", "Approval"),
        h.token(&second, "Approve", "Approval")
    );
}

#[test]
fn a_parallel_rejection_fails_only_its_own_execution() {
    let (mut h, first, second) = two_at_the_approval(ExecutionMode::Parallel);
    let token = h.token(&second, "Approve", "Approval");
    h.reject("Approve", "Approval", &token).expect("rejected");
    assert_eq!(h.status(&second), Execution::Failed);
    assert_eq!(h.status(&first), Execution::InProgress);
    approve(&mut h, &first, "Approve", "Approval");
    assert_eq!(h.stage_status(&first, "Deploy"), Some(Stage::InProgress));
}

#[test]
fn a_queued_pipeline_refuses_an_execution_beyond_the_limit_and_changes_nothing() {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Queued, standard_stages()));
    for _ in 1..MAX_ACTIVE_EXECUTIONS {
        h.start().expect("starts");
    }
    let before = h.snapshot();
    assert_code(
        h.start(),
        ErrorCode::ConcurrentPipelineExecutionsLimitExceededException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_superseded_pipeline_has_no_execution_limit() {
    let mut h = Harness::new(standard());
    for _ in 0..MAX_ACTIVE_EXECUTIONS + 5 {
        h.start().expect("starts");
    }
    let active = h
        .state()
        .executions
        .iter()
        .filter(|e| e.is_active())
        .count();
    assert_eq!(
        active, 2,
        "one in the source stage and the newest waiting for it"
    );
}
