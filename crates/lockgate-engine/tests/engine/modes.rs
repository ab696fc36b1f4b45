//! Execution modes: SUPERSEDED (the default), QUEUED and PARALLEL, as executions meet at the
//! approval stage's inbound transition.

use crate::*;

/// Starts an execution of the standard pipeline and runs its source, so that it arrives at the
/// approval stage's inbound transition. Returns its id.
async fn arrive_at_approval(env: &TestEnv, pipeline: &str, revision: &str) -> String {
    let id = env.start(pipeline).await;
    let job = env.run_source(revision).await;
    assert_eq!(job_execution(&job), id);
    id
}

#[tokio::test]
async fn a_waiting_execution_is_superseded_by_a_newer_one_arriving_at_the_same_stage() {
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let first_token = env.token("p", "Approve", "Approval").await;

    // The second execution waits: the approval stage is occupied by the first.
    let second = arrive_at_approval(&env, "p", "r2").await;
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::InProgress
    );
    let approve = env.stage("p", "Approve").await;
    assert_eq!(
        approve.inbound_execution.map(|e| e.pipeline_execution_id),
        Some(second.clone())
    );

    // The third arrives at the same gate and supersedes the second.
    let third = arrive_at_approval(&env, "p", "r3").await;
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Superseded
    );
    assert_eq!(
        env.status("p", &third).await,
        PipelineExecutionStatus::InProgress
    );
    let approve = env.stage("p", "Approve").await;
    assert_eq!(
        approve.inbound_execution.map(|e| e.pipeline_execution_id),
        Some(third.clone())
    );

    // The first, inside the stage, is not superseded: its approval still stands.
    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(env.token("p", "Approve", "Approval").await, first_token);
    env.approve("p", "Approve", "Approval", &first_token).await;

    // The stage is free again: the third enters it with a token of its own.
    let third_token = env.token("p", "Approve", "Approval").await;
    assert_ne!(third_token, first_token);
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(third.clone())
    );
    let deploy = env.take_job(&shell()).await;
    assert_eq!(job_execution(&deploy), first);
    env.succeed(&deploy).await.expect("the deploy succeeds");
    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::Succeeded
    );

    env.approve("p", "Approve", "Approval", &third_token).await;
    let deploy = env.take_job(&shell()).await;
    assert_eq!(job_execution(&deploy), third);
    let inputs = deploy
        .data
        .and_then(|d| d.input_artifacts)
        .unwrap_or_default();
    assert_eq!(inputs[0].revision.as_deref(), Some("r3"));
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Superseded
    );
}

#[tokio::test]
async fn an_execution_waiting_for_the_source_stage_is_superseded_by_a_newer_start() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let first = env.only_execution("p").await;
    let second = env.start("p").await;
    let third = env.start("p").await;

    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Superseded
    );
    assert_eq!(
        env.status("p", &third).await,
        PipelineExecutionStatus::InProgress
    );

    // Once the first leaves the source stage, the third runs it.
    let job = env.run_source("r1").await;
    assert_eq!(job_execution(&job), first);
    let job = env.run_source("r3").await;
    assert_eq!(job_execution(&job), third);
}

#[tokio::test]
async fn queued_executions_wait_in_arrival_order_and_none_is_superseded() {
    let env = TestEnv::new().await;
    env.create(standard_v2("q", ExecutionMode::Queued)).await;
    env.run_source("r1").await;
    let first = env.only_execution("q").await;
    let second = arrive_at_approval(&env, "q", "r2").await;
    let third = arrive_at_approval(&env, "q", "r3").await;

    for id in [&first, &second, &third] {
        assert_eq!(
            env.status("q", id).await,
            PipelineExecutionStatus::InProgress
        );
    }
    let waiting: Vec<String> = env
        .stage("q", "Approve")
        .await
        .inbound_executions
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.pipeline_execution_id)
        .collect();
    assert_eq!(waiting, vec![second.clone(), third.clone()]);

    // Each approval lets the next execution in, oldest first.
    for (inside, next) in [
        (&first, Some(&second)),
        (&second, Some(&third)),
        (&third, None),
    ] {
        assert_eq!(
            env.stage("q", "Approve")
                .await
                .latest_execution
                .map(|e| e.pipeline_execution_id),
            Some(inside.clone())
        );
        env.approve_pending("q").await;
        let deploy = env.take_job(&shell()).await;
        assert_eq!(&job_execution(&deploy), inside);
        env.succeed(&deploy).await.expect("the deploy succeeds");
        assert_eq!(
            env.status("q", inside).await,
            PipelineExecutionStatus::Succeeded
        );
        if let Some(next) = next {
            assert_eq!(
                env.status("q", next).await,
                PipelineExecutionStatus::InProgress
            );
        }
    }
    let summaries = env.executions("q").await;
    assert!(summaries
        .iter()
        .all(|s| s.status == Some(PipelineExecutionStatus::Succeeded)
            && s.execution_mode == Some(ExecutionMode::Queued)));
}

#[tokio::test]
async fn a_queued_execution_waits_for_the_first_stage_instead_of_overtaking() {
    let env = TestEnv::new().await;
    env.create(standard_v2("q", ExecutionMode::Queued)).await;
    let first = env.only_execution("q").await;
    let second = env.start("q").await;
    let third = env.start("q").await;

    for (id, revision) in [(&first, "r1"), (&second, "r2"), (&third, "r3")] {
        let job = env.run_source(revision).await;
        assert_eq!(&job_execution(&job), id);
    }
}

/// The token of the approval of `execution`, read as PARALLEL approvers must: the approval's
/// external execution id from ListActionExecutions.
async fn parallel_token(env: &TestEnv, pipeline: &str, execution: &str) -> String {
    env.action_executions(pipeline, Some(execution))
        .await
        .into_iter()
        .find(|a| a.action_name.as_deref() == Some("Approval"))
        .and_then(|a| a.output?.execution_result?.external_execution_id)
        .expect("the approval's external execution id")
}

#[tokio::test]
async fn parallel_executions_run_independently_and_are_approved_by_external_execution_id() {
    let env = TestEnv::new().await;
    env.create(standard_v2("par", ExecutionMode::Parallel))
        .await;
    let first = env.only_execution("par").await;
    let second = env.start("par").await;

    // Both sources run at once.
    let sources = env.take_jobs(&local_source(), 2).await;
    for job in &sources {
        env.succeed_with_revision(job, &job_execution(job)).await;
    }

    // Both wait at the approval at once, and GetPipelineState shows no token.
    let approval = env.action("par", "Approve", "Approval").await;
    assert_eq!(approval.status, Some(ActionExecutionStatus::InProgress));
    assert_eq!(approval.token, None);
    let first_token = parallel_token(&env, "par", &first).await;
    let second_token = parallel_token(&env, "par", &second).await;
    assert_ne!(first_token, second_token);

    // Approving the second leaves the first waiting.
    env.approve("par", "Approve", "Approval", &second_token)
        .await;
    let deploy = env.take_job(&shell()).await;
    assert_eq!(job_execution(&deploy), second);
    env.succeed(&deploy).await.expect("the deploy succeeds");
    assert_eq!(
        env.status("par", &second).await,
        PipelineExecutionStatus::Succeeded
    );
    assert_eq!(
        env.status("par", &first).await,
        PipelineExecutionStatus::InProgress
    );

    env.approve("par", "Approve", "Approval", &first_token)
        .await;
    let deploy = env.take_job(&shell()).await;
    assert_eq!(job_execution(&deploy), first);
    env.succeed(&deploy).await.expect("the deploy succeeds");
    assert_eq!(
        env.status("par", &first).await,
        PipelineExecutionStatus::Succeeded
    );

    // A used token stays used.
    let result = env
        .answer(
            "par",
            "Approve",
            "Approval",
            &first_token,
            ApprovalStatus::Rejected,
        )
        .await;
    assert_code(result, ErrorCode::ApprovalAlreadyCompletedException);
}

#[tokio::test]
async fn a_parallel_rejection_fails_only_its_own_execution() {
    let env = TestEnv::new().await;
    env.create(standard_v2("par", ExecutionMode::Parallel))
        .await;
    let first = env.only_execution("par").await;
    let second = env.start("par").await;
    for job in env.take_jobs(&local_source(), 2).await {
        env.succeed_with_revision(&job, "r").await;
    }

    let token = parallel_token(&env, "par", &first).await;
    env.answer(
        "par",
        "Approve",
        "Approval",
        &token,
        ApprovalStatus::Rejected,
    )
    .await
    .expect("the rejection is accepted");
    assert_eq!(
        env.status("par", &first).await,
        PipelineExecutionStatus::Failed
    );
    assert_eq!(
        env.status("par", &second).await,
        PipelineExecutionStatus::InProgress
    );
    let token = parallel_token(&env, "par", &second).await;
    env.approve("par", "Approve", "Approval", &token).await;
    assert_eq!(job_execution(&env.take_job(&shell()).await), second);
}

#[tokio::test]
async fn a_rejection_frees_the_stage_for_the_execution_waiting_behind() {
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let second = arrive_at_approval(&env, "p", "r2").await;
    let token = env.token("p", "Approve", "Approval").await;

    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");
    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::Failed
    );
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(second)
    );
    assert_ne!(env.token("p", "Approve", "Approval").await, token);
}

#[tokio::test]
async fn an_expiry_frees_the_stage_for_the_execution_waiting_behind() {
    let env = TestEnv::new().await;
    env.create(standard_with_timeout("p", Some(60))).await;
    env.run_source("r1").await;
    let first = env.only_execution("p").await;
    env.clock.advance(30 * MINUTE);
    let second = arrive_at_approval(&env, "p", "r2").await;

    assert_eq!(env.advance(30 * MINUTE).await, 1);
    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::Failed
    );
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(second.clone())
    );
    // The second's approval has a full hour of its own.
    assert_eq!(env.advance(60 * MINUTE - 1).await, 0);
    assert_eq!(env.advance(1).await, 1);
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Failed
    );
}

#[tokio::test]
async fn parallel_approvals_due_at_the_same_time_all_expire() {
    let env = TestEnv::new().await;
    env.create(PipelineDeclaration {
        pipeline_type: Some(PipelineType::V2),
        execution_mode: Some(ExecutionMode::Parallel),
        ..standard_with_timeout("par", Some(5))
    })
    .await;
    let first = env.only_execution("par").await;
    let second = env.start("par").await;
    for job in env.take_jobs(&local_source(), 2).await {
        env.succeed_with_revision(&job, "r").await;
    }

    assert_eq!(env.advance(5 * MINUTE).await, 2);
    assert_eq!(
        env.status("par", &first).await,
        PipelineExecutionStatus::Failed
    );
    assert_eq!(
        env.status("par", &second).await,
        PipelineExecutionStatus::Failed
    );
}

#[tokio::test]
async fn a_queued_pipeline_refuses_a_fifty_first_execution_in_progress() {
    let env = TestEnv::new().await;
    env.create(standard_v2("q", ExecutionMode::Queued)).await;
    for _ in 1..50 {
        env.start("q").await;
    }
    let before = env.snapshot("q").await;
    let result = env
        .svc
        .start_pipeline_execution(
            &env.caller,
            StartPipelineExecutionInput {
                name: "q".to_string(),
                ..Default::default()
            },
        )
        .await;
    assert_code(
        result,
        ErrorCode::ConcurrentPipelineExecutionsLimitExceededException,
    );
    env.assert_unchanged("q", &before).await;
}
