//! Reading executions: GetPipelineExecution, ListPipelineExecutions, ListActionExecutions and
//! GetPipelineState. Recent executions come from memory; older ones are loaded from the store.

use std::collections::BTreeSet;
use std::sync::Arc;

use lockgate_model::{Caller, ExecutionId};
use lockgate_shapes::{
    ActionExecutionDetail, ErrorCode, GetPipelineExecutionInput, GetPipelineExecutionOutput,
    GetPipelineStateInput, GetPipelineStateOutput, ListActionExecutionsInput,
    ListActionExecutionsOutput, ListPipelineExecutionsInput, ListPipelineExecutionsOutput,
    PipelineExecutionSummary, ServiceError, StageExecutionStatus,
};
use lockgate_store::{Collection, Cursor, Scan};

use super::{err, index, internal, version_key, PipelineService};
use crate::paging;
use crate::state::{Execution, PipelineState};
use crate::stored;
use crate::views;

impl PipelineService {
    pub(super) async fn handle_get_pipeline_execution(
        &self,
        _caller: &Caller,
        input: GetPipelineExecutionInput,
    ) -> Result<GetPipelineExecutionOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name).await?;
        let e = self
            .find_execution(
                &state,
                &ExecutionId::from(input.pipeline_execution_id.as_str()),
            )
            .await?
            .ok_or_else(|| {
                err(
                    ErrorCode::PipelineExecutionNotFoundException,
                    format!(
                        "Pipeline execution {} was not found in pipeline {}",
                        input.pipeline_execution_id, input.pipeline_name
                    ),
                )
            })?;
        Ok(GetPipelineExecutionOutput {
            pipeline_execution: Some(views::pipeline_execution(&state, &e)),
        })
    }

    pub(super) async fn handle_list_pipeline_executions(
        &self,
        _caller: &Caller,
        input: ListPipelineExecutionsInput,
    ) -> Result<ListPipelineExecutionsOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name).await?;
        let max = paging::max_results(input.max_results, 100, 100);
        let before: Option<u64> = match paging::decode(input.next_token.as_deref())? {
            Some(s) => Some(s.parse().map_err(|_| paging::invalid())?),
            None => None,
        };
        let succeeded_in = input
            .filter
            .and_then(|f| f.succeeded_in_stage)
            .and_then(|f| f.stage_name);
        // Only the part of memory that holds every execution can serve a page: below it, the
        // executions still in memory (old ones in progress, those the state view shows) have
        // evicted neighbours a page would skip.
        let in_memory: Vec<Arc<Execution>> = state
            .executions
            .iter()
            .rev()
            .take_while(|e| e.seq >= state.complete_from_seq)
            .cloned()
            .collect();
        let (page, next) = execution_page(&state, &in_memory, before, succeeded_in.as_deref(), max);
        // The newest executions are in memory; a page reaching past them reads the store's
        // index from its cursor, a page's worth at a time.
        let (page, next) = if next.is_none() && state.history_truncated {
            self.stored_execution_page(&state, before, succeeded_in.as_deref(), max)
                .await?
        } else {
            (page, next)
        };
        Ok(ListPipelineExecutionsOutput {
            pipeline_execution_summaries: Some(page),
            next_token: next,
        })
    }

    pub(super) async fn handle_get_pipeline_state(
        &self,
        _caller: &Caller,
        input: GetPipelineStateInput,
    ) -> Result<GetPipelineStateOutput, ServiceError> {
        // The same view the API's encoded answer comes from (`state_view.rs`).
        Ok(GetPipelineStateOutput::clone(
            self.state_view(&input.name).await?.output(),
        ))
    }

    pub(super) async fn handle_list_action_executions(
        &self,
        _caller: &Caller,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name).await?;
        let max = paging::max_results(input.max_results, 100, 100);
        // The cursor: the execution the last page ended in, and how many of its action
        // executions were listed already.
        let cursor: Option<(u64, usize)> = match paging::decode(input.next_token.as_deref())? {
            Some(s) => {
                let (seq, skip) = s.split_once(':').ok_or_else(paging::invalid)?;
                Some((
                    seq.parse().map_err(|_| paging::invalid())?,
                    skip.parse().map_err(|_| paging::invalid())?,
                ))
            }
            None => None,
        };
        let filter_id = input.filter.as_ref().and_then(|f| {
            f.pipeline_execution_id.clone().or_else(|| {
                f.latest_in_pipeline_execution
                    .as_ref()
                    .map(|l| l.pipeline_execution_id.clone())
            })
        });
        let mut page: Vec<ActionExecutionDetail> = Vec::new();
        let mut next = None;
        let mut batch: Vec<Arc<Execution>> = match &filter_id {
            Some(id) => {
                let e = self
                    .find_execution(&state, &ExecutionId::from(id.as_str()))
                    .await?
                    .ok_or_else(|| {
                        err(
                            ErrorCode::PipelineExecutionNotFoundException,
                            format!(
                                "Pipeline execution {id} was not found in pipeline {}",
                                input.pipeline_name
                            ),
                        )
                    })?;
                if cursor.is_some_and(|(seq, _)| seq != e.seq) {
                    return Err(paging::invalid());
                }
                vec![e]
            }
            None => {
                self.executions_before(&state, cursor.map(|(seq, _)| seq + 1), max)
                    .await?
            }
        };
        'pages: loop {
            let state = self.with_versions(&state, &batch).await?;
            let last_seq = batch.last().map(|e| e.seq);
            for e in &batch {
                let skip = match cursor {
                    Some((seq, skip)) if seq == e.seq => skip,
                    _ => 0,
                };
                let details = views::action_execution_details(&state, e, &self.cfg);
                for (i, d) in details.into_iter().enumerate().skip(skip) {
                    if page.len() == max {
                        next = Some(paging::encode(&format!("{}:{i}", e.seq)));
                        break 'pages;
                    }
                    page.push(d);
                }
            }
            if filter_id.is_some() {
                break;
            }
            let Some(last) = last_seq else { break };
            batch = self.executions_before(&state, Some(last), max).await?;
            if batch.is_empty() {
                break;
            }
        }
        Ok(ListActionExecutionsOutput {
            action_execution_details: Some(page),
            next_token: next,
        })
    }

    /// Up to `n` executions older than `before` (all when `None`), newest first: from memory
    /// where it holds every execution, otherwise from the store's index of the pipeline's
    /// executions by sequence.
    async fn executions_before(
        &self,
        state: &PipelineState,
        before: Option<u64>,
        n: usize,
    ) -> Result<Vec<Arc<Execution>>, ServiceError> {
        let from_memory: Vec<Arc<Execution>> = state
            .executions
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.seq < b))
            .take_while(|e| !state.history_truncated || e.seq >= state.complete_from_seq)
            .take(n)
            .cloned()
            .collect();
        if from_memory.len() == n || !state.history_truncated {
            return Ok(from_memory);
        }
        let cursor = before.map(|b| Cursor {
            position: index::position(b),
            key: String::new(),
        });
        let records = self
            .store
            .scan(
                Scan::new(Collection::Execution, n)
                    .parent(state.entry.declaration.name.clone())
                    .by_position()
                    .descending()
                    .after(cursor),
            )
            .await
            .map_err(internal)?;
        records
            .iter()
            .map(|r| Ok(Arc::new(stored::execution::read(r).map_err(internal)?)))
            .collect()
    }

    /// A page of ListPipelineExecutions read from the store's index, older than `before`,
    /// optionally only executions that succeeded in a stage.
    async fn stored_execution_page(
        &self,
        state: &Arc<PipelineState>,
        before: Option<u64>,
        succeeded_in: Option<&str>,
        max: usize,
    ) -> Result<(Vec<PipelineExecutionSummary>, Option<String>), ServiceError> {
        let mut page = Vec::new();
        let mut last_seq: Option<u64> = None;
        let mut cursor = before;
        loop {
            // One more than a page, so a full page knows whether another follows.
            let batch = self.executions_before(state, cursor, max + 1).await?;
            let Some(oldest) = batch.last().map(|e| e.seq) else {
                return Ok((page, None));
            };
            let with_versions = self.with_versions(state, &batch).await?;
            let (part, _) =
                execution_page(&with_versions, &batch, cursor, succeeded_in, usize::MAX);
            for (summary, e) in part.into_iter().zip(
                batch
                    .iter()
                    .filter(|e| succeeded(&with_versions, e, succeeded_in)),
            ) {
                if page.len() == max {
                    let last = last_seq.unwrap_or(e.seq);
                    return Ok((page, Some(paging::encode(&last.to_string()))));
                }
                page.push(summary);
                last_seq = Some(e.seq);
            }
            if batch.len() <= max {
                return Ok((page, None));
            }
            cursor = Some(oldest);
        }
    }

    /// One execution of a pipeline, from memory or, for an old one, from the store.
    pub(super) async fn find_execution(
        &self,
        state: &PipelineState,
        id: &ExecutionId,
    ) -> Result<Option<Arc<Execution>>, ServiceError> {
        if let Some(e) = state.execution(id) {
            return Ok(Some(e.clone()));
        }
        if !state.history_truncated {
            return Ok(None);
        }
        let Some(r) = self
            .store
            .get(Collection::Execution, id.as_str())
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if r.parent.as_deref() != Some(state.entry.declaration.name.as_str()) {
            return Ok(None);
        }
        Ok(Some(Arc::new(
            stored::execution::read(&r).map_err(internal)?,
        )))
    }

    /// A copy of `state` that also knows the declarations `executions` ran, for views of old
    /// executions whose pipeline version is no longer in memory.
    async fn with_versions(
        &self,
        state: &Arc<PipelineState>,
        executions: &[Arc<Execution>],
    ) -> Result<Arc<PipelineState>, ServiceError> {
        let missing: BTreeSet<i32> = executions
            .iter()
            .map(|e| e.pipeline_version)
            .filter(|v| !state.versions.contains_key(v))
            .collect();
        if missing.is_empty() {
            return Ok(state.clone());
        }
        let mut copy = (**state).clone();
        let name = copy.entry.declaration.name.clone();
        for v in missing {
            if let Some(r) = self
                .store
                .get(Collection::PipelineVersion, &version_key(&name, v))
                .await
                .map_err(internal)?
            {
                copy.versions.insert(
                    v,
                    Arc::new(stored::pipeline::read_version(&r).map_err(internal)?),
                );
            }
        }
        Ok(Arc::new(copy))
    }
}

/// One page of ListPipelineExecutions from `executions` (newest first): those older than the
/// cursor `before`, optionally only those that succeeded in a stage, and the next cursor.
fn execution_page(
    state: &PipelineState,
    executions: &[Arc<Execution>],
    before: Option<u64>,
    succeeded_in: Option<&str>,
    max: usize,
) -> (Vec<PipelineExecutionSummary>, Option<String>) {
    let mut page = Vec::new();
    let mut last_seq: Option<u64> = None;
    for e in executions {
        if before.is_some_and(|b| e.seq >= b) {
            continue;
        }
        if !succeeded(state, e, succeeded_in) {
            continue;
        }
        if let (true, Some(last)) = (page.len() == max, last_seq) {
            // The cursor is the last listed execution, not the next one found here: executions
            // between the two may be missing from `executions` (evicted from memory while an
            // older one is still in progress) and the next page must still reach them.
            return (page, Some(paging::encode(&last.to_string())));
        }
        page.push(views::execution_summary(state, e));
        last_seq = Some(e.seq);
    }
    (page, None)
}

/// Whether `e` succeeded in the stage named `stage` (always, when no stage is asked about).
fn succeeded(state: &PipelineState, e: &Execution, stage: Option<&str>) -> bool {
    let Some(stage) = stage else {
        return true;
    };
    let decl = state.declaration(e.pipeline_version);
    decl.stages
        .iter()
        .position(|s| s.name == stage)
        .and_then(|i| e.stages.get(i)?.as_ref())
        .is_some_and(|r| r.status == StageExecutionStatus::Succeeded)
}
