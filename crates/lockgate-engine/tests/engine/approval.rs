//! The manual approval action: how an execution reaches it, what approving and rejecting do,
//! the errors PutApprovalResult answers, and expiry.

use lockgate_engine::Clock;

use crate::*;

fn is_lowercase_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// A well-formed token that no approval was ever given.
const STRANGER_TOKEN: &str = "0e0e0e0e-1111-4222-8333-444444444444";

#[tokio::test]
async fn create_pipeline_starts_an_execution_triggered_by_the_caller() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;

    let executions = env.executions("p").await;
    assert_eq!(executions.len(), 1);
    let summary = &executions[0];
    assert_eq!(summary.status, Some(PipelineExecutionStatus::InProgress));
    let trigger = summary.trigger.clone().expect("a trigger");
    assert_eq!(trigger.trigger_type, Some(TriggerType::CreatePipeline));
    assert_eq!(trigger.trigger_detail.as_deref(), Some(BOB));
    let id = summary.pipeline_execution_id.clone().expect("an id");
    assert!(is_lowercase_uuid(&id), "execution id {id}");
    assert_eq!(
        env.stage_status("p", "Source").await,
        Some(StageExecutionStatus::InProgress)
    );
}

#[tokio::test]
async fn the_source_job_carries_a_nonce_its_pipeline_context_and_where_to_put_its_output() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;

    let jobs = env.poll(&local_source()).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert!(job.nonce.as_deref().is_some_and(|n| !n.is_empty()));
    assert_eq!(job.account_id.as_deref(), Some(ACCOUNT));
    let data = job.data.clone().expect("job data");
    assert_eq!(data.action_type_id, Some(local_source()));
    let ctx = data.pipeline_context.expect("a pipeline context");
    assert_eq!(ctx.pipeline_name.as_deref(), Some("p"));
    assert_eq!(ctx.pipeline_execution_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        ctx.pipeline_arn.as_deref(),
        Some("arn:aws:codepipeline:us-east-1:123456789012:p")
    );
    assert_eq!(ctx.stage.and_then(|s| s.name).as_deref(), Some("Source"));
    let action = ctx.action.expect("an action context");
    assert_eq!(action.name.as_deref(), Some("Checkout"));
    assert_eq!(
        action.action_execution_id,
        env.action("p", "Source", "Checkout")
            .await
            .action_execution_id
    );
    let outputs = data.output_artifacts.expect("output artifacts");
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].name.as_deref(), Some("src"));
    let location = outputs[0]
        .location
        .clone()
        .and_then(|l| l.s3_location)
        .expect("an S3 location");
    assert_eq!(location.bucket_name, "lockgate-artifacts");
    assert!(!location.object_key.is_empty());
    assert_eq!(data.input_artifacts.unwrap_or_default(), Vec::new());

    // GetJobDetails tells the same story, and the job is not offered twice.
    let details = env
        .svc
        .get_job_details(
            &env.caller,
            GetJobDetailsInput {
                job_id: job_id(job),
            },
        )
        .await
        .expect("the job's details are readable")
        .job_details
        .expect("job details");
    assert_eq!(details.data, job.data);
    assert!(env.poll(&local_source()).await.is_empty());
}

#[tokio::test]
async fn after_the_source_the_approval_waits_with_a_lowercase_uuid_token_and_the_review_link() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;

    assert_eq!(
        env.stage_status("p", "Source").await,
        Some(StageExecutionStatus::Succeeded)
    );
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::InProgress)
    );
    assert_eq!(env.stage_status("p", "Deploy").await, None);
    let action = env.action_state("p", "Approve", "Approval").await;
    assert_eq!(action.entity_url.as_deref(), Some(REVIEW_URL));
    let latest = action.latest_execution.expect("a latest execution");
    assert_eq!(latest.status, Some(ActionExecutionStatus::InProgress));
    assert_eq!(
        latest.last_status_change,
        Some(Timestamp(env.clock.now_millis()))
    );
    assert!(latest.action_execution_id.is_some());
    let token = latest.token.expect("a token");
    assert!(is_lowercase_uuid(&token), "token {token}");

    // The token sits where clients look for it on the wire.
    let wire = serde_json::to_value(env.state("p").await).expect("the state serialises");
    assert_eq!(
        wire["stageStates"][1]["actionStates"][0]["latestExecution"]["token"],
        serde_json::json!(token)
    );
    assert_eq!(
        wire["stageStates"][1]["actionStates"][0]["entityUrl"],
        serde_json::json!(REVIEW_URL)
    );
}

#[tokio::test]
async fn approving_succeeds_the_action_and_runs_the_next_stage_to_the_end() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;

    env.clock.advance(5 * MINUTE);
    let out = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
        .await
        .expect("the approval is accepted");
    assert_eq!(out.approved_at, Some(Timestamp(env.clock.now_millis())));

    let latest = env.action("p", "Approve", "Approval").await;
    assert_eq!(latest.status, Some(ActionExecutionStatus::Succeeded));
    assert_eq!(latest.summary.as_deref(), Some("Approved by Bob"));
    assert_eq!(latest.last_updated_by.as_deref(), Some(BOB));
    assert_eq!(latest.token, None, "an answered approval shows no token");
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::Succeeded)
    );
    assert_eq!(
        env.stage_status("p", "Deploy").await,
        Some(StageExecutionStatus::InProgress)
    );

    // The deploy job gets the source's artifact at the revision the source reported.
    let job = env.take_job(&shell()).await;
    assert_eq!(job_execution(&job), id);
    let inputs = job
        .data
        .clone()
        .and_then(|d| d.input_artifacts)
        .unwrap_or_default();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].name.as_deref(), Some("src"));
    assert_eq!(inputs[0].revision.as_deref(), Some("r1"));
    env.succeed(&job).await.expect("the deploy succeeds");

    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::Succeeded
    );
    assert_eq!(
        env.stage_status("p", "Deploy").await,
        Some(StageExecutionStatus::Succeeded)
    );
    // ListActionExecutions records who approved.
    let approval = env
        .action_executions("p", Some(&id))
        .await
        .into_iter()
        .find(|a| a.action_name.as_deref() == Some("Approval"))
        .expect("the approval's action execution");
    assert_eq!(approval.updated_by.as_deref(), Some(BOB));
    assert_eq!(approval.status, Some(ActionExecutionStatus::Succeeded));
}

#[tokio::test]
async fn rejecting_fails_the_action_the_stage_and_the_execution() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;

    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");

    let latest = env.action("p", "Approve", "Approval").await;
    assert_eq!(latest.status, Some(ActionExecutionStatus::Failed));
    assert_eq!(latest.summary.as_deref(), Some("Rejected by Bob"));
    assert_eq!(latest.last_updated_by.as_deref(), Some(BOB));
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::Failed)
    );
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
    assert_eq!(env.stage_status("p", "Deploy").await, None);
    assert!(
        env.poll(&shell()).await.is_empty(),
        "no deploy job is offered"
    );
}

#[tokio::test]
async fn a_wrong_token_is_an_invalid_approval_token_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let before = env.snapshot("p").await;

    let result = env
        .answer(
            "p",
            "Approve",
            "Approval",
            STRANGER_TOKEN,
            ApprovalStatus::Approved,
        )
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn a_token_presented_for_another_action_is_invalid_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    let before = env.snapshot("p").await;

    let result = env
        .answer("p", "Deploy", "Deploy", &token, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn a_token_reused_after_an_approval_is_approval_already_completed_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.approve("p", "Approve", "Approval", &token).await;
    let before = env.snapshot("p").await;

    for status in [ApprovalStatus::Approved, ApprovalStatus::Rejected] {
        let result = env.answer("p", "Approve", "Approval", &token, status).await;
        assert_code(result, ErrorCode::ApprovalAlreadyCompletedException);
    }
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn a_token_reused_after_a_rejection_is_approval_already_completed_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");
    let before = env.snapshot("p").await;

    let result = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::ApprovalAlreadyCompletedException);
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn an_unknown_pipeline_stage_or_action_is_reported_before_the_token_is_looked_at() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    let before = env.snapshot("p").await;

    let cases = [
        (
            "nope",
            "Approve",
            "Approval",
            ErrorCode::PipelineNotFoundException,
        ),
        ("p", "Nope", "Approval", ErrorCode::StageNotFoundException),
        ("p", "Approve", "Nope", ErrorCode::ActionNotFoundException),
    ];
    for (pipeline, stage, action, code) in cases {
        for token in [token.as_str(), STRANGER_TOKEN] {
            let result = env
                .answer(pipeline, stage, action, token, ApprovalStatus::Approved)
                .await;
            assert_code(result, code);
        }
    }
    env.assert_unchanged("p", &before).await;

    // The approval is still pending and its token still works.
    env.approve("p", "Approve", "Approval", &token).await;
}

#[tokio::test]
async fn an_unanswered_approval_expires_after_seven_days_and_fails_the_execution() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;

    assert_eq!(env.advance(7 * DAY - 1).await, 0, "nothing is due yet");
    assert_eq!(
        env.action("p", "Approve", "Approval").await.status,
        Some(ActionExecutionStatus::InProgress)
    );

    assert_eq!(env.advance(1).await, 1, "the approval expires on the dot");
    let latest = env.action("p", "Approve", "Approval").await;
    assert_eq!(latest.status, Some(ActionExecutionStatus::Failed));
    assert!(
        latest
            .summary
            .as_deref()
            .is_some_and(|s| s.contains("expired")),
        "summary {:?}",
        latest.summary
    );
    assert_eq!(latest.token, None);
    assert_eq!(latest.last_updated_by, None, "nobody answered it");
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::Failed)
    );
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);

    // Its token is no longer valid.
    let before = env.snapshot("p").await;
    let result = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn timeout_in_minutes_sets_the_approval_deadline() {
    let env = TestEnv::new().await;
    env.create(standard_with_timeout("p", Some(5))).await;
    env.run_source("r1").await;
    let id = env.only_execution("p").await;

    assert_eq!(env.advance(5 * MINUTE - 1).await, 0);
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(env.advance(1).await, 1);
    assert_eq!(
        env.action("p", "Approve", "Approval").await.status,
        Some(ActionExecutionStatus::Failed)
    );
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn an_approval_answered_in_time_does_not_expire_later() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    env.approve_pending("p").await;

    assert_eq!(
        env.advance(8 * DAY).await,
        1,
        "only the deploy job times out"
    );
    assert_eq!(
        env.action("p", "Approve", "Approval").await.status,
        Some(ActionExecutionStatus::Succeeded)
    );
    assert_eq!(
        env.action("p", "Deploy", "Deploy").await.status,
        Some(ActionExecutionStatus::Failed)
    );
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn an_approval_expires_after_a_restart() {
    let mut env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;

    env.reload().await;
    assert_eq!(env.advance(7 * DAY).await, 1);
    assert_eq!(
        env.action("p", "Approve", "Approval").await.status,
        Some(ActionExecutionStatus::Failed)
    );
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn an_approval_whose_deadline_passed_while_the_server_was_down_expires_on_the_first_tick() {
    let mut env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;

    // The clock moves past the deadline while nothing fires it, as if the server were down.
    env.clock.advance(8 * DAY);
    env.reload().await;
    assert_eq!(env.svc.fire_due_deadlines().await, 1);
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
    let result = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);
}

#[tokio::test]
async fn two_approvals_in_one_stage_each_need_an_answer() {
    let env = TestEnv::new().await;
    env.create(two_approvals("p")).await;
    env.run_source("r1").await;
    let id = env.only_execution("p").await;
    let security = env.token("p", "Approve", "Security").await;
    let product = env.token("p", "Approve", "Product").await;
    assert_ne!(security, product);

    // Each token belongs to its own action.
    let result = env
        .answer(
            "p",
            "Approve",
            "Product",
            &security,
            ApprovalStatus::Approved,
        )
        .await;
    assert_code(result, ErrorCode::InvalidApprovalTokenException);

    env.approve("p", "Approve", "Security", &security).await;
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::InProgress)
    );
    assert!(
        env.poll(&shell()).await.is_empty(),
        "one answer is not enough"
    );
    env.approve("p", "Approve", "Product", &product).await;
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::Succeeded)
    );
    assert_eq!(job_execution(&env.take_job(&shell()).await), id);
}

#[tokio::test]
async fn one_rejection_among_parallel_approvals_fails_the_stage() {
    let env = TestEnv::new().await;
    env.create(two_approvals("p")).await;
    env.run_source("r1").await;
    let id = env.only_execution("p").await;
    let product = env.token("p", "Approve", "Product").await;

    env.answer(
        "p",
        "Approve",
        "Product",
        &product,
        ApprovalStatus::Rejected,
    )
    .await
    .expect("the rejection is accepted");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
    assert_eq!(
        env.stage_status("p", "Approve").await,
        Some(StageExecutionStatus::Failed)
    );
    assert!(env.poll(&shell()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_to_one_approval_are_decided_exactly_once() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;

    let (approved, rejected) = tokio::join!(
        env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved),
        env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected),
    );
    let (winner, loser) = match (&approved, &rejected) {
        (Ok(_), Err(e)) => (ActionExecutionStatus::Succeeded, e),
        (Err(e), Ok(_)) => (ActionExecutionStatus::Failed, e),
        _ => panic!("exactly one answer wins: {approved:?} {rejected:?}"),
    };
    assert_eq!(loser.code, ErrorCode::ApprovalAlreadyCompletedException);
    assert_eq!(
        env.action("p", "Approve", "Approval").await.status,
        Some(winner)
    );
    let expected = if winner == ActionExecutionStatus::Succeeded {
        PipelineExecutionStatus::InProgress
    } else {
        PipelineExecutionStatus::Failed
    };
    assert_eq!(env.status("p", &id).await, expected);
}

/// Source, then a stage with two approvals side by side (Security and Product), then Deploy.
fn two_approvals(name: &str) -> PipelineDeclaration {
    pipeline(
        name,
        vec![
            stage("Source", vec![source_action("Checkout", "src")]),
            stage(
                "Approve",
                vec![
                    approval_action("Security", None),
                    approval_action("Product", None),
                ],
            ),
            stage("Deploy", vec![shell_action("Deploy", &["src"], 1)]),
        ],
    )
}
