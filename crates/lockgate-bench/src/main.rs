//! `lockgate-bench`: measures a real `lockgate serve` process from a separate client process.
//!
//! It starts the release server binary as a child process on a data directory of its own, adds a
//! user with fixed keys through the CLI and drives the server over HTTP with SigV4-signed
//! requests, as a real client would. Two commands:
//!
//! - the default (no command): throughput on a small installation, GetPipelineState reads,
//!   durable PutApprovalResult and approval → job latency (`throughput.rs`);
//! - `actions`: commit → approval pending on the example pipeline, and the overhead of an empty
//!   Commands action, with Lockgate's own executors (`actions.rs`);
//! - `scale --pipelines N`: loads N pipelines to a pending approval and measures what grows with
//!   the installation: memory, disk, restart time and the latency of reads, polls and pages
//!   (`scale/`).
//!
//! `docs/performance.md` explains the figures; run with `--help` for the options.

mod actions;
mod bare;
mod client;
mod machine;
mod measure;
mod scale;
mod server;
mod setup;
mod stats;
mod throughput;

use anyhow::bail;
use clap::{Parser, Subcommand};

/// The same allocator as `lockgate serve`, so the bare server beside it is measured alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark a lockgate server process. Without a command: reads, durable approvals, approval →
/// job latency; `scale`: cost at N pipelines waiting at an approval.
#[derive(Debug, Parser)]
#[command(
    name = "lockgate-bench",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    throughput: throughput::ThroughputArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load N pipelines to a pending approval and measure memory, disk, restart time and the
    /// latency of reads, polls and pages at that size.
    Scale(Box<scale::ScaleArgs>),
    /// Time a commit takes to reach the example pipeline's approval, and the overhead of an
    /// empty Commands action, with Lockgate's own executors.
    Actions(actions::ActionsArgs),
    /// The bare axum server the read measurement is compared with (started by the benchmark).
    #[command(hide = true)]
    BareServer,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Some(Command::Scale(args)) => args.client_threads,
        Some(Command::BareServer) => return bare::serve(),
        Some(Command::Actions(_)) => 1,
        None => cli.throughput.client_threads,
    };
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let passed = match &cli.command {
        Some(Command::Scale(args)) => runtime.block_on(scale::run(args))?,
        Some(Command::Actions(args)) => runtime.block_on(actions::run(args))?,
        Some(Command::BareServer) => unreachable!("served above"),
        None => runtime.block_on(throughput::run(&cli.throughput))?,
    };
    if !passed {
        bail!("the run had errors or its results did not verify (see above)");
    }
    Ok(())
}
