//! Stored data from earlier versions still loads: the fixtures under `tests/fixtures/stored-v1`
//! are the records the engine wrote before jobs moved into the decided state (captured with
//! `cargo run -p lockgate-engine --example capture_stored`), with what clients read from them
//! at the time. Loading them into a fresh store must give the same answers, and the pending
//! work in them (an approval, a queued job, an acknowledged job) must carry on.

use std::path::{Path, PathBuf};

use lockgate_store::{Collection, Mutation, Record};
use serde_json::Value;

use crate::*;

fn fixtures(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("fixture {} is readable: {e}", path.display()));
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// A service over a fresh store holding the records of a fixture directory, with the clock at
/// the time the fixture was captured.
async fn load_fixture(version: &str) -> TestEnv {
    let dir = fixtures(version);
    let env = TestEnv::empty().await;
    let mut mutations = Vec::new();
    for c in Collection::ALL {
        let file = dir.join(format!("{}.json", c.as_str()));
        if !file.exists() {
            continue;
        }
        let Value::Array(rows) = read_json(&file) else {
            panic!("{} holds an array of records", file.display());
        };
        for row in rows {
            let mut record =
                Record::new(*c, row["key"].as_str().expect("a key"), row["body"].clone());
            record.parent = row["parent"].as_str().map(str::to_string);
            record.due_at = row["due_at"].as_i64();
            mutations.push(Mutation::Put(record));
        }
    }
    // The fixture was written by an earlier release, which kept no index layout record: the
    // service indexes it when it next loads, as it would the real thing.
    mutations.push(Mutation::Delete {
        collection: Collection::Meta,
        key: "index-layout".to_string(),
    });
    env.store
        .commit(mutations)
        .await
        .expect("the fixture is stored");
    let captured = read_json(&dir.join("expected/clock.json"))["now_millis"]
        .as_i64()
        .expect("the capture time");
    let mut env = env;
    env.clock.advance(captured - START_MILLIS);
    env.reload().await;
    env
}

fn expected(version: &str, name: &str) -> Value {
    read_json(&fixtures(version).join("expected").join(name))
}

/// The ids of the fixture's jobs that were finished when it was captured.
fn finished_jobs(version: &str) -> Vec<String> {
    let Value::Array(jobs) = read_json(&fixtures(version).join("jobs.json")) else {
        panic!("jobs.json holds an array of records");
    };
    jobs.iter()
        .filter(|j| {
            matches!(
                j["body"]["status"].as_str(),
                Some("Succeeded" | "Failed" | "TimedOut")
            )
        })
        .filter_map(|j| j["key"].as_str().map(str::to_string))
        .collect()
}

fn as_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("the output serialises")
}

#[tokio::test]
async fn stored_v1_records_load_and_read_as_they_did() {
    let env = load_fixture("stored-v1").await;

    assert_eq!(
        as_json(&env.state("release").await),
        expected("stored-v1", "get_pipeline_state.json")
    );
    let executions = env
        .svc
        .list_pipeline_executions(
            &env.caller,
            ListPipelineExecutionsInput {
                pipeline_name: "release".to_string(),
                ..Default::default()
            },
        )
        .await
        .expect("executions are listable");
    assert_eq!(
        as_json(&executions),
        expected("stored-v1", "list_pipeline_executions.json")
    );
    let actions = env
        .svc
        .list_action_executions(
            &env.caller,
            ListActionExecutionsInput {
                pipeline_name: "release".to_string(),
                ..Default::default()
            },
        )
        .await
        .expect("action executions are listable");
    assert_eq!(
        as_json(&actions),
        expected("stored-v1", "list_action_executions.json")
    );
    let Value::Object(details) = expected("stored-v1", "get_job_details.json") else {
        panic!("job details are keyed by job id");
    };
    for (id, want) in details {
        let got = env
            .svc
            .get_job_details(&env.caller, GetJobDetailsInput { job_id: id.clone() })
            .await
            .unwrap_or_else(|e| panic!("job {id} is readable: {e}"));
        assert_eq!(as_json(&got), want, "the details of job {id}");
    }
    // Finished jobs take no further results, and saying so changes nothing.
    let before = env.snapshot("release").await;
    let finished = finished_jobs("stored-v1");
    assert_eq!(finished.len(), 4);
    for id in finished {
        let job = Job {
            id: Some(id),
            ..Default::default()
        };
        assert_code(env.succeed(&job).await, ErrorCode::InvalidJobStateException);
        assert_code(
            env.fail(&job, "late").await,
            ErrorCode::InvalidJobStateException,
        );
    }
    env.assert_unchanged("release", &before).await;
}

#[tokio::test]
async fn pending_work_in_stored_v1_records_carries_on() {
    let env = load_fixture("stored-v1").await;
    let before = env.executions("release").await;
    let in_progress = before
        .iter()
        .filter(|e| e.status == Some(PipelineExecutionStatus::InProgress))
        .count();
    assert_eq!(in_progress, 3, "three executions were in progress");

    // The queued source job is offered; the acknowledged one is not offered again.
    let offered = env.poll(&local_source()).await;
    assert_eq!(offered.len(), 1, "only the queued job is offered");
    env.ack(&offered[0]).await;
    env.succeed_with_revision(&offered[0], "r5").await;

    // The acknowledged job (from the execution whose source is still running) takes a result.
    let waiting: Vec<String> = env
        .action_executions("release", None)
        .await
        .into_iter()
        .filter(|a| {
            a.action_name.as_deref() == Some("Checkout")
                && a.status == Some(ActionExecutionStatus::InProgress)
        })
        .filter_map(|a| a.pipeline_execution_id)
        .collect();
    assert_eq!(waiting.len(), 1, "one source job is still held by a worker");
    let Value::Object(details) = expected("stored-v1", "get_job_details.json") else {
        panic!("job details are keyed by job id");
    };
    let held = details
        .iter()
        .find(|(_, d)| {
            d["jobDetails"]["data"]["pipelineContext"]["pipelineExecutionId"].as_str()
                == Some(waiting[0].as_str())
        })
        .map(|(id, _)| id.clone())
        .expect("the held job is in the fixture");
    let held = Job {
        id: Some(held),
        ..Default::default()
    };
    env.succeed_with_revision(&held, "r4").await;

    // Both executions moved on to their approval, next to the one already waiting there.
    let approvals = env
        .action_executions("release", None)
        .await
        .into_iter()
        .filter(|a| {
            a.action_name.as_deref() == Some("Approval")
                && a.status == Some(ActionExecutionStatus::InProgress)
        })
        .count();
    assert_eq!(approvals, 3);

    // The waiting approval's one-day deadline is still armed: a day later all three expired.
    assert_eq!(env.advance(DAY).await, 3);
    let failed = env
        .executions("release")
        .await
        .into_iter()
        .filter(|e| e.status == Some(PipelineExecutionStatus::Failed))
        .count();
    assert_eq!(
        failed, 4,
        "the three expired approvals failed their executions"
    );
}
