//! The server under test, run as a separate process (as in real use): a fresh data directory, a
//! user added through the CLI, `lockgate serve` on a free loopback port, killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::machine;

/// The benchmark user's access key id.
pub const ACCESS_KEY_ID: &str = "AKIALOCKGATEBENCH001";
/// The benchmark user's secret access key.
pub const SECRET_ACCESS_KEY: &str = "lockgate/bench/SECRET/key/0123456789abcdef";
/// The region the server answers for (its default).
pub const REGION: &str = "us-east-1";

/// How the server is started.
pub struct ServerOptions {
    /// The `lockgate` binary.
    pub binary: PathBuf,
    /// The directory the temporary data directory is created in.
    pub data_parent: PathBuf,
    /// The `LOCKGATE_LOG` filter the server runs with.
    pub log: String,
}

/// A running `lockgate serve` child process.
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its data directory (removed on drop, after the process is killed).
    dir: tempfile::TempDir,
    log_path: PathBuf,
}

impl Server {
    /// Creates a data directory, adds the benchmark user, starts the server on a free port and
    /// waits until `GET /healthz` answers 200.
    pub fn start(options: &ServerOptions) -> anyhow::Result<Server> {
        if !options.binary.is_file() {
            bail!(
                "no server binary at {} (build it with `cargo build --release -p lockgate`, or \
                 pass --server)",
                options.binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("lockgate-bench-")
            .tempdir_in(&options.data_parent)
            .with_context(|| format!("creating a data dir in {}", options.data_parent.display()))?;
        add_user(&options.binary, dir.path())?;

        let addr = free_port()?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&options.binary)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .env("LOCKGATE_LOG", &options.log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", options.binary.display()))?;
        let mut server = Server {
            child,
            addr,
            dir,
            log_path,
        };
        server.wait_until_healthy(Duration::from_secs(20))?;
        Ok(server)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system, all threads) the server has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        machine::process_cpu_time(&format!("/proc/{}/stat", self.pid()))
    }

    /// The last lines the server logged, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn wait_until_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited with {status}:\n{}", self.log_tail());
            }
            if healthz(self.addr).unwrap_or(false) {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "the server did not answer /healthz within {limit:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL: the data directory is thrown away, so there is nothing to shut down cleanly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lockgate user add bench` with the fixed benchmark keys.
fn add_user(binary: &Path, dir: &Path) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .args(["user", "add", "bench", "--data-dir"])
        .arg(dir)
        .args(["--access-key-id", ACCESS_KEY_ID])
        .args(["--secret-access-key", SECRET_ACCESS_KEY])
        .args(["--password", "lockgate-bench-password"])
        .env("LOCKGATE_LOG", "warn")
        .output()
        .context("running `lockgate user add`")?;
    if !output.status.success() {
        bail!(
            "`lockgate user add` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Whether `GET /healthz` answers 200.
fn healthz(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(reply.starts_with(b"HTTP/1.1 200"))
}
