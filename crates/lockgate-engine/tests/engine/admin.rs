//! Pipeline administration around executions: versions, listings with pagination, tags, and
//! idempotent starts.

use crate::*;

const ARN: &str = "arn:aws:codepipeline:us-east-1:123456789012:p";

async fn get_pipeline(
    env: &TestEnv,
    version: Option<i32>,
) -> Result<GetPipelineOutput, ServiceError> {
    env.svc
        .get_pipeline(
            &env.caller,
            GetPipelineInput {
                name: "p".to_string(),
                version,
            },
        )
        .await
}

#[tokio::test]
async fn update_pipeline_bumps_the_version_and_old_versions_stay_readable() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let mut updated = standard("p");
    updated.stages[2].actions[0].name = "Ship".to_string();

    let out = env
        .svc
        .update_pipeline(&env.caller, UpdatePipelineInput { pipeline: updated })
        .await
        .expect("the pipeline is updated");
    assert_eq!(out.pipeline.and_then(|p| p.version), Some(2));
    assert_eq!(env.state("p").await.pipeline_version, Some(2));

    let current = get_pipeline(&env, None).await.expect("readable");
    let current = current.pipeline.expect("a pipeline");
    assert_eq!(current.version, Some(2));
    assert_eq!(current.stages[2].actions[0].name, "Ship");
    let v2 = get_pipeline(&env, Some(2)).await.expect("readable");
    assert_eq!(v2.pipeline, Some(current));
    let v1 = get_pipeline(&env, Some(1))
        .await
        .expect("version 1 is readable")
        .pipeline
        .expect("a pipeline");
    assert_eq!(v1.version, Some(1));
    assert_eq!(v1.stages[2].actions[0].name, "Deploy");

    let metadata = get_pipeline(&env, None)
        .await
        .expect("readable")
        .metadata
        .expect("metadata");
    assert_eq!(metadata.pipeline_arn.as_deref(), Some(ARN));
}

#[tokio::test]
async fn a_missing_pipeline_version_is_pipeline_version_not_found() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    assert_code(
        get_pipeline(&env, Some(2)).await,
        ErrorCode::PipelineVersionNotFoundException,
    );
    assert_code(
        env.svc
            .get_pipeline(
                &env.caller,
                GetPipelineInput {
                    name: "nope".to_string(),
                    version: None,
                },
            )
            .await,
        ErrorCode::PipelineNotFoundException,
    );
}

#[tokio::test]
async fn an_execution_in_progress_finishes_on_the_version_it_started_with() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    let mut updated = standard("p");
    updated.stages[2].actions[0].name = "Ship".to_string();
    env.svc
        .update_pipeline(&env.caller, UpdatePipelineInput { pipeline: updated })
        .await
        .expect("the pipeline is updated");

    env.approve_pending("p").await;
    let job = env.take_job(&shell()).await;
    assert_eq!(job_action(&job), "Deploy");
    env.succeed(&job).await.expect("the deploy succeeds");
    let execution = env.execution("p", &id).await;
    assert_eq!(execution.status, Some(PipelineExecutionStatus::Succeeded));
    assert_eq!(execution.pipeline_version, Some(1));

    let next = env.start("p").await;
    env.run_source("r2").await;
    env.approve_pending("p").await;
    let job = env.take_job(&shell()).await;
    assert_eq!(job_action(&job), "Ship");
    assert_eq!(env.execution("p", &next).await.pipeline_version, Some(2));
}

/// Creates the standard pipeline and starts four more executions: five in all, each
/// superseding the one waiting before it.
async fn five_executions(env: &TestEnv) -> Vec<String> {
    env.create(standard("p")).await;
    for _ in 0..4 {
        env.start("p").await;
    }
    let ids: Vec<String> = env
        .executions("p")
        .await
        .into_iter()
        .filter_map(|e| e.pipeline_execution_id)
        .collect();
    assert_eq!(ids.len(), 5);
    ids
}

#[tokio::test]
async fn list_pipeline_executions_pages_newest_first_with_next_tokens() {
    let env = TestEnv::new().await;
    let all = five_executions(&env).await;

    let mut paged = Vec::new();
    let mut pages = 0;
    let mut next_token = None;
    loop {
        let page = env
            .svc
            .list_pipeline_executions(
                &env.caller,
                ListPipelineExecutionsInput {
                    pipeline_name: "p".to_string(),
                    max_results: Some(2),
                    next_token,
                    ..Default::default()
                },
            )
            .await
            .expect("a page");
        let summaries = page.pipeline_execution_summaries.unwrap_or_default();
        assert!(summaries.len() <= 2);
        paged.extend(
            summaries
                .into_iter()
                .filter_map(|e| e.pipeline_execution_id),
        );
        pages += 1;
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, all);
    let starts: Vec<_> = env
        .executions("p")
        .await
        .into_iter()
        .map(|e| e.start_time)
        .collect();
    let mut sorted = starts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(starts, sorted, "newest first");
}

#[tokio::test]
async fn list_action_executions_pages_with_next_tokens() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    env.approve_pending("p").await;
    env.run_shell().await;
    env.start("p").await;
    let all = env.action_executions("p", None).await;
    assert_eq!(all.len(), 4);

    let mut paged = Vec::new();
    let mut next_token = None;
    loop {
        let page = env
            .svc
            .list_action_executions(
                &env.caller,
                ListActionExecutionsInput {
                    pipeline_name: "p".to_string(),
                    max_results: Some(1),
                    next_token,
                    ..Default::default()
                },
            )
            .await
            .expect("a page");
        let details = page.action_execution_details.unwrap_or_default();
        assert_eq!(details.len(), 1);
        paged.extend(details);
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn list_pipelines_pages_by_name_with_next_tokens() {
    let env = TestEnv::new().await;
    for name in ["e", "b", "d", "a", "c"] {
        env.create(standard(name)).await;
    }
    let mut names = Vec::new();
    let mut next_token = None;
    loop {
        let page = env
            .svc
            .list_pipelines(
                &env.caller,
                ListPipelinesInput {
                    max_results: Some(2),
                    next_token,
                },
            )
            .await
            .expect("a page");
        names.extend(
            page.pipelines
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.name),
        );
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn a_next_token_that_was_not_issued_is_invalid_next_token() {
    let env = TestEnv::new().await;
    five_executions(&env).await;
    let before = env.snapshot("p").await;
    // Junk, a cursor that is not hex, and one that is not text.
    for junk in ["junk", "lg1.zz", "lg1.ff"] {
        let token = Some(junk.to_string());
        assert_code(
            env.svc
                .list_pipeline_executions(
                    &env.caller,
                    ListPipelineExecutionsInput {
                        pipeline_name: "p".to_string(),
                        next_token: token.clone(),
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::InvalidNextTokenException,
        );
        assert_code(
            env.svc
                .list_action_executions(
                    &env.caller,
                    ListActionExecutionsInput {
                        pipeline_name: "p".to_string(),
                        next_token: token.clone(),
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::InvalidNextTokenException,
        );
        assert_code(
            env.svc
                .list_pipelines(
                    &env.caller,
                    ListPipelinesInput {
                        max_results: None,
                        next_token: token.clone(),
                    },
                )
                .await,
            ErrorCode::InvalidNextTokenException,
        );
        assert_code(
            env.svc
                .list_tags_for_resource(
                    &env.caller,
                    ListTagsForResourceInput {
                        resource_arn: ARN.to_string(),
                        next_token: token,
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::InvalidNextTokenException,
        );
    }
    // A well-formed cursor that is no position in these listings.
    let token = Some("lg1.616263".to_string());
    assert_code(
        env.svc
            .list_pipeline_executions(
                &env.caller,
                ListPipelineExecutionsInput {
                    pipeline_name: "p".to_string(),
                    next_token: token.clone(),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::InvalidNextTokenException,
    );
    assert_code(
        env.svc
            .list_action_executions(
                &env.caller,
                ListActionExecutionsInput {
                    pipeline_name: "p".to_string(),
                    next_token: token,
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::InvalidNextTokenException,
    );
    env.assert_unchanged("p", &before).await;
}

async fn tag(
    env: &TestEnv,
    arn: &str,
    tags: &[(&str, &str)],
) -> Result<TagResourceOutput, ServiceError> {
    env.svc
        .tag_resource(
            &env.caller,
            TagResourceInput {
                resource_arn: arn.to_string(),
                tags: tags
                    .iter()
                    .map(|(k, v)| Tag {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
            },
        )
        .await
}

async fn tags(env: &TestEnv, arn: &str) -> Result<Vec<(String, String)>, ServiceError> {
    env.svc
        .list_tags_for_resource(
            &env.caller,
            ListTagsForResourceInput {
                resource_arn: arn.to_string(),
                ..Default::default()
            },
        )
        .await
        .map(|o| {
            o.tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect()
        })
}

#[tokio::test]
async fn tags_on_the_pipeline_arn_can_be_added_replaced_listed_and_removed() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    assert_eq!(tags(&env, ARN).await.expect("listable"), vec![]);

    tag(&env, ARN, &[("team", "payments"), ("tier", "1")])
        .await
        .expect("tagged");
    tag(&env, ARN, &[("tier", "2")]).await.expect("tagged");
    assert_eq!(
        tags(&env, ARN).await.expect("listable"),
        vec![
            ("team".to_string(), "payments".to_string()),
            ("tier".to_string(), "2".to_string())
        ]
    );

    env.svc
        .untag_resource(
            &env.caller,
            UntagResourceInput {
                resource_arn: ARN.to_string(),
                tag_keys: vec!["team".to_string(), "absent".to_string()],
            },
        )
        .await
        .expect("untagged");
    assert_eq!(
        tags(&env, ARN).await.expect("listable"),
        vec![("tier".to_string(), "2".to_string())]
    );
}

#[tokio::test]
async fn tagging_an_unknown_resource_is_resource_not_found() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    for arn in [
        "arn:aws:codepipeline:us-east-1:123456789012:nope",
        "arn:aws:codepipeline:us-west-2:123456789012:p",
        "arn:aws:codepipeline:us-east-1:210987654321:p",
    ] {
        assert_code(
            tag(&env, arn, &[("a", "b")]).await,
            ErrorCode::ResourceNotFoundException,
        );
        assert_code(tags(&env, arn).await, ErrorCode::ResourceNotFoundException);
        assert_code(
            env.svc
                .untag_resource(
                    &env.caller,
                    UntagResourceInput {
                        resource_arn: arn.to_string(),
                        tag_keys: vec!["a".to_string()],
                    },
                )
                .await,
            ErrorCode::ResourceNotFoundException,
        );
    }
    assert_eq!(tags(&env, ARN).await.expect("listable"), vec![]);
}

#[tokio::test]
async fn a_deleted_pipelines_tags_jobs_and_approvals_are_gone() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let token = env.token("p", "Approve", "Approval").await;
    tag(&env, ARN, &[("team", "payments")])
        .await
        .expect("tagged");
    env.start("p").await;

    env.svc
        .delete_pipeline(
            &env.caller,
            DeletePipelineInput {
                name: "p".to_string(),
            },
        )
        .await
        .expect("the pipeline is deleted");
    assert_code(tags(&env, ARN).await, ErrorCode::ResourceNotFoundException);
    assert!(env.poll(&local_source()).await.is_empty());
    let result = env
        .answer("p", "Approve", "Approval", &token, ApprovalStatus::Approved)
        .await;
    assert_code(result, ErrorCode::PipelineNotFoundException);

    // The deleted pipeline's deadlines come due harmlessly.
    assert_eq!(env.advance(8 * DAY).await, 0);

    // A new pipeline of the same name starts from scratch, without the old tags.
    env.create(standard("p")).await;
    assert_eq!(env.executions("p").await.len(), 1);
    assert_eq!(tags(&env, ARN).await.expect("listable"), vec![]);
}

#[tokio::test]
async fn a_repeated_client_request_token_returns_the_same_execution() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let start = |token: &str| {
        let input = StartPipelineExecutionInput {
            name: "p".to_string(),
            client_request_token: Some(token.to_string()),
            ..Default::default()
        };
        let svc = env.svc.clone();
        let caller = env.caller.clone();
        async move {
            svc.start_pipeline_execution(&caller, input)
                .await
                .expect("the execution starts")
                .pipeline_execution_id
        }
    };
    let first = start("deploy-42").await;
    let again = start("deploy-42").await;
    let other = start("deploy-43").await;
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(env.executions("p").await.len(), 3);
    let summary = env
        .executions("p")
        .await
        .into_iter()
        .find(|e| e.pipeline_execution_id == first)
        .expect("the execution is listed");
    let trigger = summary.trigger.expect("a trigger");
    assert_eq!(
        trigger.trigger_type,
        Some(TriggerType::StartPipelineExecution)
    );
    assert_eq!(trigger.trigger_detail.as_deref(), Some(BOB));
}

#[tokio::test]
async fn an_unknown_execution_id_is_pipeline_execution_not_found() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let stranger = "0e0e0e0e-1111-4222-8333-444444444444";
    assert_code(
        env.svc
            .get_pipeline_execution(
                &env.caller,
                GetPipelineExecutionInput {
                    pipeline_name: "p".to_string(),
                    pipeline_execution_id: stranger.to_string(),
                },
            )
            .await,
        ErrorCode::PipelineExecutionNotFoundException,
    );
    assert_code(
        env.svc
            .list_action_executions(
                &env.caller,
                ListActionExecutionsInput {
                    pipeline_name: "p".to_string(),
                    filter: Some(ActionExecutionFilter {
                        pipeline_execution_id: Some(stranger.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::PipelineExecutionNotFoundException,
    );
}

/// The standard pipeline with a `Build` stage inserted before the approval.
fn with_build_stage(name: &str) -> PipelineDeclaration {
    let mut decl = standard(name);
    decl.stages.insert(
        1,
        stage("Build", vec![shell_action("Compile", &["src"], 1)]),
    );
    decl
}

#[tokio::test]
async fn after_an_update_executions_supersede_only_those_waiting_at_the_same_stage() {
    let env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("p").await;
    let second = env.start("p").await;
    env.run_source("r2").await;
    env.svc
        .update_pipeline(
            &env.caller,
            UpdatePipelineInput {
                pipeline: with_build_stage("p"),
            },
        )
        .await
        .expect("the pipeline is updated");

    // The third (version 2) leaves the source for Build; the second (version 1) still waits
    // for the approval stage, which is a different stage though at the same position.
    let third = env.start("p").await;
    env.run_source("r3").await;
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::InProgress
    );
    let compile = env.take_job(&shell()).await;
    assert_eq!(job_execution(&compile), third);
    assert_eq!(job_action(&compile), "Compile");

    // Arriving at the approval stage, the third supersedes the second.
    env.succeed(&compile).await.expect("the compile succeeds");
    assert_eq!(
        env.status("p", &second).await,
        PipelineExecutionStatus::Superseded
    );
    env.approve_pending("p").await;
    assert_eq!(
        env.stage("p", "Approve")
            .await
            .latest_execution
            .map(|e| e.pipeline_execution_id),
        Some(third)
    );
    assert_eq!(
        env.status("p", &first).await,
        PipelineExecutionStatus::InProgress
    );
}
