//! The store interface: what Lockgate keeps durably, independent of the database behind it.
//!
//! The engine keeps its working state in memory and writes every change through [`Store::commit`]
//! before it acknowledges the request that caused it. A backend (SQLite today, PostgreSQL later)
//! only has to keep [`Record`]s: a collection, a key, an optional parent key (the pipeline a row
//! belongs to), an optional due time (for timers) and a JSON [`Body`] it never interprets. That keeps
//! the interface narrow enough for a second backend and keeps SQL out of the domain crates.

use std::fmt;

mod body;
#[cfg(feature = "conformance")]
pub mod conformance;

pub use body::Body;

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
    /// Facts about the stored data itself (for example which index layout it was written
    /// with); key = the fact's name.
    Meta,
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
        Collection::Meta,
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
            Collection::Meta => "meta",
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
    pub body: Body,
    /// A short indexed classification the owner chooses (an execution's "active", a pipeline's
    /// latest status, a job's "queued"), so that [`Store::scan`] can find records by it without
    /// reading bodies. `None`: unclassified.
    pub label: Option<String>,
    /// Where the record sorts in a [`ScanOrder::Position`] scan (ties broken by key), e.g. an
    /// execution's start sequence; 0 unless set.
    pub position: i64,
}

impl Record {
    /// A record with no parent and no due time.
    pub fn new(collection: Collection, key: impl Into<String>, body: impl Into<Body>) -> Self {
        Record {
            collection,
            key: key.into(),
            parent: None,
            due_at: None,
            body: body.into(),
            label: None,
            position: 0,
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

    /// Sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the position.
    pub fn with_position(mut self, position: i64) -> Self {
        self.position = position;
        self
    }

    /// Where this record stands in a scan, for a cursor that continues after it.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            position: self.position,
            key: self.key.clone(),
        }
    }
}

/// The order a [`Scan`] walks a collection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanOrder {
    /// By key (byte-wise UTF-8 order, as everywhere in the store).
    #[default]
    Key,
    /// By `position`, then by key.
    Position,
}

/// A place in a scan: the record a page ended with. Positions and keys are compared, not looked
/// up, so a cursor stays valid when its record changes or is deleted meanwhile, and a page that
/// continues from it neither repeats nor skips a record that existed throughout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The record's position (ignored by a [`ScanOrder::Key`] scan).
    pub position: i64,
    /// The record's key.
    pub key: String,
}

/// One page of a collection: the records matching every filter given, in `order` (reversed
/// when `descending`), strictly after `after`, at most `limit` of them. Each page is read from
/// one consistent snapshot; it costs the page (plus the records a `key_contains` filter passes
/// over), not the collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The collection to read.
    pub collection: Collection,
    /// Only records with this parent.
    pub parent: Option<String>,
    /// Only records with this label.
    pub label: Option<String>,
    /// Only records whose key contains this text, ignoring ASCII case.
    pub key_contains: Option<String>,
    /// The order.
    pub order: ScanOrder,
    /// Largest first.
    pub descending: bool,
    /// Continue after this record.
    pub after: Option<Cursor>,
    /// At most this many records.
    pub limit: usize,
}

impl Scan {
    /// Every record of `collection` by key, at most `limit` of them.
    pub fn new(collection: Collection, limit: usize) -> Scan {
        Scan {
            collection,
            parent: None,
            label: None,
            key_contains: None,
            order: ScanOrder::Key,
            descending: false,
            after: None,
            limit,
        }
    }

    /// Only the children of `parent`.
    pub fn parent(mut self, parent: impl Into<String>) -> Scan {
        self.parent = Some(parent.into());
        self
    }

    /// Only records labelled `label`.
    pub fn label(mut self, label: impl Into<String>) -> Scan {
        self.label = Some(label.into());
        self
    }

    /// Only records whose key contains `text` (ASCII case ignored).
    pub fn key_contains(mut self, text: impl Into<String>) -> Scan {
        self.key_contains = Some(text.into());
        self
    }

    /// By position (then key) instead of by key.
    pub fn by_position(mut self) -> Scan {
        self.order = ScanOrder::Position;
        self
    }

    /// Largest first.
    pub fn descending(mut self) -> Scan {
        self.descending = true;
        self
    }

    /// Continue after `cursor` (if any).
    pub fn after(mut self, cursor: Option<Cursor>) -> Scan {
        self.after = cursor;
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
    /// Set the label and position of the record with this collection and key, leaving its
    /// body, parent and due time as they are; nothing if there is no such record. Cheaper than
    /// rewriting a large body when only its classification changed.
    Relabel {
        /// The record's collection.
        collection: Collection,
        /// The record's key.
        key: String,
        /// The new label.
        label: Option<String>,
        /// The new position.
        position: i64,
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
    /// One page of a collection, as [`Scan`] describes.
    async fn scan(&self, scan: Scan) -> Result<Vec<Record>, StoreError>;
    /// One record by key and one page of a scan, read together: what [`Store::get`] and
    /// [`Store::scan`] return, in one round trip to the backend (and, where the backend can, from
    /// one snapshot). Reading a pipeline that memory does not hold is this: its entry and its
    /// newest executions.
    async fn get_and_scan(
        &self,
        collection: Collection,
        key: &str,
        scan: Scan,
    ) -> Result<(Option<Record>, Vec<Record>), StoreError> {
        tokio::try_join!(self.get(collection, key), self.scan(scan))
    }
    /// How many records of `collection` have this parent and label (each filter only when
    /// given), counted from an index.
    async fn count(
        &self,
        collection: Collection,
        parent: Option<&str>,
        label: Option<&str>,
    ) -> Result<u64, StoreError>;
    /// Timers due at or before `due_at` (ms since the epoch), earliest first, at most `limit`.
    async fn due_timers(&self, due_at: i64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.due(Collection::Timer, due_at, limit).await
    }
}
