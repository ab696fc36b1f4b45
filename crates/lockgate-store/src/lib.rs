//! The store interface: what Lockgate keeps durably, independent of the database behind it.
//!
//! The engine keeps its working state in memory and writes every change through [`Store::commit`]
//! before it acknowledges the request that caused it. A backend (SQLite today, PostgreSQL later)
//! only has to keep [`Record`]s: a collection, a key, an optional parent key (the pipeline a row
//! belongs to), an optional due time (for timers) and a JSON body it never interprets. That keeps
//! the interface narrow enough for a second backend and keeps SQL out of the domain crates.

use std::fmt;

#[cfg(feature = "conformance")]
pub mod conformance;

/// The kinds of record Lockgate keeps; each backend stores them in its own table or key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// A pipeline's current declaration and metadata; key = pipeline name.
    Pipeline,
    /// Every version of a pipeline's declaration; key = `name/version`, parent = pipeline name.
    PipelineVersion,
    /// One pipeline execution with its stage and action executions; parent = pipeline name.
    Execution,
    /// A job handed to job workers for a custom action; parent = pipeline name.
    Job,
    /// A wall-clock deadline (approval expiry, job timeout); `due_at` is set.
    Timer,
    /// A user who can sign requests; key = user name.
    User,
    /// A custom action type created with CreateCustomActionType; key = `category/owner/provider/version`.
    ActionType,
    /// The tags of one resource; key = resource ARN.
    Tags,
    /// A signed-in console session; key = SHA-256 of the session cookie, `due_at` = expiry.
    Session,
    /// A notification waiting to be delivered; `due_at` = next attempt.
    Outbox,
}

impl Collection {
    /// Every collection, in a stable order.
    pub const ALL: &'static [Collection] = &[
        Collection::Pipeline,
        Collection::PipelineVersion,
        Collection::Execution,
        Collection::Job,
        Collection::Timer,
        Collection::User,
        Collection::ActionType,
        Collection::Tags,
        Collection::Session,
        Collection::Outbox,
    ];

    /// A short lowercase name, usable as a table name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Collection::Pipeline => "pipelines",
            Collection::PipelineVersion => "pipeline_versions",
            Collection::Execution => "executions",
            Collection::Job => "jobs",
            Collection::Timer => "timers",
            Collection::User => "users",
            Collection::ActionType => "action_types",
            Collection::Tags => "tags",
            Collection::Session => "sessions",
            Collection::Outbox => "outbox",
        }
    }
}

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Which collection the row belongs to.
    pub collection: Collection,
    /// Unique key within the collection.
    pub key: String,
    /// The owning pipeline's name (or another grouping key), indexed for [`Store::list_children`].
    pub parent: Option<String>,
    /// For timers: when they fire, in milliseconds since the Unix epoch; indexed.
    pub due_at: Option<i64>,
    /// The row's content, serialised by its owner.
    pub body: serde_json::Value,
}

impl Record {
    /// A record with no parent and no due time.
    pub fn new(collection: Collection, key: impl Into<String>, body: serde_json::Value) -> Self {
        Record {
            collection,
            key: key.into(),
            parent: None,
            due_at: None,
            body,
        }
    }

    /// Sets the parent key.
    pub fn with_parent(mut self, parent: impl Into<String>) -> Self {
        self.parent = Some(parent.into());
        self
    }

    /// Sets the due time (milliseconds since the Unix epoch).
    pub fn with_due_at(mut self, due_at: i64) -> Self {
        self.due_at = Some(due_at);
        self
    }
}

/// One change inside a [`Store::commit`]; all changes of one commit apply atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// Insert or replace the record with this collection and key.
    Put(Record),
    /// Replace the record with this collection and key only if it exists; otherwise nothing.
    /// A background writer (the notification relay) uses it so that it never brings back a
    /// record another commit has deleted meanwhile.
    Update(Record),
    /// Delete one record; deleting a missing record is not an error.
    Delete {
        /// The record's collection.
        collection: Collection,
        /// The record's key.
        key: String,
    },
    /// Delete every record of a collection whose parent is `parent`.
    DeleteChildren {
        /// The records' collection.
        collection: Collection,
        /// The parent key whose children go.
        parent: String,
    },
}

/// What can go wrong in a store. Its text never reaches a client: the engine turns it into an
/// opaque `InternalFailure` (or, for [`StoreError::Full`], a `ServiceUnavailable` that says the
/// disk is full) and logs the cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The disk holding the store (or the store's size limit) is full; nothing was written.
    /// Writes succeed again once space is freed.
    #[error("store is full: {0}")]
    Full(String),
    /// The database failed (I/O, corruption, driver error).
    #[error("store backend failed: {0}")]
    Backend(String),
    /// A stored body could not be read back.
    #[error("stored record {collection}/{key} is unreadable: {reason}")]
    Corrupt {
        /// Collection name.
        collection: &'static str,
        /// Record key.
        key: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The store is shutting down and takes no more writes.
    #[error("store is closed")]
    Closed,
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durable store of [`Record`]s.
///
/// Invariant: when `commit` returns `Ok`, every mutation in it is on disk (fsynced) and survives
/// `kill -9` or a power cut. Backends reach high write throughput by group commit (many callers'
/// commits share one transaction and one fsync), never by weakening that promise.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies all mutations atomically and durably.
    async fn commit(&self, mutations: Vec<Mutation>) -> Result<(), StoreError>;
    /// Every record of a collection (used at start-up to rebuild the in-memory view).
    async fn load(&self, collection: Collection) -> Result<Vec<Record>, StoreError>;
    /// One record by key.
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Record>, StoreError>;
    /// The records of a collection with the given parent, ordered by key.
    async fn list_children(
        &self,
        collection: Collection,
        parent: &str,
    ) -> Result<Vec<Record>, StoreError>;
    /// Records of `collection` (timers, sessions, outbox messages) due at or before `due_at`
    /// (ms since the epoch), earliest first, at most `limit`.
    async fn due(
        &self,
        collection: Collection,
        due_at: i64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;
    /// Timers due at or before `due_at` (ms since the epoch), earliest first, at most `limit`.
    async fn due_timers(&self, due_at: i64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.due(Collection::Timer, due_at, limit).await
    }
}
