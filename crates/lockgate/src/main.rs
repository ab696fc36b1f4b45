//! `lockgate`: a self-hosted pipeline server that speaks the AWS CodePipeline API.
//!
//! `main` parses the command line, builds what the command needs and runs it; nothing else.

use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates and frees many small buffers,
/// and glibc's malloc was the innermost function in about a fifth of the server's CPU samples
/// (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = lockgate::cli::Cli::parse();
    lockgate::app::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCKGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
