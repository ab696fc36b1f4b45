//! The pipelines memory holds: a bounded, least-recently-used cache of pipeline slots over the
//! store.
//!
//! A slot is the one place a pipeline's writes are serialised (its write lock) and its last
//! committed state and view are kept. There is at most one slot per pipeline name in memory:
//! a caller that misses inserts an empty slot first and then reads the store into it, so a
//! writer and a loader of the same pipeline always meet on the same slot. A slot leaves the
//! cache only while nobody else holds it (no request is reading, loading or writing through
//! it), so a slot loaded later never starts from a state older than a commit that is still
//! being installed. A slot may hold "no such pipeline" (a name looked up but absent, or just
//! deleted); a later CreatePipeline installs into it.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};

use lockgate_store::StoreError;
use lru::LruCache;

use super::state_view::StateView;
use crate::state::PipelineState;

/// How many least-recently-used slots one insertion looks at for one it may evict.
const EVICTION_LOOKS: usize = 16;

/// A committed state with its GetPipelineState view, installed together.
#[derive(Clone)]
pub(super) struct Installed {
    /// The state.
    pub state: Arc<PipelineState>,
    /// The state view (typed and encoded answers, each made on first read).
    pub view: Arc<StateView>,
}

impl Installed {
    fn of(state: PipelineState) -> Installed {
        let state = Arc::new(state);
        Installed {
            view: Arc::new(StateView::new(state.clone())),
            state,
        }
    }
}

/// One pipeline's slot: its write lock and its last committed state (once read from the store).
pub(super) struct PipelineSlot {
    /// Held by the one write to this pipeline in progress (and by its creation and deletion).
    pub write: tokio::sync::Mutex<()>,
    /// Set once the store has been read into `current`.
    loaded: tokio::sync::OnceCell<()>,
    /// The last committed state; `None` when there is no such pipeline.
    current: RwLock<Option<Installed>>,
}

impl PipelineSlot {
    fn empty() -> PipelineSlot {
        PipelineSlot {
            write: tokio::sync::Mutex::new(()),
            loaded: tokio::sync::OnceCell::new(),
            current: RwLock::new(None),
        }
    }

    /// Reads the pipeline into the slot with `load` unless that was done already; concurrent
    /// callers wait for one read. A failed read leaves the slot unloaded, to be tried again.
    pub async fn ensure_loaded<F, Fut>(&self, load: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<PipelineState>, StoreError>>,
    {
        self.loaded
            .get_or_try_init(|| async {
                let state = load().await?;
                *write(&self.current) = state.map(Installed::of);
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// The last committed state and view, if the pipeline exists.
    pub fn current(&self) -> Option<Installed> {
        read(&self.current).clone()
    }

    /// The last committed state, if the pipeline exists.
    pub fn state(&self) -> Option<Arc<PipelineState>> {
        read(&self.current).as_ref().map(|i| i.state.clone())
    }

    /// Makes `state` what readers see, with its view.
    pub fn install(&self, state: PipelineState) {
        let installed = Installed::of(state);
        *write(&self.current) = Some(installed);
    }

    /// The pipeline is gone.
    pub fn clear(&self) {
        *write(&self.current) = None;
    }
}

/// The slots in memory, least recently used evicted first once there are more than `capacity`.
pub(super) struct SlotCache {
    slots: Mutex<LruCache<String, Arc<PipelineSlot>>>,
    capacity: usize,
}

impl SlotCache {
    /// An empty cache that keeps about `capacity` slots (at least one).
    pub fn new(capacity: usize) -> SlotCache {
        SlotCache {
            slots: Mutex::new(LruCache::unbounded()),
            capacity: NonZeroUsize::new(capacity).map_or(1, NonZeroUsize::get),
        }
    }

    /// The slot of `name`, a new empty one if it is not in memory (load it before use).
    pub fn slot(&self, name: &str) -> Arc<PipelineSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(name) {
            return slot.clone();
        }
        let slot = Arc::new(PipelineSlot::empty());
        slots.put(name.to_string(), slot.clone());
        if slots.len() > self.capacity {
            evict(&mut slots, self.capacity);
        }
        slot
    }

    /// How many slots memory holds.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Evicts least recently used slots nobody holds until `capacity` is met or
/// [`EVICTION_LOOKS`] slots were looked at; slots in use stay (the cache is over its capacity
/// only while that many requests are in flight).
fn evict(slots: &mut LruCache<String, Arc<PipelineSlot>>, capacity: usize) {
    let excess = slots.len().saturating_sub(capacity);
    let idle: Vec<String> = slots
        .iter()
        .rev()
        .take(EVICTION_LOOKS.max(excess))
        .filter(|(_, slot)| Arc::strong_count(slot) == 1)
        .take(excess)
        .map(|(name, _)| name.clone())
        .collect();
    for name in idle {
        slots.pop(&name);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}
