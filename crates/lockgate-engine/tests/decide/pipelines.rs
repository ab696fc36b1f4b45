//! Compact pipeline declarations for the decision tests: stages of source jobs, manual approvals
//! and build jobs, with run orders, approval timeouts and an execution mode.
//!
//! The declarations are real ones: the harness checks each with `validate_pipeline` against the
//! action types it registers ([`source_type`], [`build_type`] and the built-in manual approval),
//! exactly as CreatePipeline does, so a test cannot run a pipeline CodePipeline would refuse.

use std::collections::BTreeMap;

use lockgate_shapes::{
    ActionCategory, ActionConfigurationProperty, ActionConfigurationPropertyType,
    ActionDeclaration, ActionOwner, ActionType, ActionTypeId, ArtifactDetails, ArtifactStore,
    ArtifactStoreType, ExecutionMode, OutputArtifact, PipelineDeclaration, PipelineType,
    StageDeclaration,
};

/// `Source/Custom/LocalSource/1`: the source action type, answered by a job worker.
pub fn source_type_id() -> ActionTypeId {
    custom(ActionCategory::Source, "LocalSource")
}

/// `Build/Custom/Shell/1`: the build action type, answered by a job worker.
pub fn build_type_id() -> ActionTypeId {
    custom(ActionCategory::Build, "Shell")
}

fn custom(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: ActionOwner::Custom,
        provider: provider.to_string(),
        version: "1".to_string(),
    }
}

/// The source action type as CreateCustomActionType would declare it: no input, at most one
/// output artifact.
pub fn source_type() -> ActionType {
    action_type(source_type_id(), (0, 0), (0, 1))
}

/// The build action type: up to five input and output artifacts and an optional `Command`.
pub fn build_type() -> ActionType {
    action_type(build_type_id(), (0, 5), (0, 5))
}

fn action_type(id: ActionTypeId, inputs: (i32, i32), outputs: (i32, i32)) -> ActionType {
    ActionType {
        id,
        settings: None,
        action_configuration_properties: Some(vec![ActionConfigurationProperty {
            name: "Command".to_string(),
            required: false,
            key: true,
            secret: false,
            queryable: Some(true),
            description: None,
            r#type: Some(ActionConfigurationPropertyType::String),
        }]),
        input_artifact_details: ArtifactDetails {
            minimum_count: inputs.0,
            maximum_count: inputs.1,
        },
        output_artifact_details: ArtifactDetails {
            minimum_count: outputs.0,
            maximum_count: outputs.1,
        },
    }
}

/// A source action: a job for a LocalSource worker.
pub fn source(name: &str) -> ActionDeclaration {
    ActionDeclaration {
        name: name.to_string(),
        action_type_id: source_type_id(),
        ..Default::default()
    }
}

/// A build action: a job for a Shell worker.
pub fn job(name: &str) -> ActionDeclaration {
    ActionDeclaration {
        name: name.to_string(),
        action_type_id: build_type_id(),
        configuration: Some(BTreeMap::from([(
            "Command".to_string(),
            format!("run {name}"),
        )])),
        ..Default::default()
    }
}

/// A manual approval with the default timeout (seven days).
pub fn approval(name: &str) -> ActionDeclaration {
    ActionDeclaration {
        name: name.to_string(),
        action_type_id: lockgate_model::action_types::manual_approval_id(),
        ..Default::default()
    }
}

/// Builder-style settings on an action declaration.
pub trait ActionSettings {
    /// Runs the action in run-order group `n` of its stage.
    fn run_order(self, n: i32) -> Self;
    /// Gives a manual approval `timeoutInMinutes`.
    fn timeout_minutes(self, minutes: i32) -> Self;
    /// Declares an output artifact.
    fn output(self, artifact: &str) -> Self;
}

impl ActionSettings for ActionDeclaration {
    fn run_order(self, n: i32) -> Self {
        ActionDeclaration {
            run_order: Some(n),
            ..self
        }
    }

    fn timeout_minutes(self, minutes: i32) -> Self {
        ActionDeclaration {
            timeout_in_minutes: Some(minutes),
            ..self
        }
    }

    fn output(mut self, artifact: &str) -> Self {
        self.output_artifacts
            .get_or_insert_with(Vec::new)
            .push(OutputArtifact {
                name: artifact.to_string(),
                files: None,
            });
        self
    }
}

/// A stage of these actions.
pub fn stage(name: &str, actions: Vec<ActionDeclaration>) -> StageDeclaration {
    StageDeclaration {
        name: name.to_string(),
        actions,
        ..Default::default()
    }
}

/// A V1 pipeline (SUPERSEDED, the default mode) of these stages.
pub fn pipeline(stages: Vec<StageDeclaration>) -> PipelineDeclaration {
    PipelineDeclaration {
        name: "p".to_string(),
        role_arn: "arn:aws:iam::123456789012:role/LockgatePipeline".to_string(),
        artifact_store: Some(ArtifactStore {
            r#type: ArtifactStoreType::S3,
            location: "lockgate-artifacts".to_string(),
            encryption_key: None,
        }),
        stages,
        ..Default::default()
    }
}

/// A V2 pipeline in `mode` of these stages.
pub fn pipeline_in(mode: ExecutionMode, stages: Vec<StageDeclaration>) -> PipelineDeclaration {
    PipelineDeclaration {
        pipeline_type: Some(PipelineType::V2),
        execution_mode: Some(mode),
        ..pipeline(stages)
    }
}

/// The standard pipeline: `Source` (job `Checkout`), `Approve` (approval `Approval`), `Deploy`
/// (job `Deploy`).
pub fn standard() -> PipelineDeclaration {
    pipeline(standard_stages())
}

/// The standard pipeline's stages.
pub fn standard_stages() -> Vec<StageDeclaration> {
    vec![
        stage("Source", vec![source("Checkout")]),
        stage("Approve", vec![approval("Approval")]),
        stage("Deploy", vec![job("Deploy")]),
    ]
}
