//! StopPipelineExecution: stop and wait lets in-progress jobs finish, stop and abandon ends them
//! at once; pending approvals are abandoned either way.

use lockgate_shapes::{
    ActionExecutionStatus as Action, ErrorCode, ExecutionMode, JobStatus,
    PipelineExecutionStatus as Execution, StageExecutionStatus as Stage,
};

use crate::harness::Harness;
use crate::pipelines::*;
use crate::{assert_code, standard_at_approval, succeed};

#[test]
fn stop_and_wait_lets_the_job_finish_and_then_stops_the_execution() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");

    h.stop(&id, false).expect("the stop is accepted");
    assert_eq!(h.status(&id), Execution::Stopping);
    assert_eq!(h.stage_status(&id, "Source"), Some(Stage::Stopping));
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::Queued));

    h.succeed_job(&job).expect("the job may still finish");
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::Succeeded)
    );
    assert_eq!(h.stage_status(&id, "Source"), Some(Stage::Stopped));
    assert_eq!(h.stage_status(&id, "Approve"), None);
    assert_eq!(h.status(&id), Execution::Stopped);
}

#[test]
fn stop_and_abandon_stops_at_once_and_closes_the_jobs_in_progress() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");

    h.stop(&id, true).expect("the stop is accepted");

    assert_eq!(h.status(&id), Execution::Stopped);
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::Abandoned)
    );
    assert_eq!(h.last().jobs_closed, vec![(job.clone(), JobStatus::Failed)]);
    let before = h.snapshot();
    assert_code(h.succeed_job(&job), ErrorCode::InvalidJobStateException);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn stop_and_abandon_is_allowed_on_an_execution_that_is_stopping() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.stop(&id, false).expect("stop and wait");
    h.stop(&id, true).expect("then abandon");
    assert_eq!(h.status(&id), Execution::Stopped);
}

#[test]
fn a_second_stop_and_wait_is_a_duplicated_stop_request_and_changes_nothing() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.stop(&id, false).expect("stop and wait");
    let before = h.snapshot();
    assert_code(
        h.stop(&id, false),
        ErrorCode::DuplicatedStopRequestException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_finished_or_unknown_execution_is_not_stoppable_and_nothing_changes() {
    let (mut h, id) = standard_at_approval();
    let token = h.token(&id, "Approve", "Approval");
    h.reject("Approve", "Approval", &token).expect("rejected");
    let before = h.snapshot();
    for abandon in [false, true] {
        assert_code(
            h.stop(&id, abandon),
            ErrorCode::PipelineExecutionNotStoppableException,
        );
        assert_code(
            h.stop("00000000-0000-4000-8000-ffffffffffff", abandon),
            ErrorCode::PipelineExecutionNotStoppableException,
        );
    }
    assert_eq!(h.snapshot(), before);
}

#[test]
fn stopping_an_execution_at_a_pending_approval_abandons_it_and_invalidates_its_token() {
    let (mut h, id) = standard_at_approval();
    let token = h.token(&id, "Approve", "Approval");

    // Stop and wait: nobody can answer an approval of a stopping execution, so it ends now.
    h.stop(&id, false).expect("the stop is accepted");

    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(Action::Abandoned)
    );
    assert_eq!(h.status(&id), Execution::Stopped);
    let before = h.snapshot();
    assert_code(
        h.approve("Approve", "Approval", &token),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn stop_and_wait_abandons_a_pending_approval_but_waits_for_a_job_beside_it() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Gate", vec![approval("Approval"), job("Scan")]),
    ]));
    let id = h.latest();
    succeed(&mut h, &id, "Source", "Checkout");
    h.stop(&id, false).expect("the stop is accepted");
    assert_eq!(
        h.action_status(&id, "Gate", "Approval"),
        Some(Action::Abandoned)
    );
    assert_eq!(
        h.action_status(&id, "Gate", "Scan"),
        Some(Action::InProgress)
    );
    assert_eq!(h.status(&id), Execution::Stopping);
    succeed(&mut h, &id, "Gate", "Scan");
    assert_eq!(h.status(&id), Execution::Stopped);
}

#[test]
fn stopping_an_execution_held_at_a_disabled_transition_stops_it_at_once() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.disable_inbound("Approve").expect("disabled");
    succeed(&mut h, &id, "Source", "Checkout");
    h.stop(&id, false).expect("the stop is accepted");
    assert_eq!(h.status(&id), Execution::Stopped);
    h.enable_inbound("Approve").expect("enabled");
    assert_eq!(h.stage_status(&id, "Approve"), None);
}

#[test]
fn stopping_the_execution_in_a_stage_lets_the_waiting_one_in() {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Queued, standard_stages()));
    let first = h.latest();
    let second = h.start().expect("starts");
    h.stop(&first, true).expect("abandoned");
    assert_eq!(h.stage_status(&second, "Source"), Some(Stage::InProgress));
}

#[test]
fn a_job_that_times_out_while_stopping_still_stops_the_execution() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.stop(&id, false).expect("the stop is accepted");
    h.advance(crate::harness::JOB_TIMEOUT);
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::Failed)
    );
    assert_eq!(h.status(&id), Execution::Stopped);
}
