//! Variable references (`#{Namespace.Name}`) in action configuration, resolved when an action
//! starts: into the job a worker receives and the approval a reviewer reads; a reference that
//! cannot be resolved fails the action with a message that names it.

use std::collections::BTreeMap;

use lockgate_shapes::{ActionExecutionStatus as Action, PipelineExecutionStatus as Execution};

use crate::harness::Harness;
use crate::pipelines::{approval, job, pipeline, source, stage};

fn with_config(
    mut action: lockgate_shapes::ActionDeclaration,
    entries: &[(&str, &str)],
) -> lockgate_shapes::ActionDeclaration {
    let config = action.configuration.get_or_insert_with(BTreeMap::new);
    for (k, v) in entries {
        config.insert(k.to_string(), v.to_string());
    }
    action
}

fn release(review: &str) -> lockgate_shapes::PipelineDeclaration {
    let mut checkout = source("Checkout");
    checkout.namespace = Some("SourceVariables".to_string());
    pipeline(vec![
        stage("Source", vec![checkout]),
        stage(
            "Approve",
            vec![with_config(approval("Approval"), &[("CustomData", review)])],
        ),
        stage(
            "Deploy",
            vec![with_config(
                job("Deploy"),
                &[("Command", "deploy #{SourceVariables.CommitId}")],
            )],
        ),
    ])
}

#[test]
fn references_resolve_into_the_approval_and_the_next_job() {
    let mut h = Harness::new(release(
        "Review #{SourceVariables.CommitId} of #{codepipeline.PipelineExecutionId}",
    ));
    let id = h.latest();
    let checkout = h.job_for(&id, "Source", "Checkout");
    h.succeed_job_with_variables(&checkout, &[("CommitId", "abc123")])
        .expect("the source succeeds");

    let approval = h
        .run(&id, "Approve", "Approval")
        .expect("the approval runs");
    assert_eq!(approval.status, Action::InProgress);
    assert_eq!(
        approval
            .resolved_configuration
            .as_ref()
            .and_then(|c| c.get("CustomData"))
            .map(String::as_str),
        Some(format!("Review abc123 of {id}").as_str())
    );

    crate::approve(&mut h, &id, "Approve", "Approval");
    let deploy = h.job_for(&id, "Deploy", "Deploy");
    assert_eq!(
        h.job_configuration(&deploy)
            .and_then(|c| c.get("Command").cloned())
            .as_deref(),
        Some("deploy abc123")
    );
    // The declaration itself keeps the references.
    let declared = &h.state().entry.declaration.stages[2].actions[0];
    assert_eq!(
        declared
            .configuration
            .as_ref()
            .and_then(|c| c.get("Command"))
            .map(String::as_str),
        Some("deploy #{SourceVariables.CommitId}")
    );
}

#[test]
fn an_unresolvable_reference_fails_the_action_naming_it() {
    let mut h = Harness::new(release("Review #{Build.VERSION}"));
    let id = h.latest();
    let checkout = h.job_for(&id, "Source", "Checkout");
    h.succeed_job_with_variables(&checkout, &[("CommitId", "abc123")])
        .expect("the source succeeds");

    let approval = h.run(&id, "Approve", "Approval").expect("the approval ran");
    assert_eq!(approval.status, Action::Failed);
    assert!(approval.token.is_none() && approval.deadline.is_none());
    let (code, message) = approval.error.clone().expect("an error");
    assert_eq!(code, "VariableResolutionFailed");
    assert!(message.contains("#{Build.VERSION}"), "{message}");
    assert_eq!(h.status(&id), Execution::Failed);
    assert!(
        h.last().notices.is_empty(),
        "an approval that never waited sends nothing"
    );
}

#[test]
fn a_variable_that_makes_the_review_link_other_than_http_fails_the_approval() {
    let mut checkout = source("Checkout");
    checkout.namespace = Some("SourceVariables".to_string());
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![checkout]),
        stage(
            "Approve",
            vec![with_config(
                approval("Approval"),
                &[("ExternalEntityLink", "#{SourceVariables.Link}")],
            )],
        ),
    ]));
    let id = h.latest();
    let checkout = h.job_for(&id, "Source", "Checkout");
    h.succeed_job_with_variables(&checkout, &[("Link", "javascript:alert(1)")])
        .expect("the source succeeds");
    let approval = h.run(&id, "Approve", "Approval").expect("the approval ran");
    assert_eq!(approval.status, Action::Failed);
    assert!(approval
        .error
        .as_ref()
        .is_some_and(|(_, m)| m.contains("not an http or https URL")));
}
