//! A long execution history: only the newest finished executions stay in memory, and every
//! read still sees all of them (older ones come from the store).

use lockgate_engine::service::FINISHED_EXECUTIONS_IN_MEMORY;
use lockgate_shapes::{ApprovalStatus, CodePipelineService, GetPipelineExecutionInput};

use crate::*;

/// Creates `Long` and finishes `n` executions (each rejected at its approval).
async fn finish_executions(env: &TestEnv, n: usize) -> Vec<String> {
    let mut ids = vec![env.standard_waiting_for_approval("Long").await];
    loop {
        let token = env.token("Long", "Approve", "Approval").await;
        env.answer(
            "Long",
            "Approve",
            "Approval",
            &token,
            ApprovalStatus::Rejected,
        )
        .await
        .expect("the rejection is accepted");
        if ids.len() == n {
            return ids;
        }
        ids.push(env.start("Long").await);
        env.run_source("r").await;
    }
}

#[tokio::test]
async fn a_long_history_keeps_only_the_newest_finished_executions_in_memory_but_lists_them_all() {
    let mut env = TestEnv::new().await;
    let n = FINISHED_EXECUTIONS_IN_MEMORY + 30;
    let ids = finish_executions(&env, n).await;

    let in_memory = env
        .svc
        .pipeline("Long")
        .await
        .expect("pipeline")
        .executions
        .len();
    assert_eq!(in_memory, FINISHED_EXECUTIONS_IN_MEMORY);

    let listed: Vec<String> = env
        .executions("Long")
        .await
        .into_iter()
        .filter_map(|e| e.pipeline_execution_id)
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(
        listed, newest_first,
        "every execution is listed once, newest first"
    );

    for _ in 0..2 {
        let oldest = env
            .svc
            .get_pipeline_execution(
                &env.caller,
                GetPipelineExecutionInput {
                    pipeline_name: "Long".into(),
                    pipeline_execution_id: ids[0].clone(),
                },
            )
            .await
            .expect("the oldest execution is still readable");
        assert_eq!(
            oldest.pipeline_execution.and_then(|e| e.status),
            Some(lockgate_shapes::PipelineExecutionStatus::Failed)
        );
        let actions = env.action_executions("Long", Some(&ids[0])).await;
        assert_eq!(
            actions.len(),
            2,
            "the source and the approval of the oldest"
        );
        assert_eq!(env.action_executions("Long", None).await.len(), 2 * n);
        env.reload().await;
    }
}

/// Creates the PARALLEL pipeline `Wide` whose first `held` executions stay in progress (their
/// source jobs are handed out and never finished), then runs `finished` more that fail at their
/// source. Those old executions stay in memory while the oldest finished ones are evicted to the
/// store, so memory no longer holds a newest-first prefix of the history. Returns the
/// executions' ids, oldest first.
async fn old_executions_in_progress_behind_a_long_history(
    env: &TestEnv,
    held: usize,
    finished: usize,
) -> Vec<String> {
    env.create(standard_v2("Wide", ExecutionMode::Parallel))
        .await;
    let mut ids = vec![env.only_execution("Wide").await];
    env.take_job(&local_source()).await;
    for _ in 1..held {
        ids.push(env.start("Wide").await);
        env.take_job(&local_source()).await;
    }
    for _ in 0..finished {
        ids.push(env.start("Wide").await);
        let job = env.take_job(&local_source()).await;
        env.fail(&job, "the checkout failed")
            .await
            .expect("the failure is accepted");
    }
    ids
}

/// Found by the kill -9 campaign (`lockgate-torture`): a page that ended just before an old
/// execution still in progress used to carry a cursor pointing just above it, so the evicted
/// executions between the two were never listed.
#[tokio::test]
async fn listing_executions_pages_past_an_old_execution_in_progress_without_skipping_evicted_ones()
{
    let env = TestEnv::new().await;
    let ids = old_executions_in_progress_behind_a_long_history(
        &env,
        1,
        FINISHED_EXECUTIONS_IN_MEMORY + 5,
    )
    .await;

    let listed: Vec<String> = env
        .executions("Wide")
        .await
        .into_iter()
        .filter_map(|e| e.pipeline_execution_id)
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(
        listed.len(),
        newest_first.len(),
        "every execution is listed once"
    );
    assert_eq!(listed, newest_first, "newest first, none skipped");
}

/// Found by the kill -9 campaign: ListActionExecutions pages by offset, and a page served from
/// memory counted old executions in progress where the full history has the evicted ones, so
/// the next page (served from the store) repeated some action executions and skipped others.
#[tokio::test]
async fn listing_action_executions_one_by_one_past_old_executions_in_progress_lists_each_once() {
    let env = TestEnv::new().await;
    let ids = old_executions_in_progress_behind_a_long_history(
        &env,
        2,
        FINISHED_EXECUTIONS_IN_MEMORY + 5,
    )
    .await;

    let listed: Vec<String> = env
        .action_executions_in_pages("Wide", None, Some(1))
        .await
        .into_iter()
        .filter_map(|d| d.pipeline_execution_id)
        .collect();
    // One action execution (the source) per execution, newest execution first.
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "each once, newest first");
}

#[tokio::test]
async fn a_stage_keeps_its_latest_execution_when_more_than_a_hundred_newer_ones_never_reach_it() {
    let mut env = TestEnv::new().await;
    let first = env.standard_waiting_for_approval("Held").await;
    let token = env.token("Held", "Approve", "Approval").await;
    env.answer(
        "Held",
        "Approve",
        "Approval",
        &token,
        ApprovalStatus::Rejected,
    )
    .await
    .expect("the rejection is accepted");
    env.svc
        .disable_stage_transition(
            &env.caller,
            DisableStageTransitionInput {
                pipeline_name: "Held".into(),
                stage_name: "Approve".into(),
                transition_type: StageTransitionType::Inbound,
                reason: "Change freeze".into(),
            },
        )
        .await
        .expect("the transition is disabled");
    // Each new execution waits at the disabled transition and supersedes the one waiting there,
    // so more than FINISHED_EXECUTIONS_IN_MEMORY newer executions finish without entering
    // Approve.
    let mut ids = vec![first.clone()];
    for _ in 0..FINISHED_EXECUTIONS_IN_MEMORY + 5 {
        ids.push(env.start("Held").await);
        env.run_source("r").await;
    }
    for _ in 0..2 {
        // The old execution kept in memory for the state view must not make pages from memory
        // skip the evicted executions between it and the newest ones.
        let listed: Vec<String> = env
            .executions_in_pages("Held", Some(7))
            .await
            .into_iter()
            .filter_map(|e| e.pipeline_execution_id)
            .collect();
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        assert_eq!(listed, newest_first, "every execution once, newest first");
        let actions: Vec<String> = env
            .action_executions_in_pages("Held", None, Some(1))
            .await
            .into_iter()
            .filter_map(|d| d.action_execution_id)
            .collect();
        let unique: std::collections::BTreeSet<&String> = actions.iter().collect();
        assert_eq!(unique.len(), actions.len(), "no action execution twice");
        // A source run per execution, and the first one's approval.
        assert_eq!(actions.len(), ids.len() + 1);

        let state = env.state("Held").await;
        let approve = state
            .stage_states
            .iter()
            .flatten()
            .find(|s| s.stage_name.as_deref() == Some("Approve"))
            .expect("the Approve stage");
        assert_eq!(
            approve
                .latest_execution
                .as_ref()
                .map(|e| e.pipeline_execution_id.clone()),
            Some(first.clone()),
            "Approve still shows the execution that last entered it"
        );
        let approval = approve
            .action_states
            .iter()
            .flatten()
            .find(|a| a.action_name.as_deref() == Some("Approval"))
            .and_then(|a| a.latest_execution.as_ref())
            .and_then(|e| e.status);
        assert_eq!(approval, Some(ActionExecutionStatus::Failed));
        env.reload().await;
    }
}
