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

#[tokio::test]
async fn the_console_listing_puts_waiting_pipelines_first_and_searches_filters_and_pages() {
    use lockgate_engine::service::listing::ListingQuery;
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("web-waiting").await;
    env.create(standard("api-source")).await;
    env.create(standard("web-source")).await;
    let names = |q: ListingQuery| {
        let svc = env.svc.clone();
        async move {
            let page = svc.pipeline_listing(q).await.expect("a page");
            (
                page.rows
                    .iter()
                    .map(|r| (r.name.clone(), r.awaiting))
                    .collect::<Vec<_>>(),
                page.next_token,
            )
        }
    };
    let all = ListingQuery {
        limit: 50,
        ..Default::default()
    };
    let (rows, next) = names(all.clone()).await;
    assert_eq!(
        rows,
        [
            ("web-waiting".to_string(), true),
            ("api-source".to_string(), false),
            ("web-source".to_string(), false)
        ]
    );
    assert_eq!(next, None);

    let (rows, _) = names(ListingQuery {
        search: Some("WEB".into()),
        ..all.clone()
    })
    .await;
    assert_eq!(rows.len(), 2, "the search ignores case: {rows:?}");
    let (rows, _) = names(ListingQuery {
        awaiting_only: true,
        ..all.clone()
    })
    .await;
    assert_eq!(rows, [("web-waiting".to_string(), true)]);
    let (rows, _) = names(ListingQuery {
        status: Some("InProgress".into()),
        ..all.clone()
    })
    .await;
    assert_eq!(
        rows.len(),
        3,
        "every pipeline's first execution is in progress"
    );

    // Pages of one: the same three, in the same order, then no token.
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let (rows, next) = names(ListingQuery {
            limit: 1,
            next_token: token,
            ..all.clone()
        })
        .await;
        paged.extend(rows);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(paged.len(), 3);
    assert_eq!(paged[0].0, "web-waiting");

    // Answering the approval moves the pipeline out of the waiting part.
    env.approve_pending("web-waiting").await;
    let (rows, _) = names(ListingQuery {
        awaiting_only: true,
        ..all
    })
    .await;
    assert!(rows.is_empty());
    assert_eq!(env.svc.awaiting_count().await.expect("counted").count, 0);
}
