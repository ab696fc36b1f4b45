//! Variable references, as CodePipeline writes them in an action's configuration, commands and
//! environment variables: `#{namespace.Name}`. What a reference means is up to the caller's
//! [`Variables`]; the engine resolves against an execution it holds, a job worker against what
//! the API tells it about the job's execution. Both resolve the same text the same way here:
//!
//! - `#{codepipeline.PipelineExecutionId}`: the execution's id;
//! - `#{variables.Name}`: the pipeline-level variable `Name`;
//! - `#{Namespace.Name}`: the output variable `Name` of the succeeded action whose declaration
//!   has `namespace: Namespace`.
//!
//! Text that is not a complete reference (`#{` without a namespace, a dot and a name, or
//! without the closing brace) is kept as it is. A complete reference that cannot be resolved
//! is an error that names it.

use std::collections::BTreeMap;

/// The namespace of the execution's own variables.
pub const CODEPIPELINE: &str = "codepipeline";
/// The namespace of pipeline-level variables.
pub const PIPELINE_VARIABLES: &str = "variables";

/// What references resolve against.
pub trait Variables {
    /// The value of `Name` in `namespace`, if there is one.
    fn lookup(&self, namespace: &str, name: &str) -> Option<&str>;
}

/// The variables of one execution, by value: its id, its pipeline-level variables and the
/// output variables of its succeeded actions by their namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionVariables {
    /// The execution's id (`#{codepipeline.PipelineExecutionId}`).
    pub execution_id: String,
    /// Pipeline-level variables (`#{variables.Name}`).
    pub pipeline: BTreeMap<String, String>,
    /// Output variables by the namespace of the action that reported them.
    pub actions: BTreeMap<String, BTreeMap<String, String>>,
}

impl Variables for ExecutionVariables {
    fn lookup(&self, namespace: &str, name: &str) -> Option<&str> {
        lookup_in(namespace, name, &self.execution_id, &self.pipeline, |ns| {
            self.actions.get(ns)
        })
    }
}

/// Looks `namespace.name` up in the parts of one execution: its id, its pipeline-level
/// variables and, by namespace, the outputs of its succeeded actions. Every [`Variables`] of an
/// execution answers through it, so they cannot differ in what a reference means.
pub fn lookup_in<'a>(
    namespace: &str,
    name: &str,
    execution_id: &'a str,
    pipeline: &'a BTreeMap<String, String>,
    action_outputs: impl FnOnce(&str) -> Option<&'a BTreeMap<String, String>>,
) -> Option<&'a str> {
    match namespace {
        CODEPIPELINE => (name == "PipelineExecutionId").then_some(execution_id),
        PIPELINE_VARIABLES => pipeline.get(name).map(String::as_str),
        _ => action_outputs(namespace)
            .and_then(|vars| vars.get(name))
            .map(String::as_str),
    }
}

/// A reference that could not be resolved, as written (`#{Namespace.Name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved(pub String);

impl Unresolved {
    /// The failure message of action `action`, whose `part` ("configuration", "commands", ...)
    /// holds the reference.
    pub fn message(&self, action: &str, part: &str) -> String {
        format!(
            "The {part} of action {action} refers to the variable {}, which this execution has \
             not produced (no such pipeline variable, or no succeeded action with that \
             namespace reported it)",
            self.0
        )
    }
}

/// Whether `text` may hold a reference (resolving it would change nothing otherwise).
pub fn has_reference(text: &str) -> bool {
    text.contains("#{")
}

/// `text` with every complete reference replaced by its value.
pub fn resolve(text: &str, variables: &impl Variables) -> Result<String, Unresolved> {
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
                let value = variables
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pipeline: &[(&str, &str)], source: &[(&str, &str)]) -> ExecutionVariables {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ExecutionVariables {
            execution_id: "0f1e2d3c-0000-4000-8000-000000000001".into(),
            pipeline: map(pipeline),
            actions: BTreeMap::from([("SourceVariables".to_string(), map(source))]),
        }
    }

    #[test]
    fn references_resolve_from_the_execution_its_variables_and_namespaced_outputs() {
        let s = scope(&[("Env", "prod")], &[("CommitId", "abc123")]);
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
        let s = scope(&[], &[]);
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
        let s = scope(&[], &[]);
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
}
