//! The approval paths through the AWS SDK for Rust: approve, reject, wrong tokens, auth.

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionExecutionStatus, ApprovalResult, ApprovalStatus, PipelineExecutionStatus,
};

use crate::harness::{approval_execution, client, TestApp, BOB_ARN, BOB_KEY};

fn approved(summary: &str) -> ApprovalResult {
    ApprovalResult::builder()
        .status(ApprovalStatus::Approved)
        .summary(summary)
        .build()
        .expect("result")
}

async fn app_waiting_for_approval(name: &str) -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline(name).await;
    app.complete_source_job("rev-1").await;
    let token = app
        .approval_token(name)
        .await
        .expect("a pending approval token");
    (app, token)
}

#[tokio::test]
async fn an_approval_with_the_sdk_succeeds_the_action_and_records_the_approver() {
    let (app, token) = app_waiting_for_approval("SdkApprove").await;
    let out = app
        .client
        .put_approval_result()
        .pipeline_name("SdkApprove")
        .stage_name("Approve")
        .action_name("Approval")
        .token(&token)
        .result(approved("Looks good"))
        .send()
        .await
        .expect("approve");
    assert!(out.approved_at().is_some());

    let state = app
        .client
        .get_pipeline_state()
        .name("SdkApprove")
        .send()
        .await
        .expect("state");
    let exec = approval_execution(&state).expect("approval execution");
    assert_eq!(exec.status(), Some(&ActionExecutionStatus::Succeeded));
    assert_eq!(exec.summary(), Some("Looks good"));
    assert_eq!(exec.last_updated_by(), Some(BOB_ARN));
    assert_eq!(exec.token(), None);

    let executions = app
        .client
        .list_pipeline_executions()
        .pipeline_name("SdkApprove")
        .send()
        .await
        .expect("executions");
    let latest = &executions.pipeline_execution_summaries()[0];
    assert_eq!(latest.status(), Some(&PipelineExecutionStatus::Succeeded));
}

#[tokio::test]
async fn a_rejection_fails_the_execution_and_a_second_answer_is_refused() {
    let (app, token) = app_waiting_for_approval("SdkReject").await;
    app.client
        .put_approval_result()
        .pipeline_name("SdkReject")
        .stage_name("Approve")
        .action_name("Approval")
        .token(&token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Rejected)
                .summary("Not this one")
                .build()
                .expect("result"),
        )
        .send()
        .await
        .expect("reject");
    let again = app
        .client
        .put_approval_result()
        .pipeline_name("SdkReject")
        .stage_name("Approve")
        .action_name("Approval")
        .token(&token)
        .result(approved("changed my mind"))
        .send()
        .await
        .expect_err("a second answer must be refused");
    assert_eq!(again.code(), Some("ApprovalAlreadyCompletedException"));

    let executions = app
        .client
        .list_pipeline_executions()
        .pipeline_name("SdkReject")
        .send()
        .await
        .expect("executions");
    assert_eq!(
        executions.pipeline_execution_summaries()[0].status(),
        Some(&PipelineExecutionStatus::Failed)
    );
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_leaves_the_approval_pending() {
    let (app, token) = app_waiting_for_approval("SdkWrongToken").await;
    let err = app
        .client
        .put_approval_result()
        .pipeline_name("SdkWrongToken")
        .stage_name("Approve")
        .action_name("Approval")
        .token("00000000-0000-4000-8000-000000000000")
        .result(approved("sneaky"))
        .send()
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Some("InvalidApprovalTokenException"));
    assert_eq!(app.approval_token("SdkWrongToken").await, Some(token));
}

#[tokio::test]
async fn requests_signed_with_a_wrong_secret_are_refused() {
    let app = TestApp::spawn().await;
    let stranger = client(&app.endpoint, BOB_KEY, "not-the-secret");
    let err = stranger
        .list_pipelines()
        .send()
        .await
        .expect_err("bad signature");
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    let unknown = client(&app.endpoint, "AKIAUNKNOWNUNKNOWN00", "x");
    let err = unknown
        .list_pipelines()
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(err.code(), Some("UnrecognizedClientException"));
}

#[tokio::test]
async fn a_pending_approval_survives_a_restart_and_can_be_approved_after_it() {
    let (app, token) = app_waiting_for_approval("SdkRestart").await;
    let app = app.restart().await;
    assert_eq!(app.approval_token("SdkRestart").await, Some(token.clone()));
    app.client
        .put_approval_result()
        .pipeline_name("SdkRestart")
        .stage_name("Approve")
        .action_name("Approval")
        .token(&token)
        .result(approved("after restart"))
        .send()
        .await
        .expect("approve after restart");
}
