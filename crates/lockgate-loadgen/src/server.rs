//! The server under test as a child process, as in real use: a fresh data directory (or a kept
//! one the caller names), a user added through the CLI, `lockgate serve` on a free loopback port,
//! and SIGKILL or SIGTERM and a restart on the same data. The process is killed when the handle
//! is dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a start may take before `/healthz` answers, unless the caller says otherwise. Far
/// above a healthy start; start-up includes loading every pipeline from the store, which a long
/// torture campaign makes slow.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

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
    dir: PathBuf,
    /// The temporary directory behind `dir`, removed on drop unless kept; `None` for a directory
    /// the caller named.
    temp: Option<tempfile::TempDir>,
    log_path: PathBuf,
    start_within: Duration,
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
        let path = dir.path().to_path_buf();
        Server::first_start(options, path, Some(dir), HEALTHY_WITHIN)
    }

    /// Starts the server on the data directory `dir`, which outlives the driver: created if
    /// missing, the user added first when `add_user` (a new directory), `options.data_parent`
    /// and `options.dir_prefix` unused. Every start may take up to `start_within` before
    /// `/healthz` answers.
    pub fn open(
        options: ServerOptions,
        dir: &Path,
        add_user: bool,
        start_within: Duration,
    ) -> anyhow::Result<Server> {
        if !options.binary.is_file() {
            bail!(
                "no server binary at {} (build it with `cargo build --release -p lockgate`)",
                options.binary.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if add_user {
            self::add_user(&options.binary, dir, &options.user)?;
        }
        Server::first_start(options, dir.to_path_buf(), None, start_within)
    }

    fn first_start(
        options: ServerOptions,
        dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        start_within: Duration,
    ) -> anyhow::Result<Server> {
        let log_path = dir.join("server.log");
        let mut server = Server {
            binary: options.binary,
            serve_args: options.serve_args,
            log: options.log,
            dir,
            temp,
            log_path,
            start_within,
            child: None,
            addr: free_port()?,
        };
        server.start()?;
        Ok(server)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// How long every later start may take before `/healthz` answers.
    pub fn set_start_within(&mut self, limit: Duration) {
        self.start_within = limit;
    }

    /// The running process's id; `None` between a kill and the next start.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts `lockgate serve` on a fresh port and waits until `/healthz` answers 200; returns
    /// how long that took.
    pub fn start(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.launch()?;
        self.wait_until_healthy()?;
        Ok(started.elapsed())
    }

    /// Starts `lockgate serve` on a fresh port and returns at once, so the caller can watch the
    /// process (its pid is known now) while [`Server::wait_until_healthy`] waits for it.
    pub fn launch(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("the server is already running");
        }
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
        Ok(())
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

    /// Sends SIGTERM and waits until the process exits (a graceful shutdown); returns how long
    /// that took. A process still running after `within` gets SIGKILL, and that is an error.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.send_terminate()?;
        loop {
            if let Some(status) = self.try_reap()? {
                if !status.success() {
                    bail!("the server exited with {status} after SIGTERM");
                }
                return Ok(started.elapsed());
            }
            if started.elapsed() > within {
                self.kill()?;
                bail!("the server was still running {within:?} after SIGTERM; killed it");
            }
            // Waiting for a child to exit: std offers no wait with a timeout.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGTERM (a graceful shutdown) without waiting; see [`Server::try_reap`].
    pub fn send_terminate(&self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_ref() else {
            return Ok(());
        };
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .context("the server's pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("sending SIGTERM")
    }

    /// The exit status once the process has exited (it is then reaped and a new start may
    /// follow); `None` while it runs. A server that is not running counts as exited.
    pub fn try_reap(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(Some(std::process::ExitStatus::default()));
        };
        let status = child.try_wait()?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Keeps the data directory (and its server log) after the driver exits, for a post-mortem;
    /// returns where it is.
    pub fn keep_data(&mut self) -> Option<PathBuf> {
        match self.temp.take() {
            Some(temp) => Some(temp.keep()),
            None => Some(self.dir.clone()),
        }
    }

    /// The last lines the server logged, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `GET /healthz` answers 200, for as long as a start may take; fails at once if
    /// the process exits meanwhile.
    pub fn wait_until_healthy(&mut self) -> anyhow::Result<()> {
        let limit = self.start_within;
        let started = Instant::now();
        loop {
            if self.check_healthy()? {
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

    /// Whether `GET /healthz` answers 200 now; an error if the process has exited. For a
    /// caller that waits for a start in its own way (see [`Server::launch`]).
    pub fn check_healthy(&mut self) -> anyhow::Result<bool> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("the server exited with {status}:\n{}", self.log_tail());
            }
        }
        Ok(healthz(self.addr).unwrap_or(false))
    }

    /// How long a start may take before `/healthz` answers.
    pub fn start_within(&self) -> Duration {
        self.start_within
    }

    /// The unlabelled samples of `GET /metrics` (the benchmark runs on loopback, where no token
    /// is needed), by metric name.
    pub fn metrics(&self) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
        let (status, body) = get(self.addr, "/metrics", Duration::from_secs(5))
            .context("reading the server's /metrics")?;
        if status != 200 {
            bail!("/metrics answered {status}: {body}");
        }
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect())
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
    Ok(get(addr, "/healthz", Duration::from_secs(1))?.0 == 200)
}

/// `GET path` on a connection of its own, waiting at most `patience` for each read: the status
/// code and the body (the server answers these small pages with a `Content-Length`, and
/// `Connection: close` ends the reply).
fn get(addr: SocketAddr, path: &str, patience: Duration) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(patience))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP/1.1 reply");
    let status = reply
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}
