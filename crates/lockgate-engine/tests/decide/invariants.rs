//! The invariants every decided state keeps, and those every step between two states keeps.
//!
//! [`check_state`] looks at one state: each execution is in exactly one consistent state
//! (nothing in progress in a finished execution, a succeeded execution has every stage
//! succeeded), advancing has reached its fixpoint (a running stage has work in progress, a
//! waiting execution is held for a reason), and jobs and actions agree. [`check_step`] compares
//! a state with the one before it: a refused command changes nothing, no stage is entered while
//! its inbound transition is disabled, deadlines fire only once due, times only move forward,
//! the decider reported everything it changed, and, read from the jobs the executions record,
//! a job is completed at most once and a finished job stays finished. [`check_history`] looks at everything that
//! happened: an approval token accepted at most once, a job closed at most once.
//!
//! Each check returns the first violation in words, so a failing property names it.

use std::collections::{BTreeMap, BTreeSet};

use lockgate_engine::state::{
    job_finished, ActionKind, ActionRun, Execution, PipelineState, Position,
};
use lockgate_shapes::{
    ActionExecutionStatus, ExecutionMode, JobStatus, PipelineExecutionStatus, StageExecutionStatus,
};

use crate::harness::Harness;

/// What a step is compared against: the harness as it was before the step.
pub struct Before {
    state: PipelineState,
    snapshot: serde_json::Value,
    now: i64,
    fired: usize,
    creations: usize,
    closures: usize,
}

impl Before {
    /// Remembers the harness as it is now.
    pub fn of(h: &Harness) -> Before {
        Before {
            state: h.state().clone(),
            snapshot: h.snapshot(),
            now: h.now(),
            fired: h.fired().len(),
            creations: h.creations().len(),
            closures: h.closures().len(),
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Checks every invariant of one decided state.
pub fn check_state(h: &Harness) -> Result<(), String> {
    let state = h.state();
    let mut ids = BTreeSet::new();
    let mut last_seq = None;
    for e in &state.executions {
        ensure!(
            ids.insert(e.id.clone()),
            "execution id {} is used twice",
            e.id
        );
        ensure!(
            last_seq.is_none_or(|s| s < e.seq),
            "executions are not in start order at {}",
            e.id
        );
        last_seq = Some(e.seq);
        check_execution(h, e).map_err(|m| format!("execution {} (seq {}): {m}", e.id, e.seq))?;
    }
    check_jobs(h)?;
    check_stage_occupancy(h)?;
    Ok(())
}

fn check_execution(h: &Harness, e: &Execution) -> Result<(), String> {
    let decl = h.state().declaration(e.pipeline_version);
    let stages = decl.stages.len();
    ensure!(
        e.stages.len() == stages,
        "has {} stage slots for {stages} stages",
        e.stages.len()
    );
    ensure!(e.started <= e.updated, "was updated before it started");
    ensure!(e.updated <= h.now(), "was updated in the future");
    let active = e.is_active();
    ensure!(
        active != matches!(e.position, Position::Done(_)),
        "is {} at {:?}",
        e.status.as_str(),
        e.position
    );
    for (s, run) in e.stages.iter().enumerate() {
        let Some(run) = run else { continue };
        ensure!(
            run.actions.len() == decl.stages[s].actions.len(),
            "stage {s} has {} action slots",
            run.actions.len()
        );
        for (k, a) in run.actions.iter().enumerate() {
            if let Some(a) = a {
                ensure!(
                    a.action_index == k,
                    "action slot {k} holds action {}",
                    a.action_index
                );
                check_action_run(h, a).map_err(|m| format!("stage {s}, action {}: {m}", a.name))?;
            }
        }
        for a in &run.history {
            ensure!(
                a.status != ActionExecutionStatus::InProgress,
                "a replaced run of {} is still in progress",
                a.name
            );
        }
    }
    let succeeded = |s: usize| {
        e.stages[s]
            .as_ref()
            .is_some_and(|r| r.status == StageExecutionStatus::Succeeded)
    };
    let in_progress = |s: usize| -> Vec<&ActionRun> {
        e.stages[s]
            .iter()
            .flat_map(|r| r.actions.iter().flatten())
            .filter(|a| a.status == ActionExecutionStatus::InProgress)
            .collect()
    };
    match e.position {
        Position::Waiting(s) => {
            ensure!(s < stages, "waits at stage {s} of {stages}");
            ensure!(
                (0..s).all(succeeded),
                "waits at stage {s} before the stages ahead succeeded"
            );
            ensure!(
                e.stages[s..].iter().all(Option::is_none),
                "waits at stage {s} but a later stage has run"
            );
            ensure!(
                e.status == PipelineExecutionStatus::InProgress,
                "waits at stage {s} while {}",
                e.status.as_str()
            );
            check_held(h, e, s)?;
        }
        Position::Running(s) => {
            ensure!(s < stages, "runs stage {s} of {stages}");
            ensure!(
                (0..s).all(succeeded),
                "runs stage {s} before the stages ahead succeeded"
            );
            ensure!(
                e.stages[s + 1..].iter().all(Option::is_none),
                "runs stage {s} but a later stage has run"
            );
            let run = e.stages[s]
                .as_ref()
                .ok_or(format!("runs stage {s} without a stage run"))?;
            let work = in_progress(s);
            match e.status {
                PipelineExecutionStatus::InProgress => {
                    ensure!(
                        run.status == StageExecutionStatus::InProgress,
                        "runs stage {s} whose status is {}",
                        run.status.as_str()
                    );
                    ensure!(!work.is_empty(), "runs stage {s} with nothing in progress");
                }
                PipelineExecutionStatus::Stopping => {
                    ensure!(
                        run.status == StageExecutionStatus::Stopping,
                        "is stopping in stage {s} whose status is {}",
                        run.status.as_str()
                    );
                    ensure!(
                        !work.is_empty() && work.iter().all(|a| a.kind == ActionKind::Job),
                        "is stopping in stage {s} without only jobs to wait for"
                    );
                }
                other => return Err(format!("runs stage {s} while {}", other.as_str())),
            }
        }
        Position::Done(last) => {
            for (s, run) in e.stages.iter().enumerate() {
                let Some(run) = run else { continue };
                ensure!(
                    !matches!(
                        run.status,
                        StageExecutionStatus::InProgress | StageExecutionStatus::Stopping
                    ),
                    "finished {} with stage {s} {}",
                    e.status.as_str(),
                    run.status.as_str()
                );
                ensure!(
                    in_progress(s).is_empty(),
                    "finished {} with an action in progress in stage {s}",
                    e.status.as_str()
                );
            }
            let after = last.map_or(0, |l| l + 1);
            ensure!(
                e.stages[after.min(stages)..].iter().all(Option::is_none),
                "finished at {last:?} but a later stage has run"
            );
            match e.status {
                PipelineExecutionStatus::Succeeded => {
                    ensure!(last == Some(stages - 1), "succeeded at {last:?}");
                    ensure!(
                        (0..stages).all(succeeded),
                        "succeeded with a stage not succeeded"
                    );
                    ensure!(
                        e.stages.iter().flatten().all(|r| r.actions.iter().all(|a| a
                            .as_ref()
                            .is_some_and(|a| a.status == ActionExecutionStatus::Succeeded))),
                        "succeeded with an action not succeeded"
                    );
                }
                PipelineExecutionStatus::Failed => {
                    let s = last.ok_or("failed before any stage")?;
                    let run = e.stages[s]
                        .as_ref()
                        .ok_or("failed in a stage it never entered")?;
                    ensure!(
                        run.status == StageExecutionStatus::Failed,
                        "failed in stage {s} whose status is {}",
                        run.status.as_str()
                    );
                    ensure!(
                        run.actions
                            .iter()
                            .flatten()
                            .any(|a| a.status == ActionExecutionStatus::Failed),
                        "failed in stage {s} without a failed action"
                    );
                    ensure!(
                        (0..s).all(succeeded),
                        "failed in stage {s} after a stage not succeeded"
                    );
                }
                PipelineExecutionStatus::Stopped => {
                    if let Some(s) = last {
                        let status = e.stages[s].as_ref().map(|r| r.status);
                        ensure!(
                            matches!(
                                status,
                                Some(
                                    StageExecutionStatus::Stopped | StageExecutionStatus::Succeeded
                                )
                            ),
                            "stopped in stage {s} whose status is {status:?}"
                        );
                    }
                }
                PipelineExecutionStatus::Superseded => {
                    ensure!(
                        e.stages
                            .iter()
                            .flatten()
                            .all(|r| r.status == StageExecutionStatus::Succeeded),
                        "was superseded with a stage not succeeded"
                    );
                }
                other => return Err(format!("is done while {}", other.as_str())),
            }
        }
    }
    Ok(())
}

fn check_action_run(h: &Harness, a: &ActionRun) -> Result<(), String> {
    if a.status == ActionExecutionStatus::InProgress {
        ensure!(a.deadline.is_some(), "is in progress without a deadline");
        ensure!(
            a.deadline.is_some_and(|d| d > h.now()),
            "is in progress past its deadline {:?} (now {})",
            a.deadline,
            h.now()
        );
        match a.kind {
            ActionKind::Approval => {
                ensure!(a.token.is_some(), "waits for approval without a token");
                ensure!(a.job_id.is_none(), "an approval has a job");
            }
            ActionKind::Job => {
                let job = a
                    .job_id
                    .as_ref()
                    .map(|j| j.as_str())
                    .ok_or("runs without a job")?;
                let job = h
                    .job(job)
                    .ok_or(format!("runs job {job}, which was never created"))?;
                ensure!(
                    job.is_open(),
                    "runs job {} which is {}",
                    job.id,
                    job.status.as_str()
                );
                ensure!(
                    a.action_execution_id == job.action_execution_id,
                    "runs job {} of another action execution",
                    job.id
                );
            }
        }
    } else {
        ensure!(
            a.deadline.is_none(),
            "is {} with a deadline",
            a.status.as_str()
        );
        ensure!(a.job_id.is_none(), "is {} with a job", a.status.as_str());
    }
    Ok(())
}

/// A waiting execution is held for a reason: its transition is disabled, or (except in
/// PARALLEL mode) another execution is in the stage or, in QUEUED mode, waits ahead of it.
fn check_held(h: &Harness, e: &Execution, s: usize) -> Result<(), String> {
    let decl = h.state().declaration(e.pipeline_version);
    let name = &decl.stages[s].name;
    if !h.transition_enabled(name) {
        return Ok(());
    }
    let held = e.mode != ExecutionMode::Parallel
        && h.state().executions.iter().any(|o| {
            o.id != e.id
                && o.is_active()
                && match o.position {
                    Position::Running(j) => j == s,
                    Position::Waiting(j) => {
                        j == s && e.mode == ExecutionMode::Queued && o.seq < e.seq
                    }
                    Position::Done(_) => false,
                }
        });
    ensure!(held, "waits at stage {name} with nothing holding it");
    Ok(())
}

/// Outside PARALLEL mode a stage holds at most one execution, and in SUPERSEDED mode at most
/// one execution waits at each transition.
fn check_stage_occupancy(h: &Harness) -> Result<(), String> {
    let mut running: BTreeMap<usize, &str> = BTreeMap::new();
    let mut waiting: BTreeMap<usize, &str> = BTreeMap::new();
    for e in h.state().executions.iter().filter(|e| e.is_active()) {
        match (e.position, e.mode) {
            (_, ExecutionMode::Parallel) => {}
            (Position::Running(s), _) => {
                if let Some(other) = running.insert(s, e.id.as_str()) {
                    return Err(format!(
                        "executions {other} and {} both run stage {s}",
                        e.id
                    ));
                }
            }
            (Position::Waiting(s), ExecutionMode::Superseded) => {
                if let Some(other) = waiting.insert(s, e.id.as_str()) {
                    return Err(format!(
                        "executions {other} and {} both wait at stage {s}",
                        e.id
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every open job belongs to an action execution in progress that runs it.
fn check_jobs(h: &Harness) -> Result<(), String> {
    for job in h.open_jobs() {
        let runs = h
            .state()
            .executions
            .iter()
            .flat_map(|e| e.action_runs())
            .any(|(_, r)| {
                r.status == ActionExecutionStatus::InProgress
                    && r.job_id.as_ref().is_some_and(|j| *j == job.id)
            });
        ensure!(
            runs,
            "job {} is {} but no action runs it",
            job.id,
            job.status.as_str()
        );
    }
    Ok(())
}

/// Checks what a step may change, given the harness before it.
pub fn check_step(before: &Before, h: &Harness) -> Result<(), String> {
    ensure!(h.now() >= before.now, "the clock went back");
    ensure!(
        h.last().unreported.is_empty(),
        "the decider changed {:?} without reporting it",
        h.last().unreported
    );
    if let Some(refusal) = h.last_refusal() {
        ensure!(
            h.snapshot() == before.snapshot,
            "a refused command ({}) changed the state",
            refusal.error
        );
        ensure!(
            !refusal.touched,
            "the decider changed its copy before refusing with {}",
            refusal.error
        );
    }
    if h.last().is_empty() {
        ensure!(
            h.snapshot() == before.snapshot,
            "a step that reported no change changed the state"
        );
    }
    let old_runs: BTreeMap<&str, &ActionRun> = before
        .state
        .executions
        .iter()
        .flat_map(|e| e.action_runs())
        .map(|(_, r)| (r.action_execution_id.as_str(), r))
        .collect();
    for e in &h.state().executions {
        let old = before.state.execution(&e.id);
        if let Some(old) = old {
            ensure!(
                e.updated >= old.updated,
                "execution {} went back in time",
                e.id
            );
            ensure!(
                e.seq == old.seq && e.started == old.started,
                "execution {} changed its start",
                e.id
            );
        }
        let decl = h.state().declaration(e.pipeline_version);
        for (s, run) in e.stages.iter().enumerate() {
            let was_entered = old.is_some_and(|o| o.stages[s].is_some());
            if run.is_some() && !was_entered {
                ensure!(
                    h.transition_enabled(&decl.stages[s].name),
                    "execution {} entered stage {} while its transition is disabled",
                    e.id,
                    decl.stages[s].name
                );
            }
        }
        for (_, r) in e.action_runs() {
            let expired = r
                .error
                .as_ref()
                .is_some_and(|(code, _)| code == "ApprovalExpired" || code == "JobTimedOut");
            let Some(old) = old_runs.get(r.action_execution_id.as_str()) else {
                ensure!(
                    !expired,
                    "action execution {} expired as it started",
                    r.action_execution_id
                );
                continue;
            };
            if expired && old.status == ActionExecutionStatus::InProgress {
                let due = old.deadline.ok_or("an action without a deadline expired")?;
                ensure!(
                    due <= h.now(),
                    "action execution {} expired at {} before its deadline {due}",
                    r.action_execution_id,
                    h.now()
                );
            }
        }
    }
    check_job_step(before, h)?;
    for fired in &h.fired()[before.fired..] {
        ensure!(
            !fired.changed || fired.due <= fired.at,
            "a deadline due at {} changed {} at {}",
            fired.due,
            fired.action_execution_id,
            fired.at
        );
    }
    Ok(())
}

/// Every job an execution in `state` records: id → (execution id, status). Errs on a job
/// recorded twice.
fn recorded_jobs(state: &PipelineState) -> Result<BTreeMap<String, (String, JobStatus)>, String> {
    let mut jobs = BTreeMap::new();
    for e in &state.executions {
        for j in &e.jobs {
            let old = jobs.insert(j.id.to_string(), (e.id.to_string(), j.status));
            ensure!(old.is_none(), "job {} is recorded twice", j.id);
        }
    }
    Ok(jobs)
}

/// Compares the jobs the executions record before and after a step: a job of an execution
/// still in memory stays recorded, a finished job keeps the status it finished with (so it is
/// completed at most once), a job appears only when the step reports it created, and a job
/// finishes only when the step reports it closed, with the status it reports. (What the step
/// reported is read from the harness's history, not from `Harness::last`, which a step that
/// applied no command leaves as the previous step set it.)
fn check_job_step(before: &Before, h: &Harness) -> Result<(), String> {
    let old = recorded_jobs(&before.state)?;
    let new = recorded_jobs(h.state())?;
    let in_memory = |execution: &str| h.state().execution(&execution.into()).is_some();
    for (id, (execution, status)) in &old {
        if !in_memory(execution) {
            continue;
        }
        let now = new.get(id).map(|(_, s)| *s);
        ensure!(now.is_some(), "job {id} is no longer recorded");
        ensure!(
            !job_finished(*status) || now == Some(*status),
            "job {id} finished {} and is now {}",
            status.as_str(),
            now.map_or("gone", |s| s.as_str())
        );
    }
    let created = &h.creations()[before.creations..];
    let closed = &h.closures()[before.closures..];
    for (id, (_, status)) in &new {
        if !old.contains_key(id) {
            ensure!(
                created.contains(id),
                "job {id} is recorded but was not reported created"
            );
        }
        let was_finished = old.get(id).is_some_and(|(_, s)| job_finished(*s));
        if job_finished(*status) && !was_finished {
            let reported: Vec<JobStatus> = closed
                .iter()
                .filter(|(j, _)| j == id)
                .map(|(_, s)| *s)
                .collect();
            ensure!(
                reported == [*status],
                "job {id} finished {} but the step reported it closed {reported:?}",
                status.as_str()
            );
        }
    }
    for (id, status) in closed {
        let Some((execution, now)) = new.get(id) else {
            ensure!(
                old.get(id).is_some_and(|(e, _)| !in_memory(e)),
                "job {id} was reported closed but is not recorded"
            );
            continue;
        };
        ensure!(
            in_memory(execution) && now == status,
            "job {id} was reported closed {} but is recorded {}",
            status.as_str(),
            now.as_str()
        );
        ensure!(
            !old.get(id).is_some_and(|(_, s)| job_finished(*s)),
            "job {id} was closed again after it finished"
        );
    }
    Ok(())
}

/// Checks what must hold over everything that happened so far.
pub fn check_history(h: &Harness) -> Result<(), String> {
    let mut tokens = BTreeSet::new();
    for token in h.accepted_tokens() {
        ensure!(
            tokens.insert(token),
            "approval token {token} was accepted twice"
        );
    }
    let mut closed = BTreeSet::new();
    for (job, status) in h.closures() {
        ensure!(
            closed.insert(job),
            "job {job} was closed twice (again as {})",
            status.as_str()
        );
        ensure!(
            h.job(job).is_some(),
            "job {job} was closed but never created"
        );
    }
    Ok(())
}

/// Runs all three checks after a step.
pub fn check_all(before: &Before, h: &Harness) -> Result<(), String> {
    check_state(h)?;
    check_step(before, h)?;
    check_history(h)
}
