//! Variable references in an action's configuration, resolved when the action starts, as
//! CodePipeline resolves them: `#{namespace.Name}` is replaced by
//!
//! - `#{codepipeline.PipelineExecutionId}`: the execution's id;
//! - `#{variables.Name}`: the pipeline-level variable `Name` of this execution (its declared
//!   default or the value StartPipelineExecution gave);
//! - `#{Namespace.Name}`: the output variable `Name` of the action whose declaration has
//!   `namespace: Namespace`, as that action reported it in this execution (a job worker's
//!   `outputVariables`).
//!
//! Text that is not a complete reference (`#{` without a namespace, a dot and a name, or
//! without the closing brace) is kept as it is. A complete reference that cannot be resolved
//! fails the action, with a message that names it.

use std::collections::BTreeMap;

use lockgate_shapes::{ActionExecutionStatus, PipelineDeclaration};

use crate::state::Execution;

/// The namespace of the execution's own variables.
const CODEPIPELINE: &str = "codepipeline";
/// The namespace of pipeline-level variables.
const PIPELINE_VARIABLES: &str = "variables";

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

    fn lookup(&self, namespace: &str, name: &str) -> Option<&str> {
        match namespace {
            CODEPIPELINE => (name == "PipelineExecutionId").then_some(self.execution_id),
            PIPELINE_VARIABLES => self.pipeline.get(name).map(String::as_str),
            _ => self
                .actions
                .get(namespace)
                .and_then(|vars| vars.get(name))
                .map(String::as_str),
        }
    }
}

/// A reference that could not be resolved, as written (`#{Namespace.Name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unresolved(pub String);

impl Unresolved {
    /// The action's failure message.
    pub(super) fn message(&self, action: &str) -> String {
        format!(
            "The configuration of action {action} refers to the variable {}, which this \
             execution has not produced (no such pipeline variable, or no succeeded action with \
             that namespace reported it)",
            self.0
        )
    }
}

/// `text` with every complete reference replaced by its value.
pub(super) fn resolve(text: &str, scope: &Scope<'_>) -> Result<String, Unresolved> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let reference = after.find('}').and_then(|end| {
            let (namespace, name) = after[..end].split_once('.')?;
            let valid = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'-' | b'_'))
            };
            (valid(namespace) && valid(name)).then_some((namespace, name, end))
        });
        match reference {
            Some((namespace, name, end)) => {
                let value = scope
                    .lookup(namespace, name)
                    .ok_or_else(|| Unresolved(format!("#{{{namespace}.{name}}}")))?;
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("#{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
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
    if !configuration.values().any(|v| v.contains("#{")) {
        return Ok(None);
    }
    let resolved = configuration
        .iter()
        .map(|(key, value)| Ok((key.clone(), resolve(value, scope)?)))
        .collect::<Result<BTreeMap<_, _>, Unresolved>>()?;
    Ok((&resolved != configuration).then_some(resolved))
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
    fn references_resolve_from_the_execution_its_variables_and_namespaced_outputs() {
        let pipeline = BTreeMap::from([("Env".to_string(), "prod".to_string())]);
        let source = BTreeMap::from([("CommitId".to_string(), "abc123".to_string())]);
        let s = scope(&pipeline, &source);
        assert_eq!(
            resolve(
                "Review #{SourceVariables.CommitId} for #{variables.Env} (#{codepipeline.PipelineExecutionId})",
                &s
            ),
            Ok("Review abc123 for prod (0f1e2d3c-0000-4000-8000-000000000001)".to_string())
        );
        assert_eq!(resolve("no references", &s), Ok("no references".into()));
    }

    #[test]
    fn incomplete_references_stay_as_written() {
        let empty = BTreeMap::new();
        let s = scope(&empty, &empty);
        for text in [
            "#{",
            "#{x}",
            "#{.y}",
            "#{x.}",
            "#{a.b",
            "a #{b c.d} e",
            "##{",
        ] {
            assert_eq!(resolve(text, &s), Ok(text.to_string()), "{text}");
        }
    }

    #[test]
    fn an_unresolvable_reference_is_named() {
        let empty = BTreeMap::new();
        let s = scope(&empty, &empty);
        assert_eq!(
            resolve("x #{SourceVariables.CommitId} y", &s),
            Err(Unresolved("#{SourceVariables.CommitId}".into()))
        );
        assert_eq!(
            resolve("#{Build.VERSION}", &s),
            Err(Unresolved("#{Build.VERSION}".into()))
        );
        assert_eq!(
            resolve("#{codepipeline.Nope}", &s),
            Err(Unresolved("#{codepipeline.Nope}".into()))
        );
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
    }
}
