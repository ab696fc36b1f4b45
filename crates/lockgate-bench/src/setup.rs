//! Brings pipelines to a pending approval through the public API only, as a user and a job worker
//! would: create the custom action types, create the pipelines (each starts an execution), play
//! the source job worker in batches, then read each pipeline's approval token.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use lockgate_loadgen::client::Conn;
use lockgate_loadgen::gate::{custom_type, ReleaseGate};

use crate::client::Pool;

/// The custom source action type's provider.
pub const SOURCE_PROVIDER: &str = "LocalSource";
/// The custom build action type's provider; approving makes one of its jobs pollable.
pub const BUILD_PROVIDER: &str = "BenchBuild";
/// The stage holding the approval.
pub const APPROVAL_STAGE: &str = "Approve";
/// The approval action.
pub const APPROVAL_ACTION: &str = "Approval";
/// The stage after the approval.
pub const BUILD_STAGE: &str = "Build";

/// A pipeline waiting at its approval.
#[derive(Clone, Debug)]
pub struct PendingApproval {
    /// The pipeline's name.
    pub pipeline: String,
    /// The approval's token, from GetPipelineState.
    pub token: String,
}

/// The benchmark's pipelines: source → manual approval → build, named as the benchmark's own.
pub const GATE: ReleaseGate = ReleaseGate {
    role: "LockgateBench",
    bucket: "lockgate-bench-artifacts",
    custom_data: "Benchmark release gate",
    source_provider: SOURCE_PROVIDER,
    build_provider: BUILD_PROVIDER,
    approval_stage: APPROVAL_STAGE,
    approval_action: APPROVAL_ACTION,
    build_stage: BUILD_STAGE,
};

/// Creates `Source/Custom/LocalSource/1` and `Build/Custom/BenchBuild/1`.
pub async fn create_action_types(conn: &Conn) -> anyhow::Result<()> {
    for input in GATE.action_type_inputs() {
        conn.call("CreateCustomActionType", &input).await?;
    }
    Ok(())
}

/// Creates every pipeline, spread over the pool's connections.
pub async fn create_pipelines(pool: &Pool, names: &[String]) -> anyhow::Result<()> {
    pool.run(names.to_vec(), |conn: Arc<Conn>, name: String| async move {
        conn.call("CreatePipeline", &GATE.declaration(&name))
            .await
            .map(drop)
    })
    .await?;
    Ok(())
}

/// Plays the source job worker until `expected` source jobs have succeeded: poll up to 100 jobs,
/// then acknowledge and complete that batch over the pool's connections.
pub async fn complete_source_jobs(pool: &Pool, expected: usize) -> anyhow::Result<()> {
    let mut done = 0;
    let mut idle_polls = 0;
    while done < expected {
        let reply = pool
            .first()
            .call(
                "PollForJobs",
                &json!({"actionTypeId": custom_type("Source", SOURCE_PROVIDER), "maxBatchSize": 100}),
            )
            .await?;
        let jobs: Vec<(String, String)> = reply["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|j| {
                Some((
                    j["id"].as_str()?.to_owned(),
                    j["nonce"].as_str()?.to_owned(),
                ))
            })
            .collect();
        if jobs.is_empty() {
            idle_polls += 1;
            if idle_polls > 500 {
                bail!("only {done} of {expected} source jobs were offered");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        idle_polls = 0;
        done += jobs.len();
        pool.run(jobs, |conn: Arc<Conn>, (id, nonce): (String, String)| async move {
            conn.call("AcknowledgeJob", &json!({"jobId": id, "nonce": nonce}))
                .await?;
            conn.call(
                "PutJobSuccessResult",
                &json!({"jobId": id,
                        "currentRevision": {"revision": "bench-r1", "changeIdentifier": "bench-r1"}}),
            )
            .await
            .map(drop)
        })
        .await?;
    }
    Ok(())
}

/// The `latestExecution` of an action in a GetPipelineState output.
pub fn latest_execution<'a>(state: &'a Value, stage: &str, action: &str) -> Option<&'a Value> {
    state["stageStates"]
        .as_array()?
        .iter()
        .find(|s| s["stageName"] == stage)?["actionStates"]
        .as_array()?
        .iter()
        .find(|a| a["actionName"] == action)?
        .get("latestExecution")
}

/// Reads every pipeline's approval token (retrying briefly while the approval is not yet
/// in progress).
pub async fn approval_tokens(
    pool: &Pool,
    names: &[String],
) -> anyhow::Result<Vec<PendingApproval>> {
    pool.run(names.to_vec(), |conn: Arc<Conn>, name: String| async move {
        for _ in 0..200 {
            let state = conn
                .call("GetPipelineState", &json!({"name": name}))
                .await?;
            let execution = latest_execution(&state, APPROVAL_STAGE, APPROVAL_ACTION);
            if let Some(token) = execution
                .filter(|e| e["status"] == "InProgress")
                .and_then(|e| e["token"].as_str())
            {
                return Ok(PendingApproval {
                    pipeline: name,
                    token: token.to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(anyhow!("{name} never reached its approval"))
    })
    .await
}
