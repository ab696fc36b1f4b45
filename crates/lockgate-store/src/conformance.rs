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
//! - Scans use the same byte-wise key order; `key_contains` folds ASCII letters only (`É` does
//!   not match `é`) and takes `%` and `_` literally.
//! - A cursor is a place, not a record: it stays valid when its record is deleted or moved, and
//!   one that names no record continues after where that record would be.
//!
//! The scan checks compare the store with the same scan worked out in memory over the whole
//! collection (from `load`), so they hold whatever other checks left in the store.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use serde_json::json;

use crate::{Collection, Cursor, Mutation, Record, Scan, ScanOrder, Store};

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
    label_and_position_read_back_through_every_read(store).await;
    scans_by_key_follow_byte_order_in_both_directions(store).await;
    scans_by_position_break_ties_by_key_in_both_directions(store).await;
    scan_filters_apply_alone_and_combined(store).await;
    scan_limits_and_cursors_continue_pages_exactly(store).await;
    pages_continue_across_concurrent_writes_without_skipping_or_repeating(store).await;
    relabel_changes_only_label_and_position_and_skips_missing_records(store).await;
    count_counts_by_parent_and_label(store).await;
    get_and_scan_reads_what_get_and_scan_read(store).await;
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
            let generations: Vec<_> = seen
                .iter()
                .map(|r| r.body.value()["generation"].clone())
                .collect();
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
        .all(|r| r.body.value()["generation"] == json!(GENERATIONS)));
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
            job.body.value()["round"],
            json!(COMMITS_PER_TASK - 1),
            "{} holds its task's last write",
            job.key
        );
    }
    let shared = get(store, Collection::Pipeline, "concurrent/shared")
        .await
        .expect("the record every task wrote exists");
    assert_eq!(
        shared.body.value()["round"],
        json!(COMMITS_PER_TASK - 1),
        "the last write to a contended key is some task's last round"
    );
}

/// Label and position are part of the record: they read back through `get`, `load`,
/// `list_children` and `due` as written by `Put` and `Update`, and a `Put` without them clears
/// them.
pub async fn label_and_position_read_back_through_every_read<S: Store>(store: &S) {
    let execution = Record::new(
        Collection::Execution,
        "labelled/execution",
        json!({"status": "InProgress"}),
    )
    .with_parent("labelled/pipeline")
    .with_label("active")
    .with_position(i64::MIN);
    let message = Record::new(Collection::Outbox, "labelled/message", json!({"to": "ops"}))
        .with_due_at(5)
        .with_label("email")
        .with_position(i64::MAX);
    commit(
        store,
        vec![
            Mutation::Put(execution.clone()),
            Mutation::Put(message.clone()),
        ],
    )
    .await;
    assert_eq!(
        get(store, Collection::Execution, &execution.key).await,
        Some(execution.clone())
    );
    assert_eq!(
        loaded(store, Collection::Execution, "labelled/").await,
        vec![execution.clone()]
    );
    assert_eq!(
        children(store, Collection::Execution, "labelled/pipeline").await,
        vec![execution.clone()]
    );
    let due_messages = match store.due(Collection::Outbox, 5, usize::MAX).await {
        Ok(records) => records,
        Err(e) => panic!("due(outbox) failed: {e}"),
    };
    assert!(
        due_messages.contains(&message),
        "due returns label and position: {due_messages:?}"
    );

    let updated = execution.clone().with_label("finished").with_position(-3);
    commit(store, vec![Mutation::Update(updated.clone())]).await;
    assert_eq!(
        get(store, Collection::Execution, &execution.key).await,
        Some(updated),
        "Update replaces label and position"
    );
    let unlabelled = Record::new(Collection::Execution, execution.key.clone(), json!({}))
        .with_parent("labelled/pipeline");
    commit(store, vec![Mutation::Put(unlabelled.clone())]).await;
    assert_eq!(
        get(store, Collection::Execution, &execution.key).await,
        Some(unlabelled),
        "a Put without label and position clears them"
    );
    commit(
        store,
        vec![
            delete(Collection::Execution, &execution.key),
            delete(Collection::Outbox, &message.key),
        ],
    )
    .await;
}

/// Scans by key walk byte-wise UTF-8 order (not the database's collation, not UTF-16 order,
/// not case-insensitive), ascending and descending, with and without filters, page by page.
pub async fn scans_by_key_follow_byte_order_in_both_directions<S: Store>(store: &S) {
    let fixture = scan_fixture("scan-key/");
    commit(store, fixture.iter().cloned().map(Mutation::Put).collect()).await;
    let keys: Vec<String> = scan_all(
        store,
        Scan::new(Collection::Execution, 4).key_contains("scan-key/"),
    )
    .await
    .into_iter()
    .map(|r| r.key)
    .collect();
    // Spelled out rather than taken from `str`'s order, so that the store and this check
    // cannot agree on a wrong order: ASCII upper case before lower case, U+007F before any
    // accented letter, U+FF61 (three bytes) before U+1F680 (four bytes; first in UTF-16).
    let suffixes = [
        "", "B", "DEPLOY_3", "Deploy-1", "Z", "a", "a%_", "a-0", "a/0", "a0", "deploy-2", "x y",
        "z", "\u{7f}", "É", "é", "\u{ff61}", "🚀",
    ];
    let expected: Vec<String> = suffixes.iter().map(|s| format!("scan-key/{s}")).collect();
    assert_eq!(keys, expected, "byte-wise key order");
    let descending: Vec<String> = scan_all(
        store,
        Scan::new(Collection::Execution, 5)
            .key_contains("scan-key/")
            .descending(),
    )
    .await
    .into_iter()
    .map(|r| r.key)
    .collect();
    assert_eq!(
        descending,
        expected.into_iter().rev().collect::<Vec<_>>(),
        "descending is the exact reverse"
    );

    for scan in [
        Scan::new(Collection::Execution, 5),
        Scan::new(Collection::Execution, 5).descending(),
        Scan::new(Collection::Execution, 3).parent("scan-key/p1"),
        Scan::new(Collection::Execution, 3)
            .parent("scan-key/p2")
            .descending(),
    ] {
        assert_scan_matches_model(store, scan).await;
    }
    delete_fixture(store, &fixture).await;
}

/// Scans by position order by position, then key, ascending and descending, including equal,
/// negative and extreme positions.
pub async fn scans_by_position_break_ties_by_key_in_both_directions<S: Store>(store: &S) {
    let fixture = scan_fixture("scan-position/");
    commit(store, fixture.iter().cloned().map(Mutation::Put).collect()).await;
    let positions: Vec<(i64, String)> = scan_all(
        store,
        Scan::new(Collection::Execution, 2)
            .parent("scan-position/p1")
            .by_position(),
    )
    .await
    .into_iter()
    .map(|r| (r.position, r.key))
    .collect();
    let expected: Vec<(i64, String)> = [
        (i64::MIN, "\u{7f}"),
        (-5, "a%_"),
        (0, "DEPLOY_3"),
        (7, "a"),
        (7, "a-0"),
        (i64::MAX, "É"),
    ]
    .into_iter()
    .map(|(p, k)| (p, format!("scan-position/{k}")))
    .collect();
    assert_eq!(positions, expected, "by position, equal positions by key");

    for scan in [
        Scan::new(Collection::Execution, 5).by_position(),
        Scan::new(Collection::Execution, 5)
            .by_position()
            .descending(),
        Scan::new(Collection::Execution, 3)
            .parent("scan-position/p2")
            .by_position(),
        Scan::new(Collection::Execution, 3)
            .parent("scan-position/p1")
            .by_position()
            .descending(),
    ] {
        assert_scan_matches_model(store, scan).await;
    }
    delete_fixture(store, &fixture).await;
}

/// Parent, label and key text filter alone and together, in either order and direction;
/// the key text ignores ASCII case only and takes `%` and `_` literally.
pub async fn scan_filters_apply_alone_and_combined<S: Store>(store: &S) {
    let fixture = scan_fixture("scan-filter/");
    commit(store, fixture.iter().cloned().map(Mutation::Put).collect()).await;

    let deploys = scan_all(
        store,
        Scan::new(Collection::Execution, 10).key_contains("scan-filter/deploy"),
    )
    .await;
    assert_eq!(
        deploys.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        [
            "scan-filter/DEPLOY_3",
            "scan-filter/Deploy-1",
            "scan-filter/deploy-2"
        ],
        "ASCII case is ignored"
    );
    let accented = scan_all(
        store,
        Scan::new(Collection::Execution, 10).key_contains("scan-filter/É"),
    )
    .await;
    assert_eq!(
        accented.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["scan-filter/É"],
        "only ASCII letters are folded"
    );
    let literal = scan_all(
        store,
        Scan::new(Collection::Execution, 10).key_contains("%_"),
    )
    .await;
    assert_eq!(
        literal.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["scan-filter/a%_"],
        "% and _ are plain characters"
    );

    let parent = || Scan::new(Collection::Execution, 3).parent("scan-filter/p1");
    let everything = || Scan::new(Collection::Execution, 4);
    for scan in [
        parent(),
        parent().by_position().descending(),
        everything().label("scan-filter/active"),
        everything().label("scan-filter/active").by_position(),
        everything().key_contains("SCAN-FILTER/"),
        everything()
            .key_contains("deploy")
            .by_position()
            .descending(),
        everything().key_contains(""),
        everything().key_contains("🚀"),
        parent().label("scan-filter/active"),
        parent().label("scan-filter/active").by_position(),
        parent()
            .label("scan-filter/finished")
            .by_position()
            .descending(),
        parent().key_contains("A"),
        everything()
            .label("scan-filter/active")
            .key_contains("a")
            .descending(),
        parent()
            .label("scan-filter/active")
            .key_contains("A")
            .by_position(),
        parent().label("scan-filter/nobody"),
        everything().parent("scan-filter/nobody").by_position(),
    ] {
        assert_scan_matches_model(store, scan).await;
    }
    delete_fixture(store, &fixture).await;
}

/// `get_and_scan` answers exactly what `get` and `scan` answer on their own: the record or none,
/// and the scan's page in its order.
pub async fn get_and_scan_reads_what_get_and_scan_read<S: Store>(store: &S) {
    let fixture = scan_fixture("get-and-scan/");
    let entry = Record::new(
        Collection::Pipeline,
        "get-and-scan/p1",
        serde_json::json!({ "name": "p1" }),
    );
    let mut puts: Vec<Mutation> = fixture.iter().cloned().map(Mutation::Put).collect();
    puts.push(Mutation::Put(entry.clone()));
    commit(store, puts).await;

    let scans = [
        Scan::new(Collection::Execution, 2)
            .parent("get-and-scan/p1")
            .by_position()
            .descending(),
        Scan::new(Collection::Execution, 10).parent("get-and-scan/nobody"),
    ];
    for key in ["get-and-scan/p1", "get-and-scan/missing"] {
        for scan in scans.clone() {
            let (record, page) = match store
                .get_and_scan(Collection::Pipeline, key, scan.clone())
                .await
            {
                Ok(answer) => answer,
                Err(e) => panic!("get_and_scan({key:?}, {scan:?}) failed: {e}"),
            };
            assert_eq!(record, get(store, Collection::Pipeline, key).await, "{key}");
            assert_eq!(page, scan_page(store, scan.clone()).await, "{scan:?}");
        }
    }
    let (record, page) = store
        .get_and_scan(Collection::Pipeline, "get-and-scan/p1", scans[0].clone())
        .await
        .expect("get_and_scan");
    assert_eq!(record, Some(entry.clone()));
    assert_eq!(page.len(), 2, "the scan's limit holds");

    let mut deletes = fixture.clone();
    deletes.push(entry);
    delete_fixture(store, &deletes).await;
}

/// A limit caps a page (zero gives nothing); a cursor continues strictly after its record,
/// also when that record has been deleted, moved, or never existed.
pub async fn scan_limits_and_cursors_continue_pages_exactly<S: Store>(store: &S) {
    let record = |i: i64| {
        Record::new(
            Collection::Job,
            format!("scan-cursor/{i:02}"),
            json!({"i": i}),
        )
        .with_parent("scan-cursor/pipeline")
        .with_position(i / 2)
    };
    commit(store, (0..10).map(|i| Mutation::Put(record(i))).collect()).await;
    let base = |limit| Scan::new(Collection::Job, limit).parent("scan-cursor/pipeline");
    let keys = |records: Vec<Record>| records.into_iter().map(|r| r.key).collect::<Vec<_>>();

    assert!(scan_page(store, base(0)).await.is_empty(), "limit zero");
    assert_eq!(scan_page(store, base(3)).await.len(), 3);
    assert_eq!(scan_page(store, base(usize::MAX)).await.len(), 10);
    let first = scan_page(store, base(4)).await;
    let second = scan_page(store, base(4).after(first.last().map(Record::cursor))).await;
    assert_eq!(
        keys(second),
        [
            "scan-cursor/04",
            "scan-cursor/05",
            "scan-cursor/06",
            "scan-cursor/07"
        ]
    );

    // The record a page ended with is deleted, then another moves: the cursor still holds.
    let cursor = first.last().map(Record::cursor);
    commit(store, vec![delete(Collection::Job, "scan-cursor/03")]).await;
    assert_eq!(
        keys(scan_page(store, base(2).after(cursor.clone())).await),
        ["scan-cursor/04", "scan-cursor/05"],
        "a deleted record's cursor continues after where it was"
    );
    let by_position = |limit| base(limit).by_position();
    let cursor = Some(Cursor {
        position: 2,
        key: "scan-cursor/04".into(),
    });
    commit(
        store,
        vec![Mutation::Relabel {
            collection: Collection::Job,
            key: "scan-cursor/04".into(),
            label: None,
            position: 100,
        }],
    )
    .await;
    assert_eq!(
        keys(scan_page(store, by_position(3).after(cursor)).await),
        ["scan-cursor/05", "scan-cursor/06", "scan-cursor/07"],
        "a moved record's old place is still a valid cursor"
    );
    // Cursors that never named a record.
    let between = Some(Cursor {
        position: 0,
        key: "scan-cursor/05x".into(),
    });
    assert_eq!(
        keys(scan_page(store, base(1).after(between.clone())).await),
        ["scan-cursor/06"]
    );
    assert_eq!(
        keys(scan_page(store, base(1).after(between).descending()).await),
        ["scan-cursor/05"]
    );
    let end = Some(Cursor {
        position: i64::MAX,
        key: "scan-cursor/\u{10FFFF}".into(),
    });
    assert!(scan_page(store, base(5).after(end.clone()))
        .await
        .is_empty());
    assert!(scan_page(store, by_position(5).after(end)).await.is_empty());
    let start = Some(Cursor {
        position: i64::MIN,
        key: String::new(),
    });
    assert_eq!(
        keys(scan_page(store, by_position(1).after(start)).await),
        ["scan-cursor/00"]
    );

    commit(
        store,
        vec![Mutation::DeleteChildren {
            collection: Collection::Job,
            parent: "scan-cursor/pipeline".into(),
        }],
    )
    .await;
}

/// While one task pages through a collection in small pages, another keeps committing:
/// inserts, deletes and relabels of other records, behind and ahead of the reader, and body
/// rewrites of the records being paged. Every record that existed unmoved throughout is seen
/// exactly once, and every pass comes back in strict scan order.
pub async fn pages_continue_across_concurrent_writes_without_skipping_or_repeating<S: Store>(
    store: &S,
) {
    const STABLE: i64 = 100;
    const PARENT: &str = "churn/pipeline";
    let stable = |i: i64, version: i64| {
        Record::new(
            Collection::Execution,
            format!("churn/r{i:03}"),
            json!({"stable": i, "version": version}),
        )
        .with_parent(PARENT)
        .with_label(if i % 2 == 0 {
            "churn/active"
        } else {
            "churn/finished"
        })
        .with_position(i * 10)
    };
    // A churn record sorts between stable records both by key and by position.
    let churn_key = |n: i64| format!("churn/r{:03}+{n}", (n * 37) % STABLE);
    let churn = |n: i64| {
        Record::new(Collection::Execution, churn_key(n), json!({"churn": n}))
            .with_parent(PARENT)
            .with_label(if n % 3 == 0 {
                "churn/active"
            } else {
                "churn/finished"
            })
            .with_position((n * 37) % STABLE * 10 + 5)
    };
    commit(
        store,
        (0..STABLE).map(|i| Mutation::Put(stable(i, 0))).collect(),
    )
    .await;

    let reading = AtomicBool::new(true);
    let (committed, mut batches) = tokio::sync::watch::channel(0_i64);
    let writer = async {
        let mut n = 0_i64;
        while reading.load(Ordering::SeqCst) {
            let mut mutations = vec![
                Mutation::Put(churn(n)),
                // Rewrite a stable record's body and relabel another to where it already is:
                // neither moves it.
                Mutation::Update(stable((n * 13) % STABLE, n)),
                Mutation::Relabel {
                    collection: Collection::Execution,
                    key: stable((n * 7) % STABLE, 0).key,
                    label: stable((n * 7) % STABLE, 0).label,
                    position: stable((n * 7) % STABLE, 0).position,
                },
            ];
            if n >= 1 {
                // Move the previous churn record elsewhere, to another label.
                mutations.push(Mutation::Relabel {
                    collection: Collection::Execution,
                    key: churn_key(n - 1),
                    label: Some(
                        if n % 2 == 0 {
                            "churn/active"
                        } else {
                            "churn/finished"
                        }
                        .into(),
                    ),
                    position: (n * 53 + 11) % STABLE * 10 + 3,
                });
            }
            if n >= 4 {
                mutations.push(delete(Collection::Execution, &churn_key(n - 4)));
            }
            commit(store, mutations).await;
            n += 1;
            committed.send_replace(n);
        }
        n
    };
    let reader = async {
        let scans = [
            Scan::new(Collection::Execution, 7).parent(PARENT),
            Scan::new(Collection::Execution, 5)
                .parent(PARENT)
                .by_position()
                .descending(),
            Scan::new(Collection::Execution, 3)
                .parent(PARENT)
                .label("churn/active")
                .by_position(),
            Scan::new(Collection::Execution, 4)
                .key_contains("CHURN/R")
                .descending(),
        ];
        let mut pages = 0;
        for scan in scans {
            let mut seen: Vec<Record> = Vec::new();
            let mut after = None;
            loop {
                let page_scan = scan.clone().after(after);
                let page = scan_page(store, page_scan.clone()).await;
                assert_page_continues(&page_scan, &page);
                pages += 1;
                let Some(last) = page.last() else { break };
                after = Some(last.cursor());
                seen.extend(page);
                // Let at least one more commit land before the next page.
                batches.borrow_and_update();
                if batches.changed().await.is_err() {
                    panic!("the writer stopped while pages were read");
                }
            }
            assert_strictly_ordered(&scan, &seen);
            for record in &seen {
                assert!(
                    matches_filters(record, &scan),
                    "{} does not match {scan:?}",
                    record.key
                );
            }
            let mut expected: Vec<Record> = (0..STABLE)
                .map(|i| stable(i, 0))
                .filter(|r| matches_filters(r, &scan))
                .collect();
            sort_for(&scan, &mut expected);
            let seen_stable: Vec<(&str, Option<&str>, i64)> = seen
                .iter()
                .filter(|r| r.body.value().get("stable").is_some())
                .map(|r| (r.key.as_str(), r.label.as_deref(), r.position))
                .collect();
            let expected_stable: Vec<(&str, Option<&str>, i64)> = expected
                .iter()
                .map(|r| (r.key.as_str(), r.label.as_deref(), r.position))
                .collect();
            assert_eq!(
                seen_stable, expected_stable,
                "every record that stayed in place is seen once, in order ({scan:?})"
            );
        }
        reading.store(false, Ordering::SeqCst);
        pages
    };
    let (batches, pages) = tokio::join!(writer, reader);
    assert!(
        batches >= pages - 4,
        "{batches} commits landed between {pages} pages"
    );
    commit(
        store,
        vec![Mutation::DeleteChildren {
            collection: Collection::Execution,
            parent: PARENT.into(),
        }],
    )
    .await;
}

/// Relabel sets label and position and leaves body, parent and due time alone; it does
/// nothing for a missing record (never creates one), and applies in commit order.
pub async fn relabel_changes_only_label_and_position_and_skips_missing_records<S: Store>(
    store: &S,
) {
    let relabel = |key: &str, label: Option<&str>, position| Mutation::Relabel {
        collection: Collection::Job,
        key: key.into(),
        label: label.map(str::to_owned),
        position,
    };
    let job = Record::new(
        Collection::Job,
        "relabel/job",
        json!({"actionType": "Build", "large": "x".repeat(10_000)}),
    )
    .with_parent("relabel/pipeline")
    .with_due_at(1_234)
    .with_label("relabel/queued")
    .with_position(5);
    let same_key_elsewhere =
        Record::new(Collection::Pipeline, "relabel/job", json!({})).with_label("relabel/queued");
    commit(
        store,
        vec![
            Mutation::Put(job.clone()),
            Mutation::Put(same_key_elsewhere.clone()),
        ],
    )
    .await;

    commit(
        store,
        vec![relabel("relabel/job", Some("relabel/running"), 9)],
    )
    .await;
    let running = job.clone().with_label("relabel/running").with_position(9);
    assert_eq!(
        get(store, Collection::Job, "relabel/job").await,
        Some(running.clone())
    );
    assert_eq!(
        get(store, Collection::Pipeline, "relabel/job").await,
        Some(same_key_elsewhere),
        "the same key in another collection is untouched"
    );
    let by_label = |label: &str| Scan::new(Collection::Job, 10).label(label).by_position();
    assert_eq!(
        scan_page(store, by_label("relabel/running")).await,
        vec![running.clone()]
    );
    assert!(scan_page(store, by_label("relabel/queued"))
        .await
        .is_empty());

    commit(store, vec![relabel("relabel/job", None, -1)]).await;
    let mut cleared = job.clone();
    cleared.label = None;
    cleared.position = -1;
    assert_eq!(
        get(store, Collection::Job, "relabel/job").await,
        Some(cleared)
    );

    let before = count(store, Collection::Job, None, None).await;
    commit(
        store,
        vec![relabel("relabel/missing", Some("relabel/running"), 1)],
    )
    .await;
    assert_eq!(get(store, Collection::Job, "relabel/missing").await, None);
    assert_eq!(count(store, Collection::Job, None, None).await, before);

    // In one commit: a put then a relabel of it lands relabelled; a delete then a relabel
    // leaves nothing.
    let fresh = Record::new(Collection::Job, "relabel/fresh", json!({"fresh": true}));
    commit(
        store,
        vec![
            Mutation::Put(fresh.clone()),
            relabel("relabel/fresh", Some("relabel/queued"), 3),
            delete(Collection::Job, "relabel/job"),
            relabel("relabel/job", Some("relabel/queued"), 4),
        ],
    )
    .await;
    assert_eq!(
        get(store, Collection::Job, "relabel/fresh").await,
        Some(fresh.with_label("relabel/queued").with_position(3))
    );
    assert_eq!(get(store, Collection::Job, "relabel/job").await, None);

    commit(
        store,
        vec![
            delete(Collection::Job, "relabel/fresh"),
            delete(Collection::Pipeline, "relabel/job"),
        ],
    )
    .await;
}

/// count counts a collection's records by parent, by label, by both, or all of them, and
/// follows puts, relabels and deletes at once.
pub async fn count_counts_by_parent_and_label<S: Store>(store: &S) {
    let job = |i: usize| {
        let record = Record::new(
            Collection::Job,
            format!("count/job-{i:02}"),
            json!({"i": i}),
        )
        .with_parent(format!("count/pipeline-{}", i % 3));
        match i % 4 {
            0 | 1 => record.with_label("count/queued"),
            2 => record.with_label("count/running"),
            _ => record,
        }
    };
    let jobs: Vec<Record> = (0..24).map(job).collect();
    commit(store, jobs.iter().cloned().map(Mutation::Put).collect()).await;
    let expect = |parent: Option<&str>, label: Option<&str>| {
        jobs.iter()
            .filter(|r| parent.is_none_or(|p| r.parent.as_deref() == Some(p)))
            .filter(|r| label.is_none_or(|l| r.label.as_deref() == Some(l)))
            .count() as u64
    };
    for (parent, label) in [
        (Some("count/pipeline-0"), None),
        (Some("count/pipeline-2"), None),
        (None, Some("count/queued")),
        (None, Some("count/running")),
        (Some("count/pipeline-1"), Some("count/queued")),
        (Some("count/pipeline-0"), Some("count/running")),
        (Some("count/nobody"), None),
        (None, Some("count/nothing")),
    ] {
        assert_eq!(
            count(store, Collection::Job, parent, label).await,
            expect(parent, label),
            "count({parent:?}, {label:?})"
        );
    }
    assert_eq!(
        count(store, Collection::Job, None, None).await,
        match store.load(Collection::Job).await {
            Ok(records) => records.len() as u64,
            Err(e) => panic!("load(jobs) failed: {e}"),
        },
        "no filter counts the whole collection"
    );
    assert_eq!(
        count(store, Collection::Pipeline, Some("count/pipeline-0"), None).await,
        0,
        "other collections are not counted"
    );

    commit(
        store,
        vec![
            Mutation::Relabel {
                collection: Collection::Job,
                key: "count/job-00".into(),
                label: Some("count/running".into()),
                position: 0,
            },
            delete(Collection::Job, "count/job-01"),
        ],
    )
    .await;
    assert_eq!(
        count(store, Collection::Job, None, Some("count/queued")).await,
        expect(None, Some("count/queued")) - 2
    );
    assert_eq!(
        count(store, Collection::Job, None, Some("count/running")).await,
        expect(None, Some("count/running")) + 1
    );
    commit(
        store,
        jobs.iter()
            .map(|r| delete(Collection::Job, &r.key))
            .collect(),
    )
    .await;
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

/// Records under `prefix` for the scan checks: keys whose byte order differs from case-folded,
/// UTF-16 and numeric order, two parents (and none), two labels (and none), and positions with
/// ties and both extremes.
fn scan_fixture(prefix: &str) -> Vec<Record> {
    const SUFFIXES: [&str; 18] = [
        "a", "B", "é", "É", "Z", "z", "\u{7f}", "\u{ff61}", "🚀", "a%_", "Deploy-1", "deploy-2",
        "DEPLOY_3", "a0", "a/0", "a-0", "", "x y",
    ];
    const POSITIONS: [i64; 5] = [7, i64::MIN, 0, i64::MAX, -5];
    SUFFIXES
        .iter()
        .enumerate()
        .map(|(i, suffix)| {
            let mut record = Record::new(
                Collection::Execution,
                format!("{prefix}{suffix}"),
                json!({"i": i}),
            )
            .with_position(POSITIONS[i % POSITIONS.len()]);
            match i % 3 {
                0 => record = record.with_parent(format!("{prefix}p1")),
                1 => record = record.with_parent(format!("{prefix}p2")),
                _ => {}
            }
            match i % 4 {
                0 | 3 => record.with_label(format!("{prefix}active")),
                1 => record.with_label(format!("{prefix}finished")),
                _ => record,
            }
        })
        .collect()
}

async fn delete_fixture<S: Store>(store: &S, fixture: &[Record]) {
    commit(
        store,
        fixture
            .iter()
            .map(|r| delete(r.collection, &r.key))
            .collect(),
    )
    .await;
}

async fn scan_page<S: Store>(store: &S, scan: Scan) -> Vec<Record> {
    match store.scan(scan.clone()).await {
        Ok(records) => records,
        Err(e) => panic!("scan({scan:?}) failed: {e}"),
    }
}

/// Every record `scan` reaches, read page after page of `scan.limit` records.
async fn scan_all<S: Store>(store: &S, scan: Scan) -> Vec<Record> {
    assert!(scan.limit > 0, "paging needs a limit above zero");
    let mut all = Vec::new();
    let mut after = scan.after.clone();
    loop {
        let page_scan = scan.clone().after(after);
        let page = scan_page(store, page_scan.clone()).await;
        assert_page_continues(&page_scan, &page);
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(last.cursor());
        all.extend(page);
    }
}

/// Asserts that a page holds at most its limit and starts strictly after its cursor (so that
/// paging a broken store fails instead of reading the same page forever).
fn assert_page_continues(scan: &Scan, page: &[Record]) {
    assert!(
        page.len() <= scan.limit,
        "{} records in a page of {scan:?}",
        page.len()
    );
    if let (Some(cursor), Some(first)) = (&scan.after, page.first()) {
        assert!(
            is_after(first, cursor, scan),
            "{} does not come after the cursor of {scan:?}",
            first.key
        );
    }
}

/// Checks `scan` against the same scan done in memory over the whole collection: once in one
/// page without limit, then page by page with the scan's limit, each page against the model.
async fn assert_scan_matches_model<S: Store>(store: &S, scan: Scan) {
    let all = match store.load(scan.collection).await {
        Ok(records) => records,
        Err(e) => panic!("load({}) failed: {e}", scan.collection),
    };
    let unlimited = Scan {
        after: None,
        limit: usize::MAX,
        ..scan.clone()
    };
    let expected = model(&all, &unlimited);
    assert_eq!(
        scan_page(store, unlimited.clone()).await,
        expected,
        "{unlimited:?}"
    );
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page_scan = scan.clone().after(after);
        let page = scan_page(store, page_scan.clone()).await;
        assert_eq!(page, model(&all, &page_scan), "{page_scan:?}");
        let Some(last) = page.last() else { break };
        after = Some(last.cursor());
        paged.extend(page);
    }
    assert_eq!(paged, expected, "pages of {scan:?} add up to the whole");
}

/// What `scan` should return from `all`, worked out in memory.
fn model(all: &[Record], scan: &Scan) -> Vec<Record> {
    let mut records: Vec<Record> = all
        .iter()
        .filter(|r| matches_filters(r, scan))
        .filter(|r| scan.after.as_ref().is_none_or(|c| is_after(r, c, scan)))
        .cloned()
        .collect();
    sort_for(scan, &mut records);
    records.truncate(scan.limit);
    records
}

/// Whether `record` passes the scan's collection, parent, label and key-text filters.
fn matches_filters(record: &Record, scan: &Scan) -> bool {
    record.collection == scan.collection
        && scan
            .parent
            .as_ref()
            .is_none_or(|p| record.parent.as_ref() == Some(p))
        && scan
            .label
            .as_ref()
            .is_none_or(|l| record.label.as_ref() == Some(l))
        && scan.key_contains.as_ref().is_none_or(|text| {
            record
                .key
                .to_ascii_lowercase()
                .contains(&text.to_ascii_lowercase())
        })
}

/// Where a record sorts in the scan's order (ascending; byte-wise keys).
fn sort_key<'a>(scan: &Scan, position: i64, key: &'a str) -> (i64, &'a [u8]) {
    match scan.order {
        ScanOrder::Key => (0, key.as_bytes()),
        ScanOrder::Position => (position, key.as_bytes()),
    }
}

fn sort_for(scan: &Scan, records: &mut [Record]) {
    records.sort_by(|a, b| {
        sort_key(scan, a.position, &a.key).cmp(&sort_key(scan, b.position, &b.key))
    });
    if scan.descending {
        records.reverse();
    }
}

/// Whether `record` comes strictly after `cursor` in the scan's order and direction.
fn is_after(record: &Record, cursor: &Cursor, scan: &Scan) -> bool {
    let here = sort_key(scan, record.position, &record.key);
    let there = sort_key(scan, cursor.position, &cursor.key);
    if scan.descending {
        here < there
    } else {
        here > there
    }
}

fn assert_strictly_ordered(scan: &Scan, records: &[Record]) {
    for pair in records.windows(2) {
        assert!(
            is_after(&pair[1], &pair[0].cursor(), scan),
            "{} then {} is out of order for {scan:?}",
            pair[0].key,
            pair[1].key
        );
    }
}

async fn count<S: Store>(
    store: &S,
    collection: Collection,
    parent: Option<&str>,
    label: Option<&str>,
) -> u64 {
    match store.count(collection, parent, label).await {
        Ok(n) => n,
        Err(e) => panic!("count({collection}, {parent:?}, {label:?}) failed: {e}"),
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
