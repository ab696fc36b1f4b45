//! How executions move through stages: starting one, settling stages, and admitting executions
//! waiting at transitions under the SUPERSEDED, QUEUED and PARALLEL execution modes.

use lockgate_model::{ExecutionId, JobId};
use std::collections::BTreeMap;
use std::sync::Arc;

use lockgate_shapes::{
    ActionExecutionStatus, ExecutionMode, JobStatus, PipelineExecutionStatus, StageExecutionStatus,
};

use super::{run_order, Decider, StartRequest};
use crate::state::{ActionKind, Execution, Position, StageRun};

impl<'a> Decider<'a> {
    /// Starts a new execution of the current pipeline version and runs it as far as it goes.
    pub fn start(&mut self, req: StartRequest) -> ExecutionId {
        let id = ExecutionId::from(self.ids.uuid());
        let entry = &mut self.state.entry;
        let seq = entry.next_seq;
        entry.next_seq += 1;
        self.out.entry_dirty = true;
        let version = entry.version();
        let mode = entry.execution_mode();
        let stage_count = entry.declaration.stages.len();
        self.state
            .versions
            .entry(version)
            .or_insert_with(|| Arc::clone(&self.state.entry.declaration));
        let execution = Execution {
            id: id.clone(),
            seq,
            pipeline_version: version,
            status: PipelineExecutionStatus::InProgress,
            status_summary: None,
            trigger_type: req.trigger_type,
            trigger_detail: req.trigger_detail,
            mode,
            started: self.now,
            updated: self.now,
            position: Position::Waiting(0),
            stages: vec![None; stage_count],
            stop_reason: None,
            stop_abandon: false,
            client_request_token: req.client_request_token,
            variables: req.variables,
            source_overrides: req.source_overrides,
            artifacts: BTreeMap::new(),
            jobs: Vec::new(),
        };
        self.state.executions.push(Arc::new(execution));
        self.out.dirty.insert(id.clone());
        self.advance();
        id
    }

    /// Moves every active execution as far as it can go: finishes stages whose actions are done,
    /// starts the next run-order group, supersedes and admits executions waiting at transitions.
    pub fn advance(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.state.executions.len() {
                if let Position::Running(s) = self.state.executions[i].position {
                    if self.state.executions[i].is_active() {
                        progressed |= self.step_stage(i, s);
                    }
                }
            }
            progressed |= self.supersede_waiting();
            for i in 0..self.state.executions.len() {
                if let Position::Waiting(s) = self.state.executions[i].position {
                    if self.state.executions[i].is_active() {
                        progressed |= self.try_enter(i, s);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Settles the stage `s` that execution `i` is in. Returns whether anything changed.
    fn step_stage(&mut self, i: usize, s: usize) -> bool {
        let decl = self
            .state
            .declaration(self.state.executions[i].pipeline_version);
        let Some(stage_decl) = decl.stages.get(s) else {
            return false;
        };
        let Some(run) = self.state.executions[i].stages[s].as_ref() else {
            return false;
        };
        let in_progress = run
            .actions
            .iter()
            .flatten()
            .any(|a| a.status == ActionExecutionStatus::InProgress);
        let failed = run.actions.iter().flatten().find(|a| {
            matches!(
                a.status,
                ActionExecutionStatus::Failed | ActionExecutionStatus::Abandoned
            )
        });
        let stage_name = stage_decl.name.clone();

        if self.state.executions[i].status == PipelineExecutionStatus::Stopping {
            if in_progress {
                return false;
            }
            let e = self.exec_mut(i);
            if let Some(run) = e.stages[s].as_mut() {
                run.status = StageExecutionStatus::Stopped;
            }
            e.status = PipelineExecutionStatus::Stopped;
            e.position = Position::Done(Some(s));
            return true;
        }

        if let Some(failed) = failed {
            let summary = match &failed.error {
                Some((_, message)) => format!(
                    "Execution failed in stage {stage_name}, action {}: {message}",
                    failed.name
                ),
                None => format!(
                    "Execution failed in stage {stage_name}, action {}",
                    failed.name
                ),
            };
            let closing = self.abandon_in_progress(i, s);
            let e = self.exec_mut(i);
            if let Some(run) = e.stages[s].as_mut() {
                run.status = StageExecutionStatus::Failed;
            }
            e.status = PipelineExecutionStatus::Failed;
            e.status_summary = Some(summary);
            e.position = Position::Done(Some(s));
            self.close_jobs(i, closing);
            return true;
        }
        if in_progress {
            return false;
        }
        // Start the next run-order group among the actions that have not run (or are to re-run).
        let pending: Vec<usize> = run
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_none())
            .map(|(k, _)| k)
            .collect();
        if let Some(order) = pending
            .iter()
            .map(|&k| run_order(&stage_decl.actions[k]))
            .min()
        {
            let group: Vec<usize> = pending
                .into_iter()
                .filter(|&k| run_order(&stage_decl.actions[k]) == order)
                .collect();
            for k in group {
                self.start_action(i, s, k, &decl);
            }
            return true;
        }
        // Every action succeeded: the stage succeeded.
        let last = s + 1 >= decl.stages.len();
        let e = self.exec_mut(i);
        if let Some(run) = e.stages[s].as_mut() {
            run.status = StageExecutionStatus::Succeeded;
        }
        if last {
            e.status = PipelineExecutionStatus::Succeeded;
            e.status_summary = None;
            e.position = Position::Done(Some(s));
        } else {
            e.position = Position::Waiting(s + 1);
        }
        true
    }

    /// Abandons every in-progress action of stage `s` of execution `i`; returns jobs to close.
    fn abandon_in_progress(&mut self, i: usize, s: usize) -> Vec<(JobId, JobStatus)> {
        let now = self.now;
        let mut closing = Vec::new();
        let mut approvals = Vec::new();
        let e = self.exec_mut(i);
        if let Some(run) = e.stages[s].as_mut() {
            for (k, a) in run.actions.iter_mut().enumerate() {
                let Some(a) = a else { continue };
                if a.status == ActionExecutionStatus::InProgress {
                    if a.kind == ActionKind::Approval {
                        approvals.push(k);
                    }
                    a.status = ActionExecutionStatus::Abandoned;
                    a.last_change = now;
                    a.disarm();
                    if let Some(job) = a.job_id.take() {
                        closing.push((job, JobStatus::Failed));
                    }
                }
            }
        }
        for k in approvals {
            self.withdraw_notice(i, s, k);
        }
        closing
    }

    /// In SUPERSEDED mode, of the executions waiting at the same transition only the newest stays.
    fn supersede_waiting(&mut self) -> bool {
        // Keyed by stage name, not index: executions of different pipeline versions may wait
        // at the same index for different stages, and only those at the same stage compete.
        let mut newest: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        let mut waiting = Vec::new();
        for (i, e) in self.state.executions.iter().enumerate() {
            if let (Position::Waiting(s), true, ExecutionMode::Superseded) =
                (e.position, e.is_active(), e.mode)
            {
                let decl = self.state.declaration(e.pipeline_version);
                let Some(stage) = decl.stages.get(s) else {
                    continue;
                };
                waiting.push((i, s, stage.name.clone(), e.seq));
                let slot = newest.entry(stage.name.clone()).or_insert((e.seq, i));
                if e.seq > slot.0 {
                    *slot = (e.seq, i);
                }
            }
        }
        let mut changed = false;
        for (i, s, name, seq) in waiting {
            if let Some(&(_, newer)) = newest.get(&name).filter(|&&(n, _)| n != seq) {
                let newer_id = self.state.executions[newer].id.clone();
                let e = self.exec_mut(i);
                e.status = PipelineExecutionStatus::Superseded;
                e.status_summary = Some(format!("Superseded by execution {newer_id}"));
                e.position = Position::Done(s.checked_sub(1));
                changed = true;
            }
        }
        changed
    }

    /// Lets execution `i` into stage `s` when the transition and the mode allow it.
    fn try_enter(&mut self, i: usize, s: usize) -> bool {
        let decl = self
            .state
            .declaration(self.state.executions[i].pipeline_version);
        let Some(stage) = decl.stages.get(s) else {
            let e = self.exec_mut(i);
            e.status = PipelineExecutionStatus::Succeeded;
            e.position = Position::Done(s.checked_sub(1));
            return true;
        };
        if self.state.executions[i].status == PipelineExecutionStatus::Stopping {
            let e = self.exec_mut(i);
            e.status = PipelineExecutionStatus::Stopped;
            e.position = Position::Done(s.checked_sub(1));
            return true;
        }
        if !self.state.entry.transition_enabled(&stage.name) {
            return false;
        }
        let me = &self.state.executions[i];
        if me.mode != ExecutionMode::Parallel {
            let stage_name = &stage.name;
            let blocked = self.state.executions.iter().any(|other| {
                if other.id == me.id || !other.is_active() {
                    return false;
                }
                let other_decl = self.state.declaration(other.pipeline_version);
                let at = |idx: usize| {
                    other_decl
                        .stages
                        .get(idx)
                        .is_some_and(|st| &st.name == stage_name)
                };
                match other.position {
                    Position::Running(o) => at(o),
                    // QUEUED keeps arrival order: an older execution waiting here goes first.
                    Position::Waiting(o) => {
                        me.mode == ExecutionMode::Queued && other.seq < me.seq && at(o)
                    }
                    Position::Done(_) => false,
                }
            });
            if blocked {
                return false;
            }
        }
        let action_count = stage.actions.len();
        let e = self.exec_mut(i);
        e.position = Position::Running(s);
        e.stages[s] = Some(StageRun {
            status: StageExecutionStatus::InProgress,
            actions: vec![None; action_count],
            history: Vec::new(),
            manual_retries: 0,
        });
        true
    }
}
