//! Restart durability: what a client could read before a restart it reads after it, and every
//! pending thing (approvals, jobs, stops, transitions) carries on where it was.

use crate::*;

async fn list_tags(env: &TestEnv, arn: &str) -> Result<Vec<Tag>, ServiceError> {
    env.svc
        .list_tags_for_resource(
            &env.caller,
            ListTagsForResourceInput {
                resource_arn: arn.to_string(),
                ..Default::default()
            },
        )
        .await
        .map(|o| o.tags.unwrap_or_default())
}

async fn custom_action_types(env: &TestEnv) -> Vec<ActionType> {
    env.svc
        .list_action_types(
            &env.caller,
            ListActionTypesInput {
                action_owner_filter: Some(ActionOwner::Custom),
                ..Default::default()
            },
        )
        .await
        .expect("action types are listable")
        .action_types
}

#[tokio::test]
async fn pipelines_executions_pending_approvals_tags_and_action_types_survive_a_restart() {
    let mut env = TestEnv::new().await;
    env.svc
        .create_pipeline(
            &env.caller,
            CreatePipelineInput {
                pipeline: standard("p"),
                tags: Some(vec![Tag {
                    key: "team".to_string(),
                    value: "payments".to_string(),
                }]),
            },
        )
        .await
        .expect("the pipeline is created");
    env.run_source("r1").await;
    let id = env.only_execution("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:p";
    let before = env.snapshot("p").await;
    let declaration = env
        .svc
        .get_pipeline(
            &env.caller,
            GetPipelineInput {
                name: "p".to_string(),
                version: None,
            },
        )
        .await
        .expect("the pipeline is readable");
    let types = custom_action_types(&env).await;
    assert_eq!(types.len(), 2);

    env.reload().await;

    env.assert_unchanged("p", &before).await;
    let after = env
        .svc
        .get_pipeline(
            &env.caller,
            GetPipelineInput {
                name: "p".to_string(),
                version: None,
            },
        )
        .await
        .expect("the pipeline is readable");
    assert_eq!(after, declaration);
    assert_eq!(custom_action_types(&env).await, types);
    assert_eq!(
        list_tags(&env, arn).await.expect("the tags are listable"),
        vec![Tag {
            key: "team".to_string(),
            value: "payments".to_string(),
        }]
    );

    // The pending approval's token still works, and the execution carries on.
    env.approve("p", "Approve", "Approval", &token).await;
    env.run_shell().await;
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Succeeded
    );

    // The finished execution reads the same after another restart, and no job is offered again.
    let before = env.snapshot("p").await;
    env.reload().await;
    env.assert_unchanged("p", &before).await;
    assert!(env.poll(&local_source()).await.is_empty());
    assert!(env.poll(&shell()).await.is_empty());
}

#[tokio::test]
async fn superseded_stopped_and_retried_executions_read_the_same_after_a_restart() {
    let mut env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");
    env.retry("p", "Approve", &first, StageRetryMode::FailedActions)
        .await
        .expect("the retry is accepted");
    let second = env.start("p").await;
    env.run_source("r2").await;
    let third = env.start("p").await;
    env.run_source("r3").await;
    let fourth = env.start("p").await;
    env.take_job(&local_source()).await;
    env.stop("p", &fourth, false)
        .await
        .expect("the stop is accepted");
    let retried_token = env.token("p", "Approve", "Approval").await;
    let before = env.snapshot("p").await;

    env.reload().await;
    env.assert_unchanged("p", &before).await;
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Superseded
    );
    assert_eq!(
        env.status("p", &fourth).await,
        PipelineExecutionStatus::Stopping
    );
    // The rejected approval's token stays dead; the retried one's works.
    let result = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);
    env.approve("p", "Approve", "Approval", &retried_token)
        .await;
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(third)
    );
}

#[tokio::test]
async fn an_answered_approval_stays_answered_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.approve("p", "Approve", "Approval", &token).await;

    env.reload().await;
    let result = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await;
    assert_code(result, ErrorCode::ApprovalAlreadyCompletedException);
    // The deploy job created by the approval is still offered.
    env.run_shell().await;
}

#[tokio::test]
async fn queued_and_unacknowledged_jobs_are_offered_again_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    let offered = env.poll(&local_source()).await;
    assert_eq!(offered.len(), 1);

    // Handed out but not acknowledged before the restart: it is offered again, same nonce.
    env.reload().await;
    let again = env.poll(&local_source()).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, offered[0].id);
    assert_eq!(again[0].nonce, offered[0].nonce);
    env.ack(&again[0]).await;
    env.succeed_with_revision(&again[0], "r1").await;
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::InProgress)
    );
}

#[tokio::test]
async fn an_acknowledged_job_can_report_its_result_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    let job = env.take_job(&local_source()).await;

    env.reload().await;
    assert!(
        env.poll(&local_source()).await.is_empty(),
        "an acknowledged job is not offered again"
    );
    env.succeed_with_revision(&job, "r1").await;
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::InProgress)
    );
}

#[tokio::test]
async fn a_job_times_out_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    env.take_job(&local_source()).await;

    env.reload().await;
    assert_eq!(env.advance(JOB_TIMEOUT_MILLIS).await, 1);
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn a_stopping_execution_stops_when_its_job_finishes_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    let job = env.take_job(&local_source()).await;
    env.stop("p", &id, false)
        .await
        .expect("the stop is accepted");

    env.reload().await;
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Stopping
    );
    assert_code(
        env.stop("p", &id, false).await,
        ErrorCode::DuplicatedStopRequestException,
    );
    env.succeed_with_revision(&job, "r1").await;
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
}

#[tokio::test]
async fn a_disabled_transition_still_holds_executions_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    env.svc
        .disable_stage_transition(
            &env.caller,
            DisableStageTransitionInput {
                pipeline_name: "p".to_string(),
                stage_name: "Approve".to_string(),
                transition_type: StageTransitionType::Inbound,
                reason: "Hold".to_string(),
            },
        )
        .await
        .expect("the transition is disabled");
    env.run_source("r1").await;

    env.reload().await;
    let approve = env.stage("p", "Approve").await;
    assert_eq!(
        approve
            .inbound_transition_state
            .and_then(|t| t.disabled_reason),
        Some("Hold".to_string())
    );
    assert_eq!(approve.latest_execution, None);
    env.svc
        .enable_stage_transition(
            &env.caller,
            EnableStageTransitionInput {
                pipeline_name: "p".to_string(),
                stage_name: "Approve".to_string(),
                transition_type: StageTransitionType::Inbound,
            },
        )
        .await
        .expect("the transition is enabled");
    env.approve_pending("p").await;
}

#[tokio::test]
async fn executions_started_after_a_restart_are_newer_than_those_before() {
    let mut env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let second = env.start("p").await;
    env.run_source("r2").await;

    env.reload().await;
    let third = env.start("p").await;
    env.run_source("r3").await;
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Superseded
    );
    let listed: Vec<String> = env
        .executions("p")
        .await
        .into_iter()
        .filter_map(|e| e.pipeline_execution_id)
        .collect();
    assert_eq!(listed, vec![third, second, first]);
}

#[tokio::test]
async fn old_pipeline_versions_survive_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    let mut updated = standard("p");
    updated.stages[2].actions[0].name = "Ship".to_string();
    env.svc
        .update_pipeline(&env.caller, UpdatePipelineInput { pipeline: updated })
        .await
        .expect("the pipeline is updated");

    env.reload().await;
    let v1 = env
        .svc
        .get_pipeline(
            &env.caller,
            GetPipelineInput {
                name: "p".to_string(),
                version: Some(1),
            },
        )
        .await
        .expect("version 1 is readable")
        .pipeline
        .expect("a pipeline");
    assert_eq!(v1.version, Some(1));
    assert_eq!(v1.stages[2].actions[0].name, "Deploy");
}

#[tokio::test]
async fn tags_on_a_custom_action_type_survive_a_restart() {
    let mut env = TestEnv::empty().await;
    env.svc
        .create_custom_action_type(
            &env.caller,
            CreateCustomActionTypeInput {
                category: ActionCategory::Deploy,
                provider: "Ship".to_string(),
                version: "1".to_string(),
                input_artifact_details: ArtifactDetails {
                    minimum_count: 0,
                    maximum_count: 1,
                },
                output_artifact_details: ArtifactDetails {
                    minimum_count: 0,
                    maximum_count: 0,
                },
                tags: Some(vec![Tag {
                    key: "owner".to_string(),
                    value: "platform".to_string(),
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("the action type is created");
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:actiontype:Custom/Deploy/Ship/1";

    env.reload().await;
    assert_eq!(
        list_tags(&env, arn).await.expect("the tags are listable"),
        vec![Tag {
            key: "owner".to_string(),
            value: "platform".to_string(),
        }]
    );
    assert_eq!(custom_action_types(&env).await.len(), 1);
}
