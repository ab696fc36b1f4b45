//! A store for tests whose commits can be made to fail as a full disk does, or to panic, in
//! front of the real SQLite store; it counts the commits tried.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lockgate_engine::PipelineService;
use lockgate_store::{Collection, Mutation, Record, Scan, Store, StoreError};
use lockgate_store_sqlite::SqliteStore;

use crate::*;

/// How a [`Faulty`] store treats commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Commits go through to SQLite.
    None,
    /// Every commit fails, as with a full disk.
    Fail,
    /// The next commit that writes a record of this pipeline panics (once).
    PanicOnceFor(&'static str),
}

/// The real SQLite store, with commits that can be made to fail or panic, and counted.
pub struct Faulty {
    inner: SqliteStore,
    failing: AtomicBool,
    panic_for: Mutex<Option<&'static str>>,
    attempts: AtomicUsize,
    panics: AtomicUsize,
}

impl Faulty {
    /// `inner` with no fault yet.
    pub fn over(inner: SqliteStore) -> Faulty {
        Faulty {
            inner,
            failing: AtomicBool::new(false),
            panic_for: Mutex::new(None),
            attempts: AtomicUsize::new(0),
            panics: AtomicUsize::new(0),
        }
    }

    /// Makes commits behave as `fault` says from now on.
    pub fn set(&self, fault: Fault) {
        self.failing.store(fault == Fault::Fail, Ordering::SeqCst);
        *self.panic_for.lock().expect("not poisoned") = match fault {
            Fault::PanicOnceFor(p) => Some(p),
            _ => None,
        };
    }

    /// Commits tried so far.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Commits that panicked so far.
    pub fn panics(&self) -> usize {
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
            return Err(StoreError::Full(
                "applying a commit: database or disk is full".to_owned(),
            ));
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
    async fn scan(&self, scan: Scan) -> Result<Vec<Record>, StoreError> {
        self.inner.scan(scan).await
    }
    async fn count(
        &self,
        collection: Collection,
        parent: Option<&str>,
        label: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.inner.count(collection, parent, label).await
    }
}

/// A `TestEnv` whose service writes through a [`Faulty`] store.
pub async fn faulty_env() -> (TestEnv, Arc<Faulty>) {
    let mut env = TestEnv::new().await;
    let store = Arc::new(Faulty::over(env.store.clone()));
    let dyn_store: Arc<dyn Store> = store.clone();
    env.svc = PipelineService::load(dyn_store, Arc::new(env.clock.clone()), config())
        .await
        .expect("the service loads");
    (env, store)
}
