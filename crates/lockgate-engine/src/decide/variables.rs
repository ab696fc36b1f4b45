//! Variable references in an action's configuration, commands and environment variables,
//! resolved when the action starts (`lockgate_model::variables` says what they mean): the
//! configuration is kept resolved in the run; commands and environment variables are only
//! checked here (the worker that runs them resolves them itself through the API), so an action
//! that refers to a variable its execution has not produced fails as it starts, naming it.

use std::collections::BTreeMap;

use lockgate_model::variables::{has_reference, lookup_in, resolve, Unresolved, Variables};
use lockgate_shapes::{ActionDeclaration, ActionExecutionStatus, PipelineDeclaration};

use crate::state::Execution;

/// What references resolve against: one execution at one moment.
pub(super) struct Scope<'a> {
    execution_id: &'a str,
    pipeline: &'a BTreeMap<String, String>,
    /// Output variables by the namespace of the action that reported them.
    actions: BTreeMap<&'a str, &'a BTreeMap<String, String>>,
}

impl<'a> Scope<'a> {
    /// The variables execution `e` of pipeline `decl` has produced so far: its id, its
    /// pipeline-level variables and the output variables of its succeeded actions that have a
    /// namespace.
    pub(super) fn of(e: &'a Execution, decl: &'a PipelineDeclaration) -> Scope<'a> {
        let mut actions = BTreeMap::new();
        for (stage, run) in decl.stages.iter().zip(&e.stages) {
            let Some(run) = run else { continue };
            for action in run.actions.iter().flatten() {
                let namespace = stage
                    .actions
                    .get(action.action_index)
                    .and_then(|a| a.namespace.as_deref());
                if let (Some(namespace), ActionExecutionStatus::Succeeded) =
                    (namespace, action.status)
                {
                    actions.insert(namespace, &action.output_variables);
                }
            }
        }
        Scope {
            execution_id: e.id.as_str(),
            pipeline: &e.variables,
            actions,
        }
    }
}

impl Variables for Scope<'_> {
    fn lookup(&self, namespace: &str, name: &str) -> Option<&str> {
        lookup_in(namespace, name, self.execution_id, self.pipeline, |ns| {
            self.actions.get(ns).copied()
        })
    }
}

/// Every value of `configuration` resolved; `None` when nothing in it was a reference (the
/// declared configuration is then the resolved one, and nothing needs keeping).
pub(super) fn resolve_configuration(
    configuration: Option<&BTreeMap<String, String>>,
    scope: &Scope<'_>,
) -> Result<Option<BTreeMap<String, String>>, Unresolved> {
    let Some(configuration) = configuration else {
        return Ok(None);
    };
    if !configuration.values().any(|v| has_reference(v)) {
        return Ok(None);
    }
    let resolved = configuration
        .iter()
        .map(|(key, value)| Ok((key.clone(), resolve(value, scope)?)))
        .collect::<Result<BTreeMap<_, _>, Unresolved>>()?;
    Ok((&resolved != configuration).then_some(resolved))
}

/// Checks that the references in `action`'s commands and environment variables resolve; the
/// failure message names the first that does not.
pub(super) fn check_commands(action: &ActionDeclaration, scope: &Scope<'_>) -> Result<(), String> {
    for command in action.commands.iter().flatten() {
        resolve(command, scope).map_err(|u| u.message(&action.name, "commands"))?;
    }
    for variable in action.environment_variables.iter().flatten() {
        resolve(&variable.value, scope)
            .map_err(|u| u.message(&action.name, "environment variables"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(
        pipeline: &'a BTreeMap<String, String>,
        source: &'a BTreeMap<String, String>,
    ) -> Scope<'a> {
        Scope {
            execution_id: "0f1e2d3c-0000-4000-8000-000000000001",
            pipeline,
            actions: BTreeMap::from([("SourceVariables", source)]),
        }
    }

    #[test]
    fn a_configuration_without_references_needs_no_copy() {
        let pipeline = BTreeMap::from([("Env".to_string(), "prod".to_string())]);
        let empty = BTreeMap::new();
        let s = scope(&pipeline, &empty);
        let plain = BTreeMap::from([("ProjectName".to_string(), "build".to_string())]);
        assert_eq!(resolve_configuration(Some(&plain), &s), Ok(None));
        assert_eq!(resolve_configuration(None, &s), Ok(None));
        let with = BTreeMap::from([("Stage".to_string(), "#{variables.Env}".to_string())]);
        assert_eq!(
            resolve_configuration(Some(&with), &s),
            Ok(Some(BTreeMap::from([(
                "Stage".to_string(),
                "prod".to_string()
            )])))
        );
        assert_eq!(
            s.lookup("codepipeline", "PipelineExecutionId"),
            Some("0f1e2d3c-0000-4000-8000-000000000001")
        );
    }
}
