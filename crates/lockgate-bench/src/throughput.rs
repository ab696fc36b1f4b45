//! The throughput benchmark (the default command): GetPipelineState requests per second over
//! many keep-alive connections, durable PutApprovalResult per second on distinct pending
//! approvals (with a read-back that proves they took effect), and the latency from sending an
//! approval to the next action's job being handed out by PollForJobs, one approval at a time.
//! Right after the reads it measures a bare axum server answering the same bytes the same way
//! (`bare.rs`), and reports the reads as a share of it and the approvals as a share of the
//! reads. It prints the machine's details (CPUs, file system, fsync cost) and a table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use lockgate_loadgen::duration::parse_duration;
use lockgate_loadgen::server::Server;
use lockgate_loadgen::sign::Signer;

use crate::bare::BareServer;
use crate::client::Pool;
use crate::machine::{self, Machine};
use crate::measure::{
    self, ApprovalReport, CpuUse, PickupReport, ReadReport, Target, Verification,
};
use crate::server;
use crate::setup;
use crate::stats::{ms, rate, relative_to_cwd, us, Summary};

/// The options of the throughput benchmark.
#[derive(Debug, clap::Args)]
pub struct ThroughputArgs {
    /// How long GetPipelineState throughput is measured (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured GetPipelineState load before the measured window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Concurrent keep-alive connections for the throughput measurements and the set-up.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Distinct pending approvals answered in the PutApprovalResult measurement.
    #[arg(long, default_value_t = 2000)]
    approvals: usize,
    /// Approvals timed one at a time for the approval → job latency.
    #[arg(long, default_value_t = 300)]
    latency_samples: usize,
    /// The `lockgate` binary [default: `lockgate` next to this executable].
    #[arg(long)]
    server: Option<PathBuf>,
    /// The `LOCKGATE_LOG` filter the server runs with (`info` logs one line per request).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Where the temporary data directory is created [default: the system temp dir]. Its file
    /// system decides what an fsync costs.
    #[arg(long)]
    data_parent: Option<PathBuf>,
    /// Runtime threads of this load generator; 1 leaves the most CPU to the server.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

/// Everything one run found.
struct Results {
    machine: Machine,
    fsync: machine::FsyncCost,
    server_binary: PathBuf,
    setup: SetupTimes,
    reads: ReadReport,
    /// The same reads against a bare axum server answering the same bytes.
    bare: BareReads,
    approvals: ApprovalReport,
    /// The store's group commits while the approvals ran, from the server's `/metrics`.
    approval_commits: GroupCommits,
    verification: Verification,
    pickup: PickupReport,
}

/// How the store grouped commits over a measurement: the change in its `/metrics` counters.
struct GroupCommits {
    commits: f64,
    transactions: f64,
    /// The write-ahead log's largest size so far.
    wal_peak_bytes: f64,
}

impl GroupCommits {
    /// The counters' change from `before` to `after` (two scrapes of `/metrics`).
    fn between(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> GroupCommits {
        let delta = |name: &str| {
            after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
        };
        GroupCommits {
            commits: delta("lockgate_store_commits_total"),
            transactions: delta("lockgate_store_transactions_total"),
            wal_peak_bytes: after
                .get("lockgate_store_wal_peak_bytes")
                .copied()
                .unwrap_or(0.0),
        }
    }
}

/// The yardstick run: reads from a bare server answering a fixed body.
struct BareReads {
    /// The size of the body it answered (a real GetPipelineState answer).
    body_bytes: usize,
    reads: ReadReport,
}

/// How long the set-up phases took.
struct SetupTimes {
    pipelines: usize,
    create: Duration,
    source_jobs: Duration,
    tokens: Duration,
}

/// Runs the throughput benchmark; `Ok(false)` when a request failed or the read-back did not
/// verify.
pub async fn run(args: &ThroughputArgs) -> anyhow::Result<bool> {
    if args.connections == 0 || args.approvals == 0 || args.latency_samples == 0 {
        bail!("--connections, --approvals and --latency-samples must be at least 1");
    }
    let server_binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("lockgate"),
    };
    let data_parent = args.data_parent.clone().unwrap_or_else(std::env::temp_dir);
    let machine = Machine::describe(&data_parent);
    eprintln!(
        "load average at start: {} on {} CPUs",
        machine.load_average, machine.cpus
    );
    let fsync = machine::measure_fsync(&data_parent, 500).context("measuring fsync")?;

    let server = server::start(server_binary.clone(), data_parent, args.server_log.clone())?;
    eprintln!(
        "server pid {} listening on {}, data in {}",
        server.pid().unwrap_or_default(),
        server.addr,
        server.data_dir().display()
    );
    let results = measure_all(args, &server, machine, fsync, server_binary).await;
    let results = match results {
        Ok(results) => results,
        Err(e) => {
            eprintln!("server log tail:\n{}", server.log_tail());
            return Err(e);
        }
    };
    drop(server);
    print_report(args, &results);
    let v = &results.verification;
    Ok(results.reads.errors == 0
        && results.approvals.errors == 0
        && v.confirmed == v.checked
        && v.build_jobs == v.checked)
}

async fn measure_all(
    args: &ThroughputArgs,
    server: &Server,
    machine: Machine,
    fsync: machine::FsyncCost,
    server_binary: PathBuf,
) -> anyhow::Result<Results> {
    let signer = Arc::new(Signer::new(
        server::ACCESS_KEY_ID,
        server::SECRET_ACCESS_KEY,
        server::REGION,
        &server.addr.to_string(),
    ));
    let pool = Pool::connect(server.addr, signer.clone(), args.connections).await?;

    // Set-up: the pipelines for the approval throughput, then those timed one at a time.
    let total = args.approvals + args.latency_samples;
    let names: Vec<String> = (0..total).map(|i| format!("bench-{i:06}")).collect();
    eprintln!("setting up {total} pipelines waiting at their approval…");
    setup::create_action_types(pool.first()).await?;
    let started = Instant::now();
    setup::create_pipelines(&pool, &names).await?;
    let create = started.elapsed();
    let started = Instant::now();
    setup::complete_source_jobs(&pool, total).await?;
    let source_jobs = started.elapsed();
    let started = Instant::now();
    let mut pending = setup::approval_tokens(&pool, &names).await?;
    let tokens = started.elapsed();
    let timed_one_by_one = pending.split_off(args.approvals);

    eprintln!(
        "measuring GetPipelineState for {:?} (+{:?} warm-up)…",
        args.duration, args.warmup
    );
    let reads = measure::read_throughput(
        Target::of(server)?,
        signer.clone(),
        args.connections,
        &names,
        args.warmup,
        args.duration,
    )
    .await?;
    let bare = bare_reads(args, &pool, signer.clone(), &names[0]).await?;

    eprintln!("answering {} approvals…", pending.len());
    let before = server.metrics()?;
    let approvals =
        measure::approval_throughput(server, signer.clone(), args.connections, pending.clone())
            .await?;
    let approval_commits = GroupCommits::between(&before, &server.metrics()?);
    let verification = measure::verify_approved(&pool, &pending).await?;

    eprintln!("timing {} approvals one at a time…", timed_one_by_one.len());
    let pickup = measure::approval_to_job(server, signer, &timed_one_by_one).await?;

    Ok(Results {
        machine,
        fsync,
        server_binary,
        setup: SetupTimes {
            pipelines: total,
            create,
            source_jobs,
            tokens,
        },
        reads,
        bare,
        approvals,
        approval_commits,
        verification,
        pickup,
    })
}

/// The read measurement again, against a bare axum server that answers every request with
/// the bytes Lockgate answered for `pipeline`: all connections read that one pipeline, so the
/// client checks every answer as it does Lockgate's.
async fn bare_reads(
    args: &ThroughputArgs,
    pool: &Pool,
    signer: Arc<Signer>,
    pipeline: &str,
) -> anyhow::Result<BareReads> {
    let reply = pool
        .first()
        .send(
            "GetPipelineState",
            Bytes::from(serde_json::json!({ "name": pipeline }).to_string()),
        )
        .await?;
    if reply.status != http::StatusCode::OK {
        bail!("GetPipelineState({pipeline}) answered {}", reply.status);
    }
    let bare = BareServer::start(&reply.body)?;
    eprintln!(
        "measuring a bare axum server answering the same {} bytes, for {:?} (+{:?} warm-up)…",
        reply.body.len(),
        args.duration,
        args.warmup
    );
    let reads = measure::read_throughput(
        Target {
            addr: bare.addr,
            pid: bare.pid(),
        },
        signer,
        args.connections,
        &[pipeline.to_string()],
        args.warmup,
        args.duration,
    )
    .await?;
    Ok(BareReads {
        body_bytes: reply.body.len(),
        reads,
    })
}

/// `µs of server CPU per operation (cores busy)`.
fn cpu_cell(cpu: Duration, operations: usize, window: Duration) -> String {
    format!(
        "{} ({:.2} cores)",
        us(cpu / u32::try_from(operations.max(1)).unwrap_or(u32::MAX)),
        cpu.as_secs_f64() / window.as_secs_f64()
    )
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn latency_cells(s: &Summary) -> String {
    format!("{} | {} | {}", ms(s.p50), ms(s.p99), ms(s.max))
}

fn print_report(args: &ThroughputArgs, r: &Results) {
    let m = &r.machine;
    println!(
        "machine: {} CPUs, {}, Linux {}",
        m.cpus, m.cpu_model, m.kernel
    );
    println!("load average at start: {}", m.load_average);
    println!(
        "data dir file system: {}; 4 KiB overwrite + fdatasync p50 {} p99 {}; 4 KiB append + \
         fsync p50 {} p99 {}",
        m.file_system,
        ms(r.fsync.overwrite_fdatasync.p50),
        ms(r.fsync.overwrite_fdatasync.p99),
        ms(r.fsync.append_fsync.p50),
        ms(r.fsync.append_fsync.p99),
    );
    println!(
        "server: {} with LOCKGATE_LOG={}; client: {} runtime thread(s), {} connections, HTTP/1.1 \
         keep-alive, SigV4 (aws-sigv4)",
        relative_to_cwd(&r.server_binary).display(),
        args.server_log,
        args.client_threads.max(1),
        args.connections
    );
    let s = &r.setup;
    let per_s = |d: Duration| rate(s.pipelines as f64 / d.as_secs_f64());
    println!(
        "set-up: {} pipelines; CreatePipeline {:.2} s ({}/s), source jobs polled+acked+succeeded \
         {:.2} s ({}/s), tokens read {:.2} s",
        s.pipelines,
        s.create.as_secs_f64(),
        per_s(s.create),
        s.source_jobs.as_secs_f64(),
        per_s(s.source_jobs),
        s.tokens.as_secs_f64(),
    );
    println!();
    println!(
        "| measurement | rate | p50 | p99 | max | errors | server CPU/op | client CPU/op | target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");

    let reads = &r.reads;
    print_reads_row(
        &format!("GetPipelineState, {} conns", args.connections),
        reads,
        &format!(
            "target ≥ 30,000/s: {}",
            verdict(reads.per_second() >= 30_000.0 && reads.errors == 0)
        ),
    );
    let bare = &r.bare.reads;
    print_reads_row(
        &format!(
            "bare axum server, same {}-byte answer, {} conns",
            r.bare.body_bytes, args.connections
        ),
        bare,
        "–",
    );
    let a = &r.approvals;
    println!(
        "| PutApprovalResult, {} distinct, {} conns | {} approvals/s | {} | {} | {} | {} | target ≥ 3,000/s: {} |",
        a.approved + a.errors,
        args.connections,
        rate(a.per_second()),
        latency_cells(&a.latency),
        a.errors,
        cpu_cell(a.cpu.server, a.approved, a.elapsed),
        client_cell(&a.cpu, a.approved),
        verdict(a.per_second() >= 3_000.0 && a.errors == 0),
    );
    let p = &r.pickup;
    println!(
        "| approval sent → build job polled, {} one at a time | – | {} | 0 | – | – | target p99 ≤ 5 ms: {} |",
        p.total.count,
        latency_cells(&p.total),
        verdict(p.total.p99 <= Duration::from_millis(5)),
    );
    println!(
        "| ↳ approval round trip (durable commit) | – | {} | 0 | – | – | |",
        latency_cells(&p.approval)
    );
    println!(
        "| ↳ approval response → job polled | – | {} | 0 | – | – | |",
        latency_cells(&p.after_response)
    );
    println!();
    let per_op = |cpu: Duration, n: usize| cpu.as_secs_f64() / n.max(1) as f64;
    let reads_share = reads.per_second() / bare.per_second().max(f64::MIN_POSITIVE);
    let cpu_share = per_op(bare.cpu.server, bare.requests)
        / per_op(reads.cpu.server, reads.requests).max(f64::MIN_POSITIVE);
    let approvals_share = a.per_second() / reads.per_second().max(f64::MIN_POSITIVE);
    println!(
        "side by side: GetPipelineState ÷ bare axum {reads_share:.2} by throughput, {cpu_share:.2} \
         by server CPU per request (goal ≥ 0.6: {}); PutApprovalResult ÷ GetPipelineState \
         {approvals_share:.2} (goal ≥ 0.5: {})",
        verdict(reads_share >= 0.6),
        verdict(approvals_share >= 0.5),
    );
    let g = &r.approval_commits;
    println!(
        "group commit during the approvals: {:.0} commits in {:.0} write transactions (fsyncs of \
         the WAL), {:.1} commits per transaction; WAL peak {:.1} MiB",
        g.commits,
        g.transactions,
        g.commits / g.transactions.max(1.0),
        g.wal_peak_bytes / (1024.0 * 1024.0),
    );
    println!();
    for (what, error) in [
        ("GetPipelineState", &reads.first_error),
        ("bare server read", &bare.first_error),
        ("PutApprovalResult", &a.first_error),
    ] {
        if let Some(error) = error {
            println!("first {what} error: {error}");
        }
    }
    let v = &r.verification;
    println!(
        "verified: {}/{} approved pipelines read back with the approval Succeeded and Build \
         InProgress; {} BenchBuild jobs handed out afterwards (expected {})",
        v.confirmed, v.checked, v.build_jobs, v.checked
    );
    println!(
        "CPU used by other processes (kernel threads included): {:.2} cores during the reads, \
         {:.2} cores during the approvals",
        reads.cpu.others.as_secs_f64() / reads.window.as_secs_f64(),
        a.cpu.others.as_secs_f64() / a.elapsed.as_secs_f64(),
    );
    println!(
        "PollForJobs calls per approval in the latency run: mean {:.2}, max {}",
        p.mean_polls, p.max_polls
    );
    println!(
        "latency means: reads {}, approvals {}, approval → job {}",
        ms(reads.latency.mean),
        ms(a.latency.mean),
        ms(p.total.mean)
    );
}

/// One row of the table for a read measurement: `what`, then the window, rate, latency, errors,
/// CPU and `target`.
fn print_reads_row(what: &str, reads: &ReadReport, target: &str) {
    println!(
        "| {what}, {:.0} s | {} req/s | {} | {} | {} | {} | {target} |",
        reads.window.as_secs_f64(),
        rate(reads.per_second()),
        latency_cells(&reads.latency),
        reads.errors,
        cpu_cell(reads.cpu.server, reads.requests, reads.window),
        client_cell(&reads.cpu, reads.requests),
    );
}

fn client_cell(cpu: &CpuUse, operations: usize) -> String {
    us(cpu.client / u32::try_from(operations.max(1)).unwrap_or(u32::MAX))
}
