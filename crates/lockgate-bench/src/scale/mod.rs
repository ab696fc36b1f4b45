//! `lockgate-bench scale --pipelines N`: what a large installation costs. It loads N pipelines
//! (source → manual approval → build) to a pending approval with 64 clients, plus one pipeline
//! with a long history, and measures, in this order:
//!
//! 1. loading: CreatePipeline and source-job throughput, server memory after loading (and its
//!    peak), WAL size (at the end and the largest sampled), data directory size;
//! 2. writes at that size, 64 clients on distinct pipelines: StartPipelineExecution (each new
//!    execution then abandoned, so the pipeline keeps one execution waiting at its approval) and
//!    PutApprovalResult on pipelines no run approved before (their build jobs queue);
//! 3. a restart on the same data (kill -9 by default): time until `/healthz` answers, memory;
//! 4. one request at a time: GetPipelineState of random pipelines (cold, first after the
//!    restart, which also checks a sample of the load) and of one pipeline (hot), PollForJobs
//!    with the build jobs queued, ListPipelines to the end, ListPipelineExecutions and
//!    ListActionExecutions of the history pipeline to the end;
//! 5. memory and disk at the end, and the console's pipelines page if the user can sign in.
//!
//! The benchmark keeps nothing per pipeline beyond what one measurement needs: names derive
//! from an index. With `--keep DIR` the data directory outlives the run and records what it
//! holds (`ledger.rs`), so a later run skips (or resumes) loading and only measures.

mod api;
mod console;
mod fan;
mod ledger;
mod load;
mod reads;
mod report;
mod restart;
mod watch;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::json;

use lockgate_loadgen::client::Conn;
use lockgate_loadgen::duration::parse_duration;
use lockgate_loadgen::server::{Server, HEALTHY_WITHIN};
use lockgate_loadgen::sign::Signer;

use crate::machine::Machine;
use crate::server;
use crate::setup::GATE;
use api::HISTORY_PIPELINE;
use ledger::Ledger;
use report::{AfterLoad, ConsoleFigures, Report, Snapshot};
use restart::Shutdown;
use watch::{disk, memory, CpuWindow, Watch};

/// The options of `lockgate-bench scale`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Pipelines to load to a pending approval (named p0000000, p0000001, …).
    #[arg(long)]
    pub pipelines: usize,
    /// Concurrent clients (keep-alive connections) for loading and the write measurements.
    #[arg(long, alias = "connections", default_value_t = 64)]
    pub clients: usize,
    /// Finished executions of the history pipeline (its pages are measured).
    #[arg(long, default_value_t = 2000)]
    pub history: usize,
    /// Pipelines created before their source jobs are completed; bounds the source job queue.
    #[arg(long, default_value_t = 2000)]
    pub chunk: usize,
    /// Distinct pipelines StartPipelineExecution is measured on [default: N, at most 5,000].
    #[arg(long)]
    pub starts: Option<usize>,
    /// Pipelines approved (so their build jobs queue) for the PollForJobs measurement, which
    /// polls half of them one at a time [default: N/10, at most 5,000].
    #[arg(long)]
    pub approvals: Option<usize>,
    /// Random pipelines read once each after the restart.
    #[arg(long, default_value_t = 2000)]
    pub cold_reads: usize,
    /// Measured reads of one pipeline (after as many unmeasured ones).
    #[arg(long, default_value_t = 2000)]
    pub hot_reads: usize,
    /// Full paginations of each list of the history pipeline.
    #[arg(long, default_value_t = 3)]
    pub page_passes: usize,
    /// How the server is stopped before the restart.
    #[arg(long, value_enum, default_value_t = Shutdown::Kill)]
    pub restart: Shutdown,
    /// Keep the data directory here. When it holds an earlier run's load, loading is skipped
    /// (or resumed up to --pipelines) and the run only measures.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// The `lockgate` binary [default: `lockgate` next to this executable].
    #[arg(long, alias = "binary", value_name = "PATH")]
    pub server: Option<PathBuf>,
    /// The `LOCKGATE_LOG` filter the server runs with.
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// Where the temporary data directory is created [default: the system temp dir]; unused
    /// with --keep.
    #[arg(long)]
    pub data_parent: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Skip the console's pipelines page.
    #[arg(long)]
    pub no_console: bool,
    /// How often a progress line is printed on stderr.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress: Duration,
    /// Idle time after loading before the steady memory is read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// How long a server start may take before `/healthz` answers.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub start_within: Duration,
    /// Runtime threads of this load generator; 1 leaves the most CPU to the server.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

impl ScaleArgs {
    fn starts(&self) -> usize {
        self.starts.unwrap_or(self.pipelines.min(5000))
    }

    fn approvals(&self) -> usize {
        self.approvals.unwrap_or((self.pipelines / 10).min(5000))
    }
}

/// Runs the scale benchmark and prints its report; `Ok(false)` when a check failed (a sampled
/// pipeline not waiting at its approval, a build job missing, a list short of items).
pub async fn run(args: &ScaleArgs) -> anyhow::Result<bool> {
    if args.pipelines == 0 || args.clients == 0 {
        bail!("--pipelines and --clients must be at least 1");
    }
    if args.starts() > args.pipelines {
        bail!("--starts must not exceed --pipelines");
    }
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("lockgate"),
    };
    let data_parent = args.data_parent.clone().unwrap_or_else(std::env::temp_dir);
    let (mut server, mut ledger, first_start) = open(args, binary.clone(), data_parent)?;
    let dir = server.data_dir().to_path_buf();
    let machine = Machine::describe(&dir);
    eprintln!(
        "server pid {} on {}, data in {}; load average {} on {} CPUs",
        server.pid().unwrap_or_default(),
        server.addr,
        dir.display(),
        machine.load_average,
        machine.cpus
    );
    let watch = Watch::start(server.pid().unwrap_or_default(), &dir, args.progress);
    let mut report = Report::new(args, &machine, &binary, first_start);
    let measured = measure(args, &mut server, &mut ledger, &watch, &mut report).await;
    watch.stop();
    if let Err(e) = measured {
        eprintln!("server log tail:\n{}", server.log_tail());
        if args.keep.is_none() {
            eprintln!("(the temporary data directory is removed; pass --keep DIR to keep it)");
        }
        return Err(e);
    }
    ledger.runs += 1;
    ledger.write(&dir)?;
    if args.keep.is_some() {
        // A clean shutdown leaves the kept directory as a user's server would.
        server.terminate(Duration::from_secs(600))?;
    }
    drop(server);
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.passed())
}

/// Starts the server: on a new temporary directory, or on the kept one (a new one gets the
/// user; one with a ledger is reused, and its first start is timed).
fn open(
    args: &ScaleArgs,
    binary: PathBuf,
    data_parent: PathBuf,
) -> anyhow::Result<(Server, Ledger, Option<Snapshot>)> {
    let options = server::options(binary, data_parent, args.server_log.clone());
    let Some(dir) = &args.keep else {
        let mut server = Server::create(options)?;
        server.set_start_within(args.start_within.max(HEALTHY_WITHIN));
        return Ok((server, Ledger::default(), None));
    };
    let ledger = Ledger::read(dir)?;
    let empty = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
    if ledger.is_none() && !empty {
        bail!(
            "{} is neither empty nor a directory kept by lockgate-bench scale",
            dir.display()
        );
    }
    if let Some(l) = &ledger {
        if l.pipelines > args.pipelines {
            bail!(
                "{} holds {} pipelines; pass --pipelines {} (or more, to load the rest)",
                dir.display(),
                l.pipelines,
                l.pipelines
            );
        }
        eprintln!(
            "starting the server on {} ({} pipelines loaded, {} history executions, {} runs)…",
            dir.display(),
            l.pipelines,
            l.history,
            l.runs
        );
    }
    let began = Instant::now();
    let server = Server::open(options, dir, ledger.is_none(), args.start_within)?;
    let first_start = ledger.as_ref().map(|_| Snapshot {
        took: began.elapsed(),
        memory: memory(server.pid().unwrap_or_default()),
        disk: disk(dir),
    });
    Ok((server, ledger.unwrap_or_default(), first_start))
}

/// Opens `count` keep-alive connections to the server as it listens now. Each phase opens its
/// own: the server closes connections left idle (or that never sent a request) after a while.
async fn connect(server: &Server, count: usize) -> anyhow::Result<Vec<Arc<Conn>>> {
    let signer = signer(server);
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        conns.push(Arc::new(Conn::connect(server.addr, signer.clone()).await?));
    }
    Ok(conns)
}

/// One connection, for the measurements made one request at a time.
async fn connect_one(server: &Server) -> anyhow::Result<Conn> {
    Conn::connect(server.addr, signer(server)).await
}

/// The benchmark user's signer for the server's current address.
fn signer(server: &Server) -> Arc<Signer> {
    Arc::new(Signer::new(
        server::ACCESS_KEY_ID,
        server::SECRET_ACCESS_KEY,
        server::REGION,
        &server.addr.to_string(),
    ))
}

async fn measure(
    args: &ScaleArgs,
    server: &mut Server,
    ledger: &mut Ledger,
    watch: &Arc<Watch>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let dir = server.data_dir().to_path_buf();

    // 1. Loading, as far as the directory does not hold it yet.
    let loads_pipelines = ledger.pipelines < args.pipelines;
    let loads_history = ledger.history < args.history;
    if loads_pipelines || loads_history {
        let cpu = CpuWindow::start(server.pid().unwrap_or_default());
        if ledger.pipelines == 0 && ledger.history == 0 {
            create_action_types(&connect_one(server).await?).await?;
        }
        let pipelines = if loads_pipelines {
            let conns = connect(server, args.clients).await?;
            Some(load::pipelines(&conns, ledger, &dir, args.pipelines, args.chunk, watch).await?)
        } else {
            None
        };
        let one = connect_one(server).await?;
        let history = load::history(&one, ledger, &dir, args.history, watch).await?;
        let cpu = cpu.stop();
        let pid = server.pid().unwrap_or_default();
        let at_end = memory(pid);
        let wal_max = watch.take_wal_max();
        let disk_at_end = disk(&dir);
        watch.phase(
            &format!(
                "idle for {:?} before reading the steady memory",
                args.settle
            ),
            0,
        );
        tokio::time::sleep(args.settle).await;
        report.after_load = Some(AfterLoad {
            pipelines,
            history: loads_history.then_some(history),
            memory: at_end,
            steady_rss: memory(pid).rss,
            disk: disk_at_end,
            wal_max,
            cpu,
        });
    }
    report.pipelines = ledger.pipelines;
    report.history = ledger.history;

    // 2. Writes at this size.
    let starts = args.starts();
    if starts > 0 {
        let conns = connect(server, args.clients).await?;
        report.starts = Some(writes::starts(&conns, starts, watch).await?);
    }
    let approvals = args.approvals();
    let waiting = ledger.waiting();
    if approvals > waiting.len() {
        bail!(
            "only {} pipelines are still waiting at their approval; pass a smaller --approvals",
            waiting.len()
        );
    }
    if approvals > 0 {
        let conns = connect(server, args.clients).await?;
        let approved = waiting.start..waiting.start + approvals;
        report.approvals = Some(writes::approve(&conns, approved, watch).await?);
        ledger.approved += approvals;
        ledger.write(&dir)?;
    }
    report.waiting = ledger.waiting().len();
    report.before_restart = Some(Snapshot {
        took: Duration::ZERO,
        memory: memory(server.pid().unwrap_or_default()),
        disk: disk(&dir),
    });
    watch.take_wal_max();

    // 3. Restart on the same data.
    report.restart = Some(restart::restart(server, args.restart, watch).await?);

    // 4. One request at a time, the cold reads first.
    let cpu = CpuWindow::start(server.pid().unwrap_or_default());
    let one = connect_one(server).await?;
    let cold = reads::cold_reads(
        &one,
        ledger.pipelines,
        ledger.waiting(),
        args.cold_reads,
        watch,
    )
    .await?;
    report.cold = Some(cold);
    let waiting = ledger.waiting();
    // A pipeline still waiting at its approval, the usual case; any if none is left.
    let hot = if waiting.is_empty() {
        0
    } else {
        waiting.start + waiting.len() / 2
    };
    report.hot = Some(reads::hot_reads(&one, hot, args.hot_reads, watch).await?);
    if approvals > 0 {
        let polls = reads::polls(&one, approvals.div_ceil(2), watch).await?;
        report.polls = Some(polls.latency);
        let conns = connect(server, args.clients).await?;
        report.build_jobs = Some(writes::complete_build_jobs(&conns, polls.jobs, watch).await?);
    }
    let one = connect_one(server).await?;
    report.list_pipelines = Some(
        reads::paginate(
            &one,
            "ListPipelines",
            json!({"maxResults": 1000}),
            "pipelines",
            1,
            watch,
        )
        .await?,
    );
    if ledger.history > 0 && args.page_passes > 0 {
        let input = json!({"pipelineName": HISTORY_PIPELINE, "maxResults": 100});
        report.executions = Some(
            reads::paginate(
                &one,
                "ListPipelineExecutions",
                input.clone(),
                "pipelineExecutionSummaries",
                args.page_passes,
                watch,
            )
            .await?,
        );
        report.actions = Some(
            reads::paginate(
                &one,
                "ListActionExecutions",
                input,
                "actionExecutionDetails",
                args.page_passes,
                watch,
            )
            .await?,
        );
    }

    report.cpu_after_restart = Some(cpu.stop());

    // 5. The end state, then the console (last: its page may leave memory behind).
    let pid = server.pid().unwrap_or_default();
    report.end = Some(Snapshot {
        took: Duration::ZERO,
        memory: memory(pid),
        disk: disk(&dir),
    });
    report.wal_max_since_restart = watch.take_wal_max();
    if !args.no_console {
        watch.phase("console: sign in, GET /console/pipelines twice", 0);
        let before = memory(pid);
        let mut after = Vec::new();
        let fetched = console::pipelines_page(
            server.addr,
            signer(server),
            server::USER,
            server::PASSWORD,
            2,
            || after.push(memory(pid)),
        )
        .await;
        report.console = Some(match fetched {
            Ok(fetches) => Ok(ConsoleFigures {
                fetches,
                before,
                after,
            }),
            Err(e) => {
                eprintln!("console not measured: {e:#}");
                Err(format!("{e:#}"))
            }
        });
    }
    Ok(())
}

/// Creates the two custom action types; ones left by an interrupted run are fine.
async fn create_action_types(conn: &Conn) -> anyhow::Result<()> {
    for input in GATE.action_type_inputs() {
        match api::call(conn, "CreateCustomActionType", &input).await? {
            Ok(_) => {}
            Err(fault) if fault.message.contains("already exists") => {}
            Err(fault) => return Err(anyhow!("CreateCustomActionType: {fault}")),
        }
    }
    Ok(())
}
