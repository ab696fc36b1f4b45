//! Property tests: random pipelines (a source stage and one to four more stages of one to three
//! approvals and jobs, with run orders, approval timeouts and every execution mode) under random
//! command sequences, valid and not (wrong tokens, unknown ids, answering twice, reporting on
//! closed jobs, early deadlines), with every invariant of `invariants` checked after every step.
//!
//! The default number of cases keeps this file to a few seconds; a long campaign sets
//! `PROPTEST_CASES` (see docs/reliability.md).

use lockgate_engine::state::ActionKind;
use lockgate_shapes::{
    ActionExecutionStatus, ErrorCode, ExecutionMode, JobStatus, PipelineDeclaration,
    StageRetryMode, StageTransitionType,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::harness::{Harness, DAY, HOUR, MINUTE};
use crate::invariants::{check_all, check_history, check_state, Before};
use crate::pipelines::*;

/// Cases per property when `PROPTEST_CASES` is not set: enough to meet every command in every
/// mode in CI, few enough to take seconds.
const DEFAULT_CASES: u32 = 96;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// One action of a random pipeline.
#[derive(Debug, Clone)]
enum ActionSpec {
    /// A manual approval with an optional `timeoutInMinutes`.
    Approval {
        timeout: Option<i32>,
        run_order: i32,
    },
    /// A build job.
    Job { run_order: i32 },
}

/// A random pipeline.
#[derive(Debug, Clone)]
struct PipelineSpec {
    /// `None`: a V1 pipeline (SUPERSEDED by default).
    mode: Option<ExecutionMode>,
    /// The run orders of the source actions.
    sources: Vec<i32>,
    /// The stages after the source stage.
    stages: Vec<Vec<ActionSpec>>,
}

impl PipelineSpec {
    fn declaration(&self) -> PipelineDeclaration {
        let mut stages = vec![stage(
            "Source",
            self.sources
                .iter()
                .enumerate()
                .map(|(k, &order)| source(&format!("Src{k}")).run_order(order))
                .collect(),
        )];
        for (s, actions) in self.stages.iter().enumerate() {
            let actions = actions
                .iter()
                .enumerate()
                .map(|(k, a)| match a {
                    ActionSpec::Approval { timeout, run_order } => {
                        let a = approval(&format!("Approve{k}")).run_order(*run_order);
                        match timeout {
                            Some(t) => a.timeout_minutes(*t),
                            None => a,
                        }
                    }
                    ActionSpec::Job { run_order } => job(&format!("Job{k}")).run_order(*run_order),
                })
                .collect();
            stages.push(stage(&format!("Stage{}", s + 1), actions));
        }
        match self.mode {
            Some(mode) => pipeline_in(mode, stages),
            None => pipeline(stages),
        }
    }
}

fn action_spec() -> impl Strategy<Value = ActionSpec> {
    prop_oneof![
        (
            prop_oneof![Just(None), Just(Some(5)), Just(Some(60))],
            1..=3i32
        )
            .prop_map(|(timeout, run_order)| ActionSpec::Approval { timeout, run_order }),
        (1..=3i32).prop_map(|run_order| ActionSpec::Job { run_order }),
    ]
}

fn pipeline_spec() -> impl Strategy<Value = PipelineSpec> {
    (
        prop_oneof![
            Just(None),
            Just(Some(ExecutionMode::Superseded)),
            Just(Some(ExecutionMode::Queued)),
            Just(Some(ExecutionMode::Parallel)),
        ],
        prop::collection::vec(1..=2i32, 1..=2),
        prop::collection::vec(prop::collection::vec(action_spec(), 1..=3), 1..=4),
    )
        .prop_map(|(mode, sources, stages)| PipelineSpec {
            mode,
            sources,
            stages,
        })
}

/// One command. `pick` chooses among what exists when the command runs (modulo its count), so
/// a sequence stays meaningful however the earlier commands went.
#[derive(Debug, Clone)]
enum Command {
    Start,
    /// Answers a pending approval with its token.
    Answer {
        pick: usize,
        approve: bool,
    },
    /// Answers an approval action with a token nobody was given.
    AnswerWithStrangerToken {
        pick: usize,
    },
    /// Answers with any token ever given, pending or not (answering twice, stale tokens).
    AnswerWithIssuedToken {
        pick: usize,
        approve: bool,
    },
    /// Answers for a stage the pipeline does not have.
    AnswerUnknownStage,
    SucceedJob {
        pick: usize,
    },
    ContinueJob {
        pick: usize,
    },
    FailJob {
        pick: usize,
    },
    /// Reports again on a job that was already closed.
    ReportClosedJob {
        pick: usize,
        succeed: bool,
    },
    ReportUnknownJob,
    /// AcknowledgeJob of any job, open or finished, with its nonce.
    AcknowledgeJob {
        pick: usize,
    },
    /// AcknowledgeJob of any job with a nonce it was not given.
    AcknowledgeWithWrongNonce {
        pick: usize,
    },
    AcknowledgeUnknownJob,
    Stop {
        pick: usize,
        abandon: bool,
    },
    StopUnknownExecution,
    Retry {
        pick: usize,
        stage: usize,
        all: bool,
    },
    Transition {
        stage: usize,
        outbound: bool,
        enable: bool,
    },
    Advance {
        millis: i64,
    },
    /// The scheduler's call for an in-progress action at the current time, due or not.
    DeadlineNow {
        pick: usize,
    },
}

fn command() -> impl Strategy<Value = Command> {
    let pick = any::<usize>;
    prop_oneof![
        2 => Just(Command::Start),
        5 => (pick(), prop::bool::weighted(0.8)).prop_map(|(pick, approve)| Command::Answer { pick, approve }),
        1 => pick().prop_map(|pick| Command::AnswerWithStrangerToken { pick }),
        1 => (pick(), any::<bool>()).prop_map(|(pick, approve)| Command::AnswerWithIssuedToken { pick, approve }),
        1 => Just(Command::AnswerUnknownStage),
        5 => pick().prop_map(|pick| Command::SucceedJob { pick }),
        1 => pick().prop_map(|pick| Command::ContinueJob { pick }),
        1 => pick().prop_map(|pick| Command::FailJob { pick }),
        1 => (pick(), any::<bool>()).prop_map(|(pick, succeed)| Command::ReportClosedJob { pick, succeed }),
        1 => Just(Command::ReportUnknownJob),
        2 => pick().prop_map(|pick| Command::AcknowledgeJob { pick }),
        1 => pick().prop_map(|pick| Command::AcknowledgeWithWrongNonce { pick }),
        1 => Just(Command::AcknowledgeUnknownJob),
        1 => (pick(), any::<bool>()).prop_map(|(pick, abandon)| Command::Stop { pick, abandon }),
        1 => Just(Command::StopUnknownExecution),
        2 => (pick(), pick(), any::<bool>()).prop_map(|(pick, stage, all)| Command::Retry { pick, stage, all }),
        2 => (pick(), any::<bool>(), any::<bool>()).prop_map(|(stage, outbound, enable)| Command::Transition { stage, outbound, enable }),
        2 => prop_oneof![
            Just(1),
            Just(MINUTE),
            Just(5 * MINUTE),
            Just(HOUR - 1),
            Just(HOUR),
            Just(DAY),
            Just(7 * DAY),
        ]
        .prop_map(|millis| Command::Advance { millis }),
        1 => pick().prop_map(|pick| Command::DeadlineNow { pick }),
    ]
}

/// An approval as PutApprovalResult names it: stage, action, token.
type Answerable = (String, String, String);

/// Every approval waiting for an answer, oldest execution first.
fn pending_approvals(h: &Harness) -> Vec<Answerable> {
    approvals(h, true)
}

/// Every approval token ever given (pending, decided, expired, abandoned, retried).
fn issued_tokens(h: &Harness) -> Vec<Answerable> {
    approvals(h, false)
}

fn approvals(h: &Harness, pending_only: bool) -> Vec<Answerable> {
    let mut out = Vec::new();
    for e in &h.state().executions {
        let decl = h.state().declaration(e.pipeline_version);
        for (s, r) in e.action_runs() {
            if r.kind != ActionKind::Approval
                || (pending_only && r.status != ActionExecutionStatus::InProgress)
            {
                continue;
            }
            if let Some(token) = &r.token {
                out.push((
                    decl.stages[s].name.clone(),
                    r.name.clone(),
                    token.to_string(),
                ));
            }
        }
    }
    out
}

fn nth<T: Clone>(items: &[T], pick: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[pick % items.len()].clone())
}

fn expect_code<T: std::fmt::Debug>(
    result: Result<T, lockgate_shapes::ServiceError>,
    codes: &[ErrorCode],
) -> Result<(), TestCaseError> {
    match result {
        Err(e) if codes.contains(&e.code) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "expected one of {codes:?}, got {other:?}"
        ))),
    }
}

const UNKNOWN_ID: &str = "ffffffff-ffff-4fff-bfff-ffffffffffff";

/// Applies one command, checking the error code of those that must be refused.
fn apply(h: &mut Harness, command: &Command) -> Result<(), TestCaseError> {
    let decl = h.state().entry.declaration.clone();
    match *command {
        Command::Start => {
            let _ = h.start();
        }
        Command::Answer { pick, approve } => {
            if let Some((stage, action, token)) = nth(&pending_approvals(h), pick) {
                let result = h.answer(&stage, &action, &token, approve);
                prop_assert!(result.is_ok(), "a pending approval was refused: {result:?}");
            }
        }
        Command::AnswerWithStrangerToken { pick } => {
            let targets: Vec<(String, String)> = decl
                .stages
                .iter()
                .flat_map(|s| s.actions.iter().map(|a| (s.name.clone(), a.name.clone())))
                .collect();
            let (stage, action) = nth(&targets, pick).expect("a pipeline has actions");
            expect_code(
                h.approve(&stage, &action, UNKNOWN_ID),
                &[ErrorCode::InvalidApprovalTokenException],
            )?;
        }
        Command::AnswerWithIssuedToken { pick, approve } => {
            if let Some((stage, action, token)) = nth(&issued_tokens(h), pick) {
                let answered = h.accepted_tokens().contains(&token);
                let result = h.answer(&stage, &action, &token, approve);
                if answered {
                    expect_code(
                        result,
                        &[
                            ErrorCode::ApprovalAlreadyCompletedException,
                            ErrorCode::InvalidApprovalTokenException,
                        ],
                    )?;
                }
            }
        }
        Command::AnswerUnknownStage => {
            expect_code(
                h.approve("NoSuchStage", "Approve0", UNKNOWN_ID),
                &[ErrorCode::StageNotFoundException],
            )?;
        }
        Command::SucceedJob { pick } => {
            if let Some(job) = nth(&h.open_jobs(), pick) {
                let result = h.succeed_job(&job.id);
                prop_assert!(
                    result.is_ok(),
                    "an open job's success was refused: {result:?}"
                );
            }
        }
        Command::ContinueJob { pick } => {
            if let Some(job) = nth(&h.open_jobs(), pick) {
                let result = h.continue_job(&job.id, "more");
                prop_assert!(
                    result.is_ok(),
                    "an open job's continuation was refused: {result:?}"
                );
            }
        }
        Command::FailJob { pick } => {
            if let Some(job) = nth(&h.open_jobs(), pick) {
                let result = h.fail_job(&job.id, "failed by the property");
                prop_assert!(
                    result.is_ok(),
                    "an open job's failure was refused: {result:?}"
                );
            }
        }
        Command::ReportClosedJob { pick, succeed } => {
            let closed: Vec<String> = h
                .jobs()
                .into_iter()
                .filter(|j| !j.is_open())
                .map(|j| j.id)
                .collect();
            if let Some(job) = nth(&closed, pick) {
                let result = if succeed {
                    h.succeed_job(&job)
                } else {
                    h.fail_job(&job, "late")
                };
                expect_code(result, &[ErrorCode::InvalidJobStateException])?;
            }
        }
        Command::ReportUnknownJob => {
            expect_code(
                h.succeed_job(UNKNOWN_ID),
                &[ErrorCode::JobNotFoundException],
            )?;
        }
        Command::AcknowledgeJob { pick } => {
            if let Some(job) = nth(&h.jobs(), pick) {
                let result = h.acknowledge_job(&job.id, &job.nonce);
                let expected = match job.status {
                    JobStatus::Queued | JobStatus::Dispatched => JobStatus::InProgress,
                    other => other,
                };
                prop_assert_eq!(result, Ok(expected), "acknowledging {}", job.id);
                prop_assert_eq!(h.job(&job.id).map(|j| j.status), Some(expected));
            }
        }
        Command::AcknowledgeWithWrongNonce { pick } => {
            if let Some(job) = nth(&h.jobs(), pick) {
                expect_code(
                    h.acknowledge_job(&job.id, "nonce-of-another-job"),
                    &[ErrorCode::InvalidNonceException],
                )?;
            }
        }
        Command::AcknowledgeUnknownJob => {
            expect_code(
                h.acknowledge_job(UNKNOWN_ID, "nonce-1"),
                &[ErrorCode::JobNotFoundException],
            )?;
        }
        Command::Stop { pick, abandon } => {
            if let Some(id) = nth(&h.execution_ids(), pick) {
                let _ = h.stop(&id, abandon);
            }
        }
        Command::StopUnknownExecution => {
            expect_code(
                h.stop(UNKNOWN_ID, true),
                &[ErrorCode::PipelineExecutionNotStoppableException],
            )?;
        }
        Command::Retry { pick, stage, all } => {
            if let Some(id) = nth(&h.execution_ids(), pick) {
                let name = decl.stages[stage % decl.stages.len()].name.clone();
                let mode = if all {
                    StageRetryMode::AllActions
                } else {
                    StageRetryMode::FailedActions
                };
                let _ = h.retry(&id, &name, mode);
            }
        }
        Command::Transition {
            stage,
            outbound,
            enable,
        } => {
            let name = decl.stages[stage % decl.stages.len()].name.clone();
            let kind = if outbound {
                StageTransitionType::Outbound
            } else {
                StageTransitionType::Inbound
            };
            let last = name == decl.stages[decl.stages.len() - 1].name;
            let result = h.set_transition(&name, kind, enable);
            if outbound && last {
                expect_code(result, &[ErrorCode::ValidationException])?;
            } else {
                prop_assert!(
                    result.is_ok(),
                    "a transition change was refused: {result:?}"
                );
            }
        }
        Command::Advance { millis } => {
            h.advance(millis);
        }
        Command::DeadlineNow { pick } => {
            let running: Vec<(String, String)> = h
                .state()
                .executions
                .iter()
                .flat_map(|e| {
                    e.action_runs()
                        .filter(|(_, r)| r.status == ActionExecutionStatus::InProgress)
                        .map(|(_, r)| (e.id.to_string(), r.action_execution_id.to_string()))
                        .collect::<Vec<_>>()
                })
                .collect();
            if let Some((execution, action_execution)) = nth(&running, pick) {
                // Every due deadline has already fired, so this one is early and must not act.
                prop_assert!(!h.deadline_reached(&execution, &action_execution));
            }
        }
    }
    Ok(())
}

/// Runs a command sequence against a pipeline, checking every invariant after every step.
fn run(spec: &PipelineSpec, commands: &[Command]) -> Result<Harness, TestCaseError> {
    let mut h = Harness::new(spec.declaration());
    check_state(&h)
        .and_then(|()| check_history(&h))
        .map_err(|m| TestCaseError::fail(format!("after creation: {m}")))?;
    for (n, command) in commands.iter().enumerate() {
        let before = Before::of(&h);
        apply(&mut h, command)
            .map_err(|e| TestCaseError::fail(format!("step {n} ({command:?}): {e}")))?;
        check_all(&before, &h)
            .map_err(|m| TestCaseError::fail(format!("step {n} ({command:?}): {m}")))?;
    }
    Ok(h)
}

/// Answers and completes everything, enabling every transition, until no execution is active;
/// returns whether that happened within a bound that any pipeline here needs far less than.
fn drive_to_the_end(h: &mut Harness) -> Result<bool, TestCaseError> {
    let stages: Vec<String> = h
        .state()
        .entry
        .declaration
        .stages
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for _ in 0..500 {
        if !h.state().executions.iter().any(|e| e.is_active()) {
            return Ok(true);
        }
        let before = Before::of(h);
        if let Some(stage) = stages.iter().find(|s| !h.transition_enabled(s)) {
            h.enable_inbound(stage)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        } else if let Some((stage, action, token)) = pending_approvals(h).first().cloned() {
            h.approve(&stage, &action, &token)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        } else if let Some(job) = h.open_jobs().first().cloned() {
            h.succeed_job(&job.id)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        } else {
            return Ok(false);
        }
        check_all(&before, h).map_err(|m| TestCaseError::fail(format!("driving on: {m}")))?;
    }
    Ok(false)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_invariant_holds_after_every_command(
        spec in pipeline_spec(),
        commands in prop::collection::vec(command(), 1..40),
    ) {
        run(&spec, &commands)?;
    }

    #[test]
    fn every_execution_reaches_an_end_once_everything_is_answered(
        spec in pipeline_spec(),
        commands in prop::collection::vec(command(), 0..25),
    ) {
        let mut h = run(&spec, &commands)?;
        prop_assert!(drive_to_the_end(&mut h)?, "an execution stays active with nothing left to answer");
    }
}
