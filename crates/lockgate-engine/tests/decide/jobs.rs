//! Jobs: a custom action hands a job to workers; the worker's success, failure or continuation
//! closes it exactly once; results for closed or unknown jobs are refused. A worker acknowledges
//! a job with its nonce; a wrong nonce is refused.

use lockgate_shapes::{
    ActionExecutionStatus as Action, ErrorCode, JobStatus, PipelineExecutionStatus as Execution,
};

use crate::harness::Harness;
use crate::pipelines::*;
use crate::{assert_code, succeed};

#[test]
fn a_custom_action_creates_one_queued_job_for_its_action_execution() {
    let h = Harness::new(standard());
    let id = h.latest();
    let run = h.run(&id, "Source", "Checkout").expect("the source runs");
    let jobs = h.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        Some(job.id.as_str()),
        run.job_id.as_ref().map(|j| j.as_str())
    );
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.execution_id, id);
    assert_eq!((job.stage, job.action), (0, 0));
    assert_eq!(run.action_execution_id, job.action_execution_id);
    assert_eq!(job.continuation_token, None);
    assert_eq!(job.created, h.now());
}

#[test]
fn a_succeeded_job_is_closed_and_its_action_succeeds() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");
    h.succeed_job(&job).expect("accepted");
    assert_eq!(
        h.last().jobs_closed,
        vec![(job.clone(), JobStatus::Succeeded)]
    );
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::Succeeded));
    let run = h.run(&id, "Source", "Checkout").expect("ran");
    assert_eq!(run.status, Action::Succeeded);
    assert_eq!(run.job_id, None);
}

#[test]
fn a_failed_job_is_closed_failed_and_fails_its_action() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");
    h.fail_job(&job, "no such branch").expect("accepted");
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::Failed));
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::Failed)
    );
    assert_eq!(h.status(&id), Execution::Failed);
}

#[test]
fn a_continuation_token_closes_the_job_and_queues_another_for_the_same_action_execution() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let first = h.job_for(&id, "Source", "Checkout");

    h.continue_job(&first, "page-2").expect("accepted");

    assert_eq!(
        h.last().jobs_closed,
        vec![(first.clone(), JobStatus::Succeeded)]
    );
    assert_eq!(h.last().jobs_created.len(), 1);
    let second = h.job(&h.last().jobs_created[0]).expect("the new job");
    assert_eq!(second.continuation_token.as_deref(), Some("page-2"));
    assert_eq!(second.status, JobStatus::Queued);
    assert_eq!(
        second.action_execution_id,
        h.job(&first).expect("the first job").action_execution_id
    );
    let run = h.run(&id, "Source", "Checkout").expect("runs");
    assert_eq!(run.status, Action::InProgress);
    assert_eq!(
        run.job_id.as_ref().map(|j| j.as_str()),
        Some(second.id.as_str())
    );

    h.succeed_job(&second.id).expect("accepted");
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::Succeeded)
    );
}

#[test]
fn a_continuation_job_writes_its_output_where_the_first_job_was_told_to() {
    let mut h = Harness::new(pipeline(vec![
        stage("Source", vec![source("Checkout").output("src")]),
        stage("Build", vec![job("Build")]),
    ]));
    let id = h.latest();
    let artifact = h
        .execution(&id)
        .artifacts
        .get("src")
        .cloned()
        .expect("an artifact");
    let first = h.job_for(&id, "Source", "Checkout");
    h.continue_job(&first, "more").expect("accepted");
    let after = h
        .execution(&id)
        .artifacts
        .get("src")
        .cloned()
        .expect("an artifact");
    assert_eq!(after.object_key, artifact.object_key);
}

#[test]
fn a_result_for_a_closed_job_is_invalid_job_state_and_changes_nothing() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let first = h.job_for(&id, "Source", "Checkout");
    h.continue_job(&first, "page-2").expect("accepted");
    let second = h.job_for(&id, "Source", "Checkout");
    h.fail_job(&second, "gave up").expect("accepted");
    let before = h.snapshot();
    for job in [&first, &second] {
        assert_code(h.succeed_job(job), ErrorCode::InvalidJobStateException);
        assert_code(
            h.fail_job(job, "again"),
            ErrorCode::InvalidJobStateException,
        );
        assert_code(
            h.continue_job(job, "again"),
            ErrorCode::InvalidJobStateException,
        );
    }
    assert_eq!(h.snapshot(), before);
}

#[test]
fn an_unknown_job_is_job_not_found_and_changes_nothing() {
    let mut h = Harness::new(standard());
    let before = h.snapshot();
    assert_code(
        h.succeed_job("00000000-0000-4000-8000-ffffffffffff"),
        ErrorCode::JobNotFoundException,
    );
    assert_code(h.fail_job("nope", "x"), ErrorCode::JobNotFoundException);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn every_job_of_a_full_run_is_closed_exactly_once() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    succeed(&mut h, &id, "Source", "Checkout");
    crate::approve(&mut h, &id, "Approve", "Approval");
    succeed(&mut h, &id, "Deploy", "Deploy");
    assert_eq!(h.status(&id), Execution::Succeeded);
    assert!(h.open_jobs().is_empty());
    let mut closed: Vec<&String> = h.closures().iter().map(|(j, _)| j).collect();
    closed.sort();
    let created: Vec<String> = h.jobs().into_iter().map(|j| j.id).collect();
    assert_eq!(closed, created.iter().collect::<Vec<_>>());
}

#[test]
fn the_same_commands_make_the_same_decisions() {
    let run = || {
        let mut h = Harness::new(standard());
        let id = h.latest();
        succeed(&mut h, &id, "Source", "Checkout");
        h.advance(5);
        crate::approve(&mut h, &id, "Approve", "Approval");
        h.snapshot()
    };
    assert_eq!(run(), run());
}

#[test]
fn acknowledging_a_queued_job_with_its_nonce_makes_it_in_progress() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h
        .job(&h.job_for(&id, "Source", "Checkout"))
        .expect("the job");
    let updated = h.execution(&id).updated;
    h.advance(5);

    assert_eq!(
        h.acknowledge_job(&job.id, &job.nonce),
        Ok(JobStatus::InProgress)
    );

    assert_eq!(h.last().executions, [id.clone()].into());
    assert_eq!(
        h.job(&job.id).map(|j| j.status),
        Some(JobStatus::InProgress)
    );
    assert_eq!(h.execution(&id).updated, updated);
    assert_eq!(
        h.action_status(&id, "Source", "Checkout"),
        Some(Action::InProgress)
    );
    h.succeed_job(&job.id)
        .expect("an acknowledged job takes a result");
    assert_eq!(h.job(&job.id).map(|j| j.status), Some(JobStatus::Succeeded));
}

#[test]
fn acknowledging_with_a_wrong_nonce_is_invalid_nonce_and_changes_nothing() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h.job_for(&id, "Source", "Checkout");
    let before = h.snapshot();
    assert_code(
        h.acknowledge_job(&job, "nonce-of-another-job"),
        ErrorCode::InvalidNonceException,
    );
    assert!(h.last().is_empty());
    assert_eq!(h.snapshot(), before);
    assert_eq!(h.job(&job).map(|j| j.status), Some(JobStatus::Queued));
}

#[test]
fn acknowledging_again_or_after_the_job_finished_answers_its_status_and_changes_nothing() {
    let mut h = Harness::new(standard());
    let id = h.latest();
    let job = h
        .job(&h.job_for(&id, "Source", "Checkout"))
        .expect("the job");
    h.acknowledge_job(&job.id, &job.nonce)
        .expect("acknowledged");
    let before = h.snapshot();
    assert_eq!(
        h.acknowledge_job(&job.id, &job.nonce),
        Ok(JobStatus::InProgress)
    );
    assert!(h.last().is_empty());
    assert_eq!(h.snapshot(), before);

    h.succeed_job(&job.id).expect("accepted");
    let before = h.snapshot();
    assert_eq!(
        h.acknowledge_job(&job.id, &job.nonce),
        Ok(JobStatus::Succeeded)
    );
    assert!(h.last().is_empty());
    assert_eq!(h.snapshot(), before);
}

#[test]
fn acknowledging_an_unknown_job_is_job_not_found_and_changes_nothing() {
    let mut h = Harness::new(standard());
    let before = h.snapshot();
    assert_code(
        h.acknowledge_job("00000000-0000-4000-8000-ffffffffffff", "nonce-1"),
        ErrorCode::JobNotFoundException,
    );
    assert_eq!(h.snapshot(), before);
}
