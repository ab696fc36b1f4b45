//! RetryStageExecution: which actions re-run, and when a stage may not be retried.

use crate::*;

/// Source, then a `Build` stage with `A` and `B` at run order 1 and `C` at run order 2.
fn build_pipeline(name: &str) -> PipelineDeclaration {
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

/// Runs the build pipeline's first execution until `A` has succeeded and `B` has failed.
/// Returns the execution id.
async fn fail_b(env: &TestEnv) -> String {
    env.create(build_pipeline("b")).await;
    let id = env.only_execution("b").await;
    env.run_source("r1").await;
    let jobs = env.take_jobs(&shell(), 2).await;
    for job in &jobs {
        match job_action(job).as_str() {
            "A" => env.succeed(job).await.expect("A succeeds"),
            _ => env
                .fail(job, "B broke")
                .await
                .expect("B's failure is accepted"),
        }
    }
    assert_eq!(env.status("b", &id).await, PipelineExecutionStatus::Failed);
    assert_eq!(
        env.stage_status("b", "Build").await,
        Some(StageExecutionStatus::Failed)
    );
    id
}

async fn action_execution_id(env: &TestEnv, action: &str) -> String {
    env.action("b", "Build", action)
        .await
        .action_execution_id
        .expect("an action execution id")
}

#[tokio::test]
async fn retrying_failed_actions_reruns_only_the_failed_ones_and_carries_on() {
    let env = TestEnv::new().await;
    let id = fail_b(&env).await;
    let a_before = action_execution_id(&env, "A").await;
    let b_before = action_execution_id(&env, "B").await;

    let out = env
        .retry("b", "Build", &id, StageRetryMode::FailedActions)
        .await
        .expect("the retry is accepted");
    assert_eq!(out.pipeline_execution_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        env.status("b", &id).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(
        env.stage_status("b", "Build").await,
        Some(StageExecutionStatus::InProgress)
    );
    assert_eq!(
        action_execution_id(&env, "A").await,
        a_before,
        "A is not re-run"
    );
    assert_ne!(
        action_execution_id(&env, "B").await,
        b_before,
        "B is re-run"
    );

    let job = env.take_job(&shell()).await;
    assert_eq!(job_action(&job), "B");
    env.succeed(&job).await.expect("B succeeds");
    let job = env.take_job(&shell()).await;
    assert_eq!(job_action(&job), "C");
    env.succeed(&job).await.expect("C succeeds");
    assert_eq!(
        env.status("b", &id).await,
        PipelineExecutionStatus::Succeeded
    );

    // Both of B's action executions are on record.
    let b_runs = env
        .action_executions("b", Some(&id))
        .await
        .into_iter()
        .filter(|a| a.action_name.as_deref() == Some("B"))
        .count();
    assert_eq!(b_runs, 2);
}

#[tokio::test]
async fn retrying_all_actions_reruns_every_action_of_the_stage() {
    let env = TestEnv::new().await;
    let id = fail_b(&env).await;
    let a_before = action_execution_id(&env, "A").await;

    env.retry("b", "Build", &id, StageRetryMode::AllActions)
        .await
        .expect("the retry is accepted");
    assert_ne!(
        action_execution_id(&env, "A").await,
        a_before,
        "A is re-run"
    );
    let jobs = env.take_jobs(&shell(), 2).await;
    let mut names: Vec<String> = jobs.iter().map(job_action).collect();
    names.sort();
    assert_eq!(names, ["A", "B"]);
}

#[tokio::test]
async fn a_succeeded_or_running_stage_is_not_retryable_and_nothing_changes() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let before = env.snapshot("p").await;

    for (stage, mode) in [
        ("Source", StageRetryMode::FailedActions),
        ("Source", StageRetryMode::AllActions),
        ("Approve", StageRetryMode::FailedActions),
        ("Deploy", StageRetryMode::AllActions),
    ] {
        assert_code(
            env.retry("p", stage, &id, mode).await,
            ErrorCode::StageNotRetryableException,
        );
    }
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn retrying_an_unknown_stage_pipeline_or_execution_fails_and_changes_nothing() {
    let env = TestEnv::new().await;
    let id = fail_b(&env).await;
    let before = env.snapshot("b").await;

    assert_code(
        env.retry("b", "Nope", &id, StageRetryMode::FailedActions)
            .await,
        ErrorCode::StageNotFoundException,
    );
    assert_code(
        env.retry("nope", "Build", &id, StageRetryMode::FailedActions)
            .await,
        ErrorCode::PipelineNotFoundException,
    );
    // The model gives RetryStageExecution no PipelineExecutionNotFoundException: an execution
    // that does not exist has no stage that could be retried.
    assert_code(
        env.retry(
            "b",
            "Build",
            "0e0e0e0e-1111-4222-8333-444444444444",
            StageRetryMode::FailedActions,
        )
        .await,
        ErrorCode::StageNotRetryableException,
    );
    env.assert_unchanged("b", &before).await;
}

#[tokio::test]
async fn only_the_latest_execution_to_run_a_stage_may_retry_it() {
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");
    let second = env.start("p").await;
    env.run_source("r2").await;
    env.approve_pending("p").await;
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::InProgress
    );

    let before = env.snapshot("p").await;
    assert_code(
        env.retry("p", "Approve", &first, StageRetryMode::FailedActions)
            .await,
        ErrorCode::NotLatestPipelineExecutionException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn retrying_a_rejected_approval_asks_again_with_a_new_token() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let old = env.token("p", "Approve", "Approval").await;
    env.answer("p", "Approve", "Approval", &old, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");

    env.retry("p", "Approve", &id, StageRetryMode::FailedActions)
        .await
        .expect("the retry is accepted");
    let new = env.token("p", "Approve", "Approval").await;
    assert_ne!(new, old);

    let before = env.snapshot("p").await;
    let result = env
        .answer("p", "Approve", "Approval", &old, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);
    env.assert_unchanged("p", &before).await;

    env.approve("p", "Approve", "Approval", &new).await;
    env.run_shell().await;
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Succeeded
    );
}

#[tokio::test]
async fn a_retried_approval_gets_a_fresh_deadline() {
    let env = TestEnv::new().await;
    env.create(standard_with_timeout("p", Some(5))).await;
    env.run_source("r1").await;
    let id = env.only_execution("p").await;
    assert_eq!(env.advance(5 * MINUTE).await, 1);
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);

    env.retry("p", "Approve", &id, StageRetryMode::FailedActions)
        .await
        .expect("the retry is accepted");
    assert_eq!(env.advance(5 * MINUTE - 1).await, 0);
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(env.advance(1).await, 1);
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn a_stopped_stage_can_be_retried() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    env.approve_pending("p").await;
    env.take_job(&shell()).await;
    env.stop("p", &id, true)
        .await
        .expect("the stop is accepted");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Stopped);

    env.retry("p", "Deploy", &id, StageRetryMode::FailedActions)
        .await
        .expect("the retry is accepted");
    env.run_shell().await;
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Succeeded
    );
}

#[tokio::test]
async fn after_an_update_a_newer_run_of_the_same_stage_at_another_position_blocks_a_retry() {
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    env.approve_pending("p").await;
    let deploy = env.take_job(&shell()).await;
    env.fail(&deploy, "deploy broke")
        .await
        .expect("the failure is accepted");
    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::Failed
    );

    // Version 2 drops the approval: Deploy moves from the third position to the second.
    let mut v2 = standard("p");
    v2.stages.remove(1);
    env.svc
        .update_pipeline(&env.caller, UpdatePipelineInput { pipeline: v2 })
        .await
        .expect("the pipeline is updated");
    env.start("p").await;
    env.run_source("r2").await;
    env.take_job(&shell()).await;

    let before = env.snapshot("p").await;
    assert_code(
        env.retry("p", "Deploy", &first, StageRetryMode::FailedActions)
            .await,
        ErrorCode::NotLatestPipelineExecutionException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn after_an_update_a_newer_run_of_another_stage_at_the_same_position_does_not_block_a_retry()
{
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");

    // Version 2 puts a Build stage where the approval stage was.
    let mut v2 = standard("p");
    v2.stages.insert(
        1,
        stage("Build", vec![shell_action("Compile", &["src"], 1)]),
    );
    env.svc
        .update_pipeline(&env.caller, UpdatePipelineInput { pipeline: v2 })
        .await
        .expect("the pipeline is updated");
    env.start("p").await;
    env.run_source("r2").await;
    env.take_job(&shell()).await;

    env.retry("p", "Approve", &first, StageRetryMode::FailedActions)
        .await
        .expect("the retry is accepted: no newer execution ran the approval stage");
    env.approve_pending("p").await;
}
