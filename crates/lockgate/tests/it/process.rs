//! `LockgateProcess`: the real binary as a child process, for SIGTERM and kill -9.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};

use crate::harness::{add_bob, client, lockgate_bin, BOB_KEY, BOB_SECRET};

/// A `lockgate serve` child process. Its stdout and stderr are read as they come (a full pipe
/// would block the server's logging), and returned by [`LockgateProcess::sigterm`].
pub struct LockgateProcess {
    child: Child,
    /// The API endpoint, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Appends every line of `from` to `log`.
fn capture(
    from: impl std::io::Read + Send + 'static,
    log: &Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    let log = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl LockgateProcess {
    /// Starts `lockgate serve` over `dir` on a free port and waits until it is healthy.
    pub fn start(dir: &std::path::Path) -> LockgateProcess {
        Self::start_with_env(dir, &[])
    }

    /// Starts `lockgate serve` over `dir` with extra environment variables (`LOCKGATE_LOG`).
    pub fn start_with_env(dir: &std::path::Path, env: &[(&str, &str)]) -> LockgateProcess {
        Self::launch(dir, &[], env)
    }

    /// Starts `lockgate serve` as the last argument of `wrapper` (e.g. `prlimit --nofile=…`), or
    /// directly when `wrapper` is empty.
    pub fn start_under(dir: &std::path::Path, wrapper: &[&str]) -> LockgateProcess {
        Self::launch(dir, wrapper, &[])
    }

    fn launch(dir: &std::path::Path, wrapper: &[&str], env: &[(&str, &str)]) -> LockgateProcess {
        let port = free_port();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(lockgate_bin());
                command
            }
            None => Command::new(lockgate_bin()),
        };
        let mut child = command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lockgate");
        let log = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            capture(child.stdout.take().expect("stdout"), &log),
            capture(child.stderr.take().expect("stderr"), &log),
        ];
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "lockgate did not become healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
        LockgateProcess {
            child,
            endpoint,
            log,
            readers,
        }
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM; returns its exit status and everything it wrote to stdout
    /// and stderr.
    pub fn sigterm(self) -> (std::process::ExitStatus, String) {
        self.send_sigterm();
        self.wait_for_exit()
    }

    /// Sends SIGTERM without waiting for the server to stop.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
    }

    /// Waits for the server to exit; returns its status and everything it wrote to stdout and
    /// stderr.
    pub fn wait_for_exit(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        // The pipes close when the process exits, so the readers finish.
        for reader in self.readers.drain(..) {
            reader.join().expect("log reader");
        }
        let log = std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()));
        (status, log)
    }
}

#[tokio::test]
async fn an_acknowledged_approval_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_bob(dir.path()).await;
    let server = LockgateProcess::start(dir.path());
    let app = crate::harness::TestAppClient::new(&server.endpoint);
    app.create_source_type().await;
    app.create_approval_pipeline("KillNine").await;
    app.complete_source_job("rev-k9").await;
    let token = app.approval_token("KillNine").await.expect("token");
    app.client
        .put_approval_result()
        .pipeline_name("KillNine")
        .stage_name("Approve")
        .action_name("Approval")
        .token(&token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary("durable")
                .build()
                .expect("result"),
        )
        .send()
        .await
        .expect("approve");
    server.kill9();

    let server = LockgateProcess::start(dir.path());
    let c = client(&server.endpoint, BOB_KEY, BOB_SECRET);
    let state = c
        .get_pipeline_state()
        .name("KillNine")
        .send()
        .await
        .expect("state");
    let exec = crate::harness::approval_execution(&state).expect("approval");
    assert_eq!(exec.summary(), Some("durable"));
    server.kill9();
}

#[tokio::test]
async fn sigterm_shuts_the_server_down_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_bob(dir.path()).await;
    let server = LockgateProcess::start(dir.path());
    let (status, log) = server.sigterm();
    assert!(status.success(), "exit status {status:?}, log:\n{log}");
    assert!(log.contains("lockgate stopped"), "log:\n{log}");
}
