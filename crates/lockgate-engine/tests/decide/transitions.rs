//! Stage transitions: a disabled transition holds executions before the stage, enabling it
//! releases them as the execution mode allows.

use lockgate_shapes::{
    ErrorCode, ExecutionMode, PipelineExecutionStatus as Execution, StageExecutionStatus as Stage,
    StageTransitionType,
};

use crate::harness::Harness;
use crate::pipelines::*;
use crate::{approve, assert_code, succeed};

#[test]
fn a_disabled_inbound_transition_holds_executions_until_it_is_enabled() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.disable_inbound("Approve").expect("disabled");
    assert!(!h.transition_enabled("Approve"));
    succeed(&mut h, &id, "Source", "Checkout");
    assert_eq!(h.stage_status(&id, "Source"), Some(Stage::Succeeded));
    assert_eq!(h.stage_status(&id, "Approve"), None);
    assert_eq!(h.status(&id), Execution::InProgress);

    h.enable_inbound("Approve").expect("enabled");
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::InProgress));
}

#[test]
fn disabling_a_stages_outbound_transition_holds_executions_before_the_next_stage() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    h.set_transition("Source", StageTransitionType::Outbound, false)
        .expect("disabled");
    assert!(!h.transition_enabled("Approve"));
    succeed(&mut h, &id, "Source", "Checkout");
    assert_eq!(h.stage_status(&id, "Approve"), None);
}

#[test]
fn disabling_a_transition_does_not_disturb_an_execution_already_in_the_stage() {
    let (mut h, id) = crate::standard_at_approval();
    h.disable_inbound("Approve").expect("disabled");
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::InProgress));
    approve(&mut h, &id, "Approve", "Approval");
    assert_eq!(h.stage_status(&id, "Deploy"), Some(Stage::InProgress));
}

#[test]
fn executions_held_at_a_disabled_transition_are_superseded_by_newer_arrivals() {
    let mut h = Harness::new(standard());
    h.disable_inbound("Approve").expect("disabled");
    let first = h.latest();
    succeed(&mut h, &first, "Source", "Checkout");
    let second = h.start().expect("starts");
    succeed(&mut h, &second, "Source", "Checkout");
    assert_eq!(h.status(&first), Execution::Superseded);
    h.enable_inbound("Approve").expect("enabled");
    assert_eq!(h.stage_status(&second, "Approve"), Some(Stage::InProgress));
}

#[test]
fn queued_executions_held_at_a_transition_are_released_one_at_a_time() {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Queued, standard_stages()));
    h.disable_inbound("Approve").expect("disabled");
    let first = h.latest();
    succeed(&mut h, &first, "Source", "Checkout");
    let second = h.start().expect("starts");
    succeed(&mut h, &second, "Source", "Checkout");

    h.enable_inbound("Approve").expect("enabled");
    assert_eq!(h.stage_status(&first, "Approve"), Some(Stage::InProgress));
    assert_eq!(h.stage_status(&second, "Approve"), None);
    approve(&mut h, &first, "Approve", "Approval");
    assert_eq!(h.stage_status(&second, "Approve"), Some(Stage::InProgress));
}

#[test]
fn parallel_executions_held_at_a_transition_are_released_together() {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Parallel, standard_stages()));
    h.disable_inbound("Approve").expect("disabled");
    let first = h.latest();
    let second = h.start().expect("starts");
    succeed(&mut h, &first, "Source", "Checkout");
    succeed(&mut h, &second, "Source", "Checkout");
    h.enable_inbound("Approve").expect("enabled");
    assert_eq!(h.stage_status(&first, "Approve"), Some(Stage::InProgress));
    assert_eq!(h.stage_status(&second, "Approve"), Some(Stage::InProgress));
}

#[test]
fn the_last_stage_has_no_outbound_transition_and_nothing_changes() {
    let mut h = Harness::new(standard());
    let before = h.snapshot();
    assert_code(
        h.set_transition("Deploy", StageTransitionType::Outbound, false),
        ErrorCode::ValidationException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn changing_the_transition_of_an_unknown_stage_fails_and_nothing_changes() {
    let mut h = Harness::new(standard());
    let before = h.snapshot();
    assert_code(
        h.disable_inbound("Nowhere"),
        ErrorCode::StageNotFoundException,
    );
    assert_code(
        h.enable_inbound("Nowhere"),
        ErrorCode::StageNotFoundException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_disabled_first_stage_holds_new_executions_before_the_source() {
    let mut h = Harness::new(standard());
    let first = h.latest();
    h.disable_inbound("Source").expect("disabled");
    succeed(&mut h, &first, "Source", "Checkout");
    let second = h.start().expect("starts");
    assert_eq!(h.stage_status(&second, "Source"), None);
    assert!(h.last().jobs_created.is_empty());
    h.enable_inbound("Source").expect("enabled");
    assert_eq!(h.stage_status(&second, "Source"), Some(Stage::InProgress));
}
