//! RetryStageExecution: re-running a failed or stopped stage's failed actions, or all of them.

use lockgate_shapes::{
    ActionExecutionStatus as Action, ErrorCode, PipelineExecutionStatus as Execution,
    StageExecutionStatus as Stage, StageRetryMode,
};

use crate::harness::{Harness, DAY, MINUTE};
use crate::pipelines::*;
use crate::{assert_code, standard_at_approval, succeed};

/// Source, then `Build` with `A` and `B` side by side, then `Ship`; `B` failed.
fn b_failed() -> (Harness, String) {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Build", vec![job("A"), job("B")]),
        stage("Ship", vec![job("Ship")]),
    ]));
    let id = h.latest();
    succeed(&mut h, &id, "Source", "Checkout");
    succeed(&mut h, &id, "Build", "A");
    let b = h.job_for(&id, "Build", "B");
    h.fail_job(&b, "flaky").expect("failed");
    assert_eq!(h.status(&id), Execution::Failed);
    (h, id)
}

#[test]
fn retrying_failed_actions_reruns_only_the_failed_ones_and_carries_on() {
    let (mut h, id) = b_failed();
    let a_run = h
        .run(&id, "Build", "A")
        .expect("A ran")
        .action_execution_id
        .clone();
    let b_run = h
        .run(&id, "Build", "B")
        .expect("B ran")
        .action_execution_id
        .clone();

    h.retry(&id, "Build", StageRetryMode::FailedActions)
        .expect("retried");

    assert_eq!(h.status(&id), Execution::InProgress);
    assert_eq!(h.stage_status(&id, "Build"), Some(Stage::InProgress));
    assert_eq!(
        h.run(&id, "Build", "A").map(|r| &r.action_execution_id),
        Some(&a_run)
    );
    let b = h.run(&id, "Build", "B").expect("B runs again");
    assert_eq!(b.status, Action::InProgress);
    assert_ne!(b.action_execution_id, b_run);
    assert_eq!(h.last().jobs_created.len(), 1);
    let stage_run = h.execution(&id).stages[1].clone().expect("the stage ran");
    assert_eq!(stage_run.manual_retries, 1);
    assert_eq!(stage_run.history.len(), 1, "the failed run is kept");

    succeed(&mut h, &id, "Build", "B");
    assert_eq!(h.stage_status(&id, "Ship"), Some(Stage::InProgress));
}

#[test]
fn retrying_all_actions_reruns_every_action_of_the_stage() {
    let (mut h, id) = b_failed();
    h.retry(&id, "Build", StageRetryMode::AllActions)
        .expect("retried");
    assert_eq!(h.action_status(&id, "Build", "A"), Some(Action::InProgress));
    assert_eq!(h.action_status(&id, "Build", "B"), Some(Action::InProgress));
    assert_eq!(h.last().jobs_created.len(), 2);
}

#[test]
fn a_running_or_succeeded_stage_is_not_retryable_and_nothing_changes() {
    let (mut h, id) = standard_at_approval();
    let before = h.snapshot();
    for stage in ["Source", "Approve"] {
        assert_code(
            h.retry(&id, stage, StageRetryMode::FailedActions),
            ErrorCode::StageNotRetryableException,
        );
    }
    assert_eq!(h.snapshot(), before);
}

#[test]
fn retrying_an_unknown_stage_or_execution_fails_and_nothing_changes() {
    let (mut h, id) = b_failed();
    let before = h.snapshot();
    assert_code(
        h.retry(&id, "Nowhere", StageRetryMode::FailedActions),
        ErrorCode::StageNotFoundException,
    );
    assert_code(
        h.retry(
            "00000000-0000-4000-8000-ffffffffffff",
            "Build",
            StageRetryMode::FailedActions,
        ),
        ErrorCode::StageNotRetryableException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn only_the_latest_execution_to_run_a_stage_may_retry_it() {
    let (mut h, first) = b_failed();
    let second = h.start().expect("starts");
    succeed(&mut h, &second, "Source", "Checkout");
    assert_eq!(h.stage_status(&second, "Build"), Some(Stage::InProgress));
    let before = h.snapshot();
    assert_code(
        h.retry(&first, "Build", StageRetryMode::FailedActions),
        ErrorCode::NotLatestPipelineExecutionException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn retrying_a_rejected_approval_asks_again_with_a_new_token_and_a_fresh_deadline() {
    let (mut h, id) = standard_at_approval();
    let old = h.token(&id, "Approve", "Approval");
    h.reject("Approve", "Approval", &old).expect("rejected");
    h.advance(2 * DAY);

    h.retry(&id, "Approve", StageRetryMode::FailedActions)
        .expect("retried");

    let new = h.token(&id, "Approve", "Approval");
    assert_ne!(new, old);
    let deadline = h.run(&id, "Approve", "Approval").and_then(|r| r.deadline);
    assert_eq!(deadline, Some(h.now() + 7 * DAY));
    let before = h.snapshot();
    assert_code(
        h.approve("Approve", "Approval", &old),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
    h.advance(6 * DAY + 23 * 60 * MINUTE);
    h.approve("Approve", "Approval", &new)
        .expect("the new token is accepted");
    assert_eq!(h.stage_status(&id, "Deploy"), Some(Stage::InProgress));
}

#[test]
fn a_stopped_stage_can_be_retried() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.stop(&id, true).expect("abandoned");
    h.retry(&id, "Source", StageRetryMode::FailedActions)
        .expect("retried");
    assert_eq!(h.status(&id), Execution::InProgress);
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::InProgress)
    );
    succeed(&mut h, &id, "Source", "Checkout");
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::InProgress));
}

#[test]
fn a_retried_execution_is_held_by_nothing_but_its_stage() {
    // Retrying re-runs the stage the execution is already in; a disabled inbound transition of
    // that stage holds executions arriving at it, not one that is already there.
    let (mut h, id) = b_failed();
    h.disable_inbound("Build").expect("disabled");
    h.retry(&id, "Build", StageRetryMode::FailedActions)
        .expect("retried");
    assert_eq!(h.action_status(&id, "Build", "B"), Some(Action::InProgress));
}
