//! Pipeline-level variables (`#{variables.Name}`) through the service: the declared default
//! when CreatePipeline starts the execution, StartPipelineExecution's value when given.

use crate::*;

/// A V2 pipeline with the variable `Env` (default `staging`) whose approval names it.
fn with_env_variable(name: &str) -> PipelineDeclaration {
    let mut decl = standard(name);
    decl.pipeline_type = Some(PipelineType::V2);
    decl.variables = Some(vec![PipelineVariableDeclaration {
        name: "Env".to_string(),
        default_value: Some("staging".to_string()),
        description: None,
    }]);
    decl.stages[1].actions[0]
        .configuration
        .get_or_insert_with(Default::default)
        .insert(
            "CustomData".to_string(),
            "Deploy to #{variables.Env}, execution #{codepipeline.PipelineExecutionId}".to_string(),
        );
    decl
}

async fn custom_data_of_latest(env: &TestEnv, pipeline: &str) -> Option<String> {
    env.svc
        .resolved_configurations(pipeline)
        .await
        .expect("the pipeline")
        .get(&("Approve".to_string(), "Approval".to_string()))
        .and_then(|c| c.get("CustomData").cloned())
}

#[tokio::test]
async fn pipeline_variables_resolve_to_the_default_or_the_value_the_start_gave() {
    let env = TestEnv::new().await;
    env.create(with_env_variable("p")).await;
    env.run_source("r1").await;
    let first = env.only_execution("p").await;
    assert_eq!(
        custom_data_of_latest(&env, "p").await,
        Some(format!("Deploy to staging, execution {first}"))
    );
    // The first leaves the stage, so that the next one can reach the approval.
    env.approve_pending("p").await;

    let second = env
        .svc
        .start_pipeline_execution(
            &env.caller,
            StartPipelineExecutionInput {
                name: "p".to_string(),
                variables: Some(vec![PipelineVariable {
                    name: "Env".to_string(),
                    value: "prod".to_string(),
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("the execution starts")
        .pipeline_execution_id
        .expect("an id");
    env.run_source("r2").await;
    let state = env.state("p").await;
    let approval = state.stage_states.unwrap_or_default()[1]
        .latest_execution
        .as_ref()
        .map(|e| e.pipeline_execution_id.clone());
    assert_eq!(approval.as_deref(), Some(second.as_str()));
    assert_eq!(
        custom_data_of_latest(&env, "p").await,
        Some(format!("Deploy to prod, execution {second}"))
    );
}
