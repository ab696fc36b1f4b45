//! Captures what the engine stores today as JSON fixtures, so that a test can prove later
//! versions still load it.
//!
//! It drives a real `PipelineService` over a temporary SQLite store with a manual clock through
//! a fixed scenario (two pipeline versions, executions succeeded, failed, waiting at an
//! approval with a deadline, with a job queued, with a job acknowledged, finished jobs, tags
//! and custom action types), then writes every stored record, one file per collection, and
//! what clients read (`expected/*.json`) into the directory given as the only argument:
//!
//! ```text
//! cargo run -p lockgate-engine --example capture_stored -- crates/lockgate-engine/tests/fixtures/stored-vN
//! ```
//!
//! Ids are random (the service takes no id source); once committed, a fixture is frozen, and
//! the test compares against the client views captured in the same run. The example refuses an
//! existing directory. `stored-v1` (format 1) was captured this way; the byte-for-byte golden
//! files of later formats (`stored-v2`, ...) come from the golden test in `tests/decide/stored.rs`,
//! which builds its state with fixed ids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lockgate_engine::{EngineConfig, ManualClock, PipelineService};
use lockgate_model::Caller;
use lockgate_shapes::*;
use lockgate_store::{Collection, Store};
use lockgate_store_sqlite::SqliteStore;
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";
const START_MILLIS: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

fn custom(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: ActionOwner::Custom,
        provider: provider.to_string(),
        version: "1".to_string(),
    }
}

fn declaration(name: &str, approval_timeout: Option<i32>) -> PipelineDeclaration {
    let action = |name: &str, type_id: ActionTypeId| ActionDeclaration {
        name: name.to_string(),
        action_type_id: type_id,
        ..Default::default()
    };
    PipelineDeclaration {
        name: name.to_string(),
        role_arn: "arn:aws:iam::123456789012:role/LockgatePipeline".to_string(),
        artifact_store: Some(ArtifactStore {
            r#type: ArtifactStoreType::S3,
            location: "lockgate-artifacts".to_string(),
            encryption_key: None,
        }),
        pipeline_type: Some(PipelineType::V2),
        execution_mode: Some(ExecutionMode::Parallel),
        stages: vec![
            StageDeclaration {
                name: "Source".to_string(),
                actions: vec![ActionDeclaration {
                    output_artifacts: Some(vec![OutputArtifact {
                        name: "src".to_string(),
                        files: None,
                    }]),
                    ..action("Checkout", custom(ActionCategory::Source, "LocalSource"))
                }],
                ..Default::default()
            },
            StageDeclaration {
                name: "Approve".to_string(),
                actions: vec![ActionDeclaration {
                    timeout_in_minutes: approval_timeout,
                    configuration: Some(BTreeMap::from([(
                        "CustomData".to_string(),
                        "Please review".to_string(),
                    )])),
                    ..action(
                        "Approval",
                        lockgate_model::action_types::manual_approval_id(),
                    )
                }],
                ..Default::default()
            },
            StageDeclaration {
                name: "Deploy".to_string(),
                actions: vec![ActionDeclaration {
                    input_artifacts: Some(vec![InputArtifact {
                        name: "src".to_string(),
                    }]),
                    configuration: Some(BTreeMap::from([(
                        "Command".to_string(),
                        "run deploy".to_string(),
                    )])),
                    ..action("Deploy", custom(ActionCategory::Build, "Shell"))
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

struct Scenario {
    svc: Arc<PipelineService>,
    clock: ManualClock,
    caller: Caller,
}

impl Scenario {
    async fn action_type(&self, category: ActionCategory, provider: &str) {
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
                        minimum_count: 0,
                        maximum_count: 1,
                    },
                    output_artifact_details: ArtifactDetails {
                        minimum_count: 0,
                        maximum_count: 1,
                    },
                    tags: Some(vec![Tag {
                        key: "kind".to_string(),
                        value: provider.to_lowercase(),
                    }]),
                    ..Default::default()
                },
            )
            .await
            .expect("the action type is created");
    }

    async fn job(&self, provider: ActionTypeId) -> Job {
        self.clock.advance(MINUTE);
        let mut jobs = self
            .svc
            .poll_for_jobs(
                &self.caller,
                PollForJobsInput {
                    action_type_id: provider,
                    max_batch_size: Some(1),
                    query_param: None,
                },
            )
            .await
            .expect("the poll is answered")
            .jobs
            .unwrap_or_default();
        assert_eq!(jobs.len(), 1, "one job is offered");
        let job = jobs.remove(0);
        self.svc
            .acknowledge_job(
                &self.caller,
                AcknowledgeJobInput {
                    job_id: job.id.clone().expect("an id"),
                    nonce: job.nonce.clone().expect("a nonce"),
                },
            )
            .await
            .expect("the job is acknowledged");
        job
    }

    async fn succeed(&self, job: &Job, revision: Option<&str>) {
        self.clock.advance(MINUTE);
        self.svc
            .put_job_success_result(
                &self.caller,
                PutJobSuccessResultInput {
                    job_id: job.id.clone().expect("an id"),
                    current_revision: revision.map(|r| CurrentRevision {
                        revision: r.to_string(),
                        change_identifier: format!("change-{r}"),
                        created: None,
                        revision_summary: Some(format!("Commit {r}")),
                    }),
                    execution_details: Some(ExecutionDetails {
                        summary: Some("done".to_string()),
                        external_execution_id: Some("worker-1".to_string()),
                        percent_complete: Some(100),
                    }),
                    output_variables: Some(BTreeMap::from([(
                        "COMMIT".to_string(),
                        revision.unwrap_or("none").to_string(),
                    )])),
                    ..Default::default()
                },
            )
            .await
            .expect("the success is accepted");
    }

    async fn fail(&self, job: &Job) {
        self.clock.advance(MINUTE);
        self.svc
            .put_job_failure_result(
                &self.caller,
                PutJobFailureResultInput {
                    job_id: job.id.clone().expect("an id"),
                    failure_details: FailureDetails {
                        r#type: FailureType::JobFailed,
                        message: "checkout failed".to_string(),
                        external_execution_id: Some("worker-2".to_string()),
                    },
                },
            )
            .await
            .expect("the failure is accepted");
    }

    async fn start(&self) -> String {
        self.clock.advance(MINUTE);
        self.svc
            .start_pipeline_execution(
                &self.caller,
                StartPipelineExecutionInput {
                    name: "release".to_string(),
                    ..Default::default()
                },
            )
            .await
            .expect("the execution starts")
            .pipeline_execution_id
            .expect("an id")
    }

    async fn approve(&self) {
        self.clock.advance(MINUTE);
        let state = self
            .svc
            .pipeline_state_view("release")
            .await
            .expect("a view");
        // In PARALLEL mode the token is shown as the external execution id.
        let token = state
            .stage_states
            .iter()
            .flatten()
            .filter(|s| s.stage_name.as_deref() == Some("Approve"))
            .flat_map(|s| s.action_states.iter().flatten())
            .find_map(|a| a.latest_execution.as_ref()?.external_execution_id.clone())
            .expect("a pending approval");
        self.svc
            .put_approval_result(
                &self.caller,
                PutApprovalResultInput {
                    pipeline_name: "release".to_string(),
                    stage_name: "Approve".to_string(),
                    action_name: "Approval".to_string(),
                    result: ApprovalResult {
                        summary: "Approved by Bob".to_string(),
                        status: ApprovalStatus::Approved,
                    },
                    token,
                },
            )
            .await
            .expect("the approval is accepted");
    }
}

fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON serialises");
    std::fs::write(path, text + "\n").expect("the fixture is written");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: capture_stored <output directory>"),
    );
    // A captured fixture is frozen: tests compare against it, so it is never overwritten.
    assert!(
        !out.exists(),
        "{} exists; captured fixtures are never overwritten",
        out.display()
    );
    std::fs::create_dir_all(out.join("expected")).expect("the output directory is created");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path()).expect("the store opens");
    let clock = ManualClock::new(START_MILLIS);
    let cfg = EngineConfig {
        account_id: ACCOUNT.to_string(),
        region: "us-east-1".to_string(),
        job_timeout_millis: 60 * MINUTE,
        builtin_job_timeout_millis: 10 * MINUTE,
        notification_topics: Default::default(),
        pipeline_cache: lockgate_engine::DEFAULT_PIPELINE_CACHE,
        console_url: "http://127.0.0.1:4680".to_string(),
    };
    let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
    let svc = PipelineService::load(dyn_store, Arc::new(clock.clone()), cfg)
        .await
        .expect("the service loads");
    let s = Scenario {
        svc,
        clock,
        caller: Caller::new("Bob", ACCOUNT),
    };
    let source = custom(ActionCategory::Source, "LocalSource");
    let shell = custom(ActionCategory::Build, "Shell");
    s.action_type(ActionCategory::Source, "LocalSource").await;
    s.action_type(ActionCategory::Build, "Shell").await;

    // Version 1; its first execution (started by the creation) runs to success.
    s.svc
        .create_pipeline(
            &s.caller,
            CreatePipelineInput {
                pipeline: declaration("release", None),
                tags: Some(vec![Tag {
                    key: "team".to_string(),
                    value: "payments".to_string(),
                }]),
            },
        )
        .await
        .expect("the pipeline is created");
    let checkout = s.job(source.clone()).await;
    s.succeed(&checkout, Some("r1")).await;
    s.approve().await;
    let deploy = s.job(shell.clone()).await;
    s.succeed(&deploy, None).await;

    // A second execution fails at its source.
    s.start().await;
    let broken = s.job(source.clone()).await;
    s.fail(&broken).await;

    // Version 2, with a one-day approval timeout.
    s.clock.advance(MINUTE);
    s.svc
        .update_pipeline(
            &s.caller,
            UpdatePipelineInput {
                pipeline: declaration("release", Some(24 * 60)),
            },
        )
        .await
        .expect("the pipeline is updated");

    // Waiting at the approval (its source job finished).
    s.start().await;
    let checkout = s.job(source.clone()).await;
    s.succeed(&checkout, Some("r3")).await;
    // A source job acknowledged and in progress.
    s.start().await;
    s.job(source.clone()).await;
    // A source job queued, not yet polled.
    s.start().await;

    let mut job_ids = Vec::new();
    for c in Collection::ALL {
        let mut records = stored_records(&store, *c).await;
        if records.is_empty() {
            continue;
        }
        records.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
        if *c == Collection::Job {
            job_ids = records
                .iter()
                .filter_map(|r| r["key"].as_str().map(str::to_string))
                .collect();
        }
        write_json(&out.join(format!("{}.json", c.as_str())), &json!(records));
    }

    let name = "release".to_string();
    let state = s
        .svc
        .get_pipeline_state(&s.caller, GetPipelineStateInput { name: name.clone() })
        .await
        .expect("the state is readable");
    write_json(&out.join("expected/get_pipeline_state.json"), &json!(state));
    let executions = s
        .svc
        .list_pipeline_executions(
            &s.caller,
            ListPipelineExecutionsInput {
                pipeline_name: name.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("executions are listable");
    write_json(
        &out.join("expected/list_pipeline_executions.json"),
        &json!(executions),
    );
    let actions = s
        .svc
        .list_action_executions(
            &s.caller,
            ListActionExecutionsInput {
                pipeline_name: name.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("action executions are listable");
    write_json(
        &out.join("expected/list_action_executions.json"),
        &json!(actions),
    );
    let mut details = serde_json::Map::new();
    for id in job_ids {
        let d = s
            .svc
            .get_job_details(&s.caller, GetJobDetailsInput { job_id: id.clone() })
            .await
            .expect("the job is readable");
        details.insert(id, json!(d));
    }
    write_json(
        &out.join("expected/get_job_details.json"),
        &Value::Object(details),
    );
    write_json(
        &out.join("expected/clock.json"),
        &json!({ "now_millis": lockgate_engine::Clock::now_millis(&s.clock) }),
    );
    store.close().expect("the store closes");
}

/// Every record of a collection as `{key, parent, due_at, body}`.
async fn stored_records(store: &SqliteStore, c: Collection) -> Vec<Value> {
    store
        .load(c)
        .await
        .expect("the collection loads")
        .into_iter()
        .map(|r| {
            json!({
                "key": r.key,
                "parent": r.parent,
                "due_at": r.due_at,
                "body": r.body.value(),
            })
        })
        .collect()
}
