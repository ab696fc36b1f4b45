//! Group commit: concurrent callers share transactions, and one caller's failing commit does not
//! fail the others in its group.

use lockgate_store::{Collection, Store, StoreError};

use crate::{fresh_store, put, wait_for_pending, WriteLock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_queued_together_share_one_transaction() {
    let (dir, store) = fresh_store();
    let lock = WriteLock::take(&dir);
    let commits: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .commit(vec![put(
                        Collection::Execution,
                        &format!("execution-{i:03}"),
                    )])
                    .await
            })
        })
        .collect();
    wait_for_pending(&store, 200).await;
    lock.release();
    for commit in commits {
        commit.await.expect("task joins").expect("commit succeeds");
    }

    let stats = store.stats();
    assert_eq!(stats.commits, 200);
    assert_eq!(stats.pending, 0);
    // The writer may have taken the first commit alone before it hit the lock; everything that
    // queued behind the lock goes in one more transaction.
    assert!(
        stats.transactions <= 2,
        "200 queued commits took {} transactions",
        stats.transactions
    );
    assert_eq!(
        store.load(Collection::Execution).await.expect("load").len(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_commit_is_rolled_back_alone_and_its_group_still_commits() {
    let (dir, store) = fresh_store();
    let lock = WriteLock::take(&dir);
    // Break one table behind the store's back so that commits touching it fail inside SQLite.
    lock.execute("DROP TABLE tags");
    let spawn_good = |i: usize| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit(vec![put(Collection::Pipeline, &format!("good-{i:02}"))])
                .await
        })
    };
    let mut good: Vec<_> = (0..20).map(spawn_good).collect();
    wait_for_pending(&store, 20).await;
    let bad = {
        let store = store.clone();
        tokio::spawn(async move {
            // The first mutation would succeed on its own; the second fails, taking both down.
            store
                .commit(vec![
                    put(Collection::Pipeline, "bad-half"),
                    put(Collection::Tags, "arn:aws:codepipeline:::bad"),
                ])
                .await
        })
    };
    wait_for_pending(&store, 21).await;
    good.extend((20..40).map(spawn_good));
    wait_for_pending(&store, 41).await;
    lock.release();

    let bad = bad.await.expect("task joins");
    assert!(matches!(bad, Err(StoreError::Backend(_))), "{bad:?}");
    for commit in good {
        commit
            .await
            .expect("task joins")
            .expect("a good commit in the same group succeeds");
    }
    let stats = store.stats();
    assert_eq!((stats.commits, stats.failed_commits), (40, 1));
    assert!(
        stats.transactions <= 2,
        "the failing commit shared a transaction with good ones ({} transactions)",
        stats.transactions
    );
    let pipelines = store.load(Collection::Pipeline).await.expect("load");
    assert_eq!(pipelines.len(), 40, "every good commit landed");
    assert!(
        store
            .get(Collection::Pipeline, "bad-half")
            .await
            .expect("get")
            .is_none(),
        "no part of the failed commit landed"
    );
}
