//! The rules a V2 stage's conditions must follow on `CreatePipeline` and `UpdatePipeline`, as
//! CodePipeline's user guide ("Stage conditions", "How do stage conditions work?") states them:
//!
//! - `beforeEntry` conditions end in FAIL or SKIP, `onSuccess` conditions in ROLLBACK or FAIL,
//!   `onFailure` conditions in ROLLBACK; `onFailure` itself ends in ROLLBACK or RETRY, and
//!   automatic retry (RETRY, `retryConfiguration`) cannot be combined with `onFailure` conditions.
//! - A condition has rules; rule names are unique within it; each rule names a type of the rule
//!   catalogue ([`crate::rule_types`]) and holds that type's required configuration and no
//!   other, its input artifacts within the type's bounds and produced by an earlier stage (or,
//!   for `onSuccess` and `onFailure` conditions, by the stage itself).
//! - Only the Commands rule takes `commands`, and it needs them; only LambdaInvoke and
//!   VariableCheck rules may be used in a condition that SKIPs the stage; a VariableCheck's
//!   operator is one the rule knows.
//!
//! Violations answer `InvalidStageDeclarationException` (an input artifact nobody produces:
//! `InvalidStructureException`, as for actions).

use std::collections::HashSet;

use lockgate_shapes::{
    Condition, ErrorCode, Result as ConditionResult, RuleDeclaration, ServiceError,
    StageDeclaration,
};

use crate::rule_types::{find_rule_type, rule_type_key};

/// The rules that may decide a condition whose result is SKIP.
const SKIP_RULES: &[&str] = &["LambdaInvoke", "VariableCheck"];
/// The operators a VariableCheck rule compares with.
pub const VARIABLE_CHECK_OPERATORS: &[&str] = &[
    "EQ",
    "NE",
    "CONTAINS",
    "MATCHES",
    "GREATER_THAN",
    "LESS_THAN",
];
/// The rule type whose rules take shell commands.
const COMMANDS_RULE: &str = "Commands";

/// Checks the conditions of stage `stage_index`; `producer` tells which stage's action outputs
/// an artifact.
pub fn check_stage_conditions(
    stage: &StageDeclaration,
    stage_index: usize,
    producer: &dyn Fn(&str) -> Option<usize>,
) -> Result<(), ServiceError> {
    use ConditionResult::{Fail, Retry, Rollback, Skip};
    // Entry conditions are checked before the stage runs, the others after.
    let before = |name: &str| producer(name).is_some_and(|s| s < stage_index);
    let produced_before: &dyn Fn(&str) -> bool =
        &|name| producer(name).is_some_and(|s| s <= stage_index);
    if let Some(entry) = &stage.before_entry {
        check_conditions(
            stage,
            "beforeEntry",
            &entry.conditions,
            &[Fail, Skip],
            &before,
        )?;
    }
    if let Some(success) = &stage.on_success {
        check_conditions(
            stage,
            "onSuccess",
            &success.conditions,
            &[Rollback, Fail],
            produced_before,
        )?;
    }
    if let Some(failure) = &stage.on_failure {
        if let Some(result) = &failure.result {
            if !matches!(result, Rollback | Retry) {
                return Err(stage_error(format!(
                    "Stage '{}': onFailure result {} is not supported; use ROLLBACK or RETRY",
                    stage.name,
                    result.as_str()
                )));
            }
        }
        let retries = failure.result == Some(Retry);
        if failure.retry_configuration.is_some() && !retries {
            return Err(stage_error(format!(
                "Stage '{}': onFailure retryConfiguration needs the result RETRY",
                stage.name
            )));
        }
        let conditions = failure.conditions.as_deref().unwrap_or_default();
        if retries && !conditions.is_empty() {
            return Err(stage_error(format!(
                "Stage '{}': automatic stage retry (onFailure result RETRY) cannot be used with \
                 onFailure conditions",
                stage.name
            )));
        }
        check_conditions(stage, "onFailure", conditions, &[Rollback], produced_before)?;
    }
    Ok(())
}

/// The conditions of one kind (`beforeEntry`, ...): their results and their rules.
fn check_conditions(
    stage: &StageDeclaration,
    kind: &str,
    conditions: &[Condition],
    results: &[ConditionResult],
    produced_before: &dyn Fn(&str) -> bool,
) -> Result<(), ServiceError> {
    for condition in conditions {
        if let Some(result) = &condition.result {
            if !results.contains(result) {
                let allowed: Vec<&str> = results.iter().map(ConditionResult::as_str).collect();
                return Err(stage_error(format!(
                    "Stage '{}': the {kind} condition cannot have the result {}; it may be {}",
                    stage.name,
                    result.as_str(),
                    allowed.join(" or ")
                )));
            }
        }
        let rules = condition.rules.as_deref().unwrap_or_default();
        if rules.is_empty() {
            return Err(stage_error(format!(
                "Stage '{}': the {kind} condition must contain at least one rule",
                stage.name
            )));
        }
        let mut names = HashSet::new();
        for rule in rules {
            if !names.insert(rule.name.as_str()) {
                return Err(stage_error(format!(
                    "Stage '{}': rule name '{}' is used more than once in its {kind} condition",
                    stage.name, rule.name
                )));
            }
            let skips = condition.result == Some(ConditionResult::Skip);
            check_rule(stage, kind, rule, skips, produced_before)?;
        }
    }
    Ok(())
}

/// One rule: its type exists, its configuration, commands and input artifacts fit the type.
fn check_rule(
    stage: &StageDeclaration,
    kind: &str,
    rule: &RuleDeclaration,
    skips: bool,
    produced_before: &dyn Fn(&str) -> bool,
) -> Result<(), ServiceError> {
    let at = format!("rule '{}' of stage '{}'", rule.name, stage.name);
    let Some(entry) = find_rule_type(&rule.rule_type_id) else {
        return Err(stage_error(format!(
            "Rule type {} of {at} is not found; ListRuleTypes lists the rule types",
            rule_type_key(&rule.rule_type_id)
        )));
    };
    let rule_type = &entry.rule_type;
    let provider = rule_type.id.provider.as_str();
    if skips && !SKIP_RULES.contains(&provider) {
        return Err(stage_error(format!(
            "The {provider} {at} cannot be used in the {kind} condition with the result SKIP; \
             only LambdaInvoke and VariableCheck rules can"
        )));
    }
    let properties = rule_type
        .rule_configuration_properties
        .as_deref()
        .unwrap_or_default();
    let configuration = rule.configuration.as_ref();
    for property in properties.iter().filter(|p| p.required) {
        if !configuration.is_some_and(|c| c.contains_key(&property.name)) {
            return Err(stage_error(format!(
                "Rule configuration for {at} is missing required configuration '{}'",
                property.name
            )));
        }
    }
    for key in configuration.into_iter().flat_map(|c| c.keys()) {
        if !properties.iter().any(|p| &p.name == key) {
            return Err(stage_error(format!(
                "Rule configuration for {at} contains unknown configuration '{key}'"
            )));
        }
    }
    let commands = rule.commands.as_deref().unwrap_or_default();
    match (provider == COMMANDS_RULE, commands.is_empty()) {
        (true, true) => return Err(stage_error(format!("The Commands {at} must have commands"))),
        (false, false) => {
            return Err(stage_error(format!(
                "The {provider} {at} cannot have commands; only Commands rules run commands"
            )))
        }
        _ => {}
    }
    if provider == "VariableCheck" {
        let operator = configuration
            .and_then(|c| c.get("Operator"))
            .map(String::as_str)
            .unwrap_or_default();
        if !VARIABLE_CHECK_OPERATORS.contains(&operator) {
            return Err(stage_error(format!(
                "The Operator of {at} must be one of {}, not '{operator}'",
                VARIABLE_CHECK_OPERATORS.join(", ")
            )));
        }
    }
    let inputs = rule.input_artifacts.as_deref().unwrap_or_default();
    let details = &rule_type.input_artifact_details;
    let count = i32::try_from(inputs.len()).unwrap_or(i32::MAX);
    if count < details.minimum_count || count > details.maximum_count {
        return Err(stage_error(format!(
            "The {at} declares {count} input artifacts; a {provider} rule takes {} to {}",
            details.minimum_count, details.maximum_count
        )));
    }
    if let Some(input) = inputs.iter().find(|i| !produced_before(&i.name)) {
        return Err(ServiceError::new(
            ErrorCode::InvalidStructureException,
            format!(
                "Input Artifact Bundle {} in {at} is not declared as an output artifact of any \
                 action that runs before the {kind} condition",
                input.name
            ),
        ));
    }
    Ok(())
}

fn stage_error(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorCode::InvalidStageDeclarationException, message.into())
}
