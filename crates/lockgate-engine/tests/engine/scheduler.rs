//! The deadline scheduler: deadlines are disarmed when their action is decided, a deadline that
//! cannot be applied while the store fails is retried with backoff from the failed attempt,
//! and a panic while applying one neither ends the scheduler nor stops the other deadlines.

use crate::faulty::{faulty_env, Fault};
use crate::*;

/// `Source` then `Approve`: once approved, the execution is done and nothing is left to time.
fn source_then_approval(name: &str) -> PipelineDeclaration {
    pipeline(
        name,
        vec![
            stage("Source", vec![source_action("Checkout", "src")]),
            stage("Approve", vec![approval_action("Approval", Some(60))]),
        ],
    )
}

async fn waiting_for_approval(env: &TestEnv, name: &str) {
    env.create(source_then_approval(name)).await;
    env.run_source("r1").await;
}

#[tokio::test]
async fn an_answered_approval_no_longer_has_an_armed_deadline() {
    let env = TestEnv::new().await;
    env.create(source_then_approval("p")).await;
    assert_eq!(
        env.svc.armed_deadlines().await.expect("timers count"),
        1,
        "the source job's timeout"
    );
    env.run_source("r1").await;
    assert_eq!(
        env.svc.armed_deadlines().await.expect("timers count"),
        1,
        "the approval's timeout"
    );

    env.approve_pending("p").await;

    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 0);
    assert_eq!(env.svc.deadlines_in_memory(), 0);
}

#[tokio::test]
async fn stopping_and_rejecting_disarm_deadlines_too() {
    let env = TestEnv::new().await;
    waiting_for_approval(&env, "stopped").await;
    waiting_for_approval(&env, "rejected").await;
    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 2);

    let id = env.only_execution("stopped").await;
    env.stop("stopped", &id, false).await.expect("it stops");
    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 1);
    let token = env.token("rejected", "Approve", "Approval").await;
    env.answer(
        "rejected",
        "Approve",
        "Approval",
        &token,
        ApprovalStatus::Rejected,
    )
    .await
    .expect("the rejection is accepted");
    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 0);
}

#[tokio::test]
async fn an_overdue_deadline_is_retried_with_backoff_while_the_store_fails() {
    let (env, store) = faulty_env().await;
    waiting_for_approval(&env, "p").await;
    let id = env.only_execution("p").await;
    store.set(Fault::Fail);
    // Two days overdue, as after downtime.
    env.clock.advance(2 * DAY);
    let start = store.attempts();

    assert_eq!(env.svc.fire_due_deadlines().await, 0);
    assert_eq!(store.attempts(), start + 1, "one attempt");
    // However overdue the deadline is, the next attempt waits a second from the failed one.
    assert_eq!(env.svc.fire_due_deadlines().await, 0);
    assert_eq!(env.advance(999).await, 0);
    assert_eq!(store.attempts(), start + 1, "no attempt within the backoff");
    env.advance(1).await;
    assert_eq!(store.attempts(), start + 2, "the second attempt after 1 s");
    // Then two seconds, then four.
    env.advance(1_999).await;
    assert_eq!(store.attempts(), start + 2);
    env.advance(1).await;
    assert_eq!(store.attempts(), start + 3);
    env.advance(3_999).await;
    assert_eq!(store.attempts(), start + 3);
    assert_eq!(
        env.status("p", &id).await,
        PipelineExecutionStatus::InProgress,
        "nothing changed while the store failed"
    );
    assert_eq!(
        env.svc.armed_deadlines().await.expect("timers count"),
        1,
        "the deadline is still armed"
    );

    store.set(Fault::None);
    assert_eq!(env.advance(1).await, 1, "the deadline takes effect");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 0);
}

#[tokio::test]
async fn the_backoff_is_capped_at_a_minute() {
    let (env, store) = faulty_env().await;
    waiting_for_approval(&env, "p").await;
    store.set(Fault::Fail);
    env.clock.advance(DAY);
    env.svc.fire_due_deadlines().await;
    // 1, 2, 4, 8, 16, 32 s, then every 60 s.
    for wait in [1, 2, 4, 8, 16, 32, 60, 60, 60] {
        let before = store.attempts();
        env.advance(wait * 1_000 - 1).await;
        assert_eq!(store.attempts(), before, "no attempt before {wait} s");
        env.advance(1).await;
        assert_eq!(store.attempts(), before + 1, "an attempt after {wait} s");
    }
}

#[tokio::test]
async fn a_panic_while_applying_a_deadline_leaves_the_other_deadlines_firing() {
    let (env, store) = faulty_env().await;
    waiting_for_approval(&env, "a").await;
    waiting_for_approval(&env, "b").await;
    let a = env.only_execution("a").await;
    let b = env.only_execution("b").await;
    store.set(Fault::PanicOnceFor("a"));
    env.clock.advance(2 * 60 * MINUTE);

    // Pipeline a's deadline panics; the call still returns and b's deadline fires.
    assert_eq!(env.svc.fire_due_deadlines().await, 1);
    assert_eq!(store.panics(), 1);
    assert_eq!(
        env.status("a", &a).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(env.status("b", &b).await, PipelineExecutionStatus::Failed);
    // The one that panicked is retried a second later, like a failed one, and takes effect.
    assert_eq!(env.svc.armed_deadlines().await.expect("timers count"), 1);
    assert_eq!(env.advance(1_000).await, 1);
    assert_eq!(env.status("a", &a).await, PipelineExecutionStatus::Failed);
    assert_eq!(env.status("b", &b).await, PipelineExecutionStatus::Failed);
}

#[tokio::test]
async fn the_scheduler_task_keeps_running_after_a_panic_while_applying_a_deadline() {
    let (env, store) = faulty_env().await;
    waiting_for_approval(&env, "a").await;
    let a = env.only_execution("a").await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(env.svc.clone().run_scheduler(async move {
        let _ = stop_rx.await;
    }));
    store.set(Fault::PanicOnceFor("a"));
    env.clock.advance(2 * 60 * MINUTE);
    // Arming a deadline wakes the scheduler, which then finds the approval overdue: its firing
    // panics, is retried a second (of the manual clock) later, and then takes effect.
    waiting_for_approval(&env, "wake").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.panics() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scheduler fired"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        env.status("a", &a).await,
        PipelineExecutionStatus::InProgress
    );
    env.clock.advance(1_000);
    waiting_for_approval(&env, "wake-again").await;
    while env.status("a", &a).await != PipelineExecutionStatus::Failed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the approval expired after the panic"
        );
        tokio::task::yield_now().await;
    }
    assert!(!scheduler.is_finished(), "the scheduler is still running");
    stop_tx.send(()).expect("the scheduler listens");
    scheduler.await.expect("the scheduler ends cleanly");
}
