//! The server under test as a child process: one data directory for the whole campaign, a user
//! added through the CLI, `lockgate serve` started on a free loopback port, killed with SIGKILL
//! and started again on the same data.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The torture user's name; approvals show `arn:aws:iam::<account>:user/torture`.
pub const USER: &str = "torture";
/// The account id the server is started with, so the approver's ARN is known in advance.
pub const ACCOUNT_ID: &str = "123456789012";
/// The torture user's access key id.
pub const ACCESS_KEY_ID: &str = "AKIALOCKGATETORTURE1";
/// The torture user's secret access key.
pub const SECRET_ACCESS_KEY: &str = "lockgate/torture/SECRET/key/0123456789abc";
/// The region the server answers for.
pub const REGION: &str = "us-east-1";

/// The ARN every acknowledged approval must name as its approver.
pub fn user_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{USER}")
}

/// A `lockgate serve` process and the data directory it keeps across restarts.
pub struct Server {
    binary: PathBuf,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    child: Option<Child>,
    /// The address the current process listens on (a new port after every restart).
    pub addr: SocketAddr,
}

impl Server {
    /// Creates the data directory under `data_parent`, adds the torture user and starts the
    /// server.
    pub fn create(binary: &Path, data_parent: &Path) -> anyhow::Result<Server> {
        if !binary.is_file() {
            bail!(
                "no server binary at {} (build it with `cargo build --release -p lockgate`, or \
                 pass --server)",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("lockgate-torture-")
            .tempdir_in(data_parent)
            .with_context(|| format!("creating a data dir in {}", data_parent.display()))?;
        add_user(binary, dir.path())?;
        let log_path = dir.path().join("server.log");
        let mut server = Server {
            binary: binary.to_owned(),
            dir: Some(dir),
            log_path,
            child: None,
            addr: free_port()?,
        };
        server.start()?;
        Ok(server)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(tempfile::TempDir::path)
            .unwrap_or_else(|| Path::new("."))
    }

    /// Starts `lockgate serve` on a fresh port and waits until `/healthz` answers 200; returns
    /// how long that took (start-up includes loading every pipeline from the store).
    pub fn start(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.addr = free_port()?;
        // Appending keeps every incarnation's log in one file, for a post-mortem.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--account-id", ACCOUNT_ID, "--region", REGION])
            .env("LOCKGATE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_until_healthy(Duration::from_secs(60))?;
        Ok(started.elapsed())
    }

    /// Sends SIGKILL and reaps the process: no shutdown hook, no flush, as a power cut would.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` is SIGKILL on Unix.
            child.kill().context("sending SIGKILL")?;
            child.wait()?;
        }
        Ok(())
    }

    /// Keeps the data directory (and its server log) after the campaign, for a post-mortem.
    pub fn keep_data(&mut self) -> Option<PathBuf> {
        self.dir.take().map(tempfile::TempDir::keep)
    }

    /// The last lines the server logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn wait_until_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("the server exited with {status}:\n{}", self.log_tail());
                }
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
            // Polling a TCP port: there is no event to wait on from outside the process.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// `lockgate user add torture` with the fixed keys.
fn add_user(binary: &Path, dir: &Path) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .args(["user", "add", USER, "--data-dir"])
        .arg(dir)
        .args(["--account-id", ACCOUNT_ID])
        .args(["--access-key-id", ACCESS_KEY_ID])
        .args(["--secret-access-key", SECRET_ACCESS_KEY])
        .args(["--password", "lockgate-torture-password"])
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
