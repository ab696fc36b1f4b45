//! Inside and between stages: inbound transitions that hold executions, and run order.

use lockgate_engine::Clock;

use crate::*;

async fn disable(
    env: &TestEnv,
    pipeline: &str,
    stage: &str,
    kind: StageTransitionType,
) -> Result<(), ServiceError> {
    env.svc
        .disable_stage_transition(
            &env.caller,
            DisableStageTransitionInput {
                pipeline_name: pipeline.to_string(),
                stage_name: stage.to_string(),
                transition_type: kind,
                reason: "Change freeze".to_string(),
            },
        )
        .await
}

async fn enable(
    env: &TestEnv,
    pipeline: &str,
    stage: &str,
    kind: StageTransitionType,
) -> Result<(), ServiceError> {
    env.svc
        .enable_stage_transition(
            &env.caller,
            EnableStageTransitionInput {
                pipeline_name: pipeline.to_string(),
                stage_name: stage.to_string(),
                transition_type: kind,
            },
        )
        .await
}

#[tokio::test]
async fn a_disabled_inbound_transition_holds_executions_until_it_is_enabled() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    disable(&env, "p", "Approve", StageTransitionType::Inbound)
        .await
        .expect("the transition is disabled");
    let disabled_at = env.clock.now_millis();

    env.run_source("r1").await;
    let approve = env.stage("p", "Approve").await;
    let transition = approve
        .inbound_transition_state
        .expect("a transition state");
    assert_eq!(transition.enabled, Some(false));
    assert_eq!(transition.disabled_reason.as_deref(), Some("Change freeze"));
    assert_eq!(transition.last_changed_by.as_deref(), Some(BOB));
    assert_eq!(transition.last_changed_at, Some(Timestamp(disabled_at)));
    assert_eq!(
        approve.inbound_execution.map(|e| e.pipeline_execution_id),
        Some(id.clone())
    );
    assert_eq!(approve.latest_execution, None, "the stage was not entered");
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::InProgress
    );

    env.clock.advance(MINUTE);
    enable(&env, "p", "Approve", StageTransitionType::Inbound)
        .await
        .expect("the transition is enabled");
    let approve = env.stage("p", "Approve").await;
    let transition = approve
        .inbound_transition_state
        .expect("a transition state");
    assert_eq!(transition.enabled, Some(true));
    assert_eq!(transition.last_changed_by.as_deref(), Some(BOB));
    assert_eq!(
        transition.last_changed_at,
        Some(Timestamp(env.clock.now_millis()))
    );
    assert_eq!(approve.inbound_execution, None);
    assert_eq!(
        approve.latest_execution.map(|e| e.pipeline_execution_id),
        Some(id)
    );
    env.approve_pending("p").await;
}

#[tokio::test]
async fn disabling_a_stages_outbound_transition_holds_executions_before_the_next_stage() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    disable(&env, "p", "Source", StageTransitionType::Outbound)
        .await
        .expect("the transition is disabled");
    env.run_source("r1").await;
    let approve = env.stage("p", "Approve").await;
    assert_eq!(
        approve.inbound_transition_state.and_then(|t| t.enabled),
        Some(false)
    );
    assert_eq!(approve.latest_execution, None);

    enable(&env, "p", "Source", StageTransitionType::Outbound)
        .await
        .expect("the transition is enabled");
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::InProgress)
    );
}

#[tokio::test]
async fn executions_held_at_a_disabled_transition_are_superseded_by_newer_arrivals() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    disable(&env, "p", "Approve", StageTransitionType::Inbound)
        .await
        .expect("the transition is disabled");
    env.run_source("r1").await;
    let first = env.only_execution("p").await;
    let second = env.start("p").await;
    env.run_source("r2").await;

    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::Superseded
    );
    enable(&env, "p", "Approve", StageTransitionType::Inbound)
        .await
        .expect("the transition is enabled");
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(second)
    );
}

#[tokio::test]
async fn queued_executions_held_at_a_disabled_transition_are_released_one_at_a_time() {
    let env = TestEnv::new().await;
    env.create(standard_v2("q", ExecutionMode::Queued)).await;
    disable(&env, "q", "Approve", StageTransitionType::Inbound)
        .await
        .expect("the transition is disabled");
    env.run_source("r1").await;
    let first = env.only_execution("q").await;
    let second = env.start("q").await;
    env.run_source("r2").await;
    assert_eq!(
        env.stage("q", "Approve")
            .await
            .inbound_executions
            .map(|v| v.len()),
        Some(2)
    );

    enable(&env, "q", "Approve", StageTransitionType::Inbound)
        .await
        .expect("the transition is enabled");
    let approve = env.stage("q", "Approve").await;
    assert_eq!(
        approve.latest_execution.map(|e| e.pipeline_execution_id),
        Some(first)
    );
    assert_eq!(
        approve.inbound_execution.map(|e| e.pipeline_execution_id),
        Some(second)
    );
}

#[tokio::test]
async fn changing_the_transition_of_an_unknown_stage_or_pipeline_fails_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let before = env.snapshot("p").await;

    assert_code(
        disable(&env, "p", "Nope", StageTransitionType::Inbound).await,
        ErrorCode::StageNotFoundException,
    );
    assert_code(
        enable(&env, "p", "Nope", StageTransitionType::Inbound).await,
        ErrorCode::StageNotFoundException,
    );
    assert_code(
        disable(&env, "nope", "Approve", StageTransitionType::Inbound).await,
        ErrorCode::PipelineNotFoundException,
    );
    env.assert_unchanged("p", &before).await;
}

/// Source, then a `Build` stage with `A` and `B` at run order 1 and `C` at run order 2.
fn run_order_pipeline(name: &str) -> PipelineDeclaration {
    pipeline(
        name,
        vec![
            stage("Source", vec![source_action("Checkout", "src")]),
            stage(
                "Build",
                vec![
                    shell_action("A", &["src"], 1),
                    shell_action("B", &["src"], 1),
                    shell_action("C", &["src"], 2),
                ],
            ),
        ],
    )
}

#[tokio::test]
async fn actions_with_equal_run_order_run_together_and_the_next_run_order_waits_for_them() {
    let env = TestEnv::new().await;
    env.create(run_order_pipeline("r")).await;
    env.run_source("r1").await;
    let id = env.only_execution("r").await;

    let jobs = env.take_jobs(&shell(), 2).await;
    let mut names: Vec<String> = jobs.iter().map(job_action).collect();
    names.sort();
    assert_eq!(names, ["A", "B"]);
    assert!(env
        .action_state("r", "Build", "C")
        .await
        .latest_execution
        .is_none());

    env.succeed(&jobs[0]).await.expect("the first succeeds");
    assert!(env.poll(&shell()).await.is_empty(), "C waits for both");
    assert_eq!(
        env.stage_status("r", "Build").await,
        Some(StageExecutionStatus::InProgress)
    );

    env.succeed(&jobs[1]).await.expect("the second succeeds");
    let c = env.take_job(&shell()).await;
    assert_eq!(job_action(&c), "C");
    env.succeed(&c).await.expect("C succeeds");
    assert_eq!(
        env.stage_status("r", "Build").await,
        Some(StageExecutionStatus::Succeeded)
    );
    assert_eq!(
        env.status("r", &id).await,
        PipelineExecutionStatus::Succeeded
    );
}

#[tokio::test]
async fn a_failed_action_fails_its_stage_and_the_next_run_order_never_starts() {
    let env = TestEnv::new().await;
    env.create(run_order_pipeline("r")).await;
    env.run_source("r1").await;
    let id = env.only_execution("r").await;
    let jobs = env.take_jobs(&shell(), 2).await;
    let (failing, other) = if job_action(&jobs[0]) == "A" {
        (&jobs[0], &jobs[1])
    } else {
        (&jobs[1], &jobs[0])
    };

    env.fail(failing, "exit status 1")
        .await
        .expect("the failure is accepted");
    let a = env.action("r", "Build", "A").await;
    assert_eq!(a.status, Some(ActionExecutionStatus::Failed));
    assert_eq!(
        a.error_details.and_then(|e| e.message).as_deref(),
        Some("exit status 1")
    );
    assert_eq!(
        env.stage_status("r", "Build").await,
        Some(StageExecutionStatus::Failed)
    );
    let execution = env.execution("r", &id).await;
    assert_eq!(execution.status, Some(PipelineExecutionStatus::Failed));
    assert!(
        execution
            .status_summary
            .as_deref()
            .is_some_and(|s| s.contains("exit status 1")),
        "summary {:?}",
        execution.status_summary
    );
    // The sibling's late result is refused and C never runs.
    assert_code(
        env.succeed(other).await,
        ErrorCode::InvalidJobStateException,
    );
    assert!(env.poll(&shell()).await.is_empty());
    assert!(env
        .action_state("r", "Build", "C")
        .await
        .latest_execution
        .is_none());
}
