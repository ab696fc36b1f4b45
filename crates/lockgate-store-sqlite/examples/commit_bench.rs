//! Measures durable commit throughput of the SQLite store with group commit.
//!
//! ```text
//! cargo run --release -p lockgate-store-sqlite --example commit_bench -- [--seconds 5] [--tasks 64] [--dir PATH]
//! ```
//!
//! First one task commits alone (every commit pays its own fsync, which shows the disk's fsync
//! cost), then `--tasks` tasks commit concurrently for `--seconds`. Each commit is shaped like an
//! engine transaction: an execution record of about 1 KiB plus a timer row. The figures are only
//! meaningful on the disk the server will use: pass `--dir` on that disk (the default is a fresh
//! directory under the system temp directory, which may be a RAM-backed tmpfs where fsync is free).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockgate_store::{Collection, Mutation, Record, Store};
use lockgate_store_sqlite::SqliteStore;
use serde_json::json;

struct Options {
    seconds: f64,
    tasks: usize,
    dir: Option<PathBuf>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        seconds: 5.0,
        tasks: 64,
        dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => {
                options.seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--tasks" => options.tasks = value.parse().map_err(|e| format!("--tasks: {e}"))?,
            "--dir" => options.dir = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

/// What one phase measured.
struct Phase {
    commits: u64,
    transactions: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn print(&self, name: &str) {
        let seconds = self.elapsed.as_secs_f64();
        let percentile = |p: f64| {
            let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies
                .get(index)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!("{name}");
        println!(
            "  commits:      {:>8} in {seconds:.2} s = {:>9.0} commits/s",
            self.commits,
            self.commits as f64 / seconds
        );
        println!(
            "  transactions: {:>8} in {seconds:.2} s = {:>9.0} fsyncs/s  ({:.1} commits per transaction)",
            self.transactions,
            self.transactions as f64 / seconds,
            self.commits as f64 / self.transactions.max(1) as f64
        );
        println!(
            "  commit latency ms: p50 {:.2}  p99 {:.2}  max {:.2}",
            percentile(0.5),
            percentile(0.99),
            percentile(1.0)
        );
    }
}

async fn run_phase(store: &SqliteStore, tasks: usize, duration: Duration, label: &str) -> Phase {
    let before = store.stats();
    let started = Instant::now();
    let deadline = started + duration;
    let padding: Arc<str> = "x".repeat(900).into();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let store = store.clone();
            let padding = Arc::clone(&padding);
            let label = label.to_owned();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0_u64;
                while Instant::now() < deadline {
                    let pipeline = format!("{label}-pipeline-{}", task % 8);
                    let key = format!("{label}-{task:03}-{n:08}");
                    let execution = Record::new(
                        Collection::Execution,
                        key.clone(),
                        json!({"pipelineExecutionId": key, "status": "InProgress", "stages": padding.as_ref()}),
                    )
                    .with_parent(pipeline.clone());
                    let timer = Record::new(Collection::Timer, key.clone(), json!({"execution": key}))
                        .with_parent(pipeline)
                        .with_due_at(1_700_000_000_000 + n as i64);
                    let begun = Instant::now();
                    if let Err(e) = store
                        .commit(vec![Mutation::Put(execution), Mutation::Put(timer)])
                        .await
                    {
                        eprintln!("commit failed: {e}");
                        break;
                    }
                    latencies.push(begun.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        match handle.await {
            Ok(mut task_latencies) => latencies.append(&mut task_latencies),
            Err(e) => eprintln!("bench task failed: {e}"),
        }
    }
    let elapsed = started.elapsed();
    let after = store.stats();
    latencies.sort_unstable();
    Phase {
        commits: after.commits - before.commits,
        transactions: after.transactions - before.transactions,
        elapsed,
        latencies,
    }
}

fn main() -> Result<(), String> {
    let options = parse_options()?;
    let temp;
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    let store = SqliteStore::open(&dir).map_err(|e| e.to_string())?;
    println!("database: {}", store.db_path().display());
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let solo = Duration::from_secs_f64(options.seconds.min(2.0));
        run_phase(&store, 1, solo, "solo")
            .await
            .print("1 task (no grouping possible: one fsync per commit)");
        let duration = Duration::from_secs_f64(options.seconds);
        run_phase(&store, options.tasks, duration, "group")
            .await
            .print(&format!(
                "{} concurrent tasks (group commit)",
                options.tasks
            ));
    });
    store.close().map_err(|e| e.to_string())
}
