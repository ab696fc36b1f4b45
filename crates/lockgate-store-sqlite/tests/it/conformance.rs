//! Runs the shared store conformance suite against SQLite: once whole on one store (as the suite
//! is meant to be run), and check by check on fresh stores so that a failure names the behaviour.

use lockgate_store::conformance;

use crate::fresh_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_conformance_suite_passes_on_one_store() {
    let (_dir, store) = fresh_store();
    conformance::run(&store).await;
}

macro_rules! each_check {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, store) = fresh_store();
            conformance::$check(&store).await;
        }
    )*};
}

each_check!(
    a_put_record_reads_back_unchanged,
    a_put_replaces_the_record_with_the_same_key,
    a_delete_removes_only_that_record,
    delete_children_removes_every_child_of_that_parent_and_nothing_else,
    list_children_orders_by_key_and_separates_parents,
    load_returns_every_record_of_one_collection_and_no_other,
    due_timers_returns_due_timers_earliest_first_up_to_the_limit,
    a_commit_applies_its_mutations_in_order_and_all_together,
    concurrent_commits_from_many_tasks_all_land,
    an_update_replaces_an_existing_record_and_never_brings_back_a_deleted_one,
    label_and_position_read_back_through_every_read,
    scans_by_key_follow_byte_order_in_both_directions,
    scans_by_position_break_ties_by_key_in_both_directions,
    scan_filters_apply_alone_and_combined,
    scan_limits_and_cursors_continue_pages_exactly,
    pages_continue_across_concurrent_writes_without_skipping_or_repeating,
    relabel_changes_only_label_and_position_and_skips_missing_records,
    count_counts_by_parent_and_label,
);
