//! The scale benchmark's figures: a Markdown table ready for `docs/performance.md`, headed by
//! the command line and the machine, and the same figures as JSON (`--json FILE`).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::console::PageFetch;
use super::fan::Fanned;
use super::load::{HistoryReport, LoadReport};
use super::reads::{ColdReads, Pages};
use super::restart::Restart;
use super::watch::{CpuUse, Disk, Memory};
use super::writes::Approvals;
use super::ScaleArgs;
use crate::machine::Machine;
use crate::stats::{bytes, ms, rate, relative_to_cwd, Summary};

/// Memory and disk at one moment, and how long what led there took.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    /// For the first start on a kept directory: process started → `/healthz`.
    pub took: Duration,
    /// The server's memory.
    pub memory: Memory,
    /// The data directory.
    pub disk: Disk,
}

/// What loading left behind.
pub struct AfterLoad {
    /// Loading the pipelines, when this run did.
    pub pipelines: Option<LoadReport>,
    /// Building the history, when this run did.
    pub history: Option<HistoryReport>,
    /// The server's memory as loading ended (`peak` covers the whole load).
    pub memory: Memory,
    /// RSS after `--settle` idle.
    pub steady_rss: u64,
    /// The data directory as loading ended.
    pub disk: Disk,
    /// The largest WAL size sampled while loading.
    pub wal_max: u64,
    /// CPU while loading.
    pub cpu: CpuUse,
}

/// The console's pipelines page.
pub struct ConsoleFigures {
    /// Each fetch.
    pub fetches: Vec<PageFetch>,
    /// Server memory before the first fetch.
    pub before: Memory,
    /// Server memory after each fetch.
    pub after: Vec<Memory>,
}

/// Everything one run measured.
pub struct Report {
    command: String,
    machine: String,
    server: String,
    clients: usize,
    /// Pipelines `p…` in the installation.
    pub pipelines: usize,
    /// Of those, still waiting at their approval at the end.
    pub waiting: usize,
    /// Finished executions of the history pipeline.
    pub history: usize,
    /// The first start on a kept directory's data.
    pub first_start: Option<Snapshot>,
    /// Loading, when this run loaded anything.
    pub after_load: Option<AfterLoad>,
    /// StartPipelineExecution, then StopPipelineExecution of those executions.
    pub starts: Option<(Fanned, Fanned)>,
    /// Reading tokens and approving.
    pub approvals: Option<Approvals>,
    /// Just before the restart.
    pub before_restart: Option<Snapshot>,
    /// The restart.
    pub restart: Option<Restart>,
    /// GetPipelineState of random pipelines after the restart.
    pub cold: Option<ColdReads>,
    /// GetPipelineState of one pipeline.
    pub hot: Option<Summary>,
    /// PollForJobs with build jobs queued.
    pub polls: Option<Summary>,
    /// Build jobs completed afterwards, and how long that took.
    pub build_jobs: Option<(usize, Duration)>,
    /// ListPipelines to the end.
    pub list_pipelines: Option<Pages>,
    /// ListPipelineExecutions of the history pipeline.
    pub executions: Option<Pages>,
    /// ListActionExecutions of the history pipeline.
    pub actions: Option<Pages>,
    /// CPU from the restart to the end of the one-at-a-time measurements.
    pub cpu_after_restart: Option<CpuUse>,
    /// After the measurements, before the console.
    pub end: Option<Snapshot>,
    /// The largest WAL size sampled between the restart and the end.
    pub wal_max_since_restart: u64,
    /// The console, or why it was not measured; `None` with `--no-console`.
    pub console: Option<Result<ConsoleFigures, String>>,
    approvals_asked: usize,
}

impl Report {
    /// An empty report for a run with these options on this machine and server binary.
    pub fn new(
        args: &ScaleArgs,
        machine: &Machine,
        binary: &Path,
        first_start: Option<Snapshot>,
    ) -> Report {
        Report {
            command: command_line(),
            machine: format!(
                "{} CPUs, {}, Linux {}; data dir on {}; load average at start {}",
                machine.cpus,
                machine.cpu_model,
                machine.kernel,
                machine.file_system,
                machine.load_average
            ),
            server: format!(
                "{} with LOCKGATE_LOG={}",
                relative_to_cwd(binary).display(),
                args.server_log
            ),
            clients: args.clients,
            pipelines: 0,
            waiting: 0,
            history: 0,
            first_start,
            after_load: None,
            starts: None,
            approvals: None,
            before_restart: None,
            restart: None,
            cold: None,
            hot: None,
            polls: None,
            build_jobs: None,
            list_pipelines: None,
            executions: None,
            actions: None,
            cpu_after_restart: None,
            end: None,
            wal_max_since_restart: 0,
            console: None,
            approvals_asked: args.approvals(),
        }
    }

    /// Whether every check held: the sampled pipelines were waiting at their approval, every
    /// build job was handed out and completed, the lists held every item.
    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = &self.cold {
            if c.waiting != c.expected_waiting {
                problems.push(format!(
                    "only {} of {} sampled pipelines were waiting at their approval",
                    c.waiting, c.expected_waiting
                ));
            }
        }
        if let Some((completed, _)) = self.build_jobs {
            if completed != self.approvals_asked {
                problems.push(format!(
                    "{completed} build jobs were completed, {} expected",
                    self.approvals_asked
                ));
            }
        }
        if let Some(p) = &self.list_pipelines {
            if p.items < self.pipelines {
                problems.push(format!(
                    "ListPipelines listed {} pipelines, at least {} expected",
                    p.items, self.pipelines
                ));
            }
        }
        if let Some(p) = &self.executions {
            if p.items < self.history {
                problems.push(format!(
                    "ListPipelineExecutions listed {} executions, at least {} expected",
                    p.items, self.history
                ));
            }
        }
        problems
    }

    /// Prints the heading lines and the Markdown table on stdout.
    pub fn print(&self) {
        println!(
            "lockgate-bench scale: {} pipelines, {} of them waiting at an approval at the end, \
             and `{}` with {} finished executions",
            rate(self.pipelines as f64),
            rate(self.waiting as f64),
            super::api::HISTORY_PIPELINE,
            rate(self.history as f64)
        );
        println!("command: `{}`", self.command);
        println!(
            "server: {}; {} clients, HTTP/1.1 keep-alive, SigV4",
            self.server, self.clients
        );
        println!("machine: {}", self.machine);
        println!();
        println!("| measurement | result |");
        println!("|---|---|");
        for (what, result) in self.rows() {
            println!("| {what} | {result} |");
        }
        println!();
        for problem in self.problems() {
            println!("CHECK FAILED: {problem}");
        }
    }

    fn rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        let mut row = |what: String, result: String| rows.push((what, result));
        if let Some(s) = &self.first_start {
            row(
                "first start on the kept data → `/healthz`".into(),
                format!(
                    "{:.2} s; server RSS then {}, peak {}",
                    s.took.as_secs_f64(),
                    bytes(s.memory.rss),
                    bytes(s.memory.peak)
                ),
            );
        }
        if let Some(load) = &self.after_load {
            if let Some(p) = &load.pipelines {
                row(
                    format!("CreatePipeline, {} clients", self.clients),
                    format!(
                        "**{}/s** ({} in {:.1} s)",
                        rate(p.created as f64 / p.create_time.as_secs_f64().max(1e-9)),
                        rate(p.created as f64),
                        p.create_time.as_secs_f64()
                    ),
                );
                row(
                    format!(
                        "source jobs: PollForJobs + AcknowledgeJob + PutJobSuccessResult, {} clients",
                        self.clients
                    ),
                    format!(
                        "{} jobs/s ({} in {:.1} s)",
                        rate(p.source_jobs as f64 / p.source_time.as_secs_f64().max(1e-9)),
                        rate(p.source_jobs as f64),
                        p.source_time.as_secs_f64()
                    ),
                );
                row(
                    "loading to a pending approval, wall time".into(),
                    format!(
                        "{:.1} s ({} pipelines/s)",
                        p.wall.as_secs_f64(),
                        rate(p.created as f64 / p.wall.as_secs_f64().max(1e-9))
                    ),
                );
            }
            if let Some(h) = &load.history {
                row(
                    "history: executions one after another (start, source job, reject)".into(),
                    format!(
                        "{} in {:.1} s ({}/s)",
                        rate(h.added as f64),
                        h.time.as_secs_f64(),
                        rate(h.added as f64 / h.time.as_secs_f64().max(1e-9))
                    ),
                );
            }
            row(
                "server RSS at the end of loading / after idling (steady)".into(),
                format!(
                    "{} / **{}**",
                    bytes(load.memory.rss),
                    bytes(load.steady_rss)
                ),
            );
            row(
                "server peak RSS while loading (VmHWM)".into(),
                bytes(load.memory.peak),
            );
            row(
                "WAL at the end of loading / largest sampled while loading".into(),
                format!("{} / {}", bytes(load.disk.wal), bytes(load.wal_max)),
            );
            row(
                "data dir / database file at the end of loading".into(),
                format!(
                    "{} / {}",
                    bytes(load.disk.data_dir),
                    bytes(load.disk.database)
                ),
            );
            row(
                "CPU while loading: server / other processes".into(),
                cpu_cell(&load.cpu),
            );
        }
        if let Some((started, stopped)) = &self.starts {
            row(
                format!(
                    "StartPipelineExecution, {} clients, {} distinct pipelines",
                    self.clients,
                    rate(started.done as f64)
                ),
                format!(
                    "**{}/s**; {}",
                    rate(started.per_second()),
                    latency(&started.latency)
                ),
            );
            row(
                "StopPipelineExecution (abandon) of those executions".into(),
                format!(
                    "{}/s; {}",
                    rate(stopped.per_second()),
                    latency(&stopped.latency)
                ),
            );
        }
        if let Some(a) = &self.approvals {
            row(
                format!(
                    "GetPipelineState for approval tokens, {} clients, {} pipelines",
                    self.clients,
                    rate(a.tokens.done as f64)
                ),
                format!(
                    "{}/s; {}",
                    rate(a.tokens.per_second()),
                    latency(&a.tokens.latency)
                ),
            );
            row(
                format!(
                    "PutApprovalResult, {} clients, {} distinct approvals",
                    self.clients,
                    rate(a.approved.done as f64)
                ),
                format!(
                    "**{}/s**; {}",
                    rate(a.approved.per_second()),
                    latency(&a.approved.latency)
                ),
            );
        }
        if let Some(r) = &self.restart {
            row(
                format!("restart ({}) → `/healthz`", r.shutdown.label()),
                format!(
                    "**{:.2} s** (stopping took {:.2} s); server RSS at `/healthz` {}, peak {}; \
                     WAL {} before, {} after",
                    r.to_healthz.as_secs_f64(),
                    r.stop.as_secs_f64(),
                    bytes(r.memory.rss),
                    bytes(r.memory.peak),
                    bytes(r.wal_before),
                    bytes(r.wal_after)
                ),
            );
        }
        if let Some(c) = &self.cold {
            row(
                format!(
                    "GetPipelineState, random pipelines after the restart (cold), n={}",
                    c.latency.count
                ),
                format!(
                    "{}; {} of {} sampled pipelines waiting at their approval",
                    percentiles(&c.latency),
                    c.waiting,
                    c.expected_waiting
                ),
            );
        }
        if let Some(h) = &self.hot {
            row(
                format!("GetPipelineState, one pipeline (hot), n={}", h.count),
                percentiles(h),
            );
        }
        if let Some(p) = &self.polls {
            row(
                format!(
                    "PollForJobs (maxBatchSize 1), {} → {} build jobs queued, n={}",
                    rate(self.approvals_asked as f64),
                    rate((self.approvals_asked - p.count) as f64),
                    p.count
                ),
                percentiles(p),
            );
        }
        if let Some((completed, took)) = self.build_jobs {
            row(
                format!(
                    "build jobs: AcknowledgeJob + PutJobSuccessResult (the rest polled), {} clients",
                    self.clients
                ),
                format!(
                    "{} in {:.2} s ({}/s)",
                    rate(completed as f64),
                    took.as_secs_f64(),
                    rate(completed as f64 / took.as_secs_f64().max(1e-9))
                ),
            );
        }
        if let Some(p) = &self.list_pipelines {
            row(
                format!(
                    "ListPipelines, full pagination, {} pipelines in {} pages of ≤ 1,000",
                    rate(p.items as f64),
                    p.pages
                ),
                format!(
                    "**{:.3} s**; first page {}, last page {}; pages {}",
                    p.first_pass.as_secs_f64(),
                    ms(p.first_page),
                    ms(p.last_page),
                    percentiles(&p.all)
                ),
            );
        }
        for (name, pages, what) in [
            ("ListPipelineExecutions", &self.executions, "executions"),
            ("ListActionExecutions", &self.actions, "action executions"),
        ] {
            let Some(p) = pages else { continue };
            row(
                format!(
                    "{name}, one pipeline, {} {what} in {} pages of ≤ 100, {} passes",
                    rate(p.items as f64),
                    p.pages,
                    p.passes
                ),
                format!(
                    "first pass {:.3} s; first page {} (first pass), max {} (all passes); \
                     all {} pages {}",
                    p.first_pass.as_secs_f64(),
                    ms(p.first_page),
                    ms(p.first_pages.max),
                    p.all.count,
                    percentiles(&p.all)
                ),
            );
        }
        if let (Some(b), Some(e)) = (&self.before_restart, &self.end) {
            row(
                "server RSS before the restart / at the end (peak since the restart)".into(),
                format!(
                    "{} / **{}** ({})",
                    bytes(b.memory.rss),
                    bytes(e.memory.rss),
                    bytes(e.memory.peak)
                ),
            );
            row(
                "WAL at the end / largest sampled since the restart".into(),
                format!(
                    "{} / {}",
                    bytes(e.disk.wal),
                    bytes(self.wal_max_since_restart)
                ),
            );
            row(
                "data dir / database file at the end".into(),
                format!("{} / {}", bytes(e.disk.data_dir), bytes(e.disk.database)),
            );
        }
        if let Some(cpu) = &self.cpu_after_restart {
            row(
                "CPU from the restart to the end of the reads and pages: server / other processes"
                    .into(),
                cpu_cell(cpu),
            );
        }
        match &self.console {
            Some(Ok(c)) => {
                let times: Vec<String> = c
                    .fetches
                    .iter()
                    .map(|f| format!("{:.3} s", f.time.as_secs_f64()))
                    .collect();
                let rss_after: Vec<String> = c.after.iter().map(|m| bytes(m.rss)).collect();
                row(
                    "`/console/pipelines` (signed in), fetched twice".into(),
                    format!(
                        "{}; {} of HTML; server RSS {} → {}",
                        times.join(", "),
                        c.fetches
                            .first()
                            .map_or_else(String::new, |f| bytes(f.bytes)),
                        bytes(c.before.rss),
                        rss_after.join(" → ")
                    ),
                );
            }
            Some(Err(why)) => row(
                "`/console/pipelines`".into(),
                format!("not measured: {why}"),
            ),
            None => {}
        }
        row(
            "this benchmark's own peak RSS".into(),
            bytes(super::watch::memory(std::process::id()).peak),
        );
        rows
    }

    /// The figures as JSON: durations in milliseconds, sizes in bytes, rates per second.
    pub fn json(&self) -> Value {
        let fanned = |f: &Fanned| {
            json!({"count": f.done, "seconds": f.elapsed.as_secs_f64(),
                   "per_second": f.per_second(), "latency": summary(&f.latency)})
        };
        let snapshot = |s: &Snapshot| json!({"start_ms": millis(s.took), "memory": memory(&s.memory), "disk": disk(&s.disk)});
        let pages = |p: &Pages| {
            json!({"items": p.items, "pages": p.pages, "passes": p.passes,
                   "first_pass_ms": millis(p.first_pass), "first_page_ms": millis(p.first_page),
                   "last_page_ms": millis(p.last_page), "first_pages": summary(&p.first_pages),
                   "all_pages": summary(&p.all)})
        };
        json!({
            "command": self.command,
            "server": self.server,
            "machine": self.machine,
            "clients": self.clients,
            "pipelines": self.pipelines,
            "waiting_at_approval": self.waiting,
            "history_executions": self.history,
            "first_start": self.first_start.as_ref().map(snapshot),
            "load": self.after_load.as_ref().map(|l| json!({
                "pipelines": l.pipelines.map(|p| json!({
                    "created": p.created,
                    "create_seconds": p.create_time.as_secs_f64(),
                    "create_per_second": p.created as f64 / p.create_time.as_secs_f64().max(1e-9),
                    "source_jobs": p.source_jobs,
                    "source_seconds": p.source_time.as_secs_f64(),
                    "wall_seconds": p.wall.as_secs_f64(),
                })),
                "history": l.history.map(|h| json!({"added": h.added, "seconds": h.time.as_secs_f64()})),
                "memory": memory(&l.memory),
                "steady_rss": l.steady_rss,
                "disk": disk(&l.disk),
                "wal_max": l.wal_max,
                "cpu": cpu_json(&l.cpu),
            })),
            "start_pipeline_execution": self.starts.as_ref().map(|(s, _)| fanned(s)),
            "stop_pipeline_execution": self.starts.as_ref().map(|(_, s)| fanned(s)),
            "approval_tokens": self.approvals.as_ref().map(|a| fanned(&a.tokens)),
            "put_approval_result": self.approvals.as_ref().map(|a| fanned(&a.approved)),
            "before_restart": self.before_restart.as_ref().map(snapshot),
            "restart": self.restart.as_ref().map(|r| json!({
                "shutdown": r.shutdown.label(),
                "stop_ms": millis(r.stop),
                "to_healthz_ms": millis(r.to_healthz),
                "memory": memory(&r.memory),
                "wal_before": r.wal_before,
                "wal_after": r.wal_after,
            })),
            "get_pipeline_state_cold": self.cold.as_ref().map(|c| json!({
                "latency": summary(&c.latency),
                "expected_waiting": c.expected_waiting,
                "waiting": c.waiting,
            })),
            "get_pipeline_state_hot": self.hot.as_ref().map(summary),
            "poll_for_jobs": self.polls.as_ref().map(|p| json!({
                "queued_at_start": self.approvals_asked, "latency": summary(p),
            })),
            "build_jobs_completed": self.build_jobs.map(|(n, t)| json!({"count": n, "seconds": t.as_secs_f64()})),
            "list_pipelines": self.list_pipelines.as_ref().map(pages),
            "list_pipeline_executions": self.executions.as_ref().map(pages),
            "list_action_executions": self.actions.as_ref().map(pages),
            "cpu_after_restart": self.cpu_after_restart.as_ref().map(cpu_json),
            "end": self.end.as_ref().map(snapshot),
            "wal_max_since_restart": self.wal_max_since_restart,
            "console_pipelines": self.console.as_ref().map(|c| match c {
                Ok(c) => json!({
                    "fetch_ms": c.fetches.iter().map(|f| millis(f.time)).collect::<Vec<_>>(),
                    "bytes": c.fetches.first().map(|f| f.bytes),
                    "rss_before": c.before.rss,
                    "rss_after": c.after.iter().map(|m| m.rss).collect::<Vec<_>>(),
                }),
                Err(why) => json!({"skipped": why}),
            }),
            "bench_peak_rss": super::watch::memory(std::process::id()).peak,
            "checks_failed": self.problems(),
        })
    }
}

/// `12.3 s (0.95 cores) / 0.01 cores`.
fn cpu_cell(cpu: &CpuUse) -> String {
    format!(
        "{:.1} s ({:.2} cores) / {:.2} cores",
        cpu.server.as_secs_f64(),
        cpu.server_cores(),
        cpu.other_cores()
    )
}

fn cpu_json(cpu: &CpuUse) -> Value {
    json!({"wall_seconds": cpu.wall.as_secs_f64(), "server_seconds": cpu.server.as_secs_f64(),
           "other_processes_seconds": cpu.others.as_secs_f64()})
}

/// `n=…, p50 / p99 / max`.
fn latency(s: &Summary) -> String {
    format!("n={}, {}", s.count, percentiles(s))
}

/// `p50 / p99 / max`.
fn percentiles(s: &Summary) -> String {
    format!("p50 {} / p99 {} / max {}", ms(s.p50), ms(s.p99), ms(s.max))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(s: &Summary) -> Value {
    json!({"count": s.count, "mean_ms": millis(s.mean), "p50_ms": millis(s.p50),
           "p99_ms": millis(s.p99), "max_ms": millis(s.max)})
}

fn memory(m: &Memory) -> Value {
    json!({"rss": m.rss, "peak": m.peak})
}

fn disk(d: &Disk) -> Value {
    json!({"data_dir": d.data_dir, "database": d.database, "wal": d.wal})
}

/// This process's command line as typed, with the program shown as `lockgate-bench` and paths
/// inside the working directory made relative, so it can be pasted into the docs.
fn command_line() -> String {
    let mut words = vec!["lockgate-bench".to_owned()];
    for arg in std::env::args().skip(1) {
        let shown = relative_to_cwd(Path::new(&arg)).display().to_string();
        words.push(if shown.contains(' ') {
            format!("'{shown}'")
        } else {
            shown
        });
    }
    words.join(" ")
}
