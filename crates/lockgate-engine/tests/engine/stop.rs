//! StopPipelineExecution: stop and wait, stop and abandon, and the errors it answers.

use crate::*;

#[tokio::test]
async fn stop_and_wait_lets_the_in_progress_job_finish_and_then_stops_the_execution() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    let job = env.take_job(&local_source()).await;

    let out = env
        .stop("p", &id, false)
        .await
        .expect("the stop is accepted");
    assert_eq!(out.pipeline_execution_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Stopping
    );
    assert_eq!(
        env.stage_status("p", "Source").await,
        Some(StageExecutionStatus::Stopping)
    );
    assert_eq!(
        env.action("p", "Source", "Checkout").await.status,
        Some(ActionExecutionStatus::InProgress)
    );

    env.succeed_with_revision(&job, "r1").await;
    assert_eq!(
        env.action("p", "Source", "Checkout").await.status,
        Some(ActionExecutionStatus::Succeeded)
    );
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
    assert_eq!(
        env.stage_status("p", "Source").await,
        Some(StageExecutionStatus::Stopped)
    );
    assert_eq!(
        env.stage_status("p", "Approve").await,
        None,
        "no later stage runs"
    );
    let summary = &env.executions("p").await[0];
    assert_eq!(
        summary
            .stop_trigger
            .clone()
            .and_then(|t| t.reason)
            .as_deref(),
        Some("Stopped by a test")
    );
}

#[tokio::test]
async fn stop_and_abandon_stops_at_once_and_abandons_in_progress_actions() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    let job = env.take_job(&local_source()).await;

    env.stop("p", &id, true)
        .await
        .expect("the stop is accepted");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
    assert_eq!(
        env.action("p", "Source", "Checkout").await.status,
        Some(ActionExecutionStatus::Abandoned)
    );
    assert_eq!(
        env.stage_status("p", "Source").await,
        Some(StageExecutionStatus::Stopped)
    );

    // The worker's late answer is refused and changes nothing.
    let before = env.snapshot("p").await;
    assert_code(env.succeed(&job).await, ErrorCode::InvalidJobStateException);
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn stop_and_abandon_is_allowed_on_an_execution_that_is_stopping() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    env.take_job(&local_source()).await;
    env.stop("p", &id, false)
        .await
        .expect("the stop is accepted");

    env.stop("p", &id, true)
        .await
        .expect("the abandon is accepted");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
    assert_eq!(
        env.action("p", "Source", "Checkout").await.status,
        Some(ActionExecutionStatus::Abandoned)
    );
}

#[tokio::test]
async fn a_second_stop_and_wait_is_a_duplicated_stop_request_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    env.take_job(&local_source()).await;
    env.stop("p", &id, false)
        .await
        .expect("the stop is accepted");
    let before = env.snapshot("p").await;

    assert_code(
        env.stop("p", &id, false).await,
        ErrorCode::DuplicatedStopRequestException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn finished_executions_are_not_stoppable_and_nothing_changes() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let succeeded = env.only_execution("p").await;
    env.run_source("r1").await;
    env.approve_pending("p").await;
    env.run_shell().await;
    assert_eq!(
        env.status("p", &succeeded).await,
        PipelineExecutionStatus::Succeeded
    );

    let rejected = env.start("p").await;
    env.run_source("r2").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");

    let stopped = env.start("p").await;
    env.stop("p", &stopped, true)
        .await
        .expect("the stop is accepted");

    // A superseded one: held behind a running source by a newer start.
    let running = env.start("p").await;
    let superseded = env.start("p").await;
    env.start("p").await;
    assert_eq!(
        env.status("p", &superseded).await,
        PipelineExecutionStatus::Superseded
    );
    assert_eq!(
        env.status("p", &running).await,
        PipelineExecutionStatus::InProgress
    );

    let before = env.snapshot("p").await;
    for id in [&succeeded, &rejected, &stopped, &superseded] {
        for abandon in [false, true] {
            assert_code(
                env.stop("p", id, abandon).await,
                ErrorCode::PipelineExecutionNotStoppableException,
            );
        }
    }
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn stopping_an_unknown_execution_or_pipeline_fails_and_changes_nothing() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let before = env.snapshot("p").await;

    assert_code(
        env.stop("p", "0e0e0e0e-1111-4222-8333-444444444444", false)
            .await,
        ErrorCode::PipelineExecutionNotStoppableException,
    );
    assert_code(
        env.stop("nope", &id, false).await,
        ErrorCode::PipelineNotFoundException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn stopping_an_execution_at_a_pending_approval_invalidates_its_token() {
    for abandon in [false, true] {
        let env = TestEnv::new().await;
        let id = env.standard_waiting_for_approval("p").await;
        let token = env.token("p", "Approve", "Approval").await;

        env.stop("p", &id, abandon)
            .await
            .expect("the stop is accepted");
        assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
        let approval = env.action("p", "Approve", "Approval").await;
        assert_eq!(approval.status, Some(ActionExecutionStatus::Abandoned));
        assert_eq!(approval.token, None);

        let before = env.snapshot("p").await;
        let result = env
            .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
            .await;
        assert_code(result, ErrorCode::InvalidApprovalTokenException);
        env.assert_unchanged("p", &before).await;
        assert_eq!(
            env.advance(8 * DAY).await,
            0,
            "a stopped approval does not expire"
        );
    }
}

#[tokio::test]
async fn stopping_the_execution_in_a_stage_lets_the_waiting_one_in() {
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let second = env.start("p").await;
    env.run_source("r2").await;
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .inbound_execution
            .map(|e| e.pipeline_execution_id),
        Some(second.clone())
    );

    env.stop("p", &first, true)
        .await
        .expect("the stop is accepted");
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(second.clone())
    );
    env.approve_pending("p").await;
    assert_eq!(job_execution(&env.take_job(&shell()).await), second);
}

#[tokio::test]
async fn stopping_an_execution_held_at_a_disabled_transition_stops_it_at_once() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
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

    env.stop("p", &id, false)
        .await
        .expect("the stop is accepted");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
    assert_eq!(env.stage("p", "Approve").await.inbound_execution, None);
}

#[tokio::test]
async fn stop_and_wait_abandons_a_pending_approval_but_waits_for_a_job_beside_it() {
    let env = TestEnv::new().await;
    env.create(pipeline(
        "p",
        vec![
            stage("Source", vec![source_action("Checkout", "src")]),
            stage(
                "Gate",
                vec![
                    approval_action("Approval", None),
                    shell_action("Scan", &["src"], 1),
                ],
            ),
        ],
    ))
    .await;
    let id = env.only_execution("p").await;
    env.run_source("r1").await;
    let scan = env.take_job(&shell()).await;
    let token = env.token("p", "Gate", "Approval").await;

    env.stop("p", &id, false)
        .await
        .expect("the stop is accepted");
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Stopping
    );
    assert_eq!(
        env.action("p", "Gate", "Approval").await.status,
        Some(ActionExecutionStatus::Abandoned)
    );
    assert_code(
        env.answer("p", "Gate", "Approval", &token, ApprovalStatus::Approved)
            .await,
        ErrorCode::InvalidApprovalTokenException,
    );

    env.succeed(&scan).await.expect("the scan finishes");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);
    assert_eq!(
        env.stage_status("p", "Gate").await,
        Some(StageExecutionStatus::Stopped)
    );
}
