//! Loading the installation through the public API, as users and a job worker would: pipelines
//! `p0000000 …` created in chunks (CreatePipeline starts an execution that waits for its source
//! job), each chunk's source jobs then polled, acknowledged and succeeded, which brings every
//! execution to its manual approval; and the history pipeline, whose executions are driven to
//! an end one after another by rejecting their approval.
//!
//! Creating and completing alternate chunk by chunk so CreatePipeline and the job worker are
//! timed apart, and so the queue of source jobs never holds more than one chunk.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use lockgate_loadgen::client::Conn;
use lockgate_loadgen::gate::custom_type;

use super::api::{self, pipeline_name, HISTORY_PIPELINE};
use super::fan::fan_out;
use super::ledger::Ledger;
use super::watch::Watch;
use crate::setup::{latest_execution, APPROVAL_ACTION, APPROVAL_STAGE, GATE, SOURCE_PROVIDER};

/// Source jobs one worker takes per PollForJobs while loading.
const SOURCE_BATCH: usize = 10;

/// What loading pipelines took.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadReport {
    /// Pipelines created by this run.
    pub created: usize,
    /// Time spent in CreatePipeline, over every chunk.
    pub create_time: Duration,
    /// Source jobs polled, acknowledged and succeeded.
    pub source_jobs: usize,
    /// Time spent on them, over every chunk.
    pub source_time: Duration,
    /// From the first CreatePipeline to the last pipeline at its approval.
    pub wall: Duration,
}

/// Loads pipelines `ledger.pipelines .. target` to their pending approval in chunks of `chunk`,
/// recording each complete chunk in the ledger (written to `dir`), so an interrupted load
/// resumes at the chunk it was in.
pub async fn pipelines(
    conns: &[Arc<Conn>],
    ledger: &mut Ledger,
    dir: &std::path::Path,
    target: usize,
    chunk: usize,
    watch: &Arc<Watch>,
) -> anyhow::Result<LoadReport> {
    let mut report = LoadReport::default();
    let began = Instant::now();
    watch.phase(
        &format!(
            "loading {}..{} to their approval",
            pipeline_name(ledger.pipelines),
            pipeline_name(target - 1)
        ),
        target - ledger.pipelines,
    );
    while ledger.pipelines < target {
        let from = ledger.pipelines;
        let to = (from + chunk.max(1)).min(target);
        let created = Arc::new(AtomicUsize::new(0));
        let counter = created.clone();
        let fanned = fan_out(conns, from..to, false, move |conn, i| {
            let counter = counter.clone();
            async move {
                let started = Instant::now();
                let declaration = GATE.declaration(&pipeline_name(i));
                match api::call(&conn, "CreatePipeline", &declaration).await? {
                    Ok(_) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    // Left by an interrupted run: its execution is handled like the others
                    // (a source job still queued is completed below).
                    Err(fault) if fault.code == "PipelineNameInUseException" => {}
                    Err(fault) => {
                        return Err(anyhow!("CreatePipeline {}: {fault}", pipeline_name(i)))
                    }
                }
                Ok(started.elapsed())
            }
        })
        .await?;
        report.create_time += fanned.elapsed;
        let created = created.load(Ordering::Relaxed);
        report.created += created;

        let started = Instant::now();
        let completed = complete_source_jobs(conns, watch).await?;
        report.source_time += started.elapsed();
        report.source_jobs += completed;
        if completed < created {
            bail!(
                "{created} pipelines were created in {}..{} but only {completed} source jobs \
                 were offered",
                pipeline_name(from),
                pipeline_name(to - 1)
            );
        }
        ledger.pipelines = to;
        ledger.write(dir)?;
    }
    report.wall = began.elapsed();
    Ok(report)
}

/// Plays the source job worker on every connection until PollForJobs finds no queued source
/// job: poll a batch, then AcknowledgeJob and PutJobSuccessResult each job. A connection stops
/// at its first empty poll: the queue is then empty and every job left is held by a connection
/// that will complete it. Each completed job counts on `watch` (one more pipeline at its
/// approval). Returns how many jobs were completed.
async fn complete_source_jobs(conns: &[Arc<Conn>], watch: &Arc<Watch>) -> anyhow::Result<usize> {
    let mut tasks = Vec::with_capacity(conns.len());
    for conn in conns {
        let (conn, watch) = (conn.clone(), watch.clone());
        tasks.push(tokio::spawn(async move {
            let mut completed = 0;
            loop {
                let jobs = poll(&conn, SOURCE_PROVIDER, "Source", SOURCE_BATCH).await?;
                if jobs.is_empty() {
                    return anyhow::Ok(completed);
                }
                for (id, nonce, _) in jobs {
                    complete_source_job(&conn, &id, &nonce).await?;
                    completed += 1;
                    watch.add(1);
                }
            }
        }));
    }
    let mut completed = 0;
    for task in tasks {
        completed += task.await.context("a source job worker failed")??;
    }
    Ok(completed)
}

/// PollForJobs for a custom action type: `(job id, nonce, pipeline name)` of each job handed out.
pub async fn poll(
    conn: &Conn,
    provider: &str,
    category: &str,
    batch: usize,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let reply = conn
        .call(
            "PollForJobs",
            &json!({"actionTypeId": custom_type(category, provider), "maxBatchSize": batch}),
        )
        .await?;
    Ok(jobs_of(&reply))
}

/// The `(job id, nonce, pipeline name)` of each job in a PollForJobs output.
pub fn jobs_of(reply: &Value) -> Vec<(String, String, String)> {
    reply["jobs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|j| {
            Some((
                j["id"].as_str()?.to_owned(),
                j["nonce"].as_str()?.to_owned(),
                j["data"]["pipelineContext"]["pipelineName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ))
        })
        .collect()
}

/// AcknowledgeJob, then PutJobSuccessResult with a source revision.
async fn complete_source_job(conn: &Conn, id: &str, nonce: &str) -> anyhow::Result<()> {
    conn.call("AcknowledgeJob", &json!({"jobId": id, "nonce": nonce}))
        .await?;
    conn.call(
        "PutJobSuccessResult",
        &json!({"jobId": id,
                "currentRevision": {"revision": "scale-r1", "changeIdentifier": "scale-r1"}}),
    )
    .await?;
    Ok(())
}

/// What building the long history took.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryReport {
    /// Executions added by this run.
    pub added: usize,
    /// How long that took.
    pub time: Duration,
}

/// Gives the history pipeline `target` finished executions, one after another on one
/// connection: start (CreatePipeline for the first), complete its source job, read the
/// approval's token and reject it, which fails the execution. The ledger is written every 100
/// executions.
pub async fn history(
    conn: &Conn,
    ledger: &mut Ledger,
    dir: &std::path::Path,
    target: usize,
    watch: &Arc<Watch>,
) -> anyhow::Result<HistoryReport> {
    let mut report = HistoryReport::default();
    if ledger.history >= target {
        return Ok(report);
    }
    watch.phase(&format!("history: {} executions", target), target);
    watch.add(ledger.history);
    let began = Instant::now();
    stop_unfinished_history(conn).await?;
    while ledger.history < target {
        let execution = if ledger.history == 0 {
            match api::call(conn, "CreatePipeline", &GATE.declaration(HISTORY_PIPELINE)).await? {
                Ok(_) => latest_execution_id(conn).await?,
                Err(fault) if fault.code == "PipelineNameInUseException" => {
                    start_execution(conn).await?
                }
                Err(fault) => bail!("CreatePipeline {HISTORY_PIPELINE}: {fault}"),
            }
        } else {
            start_execution(conn).await?
        };
        finish_by_rejecting(conn, &execution).await?;
        ledger.history += 1;
        report.added += 1;
        watch.add(1);
        if ledger.history % 100 == 0 {
            ledger.write(dir)?;
        }
    }
    ledger.write(dir)?;
    report.time = began.elapsed();
    Ok(report)
}

/// An interrupted run may have left an execution of the history pipeline running; abandon it
/// so the next one starts alone.
async fn stop_unfinished_history(conn: &Conn) -> anyhow::Result<()> {
    let listed = match api::call(
        conn,
        "ListPipelineExecutions",
        &json!({"pipelineName": HISTORY_PIPELINE, "maxResults": 10}),
    )
    .await?
    {
        Ok(listed) => listed,
        Err(fault) if fault.code == "PipelineNotFoundException" => return Ok(()),
        Err(fault) => bail!("ListPipelineExecutions {HISTORY_PIPELINE}: {fault}"),
    };
    for summary in listed["pipelineExecutionSummaries"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if summary["status"] == "InProgress" {
            conn.call(
                "StopPipelineExecution",
                &json!({"pipelineName": HISTORY_PIPELINE,
                        "pipelineExecutionId": summary["pipelineExecutionId"],
                        "abandon": true, "reason": "lockgate-bench: left by an interrupted run"}),
            )
            .await?;
        }
    }
    Ok(())
}

async fn start_execution(conn: &Conn) -> anyhow::Result<String> {
    let started = conn
        .call("StartPipelineExecution", &json!({"name": HISTORY_PIPELINE}))
        .await?;
    started["pipelineExecutionId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("StartPipelineExecution returned no execution id: {started}"))
}

async fn latest_execution_id(conn: &Conn) -> anyhow::Result<String> {
    let listed = conn
        .call(
            "ListPipelineExecutions",
            &json!({"pipelineName": HISTORY_PIPELINE, "maxResults": 1}),
        )
        .await?;
    listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{HISTORY_PIPELINE} has no execution: {listed}"))
}

/// Completes the execution's source job and rejects its approval.
async fn finish_by_rejecting(conn: &Conn, execution: &str) -> anyhow::Result<()> {
    let jobs = poll(conn, SOURCE_PROVIDER, "Source", 1).await?;
    let Some((id, nonce, pipeline)) = jobs.into_iter().next() else {
        bail!("no source job was queued for {HISTORY_PIPELINE} execution {execution}");
    };
    if pipeline != HISTORY_PIPELINE {
        bail!("expected a source job of {HISTORY_PIPELINE}, got one of {pipeline}");
    }
    complete_source_job(conn, &id, &nonce).await?;
    let state = conn
        .call("GetPipelineState", &json!({"name": HISTORY_PIPELINE}))
        .await?;
    let approval = latest_execution(&state, APPROVAL_STAGE, APPROVAL_ACTION)
        .filter(|e| e["status"] == "InProgress")
        .ok_or_else(|| {
            anyhow!("{HISTORY_PIPELINE} execution {execution} is not at its approval")
        })?;
    let token = approval["token"]
        .as_str()
        .ok_or_else(|| anyhow!("the approval of {HISTORY_PIPELINE} has no token"))?;
    conn.call(
        "PutApprovalResult",
        &json!({"pipelineName": HISTORY_PIPELINE, "stageName": APPROVAL_STAGE,
                "actionName": APPROVAL_ACTION, "token": token,
                "result": {"status": "Rejected", "summary": "lockgate-bench: history"}}),
    )
    .await?;
    Ok(())
}
