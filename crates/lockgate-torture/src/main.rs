//! `lockgate-torture`: a kill -9 campaign against a real `lockgate serve` process.
//!
//! It creates a data directory, adds a user through the CLI and starts the release binary. Then,
//! each cycle, several clients apply mixed load (create pipelines, start, approve and reject,
//! poll, acknowledge and complete jobs, stop, retry, disable and enable a stage transition) and
//! journal every write the server acknowledged; at a random moment (from a seeded generator) the
//! server gets SIGKILL. It is started again on the same data, and once `/healthz` answers, every
//! acknowledged write is read back and the invariants of every pipeline are checked
//! (`check.rs`). It prints a line per cycle and a summary, and exits non-zero on any violation.
//! `docs/reliability.md` has the figures of a long campaign; `--help` lists the options.

mod check;
mod client;
mod journal;
mod load;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use lockgate_loadgen::duration::parse_duration;
use lockgate_loadgen::server::Server;
use lockgate_loadgen::sign::Signer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::{Answer, Conn};
use crate::journal::{add_counts, Journal};
use crate::load::Client;

/// Kill -9 a lockgate server under mixed load, restart it, and check that nothing it
/// acknowledged was lost.
#[derive(Debug, Parser)]
#[command(name = "lockgate-torture", version, about)]
struct Args {
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 10)]
    cycles: u32,
    /// Seed of every random choice (kill moments, operations, answers); printed at the start so
    /// a campaign's choices can be replayed [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent clients, each on its own keep-alive connection.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The longest a cycle's load runs before the kill (e.g. 2s, 500ms); each kill comes at a
    /// random moment between a quarter of it and all of it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    duration_per_cycle: Duration,
    /// The `lockgate` binary under test.
    #[arg(long, env = "LOCKGATE_BIN", default_value = "target/release/lockgate")]
    server: PathBuf,
    /// Where the data directory is created [default: the system temp dir]. It is removed after
    /// a clean campaign and kept (with the server's log) after a violation.
    #[arg(long)]
    data_parent: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients == 0 || args.cycles == 0 {
        bail!("--clients and --cycles must be at least 1");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    println!("seed {seed} (replay the same choices with --seed {seed})");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let violations = runtime.block_on(campaign(&args, seed))?;
    if violations > 0 {
        // The summary above says what; an error trace would add nothing.
        std::process::exit(1);
    }
    Ok(())
}

/// Violations printed per cycle and in the summary; the rest are counted.
const SHOWN: usize = 10;

/// Totals over the campaign.
#[derive(Default)]
struct Totals {
    acknowledged: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
    in_doubt: u64,
    probes: u64,
    checks: u64,
    violations: Vec<String>,
    restart: Vec<Duration>,
}

async fn campaign(args: &Args, seed: u64) -> anyhow::Result<usize> {
    let data_parent = args.data_parent.clone().unwrap_or_else(std::env::temp_dir);
    let mut server = server::create(&args.server, data_parent)?;
    println!(
        "server {}, data in {}",
        args.server.display(),
        server.data_dir().display()
    );
    let result = run_cycles(args, seed, &mut server).await;
    let totals = match result {
        Ok(totals) => totals,
        Err(e) => {
            eprintln!("server log tail:\n{}", server.log_tail());
            if let Some(dir) = server.keep_data() {
                eprintln!("data kept in {}", dir.display());
            }
            return Err(e);
        }
    };
    print_summary(args, &totals);
    if !totals.violations.is_empty() {
        server.kill()?;
        if let Some(dir) = server.keep_data() {
            println!("data and server log kept in {}", dir.display());
        }
    }
    Ok(totals.violations.len())
}

fn signer(server: &Server) -> Arc<Signer> {
    Arc::new(Signer::new(
        server::ACCESS_KEY_ID,
        server::SECRET_ACCESS_KEY,
        server::REGION,
        &server.addr.to_string(),
    ))
}

async fn run_cycles(args: &Args, seed: u64, server: &mut Server) -> anyhow::Result<Totals> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = Conn::connect(server.addr, signer(server)).await?;
    for input in load::GATE.action_type_inputs() {
        match conn.call("CreateCustomActionType", &input).await {
            Ok(Answer::Ok(_)) => {}
            other => bail!("creating the custom action types: {other:?}"),
        }
    }
    let mut clients: Vec<Client> = (0..args.clients)
        .map(|i| Client::new(i + 1, StdRng::seed_from_u64(rng.gen())))
        .collect();
    let mut totals = Totals::default();
    let started = Instant::now();
    for cycle in 1..=args.cycles {
        let before: Vec<u64> = clients.iter().map(|c| acked(&c.journal)).collect();
        let kill_after = args.duration_per_cycle.mul_f64(rng.gen_range(0.25..=1.0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::with_capacity(clients.len());
        for client in clients.drain(..) {
            let conn = Conn::connect(server.addr, signer(server)).await?;
            tasks.push(tokio::spawn(client.run(conn, stop.clone())));
        }
        // The load runs for this long: the kill moment is the experiment's variable.
        tokio::time::sleep(kill_after).await;
        server.kill()?;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            clients.push(task.await.context("a load client panicked")?);
        }
        let restart = server.start()?;
        totals.restart.push(restart);

        let mut conn = Conn::connect(server.addr, signer(server)).await?;
        let mut journals: Vec<&mut Journal> = clients.iter_mut().map(|c| &mut c.journal).collect();
        let checked = Instant::now();
        let report = check::check(&mut conn, &mut journals).await?;
        let mut load_violations = Vec::new();
        for journal in journals {
            load_violations.append(&mut journal.violations);
        }
        let acknowledged: u64 = clients
            .iter()
            .zip(&before)
            .map(|(c, b)| acked(&c.journal) - b)
            .sum();
        let in_doubt: u64 =
            clients.iter().map(|c| c.journal.in_doubt).sum::<u64>() - totals.in_doubt;
        let violations = load_violations.len() + report.violations.len();
        println!(
            "cycle {cycle}/{}: killed after {:.2}s; {acknowledged} writes acknowledged, {in_doubt} \
             in doubt; restarted in {} ms; checked {} pipelines, {} executions, {} facts in {} \
             ms; violations {violations}",
            args.cycles,
            kill_after.as_secs_f64(),
            restart.as_millis(),
            report.pipelines,
            report.executions,
            report.checks,
            checked.elapsed().as_millis(),
        );
        for v in load_violations.iter().chain(&report.violations).take(SHOWN) {
            println!("  VIOLATION: {v}");
        }
        if violations > SHOWN {
            println!("  … and {} more", violations - SHOWN);
        }
        totals.in_doubt += in_doubt;
        let probes: u64 = clients.iter().map(|c| c.journal.probes).sum::<u64>() - totals.probes;
        totals.probes += probes;
        totals.checks += report.checks + probes;
        totals.violations.extend(load_violations);
        totals.violations.extend(report.violations);
    }
    for client in &clients {
        add_counts(&mut totals.acknowledged, &client.journal.acknowledged);
        add_counts(&mut totals.refused, &client.journal.refused);
    }
    println!("campaign took {:.1}s", started.elapsed().as_secs_f64());
    Ok(totals)
}

fn acked(journal: &Journal) -> u64 {
    journal.acknowledged.values().sum()
}

fn print_summary(args: &Args, totals: &Totals) {
    let total: u64 = totals.acknowledged.values().sum();
    println!("\n== summary");
    println!(
        "cycles: {} (clients {}, load up to {:?} per cycle)",
        args.cycles, args.clients, args.duration_per_cycle
    );
    println!("acknowledged writes: {total}");
    for (kind, n) in &totals.acknowledged {
        println!("  {kind:<34} {n:>7}");
    }
    let refused: u64 = totals.refused.values().sum();
    println!("refused (the load's own races, e.g. a superseded token): {refused}");
    for (code, n) in &totals.refused {
        println!("  {code:<34} {n:>7}");
    }
    println!(
        "writes in doubt (answer lost to the kill): {}",
        totals.in_doubt
    );
    let mut restart = totals.restart.clone();
    restart.sort();
    if let (Some(median), Some(max)) = (restart.get(restart.len() / 2), restart.last()) {
        println!(
            "restart to healthy: median {} ms, max {} ms",
            median.as_millis(),
            max.as_millis()
        );
    }
    println!(
        "facts checked: {} (of which {} second answers or job results refused under load)",
        totals.checks, totals.probes
    );
    println!("violations: {}", totals.violations.len());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for v in &totals.violations {
        *kinds.entry(kind_of(v)).or_default() += 1;
    }
    for (kind, n) in &kinds {
        println!("  {n:>7} × {kind}");
    }
}

/// A violation with its names and ids blanked out (`#`), so alike ones are counted together.
fn kind_of(violation: &str) -> String {
    violation
        .split(' ')
        .map(|word| {
            if word.chars().any(|c| c.is_ascii_digit()) {
                "#"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
