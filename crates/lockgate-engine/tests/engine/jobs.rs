//! The job-worker protocol: polling, acknowledging, reporting, continuation, timeouts, and the
//! revisions a source job reports.

use crate::*;

const STRANGER_JOB: &str = "0e0e0e0e-1111-4222-8333-444444444444";

async fn ack_with(
    env: &TestEnv,
    job: &str,
    nonce: &str,
) -> Result<AcknowledgeJobOutput, ServiceError> {
    env.svc
        .acknowledge_job(
            &env.caller,
            AcknowledgeJobInput {
                job_id: job.to_string(),
                nonce: nonce.to_string(),
            },
        )
        .await
}

#[tokio::test]
async fn acknowledging_with_the_wrong_nonce_is_invalid_nonce_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let job = env.poll(&local_source()).await.remove(0);
    let before = env.snapshot("p").await;

    assert_code(
        ack_with(&env, &job_id(&job), "not-the-nonce").await,
        ErrorCode::InvalidNonceException,
    );
    env.assert_unchanged("p", &before).await;
    // The right nonce still works.
    env.ack(&job).await;
}

#[tokio::test]
async fn acknowledging_twice_answers_the_jobs_status_again() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let job = env.take_job(&local_source()).await;
    let again = ack_with(
        &env,
        &job_id(&job),
        job.nonce.as_deref().unwrap_or_default(),
    )
    .await
    .expect("a repeated acknowledgement is answered");
    assert_eq!(again.status, Some(JobStatus::InProgress));
}

#[tokio::test]
async fn unknown_jobs_are_job_not_found_and_nothing_changes() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let before = env.snapshot("p").await;
    let stranger = Job {
        id: Some(STRANGER_JOB.to_string()),
        nonce: Some("1".to_string()),
        ..Default::default()
    };

    assert_code(
        ack_with(&env, STRANGER_JOB, "1").await,
        ErrorCode::JobNotFoundException,
    );
    assert_code(
        env.svc
            .get_job_details(
                &env.caller,
                GetJobDetailsInput {
                    job_id: STRANGER_JOB.to_string(),
                },
            )
            .await,
        ErrorCode::JobNotFoundException,
    );
    assert_code(
        env.succeed(&stranger).await,
        ErrorCode::JobNotFoundException,
    );
    assert_code(
        env.fail(&stranger, "no").await,
        ErrorCode::JobNotFoundException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn a_result_for_a_succeeded_job_is_invalid_job_state_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let job = env.run_source("r1").await;
    let before = env.snapshot("p").await;

    assert_code(env.succeed(&job).await, ErrorCode::InvalidJobStateException);
    assert_code(
        env.fail(&job, "late").await,
        ErrorCode::InvalidJobStateException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn a_result_for_a_failed_job_is_invalid_job_state_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let job = env.take_job(&local_source()).await;
    env.fail(&job, "broken")
        .await
        .expect("the failure is accepted");
    assert_eq!(
        env.status("p", &job_execution(&job)).await,
        PipelineExecutionStatus::Failed
    );
    let before = env.snapshot("p").await;

    assert_code(env.succeed(&job).await, ErrorCode::InvalidJobStateException);
    assert_code(
        env.fail(&job, "again").await,
        ErrorCode::InvalidJobStateException,
    );
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn polling_for_an_unknown_action_type_is_action_type_not_found() {
    let env = TestEnv::new().await;
    let unknown = ActionTypeId {
        provider: "Nope".to_string(),
        ..shell()
    };
    assert_code(
        env.svc
            .poll_for_jobs(
                &env.caller,
                PollForJobsInput {
                    action_type_id: unknown,
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::ActionTypeNotFoundException,
    );
}

#[tokio::test]
async fn a_polled_job_is_not_offered_to_another_worker() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    assert_eq!(env.poll(&local_source()).await.len(), 1);
    assert!(env.poll(&local_source()).await.is_empty());
}

#[tokio::test]
async fn a_poll_with_query_param_gets_only_jobs_whose_configuration_matches() {
    let env = TestEnv::new().await;
    env.create(pipeline(
        "r",
        vec![
            stage("Source", vec![source_action("Checkout", "src")]),
            stage(
                "Build",
                vec![
                    shell_action("A", &["src"], 1),
                    shell_action("B", &["src"], 1),
                ],
            ),
        ],
    ))
    .await;
    env.run_source("r1").await;

    let poll = |command: &str| {
        let input = PollForJobsInput {
            action_type_id: shell(),
            max_batch_size: Some(10),
            query_param: Some(BTreeMap::from([(
                "Command".to_string(),
                command.to_string(),
            )])),
        };
        let svc = env.svc.clone();
        let caller = env.caller.clone();
        async move {
            svc.poll_for_jobs(&caller, input)
                .await
                .expect("the poll is answered")
                .jobs
                .unwrap_or_default()
        }
    };
    let b = poll("run B").await;
    assert_eq!(b.len(), 1);
    assert_eq!(job_action(&b[0]), "B");
    assert!(poll("run Z").await.is_empty());
    let rest = env.poll(&shell()).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(job_action(&rest[0]), "A");
}

#[tokio::test]
async fn a_continuation_token_requeues_a_new_job_for_the_same_action() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let first = env.take_job(&local_source()).await;
    let action_before = env.action("p", "Source", "Checkout").await;

    env.svc
        .put_job_success_result(
            &env.caller,
            PutJobSuccessResultInput {
                job_id: job_id(&first),
                continuation_token: Some("step-2".to_string()),
                execution_details: Some(ExecutionDetails {
                    summary: Some("halfway".to_string()),
                    external_execution_id: Some("ext-1".to_string()),
                    percent_complete: Some(50),
                }),
                ..Default::default()
            },
        )
        .await
        .expect("the continuation is accepted");

    let action = env.action("p", "Source", "Checkout").await;
    assert_eq!(action.status, Some(ActionExecutionStatus::InProgress));
    assert_eq!(
        action.action_execution_id,
        action_before.action_execution_id
    );
    assert_eq!(action.summary.as_deref(), Some("halfway"));
    assert_eq!(action.percent_complete, Some(50));
    assert_eq!(action.external_execution_id.as_deref(), Some("ext-1"));

    let second = env.take_job(&local_source()).await;
    assert_ne!(job_id(&second), job_id(&first));
    let data = second.data.clone().expect("job data");
    assert_eq!(data.continuation_token.as_deref(), Some("step-2"));
    assert_eq!(
        data.pipeline_context
            .and_then(|c| c.action)
            .and_then(|a| a.action_execution_id),
        action_before.action_execution_id
    );
    // The output goes to the same place as the first job was told.
    let location = |job: &Job| {
        job.data
            .as_ref()
            .and_then(|d| d.output_artifacts.as_ref())
            .map(|o| o[0].location.clone())
    };
    assert_eq!(location(&second), location(&first));
    assert_code(
        env.succeed(&first).await,
        ErrorCode::InvalidJobStateException,
    );

    env.succeed_with_revision(&second, "r1").await;
    assert_eq!(
        env.action("p", "Source", "Checkout").await.status,
        Some(ActionExecutionStatus::Succeeded)
    );
    // The next stage reads the artifact from where the worker was told to write it.
    env.approve_pending("p").await;
    let deploy = env.take_job(&shell()).await;
    let input = deploy
        .data
        .and_then(|d| d.input_artifacts)
        .map(|i| i[0].location.clone());
    assert_eq!(input, location(&first));
}

#[tokio::test]
async fn a_job_that_outlives_the_job_timeout_fails_its_action_and_the_execution() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    let job = env.take_job(&local_source()).await;

    assert_eq!(env.advance(JOB_TIMEOUT_MILLIS - 1).await, 0);
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(env.advance(1).await, 1);
    let action = env.action("p", "Source", "Checkout").await;
    assert_eq!(action.status, Some(ActionExecutionStatus::Failed));
    assert!(action.error_details.is_some());
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);

    let before = env.snapshot("p").await;
    assert_code(env.succeed(&job).await, ErrorCode::InvalidJobStateException);
    env.assert_unchanged("p", &before).await;
}

#[tokio::test]
async fn a_job_that_was_never_polled_also_times_out() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    assert_eq!(env.advance(JOB_TIMEOUT_MILLIS).await, 1);
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
    assert!(
        env.poll(&local_source()).await.is_empty(),
        "the timed-out job is withdrawn"
    );
}

#[tokio::test]
async fn the_reported_current_revision_becomes_the_executions_artifact_and_source_revision() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    env.run_source("abc123").await;

    let execution = env.execution("p", &id).await;
    let revisions = execution.artifact_revisions.unwrap_or_default();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].name.as_deref(), Some("src"));
    assert_eq!(revisions[0].revision_id.as_deref(), Some("abc123"));
    assert_eq!(
        revisions[0].revision_change_identifier.as_deref(),
        Some("change-abc123")
    );
    assert_eq!(
        revisions[0].revision_summary.as_deref(),
        Some("Commit abc123")
    );

    let summary = &env.executions("p").await[0];
    let sources = summary.source_revisions.clone().unwrap_or_default();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].action_name, "Checkout");
    assert_eq!(sources[0].revision_id.as_deref(), Some("abc123"));

    let current = env
        .action_state("p", "Source", "Checkout")
        .await
        .current_revision
        .expect("the source shows its current revision");
    assert_eq!(current.revision_id, "abc123");
    assert_eq!(current.revision_change_id, "change-abc123");
}

#[tokio::test]
async fn output_variables_and_execution_details_show_in_list_action_executions() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let id = env.only_execution("p").await;
    let job = env.take_job(&local_source()).await;
    env.svc
        .put_job_success_result(
            &env.caller,
            PutJobSuccessResultInput {
                job_id: job_id(&job),
                execution_details: Some(ExecutionDetails {
                    summary: Some("checked out".to_string()),
                    external_execution_id: Some("ext-9".to_string()),
                    percent_complete: Some(100),
                }),
                output_variables: Some(BTreeMap::from([(
                    "CommitId".to_string(),
                    "abc".to_string(),
                )])),
                ..Default::default()
            },
        )
        .await
        .expect("the success is accepted");

    let detail = env
        .action_executions("p", Some(&id))
        .await
        .into_iter()
        .find(|a| a.action_name.as_deref() == Some("Checkout"))
        .expect("the source's action execution");
    assert_eq!(detail.status, Some(ActionExecutionStatus::Succeeded));
    let output = detail.output.expect("an output");
    assert_eq!(
        output.output_variables,
        Some(BTreeMap::from([(
            "CommitId".to_string(),
            "abc".to_string()
        )]))
    );
    let result = output.execution_result.expect("an execution result");
    assert_eq!(result.external_execution_id.as_deref(), Some("ext-9"));
    assert_eq!(
        result.external_execution_summary.as_deref(),
        Some("checked out")
    );
}

/// What a worker hears about a finished job: its details, its status on acknowledging, and
/// InvalidJobState for a result.
async fn finished_job_answers(
    env: &TestEnv,
    job: &Job,
) -> (GetJobDetailsOutput, Option<JobStatus>) {
    assert_code(env.succeed(job).await, ErrorCode::InvalidJobStateException);
    assert_code(
        env.fail(job, "late").await,
        ErrorCode::InvalidJobStateException,
    );
    let details = env
        .svc
        .get_job_details(
            &env.caller,
            GetJobDetailsInput {
                job_id: job_id(job),
            },
        )
        .await
        .expect("a finished job's details are readable");
    let ack = ack_with(env, &job_id(job), job.nonce.as_deref().unwrap_or_default())
        .await
        .expect("acknowledging a finished job answers its status");
    (details, ack.status)
}

#[tokio::test]
async fn a_finished_job_is_answered_the_same_before_and_after_a_restart() {
    let mut env = TestEnv::new().await;
    env.create(standard("p")).await;
    let succeeded = env.run_source("r1").await;
    env.approve_pending("p").await;
    let failed = env.take_job(&shell()).await;
    env.fail(&failed, "broken")
        .await
        .expect("the failure is accepted");

    let before = (
        finished_job_answers(&env, &succeeded).await,
        finished_job_answers(&env, &failed).await,
    );
    assert_eq!(before.0 .1, Some(JobStatus::Succeeded));
    assert_eq!(before.1 .1, Some(JobStatus::Failed));
    let snapshot = env.snapshot("p").await;

    env.reload().await;

    let after = (
        finished_job_answers(&env, &succeeded).await,
        finished_job_answers(&env, &failed).await,
    );
    assert_eq!(after, before);
    env.assert_unchanged("p", &snapshot).await;
}

#[tokio::test]
async fn finished_jobs_leave_the_job_index() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    assert_eq!(
        env.open_job_records().await,
        1,
        "the first source job is open"
    );
    env.run_source("r1").await;
    assert_eq!(env.open_job_records().await, 0);
    env.approve_pending("p").await;
    env.run_shell().await;
    for n in 2..=4 {
        env.start("p").await;
        env.run_source(&format!("r{n}")).await;
        env.approve_pending("p").await;
        env.run_shell().await;
    }
    assert_eq!(
        env.open_job_records().await,
        0,
        "eight finished jobs, none kept"
    );
    env.start("p").await;
    assert_eq!(env.open_job_records().await, 1);
}
