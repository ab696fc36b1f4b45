//! The three measurements: GetPipelineState throughput, durable PutApprovalResult throughput on
//! distinct pending approvals, and the latency from answering an approval to the next action's
//! job being pollable. Each also reports the CPU time both processes used while it ran.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use lockgate_loadgen::client::Conn;
use lockgate_loadgen::gate::custom_type;
use lockgate_loadgen::server::Server;
use lockgate_loadgen::sign::Signer;

use crate::client::Pool;
use crate::machine::{own_cpu_time, system_busy_time};
use crate::server;
use crate::setup::{
    latest_execution, PendingApproval, APPROVAL_ACTION, APPROVAL_STAGE, BUILD_PROVIDER, BUILD_STAGE,
};
use crate::stats::Summary;

/// CPU time used by the server and by this client over one measurement.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// The server process, all threads.
    pub server: Duration,
    /// This process (the load generator), all threads.
    pub client: Duration,
    /// Every other process on the machine: a figure far from zero means the run was disturbed.
    pub others: Duration,
}

/// A server process being measured: where it listens, and its process id for CPU readings.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
}

impl Target {
    /// The Lockgate server under test.
    pub fn of(server: &Server) -> anyhow::Result<Target> {
        Ok(Target {
            addr: server.addr,
            pid: server.pid().context("the server is not running")?,
        })
    }
}

/// Takes CPU readings at the start and end of a measured window.
struct CpuMeter {
    pid: u32,
    at_start: (Duration, Duration, Duration),
}

impl CpuMeter {
    fn start(target: Target) -> anyhow::Result<Self> {
        Ok(CpuMeter {
            pid: target.pid,
            at_start: (
                server::cpu_time(target.pid)?,
                own_cpu_time()?,
                system_busy_time()?,
            ),
        })
    }

    fn stop(&self) -> anyhow::Result<CpuUse> {
        let server = server::cpu_time(self.pid)?.saturating_sub(self.at_start.0);
        let client = own_cpu_time()?.saturating_sub(self.at_start.1);
        let all = system_busy_time()?.saturating_sub(self.at_start.2);
        Ok(CpuUse {
            server,
            client,
            others: all.saturating_sub(server + client),
        })
    }
}

/// Results of the GetPipelineState measurement.
pub struct ReadReport {
    /// Successful requests sent inside the measured window.
    pub requests: usize,
    /// Failed requests (transport errors or any status but 200), warm-up included.
    pub errors: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// The measured window.
    pub window: Duration,
    /// Latency of the successful requests in the window.
    pub latency: Summary,
    /// CPU used during the window.
    pub cpu: CpuUse,
}

impl ReadReport {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }
}

/// What one read connection saw.
#[derive(Default)]
struct ReadTally {
    samples: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl ReadTally {
    fn fail(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }
}

/// GetPipelineState from `connections` keep-alive connections for `warmup` then `window`;
/// connection `i` reads `pipelines[i % len]`. Each connection signs its request once per
/// wall-clock second and reuses the signed bytes; the server verifies every request in full.
pub async fn read_throughput(
    server: Target,
    signer: Arc<Signer>,
    connections: usize,
    pipelines: &[String],
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<ReadReport> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Conn::connect(server.addr, signer.clone()).await?);
    }
    let start = Instant::now() + warmup;
    let end = start + window;
    let mut tasks = Vec::with_capacity(connections);
    for (i, conn) in conns.into_iter().enumerate() {
        let pipeline = pipelines[i % pipelines.len()].clone();
        let addr = server.addr;
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            read_loop(conn, addr, signer, pipeline, start, end).await
        }));
    }
    tokio::time::sleep_until(start.into()).await;
    let meter = CpuMeter::start(server)?;
    tokio::time::sleep_until(end.into()).await;
    let cpu = meter.stop()?;
    let mut samples = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for task in tasks {
        let tally = task.await.context("a read task failed")?;
        samples.extend(tally.samples);
        errors += tally.errors;
        first_error = first_error.or(tally.first_error);
    }
    Ok(ReadReport {
        requests: samples.len(),
        errors,
        first_error,
        window,
        latency: Summary::of(samples),
        cpu,
    })
}

async fn read_loop(
    mut conn: Conn,
    addr: SocketAddr,
    signer: Arc<Signer>,
    pipeline: String,
    start: Instant,
    end: Instant,
) -> ReadTally {
    let body = Bytes::from(json!({ "name": pipeline }).to_string());
    let mut tally = ReadTally {
        samples: Vec::with_capacity(1 << 16),
        ..ReadTally::default()
    };
    let mut checked = false;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        match conn
            .send_reusing_signature("GetPipelineState", body.clone())
            .await
        {
            Ok(reply) if reply.status == StatusCode::OK => {
                let took = sent.elapsed();
                if !checked {
                    // Once per connection, check that the answer really is the pipeline's state.
                    checked = true;
                    let named = serde_json::from_slice::<Value>(&reply.body)
                        .ok()
                        .is_some_and(|v| v["pipelineName"] == pipeline.as_str());
                    if !named {
                        tally.fail(format!(
                            "GetPipelineState({pipeline}) returned another shape"
                        ));
                        continue;
                    }
                }
                if sent >= start {
                    tally.samples.push(took);
                }
            }
            Ok(reply) => tally.fail(format!(
                "GetPipelineState answered {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            )),
            Err(e) => {
                tally.fail(format!("{e:#}"));
                match Conn::connect(addr, signer.clone()).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => break,
                }
            }
        }
    }
    tally
}

/// Results of the PutApprovalResult measurement.
pub struct ApprovalReport {
    /// Approvals answered 200.
    pub approved: usize,
    /// Failed approvals.
    pub errors: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// From the first request sent to the last response received.
    pub elapsed: Duration,
    /// Latency of each approval (signing excluded).
    pub latency: Summary,
    /// CPU used while the approvals ran.
    pub cpu: CpuUse,
}

impl ApprovalReport {
    /// Approvals per second.
    pub fn per_second(&self) -> f64 {
        self.approved as f64 / self.elapsed.as_secs_f64()
    }
}

/// The body of PutApprovalResult approving `pending`.
fn approval_body(pending: &PendingApproval) -> Bytes {
    Bytes::from(
        json!({
            "pipelineName": pending.pipeline,
            "stageName": APPROVAL_STAGE,
            "actionName": APPROVAL_ACTION,
            "token": pending.token,
            "result": {"status": "Approved", "summary": "Approved by lockgate-bench"},
        })
        .to_string(),
    )
}

/// Answers every pending approval, `connections` at a time. Each request is signed on its own
/// (the bodies differ); signing happens before a request's clock starts.
pub async fn approval_throughput(
    server: &Server,
    signer: Arc<Signer>,
    connections: usize,
    pending: Vec<PendingApproval>,
) -> anyhow::Result<ApprovalReport> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Conn::connect(server.addr, signer.clone()).await?);
    }
    let pending = Arc::new(pending);
    let next = Arc::new(AtomicUsize::new(0));
    let meter = CpuMeter::start(Target::of(server)?)?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for conn in conns {
        let (pending, next) = (pending.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failures: Vec<String> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = pending.get(i) else { break };
                let body = approval_body(item);
                let headers = match conn.sign("PutApprovalResult", &body) {
                    Ok(h) => h,
                    Err(e) => {
                        failures.push(format!("{e:#}"));
                        continue;
                    }
                };
                let sent = Instant::now();
                let outcome = conn.send_signed(headers, body).await;
                let took = sent.elapsed();
                match outcome.and_then(|r| r.json("PutApprovalResult")) {
                    Ok(out) if out.get("approvedAt").is_some() => samples.push(took),
                    Ok(out) => {
                        failures.push(format!("PutApprovalResult without approvedAt: {out}"))
                    }
                    Err(e) => failures.push(format!("{}: {e:#}", item.pipeline)),
                }
            }
            (samples, failures)
        }));
    }
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (s, f) = task.await.context("an approval task failed")?;
        samples.extend(s);
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    let cpu = meter.stop()?;
    Ok(ApprovalReport {
        approved: samples.len(),
        errors: failures.len(),
        first_error: failures.into_iter().next(),
        elapsed,
        latency: Summary::of(samples),
        cpu,
    })
}

/// What a read-back of approved pipelines found.
pub struct Verification {
    /// Pipelines read back.
    pub checked: usize,
    /// Of those, pipelines whose approval is Succeeded and whose Build action is InProgress.
    pub confirmed: usize,
    /// BenchBuild jobs that PollForJobs handed out afterwards (one per approved pipeline).
    pub build_jobs: usize,
}

/// Reads back every approved pipeline with GetPipelineState, then takes every BenchBuild job off
/// the queue (so the latency measurement that follows sees only its own jobs) and counts them.
pub async fn verify_approved(
    pool: &Pool,
    pending: &[PendingApproval],
) -> anyhow::Result<Verification> {
    let names: Vec<String> = pending.iter().map(|p| p.pipeline.clone()).collect();
    let confirmed = pool
        .run(names, |conn: Arc<Conn>, name: String| async move {
            let state = conn
                .call("GetPipelineState", &json!({ "name": name }))
                .await?;
            let approved = latest_execution(&state, APPROVAL_STAGE, APPROVAL_ACTION)
                .is_some_and(|e| e["status"] == "Succeeded");
            let building = latest_execution(&state, BUILD_STAGE, "Build")
                .is_some_and(|e| e["status"] == "InProgress");
            anyhow::Ok(approved && building)
        })
        .await?;
    let mut build_jobs = 0;
    loop {
        let reply = pool
            .first()
            .call(
                "PollForJobs",
                &json!({"actionTypeId": custom_type("Build", BUILD_PROVIDER), "maxBatchSize": 100}),
            )
            .await?;
        let n = reply["jobs"].as_array().map_or(0, Vec::len);
        if n == 0 {
            break;
        }
        build_jobs += n;
    }
    Ok(Verification {
        checked: confirmed.len(),
        confirmed: confirmed.iter().filter(|ok| **ok).count(),
        build_jobs,
    })
}

/// Results of the approval → job pollable measurement.
pub struct PickupReport {
    /// Approval sent → job seen by PollForJobs.
    pub total: Summary,
    /// Approval response received → job seen.
    pub after_response: Summary,
    /// Approval sent → approval response received.
    pub approval: Summary,
    /// The most PollForJobs calls one job needed.
    pub max_polls: usize,
    /// Average PollForJobs calls per job.
    pub mean_polls: f64,
}

/// For each pending approval in turn: approve it on one connection and, as soon as the response
/// arrives, poll for the BenchBuild job on another (a job worker's) until it appears.
pub async fn approval_to_job(
    server: &Server,
    signer: Arc<Signer>,
    pending: &[PendingApproval],
) -> anyhow::Result<PickupReport> {
    let approver = Conn::connect(server.addr, signer.clone()).await?;
    let worker = Conn::connect(server.addr, signer).await?;
    let poll = Bytes::from(
        json!({"actionTypeId": custom_type("Build", BUILD_PROVIDER), "maxBatchSize": 1})
            .to_string(),
    );
    let (mut total, mut after, mut approval) = (Vec::new(), Vec::new(), Vec::new());
    let mut polls_seen = Vec::new();
    for item in pending {
        let body = approval_body(item);
        let headers = approver.sign("PutApprovalResult", &body)?;
        let sent = Instant::now();
        approver
            .send_signed(headers, body)
            .await?
            .json("PutApprovalResult")
            .with_context(|| format!("approving {}", item.pipeline))?;
        let answered = Instant::now();
        let mut polls = 0;
        let seen = loop {
            polls += 1;
            let reply = worker
                .send_reusing_signature("PollForJobs", poll.clone())
                .await?;
            let at = Instant::now();
            let out = reply.json("PollForJobs")?;
            if let Some(job) = out["jobs"].as_array().and_then(|j| j.first()) {
                let for_pipeline = &job["data"]["pipelineContext"]["pipelineName"];
                if for_pipeline != item.pipeline.as_str() {
                    bail!(
                        "expected {}'s build job, got {for_pipeline}'s",
                        item.pipeline
                    );
                }
                break at;
            }
            if answered.elapsed() > Duration::from_secs(5) {
                return Err(anyhow!(
                    "{}'s build job never became pollable",
                    item.pipeline
                ));
            }
        };
        total.push(seen - sent);
        after.push(seen - answered);
        approval.push(answered - sent);
        polls_seen.push(polls);
    }
    let mean_polls = polls_seen.iter().sum::<usize>() as f64 / polls_seen.len().max(1) as f64;
    Ok(PickupReport {
        total: Summary::of(total),
        after_response: Summary::of(after),
        approval: Summary::of(approval),
        max_polls: polls_seen.into_iter().max().unwrap_or(0),
        mean_polls,
    })
}
