//! Service-level tests of the execution semantics: a real `PipelineService` over a SQLite store
//! in a temporary directory, a manual clock, and a fake job worker that speaks the job-worker
//! protocol through the same service calls a remote worker would make.
//!
//! Every test drives the service only through the `CodePipelineService` trait (plus
//! `fire_due_deadlines`, the scheduler's tick), so what is asserted is what a client would see.

mod action_types;
mod admin;
mod approval;
mod disk_full;
mod durability;
mod faulty;
mod history;
mod jobs;
mod modes;
mod notifications;
mod retry;
mod scale;
mod scheduler;
mod stages;
mod state_view;
mod stop;
mod stored_format;
mod variables;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lockgate_engine::{EngineConfig, ManualClock, PipelineService};
use lockgate_model::Caller;
pub use lockgate_shapes::*;
// The model has a shape named `Result`; the glob import above must not shadow std's.
use lockgate_store::{Collection, Store};
use lockgate_store_sqlite::SqliteStore;
pub use std::result::Result;
use tempfile::TempDir;

/// The account every test runs in.
pub const ACCOUNT: &str = "123456789012";
/// The region every test runs in.
pub const REGION: &str = "us-east-1";
/// The ARN of the caller every test acts as.
pub const BOB: &str = "arn:aws:iam::123456789012:user/Bob";
/// Where the manual clock starts: 2023-11-14T22:13:20Z.
pub const START_MILLIS: i64 = 1_700_000_000_000;
/// How long a custom action's job may run in these tests: one hour.
pub const JOB_TIMEOUT_MILLIS: i64 = 60 * 60 * 1000;
/// One minute in milliseconds.
pub const MINUTE: i64 = 60 * 1000;
/// One day in milliseconds.
pub const DAY: i64 = 24 * 60 * MINUTE;
/// The one SNS topic the test server's configuration knows.
pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:release-approvals";
/// The review link the standard pipeline's approval carries.
pub const REVIEW_URL: &str = "https://review.example.com/change/42";

/// A service over a temporary SQLite store, with a manual clock and Bob as the caller.
pub struct TestEnv {
    /// The data directory; removed when the environment is dropped.
    pub dir: TempDir,
    /// The clock the service reads; tests move it by hand.
    pub clock: ManualClock,
    /// The service under test.
    pub svc: Arc<PipelineService>,
    /// Who makes the calls.
    pub caller: Caller,
    /// The store under the service (tests seed it with fixtures or inspect its rows).
    pub store: SqliteStore,
}

fn config() -> EngineConfig {
    EngineConfig {
        account_id: ACCOUNT.to_string(),
        region: REGION.to_string(),
        job_timeout_millis: JOB_TIMEOUT_MILLIS,
        builtin_job_timeout_millis: 10 * 60_000,
        notification_topics: [TOPIC.to_string()].into(),
        pipeline_cache: 1,
        console_url: "http://127.0.0.1:4680".to_string(),
    }
}

async fn open(dir: &Path, clock: &ManualClock) -> (SqliteStore, Arc<PipelineService>) {
    let store = SqliteStore::open(dir).expect("the store opens");
    let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
    let svc = PipelineService::load(dyn_store, Arc::new(clock.clone()), config())
        .await
        .expect("the service loads");
    (store, svc)
}

impl TestEnv {
    /// A fresh environment with the two custom action types every test uses.
    pub async fn new() -> TestEnv {
        let env = TestEnv::empty().await;
        env.create_action_type(ActionCategory::Source, "LocalSource", (0, 0), (1, 1))
            .await;
        env.create_action_type(ActionCategory::Build, "Shell", (0, 5), (0, 5))
            .await;
        env
    }

    /// A fresh environment without custom action types.
    pub async fn empty() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(START_MILLIS);
        let (store, svc) = open(dir.path(), &clock).await;
        TestEnv {
            dir,
            clock,
            svc,
            caller: Caller::new("Bob", ACCOUNT),
            store,
        }
    }

    /// Simulates a restart: drops the service, closes the store (its queued commits finish),
    /// reopens the store and loads a new service from it. The clock keeps its time.
    pub async fn reload(&mut self) {
        self.store.close().expect("the store closes");
        let (store, svc) = open(self.dir.path(), &self.clock).await;
        // Replacing the service drops the old one and everything it held in memory.
        self.svc = svc;
        self.store = store;
    }

    /// Creates the custom action type `<category>/Custom/<provider>/1` with a queryable key
    /// configuration property `Command` and the given (minimum, maximum) artifact counts.
    pub async fn create_action_type(
        &self,
        category: ActionCategory,
        provider: &str,
        (min_in, max_in): (i32, i32),
        (min_out, max_out): (i32, i32),
    ) {
        self.svc
            .create_custom_action_type(
                &self.caller,
                CreateCustomActionTypeInput {
                    category,
                    provider: provider.to_string(),
                    version: "1".to_string(),
                    configuration_properties: Some(vec![ActionConfigurationProperty {
                        name: "Command".to_string(),
                        required: false,
                        key: true,
                        secret: false,
                        queryable: Some(true),
                        description: None,
                        r#type: Some(ActionConfigurationPropertyType::String),
                    }]),
                    input_artifact_details: ArtifactDetails {
                        minimum_count: min_in,
                        maximum_count: max_in,
                    },
                    output_artifact_details: ArtifactDetails {
                        minimum_count: min_out,
                        maximum_count: max_out,
                    },
                    ..Default::default()
                },
            )
            .await
            .expect("the custom action type is created");
    }

    /// Creates a pipeline, which starts its first execution.
    pub async fn create(&self, decl: PipelineDeclaration) -> CreatePipelineOutput {
        self.svc
            .create_pipeline(
                &self.caller,
                CreatePipelineInput {
                    pipeline: decl,
                    tags: None,
                },
            )
            .await
            .expect("the pipeline is created")
    }

    /// Starts an execution and returns its id.
    pub async fn start(&self, pipeline: &str) -> String {
        self.svc
            .start_pipeline_execution(
                &self.caller,
                StartPipelineExecutionInput {
                    name: pipeline.to_string(),
                    ..Default::default()
                },
            )
            .await
            .expect("the execution starts")
            .pipeline_execution_id
            .expect("an execution id")
    }

    /// GetPipelineState.
    pub async fn state(&self, pipeline: &str) -> GetPipelineStateOutput {
        self.svc
            .get_pipeline_state(
                &self.caller,
                GetPipelineStateInput {
                    name: pipeline.to_string(),
                },
            )
            .await
            .expect("the pipeline state is readable")
    }

    /// The state of one stage from GetPipelineState.
    pub async fn stage(&self, pipeline: &str, stage: &str) -> StageState {
        self.state(pipeline)
            .await
            .stage_states
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.stage_name.as_deref() == Some(stage))
            .unwrap_or_else(|| panic!("stage {stage} is in the pipeline state"))
    }

    /// The latest execution of one action from GetPipelineState.
    pub async fn action(&self, pipeline: &str, stage: &str, action: &str) -> ActionExecution {
        self.action_state(pipeline, stage, action)
            .await
            .latest_execution
            .unwrap_or_else(|| panic!("action {stage}/{action} has a latest execution"))
    }

    /// The state of one action from GetPipelineState.
    pub async fn action_state(&self, pipeline: &str, stage: &str, action: &str) -> ActionState {
        self.stage(pipeline, stage)
            .await
            .action_states
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.action_name.as_deref() == Some(action))
            .unwrap_or_else(|| panic!("action {stage}/{action} is in the pipeline state"))
    }

    /// The status of a stage's latest execution.
    pub async fn stage_status(&self, pipeline: &str, stage: &str) -> Option<StageExecutionStatus> {
        self.stage(pipeline, stage)
            .await
            .latest_execution
            .map(|e| e.status)
    }

    /// The approval token GetPipelineState shows for an action.
    pub async fn token(&self, pipeline: &str, stage: &str, action: &str) -> String {
        self.action(pipeline, stage, action)
            .await
            .token
            .unwrap_or_else(|| panic!("action {stage}/{action} shows a token"))
    }

    /// GetPipelineExecution.
    pub async fn execution(&self, pipeline: &str, id: &str) -> PipelineExecution {
        self.svc
            .get_pipeline_execution(
                &self.caller,
                GetPipelineExecutionInput {
                    pipeline_name: pipeline.to_string(),
                    pipeline_execution_id: id.to_string(),
                },
            )
            .await
            .expect("the execution is readable")
            .pipeline_execution
            .expect("an execution")
    }

    /// The status of an execution.
    pub async fn status(&self, pipeline: &str, id: &str) -> PipelineExecutionStatus {
        self.execution(pipeline, id).await.status.expect("a status")
    }

    /// Every execution summary, newest first (all pages).
    pub async fn executions(&self, pipeline: &str) -> Vec<PipelineExecutionSummary> {
        self.executions_in_pages(pipeline, None).await
    }

    /// Every execution of the pipeline, newest first, read `page_size` at a time.
    pub async fn executions_in_pages(
        &self,
        pipeline: &str,
        page_size: Option<i32>,
    ) -> Vec<PipelineExecutionSummary> {
        let mut all = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .svc
                .list_pipeline_executions(
                    &self.caller,
                    ListPipelineExecutionsInput {
                        pipeline_name: pipeline.to_string(),
                        max_results: page_size,
                        next_token,
                        ..Default::default()
                    },
                )
                .await
                .expect("executions are listable");
            all.extend(page.pipeline_execution_summaries.unwrap_or_default());
            next_token = page.next_token;
            if next_token.is_none() {
                return all;
            }
        }
    }

    /// Every action execution of the pipeline, or of one execution, newest first (all pages).
    pub async fn action_executions(
        &self,
        pipeline: &str,
        execution: Option<&str>,
    ) -> Vec<ActionExecutionDetail> {
        self.action_executions_in_pages(pipeline, execution, None)
            .await
    }

    /// Every action execution of the pipeline, or of one execution, newest first, read
    /// `page_size` at a time.
    pub async fn action_executions_in_pages(
        &self,
        pipeline: &str,
        execution: Option<&str>,
        page_size: Option<i32>,
    ) -> Vec<ActionExecutionDetail> {
        let mut all = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .svc
                .list_action_executions(
                    &self.caller,
                    ListActionExecutionsInput {
                        pipeline_name: pipeline.to_string(),
                        filter: execution.map(|id| ActionExecutionFilter {
                            pipeline_execution_id: Some(id.to_string()),
                            ..Default::default()
                        }),
                        max_results: page_size,
                        next_token,
                    },
                )
                .await
                .expect("action executions are listable");
            all.extend(page.action_execution_details.unwrap_or_default());
            next_token = page.next_token;
            if next_token.is_none() {
                return all;
            }
        }
    }

    /// PutApprovalResult as Bob.
    pub async fn answer(
        &self,
        pipeline: &str,
        stage: &str,
        action: &str,
        token: &str,
        status: ApprovalStatus,
    ) -> Result<PutApprovalResultOutput, ServiceError> {
        self.svc
            .put_approval_result(
                &self.caller,
                PutApprovalResultInput {
                    pipeline_name: pipeline.to_string(),
                    stage_name: stage.to_string(),
                    action_name: action.to_string(),
                    result: ApprovalResult {
                        summary: format!("{} by Bob", status.as_str()),
                        status,
                    },
                    token: token.to_string(),
                },
            )
            .await
    }

    /// Approves with a token; the approval must be accepted.
    pub async fn approve(&self, pipeline: &str, stage: &str, action: &str, token: &str) {
        self.answer(pipeline, stage, action, token, ApprovalStatus::Approved)
            .await
            .expect("the approval is accepted");
    }

    /// Approves the standard pipeline's pending approval with the token GetPipelineState shows.
    pub async fn approve_pending(&self, pipeline: &str) {
        let token = self.token(pipeline, "Approve", "Approval").await;
        self.approve(pipeline, "Approve", "Approval", &token).await;
    }

    /// StopPipelineExecution.
    pub async fn stop(
        &self,
        pipeline: &str,
        id: &str,
        abandon: bool,
    ) -> Result<StopPipelineExecutionOutput, ServiceError> {
        self.svc
            .stop_pipeline_execution(
                &self.caller,
                StopPipelineExecutionInput {
                    pipeline_name: pipeline.to_string(),
                    pipeline_execution_id: id.to_string(),
                    abandon: Some(abandon),
                    reason: Some("Stopped by a test".to_string()),
                },
            )
            .await
    }

    /// RetryStageExecution.
    pub async fn retry(
        &self,
        pipeline: &str,
        stage: &str,
        id: &str,
        mode: StageRetryMode,
    ) -> Result<RetryStageExecutionOutput, ServiceError> {
        self.svc
            .retry_stage_execution(
                &self.caller,
                RetryStageExecutionInput {
                    pipeline_name: pipeline.to_string(),
                    stage_name: stage.to_string(),
                    pipeline_execution_id: id.to_string(),
                    retry_mode: mode,
                },
            )
            .await
    }

    /// Moves the clock forward and fires every deadline that is then due.
    pub async fn advance(&self, millis: i64) -> usize {
        self.clock.advance(millis);
        self.svc.fire_due_deadlines().await
    }

    /// Everything a client can read about a pipeline, for "nothing changed" assertions.
    ///
    /// It also moves the clock on by one millisecond, so that a write that touches an
    /// execution after the snapshot shows up in its `lastUpdateTime`.
    pub async fn snapshot(&self, pipeline: &str) -> Snapshot {
        let snapshot = Snapshot {
            state: self.state(pipeline).await,
            executions: self.executions(pipeline).await,
            actions: self.action_executions(pipeline, None).await,
        };
        self.clock.advance(1);
        snapshot
    }

    /// Asserts that what a client can read about a pipeline is what `before` recorded.
    pub async fn assert_unchanged(&self, pipeline: &str, before: &Snapshot) {
        let after = Snapshot {
            state: self.state(pipeline).await,
            executions: self.executions(pipeline).await,
            actions: self.action_executions(pipeline, None).await,
        };
        assert_eq!(&after, before, "the pipeline changed");
    }

    // ----- the fake job worker -----

    /// PollForJobs for an action type, up to 10 jobs.
    pub async fn poll(&self, type_id: &ActionTypeId) -> Vec<Job> {
        self.svc
            .poll_for_jobs(
                &self.caller,
                PollForJobsInput {
                    action_type_id: type_id.clone(),
                    max_batch_size: Some(10),
                    query_param: None,
                },
            )
            .await
            .expect("the poll is answered")
            .jobs
            .unwrap_or_default()
    }

    /// Polls for exactly one job of an action type and acknowledges it.
    pub async fn take_job(&self, type_id: &ActionTypeId) -> Job {
        let mut jobs = self.poll(type_id).await;
        assert_eq!(
            jobs.len(),
            1,
            "exactly one {} job is offered",
            type_id.provider
        );
        let job = jobs.remove(0);
        self.ack(&job).await;
        job
    }

    /// Polls for every job of an action type and acknowledges each.
    pub async fn take_jobs(&self, type_id: &ActionTypeId, expected: usize) -> Vec<Job> {
        let jobs = self.poll(type_id).await;
        assert_eq!(
            jobs.len(),
            expected,
            "{expected} {} jobs are offered",
            type_id.provider
        );
        for job in &jobs {
            self.ack(job).await;
        }
        jobs
    }

    /// AcknowledgeJob with the job's nonce; the job must then be InProgress.
    pub async fn ack(&self, job: &Job) {
        let out = self
            .svc
            .acknowledge_job(
                &self.caller,
                AcknowledgeJobInput {
                    job_id: job_id(job),
                    nonce: job.nonce.clone().expect("a nonce"),
                },
            )
            .await
            .expect("the job is acknowledged");
        assert_eq!(out.status, Some(JobStatus::InProgress));
    }

    /// PutJobSuccessResult without details.
    pub async fn succeed(&self, job: &Job) -> Result<(), ServiceError> {
        self.svc
            .put_job_success_result(
                &self.caller,
                PutJobSuccessResultInput {
                    job_id: job_id(job),
                    ..Default::default()
                },
            )
            .await
    }

    /// PutJobSuccessResult for a source job, reporting `revision` as the current revision.
    pub async fn succeed_with_revision(&self, job: &Job, revision: &str) {
        self.svc
            .put_job_success_result(
                &self.caller,
                PutJobSuccessResultInput {
                    job_id: job_id(job),
                    current_revision: Some(CurrentRevision {
                        revision: revision.to_string(),
                        change_identifier: format!("change-{revision}"),
                        created: None,
                        revision_summary: Some(format!("Commit {revision}")),
                    }),
                    ..Default::default()
                },
            )
            .await
            .expect("the source job's success is accepted");
    }

    /// PutJobFailureResult with a JobFailed failure.
    pub async fn fail(&self, job: &Job, message: &str) -> Result<(), ServiceError> {
        self.svc
            .put_job_failure_result(
                &self.caller,
                PutJobFailureResultInput {
                    job_id: job_id(job),
                    failure_details: FailureDetails {
                        r#type: FailureType::JobFailed,
                        message: message.to_string(),
                        external_execution_id: None,
                    },
                },
            )
            .await
    }

    /// Runs the one offered source job to success with `revision`.
    pub async fn run_source(&self, revision: &str) -> Job {
        let job = self.take_job(&local_source()).await;
        self.succeed_with_revision(&job, revision).await;
        job
    }

    /// Runs the one offered Shell job to success.
    pub async fn run_shell(&self) -> Job {
        let job = self.take_job(&shell()).await;
        self.succeed(&job)
            .await
            .expect("the job's success is accepted");
        job
    }

    /// Creates the standard pipeline and runs its first execution's source, so that it waits
    /// at the approval. Returns the execution id.
    pub async fn standard_waiting_for_approval(&self, name: &str) -> String {
        self.create(standard(name)).await;
        self.run_source("r1").await;
        let id = self.only_execution(name).await;
        assert_eq!(
            self.action(name, "Approve", "Approval").await.status,
            Some(ActionExecutionStatus::InProgress)
        );
        id
    }

    /// Every row in the notification outbox, by key.
    pub async fn outbox(&self) -> Vec<lockgate_store::Record> {
        let mut rows = self
            .store
            .load(lockgate_store::Collection::Outbox)
            .await
            .expect("the outbox loads");
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        rows
    }

    /// How many stored jobs are open (queued or held by a worker), from their index labels.
    pub async fn open_job_records(&self) -> usize {
        self.store
            .load(Collection::Job)
            .await
            .expect("jobs load")
            .iter()
            .filter(|r| r.label.is_some())
            .count()
    }

    /// The id of the pipeline's only execution.
    pub async fn only_execution(&self, pipeline: &str) -> String {
        let all = self.executions(pipeline).await;
        assert_eq!(all.len(), 1, "the pipeline has one execution");
        all[0].pipeline_execution_id.clone().expect("an id")
    }
}

/// Everything a client can read about one pipeline.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    state: GetPipelineStateOutput,
    executions: Vec<PipelineExecutionSummary>,
    actions: Vec<ActionExecutionDetail>,
}

/// A job's id.
pub fn job_id(job: &Job) -> String {
    job.id.clone().expect("a job id")
}

/// The pipeline execution a job belongs to.
pub fn job_execution(job: &Job) -> String {
    job.data
        .as_ref()
        .and_then(|d| d.pipeline_context.as_ref())
        .and_then(|c| c.pipeline_execution_id.clone())
        .expect("the job names its pipeline execution")
}

/// The action a job is for.
pub fn job_action(job: &Job) -> String {
    job.data
        .as_ref()
        .and_then(|d| d.pipeline_context.as_ref())
        .and_then(|c| c.action.as_ref())
        .and_then(|a| a.name.clone())
        .expect("the job names its action")
}

/// Asserts that a call failed with `code`.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, ServiceError>, code: ErrorCode) {
    match result {
        Ok(v) => panic!("expected {}, got Ok({v:?})", code.as_str()),
        Err(e) => assert_eq!(e.code, code, "unexpected error: {e}"),
    }
}

// ----- pipeline builders -----

/// `Source/Custom/LocalSource/1`.
pub fn local_source() -> ActionTypeId {
    custom(ActionCategory::Source, "LocalSource")
}

/// `Build/Custom/Shell/1`.
pub fn shell() -> ActionTypeId {
    custom(ActionCategory::Build, "Shell")
}

fn custom(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: ActionOwner::Custom,
        provider: provider.to_string(),
        version: "1".to_string(),
    }
}

/// A LocalSource action producing `output`.
pub fn source_action(name: &str, output: &str) -> ActionDeclaration {
    ActionDeclaration {
        name: name.to_string(),
        action_type_id: local_source(),
        output_artifacts: Some(vec![OutputArtifact {
            name: output.to_string(),
            files: None,
        }]),
        ..Default::default()
    }
}

/// A Shell action consuming `inputs`, with a run order.
pub fn shell_action(name: &str, inputs: &[&str], run_order: i32) -> ActionDeclaration {
    ActionDeclaration {
        name: name.to_string(),
        action_type_id: shell(),
        run_order: Some(run_order),
        input_artifacts: Some(
            inputs
                .iter()
                .map(|i| InputArtifact {
                    name: i.to_string(),
                })
                .collect(),
        ),
        configuration: Some(BTreeMap::from([(
            "Command".to_string(),
            format!("run {name}"),
        )])),
        ..Default::default()
    }
}

/// A manual approval with a review link and optionally a timeout.
pub fn approval_action(name: &str, timeout_in_minutes: Option<i32>) -> ActionDeclaration {
    ActionDeclaration {
        name: name.to_string(),
        action_type_id: lockgate_model::action_types::manual_approval_id(),
        timeout_in_minutes,
        configuration: Some(BTreeMap::from([
            ("ExternalEntityLink".to_string(), REVIEW_URL.to_string()),
            ("CustomData".to_string(), "Please review".to_string()),
        ])),
        ..Default::default()
    }
}

/// A stage.
pub fn stage(name: &str, actions: Vec<ActionDeclaration>) -> StageDeclaration {
    StageDeclaration {
        name: name.to_string(),
        actions,
        ..Default::default()
    }
}

/// A V1 pipeline declaration of these stages.
pub fn pipeline(name: &str, stages: Vec<StageDeclaration>) -> PipelineDeclaration {
    PipelineDeclaration {
        name: name.to_string(),
        role_arn: "arn:aws:iam::123456789012:role/LockgatePipeline".to_string(),
        artifact_store: Some(ArtifactStore {
            r#type: ArtifactStoreType::S3,
            location: "lockgate-artifacts".to_string(),
            encryption_key: None,
        }),
        stages,
        ..Default::default()
    }
}

/// The standard pipeline: `Source` (LocalSource → `src`), `Approve` (manual approval
/// `Approval`), `Deploy` (Shell `Deploy` consuming `src`).
pub fn standard(name: &str) -> PipelineDeclaration {
    standard_with_timeout(name, None)
}

/// The standard pipeline with an approval timeout.
pub fn standard_with_timeout(name: &str, timeout: Option<i32>) -> PipelineDeclaration {
    pipeline(
        name,
        vec![
            stage("Source", vec![source_action("Checkout", "src")]),
            stage("Approve", vec![approval_action("Approval", timeout)]),
            stage("Deploy", vec![shell_action("Deploy", &["src"], 1)]),
        ],
    )
}

/// The standard pipeline as a V2 pipeline in `mode`.
pub fn standard_v2(name: &str, mode: ExecutionMode) -> PipelineDeclaration {
    PipelineDeclaration {
        pipeline_type: Some(PipelineType::V2),
        execution_mode: Some(mode),
        ..standard(name)
    }
}
