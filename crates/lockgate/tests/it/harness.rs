//! `TestApp`: a Lockgate server on a free loopback port with a temporary data directory and a
//! user `Bob`, plus an AWS SDK client signed as Bob, and helpers for pipelines and job workers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactDetails, ArtifactStore,
    ArtifactStoreType, CurrentRevision, OutputArtifact, PipelineDeclaration, StageDeclaration,
};
use aws_sdk_codepipeline::Client;
use lockgate::{App, Config};
use lockgate_engine::users::{put_user, UserRecord};
use lockgate_engine::{Clock, ManualClock, PipelineService, SystemClock};
use lockgate_store::Store;
use lockgate_store_sqlite::SqliteStore;

/// Bob's access key id.
pub const BOB_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// Bob's secret access key.
pub const BOB_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// Bob's ARN.
pub const BOB_ARN: &str = "arn:aws:iam::123456789012:user/Bob";

/// Adds Bob to the store in `dir`.
pub async fn add_bob(dir: &Path) {
    let store = SqliteStore::open(dir).expect("open store");
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    put_user(
        shared.as_ref(),
        &UserRecord {
            name: "Bob".into(),
            account_id: "123456789012".into(),
            access_key_id: BOB_KEY.into(),
            secret_access_key: BOB_SECRET.into(),
            password_hash: None,
            created: 0,
        },
    )
    .await
    .expect("add Bob");
    store.close().expect("close store");
}

/// An SDK client signed as Bob, with helpers for pipelines and job workers.
pub struct TestAppClient {
    /// The SDK client.
    pub client: Client,
}

/// A running in-process server.
pub struct TestApp {
    /// The API endpoint, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    /// Bob's client.
    pub api: TestAppClient,
    /// Keeps the data directory alive.
    pub dir: tempfile::TempDir,
    /// The engine's clock; tests move it to reach deadlines.
    pub clock: ManualClock,
    /// The engine, for firing due deadlines after moving the clock.
    pub service: Arc<PipelineService>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration tests run with: port 0 and the given directory, otherwise the defaults
/// `lockgate serve` has.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::load(
        None,
        lockgate::config::EnvVars::default(),
        std::collections::BTreeMap::<String, String>::new(),
    )
    .expect("the default configuration");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = dir.to_path_buf();
    config.artifacts.dir = dir.join("artifacts");
    config.job_timeout = std::time::Duration::from_secs(3600);
    config
}

/// An SDK client for `endpoint` with the given keys.
pub fn client(endpoint: &str, key: &str, secret: &str) -> Client {
    let creds = aws_credential_types::Credentials::new(key, secret, None, None, "lockgate-tests");
    let config = aws_sdk_codepipeline::Config::builder()
        .behavior_version(aws_sdk_codepipeline::config::BehaviorVersion::latest())
        .region(aws_sdk_codepipeline::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .build();
    Client::from_conf(config)
}

impl TestApp {
    /// Starts a server with Bob as its only user.
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn_in(dir).await
    }

    /// Starts a server over an existing data directory (Bob is added when missing).
    pub async fn spawn_in(dir: tempfile::TempDir) -> TestApp {
        let config = test_config(dir.path());
        Self::spawn_with_config(dir, config).await
    }

    /// Starts a server over `dir` with `config` (whose `data_dir` should be `dir`).
    pub async fn spawn_with_config(dir: tempfile::TempDir, config: Config) -> TestApp {
        add_bob_if_missing(dir.path()).await;
        let clock = ManualClock::new(SystemClock.now_millis());
        let app = App::build_with_clock(config, Arc::new(clock.clone()))
            .await
            .expect("build app");
        let service = app.service();
        let endpoint = format!("http://{}", app.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run(async {
                let _ = rx.await;
            })
            .await
            .expect("server run");
        });
        TestApp {
            api: TestAppClient::new(&endpoint),
            endpoint,
            dir,
            clock,
            service,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server cleanly and starts a new one over the same data.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        TestApp::spawn_in(dir).await
    }

    /// Moves the engine's clock forward by `minutes` and fires the deadlines now due.
    pub async fn advance_minutes(&self, minutes: i64) {
        self.clock.advance(minutes * 60_000);
        self.service.fire_due_deadlines().await;
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestAppClient;
    fn deref(&self) -> &TestAppClient {
        &self.api
    }
}

impl TestAppClient {
    /// A client signed as Bob for `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        TestAppClient {
            client: client(endpoint, BOB_KEY, BOB_SECRET),
        }
    }

    /// Creates the custom source action type `Source/Custom/LocalSource/1`.
    pub async fn create_source_type(&self) {
        self.client
            .create_custom_action_type()
            .category(ActionCategory::Source)
            .provider("LocalSource")
            .version("1")
            .input_artifact_details(artifacts(0, 0))
            .output_artifact_details(artifacts(1, 1))
            .send()
            .await
            .expect("create source type");
    }

    /// Creates `name`: a source stage and a stage `Approve` with a manual approval `Approval`.
    pub async fn create_approval_pipeline(&self, name: &str) {
        self.client
            .create_pipeline()
            .pipeline(approval_pipeline(name))
            .send()
            .await
            .expect("create pipeline");
    }

    /// Plays the job worker for one source job: poll, acknowledge, succeed with `revision`.
    pub async fn complete_source_job(&self, revision: &str) {
        let job = self.poll_one_source_job().await;
        self.client
            .acknowledge_job()
            .job_id(job.0.clone())
            .nonce(job.1)
            .send()
            .await
            .expect("acknowledge");
        self.client
            .put_job_success_result()
            .job_id(job.0)
            .current_revision(
                CurrentRevision::builder()
                    .revision(revision)
                    .change_identifier(revision)
                    .build()
                    .expect("revision"),
            )
            .output_variables("CommitId", revision)
            .send()
            .await
            .expect("job success");
    }

    /// Polls until one source job is handed out; returns (job id, nonce).
    pub async fn poll_one_source_job(&self) -> (String, String) {
        for _ in 0..200 {
            let out = self
                .client
                .poll_for_jobs()
                .action_type_id(source_type_id())
                .max_batch_size(1)
                .send()
                .await
                .expect("poll");
            if let Some(job) = out.jobs().first() {
                return (
                    job.id().expect("job id").to_string(),
                    job.nonce().expect("nonce").to_string(),
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no source job was offered");
    }

    /// The approval token of the action `Approval` in stage `Approve`, when pending.
    pub async fn approval_token(&self, pipeline: &str) -> Option<String> {
        let state = self
            .client
            .get_pipeline_state()
            .name(pipeline)
            .send()
            .await
            .expect("state");
        approval_execution(&state).and_then(|e| e.token().map(str::to_string))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn add_bob_if_missing(dir: &Path) {
    let db = dir.join("lockgate.db");
    if !db.exists() {
        add_bob(dir).await;
    }
}

/// The latest execution of the approval action in a GetPipelineState answer.
pub fn approval_execution(
    state: &aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput,
) -> Option<&aws_sdk_codepipeline::types::ActionExecution> {
    state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some("Approve"))?
        .action_states()
        .iter()
        .find(|a| a.action_name() == Some("Approval"))?
        .latest_execution()
}

/// `Source/Custom/LocalSource/1`.
pub fn source_type_id() -> ActionTypeId {
    ActionTypeId::builder()
        .category(ActionCategory::Source)
        .owner(ActionOwner::Custom)
        .provider("LocalSource")
        .version("1")
        .build()
        .expect("type id")
}

fn artifacts(min: i32, max: i32) -> ArtifactDetails {
    ArtifactDetails::builder()
        .minimum_count(min)
        .maximum_count(max)
        .build()
}

/// A two-stage pipeline: custom source, then a manual approval with comments and a review URL.
pub fn approval_pipeline(name: &str) -> PipelineDeclaration {
    pipeline_with_approvals(
        name,
        &[ManualApproval {
            action: "Approval",
            custom_data: "Review the latest changes",
            external_entity_link: "https://example.com/review",
            notification_arn: None,
        }],
    )
}

/// The path of the built `lockgate` binary.
pub fn lockgate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockgate"))
}

/// The console user the browser tests sign in as.
pub const ALICE: &str = "Alice";
/// Alice's console password.
pub const ALICE_PASSWORD: &str = "correct horse battery staple";
/// Alice's ARN, recorded as `lastUpdatedBy` when she answers an approval.
pub const ALICE_ARN: &str = "arn:aws:iam::123456789012:user/Alice";

/// Adds a user `name` who signs in to the console with `password` (hashed with argon2, as
/// `lockgate user add` does) to the store in `dir`. Works while a server runs on that directory:
/// this opens a second store handle, as the CLI does.
pub async fn add_console_user(dir: &Path, name: &str, password: &str) {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    let password_hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("hash the password")
        .to_string();
    let store = SqliteStore::open(dir).expect("open store");
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    put_user(
        shared.as_ref(),
        &UserRecord {
            name: name.into(),
            account_id: "123456789012".into(),
            access_key_id: format!("AKIACONSOLE{}", name.to_uppercase()),
            secret_access_key: format!("{name}-secret-access-key"),
            password_hash: Some(password_hash),
            created: 0,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("add {name}: {e}"));
    store.close().expect("close store");
}

/// A manual approval action in the `Approve` stage of [`pipeline_with_approvals`].
#[derive(Clone, Copy, Debug)]
pub struct ManualApproval<'a> {
    /// The action's name.
    pub action: &'a str,
    /// `CustomData`: the comments shown to the approver.
    pub custom_data: &'a str,
    /// `ExternalEntityLink`: the URL the approver reviews.
    pub external_entity_link: &'a str,
    /// `NotificationArn`: the topic told when the approval starts (it must be configured).
    pub notification_arn: Option<&'a str>,
}

impl TestApp {
    /// Starts a server whose users are Bob (API keys) and Alice (console password
    /// [`ALICE_PASSWORD`]); both exist before the server starts, so its in-memory user list has
    /// them from the first request.
    pub async fn spawn_with_alice() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        add_bob(dir.path()).await;
        add_console_user(dir.path(), ALICE, ALICE_PASSWORD).await;
        TestApp::spawn_in(dir).await
    }
}

impl TestAppClient {
    /// Creates `name` (a custom source stage, then an `Approve` stage holding `approvals` side by
    /// side), plays the job worker for its first source job with `revision`, and returns once
    /// every approval is In progress. The source action type must exist
    /// ([`TestAppClient::create_source_type`]); create pipelines one after another, since the
    /// worker takes whichever source job is offered.
    pub async fn create_pipeline_waiting_for_approvals(
        &self,
        name: &str,
        approvals: &[ManualApproval<'_>],
        revision: &str,
    ) {
        self.client
            .create_pipeline()
            .pipeline(pipeline_with_approvals(name, approvals))
            .send()
            .await
            .expect("create pipeline");
        self.complete_source_job(revision).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        for approval in approvals {
            while self
                .approval_token_of(name, approval.action)
                .await
                .is_none()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "approval {} of {name} never became In progress",
                    approval.action
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }

    /// The approval token of the action `action` in stage `Approve`, when pending.
    pub async fn approval_token_of(&self, pipeline: &str, action: &str) -> Option<String> {
        let state = self
            .client
            .get_pipeline_state()
            .name(pipeline)
            .send()
            .await
            .expect("state");
        approval_execution_of(&state, action).and_then(|e| e.token().map(str::to_string))
    }
}

/// The latest execution of the action `action` in stage `Approve` in a GetPipelineState answer.
pub fn approval_execution_of<'s>(
    state: &'s aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput,
    action: &str,
) -> Option<&'s aws_sdk_codepipeline::types::ActionExecution> {
    state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some("Approve"))?
        .action_states()
        .iter()
        .find(|a| a.action_name() == Some(action))?
        .latest_execution()
}

/// Like [`approval_pipeline`], with the given manual approvals side by side in stage `Approve`.
pub fn pipeline_with_approvals(
    name: &str,
    approvals: &[ManualApproval<'_>],
) -> PipelineDeclaration {
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(source_type_id())
        // Approvals may name `#{SourceVariables.CommitId}`: the source job reports it.
        .namespace("SourceVariables")
        .output_artifacts(
            OutputArtifact::builder()
                .name("SourceOutput")
                .build()
                .expect("out"),
        )
        .build()
        .expect("source action");
    let mut approve = StageDeclaration::builder().name("Approve");
    for approval in approvals {
        let mut action = ActionDeclaration::builder();
        if let Some(arn) = approval.notification_arn {
            action = action.configuration("NotificationArn", arn);
        }
        approve = approve.actions(
            action
                .name(approval.action)
                .action_type_id(
                    ActionTypeId::builder()
                        .category(ActionCategory::Approval)
                        .owner(ActionOwner::Aws)
                        .provider("Manual")
                        .version("1")
                        .build()
                        .expect("approval type"),
                )
                .configuration("CustomData", approval.custom_data)
                .configuration("ExternalEntityLink", approval.external_entity_link)
                .build()
                .expect("approval action"),
        );
    }
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/LockgateRole")
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("lockgate-artifacts")
                .build()
                .expect("store"),
        )
        .stages(
            StageDeclaration::builder()
                .name("Source")
                .actions(source)
                .build()
                .expect("source stage"),
        )
        .stages(approve.build().expect("approve stage"))
        .build()
        .expect("pipeline")
}
