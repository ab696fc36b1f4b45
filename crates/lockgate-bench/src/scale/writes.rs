//! Writes at scale, 64 clients on distinct pipelines: StartPipelineExecution (each new execution
//! then abandoned with StopPipelineExecution, so the pipeline is left as it was: its first
//! execution still waiting at the approval, plus one stopped execution), and PutApprovalResult
//! on pipelines never approved before, which queues their build jobs for the PollForJobs
//! measurement; afterwards those jobs are completed, so the executions finish.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::json;

use lockgate_loadgen::client::Conn;

use super::api::{self, pipeline_name};
use super::fan::{fan_out, Fanned};
use super::load::poll;
use super::watch::Watch;
use crate::setup::{latest_execution, APPROVAL_ACTION, APPROVAL_STAGE, BUILD_PROVIDER};

/// StartPipelineExecution on pipelines `0 .. count` (one each), then StopPipelineExecution
/// (abandon) on each new execution. Returns the two fan-outs.
pub async fn starts(
    conns: &[Arc<Conn>],
    count: usize,
    watch: &Arc<Watch>,
) -> anyhow::Result<(Fanned, Fanned)> {
    let ids: Arc<Vec<Mutex<Option<String>>>> =
        Arc::new((0..count).map(|_| Mutex::new(None)).collect());
    watch.phase("StartPipelineExecution", count);
    let recorded = ids.clone();
    let progress = watch.clone();
    let started = fan_out(conns, 0..count, true, move |conn, i| {
        let (recorded, watch) = (recorded.clone(), progress.clone());
        async move {
            let (took, out) = api::timed(
                &conn,
                "StartPipelineExecution",
                &json!({"name": pipeline_name(i)}),
            )
            .await?;
            let id = out["pipelineExecutionId"]
                .as_str()
                .ok_or_else(|| anyhow!("StartPipelineExecution returned no execution id: {out}"))?;
            *recorded[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_owned());
            watch.add(1);
            Ok(took)
        }
    })
    .await?;
    watch.phase(
        "StopPipelineExecution (abandon) of the started executions",
        count,
    );
    let progress = watch.clone();
    let stopped = fan_out(conns, 0..count, true, move |conn, i| {
        let (ids, watch) = (ids.clone(), progress.clone());
        async move {
            let id = ids[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| anyhow!("no execution was started on {}", pipeline_name(i)))?;
            let (took, _) = api::timed(
                &conn,
                "StopPipelineExecution",
                &json!({"pipelineName": pipeline_name(i), "pipelineExecutionId": id,
                        "abandon": true, "reason": "lockgate-bench scale: measured a start"}),
            )
            .await?;
            watch.add(1);
            Ok(took)
        }
    })
    .await?;
    Ok((started, stopped))
}

/// What approving did.
pub struct Approvals {
    /// Reading the approval tokens (GetPipelineState, 64 clients).
    pub tokens: Fanned,
    /// PutApprovalResult.
    pub approved: Fanned,
}

/// Reads the approval token of pipelines `range` (each must be waiting at its approval) and
/// approves them all.
pub async fn approve(
    conns: &[Arc<Conn>],
    range: std::ops::Range<usize>,
    watch: &Arc<Watch>,
) -> anyhow::Result<Approvals> {
    let first = range.start;
    let slots: Arc<Vec<Mutex<Option<String>>>> =
        Arc::new(range.clone().map(|_| Mutex::new(None)).collect());
    watch.phase("GetPipelineState for the approval tokens", range.len());
    let recorded = slots.clone();
    let progress = watch.clone();
    let tokens = fan_out(conns, range.clone(), true, move |conn, i| {
        let (recorded, watch) = (recorded.clone(), progress.clone());
        async move {
            let name = pipeline_name(i);
            let (took, state) =
                api::timed(&conn, "GetPipelineState", &json!({"name": name})).await?;
            let token = latest_execution(&state, APPROVAL_STAGE, APPROVAL_ACTION)
                .filter(|e| e["status"] == "InProgress")
                .and_then(|e| e["token"].as_str())
                .ok_or_else(|| anyhow!("{name} is not waiting at its approval"))?;
            *recorded[i - first]
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(token.to_owned());
            watch.add(1);
            Ok(took)
        }
    })
    .await?;
    watch.phase("PutApprovalResult", range.len());
    let progress = watch.clone();
    let approved = fan_out(conns, range, true, move |conn, i| {
        let (slots, watch) = (slots.clone(), progress.clone());
        async move {
            let token = slots[i - first]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or_else(|| anyhow!("no token for {}", pipeline_name(i)))?;
            let (took, out) = api::timed(
                &conn,
                "PutApprovalResult",
                &json!({"pipelineName": pipeline_name(i), "stageName": APPROVAL_STAGE,
                        "actionName": APPROVAL_ACTION, "token": token,
                        "result": {"status": "Approved", "summary": "lockgate-bench scale"}}),
            )
            .await?;
            if out.get("approvedAt").is_none() {
                bail!("PutApprovalResult without approvedAt: {out}");
            }
            watch.add(1);
            Ok(took)
        }
    })
    .await?;
    Ok(Approvals { tokens, approved })
}

/// A job handed out by PollForJobs: `(job id, nonce, pipeline name)`.
pub type PolledJob = (String, String, String);

/// Plays the build job worker to the end: acknowledges and succeeds `held` (jobs already
/// polled), then polls the rest of the BenchBuild queue on every connection and completes those
/// too. Returns how many jobs were completed and how long it took.
pub async fn complete_build_jobs(
    conns: &[Arc<Conn>],
    held: Vec<PolledJob>,
    watch: &Arc<Watch>,
) -> anyhow::Result<(usize, Duration)> {
    watch.phase("build jobs: AcknowledgeJob, PutJobSuccessResult", 0);
    let began = Instant::now();
    let held = Arc::new(Mutex::new(held));
    let mut tasks = Vec::with_capacity(conns.len());
    for conn in conns {
        let (conn, held, watch) = (conn.clone(), held.clone(), watch.clone());
        tasks.push(tokio::spawn(async move {
            let mut completed = 0;
            loop {
                let next = held.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let jobs = match next {
                    Some(job) => vec![job],
                    None => poll(&conn, BUILD_PROVIDER, "Build", 10).await?,
                };
                if jobs.is_empty() {
                    return anyhow::Ok(completed);
                }
                for (id, nonce, _) in jobs {
                    conn.call("AcknowledgeJob", &json!({"jobId": id, "nonce": nonce}))
                        .await?;
                    conn.call(
                        "PutJobSuccessResult",
                        &json!({"jobId": id, "executionDetails": {"summary": "lockgate-bench scale"}}),
                    )
                    .await?;
                    completed += 1;
                    watch.add(1);
                }
            }
        }));
    }
    let mut completed = 0;
    for task in tasks {
        completed += task.await.context("a build job worker failed")??;
    }
    Ok((completed, began.elapsed()))
}
