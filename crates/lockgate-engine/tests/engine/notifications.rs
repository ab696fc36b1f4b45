//! Approval notifications as the engine sees them: the outbox row an approval event writes in
//! the same commit as the state change, the approval-needed row a decision takes back, and
//! NotificationArns the server has no topic for (accepted, as CodePipeline accepts them).

use lockgate_engine::Clock;
use lockgate_model::notice::{ApprovalNotice, NoticeKind};

use crate::*;

/// The standard pipeline whose approval notifies `topic`.
fn notifying(name: &str, topic: &str) -> PipelineDeclaration {
    let mut decl = standard(name);
    decl.stages[1].actions[0]
        .configuration
        .get_or_insert_with(Default::default)
        .insert("NotificationArn".to_string(), topic.to_string());
    decl
}

fn notice(row: &lockgate_store::Record) -> ApprovalNotice {
    serde_json::from_value(row.body.value()["notice"].clone()).expect("an approval notice")
}

/// Creates the notifying pipeline and runs its source, so its approval waits; returns the
/// approval's token.
async fn waiting(env: &TestEnv, name: &str) -> String {
    env.create(notifying(name, TOPIC)).await;
    env.run_source("r1").await;
    env.token(name, "Approve", "Approval").await
}

#[tokio::test]
async fn an_approval_that_starts_commits_its_approval_needed_message_with_it() {
    let mut env = TestEnv::new().await;
    let token = waiting(&env, "p").await;
    // What a restart finds is what was committed with the approval.
    env.reload().await;

    let rows = env.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let action = env.action("p", "Approve", "Approval").await;
    let aeid = action.action_execution_id.expect("an action execution id");
    assert_eq!(rows[0].key, format!("{aeid}/approval-needed"));
    assert_eq!(rows[0].parent.as_deref(), Some("p"));
    assert_eq!(rows[0].due_at, Some(env.clock.now_millis()));
    let n = notice(&rows[0]);
    assert_eq!(n.kind, NoticeKind::ApprovalNeeded);
    assert_eq!(n.topic_arn, TOPIC);
    assert_eq!(n.region, REGION);
    assert_eq!(
        (
            n.pipeline_name.as_str(),
            n.stage_name.as_str(),
            n.action_name.as_str()
        ),
        ("p", "Approve", "Approval")
    );
    assert_eq!(n.token, token);
    assert_eq!(n.expires, env.clock.now_millis() + 7 * DAY);
    assert_eq!(n.custom_data.as_deref(), Some("Please review"));
    assert_eq!(n.external_entity_link.as_deref(), Some(REVIEW_URL));
}

#[tokio::test]
async fn an_approval_decided_before_its_message_went_out_leaves_only_the_decision() {
    let env = TestEnv::new().await;
    let token = waiting(&env, "p").await;
    env.approve("p", "Approve", "Approval", &token).await;

    let rows = env.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].key.ends_with("/approved"), "{}", rows[0].key);
    let n = notice(&rows[0]);
    assert_eq!(n.kind, NoticeKind::Approved);
    assert_eq!(n.decided_by.as_deref(), Some(BOB));
    assert_eq!(n.summary.as_deref(), Some("Approved by Bob"));
    assert_eq!(n.token, token);
}

#[tokio::test]
async fn a_rejection_is_recorded_with_who_rejected_it() {
    let env = TestEnv::new().await;
    let token = waiting(&env, "p").await;
    env.answer("p", "Approve", "Approval", &token, ApprovalStatus::Rejected)
        .await
        .expect("the rejection is accepted");

    let rows = env.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let n = notice(&rows[0]);
    assert_eq!(n.kind, NoticeKind::Rejected);
    assert_eq!(n.decided_by.as_deref(), Some(BOB));
}

#[tokio::test]
async fn an_expired_approval_replaces_its_approval_needed_message_with_the_expiry() {
    let env = TestEnv::new().await;
    waiting(&env, "p").await;
    env.clock.advance(7 * DAY + MINUTE);
    assert_eq!(env.svc.fire_due_deadlines().await, 1);

    let rows = env.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let n = notice(&rows[0]);
    assert_eq!(n.kind, NoticeKind::Expired);
    assert_eq!(n.decided_by, None);
    assert_eq!(n.expires, START_MILLIS + 7 * DAY);
}

#[tokio::test]
async fn a_stopped_approval_takes_back_its_unsent_message_and_sends_nothing() {
    let env = TestEnv::new().await;
    waiting(&env, "p").await;
    let id = env.only_execution("p").await;
    env.stop("p", &id, false)
        .await
        .expect("the execution stops");

    assert_eq!(env.outbox().await, Vec::new());
}

#[tokio::test]
async fn an_approval_without_a_notification_arn_writes_nothing_to_the_outbox() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    env.approve_pending("p").await;

    assert_eq!(env.outbox().await, Vec::new());
}

/// CodePipeline accepts any SNS topic in `NotificationArn`; so does Lockgate, with a warning in
/// the log when no `[[topics]]` entry (nor a catch-all) would deliver it. The approval's messages
/// are written to the outbox all the same: the relay keeps them as failed deliveries, with the
/// reason, where the console's Notifications page shows them.
#[tokio::test]
async fn create_pipeline_accepts_a_notification_arn_the_server_has_no_topic_for() {
    let env = TestEnv::new().await;
    let unknown = "arn:aws:sns:us-east-1:123456789012:nobody-listens";
    env.create(notifying("p", unknown)).await;
    env.run_source("r1").await;
    env.token("p", "Approve", "Approval").await;

    let rows = env.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(notice(&rows[0]).topic_arn, unknown);
}

#[tokio::test]
async fn update_pipeline_accepts_a_notification_arn_the_server_has_no_topic_for() {
    let env = TestEnv::new().await;
    env.create(standard("p")).await;
    let unknown = "arn:aws:sns:us-east-1:123456789012:nobody-listens";
    env.svc
        .update_pipeline(
            &env.caller,
            UpdatePipelineInput {
                pipeline: notifying("p", unknown),
            },
        )
        .await
        .expect("the update is accepted");

    let current = env
        .svc
        .pipeline("p")
        .await
        .expect("the pipeline")
        .entry
        .clone();
    assert_eq!(current.version(), 2);
    assert_eq!(
        current.declaration.stages[1].actions[0]
            .configuration
            .as_ref()
            .and_then(|c| c.get("NotificationArn"))
            .map(String::as_str),
        Some(unknown)
    );
}

#[tokio::test]
async fn deleting_a_pipeline_takes_back_its_undelivered_messages() {
    let env = TestEnv::new().await;
    waiting(&env, "p").await;
    assert_eq!(env.outbox().await.len(), 1);
    env.svc
        .delete_pipeline(
            &env.caller,
            DeletePipelineInput {
                name: "p".to_string(),
            },
        )
        .await
        .expect("the pipeline is deleted");

    assert_eq!(env.outbox().await, Vec::new());
}

/// What a reviewer is told carries the values the approval started with: its variable
/// references resolved from the source's output variables, in the outbox message, in
/// ListActionExecutions' `resolvedConfiguration` and in what the console shows.
#[tokio::test]
async fn an_approval_message_carries_its_resolved_variables() {
    let env = TestEnv::new().await;
    let mut decl = notifying("p", TOPIC);
    decl.stages[0].actions[0].namespace = Some("SourceVariables".to_string());
    let approval = decl.stages[1].actions[0]
        .configuration
        .get_or_insert_with(Default::default);
    approval.insert(
        "CustomData".to_string(),
        "Review commit #{SourceVariables.CommitId}".to_string(),
    );
    approval.insert(
        "ExternalEntityLink".to_string(),
        "https://git.example.com/commit/#{SourceVariables.CommitId}".to_string(),
    );
    env.create(decl).await;
    let job = env.take_job(&local_source()).await;
    env.svc
        .put_job_success_result(
            &env.caller,
            PutJobSuccessResultInput {
                job_id: job.id.clone().unwrap_or_default(),
                output_variables: Some([("CommitId".to_string(), "abc123".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .expect("the source succeeds");

    let rows = env.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let n = notice(&rows[0]);
    assert_eq!(n.custom_data.as_deref(), Some("Review commit abc123"));
    assert_eq!(
        n.external_entity_link.as_deref(),
        Some("https://git.example.com/commit/abc123")
    );

    let resolved = env
        .svc
        .resolved_configurations("p")
        .await
        .expect("the pipeline");
    let shown = &resolved[&("Approve".to_string(), "Approval".to_string())];
    assert_eq!(shown["CustomData"], "Review commit abc123");

    let details = env
        .svc
        .list_action_executions(
            &env.caller,
            ListActionExecutionsInput {
                pipeline_name: "p".to_string(),
                ..Default::default()
            },
        )
        .await
        .expect("listed")
        .action_execution_details
        .unwrap_or_default();
    let approval = details
        .iter()
        .find(|d| d.action_name.as_deref() == Some("Approval"))
        .and_then(|d| d.input.as_ref())
        .expect("the approval's input");
    assert_eq!(
        approval
            .resolved_configuration
            .as_ref()
            .and_then(|c| c.get("CustomData"))
            .map(String::as_str),
        Some("Review commit abc123")
    );
    assert_eq!(
        approval
            .configuration
            .as_ref()
            .and_then(|c| c.get("CustomData"))
            .map(String::as_str),
        Some("Review commit #{SourceVariables.CommitId}")
    );
    let state = env.state("p").await;
    let entity_url = state.stage_states.unwrap_or_default()[1]
        .action_states
        .as_ref()
        .and_then(|a| a[0].entity_url.clone());
    assert_eq!(
        entity_url.as_deref(),
        Some("https://git.example.com/commit/abc123")
    );
}

/// Approvals naming a topic nobody is subscribed to are listed for the console from the moment
/// their pipeline is created, and leave the list when an update names a known topic or the
/// pipeline is deleted.
#[tokio::test]
async fn approvals_naming_unheard_topics_are_listed_until_fixed_or_deleted() {
    let env = TestEnv::new().await;
    let unknown = "arn:aws:sns:us-east-1:123456789012:nobody-listens";
    env.create(notifying("p", unknown)).await;
    env.create(notifying("q", TOPIC)).await;
    let listed = env.svc.unheard_topics();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].pipeline.as_str(),
            listed[0].stage.as_str(),
            listed[0].action.as_str(),
            listed[0].topic.as_str()
        ),
        ("p", "Approve", "Approval", unknown)
    );

    env.svc
        .update_pipeline(
            &env.caller,
            UpdatePipelineInput {
                pipeline: notifying("p", TOPIC),
            },
        )
        .await
        .expect("updated");
    assert!(env.svc.unheard_topics().is_empty());

    env.create(notifying("r", unknown)).await;
    assert_eq!(env.svc.unheard_topics().len(), 1);
    env.svc
        .delete_pipeline(
            &env.caller,
            DeletePipelineInput {
                name: "r".to_string(),
            },
        )
        .await
        .expect("deleted");
    assert!(env.svc.unheard_topics().is_empty());
}
