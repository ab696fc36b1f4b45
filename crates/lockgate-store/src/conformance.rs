//! The conformance suite: what every [`Store`] backend must do, checked against a live store.
//!
//! A backend's tests call [`run`] (or the individual checks, to get one test per behaviour)
//! on a freshly created, empty store. The checks panic with a message on the first violation,
//! like `assert!` in a test.
//!
//! Each check writes only keys and parents under its own prefix, so the checks can share one
//! store and run in any order. The exception is timers: [`due_timers_returns_due_timers_earliest_first_up_to_the_limit`]
//! needs a store with no other due timers, so every check that writes a timer deletes it again.
//!
//! Behaviour this suite pins down beyond the trait's documentation:
//! - "Ordered by key" means byte-wise order of the UTF-8 key (Rust's `str` order), whatever
//!   collation the database would use by default.
//! - A commit's mutations apply in the order given, so `[Put x, Delete x]` leaves no `x`.
//! - Once `commit` has returned `Ok`, every later read (from any task) sees its mutations.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use serde_json::json;

use crate::{Collection, Mutation, Record, Store};

/// Runs every check in this module against `store`, which should be empty.
pub async fn run<S: Store>(store: &S) {
    a_put_record_reads_back_unchanged(store).await;
    a_put_replaces_the_record_with_the_same_key(store).await;
    a_delete_removes_only_that_record(store).await;
    an_update_replaces_an_existing_record_and_never_brings_back_a_deleted_one(store).await;
    delete_children_removes_every_child_of_that_parent_and_nothing_else(store).await;
    list_children_orders_by_key_and_separates_parents(store).await;
    load_returns_every_record_of_one_collection_and_no_other(store).await;
    due_timers_returns_due_timers_earliest_first_up_to_the_limit(store).await;
    a_commit_applies_its_mutations_in_order_and_all_together(store).await;
    concurrent_commits_from_many_tasks_all_land(store).await;
}

/// `Update` replaces a record that exists (body, parent, due time) and does nothing for a key
/// that is missing, in the same commit as other mutations.
pub async fn an_update_replaces_an_existing_record_and_never_brings_back_a_deleted_one<S: Store>(
    store: &S,
) {
    let original = Record::new(Collection::Outbox, "update/kept", json!({"attempts": 0}))
        .with_parent("update-parent")
        .with_due_at(10);
    commit(store, vec![Mutation::Put(original)]).await;
    let changed = Record::new(Collection::Outbox, "update/kept", json!({"attempts": 1}))
        .with_parent("update-parent")
        .with_due_at(20);
    let ghost = Record::new(Collection::Outbox, "update/deleted", json!({"attempts": 1}));
    commit(
        store,
        vec![Mutation::Update(changed.clone()), Mutation::Update(ghost)],
    )
    .await;
    assert_eq!(
        get(store, Collection::Outbox, "update/kept").await,
        Some(changed)
    );
    assert_eq!(get(store, Collection::Outbox, "update/deleted").await, None);
    commit(store, vec![delete(Collection::Outbox, "update/kept")]).await;
}

/// Records come back exactly as written: parent, due time, and every kind of JSON value,
/// including awkward keys, large bodies and the same key in two collections.
pub async fn a_put_record_reads_back_unchanged<S: Store>(store: &S) {
    let execution = Record::new(
        Collection::Execution,
        "roundtrip/execution-1",
        json!({
            "pipelineName": "roundtrip",
            "stages": [{"name": "Source", "attempt": 1}, {"name": "Deploy", "attempt": 2}],
            "nested": {"true": true, "false": false, "null": null, "half": 1.5, "negative": -7},
            "beyondDoublePrecision": 9_007_199_254_740_993_u64,
            "minimum": i64::MIN,
            "text": "quote ' double \" backslash \\ newline \n tab \t nul \u{0} é ✓ 🚀",
        }),
    )
    .with_parent("roundtrip/pipeline")
    .with_due_at(1_700_000_000_123);
    let awkward = Record::new(
        Collection::Pipeline,
        "roundtrip/it's \"quoted\"; DROP TABLE pipelines; -- ✓",
        json!("a body that is just a string"),
    );
    let same_key_other_collection = Record::new(
        Collection::Job,
        "roundtrip/execution-1",
        json!({"job": true}),
    )
    .with_parent("roundtrip/other-parent");
    let large = Record::new(
        Collection::PipelineVersion,
        "roundtrip/large",
        json!({"declaration": "x".repeat(256 * 1024)}),
    );
    let scalars = [json!(null), json!(0), json!([]), json!({})]
        .into_iter()
        .enumerate()
        .map(|(i, body)| Record::new(Collection::Tags, format!("roundtrip/scalar-{i}"), body))
        .collect::<Vec<_>>();

    let mut all = vec![
        execution.clone(),
        awkward.clone(),
        same_key_other_collection.clone(),
        large.clone(),
    ];
    all.extend(scalars.iter().cloned());
    commit(store, all.iter().cloned().map(Mutation::Put).collect()).await;

    for record in &all {
        assert_eq!(
            get(store, record.collection, &record.key).await.as_ref(),
            Some(record),
            "{}/{} reads back as written",
            record.collection,
            record.key
        );
    }
    assert_eq!(
        get(store, Collection::Pipeline, "roundtrip/missing").await,
        None,
        "a key never written reads as None"
    );
    assert_eq!(
        get(store, Collection::Pipeline, "roundtrip/execution-1").await,
        None,
        "a key written in other collections is absent from this one"
    );
    store
        .commit(Vec::new())
        .await
        .expect("an empty commit succeeds");
}

/// A put with an existing key replaces the whole record, parent and due time included.
pub async fn a_put_replaces_the_record_with_the_same_key<S: Store>(store: &S) {
    let key = "replace/execution";
    let first = Record::new(Collection::Execution, key, json!({"version": 1}))
        .with_parent("replace/pipeline-a")
        .with_due_at(10);
    let second = Record::new(Collection::Execution, key, json!({"version": 2}))
        .with_parent("replace/pipeline-b");
    commit(store, vec![Mutation::Put(first)]).await;
    commit(store, vec![Mutation::Put(second.clone())]).await;

    assert_eq!(
        get(store, Collection::Execution, key).await,
        Some(second.clone())
    );
    assert!(
        children(store, Collection::Execution, "replace/pipeline-a")
            .await
            .is_empty(),
        "a replaced record no longer lists under its old parent"
    );
    assert_eq!(
        children(store, Collection::Execution, "replace/pipeline-b").await,
        vec![second],
        "a replaced record lists under its new parent"
    );
    assert_eq!(
        loaded(store, Collection::Execution, "replace/").await.len(),
        1,
        "replacing does not duplicate"
    );

    let third = Record::new(Collection::Execution, key, json!({"version": 3}));
    let fourth = Record::new(Collection::Execution, key, json!({"version": 4}));
    commit(
        store,
        vec![Mutation::Put(third), Mutation::Put(fourth.clone())],
    )
    .await;
    assert_eq!(
        get(store, Collection::Execution, key).await,
        Some(fourth),
        "the later of two puts in one commit wins"
    );
}

/// Delete removes one record; deleting a missing record succeeds and changes nothing.
pub async fn a_delete_removes_only_that_record<S: Store>(store: &S) {
    let gone = Record::new(Collection::Job, "delete/job-1", json!(1)).with_parent("delete/p");
    let kept = Record::new(Collection::Job, "delete/job-2", json!(2)).with_parent("delete/p");
    let same_key_elsewhere = Record::new(Collection::Pipeline, "delete/job-1", json!(3));
    commit(
        store,
        vec![
            Mutation::Put(gone.clone()),
            Mutation::Put(kept.clone()),
            Mutation::Put(same_key_elsewhere.clone()),
        ],
    )
    .await;

    commit(store, vec![delete(Collection::Job, &gone.key)]).await;
    assert_eq!(get(store, Collection::Job, &gone.key).await, None);
    assert_eq!(
        get(store, Collection::Job, &kept.key).await,
        Some(kept.clone())
    );
    assert_eq!(
        get(store, Collection::Pipeline, &gone.key).await,
        Some(same_key_elsewhere),
        "deleting in one collection leaves the same key in another"
    );
    assert_eq!(
        children(store, Collection::Job, "delete/p").await,
        vec![kept.clone()]
    );

    commit(store, vec![delete(Collection::Job, &gone.key)]).await;
    commit(store, vec![delete(Collection::Job, "delete/never-written")]).await;
    assert_eq!(
        loaded(store, Collection::Job, "delete/").await,
        vec![kept],
        "deleting missing records changes nothing"
    );
}

/// DeleteChildren removes exactly the records of one collection whose parent equals the given
/// parent (not ones whose parent merely starts with it).
pub async fn delete_children_removes_every_child_of_that_parent_and_nothing_else<S: Store>(
    store: &S,
) {
    let child = |collection, key: &str, parent: &str| {
        Record::new(collection, format!("dc/{key}"), json!({"key": key}))
            .with_parent(format!("dc/{parent}"))
    };
    let doomed = [
        child(Collection::Execution, "e1", "p1"),
        child(Collection::Execution, "e2", "p1"),
        child(Collection::Execution, "e3", "p1"),
    ];
    let survivors = [
        child(Collection::Execution, "e4", "p2"),
        child(Collection::Execution, "e5", "p1/x"),
        child(Collection::Execution, "e6", "P1"),
        child(Collection::Job, "j1", "p1"),
        Record::new(Collection::Execution, "dc/orphan", json!("no parent")),
    ];
    commit(
        store,
        doomed
            .iter()
            .chain(&survivors)
            .cloned()
            .map(Mutation::Put)
            .collect(),
    )
    .await;

    commit(
        store,
        vec![Mutation::DeleteChildren {
            collection: Collection::Execution,
            parent: "dc/p1".into(),
        }],
    )
    .await;
    for record in &doomed {
        assert_eq!(get(store, record.collection, &record.key).await, None);
    }
    for record in &survivors {
        assert_eq!(
            get(store, record.collection, &record.key).await.as_ref(),
            Some(record),
            "{}/{} survives",
            record.collection,
            record.key
        );
    }

    commit(
        store,
        vec![Mutation::DeleteChildren {
            collection: Collection::Execution,
            parent: "dc/no-such-parent".into(),
        }],
    )
    .await;
    assert_eq!(
        loaded(store, Collection::Execution, "dc/").await.len(),
        4,
        "deleting the children of a parent with none changes nothing"
    );
}

/// list_children returns one parent's records of one collection, in byte-wise key order.
pub async fn list_children_orders_by_key_and_separates_parents<S: Store>(store: &S) {
    // Written out of order, over two commits, with keys whose byte order differs from both
    // numeric and case-insensitive order.
    let keys = [
        "lc/b", "lc/a", "lc/c/10", "lc/é", "lc/c/2", "lc/C", "lc/a0", "lc/Z", "lc/c/1",
    ];
    let records: Vec<Record> = keys
        .iter()
        .map(|key| {
            Record::new(Collection::PipelineVersion, *key, json!({"key": key}))
                .with_parent("lc/pipeline")
        })
        .collect();
    let (first, second) = records.split_at(4);
    commit(store, first.iter().cloned().map(Mutation::Put).collect()).await;
    commit(store, second.iter().cloned().map(Mutation::Put).collect()).await;
    let other_parent = Record::new(Collection::PipelineVersion, "lc/other", json!(0))
        .with_parent("lc/other-pipeline");
    let other_collection =
        Record::new(Collection::Execution, "lc/execution", json!(0)).with_parent("lc/pipeline");
    commit(
        store,
        vec![
            Mutation::Put(other_parent.clone()),
            Mutation::Put(other_collection.clone()),
        ],
    )
    .await;

    let mut expected = records.clone();
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        children(store, Collection::PipelineVersion, "lc/pipeline").await,
        expected,
        "children come back whole and in byte-wise key order"
    );
    assert_eq!(
        children(store, Collection::PipelineVersion, "lc/other-pipeline").await,
        vec![other_parent]
    );
    assert_eq!(
        children(store, Collection::Execution, "lc/pipeline").await,
        vec![other_collection]
    );
    assert!(children(store, Collection::PipelineVersion, "lc/nobody")
        .await
        .is_empty());
    assert!(
        children(store, Collection::PipelineVersion, "lc/")
            .await
            .is_empty(),
        "a parent matches exactly, not as a prefix"
    );
}

/// load returns every record of the asked collection and none of the others.
pub async fn load_returns_every_record_of_one_collection_and_no_other<S: Store>(store: &S) {
    let records: Vec<Record> = Collection::ALL
        .iter()
        .flat_map(|&collection| {
            (0..3).map(move |i| {
                let record = Record::new(
                    collection,
                    format!("load/{collection}/{i}"),
                    json!({"collection": collection.as_str(), "i": i}),
                );
                // Timers are the only collection whose records must carry a due time.
                if collection == Collection::Timer {
                    record.with_due_at(i)
                } else {
                    record
                }
            })
        })
        .collect();
    commit(store, records.iter().cloned().map(Mutation::Put).collect()).await;

    for &collection in Collection::ALL {
        let expected: Vec<Record> = records
            .iter()
            .filter(|r| r.collection == collection)
            .cloned()
            .collect();
        assert_eq!(
            loaded(store, collection, "load/").await,
            expected,
            "load({collection}) returns exactly that collection's records"
        );
    }

    // Leave no due timers behind for the due_timers check.
    commit(
        store,
        records
            .iter()
            .filter(|r| r.collection == Collection::Timer)
            .map(|r| delete(Collection::Timer, &r.key))
            .collect(),
    )
    .await;
}

/// due_timers returns timers (and only timers) with `due_at <= cut-off`, earliest first, at most
/// `limit` of them; moving or deleting a timer takes effect at once.
pub async fn due_timers_returns_due_timers_earliest_first_up_to_the_limit<S: Store>(store: &S) {
    assert!(
        due(store, i64::MAX, usize::MAX).await.is_empty(),
        "this check needs a store without timers"
    );
    let timer = |key: &str, due_at: i64| {
        Record::new(
            Collection::Timer,
            format!("due/{key}"),
            json!({"timer": key}),
        )
        .with_parent("due/pipeline")
        .with_due_at(due_at)
    };
    // Written out of due order.
    let timers = [
        timer("t3000", 3_000),
        timer("t1000", 1_000),
        timer("t2000-b", 2_000),
        timer("t2000-a", 2_000),
        timer("t5000", 5_000),
        timer("before-epoch", -5),
    ];
    let not_a_timer = Record::new(Collection::Job, "due/job", json!({})).with_due_at(0);
    commit(
        store,
        timers
            .iter()
            .chain([&not_a_timer])
            .cloned()
            .map(Mutation::Put)
            .collect(),
    )
    .await;

    let all = due(store, i64::MAX, usize::MAX).await;
    assert_eq!(
        all.len(),
        timers.len(),
        "every timer, and nothing else, is due eventually"
    );
    assert_earliest_first(&all);
    assert_eq!(all[0], timers[5], "a due time before the epoch comes first");

    assert_eq!(
        due_keys(store, 2_000, 10).await,
        [
            "due/before-epoch",
            "due/t1000",
            "due/t2000-a",
            "due/t2000-b"
        ],
        "the cut-off is inclusive"
    );
    assert_eq!(
        due_keys(store, 1_999, 10).await,
        ["due/before-epoch", "due/t1000"]
    );
    assert!(
        due(store, -6, 10).await.is_empty(),
        "nothing is due before the earliest"
    );
    assert_eq!(
        due_keys(store, i64::MAX, 2).await,
        ["due/before-epoch", "due/t1000"],
        "the limit keeps the earliest"
    );
    assert!(
        due(store, i64::MAX, 0).await.is_empty(),
        "a limit of zero returns nothing"
    );

    // Deleting a timer and moving one later both take effect immediately.
    commit(
        store,
        vec![
            delete(Collection::Timer, "due/t1000"),
            Mutation::Put(timer("t2000-a", 9_000)),
        ],
    )
    .await;
    assert_eq!(
        due_keys(store, 2_000, 10).await,
        ["due/before-epoch", "due/t2000-b"]
    );
    let moved = due(store, i64::MAX, usize::MAX).await;
    assert_earliest_first(&moved);
    assert_eq!(moved.last().map(|r| r.key.as_str()), Some("due/t2000-a"));

    commit(
        store,
        vec![Mutation::DeleteChildren {
            collection: Collection::Timer,
            parent: "due/pipeline".into(),
        }],
    )
    .await;
    assert!(due(store, i64::MAX, usize::MAX).await.is_empty());
}

/// A commit's mutations apply in order and as one unit: a reader never sees part of a commit.
pub async fn a_commit_applies_its_mutations_in_order_and_all_together<S: Store>(store: &S) {
    // Order within one commit.
    let record = |key: &str, body| Record::new(Collection::Job, format!("atomic/{key}"), body);
    commit(store, vec![Mutation::Put(record("existing", json!(1)))]).await;
    commit(
        store,
        vec![
            Mutation::Put(record("put-then-delete", json!(1))),
            delete(Collection::Job, "atomic/put-then-delete"),
            delete(Collection::Job, "atomic/existing"),
            Mutation::Put(record("existing", json!(2))),
        ],
    )
    .await;
    assert_eq!(
        get(store, Collection::Job, "atomic/put-then-delete").await,
        None
    );
    assert_eq!(
        get(store, Collection::Job, "atomic/existing").await,
        Some(record("existing", json!(2)))
    );

    let child = |key: &str, generation: u64| {
        Record::new(
            Collection::Execution,
            format!("atomic/{key}"),
            json!({"generation": generation}),
        )
        .with_parent("atomic/pipeline")
    };
    commit(store, vec![Mutation::Put(child("old", 0))]).await;
    commit(
        store,
        vec![
            Mutation::DeleteChildren {
                collection: Collection::Execution,
                parent: "atomic/pipeline".into(),
            },
            Mutation::Put(child("new", 0)),
        ],
    )
    .await;
    assert_eq!(
        children(store, Collection::Execution, "atomic/pipeline").await,
        vec![child("new", 0)],
        "a put after DeleteChildren in the same commit survives it"
    );

    // All together: each generation replaces every child in one commit, while a reader keeps
    // listing them. Every listing must show one whole generation.
    const GENERATIONS: u64 = 100;
    const CHILDREN: u64 = 8;
    let writing = AtomicBool::new(true);
    let writer = async {
        for generation in 1..=GENERATIONS {
            let mut mutations = vec![Mutation::DeleteChildren {
                collection: Collection::Execution,
                parent: "atomic/pipeline".into(),
            }];
            // Each generation uses different keys, so a torn read would show a mix of keys too.
            mutations.extend(
                (0..CHILDREN)
                    .map(|i| Mutation::Put(child(&format!("g{generation}-{i}"), generation))),
            );
            commit(store, mutations).await;
        }
        writing.store(false, Ordering::SeqCst);
    };
    let reader = async {
        let mut observations = 0_u64;
        while writing.load(Ordering::SeqCst) {
            let seen = children(store, Collection::Execution, "atomic/pipeline").await;
            let generations: Vec<_> = seen.iter().map(|r| r.body["generation"].clone()).collect();
            let whole = (seen.len() == 1 && generations[0] == json!(0))
                || (seen.len() as u64 == CHILDREN
                    && generations.iter().all(|g| *g == generations[0]));
            assert!(whole, "a reader saw part of a commit: {generations:?}");
            observations += 1;
        }
        observations
    };
    let ((), observations) = tokio::join!(writer, reader);
    assert!(observations > 0, "the reader ran while the writer wrote");
    let last = children(store, Collection::Execution, "atomic/pipeline").await;
    assert_eq!(last.len() as u64, CHILDREN);
    assert!(last
        .iter()
        .all(|r| r.body["generation"] == json!(GENERATIONS)));
}

/// Commits from many concurrent tasks all land, and each task reads its own write as soon as
/// its commit has returned.
pub async fn concurrent_commits_from_many_tasks_all_land<S: Store>(store: &S) {
    const TASKS: usize = 200;
    const COMMITS_PER_TASK: usize = 3;
    let tasks: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = (0..TASKS)
        .map(|task| {
            let run_task: Pin<Box<dyn Future<Output = ()> + Send + '_>> = Box::pin(async move {
                for round in 0..COMMITS_PER_TASK {
                    let execution = Record::new(
                        Collection::Execution,
                        format!("concurrent/execution-{task:03}-{round}"),
                        json!({"task": task, "round": round}),
                    )
                    .with_parent("concurrent/pipeline");
                    let job = Record::new(
                        Collection::Job,
                        format!("concurrent/job-{task:03}"),
                        json!({"task": task, "round": round}),
                    )
                    .with_parent(format!("concurrent/pipeline-{}", task % 7));
                    let shared = Record::new(
                        Collection::Pipeline,
                        "concurrent/shared",
                        json!({"task": task, "round": round}),
                    );
                    commit(
                        store,
                        vec![
                            Mutation::Put(execution.clone()),
                            Mutation::Put(job.clone()),
                            Mutation::Put(shared),
                        ],
                    )
                    .await;
                    assert_eq!(
                        get(store, Collection::Job, &job.key).await,
                        Some(job),
                        "a task reads its own acknowledged write"
                    );
                    assert_eq!(
                        get(store, Collection::Execution, &execution.key).await,
                        Some(execution)
                    );
                }
            });
            run_task
        })
        .collect();
    join_all(tasks).await;

    let executions = children(store, Collection::Execution, "concurrent/pipeline").await;
    assert_eq!(
        executions.len(),
        TASKS * COMMITS_PER_TASK,
        "every commit landed"
    );
    let jobs = loaded(store, Collection::Job, "concurrent/").await;
    assert_eq!(jobs.len(), TASKS, "one job per task");
    for job in &jobs {
        assert_eq!(
            job.body["round"],
            json!(COMMITS_PER_TASK - 1),
            "{} holds its task's last write",
            job.key
        );
    }
    let shared = get(store, Collection::Pipeline, "concurrent/shared")
        .await
        .expect("the record every task wrote exists");
    assert_eq!(
        shared.body["round"],
        json!(COMMITS_PER_TASK - 1),
        "the last write to a contended key is some task's last round"
    );
}

async fn commit<S: Store>(store: &S, mutations: Vec<Mutation>) {
    if let Err(e) = store.commit(mutations).await {
        panic!("commit failed: {e}");
    }
}

async fn get<S: Store>(store: &S, collection: Collection, key: &str) -> Option<Record> {
    match store.get(collection, key).await {
        Ok(record) => record,
        Err(e) => panic!("get({collection}, {key:?}) failed: {e}"),
    }
}

async fn children<S: Store>(store: &S, collection: Collection, parent: &str) -> Vec<Record> {
    match store.list_children(collection, parent).await {
        Ok(records) => records,
        Err(e) => panic!("list_children({collection}, {parent:?}) failed: {e}"),
    }
}

/// The collection's records whose key starts with `prefix`, sorted by key (load has no order).
async fn loaded<S: Store>(store: &S, collection: Collection, prefix: &str) -> Vec<Record> {
    let mut records = match store.load(collection).await {
        Ok(records) => records,
        Err(e) => panic!("load({collection}) failed: {e}"),
    };
    records.retain(|r| r.key.starts_with(prefix));
    records.sort_by(|a, b| a.key.cmp(&b.key));
    records
}

async fn due<S: Store>(store: &S, due_at: i64, limit: usize) -> Vec<Record> {
    match store.due_timers(due_at, limit).await {
        Ok(records) => records,
        Err(e) => panic!("due_timers({due_at}, {limit}) failed: {e}"),
    }
}

/// The keys of the due timers, with ties in due time put in key order (the trait leaves the
/// order of equal due times open).
async fn due_keys<S: Store>(store: &S, due_at: i64, limit: usize) -> Vec<String> {
    let mut records = due(store, due_at, limit).await;
    assert_earliest_first(&records);
    records.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
    records.into_iter().map(|r| r.key).collect()
}

fn assert_earliest_first(records: &[Record]) {
    for record in records {
        assert_eq!(record.collection, Collection::Timer);
        assert!(record.due_at.is_some(), "a due timer has a due time");
    }
    assert!(
        records.windows(2).all(|w| w[0].due_at <= w[1].due_at),
        "due timers come earliest first: {:?}",
        records.iter().map(|r| r.due_at).collect::<Vec<_>>()
    );
}

fn delete(collection: Collection, key: &str) -> Mutation {
    Mutation::Delete {
        collection,
        key: key.into(),
    }
}

/// Polls all futures concurrently in the calling task until every one has finished, so that
/// their commits are in flight at the same time without requiring the store to be `Clone`.
async fn join_all<'a>(futures: Vec<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>) {
    let mut running: Vec<Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>> =
        futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in running.iter_mut() {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(()) => *slot = None,
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
}
