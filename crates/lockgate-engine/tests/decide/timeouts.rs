//! Deadlines: an approval expires seven days (or `timeoutInMinutes`) after it started, a job
//! times out after the job timeout, exactly at the deadline and not a millisecond before.

use lockgate_shapes::{
    ActionExecutionStatus as Action, ErrorCode, JobStatus, PipelineExecutionStatus as Execution,
    StageExecutionStatus as Stage,
};

use crate::harness::{Harness, BUILTIN_JOB_TIMEOUT, DAY, JOB_TIMEOUT, MINUTE};
use crate::pipelines::*;
use crate::{assert_code, standard_at_approval};

fn error_code(h: &Harness, id: &str, stage: &str, action: &str) -> Option<String> {
    h.run(id, stage, action)
        .and_then(|r| r.error.as_ref())
        .map(|e| e.0.clone())
}

fn error_message(h: &Harness, id: &str, stage: &str, action: &str) -> Option<String> {
    h.run(id, stage, action)
        .and_then(|r| r.error.as_ref())
        .map(|e| e.1.clone())
}

#[test]
fn an_unanswered_approval_expires_exactly_seven_days_after_it_started() {
    let (mut h, id) = standard_at_approval();
    let started = h
        .run(&id, "Approve", "Approval")
        .expect("the approval runs")
        .started;
    assert_eq!(
        h.run(&id, "Approve", "Approval").and_then(|r| r.deadline),
        Some(started + 7 * DAY)
    );

    assert_eq!(
        h.advance(7 * DAY - 1),
        0,
        "nothing is due a millisecond before"
    );
    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(Action::InProgress)
    );

    assert_eq!(h.advance(1), 1, "the approval expires at its deadline");
    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(Action::Failed)
    );
    assert_eq!(
        error_code(&h, &id, "Approve", "Approval").as_deref(),
        Some("ApprovalExpired")
    );
    assert_eq!(h.stage_status(&id, "Approve"), Some(Stage::Failed));
    assert_eq!(h.status(&id), Execution::Failed);
}

#[test]
fn timeout_in_minutes_sets_the_approval_deadline() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout")]),
        stage("Approve", vec![approval("Approval").timeout_minutes(10)]),
    ]));
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");

    h.advance(10 * MINUTE - 1);
    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(Action::InProgress)
    );
    h.advance(1);
    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(Action::Failed)
    );
    assert_eq!(h.status(&id), Execution::Failed);
}

#[test]
fn a_deadline_reached_a_millisecond_early_changes_nothing() {
    let (mut h, id) = standard_at_approval();
    let run = h
        .run(&id, "Approve", "Approval")
        .expect("the approval runs")
        .clone();
    h.advance(7 * DAY - 1);
    let before = h.snapshot();

    assert!(!h.deadline_reached(&id, run.action_execution_id.as_str()));

    assert_eq!(h.snapshot(), before);
    assert!(h.last().is_empty());
}

#[test]
fn a_deadline_for_an_unknown_action_execution_changes_nothing() {
    let (mut h, id) = standard_at_approval();
    h.advance(30 * DAY);
    let before = h.snapshot();
    assert!(!h.deadline_reached(&id, "00000000-0000-4000-8000-ffffffffffff"));
    assert!(!h.deadline_reached("00000000-0000-4000-8000-ffffffffffff", "x"));
    assert_eq!(h.snapshot(), before);
}

#[test]
fn an_approval_answered_in_time_does_not_expire_later() {
    let (mut h, id) = standard_at_approval();
    h.advance(7 * DAY - 1);
    crate::approve(&mut h, &id, "Approve", "Approval");
    let approved = h.snapshot();

    // The deadline is still armed, as in the service; firing it finds nothing to expire.
    assert_eq!(h.advance(1), 0);
    assert_eq!(
        h.action_status(&id, "Approve", "Approval"),
        Some(Action::Succeeded)
    );
    assert_eq!(h.snapshot()["executions"], approved["executions"]);
}

#[test]
fn a_job_times_out_at_the_job_timeout_and_is_closed_timed_out() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");

    h.advance(JOB_TIMEOUT - 1);
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::Queued));
    h.advance(1);

    assert_eq!(
        h.last().jobs_closed,
        vec![(job.clone(), JobStatus::TimedOut)]
    );
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::TimedOut));
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::Failed)
    );
    assert_eq!(
        error_code(&h, &id, "Source", "Checkout").as_deref(),
        Some("JobTimedOut")
    );
    let message = error_message(&h, &id, "Source", "Checkout").unwrap_or_default();
    assert!(
        message.starts_with("No job worker acknowledged the job for action type Source/Custom/"),
        "a job nobody took names its action type: {message}"
    );
    assert_eq!(h.status(&id), Execution::Failed);

    let before = h.snapshot();
    assert_code(h.succeed_job(&job), ErrorCode::InvalidJobStateException);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_job_a_worker_took_but_did_not_finish_times_out_without_blaming_the_workers() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");
    let nonce = h.job(&job).map(|j| j.nonce.clone()).unwrap_or_default();
    h.acknowledge_job(&job, &nonce)
        .expect("the worker acknowledges the job");
    h.advance(JOB_TIMEOUT);
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::TimedOut));
    assert_eq!(
        error_message(&h, &id, "Source", "Checkout").as_deref(),
        Some("The job did not complete before the action timed out")
    );
}

#[test]
fn an_action_keeps_its_deadline_across_continuation_jobs() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let first = h.job_for(&id, "Source", "Checkout");
    h.advance(JOB_TIMEOUT / 2);
    h.continue_job(&first, "step-2")
        .expect("the continuation is accepted");
    let second = h.job_for(&id, "Source", "Checkout");
    assert_ne!(first, second);

    // The timeout counts from the action's start, not from the continuation.
    h.advance(JOB_TIMEOUT / 2);
    assert_eq!(h.job(&second).map(|j| j.status), Some(JobStatus::TimedOut));
    assert_eq!(h.status(&id), Execution::Failed);
}

#[test]
fn approvals_of_parallel_executions_due_together_all_expire() {
    let mut h = Harness::new(pipeline_in(
        lockgate_shapes::ExecutionMode::Parallel,
        standard_stages(),
    ));
    let first = h.latest();
    let second = h.start().expect("a second execution starts");
    crate::succeed(&mut h, &first, "Source", "Checkout");
    crate::succeed(&mut h, &second, "Source", "Checkout");

    assert_eq!(h.advance(7 * DAY), 2);
    assert_eq!(h.status(&first), Execution::Failed);
    assert_eq!(h.status(&second), Execution::Failed);
}

/// A source job, then a Commands action: an action type Lockgate runs itself, whose jobs have
/// a timeout of their own ([`BUILTIN_JOB_TIMEOUT`]).
fn commands_pipeline() -> lockgate_shapes::PipelineDeclaration {
    let build = lockgate_shapes::ActionDeclaration {
        name: "Build".to_string(),
        action_type_id: lockgate_shapes::ActionTypeId {
            category: lockgate_shapes::ActionCategory::Compute,
            owner: lockgate_shapes::ActionOwner::Aws,
            provider: "Commands".to_string(),
            version: "1".to_string(),
        },
        commands: Some(vec!["make".to_string()]),
        input_artifacts: Some(vec![lockgate_shapes::InputArtifact {
            name: "Code".to_string(),
        }]),
        ..Default::default()
    };
    pipeline(vec![
        stage("Source", vec![source("Checkout").output("Code")]),
        stage("Build", vec![build]),
    ])
}

/// A Commands job, acknowledged at the harness's current time; its execution and job ids.
fn acknowledged_commands_job() -> (Harness, String, String) {
    let mut h = Harness::new(commands_pipeline());
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    let job = h.job_for(&id, "Build", "Build");
    let nonce = h.job(&job).map(|j| j.nonce.clone()).unwrap_or_default();
    h.acknowledge_job(&job, &nonce)
        .expect("the worker acknowledges the job");
    (h, id, job)
}

#[test]
fn a_queued_builtin_job_waits_for_a_worker_until_the_action_times_out() {
    let mut h = Harness::new(commands_pipeline());
    let id = h.latest();
    crate::succeed(&mut h, &id, "Source", "Checkout");
    let job = h.job_for(&id, "Build", "Build");
    // Workers may all be busy: a job nobody took yet has only its action's deadline.
    assert_eq!(
        h.run(&id, "Build", "Build").and_then(|r| r.job_deadline),
        None
    );
    h.advance(BUILTIN_JOB_TIMEOUT * 2);
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::Queued));
    assert_eq!(
        h.action_status(&id, "Build", "Build"),
        Some(Action::InProgress)
    );
}

#[test]
fn an_acknowledged_builtin_job_times_out_after_its_own_job_timeout() {
    let (mut h, id, job) = acknowledged_commands_job();
    let acknowledged = h.now();
    assert_eq!(
        h.run(&id, "Build", "Build").and_then(|r| r.job_deadline),
        Some(acknowledged + BUILTIN_JOB_TIMEOUT)
    );
    assert_eq!(h.advance(BUILTIN_JOB_TIMEOUT - 1), 0);
    assert_eq!(h.advance(1), 1);
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::TimedOut));
    assert_eq!(
        error_code(&h, &id, "Build", "Build").as_deref(),
        Some("JobTimedOut")
    );
    let message = error_message(&h, &id, "Build", "Build").unwrap_or_default();
    assert!(
        message.contains("neither finished nor continued within the job timeout (600 s)"),
        "{message}"
    );
    assert_eq!(h.status(&id), Execution::Failed);
}

#[test]
fn a_continuation_restarts_the_job_timeout_and_is_queued_ahead_of_newer_jobs() {
    let (mut h, id, first) = acknowledged_commands_job();
    let action_started = h.run(&id, "Build", "Build").map(|r| r.started);
    h.advance(BUILTIN_JOB_TIMEOUT - MINUTE);
    h.continue_job(&first, "lockgate-run/1")
        .expect("the continuation is accepted");
    let second = h.job_for(&id, "Build", "Build");
    assert_ne!(first, second);
    // The continuation carries on a run under way: it is queued as of the action's start.
    let created = h
        .execution(&id)
        .jobs
        .iter()
        .find(|j| j.id.as_str() == second)
        .map(|j| j.created);
    assert_eq!(created, action_started);
    // Its timeout counts from the continuation, and holds from then on.
    assert_eq!(
        h.run(&id, "Build", "Build").and_then(|r| r.job_deadline),
        Some(h.now() + BUILTIN_JOB_TIMEOUT)
    );
    h.advance(BUILTIN_JOB_TIMEOUT - 1);
    assert_eq!(
        h.action_status(&id, "Build", "Build"),
        Some(Action::InProgress)
    );
    h.advance(1);
    assert_eq!(h.job(&second).map(|j| j.status), Some(JobStatus::TimedOut));
    let message = error_message(&h, &id, "Build", "Build").unwrap_or_default();
    assert!(
        message.starts_with("No job worker took the continuation job for action type Compute/AWS/Commands/1 within the job timeout"),
        "{message}"
    );
}

#[test]
fn continuations_carry_a_builtin_run_past_its_job_timeout_but_not_past_the_action_timeout() {
    let (mut h, id, mut job) = acknowledged_commands_job();
    let deadline = h.run(&id, "Build", "Build").and_then(|r| r.deadline);
    assert_eq!(deadline, Some(h.now() + JOB_TIMEOUT));
    // Every continuation keeps the run going for another job timeout...
    for _ in 0..(JOB_TIMEOUT / (BUILTIN_JOB_TIMEOUT / 2) - 1) {
        h.advance(BUILTIN_JOB_TIMEOUT / 2);
        h.continue_job(&job, "lockgate-run/1")
            .expect("the continuation is accepted");
        job = h.job_for(&id, "Build", "Build");
        let nonce = h.job(&job).map(|j| j.nonce.clone()).unwrap_or_default();
        h.acknowledge_job(&job, &nonce).expect("acknowledged");
        assert_eq!(
            h.action_status(&id, "Build", "Build"),
            Some(Action::InProgress)
        );
    }
    // ... but never past the action's own deadline, which the last job timeout is cut to.
    assert_eq!(
        h.run(&id, "Build", "Build").and_then(|r| r.job_deadline),
        None
    );
    h.advance(deadline.unwrap_or_default() - h.now());
    assert_eq!(h.action_status(&id, "Build", "Build"), Some(Action::Failed));
    assert_eq!(
        error_message(&h, &id, "Build", "Build").as_deref(),
        Some("The job did not complete before the action timed out")
    );
}

#[test]
fn a_custom_action_job_keeps_only_the_action_timeout() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");
    let nonce = h.job(&job).map(|j| j.nonce.clone()).unwrap_or_default();
    h.acknowledge_job(&job, &nonce).expect("acknowledged");
    assert_eq!(
        h.run(&id, "Source", "Checkout")
            .and_then(|r| r.job_deadline),
        None
    );
}
