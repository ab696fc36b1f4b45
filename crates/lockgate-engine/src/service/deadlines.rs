//! Deadlines: arms the timeouts of running actions (approvals, jobs), fires those that are due,
//! and runs the scheduler that sleeps until the earliest one.

use std::sync::Arc;

use lockgate_shapes::{ActionExecutionStatus, ErrorCode};

use super::PipelineService;
use crate::state::PipelineState;

/// A deadline the scheduler waits for: (due at, pipeline, execution id, action execution id).
pub(super) type Deadline = (i64, String, String, String);

impl PipelineService {
    /// Arms the deadlines of the running actions of `executions` and wakes the scheduler
    /// when one was added.
    pub(super) fn arm_deadlines<'a>(
        &self,
        pipeline: &str,
        state: &PipelineState,
        executions: impl Iterator<Item = &'a String>,
    ) {
        let mut added = false;
        let mut deadlines = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
        for id in executions {
            let Some(e) = state.execution(id) else {
                continue;
            };
            for (_, run) in e.action_runs() {
                if let (Some(due), ActionExecutionStatus::InProgress) = (run.deadline, run.status) {
                    added |= deadlines.insert((
                        due,
                        pipeline.to_string(),
                        e.id.clone(),
                        run.action_execution_id.clone(),
                    ));
                }
            }
        }
        drop(deadlines);
        if added {
            self.deadline_changed.notify_one();
        }
    }

    /// Fires every deadline due at the current time; returns how many changed an execution.
    pub async fn fire_due_deadlines(&self) -> usize {
        let now = self.clock.now_millis();
        let due: Vec<Deadline> = {
            let mut deadlines = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
            let mut due = Vec::new();
            while let Some(first) = deadlines.first() {
                if first.0 > now {
                    break;
                }
                if let Some(d) = deadlines.pop_first() {
                    due.push(d);
                }
            }
            due
        };
        let mut fired = 0;
        for (at, pipeline, execution, action_execution) in due {
            let result = self
                .mutate(&pipeline, |d, _| {
                    Ok(d.deadline_reached(&execution, &action_execution))
                })
                .await;
            match result {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(e) if e.code == ErrorCode::PipelineNotFoundException => {}
                Err(e) => {
                    tracing::warn!(error = %e, pipeline, "deadline could not be applied; retrying");
                    let mut deadlines = self.deadlines.lock().unwrap_or_else(|p| p.into_inner());
                    deadlines.insert((at + 1000, pipeline, execution, action_execution));
                }
            }
        }
        fired
    }

    /// The earliest armed deadline (ms since the epoch).
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .map(|d| d.0)
    }

    /// Runs the deadline scheduler until `shutdown` resolves: sleeps until the earliest
    /// deadline or until a new one is armed, then fires what is due.
    pub async fn run_scheduler(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.fire_due_deadlines().await;
            let wait = match self.next_deadline() {
                Some(due) => {
                    let ms = (due - self.clock.now_millis()).clamp(0, 60_000);
                    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                }
                // Wake up now and then anyway: the wall clock may jump (suspend, NTP, faketime).
                None => std::time::Duration::from_secs(60),
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.deadline_changed.notified() => {}
                _ = tokio::time::sleep(wait.max(std::time::Duration::from_millis(1))) => {}
            }
        }
    }
}
