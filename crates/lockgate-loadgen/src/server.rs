//! The server under test as a child process, as in real use: a fresh data directory, a user added
//! through the CLI, `lockgate serve` on a free loopback port, and (for the torture campaign)
//! SIGKILL and a restart on the same data. The process is killed when the handle is dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a start may take before `/healthz` answers. Far above a healthy start; start-up
/// includes loading every pipeline from the store, which a long torture campaign makes slow.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

/// The user the driver signs its requests as, added with `lockgate user add` before the first
/// start.
pub struct User {
    /// The user name.
    pub name: &'static str,
    /// The account id the user belongs to (`--account-id`); `None` keeps the server's default.
    pub account_id: Option<&'static str>,
    /// The access key id.
    pub access_key_id: &'static str,
    /// The secret access key.
    pub secret_access_key: &'static str,
    /// The console password (unused by the drivers, required by the CLI).
    pub password: &'static str,
}

/// How the server is created and started.
pub struct ServerOptions {
    /// The `lockgate` binary.
    pub binary: PathBuf,
    /// The directory the temporary data directory is created in.
    pub data_parent: PathBuf,
    /// The data directory's name prefix (`lockgate-bench-`), to tell drivers' leftovers apart.
    pub dir_prefix: &'static str,
    /// The user added before the first start.
    pub user: User,
    /// Arguments added to every `lockgate serve` after `--listen` and `--data-dir`.
    pub serve_args: Vec<String>,
    /// The `LOCKGATE_LOG` filter the server runs with.
    pub log: String,
}

/// A `lockgate serve` process and the data directory it keeps across restarts.
pub struct Server {
    binary: PathBuf,
    serve_args: Vec<String>,
    log: String,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    child: Option<Child>,
    /// The address the current process listens on (a new port after every restart).
    pub addr: SocketAddr,
}

impl Server {
    /// Creates the data directory, adds the user, starts the server on a free port and waits
    /// until `GET /healthz` answers 200.
    pub fn create(options: ServerOptions) -> anyhow::Result<Server> {
        if !options.binary.is_file() {
            bail!(
                "no server binary at {} (build it with `cargo build --release -p lockgate`, or \
                 pass --server)",
                options.binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix(options.dir_prefix)
            .tempdir_in(&options.data_parent)
            .with_context(|| format!("creating a data dir in {}", options.data_parent.display()))?;
        add_user(&options.binary, dir.path(), &options.user)?;
        let log_path = dir.path().join("server.log");
        let mut server = Server {
            binary: options.binary,
            serve_args: options.serve_args,
            log: options.log,
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

    /// The running process's id; `None` between a kill and the next start.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts `lockgate serve` on a fresh port and waits until `/healthz` answers 200; returns
    /// how long that took.
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
            .args(&self.serve_args)
            .env("LOCKGATE_LOG", &self.log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_until_healthy(HEALTHY_WITHIN)?;
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

    /// Keeps the data directory (and its server log) after the driver exits, for a post-mortem.
    pub fn keep_data(&mut self) -> Option<PathBuf> {
        self.dir.take().map(tempfile::TempDir::keep)
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
        // SIGKILL, then the data directory goes (unless kept): nothing needs a clean shutdown.
        let _ = self.kill();
    }
}

/// `lockgate user add` with the driver's fixed keys.
fn add_user(binary: &Path, dir: &Path, user: &User) -> anyhow::Result<()> {
    let mut command = Command::new(binary);
    command
        .args(["user", "add", user.name, "--data-dir"])
        .arg(dir);
    if let Some(account_id) = user.account_id {
        command.args(["--account-id", account_id]);
    }
    let output = command
        .args(["--access-key-id", user.access_key_id])
        .args(["--secret-access-key", user.secret_access_key])
        .args(["--password", user.password])
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
