//! The structure rules CodePipeline applies to a pipeline declaration on `CreatePipeline` and
//! `UpdatePipeline`, on top of the model's constraints.
//!
//! The shapes crate has already checked every constraint the service model states (required
//! members, lengths, patterns, enum values, integer ranges such as `runOrder` 1–999) and answered
//! `ValidationException` for all of them at once. What remains here are the rules the model
//! cannot express: how stages and actions fit together, which action types exist, how artifacts
//! flow, and what each action type's configuration must hold.
//!
//! Errors carry the code AWS answers with and, where the wording is known, AWS's message. Only
//! the first violation is reported, found in a fixed order: pipeline-wide checks first, then the
//! stages from first to last, and within a stage its actions in declaration order; input
//! artifacts are checked once the whole stage's outputs are known, because an action may consume
//! the output of an action listed after it that runs earlier (a lower `runOrder`).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use lockgate_shapes::{
    ActionDeclaration, ActionType, ErrorCode, ExecutionMode, PipelineDeclaration, PipelineType,
    ServiceError, StageDeclaration,
};
use regex::Regex;

use crate::action_types::{
    is_manual_approval, ActionTypeRegistry, CUSTOM_DATA, CUSTOM_DATA_MAX_CHARS,
    EXTERNAL_ENTITY_LINK, NOTIFICATION_ARN,
};

/// The fewest stages a pipeline may have.
pub const MIN_STAGES: usize = 2;
/// The most stages a pipeline may have (a CodePipeline quota that cannot be raised).
pub const MAX_STAGES: usize = 50;
/// The most actions a stage may have (a CodePipeline quota).
pub const MAX_ACTIONS_PER_STAGE: usize = 50;
/// The shortest `timeoutInMinutes` a manual approval accepts (5 minutes).
pub const MIN_APPROVAL_TIMEOUT_MINUTES: i32 = 5;
/// The longest `timeoutInMinutes` a manual approval accepts (86400 minutes, 60 days).
pub const MAX_APPROVAL_TIMEOUT_MINUTES: i32 = 86_400;

/// The `runOrder` an action without one gets.
const DEFAULT_RUN_ORDER: i32 = 1;
/// The category every action of the first stage has, and no action of a later stage.
const SOURCE_CATEGORY: &str = "Source";

/// An IAM role ARN in any partition: `arn:aws(-<partition>)*:iam::<12 digits>:role/<path/name>`.
/// Character classes are spelled out because `\d` and `\w` in the `regex` crate are Unicode-wide.
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$",
    )
    .expect("the role ARN pattern is a valid regular expression")
});

/// An SNS topic ARN: `arn:aws(-<partition>)*:sns:<region>:<12 digits>:<topic name>`; FIFO topic
/// names end in `.fifo`.
static SNS_TOPIC_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(-[a-z]+)*:sns:[a-z][a-z0-9-]*:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
        .expect("the SNS topic ARN pattern is a valid regular expression")
});

/// An absolute `http` or `https` URL with a host and no whitespace.
static HTTP_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?i:https?)://[^\s/?#]+[^\s]*$")
        .expect("the URL pattern is a valid regular expression")
});

/// Whether `link` is an absolute `http` or `https` URL, the only links the console renders for
/// an approval's `ExternalEntityLink` (checked when a declaration is validated, and again once
/// its variable references are resolved).
pub fn is_http_url(link: &str) -> bool {
    HTTP_URL.is_match(link)
}

/// A pipeline declaration that passed [`validate_pipeline`], with the defaults CodePipeline
/// applies filled in: `pipelineType` V1 and `executionMode` SUPERSEDED when the declaration
/// names none. This is the one place those defaults are derived; the engine stores and runs the
/// declaration this holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPipeline(PipelineDeclaration);

impl ValidatedPipeline {
    /// The declaration, defaults filled in.
    pub fn declaration(&self) -> &PipelineDeclaration {
        &self.0
    }

    /// The declaration, defaults filled in, to keep.
    pub fn into_declaration(self) -> PipelineDeclaration {
        self.0
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The pipeline type (V1 when the declaration named none).
    pub fn pipeline_type(&self) -> PipelineType {
        self.0.pipeline_type.unwrap_or(PipelineType::V1)
    }

    /// The execution mode (SUPERSEDED when the declaration named none).
    pub fn execution_mode(&self) -> ExecutionMode {
        self.0.execution_mode.unwrap_or(ExecutionMode::Superseded)
    }
}

/// Checks `decl` against CodePipeline's structure rules, looking action types up in `registry`,
/// and returns it with its defaults filled in.
///
/// Returns the first violation as the error AWS would answer with:
/// `ValidationException` for a malformed role ARN, `InvalidStructureException` for the pipeline's
/// overall shape and artifact flow, `InvalidStageDeclarationException` for a stage and
/// `InvalidActionDeclarationException` for an action. Constraint checks from the service model
/// must already have passed; they are not repeated here.
pub fn validate_pipeline(
    decl: &PipelineDeclaration,
    registry: &ActionTypeRegistry,
) -> Result<ValidatedPipeline, ServiceError> {
    check_role_arn(&decl.role_arn, "pipeline.roleArn")?;
    check_stage_count(decl)?;
    check_artifact_stores(decl)?;
    check_pipeline_type_features(decl)?;

    let v2 = is_v2(decl);
    let mut stage_names: HashSet<&str> = HashSet::new();
    // Every output artifact seen so far, with the stage index and run order of its producer.
    let mut produced: HashMap<&str, (usize, i32)> = HashMap::new();

    for (stage_index, stage) in decl.stages.iter().enumerate() {
        if !stage_names.insert(stage.name.as_str()) {
            return Err(stage_error(format!(
                "Stage name '{}' is used more than once",
                stage.name
            )));
        }
        check_stage_shape(stage, v2)?;

        let mut action_names: HashSet<&str> = HashSet::new();
        for (action_index, action) in stage.actions.iter().enumerate() {
            if !action_names.insert(action.name.as_str()) {
                return Err(action_error(format!(
                    "Action name '{}' is used more than once in stage '{}'",
                    action.name, stage.name
                )));
            }
            check_action(stage_index, action_index, action, registry)?;
            for output in action.output_artifacts.iter().flatten() {
                let producer = (stage_index, run_order(action));
                if produced.insert(output.name.as_str(), producer).is_some() {
                    return Err(structure_error(format!(
                        "Output Artifact Bundle name must be unique within the pipeline. {} has \
                         been used more than once.",
                        output.name
                    )));
                }
            }
        }

        for action in &stage.actions {
            for input in action.input_artifacts.iter().flatten() {
                let runs_earlier = produced.get(input.name.as_str()).is_some_and(
                    |&(producer_stage, producer_run_order)| {
                        producer_stage < stage_index
                            || (producer_stage == stage_index
                                && producer_run_order < run_order(action))
                    },
                );
                if !runs_earlier {
                    return Err(structure_error(format!(
                        "Input Artifact Bundle {} in action '{}' in stage '{}' is not declared as \
                         an output artifact of any action that runs before it",
                        input.name, action.name, stage.name
                    )));
                }
            }
        }
        crate::conditions::check_stage_conditions(stage, stage_index, &|name| {
            produced
                .get(name)
                .map(|&(producer_stage, _)| producer_stage)
        })?;
    }
    let mut decl = decl.clone();
    decl.pipeline_type.get_or_insert(PipelineType::V1);
    decl.execution_mode.get_or_insert(ExecutionMode::Superseded);
    Ok(ValidatedPipeline(decl))
}

/// The role ARN must name an IAM role. The model's pattern (`arn:aws(-[\w]+)*:iam::[0-9]{12}:role/.*`)
/// lets an empty or malformed role name through; CodePipeline could not assume such a role.
fn check_role_arn(role_arn: &str, member: &str) -> Result<(), ServiceError> {
    if ROLE_ARN.is_match(role_arn) {
        return Ok(());
    }
    Err(ServiceError::new(
        ErrorCode::ValidationException,
        format!(
            "1 validation error detected: Value '{role_arn}' at '{member}' failed to satisfy \
             constraint: Member must be an IAM role ARN of the form \
             arn:aws:iam::<account>:role/<name>"
        ),
    ))
}

fn check_stage_count(decl: &PipelineDeclaration) -> Result<(), ServiceError> {
    let stages = decl.stages.len();
    if stages < MIN_STAGES {
        return Err(structure_error(format!(
            "Pipeline has only {stages} stage(s). There should be a minimum of {MIN_STAGES} \
             stages in a pipeline"
        )));
    }
    if stages > MAX_STAGES {
        return Err(structure_error(format!(
            "Pipeline has too many stages. There can only be up to {MAX_STAGES} stages in a \
             pipeline"
        )));
    }
    Ok(())
}

/// `artifactStore` and `artifactStores` exclude each other; a store holds artifacts in S3.
fn check_artifact_stores(decl: &PipelineDeclaration) -> Result<(), ServiceError> {
    if decl.artifact_store.is_some() && decl.artifact_stores.is_some() {
        return Err(structure_error(
            "You must include either artifactStore or artifactStores in your pipeline, but you \
             cannot use both",
        ));
    }
    let single = decl
        .artifact_store
        .iter()
        .map(|store| ("artifactStore", store));
    let per_region = decl
        .artifact_stores
        .iter()
        .flatten()
        .map(|(_, store)| ("artifactStores", store));
    for (member, store) in single.chain(per_region) {
        if store.r#type.as_str() != "S3" {
            return Err(structure_error(format!(
                "Artifact store type '{}' in {member} is not supported. The only supported type \
                 is S3",
                store.r#type.as_str()
            )));
        }
        if store.location.trim().is_empty() {
            return Err(structure_error(format!(
                "Artifact store location in {member} must not be empty"
            )));
        }
    }
    Ok(())
}

/// Features that only V2 pipelines have: the QUEUED and PARALLEL execution modes and pipeline
/// variables. A pipeline without `pipelineType` is V1.
fn check_pipeline_type_features(decl: &PipelineDeclaration) -> Result<(), ServiceError> {
    if is_v2(decl) {
        let mut names: HashSet<&str> = HashSet::new();
        for variable in decl.variables.iter().flatten() {
            if !names.insert(variable.name.as_str()) {
                return Err(structure_error(format!(
                    "Variable names must be unique. The following variable name is already in \
                     use: {}",
                    variable.name
                )));
            }
        }
        return Ok(());
    }
    let mode = decl.execution_mode.as_ref().map(|mode| mode.as_str());
    if matches!(mode, Some("QUEUED" | "PARALLEL")) {
        return Err(structure_error(
            "QUEUED or PARALLEL mode can only be used with V2 pipelines",
        ));
    }
    if decl.variables.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(structure_error(
            "Pipeline variable can only be used with V2 pipelines",
        ));
    }
    Ok(())
}

/// A stage holds between one and [`MAX_ACTIONS_PER_STAGE`] actions; stage-level conditions
/// need a V2 pipeline.
fn check_stage_shape(stage: &StageDeclaration, v2: bool) -> Result<(), ServiceError> {
    if stage.actions.is_empty() {
        return Err(stage_error(format!(
            "Stage '{}' must contain at least one action",
            stage.name
        )));
    }
    if stage.actions.len() > MAX_ACTIONS_PER_STAGE {
        return Err(stage_error(format!(
            "Stage '{}' has too many actions. There can only be up to {MAX_ACTIONS_PER_STAGE} \
             actions in a stage",
            stage.name
        )));
    }
    let has_conditions = stage.before_entry.is_some()
        || stage.on_success.is_some()
        || stage.on_failure.as_ref().is_some_and(|on_failure| {
            on_failure
                .conditions
                .as_ref()
                .is_some_and(|c| !c.is_empty())
        });
    if has_conditions && !v2 {
        return Err(stage_error(
            "Stage level conditions can only be used with V2 pipelines.",
        ));
    }
    Ok(())
}

/// The rules for one action, in order: where its category may appear, that its type exists,
/// `timeoutInMinutes`, artifact counts, configuration, and its own role ARN.
fn check_action(
    stage_index: usize,
    action_index: usize,
    action: &ActionDeclaration,
    registry: &ActionTypeRegistry,
) -> Result<(), ServiceError> {
    let id = &action.action_type_id;
    let is_source = id.category.as_str() == SOURCE_CATEGORY;
    if stage_index == 0 && !is_source {
        return Err(structure_error(
            "Pipeline should start with a stage that only contains source actions",
        ));
    }
    if stage_index > 0 && is_source {
        return Err(structure_error(
            "Source actions can only be included in the first stage of the pipeline",
        ));
    }

    let Some(action_type) = registry.get(id) else {
        return Err(action_error(format!(
            "ActionType (Category: '{}', Provider: '{}', Owner: '{}', Version: '{}') in action \
             '{}' is not available",
            id.category.as_str(),
            id.provider,
            id.owner.as_str(),
            id.version,
            action.name
        )));
    };

    let approval = is_manual_approval(id);
    if let Some(timeout) = action.timeout_in_minutes {
        if !approval {
            return Err(action_error(format!(
                "Action '{}' specifies timeoutInMinutes, which is available only to the manual \
                 approval action type",
                action.name
            )));
        }
        if !(MIN_APPROVAL_TIMEOUT_MINUTES..=MAX_APPROVAL_TIMEOUT_MINUTES).contains(&timeout) {
            return Err(action_error(format!(
                "Action '{}' has timeoutInMinutes {timeout}, which is outside the allowed range \
                 of {MIN_APPROVAL_TIMEOUT_MINUTES} to {MAX_APPROVAL_TIMEOUT_MINUTES} minutes",
                action.name
            )));
        }
    }

    check_artifact_counts(action, action_type)?;
    if is_source
        && action
            .input_artifacts
            .as_ref()
            .is_some_and(|i| !i.is_empty())
    {
        return Err(action_error(format!(
            "Action '{}' is a source action and cannot declare input artifacts",
            action.name
        )));
    }

    check_configuration(action, action_type)?;
    if approval {
        check_approval_configuration(action)?;
    }

    if let Some(role_arn) = &action.role_arn {
        // Coral numbers list members from 1 in validation messages.
        let member = format!(
            "pipeline.stages.{}.member.actions.{}.member.roleArn",
            stage_index + 1,
            action_index + 1
        );
        check_role_arn(role_arn, &member)?;
    }
    Ok(())
}

/// Input and output artifact counts lie within the action type's declared minimum and maximum.
fn check_artifact_counts(
    action: &ActionDeclaration,
    action_type: &ActionType,
) -> Result<(), ServiceError> {
    let kinds = [
        (
            "input",
            action.input_artifacts.as_ref().map_or(0, Vec::len),
            &action_type.input_artifact_details,
        ),
        (
            "output",
            action.output_artifacts.as_ref().map_or(0, Vec::len),
            &action_type.output_artifact_details,
        ),
    ];
    for (kind, count, details) in kinds {
        // Counts are at most a few dozen; a count past `i32::MAX` is above any maximum anyway.
        let count_i32 = i32::try_from(count).unwrap_or(i32::MAX);
        if count_i32 < details.minimum_count {
            return Err(action_error(format!(
                "Action {} declares {count} {kind} artifacts which is less than the minimum \
                 count ({})",
                action.name, details.minimum_count
            )));
        }
        if count_i32 > details.maximum_count {
            return Err(action_error(format!(
                "Action {} declares {count} {kind} artifacts which is greater than the maximum \
                 count ({})",
                action.name, details.maximum_count
            )));
        }
    }
    Ok(())
}

/// Every configuration property the type marks required is present, and no key is present that
/// the type does not declare.
fn check_configuration(
    action: &ActionDeclaration,
    action_type: &ActionType,
) -> Result<(), ServiceError> {
    let properties = action_type
        .action_configuration_properties
        .as_deref()
        .unwrap_or_default();
    let configuration = action.configuration.as_ref();
    for property in properties.iter().filter(|property| property.required) {
        if !configuration.is_some_and(|c| c.contains_key(&property.name)) {
            return Err(action_error(format!(
                "Action configuration for action '{}' is missing required configuration '{}'",
                action.name, property.name
            )));
        }
    }
    for key in configuration.into_iter().flat_map(|c| c.keys()) {
        if !properties.iter().any(|property| &property.name == key) {
            return Err(action_error(format!(
                "Action configuration for action '{}' contains unknown configuration '{key}'",
                action.name
            )));
        }
    }
    Ok(())
}

/// The manual approval's own configuration rules: `CustomData` length, and `NotificationArn` and
/// `ExternalEntityLink` of the right shape. The link must be `http(s)` because the console renders
/// it as a link for reviewers, and a `javascript:` URL there would run in the reviewer's session.
fn check_approval_configuration(action: &ActionDeclaration) -> Result<(), ServiceError> {
    let Some(configuration) = &action.configuration else {
        return Ok(());
    };
    if let Some(custom_data) = configuration.get(CUSTOM_DATA) {
        let chars = custom_data.chars().count();
        if chars > CUSTOM_DATA_MAX_CHARS {
            return Err(action_error(format!(
                "Action configuration for action '{}' has a value for configuration \
                 '{CUSTOM_DATA}' that is {chars} characters long; the maximum is \
                 {CUSTOM_DATA_MAX_CHARS}",
                action.name
            )));
        }
    }
    if let Some(arn) = configuration.get(NOTIFICATION_ARN) {
        if !SNS_TOPIC_ARN.is_match(arn) {
            return Err(action_error(format!(
                "Action configuration for action '{}' has an invalid value for configuration \
                 '{NOTIFICATION_ARN}': '{arn}' is not an SNS topic ARN",
                action.name
            )));
        }
    }
    if let Some(link) = configuration.get(EXTERNAL_ENTITY_LINK) {
        // A link made of variable references is checked once they are resolved, when the
        // approval starts (the engine fails the approval if it is not http(s) then).
        if !link.contains("#{") && !HTTP_URL.is_match(link) {
            return Err(action_error(format!(
                "Action configuration for action '{}' has an invalid value for configuration \
                 '{EXTERNAL_ENTITY_LINK}': '{link}' is not an http or https URL",
                action.name
            )));
        }
    }
    Ok(())
}

fn is_v2(decl: &PipelineDeclaration) -> bool {
    decl.pipeline_type
        .as_ref()
        .is_some_and(|pipeline_type| pipeline_type.as_str() == "V2")
}

fn run_order(action: &ActionDeclaration) -> i32 {
    action.run_order.unwrap_or(DEFAULT_RUN_ORDER)
}

fn structure_error(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorCode::InvalidStructureException, message.into())
}

fn stage_error(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorCode::InvalidStageDeclarationException, message.into())
}

fn action_error(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorCode::InvalidActionDeclarationException, message.into())
}
