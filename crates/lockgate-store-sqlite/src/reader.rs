//! Reads: a small pool of read connections and the queries behind `load`, `get`,
//! `list_children`, `due`, `scan` and `count`.
//!
//! In WAL mode readers never block the writer and the writer never blocks readers, so reads run
//! on their own connections, on Tokio's blocking pool. Each query is a single statement and
//! therefore sees one consistent snapshot: a reader sees a commit entirely or not at all.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, PoisonError};

use rusqlite::{Connection, Params};

use lockgate_store::{Body, Collection, Record, Scan, ScanOrder, StoreError};
use rusqlite::types::Value;

use crate::backend_error;
use crate::connection::open_reader;

/// The most read connections open at once. More concurrent reads than this wait for a free
/// connection rather than open (and, after the burst, close) one of their own: opening one
/// costs far more than a read, and its prepared statements would be lost with it.
const MAX_READERS: usize = 8;

/// The columns every query selects, in the order [`query`] reads them.
const COLUMNS: &str = "key, parent, due_at, body, label, position";

/// The pool's connections: those idle, and how many exist (idle or in use).
struct Connections {
    idle: Vec<Connection>,
    open: usize,
}

/// Read connections to one database file, at most [`MAX_READERS`] of them.
pub(crate) struct ReadPool {
    path: PathBuf,
    connections: Mutex<Connections>,
    returned: Condvar,
}

impl ReadPool {
    /// An empty pool; connections are opened on first use.
    pub(crate) fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            connections: Mutex::new(Connections {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// Takes an idle connection, opens one if fewer than [`MAX_READERS`] exist, or waits for
    /// one to be returned.
    fn take(&self) -> Result<Connection, StoreError> {
        let mut pool = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                drop(pool);
                return open_reader(&self.path).inspect_err(|_| self.forget());
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A connection that is gone (failed to open, or dropped after an error) frees its place.
    fn forget(&self) {
        let mut pool = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pool.open = pool.open.saturating_sub(1);
        drop(pool);
        self.returned.notify_one();
    }

    /// Runs `f` on a pooled connection. Blocks; call it from a blocking-pool thread.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let result = f(&conn);
        // A connection that hit a backend error (I/O, locking) is not trusted again; a fresh
        // one is opened when next needed.
        if matches!(result, Err(StoreError::Backend(_))) {
            drop(conn);
            self.forget();
        } else {
            self.connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .idle
                .push(conn);
            self.returned.notify_one();
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

/// One record by key and one page of a scan, from one snapshot (one read transaction).
pub(crate) fn get_and_scan(
    conn: &Connection,
    collection: Collection,
    key: &str,
    scan: &Scan,
) -> Result<(Option<Record>, Vec<Record>), StoreError> {
    let snapshot = conn
        .unchecked_transaction()
        .map_err(|e| backend_error("starting a read transaction", e))?;
    let record = get(conn, collection, key)?;
    let page = self::scan(conn, scan)?;
    snapshot
        .finish()
        .map_err(|e| backend_error("ending a read transaction", e))?;
    Ok((record, page))
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
    let sql = due_query(collection);
    // A limit beyond i64::MAX cannot be expressed in SQL and means "no limit" anyway.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    query(conn, collection, &sql, (due_at, limit))
}

/// The statement behind [`due`]: `?1` the cut-off, `?2` the limit.
fn due_query(collection: Collection) -> String {
    format!(
        "SELECT {COLUMNS} FROM {} WHERE due_at <= ?1 ORDER BY due_at, key LIMIT ?2",
        collection.as_str()
    )
}

/// One page of a scan: the filters become `WHERE` terms, the cursor a row-value comparison in
/// the scan's order, so that SQLite walks an index from the cursor and stops at the limit.
pub(crate) fn scan(conn: &Connection, scan: &Scan) -> Result<Vec<Record>, StoreError> {
    let (sql, params) = scan_query(scan);
    query(
        conn,
        scan.collection,
        &sql,
        rusqlite::params_from_iter(params),
    )
}

/// The statement and parameters of one scan page. Separate from [`scan`] so that tests can ask
/// SQLite how it plans exactly the statements the store runs.
fn scan_query(scan: &Scan) -> (String, Vec<Value>) {
    let mut terms: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let mut param = |v: Value| {
        params.push(v);
        format!("?{}", params.len())
    };
    if let Some(parent) = &scan.parent {
        terms.push(format!("parent = {}", param(Value::Text(parent.clone()))));
    }
    if let Some(label) = &scan.label {
        terms.push(format!("label = {}", param(Value::Text(label.clone()))));
    }
    if let Some(text) = &scan.key_contains {
        // instr on lower-cased text: no LIKE, so `%` and `_` in the search are plain characters.
        // SQLite's lower() folds ASCII letters only, which is what `Scan::key_contains` promises.
        terms.push(format!(
            "instr(lower(key), lower({})) > 0",
            param(Value::Text(text.clone()))
        ));
    }
    let cmp = if scan.descending { "<" } else { ">" };
    let dir = if scan.descending { "DESC" } else { "ASC" };
    let order = match scan.order {
        ScanOrder::Key => {
            if let Some(after) = &scan.after {
                terms.push(format!(
                    "key {cmp} {}",
                    param(Value::Text(after.key.clone()))
                ));
            }
            format!("key {dir}")
        }
        ScanOrder::Position => {
            if let Some(after) = &scan.after {
                let p = param(Value::Integer(after.position));
                let k = param(Value::Text(after.key.clone()));
                terms.push(format!("(position, key) {cmp} ({p}, {k})"));
            }
            format!("position {dir}, key {dir}")
        }
    };
    let limit = i64::try_from(scan.limit).unwrap_or(i64::MAX);
    let limit = param(Value::Integer(limit));
    let filter = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {} {filter} ORDER BY {order} LIMIT {limit}",
        scan.collection.as_str()
    );
    (sql, params)
}

/// How many records have this parent and label (each only when given).
pub(crate) fn count(
    conn: &Connection,
    collection: Collection,
    parent: Option<&str>,
    label: Option<&str>,
) -> Result<u64, StoreError> {
    let (sql, params) = count_query(collection, parent, label);
    let n: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(rusqlite::params_from_iter(params), |row| row.get(0)))
        .map_err(|e| backend_error(&format!("counting {collection}"), e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The statement and parameters of [`count`].
fn count_query(
    collection: Collection,
    parent: Option<&str>,
    label: Option<&str>,
) -> (String, Vec<String>) {
    let mut terms = Vec::new();
    let mut params = Vec::new();
    if let Some(parent) = parent {
        params.push(parent.to_owned());
        terms.push(format!("parent = ?{}", params.len()));
    }
    if let Some(label) = label {
        params.push(label.to_owned());
        terms.push(format!("label = ?{}", params.len()));
    }
    let filter = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    let sql = format!("SELECT COUNT(*) FROM {} {filter}", collection.as_str());
    (sql, params)
}

/// Runs a `SELECT {COLUMNS}` query; each row's body is checked to be JSON, not decoded.
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
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .map_err(|e| backend_error(&context(), e))?;
    let mut records = Vec::new();
    for row in rows {
        let (key, parent, due_at, body, label, position) =
            row.map_err(|e| backend_error(&context(), e))?;
        let body = match Body::from_json(body) {
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
            label,
            position,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    //! The statements the store runs, checked against SQLite's query planner: every shape the
    //! engine issues must walk an index from its first match to its limit, never read a whole
    //! table or sort the rows it found.

    use lockgate_store::Cursor;

    use super::*;

    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        crate::migrations::migrate(&mut conn).expect("migrations apply");
        conn
    }

    /// SQLite's plan for `sql` with `params` bound, one line per step.
    fn plan(conn: &Connection, sql: &str, params: impl Params) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the statement prepares");
        stmt.query_map(params, |row| row.get::<_, String>(3))
            .expect("the plan runs")
            .collect::<Result<_, _>>()
            .expect("plan lines read")
    }

    /// Asserts that the plan reads `table` through `index` and neither scans the table itself
    /// nor sorts in a temporary b-tree.
    fn assert_indexed(what: &str, table: &str, index: &str, plan: &[String]) {
        for line in plan {
            assert!(
                !line.contains("TEMP B-TREE"),
                "{what}: sorts its rows instead of reading them in index order: {plan:?}"
            );
            assert!(
                !line.starts_with(&format!("SCAN {table}")) || line.contains(" INDEX "),
                "{what}: reads the whole table: {plan:?}"
            );
        }
        assert!(
            plan.iter()
                .any(|line| line.contains(&format!(" INDEX {index} ")) || line.ends_with(index)),
            "{what}: does not use {index}: {plan:?}"
        );
    }

    fn cursor() -> Option<Cursor> {
        Some(Cursor {
            position: 42,
            key: "deploy/00000042".into(),
        })
    }

    #[test]
    fn every_scan_the_engine_issues_walks_an_index_in_order() {
        let conn = migrated();
        let executions = || Scan::new(Collection::Execution, 20).parent("deploy");
        let pipelines = || Scan::new(Collection::Pipeline, 100);
        let cases: Vec<(&str, Scan, &str)> = vec![
            (
                "a pipeline's executions, newest first",
                executions().by_position().descending(),
                "executions_position",
            ),
            (
                "a pipeline's executions, newest first, the next page",
                executions().by_position().descending().after(cursor()),
                "executions_position",
            ),
            (
                "a pipeline's active executions",
                executions().label("active").by_position(),
                "executions_label",
            ),
            (
                "a pipeline's active executions, the next page",
                executions().label("active").by_position().after(cursor()),
                "executions_label",
            ),
            (
                "a pipeline's finished executions, newest first, the next page",
                executions()
                    .label("finished")
                    .by_position()
                    .descending()
                    .after(cursor()),
                "executions_label",
            ),
            (
                "pipelines by name",
                pipelines(),
                "sqlite_autoindex_pipelines_1",
            ),
            (
                "pipelines by name, the next page",
                pipelines().after(cursor()),
                "sqlite_autoindex_pipelines_1",
            ),
            (
                "pipelines by name whose name contains a text, the next page",
                pipelines().key_contains("Deploy").after(cursor()),
                "sqlite_autoindex_pipelines_1",
            ),
            (
                "pipelines by position, the next page",
                pipelines().by_position().after(cursor()),
                "pipelines_position",
            ),
            (
                "pipelines by position, newest first, the next page",
                pipelines().by_position().descending().after(cursor()),
                "pipelines_position",
            ),
            (
                "pipelines with a status",
                pipelines().label("waiting").by_position(),
                "pipelines_label",
            ),
            (
                "pipelines with a status, the next page",
                pipelines().label("waiting").by_position().after(cursor()),
                "pipelines_label",
            ),
            (
                "pipelines with a status whose name contains a text, the next page",
                pipelines()
                    .label("waiting")
                    .key_contains("deploy")
                    .by_position()
                    .after(cursor()),
                "pipelines_label",
            ),
            (
                "queued jobs of an action type",
                Scan::new(Collection::Job, 10)
                    .label("Custom/Build/lockgate/1")
                    .by_position(),
                "jobs_label",
            ),
            (
                "queued jobs of an action type, the next page",
                Scan::new(Collection::Job, 10)
                    .label("Custom/Build/lockgate/1")
                    .by_position()
                    .after(cursor()),
                "jobs_label",
            ),
        ];
        for (what, scan, index) in cases {
            let (sql, params) = scan_query(&scan);
            let plan = plan(&conn, &sql, rusqlite::params_from_iter(params));
            assert_indexed(what, scan.collection.as_str(), index, &plan);
        }
    }

    #[test]
    fn due_timers_and_counts_are_read_from_an_index() {
        let conn = migrated();
        let plan_of_due = plan(&conn, &due_query(Collection::Timer), (1_000_i64, 100_i64));
        assert_indexed("due timers", "timers", "timers_due_at", &plan_of_due);
        for collection in [Collection::Session, Collection::Outbox] {
            let table = collection.as_str();
            let plan = plan(&conn, &due_query(collection), (1_000_i64, 100_i64));
            assert_indexed("due records", table, &format!("{table}_due_at"), &plan);
        }
        let cases = [
            (
                "a pipeline's active executions",
                Collection::Execution,
                Some("deploy"),
                Some("active"),
                "executions_label",
            ),
            (
                "pipelines with a status",
                Collection::Pipeline,
                None,
                Some("waiting"),
                "pipelines_label",
            ),
            (
                "queued jobs of an action type",
                Collection::Job,
                None,
                Some("Custom/Build/lockgate/1"),
                "jobs_label",
            ),
        ];
        for (what, collection, parent, label, index) in cases {
            let (sql, params) = count_query(collection, parent, label);
            let plan = plan(&conn, &sql, rusqlite::params_from_iter(params));
            assert_indexed(what, collection.as_str(), index, &plan);
        }
    }
}
