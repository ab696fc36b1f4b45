//! Inside a stage: run-order groups, actions running side by side, and a failing action.

use lockgate_shapes::{
    ActionExecutionStatus as Action, ErrorCode, JobStatus, PipelineExecutionStatus as Execution,
    StageExecutionStatus as Stage,
};

use crate::assert_code;
use crate::harness::Harness;
use crate::pipelines::*;

/// Source, then `Build` with `A` and `B` at run order 1 and `C` at run order 2, then `Ship`.
fn grouped() -> (Harness, String) {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage(
            "Build",
            vec![
                job("C").run_order(2),
                job("A").run_order(1),
                job("B").run_order(1),
            ],
        ),
        stage("Ship", vec![job("Ship")]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    (h, id)
}

#[test]
fn actions_with_the_same_run_order_start_together() {
    let (h, id) = grouped();
    assert_eq!(h.action_status(&id, "Build", "A"), Some(Action::InProgress));
    assert_eq!(h.action_status(&id, "Build", "B"), Some(Action::InProgress));
    assert_eq!(h.action_status(&id, "Build", "C"), None);
    assert_eq!(h.last().jobs_created.len(), 2);
}

#[test]
fn the_next_run_order_starts_only_once_the_whole_group_succeeded() {
    let (mut h, id) = grouped();
    crate::succeed(&mut h, &id, "Build", "A");
    assert_eq!(h.action_status(&id, "Build", "C"), None);
    assert!(h.last().jobs_created.is_empty());

    crate::succeed(&mut h, &id, "Build", "B");
    assert_eq!(h.action_status(&id, "Build", "C"), Some(Action::InProgress));
    assert_eq!(h.last().jobs_created.len(), 1);
    assert_eq!(h.stage_status(&id, "Build"), Some(Stage::InProgress));

    crate::succeed(&mut h, &id, "Build", "C");
    assert_eq!(h.stage_status(&id, "Build"), Some(Stage::Succeeded));
    assert_eq!(h.stage_status(&id, "Ship"), Some(Stage::InProgress));
}

#[test]
fn run_orders_need_not_be_consecutive() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage(
            "Build",
            vec![job("Late").run_order(900), job("Early").run_order(3)],
        ),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    assert_eq!(
        h.action_status(&id, "Build", "Early"),
        Some(Action::InProgress)
    );
    assert_eq!(h.action_status(&id, "Build", "Late"), None);
    crate::succeed(&mut h, &id, "Build", "Early");
    crate::succeed(&mut h, &id, "Build", "Late");
    assert_eq!(h.status(&id), Execution::Succeeded);
}

#[test]
fn source_actions_run_side_by_side_in_the_first_stage() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("App"), source("Config")]),
        stage("Build", vec![job("Build")]),
    ]));
    let id = h.latest();
    assert_eq!(h.open_jobs().len(), 2);
    crate::succeed(&mut h, &id, "Source", "Config");
    assert_eq!(h.stage_status(&id, "Build"), None);
    crate::succeed(&mut h, &id, "Source", "App");
    assert_eq!(h.stage_status(&id, "Build"), Some(Stage::InProgress));
}

#[test]
fn a_failed_job_fails_its_stage_and_the_execution_and_the_next_group_never_starts() {
    let (mut h, id) = grouped();
    crate::succeed(&mut h, &id, "Build", "B");
    let a = h.job_for(&id, "Build", "A");

    h.fail_job(&a, "compiler error")
        .expect("the failure is accepted");

    let run = h.run(&id, "Build", "A").expect("A ran");
    assert_eq!(run.status, Action::Failed);
    assert_eq!(run.summary.as_deref(), Some("compiler error"));
    assert_eq!(
        run.error,
        Some(("JobFailed".to_string(), "compiler error".to_string()))
    );
    assert_eq!(h.action_status(&id, "Build", "C"), None);
    assert_eq!(h.stage_status(&id, "Build"), Some(Stage::Failed));
    assert_eq!(h.stage_status(&id, "Ship"), None);
    assert_eq!(h.status(&id), Execution::Failed);
    let summary = h.execution(&id).status_summary.clone().expect("a summary");
    assert!(summary.contains("action A: compiler error"), "{summary}");
    assert_eq!(h.last().jobs_closed, vec![(a, JobStatus::Failed)]);
}

#[test]
fn a_failure_abandons_the_actions_still_running_beside_it_and_closes_their_jobs() {
    let (mut h, id) = grouped();
    let a = h.job_for(&id, "Build", "A");
    let b = h.job_for(&id, "Build", "B");

    h.fail_job(&a, "broken").expect("the failure is accepted");

    assert_eq!(h.action_status(&id, "Build", "B"), Some(Action::Abandoned));
    assert_eq!(h.job(&b).map(|j| j.status), Some(JobStatus::Failed));
    assert!(h.open_jobs().is_empty());
    let before = h.snapshot();
    assert_code(h.succeed_job(&b), ErrorCode::InvalidJobStateException);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn one_rejection_among_parallel_approvals_fails_the_stage_and_abandons_the_other() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Approve", vec![approval("Legal"), approval("Security")]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    let legal = h.token(&id, "Approve", "Legal");
    let security = h.token(&id, "Approve", "Security");

    h.reject("Approve", "Legal", &legal)
        .expect("the rejection is accepted");

    assert_eq!(
        h.action_status(&id, "Approve", "Security"),
        Some(Action::Abandoned)
    );
    assert_eq!(h.status(&id), Execution::Failed);
    let before = h.snapshot();
    assert_code(
        h.approve("Approve", "Security", &security),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn an_approval_and_a_job_in_one_group_both_have_to_finish() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Gate", vec![approval("Approval"), job("Scan")]),
        stage("Ship", vec![job("Ship")]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    crate::approve(&mut h, &id, "Gate", "Approval");
    assert_eq!(h.stage_status(&id, "Ship"), None);
    crate::succeed(&mut h, &id, "Gate", "Scan");
    assert_eq!(h.stage_status(&id, "Ship"), Some(Stage::InProgress));
}
