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
use lockgate_store::Collection;

use super::{err, internal, version_key, PipelineService};
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
        let state = self.pipeline(&input.pipeline_name)?;
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
        let state = self.pipeline(&input.pipeline_name)?;
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
        // The newest executions are in memory; only a page reaching past them reads the store.
        let (page, next) = if next.is_none() && state.history_truncated {
            let all = self.all_executions(&state).await?;
            let state = self.with_versions(&state, &all).await?;
            execution_page(&state, &all, before, succeeded_in.as_deref(), max)
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
        Ok((*self.pipeline_state_view(&input.name)?).clone())
    }

    pub(super) async fn handle_list_action_executions(
        &self,
        _caller: &Caller,
        input: ListActionExecutionsInput,
    ) -> Result<ListActionExecutionsOutput, ServiceError> {
        let state = self.pipeline(&input.pipeline_name)?;
        let max = paging::max_results(input.max_results, 100, 100);
        let offset: usize = match paging::decode(input.next_token.as_deref())? {
            Some(s) => s.parse().map_err(|_| paging::invalid())?,
            None => 0,
        };
        let filter_id = input.filter.as_ref().and_then(|f| {
            f.pipeline_execution_id.clone().or_else(|| {
                f.latest_in_pipeline_execution
                    .as_ref()
                    .map(|l| l.pipeline_execution_id.clone())
            })
        });
        let mut details = Vec::new();
        match filter_id {
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
                let state = self.with_versions(&state, std::slice::from_ref(&e)).await?;
                details = views::action_execution_details(&state, &e, &self.cfg);
            }
            None => {
                let mut executions: Vec<Arc<Execution>> =
                    state.executions.iter().rev().cloned().collect();
                // With a truncated history, memory holds every execution only down to
                // `complete_from_seq`: older ones still in memory (in progress, or shown by the
                // state view) sort among evicted ones, so their action runs must not count
                // towards a page from memory.
                let newest_part = executions
                    .iter()
                    .take_while(|e| e.seq >= state.complete_from_seq)
                    .count();
                let in_memory: usize = executions[..newest_part]
                    .iter()
                    .map(|e| e.action_runs().count())
                    .sum();
                if state.history_truncated && in_memory <= offset + max {
                    executions = self.all_executions(&state).await?;
                }
                let state = self.with_versions(&state, &executions).await?;
                for e in &executions {
                    details.extend(views::action_execution_details(&state, e, &self.cfg));
                    if details.len() > offset + max {
                        break;
                    }
                }
            }
        }
        let total = details.len();
        let page: Vec<ActionExecutionDetail> = details.into_iter().skip(offset).take(max).collect();
        let next = (offset + page.len() < total)
            .then(|| paging::encode(&(offset + page.len()).to_string()));
        Ok(ListActionExecutionsOutput {
            action_execution_details: Some(page),
            next_token: next,
        })
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

    /// Every execution of a pipeline, newest first: from memory while it holds them all,
    /// otherwise from the store (only deep pages of a long history get here).
    async fn all_executions(
        &self,
        state: &PipelineState,
    ) -> Result<Vec<Arc<Execution>>, ServiceError> {
        if !state.history_truncated {
            return Ok(state.executions.iter().rev().cloned().collect());
        }
        let records = self
            .store
            .list_children(Collection::Execution, &state.entry.declaration.name)
            .await
            .map_err(internal)?;
        let mut all = Vec::with_capacity(records.len());
        for r in &records {
            all.push(Arc::new(stored::execution::read(r).map_err(internal)?));
        }
        all.sort_by_key(|e| std::cmp::Reverse(e.seq));
        Ok(all)
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
        if let Some(stage) = succeeded_in {
            let decl = state.declaration(e.pipeline_version);
            let ok = decl
                .stages
                .iter()
                .position(|s| s.name == stage)
                .and_then(|i| e.stages.get(i)?.as_ref())
                .is_some_and(|r| r.status == StageExecutionStatus::Succeeded);
            if !ok {
                continue;
            }
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
