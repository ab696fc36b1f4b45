//! Manual approvals: approving resumes the execution, rejecting fails it, and every wrong
//! answer is refused with AWS's error code and changes nothing.

use lockgate_model::notice::NoticeKind;
use lockgate_shapes::{
    ActionExecutionStatus as Action, ErrorCode, PipelineExecutionStatus as Execution,
    StageExecutionStatus as Stage,
};

use crate::harness::{Harness, ALICE, MINUTE};
use crate::pipelines::*;
use crate::{assert_code, standard_at_approval};

/// A well-formed token no approval was ever given.
const STRANGER: &str = "0e0e0e0e-1111-4222-8333-444444444444";

#[test]
fn an_execution_waits_at_the_approval_once_the_source_succeeded() {
    let (h, id) = standard_at_approval();
    assert_eq!(h.stage_status(&id, "Source"), Some(Stage::Succeeded));
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::InProgress));
    assert_eq!(h.stage_status(&id, "Deploy"), None);
    let run = h
        .run(&id, "Approve", "Approval")
        .expect("the approval runs");
    assert_eq!(
        run.token.clone().map(String::from),
        run.external_execution_id
    );
    assert!(run.job_id.is_none());
    assert_eq!(h.status(&id), Execution::InProgress);
}

#[test]
fn approving_succeeds_the_approval_and_starts_the_next_stage() {
    let (mut h, id) = standard_at_approval();
    let token = h.token(&id, "Approve", "Approval");
    h.advance(3 * MINUTE);

    let at = h
        .approve("Approve", "Approval", &token)
        .expect("the approval is accepted");

    assert_eq!(at, h.now());
    let run = h.run(&id, "Approve", "Approval").expect("the approval ran");
    assert_eq!(run.status, Action::Succeeded);
    assert_eq!(run.last_updated_by.as_deref(), Some(ALICE));
    assert_eq!(run.summary.as_deref(), Some("Looks good"));
    assert_eq!(run.last_change, h.now());
    assert!(run.decided);
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::Succeeded));
    assert_eq!(h.stage_status(&id, "Deploy"), Some(Stage::InProgress));
    assert_eq!(h.last().jobs_created.len(), 1, "the deploy job is created");
    assert_eq!(h.status(&id), Execution::InProgress);
}

#[test]
fn approving_the_last_stage_succeeds_the_execution() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Approve", vec![approval("Approval")]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    crate::approve(&mut h, &id, "Approve", "Approval");
    assert_eq!(h.status(&id), Execution::Succeeded);
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::Succeeded));
}

#[test]
fn rejecting_fails_the_approval_the_stage_and_the_execution() {
    let (mut h, id) = standard_at_approval();
    let token = h.token(&id, "Approve", "Approval");

    h.reject("Approve", "Approval", &token)
        .expect("the rejection is accepted");

    let run = h.run(&id, "Approve", "Approval").expect("the approval ran");
    assert_eq!(run.status, Action::Failed);
    assert_eq!(
        run.error.as_ref().map(|e| e.0.as_str()),
        Some("ApprovalRejected")
    );
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::Failed));
    assert_eq!(h.stage_status(&id, "Deploy"), None);
    assert_eq!(h.status(&id), Execution::Failed);
    let summary = h.execution(&id).status_summary.clone().expect("a summary");
    assert!(
        summary.contains("stage Approve, action Approval"),
        "{summary}"
    );
    assert!(h.last().jobs_created.is_empty());
}

#[test]
fn a_wrong_token_is_an_invalid_approval_token_and_changes_nothing() {
    let (mut h, _) = standard_at_approval();
    let before = h.snapshot();
    assert_code(
        h.approve("Approve", "Approval", STRANGER),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_token_answered_twice_is_approval_already_completed_and_changes_nothing() {
    for first_approves in [true, false] {
        let (mut h, id) = standard_at_approval();
        let token = h.token(&id, "Approve", "Approval");
        h.answer("Approve", "Approval", &token, first_approves)
            .expect("the first answer is accepted");
        let before = h.snapshot();
        for again in [true, false] {
            assert_code(
                h.answer("Approve", "Approval", &token, again),
                ErrorCode::ApprovalAlreadyCompletedException,
            );
            assert_eq!(h.snapshot(), before);
        }
    }
}

#[test]
fn a_token_presented_for_another_action_is_invalid_and_changes_nothing() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Approve", vec![approval("Legal"), approval("Security")]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    let legal = h.token(&id, "Approve", "Legal");
    let before = h.snapshot();
    assert_code(
        h.approve("Approve", "Security", &legal),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn an_unknown_stage_or_action_is_refused_before_the_token_is_looked_at() {
    let (mut h, id) = standard_at_approval();
    let token = h.token(&id, "Approve", "Approval");
    let before = h.snapshot();
    assert_code(
        h.approve("Nowhere", "Approval", &token),
        ErrorCode::StageNotFoundException,
    );
    assert_code(
        h.approve("Approve", "Nobody", &token),
        ErrorCode::ActionNotFoundException,
    );
    // A custom action is an action, but not an approval: its name with a token is no approval.
    assert_code(
        h.approve("Deploy", "Deploy", &token),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn two_approvals_in_one_stage_each_need_an_answer() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Approve", vec![approval("Legal"), approval("Security")]),
        stage("Deploy", vec![job("Deploy")]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    crate::approve(&mut h, &id, "Approve", "Legal");
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::InProgress));
    assert_eq!(h.stage_status(&id, "Deploy"), None);
    crate::approve(&mut h, &id, "Approve", "Security");
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::Succeeded));
    assert_eq!(h.stage_status(&id, "Deploy"), Some(Stage::InProgress));
}

#[test]
fn an_expired_approvals_token_is_invalid_and_changes_nothing() {
    let (mut h, id) = standard_at_approval();
    let token = h.token(&id, "Approve", "Approval");
    h.advance(7 * crate::harness::DAY);
    assert_eq!(h.status(&id), Execution::Failed);
    let before = h.snapshot();
    // Nobody decided it, so it is not "already completed": the token is simply no longer good.
    assert_code(
        h.approve("Approve", "Approval", &token),
        ErrorCode::InvalidApprovalTokenException,
    );
    assert_eq!(h.snapshot(), before);
}

#[test]
fn an_approval_with_a_notification_topic_records_its_notices_in_the_decision() {
    let mut decl = standard();
    decl.stages[1].actions[0].configuration = Some(
        [(
            "NotificationArn".to_string(),
            "arn:aws:sns:us-east-1:123456789012:release-approvals".to_string(),
        )]
        .into(),
    );
    let mut h = Harness::new(decl);
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    let run = h
        .run(&id, "Approve", "Approval")
        .expect("the approval runs")
        .clone();
    assert_eq!(
        h.last().notices,
        vec![(
            NoticeKind::ApprovalNeeded,
            run.action_execution_id.to_string()
        )]
    );
    let token = run.token.expect("a token");
    h.approve("Approve", "Approval", token.as_str())
        .expect("the approval is accepted");
    assert_eq!(
        h.last().notices,
        vec![(NoticeKind::Approved, run.action_execution_id.to_string())]
    );
}
