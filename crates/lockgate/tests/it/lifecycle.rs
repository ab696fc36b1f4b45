//! Pipeline CRUD, validation errors, expiry, stop, supersede, retry and job failures through the
//! AWS SDK for Rust.

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionExecutionStatus, ApprovalResult, ApprovalStatus, FailureDetails, FailureType,
    PipelineExecutionStatus, StageExecutionStatus, StageRetryMode, Tag,
};

use crate::harness::{approval_execution, approval_pipeline, TestApp};

async fn latest_execution_id(app: &TestApp, name: &str) -> String {
    let out = app
        .client
        .list_pipeline_executions()
        .pipeline_name(name)
        .send()
        .await
        .expect("executions");
    out.pipeline_execution_summaries()[0]
        .pipeline_execution_id()
        .expect("id")
        .to_string()
}

async fn start_execution(app: &TestApp, name: &str) -> String {
    app.client
        .start_pipeline_execution()
        .name(name)
        .send()
        .await
        .expect("start")
        .pipeline_execution_id()
        .expect("id")
        .to_string()
}

async fn latest_status(app: &TestApp, name: &str) -> PipelineExecutionStatus {
    let out = app
        .client
        .list_pipeline_executions()
        .pipeline_name(name)
        .send()
        .await
        .expect("executions");
    out.pipeline_execution_summaries()[0]
        .status()
        .cloned()
        .expect("status")
}

#[tokio::test]
async fn pipelines_can_be_created_read_updated_listed_and_deleted() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline("Crud").await;

    let got = app
        .client
        .get_pipeline()
        .name("Crud")
        .send()
        .await
        .expect("get");
    let decl = got.pipeline().expect("pipeline").clone();
    assert_eq!(decl.version(), Some(1));
    assert_eq!(
        got.metadata().and_then(|m| m.pipeline_arn()),
        Some("arn:aws:codepipeline:us-east-1:123456789012:Crud")
    );

    let updated = app
        .client
        .update_pipeline()
        .pipeline(decl)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.pipeline().and_then(|p| p.version()), Some(2));
    let v1 = app
        .client
        .get_pipeline()
        .name("Crud")
        .version(1)
        .send()
        .await
        .expect("version 1");
    assert_eq!(v1.pipeline().and_then(|p| p.version()), Some(1));
    let missing = app
        .client
        .get_pipeline()
        .name("Crud")
        .version(9)
        .send()
        .await
        .expect_err("no version 9");
    assert_eq!(missing.code(), Some("PipelineVersionNotFoundException"));

    let list = app.client.list_pipelines().send().await.expect("list");
    assert_eq!(list.pipelines().len(), 1);
    assert_eq!(list.pipelines()[0].version(), Some(2));

    app.client
        .delete_pipeline()
        .name("Crud")
        .send()
        .await
        .expect("delete");
    let gone = app
        .client
        .get_pipeline()
        .name("Crud")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Some("PipelineNotFoundException"));
}

#[tokio::test]
async fn invalid_pipelines_are_refused_with_codepipelines_error_codes_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;

    // A name outside the model's pattern: ValidationException from the model's constraints.
    let err = app
        .client
        .create_pipeline()
        .pipeline(approval_pipeline("bad name!"))
        .send()
        .await
        .expect_err("bad name");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err
        .message()
        .unwrap_or("")
        .contains("regular expression pattern"));

    // One stage only: InvalidStructureException.
    let mut one_stage = approval_pipeline("OneStage");
    one_stage.stages.truncate(1);
    let err = app
        .client
        .create_pipeline()
        .pipeline(one_stage)
        .send()
        .await
        .expect_err("one stage");
    assert_eq!(err.code(), Some("InvalidStructureException"));

    // A name already in use: PipelineNameInUseException.
    app.create_approval_pipeline("Taken").await;
    let err = app
        .client
        .create_pipeline()
        .pipeline(approval_pipeline("Taken"))
        .send()
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Some("PipelineNameInUseException"));

    let list = app.client.list_pipelines().send().await.expect("list");
    let names: Vec<_> = list.pipelines().iter().filter_map(|p| p.name()).collect();
    assert_eq!(names, ["Taken"]);
}

#[tokio::test]
async fn an_unanswered_approval_expires_after_seven_days_and_fails_the_execution() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline("Expiry").await;
    app.complete_source_job("rev-e").await;
    let token = app.approval_token("Expiry").await.expect("token");

    app.advance_minutes(7 * 24 * 60 - 1).await;
    assert_eq!(app.approval_token("Expiry").await, Some(token.clone()));

    app.advance_minutes(2).await;
    let state = app
        .client
        .get_pipeline_state()
        .name("Expiry")
        .send()
        .await
        .expect("state");
    let exec = approval_execution(&state).expect("approval");
    assert_eq!(exec.status(), Some(&ActionExecutionStatus::Failed));
    assert_eq!(
        latest_status(&app, "Expiry").await,
        PipelineExecutionStatus::Failed
    );

    let late = app
        .client
        .put_approval_result()
        .pipeline_name("Expiry")
        .stage_name("Approve")
        .action_name("Approval")
        .token(token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary("too late")
                .build()
                .expect("result"),
        )
        .send()
        .await
        .expect_err("expired token");
    assert_eq!(late.code(), Some("InvalidApprovalTokenException"));
}

#[tokio::test]
async fn stopping_an_execution_abandons_its_pending_approval() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline("Stop").await;
    app.complete_source_job("rev-s").await;
    let id = latest_execution_id(&app, "Stop").await;
    app.client
        .stop_pipeline_execution()
        .pipeline_name("Stop")
        .pipeline_execution_id(&id)
        .reason("not today")
        .send()
        .await
        .expect("stop");
    assert_eq!(
        latest_status(&app, "Stop").await,
        PipelineExecutionStatus::Stopped
    );
    assert_eq!(app.approval_token("Stop").await, None);

    let again = app
        .client
        .stop_pipeline_execution()
        .pipeline_name("Stop")
        .pipeline_execution_id(&id)
        .send()
        .await
        .expect_err("already stopped");
    assert_eq!(again.code(), Some("PipelineExecutionNotStoppableException"));
}

#[tokio::test]
async fn a_newer_execution_supersedes_one_waiting_at_the_same_stage() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline("Supersede").await;
    app.complete_source_job("rev-1").await; // execution 1 now waits for approval
    let second = start_execution(&app, "Supersede").await;
    app.complete_source_job("rev-2").await; // execution 2 waits at the Approve gate
    let third = start_execution(&app, "Supersede").await;
    app.complete_source_job("rev-3").await; // execution 3 arrives at the gate: 2 is superseded

    let second_state = app
        .client
        .get_pipeline_execution()
        .pipeline_name("Supersede")
        .pipeline_execution_id(&second)
        .send()
        .await
        .expect("get 2");
    assert_eq!(
        second_state.pipeline_execution().and_then(|e| e.status()),
        Some(&PipelineExecutionStatus::Superseded)
    );
    let third_state = app
        .client
        .get_pipeline_execution()
        .pipeline_name("Supersede")
        .pipeline_execution_id(&third)
        .send()
        .await
        .expect("get 3");
    assert_eq!(
        third_state.pipeline_execution().and_then(|e| e.status()),
        Some(&PipelineExecutionStatus::InProgress)
    );
}

#[tokio::test]
async fn a_failed_source_job_fails_the_stage_and_a_retry_runs_it_again() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline("Retry").await;
    let (job, nonce) = app.poll_one_source_job().await;
    app.client
        .acknowledge_job()
        .job_id(&job)
        .nonce(nonce)
        .send()
        .await
        .expect("ack");
    app.client
        .put_job_failure_result()
        .job_id(&job)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("checkout failed")
                .build()
                .expect("details"),
        )
        .send()
        .await
        .expect("fail job");
    assert_eq!(
        latest_status(&app, "Retry").await,
        PipelineExecutionStatus::Failed
    );
    let state = app
        .client
        .get_pipeline_state()
        .name("Retry")
        .send()
        .await
        .expect("state");
    let source = &state.stage_states()[0];
    assert_eq!(
        source.latest_execution().map(|e| e.status()),
        Some(&StageExecutionStatus::Failed)
    );
    let id = source
        .latest_execution()
        .map(|e| e.pipeline_execution_id().to_string())
        .expect("id");

    let twice = app
        .client
        .put_job_success_result()
        .job_id(&job)
        .send()
        .await
        .expect_err("job already failed");
    assert_eq!(twice.code(), Some("InvalidJobStateException"));

    app.client
        .retry_stage_execution()
        .pipeline_name("Retry")
        .stage_name("Source")
        .pipeline_execution_id(&id)
        .retry_mode(StageRetryMode::FailedActions)
        .send()
        .await
        .expect("retry");
    assert_eq!(
        latest_status(&app, "Retry").await,
        PipelineExecutionStatus::InProgress
    );
    app.complete_source_job("rev-retry").await;
    assert!(app.approval_token("Retry").await.is_some());
}

#[tokio::test]
async fn tags_on_a_pipeline_can_be_added_listed_and_removed() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.create_approval_pipeline("Tagged").await;
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:Tagged";
    app.client
        .tag_resource()
        .resource_arn(arn)
        .tags(
            Tag::builder()
                .key("team")
                .value("release")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag");
    let tags = app
        .client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags().len(), 1);
    app.client
        .untag_resource()
        .resource_arn(arn)
        .tag_keys("team")
        .send()
        .await
        .expect("untag");
    let tags = app
        .client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("list tags");
    assert!(tags.tags().is_empty());
    let missing = app
        .client
        .list_tags_for_resource()
        .resource_arn("arn:aws:codepipeline:us-east-1:123456789012:Nope")
        .send()
        .await
        .expect_err("unknown resource");
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
}
