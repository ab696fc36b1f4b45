//! Deferred collections: index-like records made durable in a log, written to their tables later.
//!
//! An approval changes one execution, but also the records that let things be found without
//! loading a pipeline: a timer disarmed and another armed, a job place queued, the pipeline's
//! listing moved. Those rows sit at random places in tables with two or three indexes each, and
//! writing them is about nine tenths of what SQLite does for the approval
//! (`scripts/sqlite-write-ceiling`). So the writer does not write them in the caller's
//! transaction. It appends them, as one row of the `deferred_ops` table, to that same
//! transaction — so they are exactly as durable as the rest of the commit — and writes them to
//! their tables later, many commits' worth in one transaction ("a flush"), where the B-tree
//! pages they share are written once instead of once per group.
//!
//! Invariants:
//! - Every mutation of a deferred collection goes through the log, so the mutations of one
//!   collection are applied in commit order, and a deferred row is never written by two paths.
//! - The `deferred_ops` table holds exactly the commits not yet flushed: a flush applies the
//!   whole backlog and empties the table in one transaction, and opening the store replays and
//!   empties it before the writer starts, so a crash between commit and flush loses nothing.
//! - Reads see every acknowledged commit ([`Pending`]): a read of one key whose waiting
//!   mutations decide the row on their own (a put or a delete, then relabels) is answered from
//!   them; any other read of a deferred collection that touches waiting mutations (that key,
//!   or, for scans and counts, any) first asks the writer to flush. A commit's keys are marked
//!   waiting before its caller is answered.
//! - A flush is committed with `synchronous=NORMAL`: it need not be durable on its own, since
//!   until it is, the log rows it deletes are still there to be replayed, and SQLite syncs the
//!   WAL before any later `FULL` commit returns and before any checkpoint.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use lockgate_store::{Body, Collection, Record, StoreError};

use crate::writer::{Op, Row};
use crate::{backend_error, driver_error};

/// Whether the writer defers a collection's mutations: the tables an engine decision touches
/// besides the execution, read by key or by scans that can wait for a flush.
pub(crate) fn is_deferred(collection: Collection) -> bool {
    matches!(
        collection,
        Collection::Pipeline | Collection::Job | Collection::Timer
    )
}

/// Deferred mutations are flushed once this many are waiting (about 400 approvals' worth).
/// Larger flushes share more pages but hold up the commits queued behind them: with 20,000
/// pipelines, 16,384 gave somewhat more approvals a second than 2,048 but a p99 three to four
/// times longer (140–200 ms against 40–50 ms, about what it was without deferral).
pub(crate) const FLUSH_AT_OPS: usize = 2_048;

/// Deferred mutations are also flushed once their log rows hold this many bytes, so that one
/// flush of large records (pipeline declarations) stays about the size of a group commit and
/// the WAL passes its limit by one such transaction at most (an approval logs about 400 bytes).
pub(crate) const FLUSH_AT_BYTES: usize = 128 * 1024;

/// What is waiting for a flush, as readers need to know it: what the waiting mutations make of
/// each key they name, and which collections have any (or a mutation that is not about one key).
#[derive(Default)]
pub(crate) struct Pending {
    inner: Mutex<PendingKeys>,
}

#[derive(Default)]
struct PendingKeys {
    /// Per collection (by its place in [`Collection::ALL`]): the keys waiting mutations name.
    keys: [HashMap<String, KeyState>; Collection::ALL.len()],
    /// Per collection: any mutation waiting.
    any: [bool; Collection::ALL.len()],
    /// Per collection: a mutation waiting that touches rows by something else than their key
    /// (deleting a parent's children), so no key of it can be read without a flush.
    wide: [bool; Collection::ALL.len()],
    /// How many mutations are waiting.
    ops: usize,
}

/// What the waiting mutations make of one key.
enum KeyState {
    /// The row as it will be once they are written (`None`: there will be none), whatever the
    /// table holds now: the first of them put or deleted the whole row.
    Known(Option<PendingRow>),
    /// It depends on the row in the table (the first was a relabel or an update of a row
    /// written before): only a flush tells.
    Unknown,
}

/// A row as the waiting mutations leave it.
struct PendingRow {
    parent: Option<String>,
    due_at: Option<i64>,
    label: Option<String>,
    position: i64,
    body: String,
}

impl PendingRow {
    fn of(row: &Row) -> PendingRow {
        PendingRow {
            parent: row.parent.clone(),
            due_at: row.due_at,
            label: row.label.clone(),
            position: row.position,
            body: row.body.clone(),
        }
    }
}

/// What a read of one key finds among the waiting mutations.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// No mutation of the key waits: the table is up to date.
    InTable,
    /// The waiting mutations decide the row, which is this (`None`: there is none).
    Known(Option<Record>),
    /// The row depends on the table and the waiting mutations: read it after a flush.
    AfterFlush,
}

impl Pending {
    /// Marks what `ops` touch as waiting; called by the writer before it answers their commit.
    pub(crate) fn record(&self, ops: &[Op]) {
        let mut p = self.lock();
        for op in ops {
            let c = op.collection() as usize;
            p.any[c] = true;
            let keys = &mut p.keys[c];
            match op {
                Op::Put(row) => {
                    keys.insert(row.key.clone(), KeyState::Known(Some(PendingRow::of(row))));
                }
                Op::Delete { key, .. } => {
                    keys.insert(key.clone(), KeyState::Known(None));
                }
                Op::Update(row) => {
                    // An update of a row that will not exist does nothing.
                    let state = keys.entry(row.key.clone()).or_insert(KeyState::Unknown);
                    if let KeyState::Known(Some(known)) = state {
                        *known = PendingRow::of(row);
                    }
                }
                Op::Relabel {
                    key,
                    label,
                    position,
                    ..
                } => {
                    let state = keys.entry(key.clone()).or_insert(KeyState::Unknown);
                    if let KeyState::Known(Some(known)) = state {
                        known.label.clone_from(label);
                        known.position = *position;
                    }
                }
                Op::DeleteChildren { .. } => p.wide[c] = true,
            }
        }
        p.ops += ops.len();
    }

    /// Everything was flushed.
    pub(crate) fn clear(&self) {
        *self.lock() = PendingKeys::default();
    }

    /// What a read of `key` of `collection` finds: the table, the row the waiting mutations
    /// leave (answered without a flush, e.g. a job just queued and now acknowledged), or the
    /// need for a flush first.
    pub(crate) fn lookup(&self, collection: Collection, key: &str) -> Lookup {
        if !is_deferred(collection) {
            return Lookup::InTable;
        }
        let p = self.lock();
        let c = collection as usize;
        if !p.any[c] {
            return Lookup::InTable;
        }
        if p.wide[c] {
            return Lookup::AfterFlush;
        }
        match p.keys[c].get(key) {
            None => Lookup::InTable,
            Some(KeyState::Unknown) => Lookup::AfterFlush,
            Some(KeyState::Known(None)) => Lookup::Known(None),
            Some(KeyState::Known(Some(row))) => match Body::from_json(row.body.clone()) {
                Ok(body) => Lookup::Known(Some(Record {
                    collection,
                    key: key.to_owned(),
                    parent: row.parent.clone(),
                    due_at: row.due_at,
                    body,
                    label: row.label.clone(),
                    position: row.position,
                })),
                // Not expected (bodies are JSON when committed); the table's read reports it.
                Err(_) => Lookup::AfterFlush,
            },
        }
    }

    /// Whether scanning or counting `collection` must wait for a flush.
    pub(crate) fn holds_any(&self, collection: Collection) -> bool {
        is_deferred(collection) && self.lock().any[collection as usize]
    }

    /// How many mutations wait for a flush.
    pub(crate) fn ops(&self) -> usize {
        self.lock().ops
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PendingKeys> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One mutation as the log keeps it (short field names: the log is written on every commit).
/// Strings borrow from the row when they hold no escapes.
#[derive(Serialize, Deserialize)]
struct Logged<'a> {
    /// `put`, `update`, `relabel`, `delete` or `delete_children`.
    #[serde(borrow)]
    op: Cow<'a, str>,
    /// The collection's table name.
    #[serde(borrow)]
    c: Cow<'a, str>,
    /// The key (the parent for `delete_children`).
    #[serde(borrow)]
    k: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    p: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<i64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    l: Option<Cow<'a, str>>,
    #[serde(default)]
    n: i64,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    b: Option<Cow<'a, str>>,
}

impl<'a> Logged<'a> {
    /// A mutation that names only its kind, collection and key (or parent).
    fn naming(op: &'static str, collection: Collection, key: &'a str) -> Logged<'a> {
        Logged {
            op: Cow::Borrowed(op),
            c: Cow::Borrowed(collection.as_str()),
            k: Cow::Borrowed(key),
            p: None,
            d: None,
            l: None,
            n: 0,
            b: None,
        }
    }
}

/// The log row for one commit's deferred mutations: a JSON array, in their order.
pub(crate) fn encode(ops: &[Op]) -> String {
    let logged: Vec<Logged<'_>> = ops
        .iter()
        .map(|op| match op {
            Op::Put(row) | Op::Update(row) => Logged {
                op: Cow::Borrowed(if matches!(op, Op::Put(_)) {
                    "put"
                } else {
                    "update"
                }),
                c: Cow::Borrowed(row.collection.as_str()),
                k: Cow::Borrowed(&row.key),
                p: row.parent.as_deref().map(Cow::Borrowed),
                d: row.due_at,
                l: row.label.as_deref().map(Cow::Borrowed),
                n: row.position,
                b: Some(Cow::Borrowed(&row.body)),
            },
            Op::Relabel {
                collection,
                key,
                label,
                position,
            } => Logged {
                l: label.as_deref().map(Cow::Borrowed),
                n: *position,
                ..Logged::naming("relabel", *collection, key)
            },
            Op::Delete { collection, key } => Logged::naming("delete", *collection, key),
            Op::DeleteChildren { collection, parent } => {
                Logged::naming("delete_children", *collection, parent)
            }
        })
        .collect();
    serde_json::to_string(&logged).expect("logged mutations are plain JSON")
}

/// The mutations of one log row, as [`encode`] wrote them.
pub(crate) fn decode(seq: i64, text: &str) -> Result<Vec<Op>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        collection: "deferred_ops",
        key: seq.to_string(),
        reason,
    };
    let logged: Vec<Logged<'_>> = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("is not a list of mutations: {e}")))?;
    logged
        .into_iter()
        .map(|l| {
            let collection = Collection::ALL
                .iter()
                .copied()
                .find(|c| c.as_str() == l.c)
                .ok_or_else(|| corrupt(format!("names an unknown table {:?}", l.c)))?;
            let key = l.k.into_owned();
            let label = l.l.map(Cow::into_owned);
            Ok(match &*l.op {
                op @ ("put" | "update") => {
                    let row = Row {
                        collection,
                        key,
                        parent: l.p.map(Cow::into_owned),
                        due_at: l.d,
                        label,
                        position: l.n,
                        body: l.b.unwrap_or_default().into_owned(),
                    };
                    if op == "put" {
                        Op::Put(row)
                    } else {
                        Op::Update(row)
                    }
                }
                "relabel" => Op::Relabel {
                    collection,
                    key,
                    label,
                    position: l.n,
                },
                "delete" => Op::Delete { collection, key },
                "delete_children" => Op::DeleteChildren {
                    collection,
                    parent: key,
                },
                other => return Err(corrupt(format!("has an unknown mutation {other:?}"))),
            })
        })
        .collect()
}

/// Appends one commit's deferred mutations to the log, inside the caller's transaction.
pub(crate) fn append(conn: &Connection, text: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO deferred_ops (ops) VALUES (?1)")?
        .execute([text])
        .map(drop)
}

/// Writes `backlog` to its tables and empties the log, in one transaction committed without an
/// fsync of its own (see the module's invariants). On failure nothing changed and the backlog
/// is still to be flushed.
pub(crate) fn flush(
    conn: &Connection,
    backlog: &[Op],
    apply: impl Fn(&Op) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    let run = || -> rusqlite::Result<()> {
        conn.execute_batch("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")?;
        in_key_order(backlog).into_iter().try_for_each(&apply)?;
        conn.prepare_cached("DELETE FROM deferred_ops")?
            .execute([])?;
        conn.execute_batch("COMMIT")
    };
    let result = run();
    if result.is_err() && !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rolling back a failed flush of deferred mutations");
        }
    }
    // Back to durable commits whatever happened: every acknowledged commit needs FULL.
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(|e| driver_error("restoring synchronous=FULL after a flush", e))?;
    result.map_err(|e| driver_error("flushing deferred mutations", e))
}

/// The order a flush applies `backlog` in: by collection and key, so that neighbouring rows are
/// written one after another while their pages are in the cache, keeping the commit order of
/// mutations of the same key (the sort is stable). Mutations that touch rows by their parent
/// could cross keys, so with one of them in the backlog it is applied in commit order.
fn in_key_order(backlog: &[Op]) -> Vec<&Op> {
    let mut ordered: Vec<&Op> = backlog.iter().collect();
    if backlog.iter().all(|op| op.key().is_some()) {
        ordered.sort_by(|a, b| (a.collection(), a.key()).cmp(&(b.collection(), b.key())));
    }
    ordered
}

/// Reads the log left by a store that stopped before flushing it (a crash, `kill -9`), oldest
/// first; opening the store flushes it before anything else is read or written.
pub(crate) fn read_log(conn: &Connection) -> Result<Vec<Op>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT seq, ops FROM deferred_ops ORDER BY seq")
        .map_err(|e| backend_error("reading the deferred mutations", e))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(|e| backend_error("reading the deferred mutations", e))?;
    let mut ops = Vec::new();
    for row in rows {
        let (seq, text) = row.map_err(|e| backend_error("reading the deferred mutations", e))?;
        ops.extend(decode(seq, &text)?);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use lockgate_store::{Mutation, Record};

    use super::*;

    fn sample() -> Vec<Op> {
        [
            Mutation::Put(
                Record::new(
                    Collection::Timer,
                    "t1",
                    serde_json::json!({"a": "\"quoted\""}),
                )
                .with_parent("p")
                .with_due_at(42)
                .with_label("l")
                .with_position(-7),
            ),
            Mutation::Update(Record::new(Collection::Job, "j1", serde_json::json!({}))),
            Mutation::Relabel {
                collection: Collection::Pipeline,
                key: "p".into(),
                label: Some("InProgress".into()),
                position: 1,
            },
            Mutation::Relabel {
                collection: Collection::Pipeline,
                key: "q".into(),
                label: None,
                position: 0,
            },
            Mutation::Delete {
                collection: Collection::Timer,
                key: "t0".into(),
            },
            Mutation::DeleteChildren {
                collection: Collection::Job,
                parent: "p".into(),
            },
        ]
        .into_iter()
        .map(Op::from_mutation)
        .collect()
    }

    #[test]
    fn a_log_row_decodes_to_the_mutations_it_was_encoded_from() {
        let ops = sample();
        let decoded = decode(1, &encode(&ops)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{ops:?}"));
    }

    #[test]
    fn a_log_row_that_is_not_mutations_is_corrupt() {
        for text in [
            "not json",
            r#"[{"op":"put","c":"nowhere","k":"x"}]"#,
            r#"[{"op":"squash","c":"timers","k":"x"}]"#,
        ] {
            assert!(
                matches!(decode(1, text), Err(StoreError::Corrupt { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn a_flush_orders_by_key_keeping_each_keys_commit_order_unless_a_parent_is_deleted() {
        let relabel = |key: &str, position| {
            Op::from_mutation(Mutation::Relabel {
                collection: Collection::Pipeline,
                key: key.into(),
                label: None,
                position,
            })
        };
        let backlog = || {
            vec![
                relabel("b", 1),
                relabel("a", 1),
                relabel("b", 2),
                relabel("a", 2),
            ]
        };
        let order = |ops: Vec<&Op>| -> Vec<String> {
            ops.iter()
                .map(|op| match op {
                    Op::Relabel { key, position, .. } => format!("{key}{position}"),
                    _ => "children".into(),
                })
                .collect()
        };
        assert_eq!(order(in_key_order(&backlog())), ["a1", "a2", "b1", "b2"]);

        let mut with_children = backlog();
        with_children.insert(
            1,
            Op::from_mutation(Mutation::DeleteChildren {
                collection: Collection::Job,
                parent: "a".into(),
            }),
        );
        assert_eq!(
            order(in_key_order(&with_children)),
            ["b1", "children", "a1", "b2", "a2"]
        );
    }

    #[test]
    fn pending_keys_answer_reads_of_rows_they_decide_and_hold_the_others_for_a_flush() {
        let pending = Pending::default();
        let known = |l: Lookup| match l {
            Lookup::Known(r) => r.map(|r| (r.label, r.position, r.body.value())),
            other => panic!("expected a known row, got {other:?}"),
        };
        pending.record(&sample()[..3]);
        assert_eq!(
            known(pending.lookup(Collection::Timer, "t1")),
            Some((Some("l".into()), -7, serde_json::json!({"a": "\"quoted\""})))
        );
        assert!(matches!(
            pending.lookup(Collection::Timer, "t2"),
            Lookup::InTable
        ));
        assert!(pending.holds_any(Collection::Timer));
        // A relabel of a row put before the log: only the table knows the rest of it.
        assert!(matches!(
            pending.lookup(Collection::Pipeline, "p"),
            Lookup::AfterFlush
        ));
        assert!(!pending.holds_any(Collection::Execution));
        assert!(matches!(
            pending.lookup(Collection::Execution, "p"),
            Lookup::InTable
        ));
        assert_eq!(pending.ops(), 3);

        // A put then a relabel: the relabelled row. A delete: no row.
        pending.record(&[
            Op::from_mutation(Mutation::Put(
                Record::new(Collection::Pipeline, "new", serde_json::json!({})).with_label("a"),
            )),
            Op::from_mutation(Mutation::Relabel {
                collection: Collection::Pipeline,
                key: "new".into(),
                label: Some("b".into()),
                position: 3,
            }),
            Op::from_mutation(Mutation::Delete {
                collection: Collection::Timer,
                key: "t1".into(),
            }),
        ]);
        assert_eq!(
            known(pending.lookup(Collection::Pipeline, "new")),
            Some((Some("b".into()), 3, serde_json::json!({})))
        );
        assert_eq!(known(pending.lookup(Collection::Timer, "t1")), None);

        // Deleting children touches keys the log does not name: every key of Job waits.
        pending.record(&sample()[5..]);
        assert!(matches!(
            pending.lookup(Collection::Job, "any"),
            Lookup::AfterFlush
        ));

        pending.clear();
        assert!(!pending.holds_any(Collection::Timer));
        assert!(matches!(
            pending.lookup(Collection::Job, "any"),
            Lookup::InTable
        ));
        assert_eq!(pending.ops(), 0);
    }
}
