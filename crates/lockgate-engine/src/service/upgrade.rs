//! Indexing a store written before records carried labels and positions and deadlines were
//! timer records (see `index`). Runs once, at the first start of this release on such a
//! store: it reads every pipeline with its whole history (as every start-up used to), writes
//! each one's records again with their labels, positions and timers, one commit per pipeline,
//! and records in the `Meta` collection that the store is indexed. Interrupted, it simply runs
//! again (every write is a whole-record put). A new store is marked indexed at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lockgate_store::{Collection, Mutation, Record, Store, StoreError};

use super::deadlines::deadlines_of;
use super::index;
use crate::state::{Execution, PipelineState};
use crate::stored;

/// The `Meta` record saying which index layout the store's records are written in.
const LAYOUT_KEY: &str = "index-layout";
/// The layout this release writes.
const LAYOUT: u64 = 1;

/// Indexes the store unless it is indexed already.
pub(super) async fn index_if_needed(store: &dyn Store) -> Result<(), StoreError> {
    let layout = store
        .get(Collection::Meta, LAYOUT_KEY)
        .await?
        .and_then(|r| {
            r.body
                .value()
                .get("layout")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(0);
    if layout >= LAYOUT {
        return Ok(());
    }
    let pipelines = store.load(Collection::Pipeline).await?;
    if !pipelines.is_empty() {
        tracing::info!(
            pipelines = pipelines.len(),
            "indexing a store written by an earlier release (once)"
        );
    }
    let mut states: BTreeMap<String, PipelineState> = BTreeMap::new();
    for r in &pipelines {
        let entry = stored::pipeline::read_entry(r)?;
        let current = entry.version();
        let decl = Arc::clone(&entry.declaration);
        states.insert(
            r.key.clone(),
            PipelineState {
                entry,
                versions: BTreeMap::from([(current, decl)]),
                executions: Vec::new(),
                history_truncated: false,
                complete_from_seq: 0,
            },
        );
    }
    let mut executions: HashMap<String, (String, Execution)> = HashMap::new();
    for r in store.load(Collection::Execution).await? {
        let e = stored::execution::read(&r)?;
        if let Some(p) = r.parent.as_ref().filter(|p| states.contains_key(*p)) {
            executions.insert(e.id.to_string(), (p.clone(), e));
        }
    }
    // Records written before executions owned their jobs keep each job in its own `Job`
    // record; such a job joins its execution here and is stored with it.
    for r in store.load(Collection::Job).await? {
        if let Some(job) = stored::job::read_legacy(&r)? {
            if let Some((_, e)) = executions.get_mut(job.execution_id.as_str()) {
                if e.job(&job.id).is_none() {
                    e.jobs.push(job);
                }
            }
        }
    }
    for (_, (pipeline, mut e)) in executions {
        if let Some(st) = states.get_mut(&pipeline) {
            e.jobs
                .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            st.executions.push(Arc::new(e));
        }
    }
    for (name, mut state) in states {
        state.executions.sort_by_key(|e| e.seq);
        let mut needed: Vec<i32> = state
            .executions
            .iter()
            .map(|e| e.pipeline_version)
            .collect();
        needed.sort_unstable();
        needed.dedup();
        for v in needed {
            if state.versions.contains_key(&v) {
                continue;
            }
            let key = stored::pipeline::version_key(&name, v);
            if let Some(r) = store.get(Collection::PipelineVersion, &key).await? {
                state
                    .versions
                    .insert(v, Arc::new(stored::pipeline::read_version(&r)?));
            }
        }
        store.commit(indexed_records(&name, &state)).await?;
    }
    store
        .commit(vec![Mutation::Put(Record::new(
            Collection::Meta,
            LAYOUT_KEY,
            serde_json::json!({ "layout": LAYOUT }),
        ))])
        .await
}

/// Every record of one pipeline, written again with its labels, positions and timers.
fn indexed_records(name: &str, state: &PipelineState) -> Vec<Mutation> {
    let listing = index::listing(state);
    let labels = index::execution_labels(state);
    let mut m = vec![Mutation::Put(
        stored::pipeline::entry_record(&state.entry)
            .with_label(listing.status.clone())
            .with_position(listing.position()),
    )];
    for e in &state.executions {
        m.push(Mutation::Put(index::execution_record(
            name,
            e,
            labels.get(&e.id).copied(),
        )));
        for (n, job) in e.jobs.iter().enumerate() {
            let mut r = stored::job::place_record(name, job)
                .with_position(index::job_position(job.created, n));
            r.label = index::job_label(job);
            m.push(Mutation::Put(r));
        }
        for d in deadlines_of(name, e) {
            m.push(Mutation::Put(index::timer_record(&d)));
        }
    }
    m
}
