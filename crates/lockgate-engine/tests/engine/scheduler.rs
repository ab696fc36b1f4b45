//! The deadline scheduler: deadlines are disarmed when their action is decided, a deadline that
//! cannot be applied while the store fails is retried with backoff from the failed attempt,
//! and a panic while applying one neither ends the scheduler nor stops the other deadlines.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lockgate_engine::{EngineConfig, PipelineService};
use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use lockgate_store_sqlite::SqliteStore;

use crate::*;

/// How a [`Faulty`] store treats commits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    None,
    /// Every commit fails, as with a full disk.
    Fail,
    /// The next commit that writes a record of this pipeline panics (once).
    PanicOnceFor(&'static str),
}

/// The real SQLite store, with commits that can be made to fail or panic, and counted.
struct Faulty {
    inner: SqliteStore,
    failing: AtomicBool,
    panic_for: Mutex<Option<&'static str>>,
    attempts: AtomicUsize,
    panics: AtomicUsize,
}

impl Faulty {
    fn set(&self, fault: Fault) {
        self.failing.store(fault == Fault::Fail, Ordering::SeqCst);
        *self.panic_for.lock().expect("not poisoned") = match fault {
            Fault::PanicOnceFor(p) => Some(p),
            _ => None,
        };
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    fn panics(&self) -> usize {
        self.panics.load(Ordering::SeqCst)
    }

    fn should_panic(&self, mutations: &[Mutation]) -> bool {
        let mut target = self.panic_for.lock().expect("not poisoned");
        let Some(pipeline) = *target else {
            return false;
        };
        let hit = mutations.iter().any(|m| match m {
            Mutation::Put(r) | Mutation::Update(r) => r.parent.as_deref() == Some(pipeline),
            _ => false,
        });
        if hit {
            *target = None;
        }
        hit
    }
}

#[async_trait::async_trait]
impl Store for Faulty {
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.should_panic(&mutations) {
            self.panics.fetch_add(1, Ordering::SeqCst);
            panic!("the store panicked on purpose");
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("database or disk is full".to_string()));
        }
        self.inner.commit(mutations).await
    }
    async fn load(&self, collection: Collection) -> Result<Vec<Record>, StoreError> {
        self.inner.load(collection).await
    }
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Record>, StoreError> {
        self.inner.get(collection, key).await
    }
    async fn list_children(
        &self,
        collection: Collection,
        parent: &str,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.list_children(collection, parent).await
    }
    async fn due(
        &self,
        collection: Collection,
        due_at: i64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.due(collection, due_at, limit).await
    }
}

/// A `TestEnv` whose service writes through a [`Faulty`] store.
async fn faulty_env() -> (TestEnv, Arc<Faulty>) {
    let mut env = TestEnv::new().await;
    let store = Arc::new(Faulty {
        inner: env.store.clone(),
        failing: AtomicBool::new(false),
        panic_for: Mutex::new(None),
        attempts: AtomicUsize::new(0),
        panics: AtomicUsize::new(0),
    });
    let dyn_store: Arc<dyn Store> = store.clone();
    env.svc = PipelineService::load(dyn_store, Arc::new(env.clock.clone()), engine_config())
        .await
        .expect("the service loads");
    (env, store)
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        account_id: ACCOUNT.to_string(),
        region: REGION.to_string(),
        job_timeout_millis: JOB_TIMEOUT_MILLIS,
        notification_topics: [TOPIC.to_string()].into(),
    }
}

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
    assert_eq!(env.svc.armed_deadlines(), 1, "the source job's timeout");
    env.run_source("r1").await;
    assert_eq!(env.svc.armed_deadlines(), 1, "the approval's timeout");

    env.approve_pending("p").await;

    assert_eq!(env.svc.armed_deadlines(), 0);
    assert_eq!(env.svc.next_deadline(), None);
}

#[tokio::test]
async fn stopping_and_rejecting_disarm_deadlines_too() {
    let env = TestEnv::new().await;
    waiting_for_approval(&env, "stopped").await;
    waiting_for_approval(&env, "rejected").await;
    assert_eq!(env.svc.armed_deadlines(), 2);

    let id = env.only_execution("stopped").await;
    env.stop("stopped", &id, false).await.expect("it stops");
    assert_eq!(env.svc.armed_deadlines(), 1);
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
    assert_eq!(env.svc.armed_deadlines(), 0);
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
    assert_eq!(env.svc.armed_deadlines(), 1, "the deadline is still armed");

    store.set(Fault::None);
    assert_eq!(env.advance(1).await, 1, "the deadline takes effect");
    assert_eq!(env.status("p", &id).await, PipelineExecutionStatus::Failed);
    assert_eq!(env.svc.armed_deadlines(), 0);
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
    assert_eq!(env.svc.armed_deadlines(), 1);
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
