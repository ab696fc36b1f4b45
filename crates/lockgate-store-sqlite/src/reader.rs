//! Reads: a small pool of read connections and the queries behind `load`, `get`,
//! `list_children` and `due`.
//!
//! In WAL mode readers never block the writer and the writer never blocks readers, so reads run
//! on their own connections, on Tokio's blocking pool. Each query is a single statement and
//! therefore sees one consistent snapshot: a reader sees a commit entirely or not at all.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, Params};

use lockgate_store::{Collection, Record, StoreError};

use crate::backend_error;
use crate::connection::open_reader;

/// How many idle read connections are kept. More readers than this at once is fine: extra
/// connections are opened for the burst and closed afterwards.
const MAX_IDLE: usize = 4;

/// The columns every query selects, in the order [`query`] reads them.
const COLUMNS: &str = "key, parent, due_at, body";

/// Idle read connections to one database file.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    /// An empty pool; connections are opened on first use.
    pub(crate) fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on an idle connection, or a new one if none is idle. Blocks; call it from a
    /// blocking-pool thread.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        // A connection that hit a backend error (I/O, locking) is not trusted again; a fresh
        // one is cheap.
        if !matches!(result, Err(StoreError::Backend(_))) {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }
}

/// Every record of a collection, ordered by key.
pub(crate) fn load(conn: &Connection, collection: Collection) -> Result<Vec<Record>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM {} ORDER BY key", collection.as_str());
    query(conn, collection, &sql, [])
}

/// One record by key.
pub(crate) fn get(
    conn: &Connection,
    collection: Collection,
    key: &str,
) -> Result<Option<Record>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE key = ?1",
        collection.as_str()
    );
    Ok(query(conn, collection, &sql, [key])?.pop())
}

/// The records with this parent, ordered by key.
pub(crate) fn list_children(
    conn: &Connection,
    collection: Collection,
    parent: &str,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE parent = ?1 ORDER BY key",
        collection.as_str()
    );
    query(conn, collection, &sql, [parent])
}

/// Records of `collection` due at or before `due_at`, earliest first (ties by key), at most
/// `limit`.
pub(crate) fn due(
    conn: &Connection,
    collection: Collection,
    due_at: i64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE due_at <= ?1 ORDER BY due_at, key LIMIT ?2",
        collection.as_str()
    );
    // A limit beyond i64::MAX cannot be expressed in SQL and means "no limit" anyway.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    query(conn, collection, &sql, (due_at, limit))
}

/// Runs a `SELECT {COLUMNS}` query and decodes each row's JSON body.
fn query(
    conn: &Connection,
    collection: Collection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<Record>, StoreError> {
    let context = || format!("reading {collection}");
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| backend_error(&context(), e))?;
    let rows = stmt
        .query_map(params, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(|e| backend_error(&context(), e))?;
    let mut records = Vec::new();
    for row in rows {
        let (key, parent, due_at, body) = row.map_err(|e| backend_error(&context(), e))?;
        let body = match serde_json::from_str(&body) {
            Ok(body) => body,
            Err(e) => {
                return Err(StoreError::Corrupt {
                    collection: collection.as_str(),
                    key,
                    reason: e.to_string(),
                })
            }
        };
        records.push(Record {
            collection,
            key,
            parent,
            due_at,
            body,
        });
    }
    Ok(records)
}
