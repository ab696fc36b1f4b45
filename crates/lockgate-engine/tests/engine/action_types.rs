//! The AWS action catalogue through the service: ListActionTypes and GetActionType answer with
//! it, pipelines naming AWS providers are created, and their actions are handed to job workers
//! polling with owner `AWS`.

use crate::*;

fn aws(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: ActionOwner::Aws,
        provider: provider.to_string(),
        version: "1".to_string(),
    }
}

async fn get_action_type(
    env: &TestEnv,
    category: ActionCategory,
    owner: &str,
    provider: &str,
) -> Result<GetActionTypeOutput, ServiceError> {
    env.svc
        .get_action_type(
            &env.caller,
            GetActionTypeInput {
                category,
                owner: owner.to_string(),
                provider: provider.to_string(),
                version: "1".to_string(),
            },
        )
        .await
}

async fn list(env: &TestEnv, filter: Option<ActionOwner>) -> Vec<ActionType> {
    env.svc
        .list_action_types(
            &env.caller,
            ListActionTypesInput {
                action_owner_filter: filter,
                ..Default::default()
            },
        )
        .await
        .expect("action types are listed")
        .action_types
}

#[tokio::test]
async fn list_action_types_answers_with_the_aws_catalogue_and_the_custom_types() {
    let env = TestEnv::new().await;
    let aws_types = list(&env, Some(ActionOwner::Aws)).await;
    let codebuild = aws_types
        .iter()
        .find(|t| t.id == aws(ActionCategory::Build, "CodeBuild"))
        .expect("CodeBuild is listed");
    let project = codebuild
        .action_configuration_properties
        .iter()
        .flatten()
        .find(|p| p.name == "ProjectName")
        .expect("ProjectName is a property");
    assert!(project.required && project.key && !project.secret);
    assert!(aws_types
        .iter()
        .any(|t| t.id == lockgate_model::action_types::manual_approval_id()));
    assert!(aws_types.iter().all(|t| t.id.owner == ActionOwner::Aws));

    let custom = list(&env, Some(ActionOwner::Custom)).await;
    assert_eq!(
        custom.len(),
        2,
        "the two custom types of the test environment"
    );
    let all = list(&env, None).await;
    assert_eq!(
        all.len(),
        aws_types.len() + custom.len() + list(&env, Some(ActionOwner::ThirdParty)).await.len()
    );
}

#[tokio::test]
async fn get_action_type_describes_a_catalogued_type_and_refuses_others() {
    let env = TestEnv::new().await;
    let out = get_action_type(
        &env,
        ActionCategory::Source,
        "AWS",
        "CodeStarSourceConnection",
    )
    .await
    .expect("the type is described");
    let declaration = out.action_type.expect("a declaration");
    assert_eq!(declaration.id.provider, "CodeStarSourceConnection");
    assert_eq!(declaration.executor.r#type, ExecutorType::JobWorker);
    assert_eq!(
        (
            declaration.input_artifact_details.maximum_count,
            declaration.output_artifact_details.minimum_count
        ),
        (0, 1)
    );
    let properties = declaration.properties.unwrap_or_default();
    let connection = properties
        .iter()
        .find(|p| p.name == "ConnectionArn")
        .expect("ConnectionArn is a property");
    assert!(!connection.optional && connection.key && !connection.no_echo);
    assert!(declaration
        .description
        .is_some_and(|d| d.contains("action-reference-CodestarConnectionSource")));

    let manual = get_action_type(&env, ActionCategory::Approval, "AWS", "Manual")
        .await
        .expect("the manual approval is described");
    assert_eq!(
        manual
            .action_type
            .map(|d| d.properties.unwrap_or_default().len()),
        Some(3)
    );

    for (category, owner, provider) in [
        (ActionCategory::Build, "AWS", "NoSuchBuilder"),
        (ActionCategory::Build, "Custom", "Shell"),
        (ActionCategory::Source, "ThirdParty", "CodeCommit"),
    ] {
        let err = get_action_type(&env, category, owner, provider)
            .await
            .expect_err("unknown");
        assert_eq!(
            err.code,
            ErrorCode::ActionTypeNotFoundException,
            "{provider}"
        );
    }
}

/// A pipeline written for CodePipeline (CodeCommit source, CodeBuild) is created as it is; its
/// actions wait for job workers that poll with owner `AWS`, and a source nobody takes fails at
/// the job timeout with a message that names the provider.
#[tokio::test]
async fn aws_providers_are_handed_to_job_workers_and_fail_when_none_polls() {
    let env = TestEnv::empty().await;
    let source = ActionDeclaration {
        name: "Source".to_string(),
        action_type_id: aws(ActionCategory::Source, "CodeCommit"),
        configuration: Some(
            [
                ("RepositoryName".to_string(), "my-app".to_string()),
                ("BranchName".to_string(), "main".to_string()),
            ]
            .into(),
        ),
        output_artifacts: Some(vec![OutputArtifact {
            name: "src".to_string(),
            files: None,
        }]),
        ..Default::default()
    };
    let build = ActionDeclaration {
        name: "Build".to_string(),
        action_type_id: aws(ActionCategory::Build, "CodeBuild"),
        configuration: Some([("ProjectName".to_string(), "my-app-build".to_string())].into()),
        input_artifacts: Some(vec![InputArtifact {
            name: "src".to_string(),
        }]),
        ..Default::default()
    };
    let decl = pipeline(
        "aws",
        vec![stage("Source", vec![source]), stage("Build", vec![build])],
    );
    env.create(decl).await;

    let jobs = env.poll(&aws(ActionCategory::Source, "CodeCommit")).await;
    assert_eq!(
        jobs.len(),
        1,
        "the source job is offered to a worker polling with owner AWS"
    );
    let data = jobs[0].data.as_ref().expect("job data");
    assert_eq!(
        data.action_configuration
            .as_ref()
            .and_then(|c| c.configuration.as_ref())
            .and_then(|c| c.get("RepositoryName"))
            .map(String::as_str),
        Some("my-app")
    );

    // The worker that was offered the job never acknowledges it: at the job timeout the action
    // fails, saying which provider nobody ran.
    env.advance(JOB_TIMEOUT_MILLIS).await;
    let source = env.action("aws", "Source", "Source").await;
    assert_eq!(source.status, Some(ActionExecutionStatus::Failed));
    let message = source
        .error_details
        .and_then(|e| e.message)
        .unwrap_or_default();
    assert!(
        message.contains("Source/AWS/CodeCommit/1"),
        "the failure names the provider: {message}"
    );
}
