//! A restart on the same data: SIGKILL (a crash) or SIGTERM (a graceful shutdown), then
//! `lockgate serve` again, timed until `/healthz` answers, with the new process's memory at that
//! moment and its peak so far (`VmHWM` covers everything start-up loaded, even if freed).

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::ValueEnum;
use lockgate_loadgen::server::Server;

use super::watch::{file_size, memory, Memory, Watch, WAL_FILE};

/// How long a graceful shutdown may take before it counts as failed.
const SHUTDOWN_WITHIN: Duration = Duration::from_secs(600);

/// How often the process and `/healthz` are checked while stopping and starting.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// How the server is stopped before the restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shutdown {
    /// SIGKILL: no shutdown code runs, as in a crash or power cut.
    Kill,
    /// SIGTERM: the server drains and closes its store.
    Term,
}

impl Shutdown {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Shutdown::Kill => "kill -9",
            Shutdown::Term => "SIGTERM",
        }
    }
}

/// What a restart took.
#[derive(Clone, Copy, Debug)]
pub struct Restart {
    /// How the server was stopped.
    pub shutdown: Shutdown,
    /// How long stopping took (until the process was reaped).
    pub stop: Duration,
    /// The WAL's size just before stopping.
    pub wal_before: u64,
    /// The WAL's size when `/healthz` answered.
    pub wal_after: u64,
    /// Process started → `/healthz` answered 200.
    pub to_healthz: Duration,
    /// The new process's memory when `/healthz` answered.
    pub memory: Memory,
}

/// Stops the server as `shutdown` says and starts it again on the same data; the watch goes
/// on sampling and printing progress meanwhile.
pub async fn restart(
    server: &mut Server,
    shutdown: Shutdown,
    watch: &Watch,
) -> anyhow::Result<Restart> {
    let wal = server.data_dir().join(WAL_FILE);
    let wal_before = file_size(&wal);
    watch.phase(&format!("restart ({})", shutdown.label()), 0);
    let began = Instant::now();
    match shutdown {
        Shutdown::Kill => server.kill()?,
        Shutdown::Term => {
            server.send_terminate()?;
            loop {
                if let Some(status) = server.try_reap()? {
                    if !status.success() {
                        bail!("the server exited with {status} after SIGTERM");
                    }
                    break;
                }
                if began.elapsed() > SHUTDOWN_WITHIN {
                    server.kill()?;
                    bail!("the server was still running {SHUTDOWN_WITHIN:?} after SIGTERM");
                }
                // Waiting for a child process to exit: there is no event to await.
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
    }
    let stop = began.elapsed();
    let began = Instant::now();
    server.launch()?;
    let pid = server.pid().unwrap_or_default();
    watch.set_pid(pid);
    // Polling `/healthz` from outside the process: there is no event to await.
    while !server.check_healthy()? {
        if began.elapsed() > server.start_within() {
            bail!(
                "the server did not answer /healthz within {:?}",
                server.start_within()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    Ok(Restart {
        shutdown,
        stop,
        wal_before,
        wal_after: file_size(&wal),
        to_healthz: began.elapsed(),
        memory: memory(pid),
    })
}
