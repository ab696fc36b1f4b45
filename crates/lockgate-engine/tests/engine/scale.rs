//! Cost that does not grow with the installation: the engine suite runs with a one-pipeline
//! cache, so every test that touches two pipelines reads one back from the store. These tests
//! pin down what that must not change: an evicted pipeline answers exactly as before, its
//! deadlines fire on time, a restart reads no pipeline and still fires what fell due while it
//! was down, and pages stay exact while pipelines and executions are written between them.

use std::collections::BTreeSet;

use lockgate_engine::FINISHED_EXECUTIONS_IN_MEMORY;
use lockgate_shapes::{
    ApprovalStatus, CodePipelineService, GetPipelineStateInput, ListActionExecutionsInput,
    ListPipelineExecutionsInput, ListPipelinesInput,
};

use crate::*;

/// Everything a client can read about a pipeline, as JSON, for before/after comparisons.
async fn everything(env: &TestEnv, name: &str) -> serde_json::Value {
    let state = env
        .svc
        .get_pipeline_state(
            &env.caller,
            GetPipelineStateInput {
                name: name.to_string(),
            },
        )
        .await
        .expect("the state is read");
    let executions = env.executions(name).await;
    let actions = env
        .svc
        .list_action_executions(
            &env.caller,
            ListActionExecutionsInput {
                pipeline_name: name.to_string(),
                ..Default::default()
            },
        )
        .await
        .expect("action executions are listed");
    serde_json::json!({
        "state": serde_json::to_value(&state).expect("serialises"),
        "executions": serde_json::to_value(&executions).expect("serialises"),
        "actions": serde_json::to_value(&actions).expect("serialises"),
    })
}

#[tokio::test]
async fn an_evicted_pipeline_answers_exactly_as_before() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("first").await;
    env.approve_pending("first").await;
    env.run_shell().await;
    env.start("first").await;
    env.run_source("r2").await;
    let before = everything(&env, "first").await;

    // A second pipeline takes the one place in memory.
    env.standard_waiting_for_approval("second").await;
    assert_eq!(env.svc.pipelines_in_memory(), 1);

    assert_eq!(everything(&env, "first").await, before);
    // And it keeps working from the state it was read back into.
    env.approve_pending("first").await;
    env.run_shell().await;
    assert_eq!(
        env.executions("first").await[0].status,
        Some(PipelineExecutionStatus::Succeeded)
    );
}

#[tokio::test]
async fn the_deadline_of_an_evicted_pipeline_fires_on_time() {
    let env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("waiting").await;
    env.standard_waiting_for_approval("other").await;
    assert_eq!(
        env.svc.deadlines_in_memory(),
        0,
        "seven days away: only in the store"
    );

    env.clock.advance(7 * DAY - 1);
    env.svc.fire_due_deadlines().await;
    assert_eq!(
        env.status("waiting", &id).await,
        PipelineExecutionStatus::InProgress
    );
    env.clock.advance(1);
    assert_eq!(
        env.svc.fire_due_deadlines().await,
        2,
        "both approvals expire"
    );
    assert_eq!(
        env.status("waiting", &id).await,
        PipelineExecutionStatus::Failed
    );
    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 0);
}

#[tokio::test]
async fn a_restart_reads_no_pipeline_and_fires_deadlines_that_fell_due_while_down() {
    let mut env = TestEnv::new().await;
    let id = env.standard_waiting_for_approval("p").await;
    env.reload().await;
    assert_eq!(
        env.svc.pipelines_in_memory(),
        0,
        "start-up reads no pipeline"
    );

    env.clock.advance(8 * DAY);
    assert_eq!(env.svc.fire_due_deadlines().await, 1);
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn list_pipelines_pages_skip_and_repeat_nothing_while_pipelines_come_and_go() {
    let env = TestEnv::new().await;
    let stable: BTreeSet<String> = (0..12).map(|i| format!("p{i:02}")).collect();
    for name in &stable {
        env.create(standard(name)).await;
    }
    let mut seen = Vec::new();
    let mut next_token = None;
    let mut round = 0;
    loop {
        let page = env
            .svc
            .list_pipelines(
                &env.caller,
                ListPipelinesInput {
                    next_token: next_token.clone(),
                    max_results: Some(5),
                },
            )
            .await
            .expect("a page");
        seen.extend(
            page.pipelines
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.name),
        );
        // Between pages: new pipelines before and after the cursor, and a deletion.
        env.create(standard(&format!("a-new-{round}"))).await;
        env.create(standard(&format!("z-new-{round}"))).await;
        round += 1;
        match page.next_token {
            Some(t) => next_token = Some(t),
            None => break,
        }
    }
    let listed: Vec<&String> = seen.iter().filter(|n| stable.contains(*n)).collect();
    assert_eq!(
        listed,
        stable.iter().collect::<Vec<_>>(),
        "each once, in order"
    );
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated");
}

#[tokio::test]
async fn execution_pages_from_the_store_skip_and_repeat_nothing_while_executions_start() {
    let env = TestEnv::new().await;
    let mut ids = vec![env.standard_waiting_for_approval("long").await];
    for _ in 0..FINISHED_EXECUTIONS_IN_MEMORY + 15 {
        let token = env.token("long", "Approve", "Approval").await;
        env.answer(
            "long",
            "Approve",
            "Approval",
            &token,
            ApprovalStatus::Rejected,
        )
        .await
        .expect("rejected");
        ids.push(env.start("long").await);
        env.run_source("r").await;
    }
    let mut seen = Vec::new();
    let mut next_token = None;
    loop {
        let page = env
            .svc
            .list_pipeline_executions(
                &env.caller,
                ListPipelineExecutionsInput {
                    pipeline_name: "long".into(),
                    max_results: Some(7),
                    next_token: next_token.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("a page");
        seen.extend(
            page.pipeline_execution_summaries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.pipeline_execution_id),
        );
        // A new execution starts between pages; it is newer than the cursor and not listed.
        env.start("long").await;
        match page.next_token {
            Some(t) => next_token = Some(t),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(
        seen, ids,
        "every execution that existed, newest first, once"
    );
}
