//! Runs a shell script as its own process group, its output read line by line into a
//! [`RunLog`], within a timeout, and killed (the whole group) when the job is stopped. When the
//! script ends, whatever it left running in its group is killed too, as CodeBuild ends a build's
//! container, so no stray process outlives its action or holds its output open.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::runlog::RunLog;

/// Variables of the worker's own environment a script sees; everything else (the worker's
/// credentials above all) is kept from it.
const PASSED_THROUGH: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
];

/// The longest line kept whole; longer output is cut into lines of this length.
const MAX_LINE: usize = 64 * 1024;

/// How long the output readers may take after the group is gone.
const DRAIN: Duration = Duration::from_secs(2);

/// One script to run.
pub struct ShellRun<'a> {
    /// The script file, run by `/bin/sh`.
    pub script: &'a Path,
    /// The working directory.
    pub cwd: &'a Path,
    /// Variables set for the script, on top of the few passed through from the worker.
    pub env: &'a [(String, String)],
    /// Where its output goes.
    pub log: &'a RunLog,
    /// How long it may run.
    pub timeout: Option<Duration>,
}

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellExit {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
    /// It ran out of time and was killed.
    TimedOut,
    /// The job was stopped and it was killed.
    Cancelled,
}

impl ShellRun<'_> {
    /// Runs the script until it ends, times out, or `cancel` turns true.
    pub async fn run(self, cancel: &mut watch::Receiver<bool>) -> std::io::Result<ShellExit> {
        let mut command = Command::new("/bin/sh");
        command
            .arg(self.script)
            .current_dir(self.cwd)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn()?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        let readers = [
            child.stdout.take().map(|s| read_lines(s, self.log.clone())),
            child.stderr.take().map(|s| read_lines(s, self.log.clone())),
        ];
        let timeout = async {
            match self.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            while !*cancel.borrow_and_update() {
                if cancel.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let exit = tokio::select! {
            status = child.wait() => {
                let status = status?;
                match status.code() {
                    Some(code) => ShellExit::Exited(code),
                    None => ShellExit::Signalled(
                        std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0),
                    ),
                }
            }
            () = timeout => ShellExit::TimedOut,
            () = cancelled => ShellExit::Cancelled,
        };
        // The group goes whether the script ended or not: background processes it started
        // would otherwise outlive the action and keep its output open.
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = child.wait().await;
        for reader in readers.into_iter().flatten() {
            if tokio::time::timeout(DRAIN, reader).await.is_err() {
                self.log
                    .line("[output still open after the run ended: the rest is not kept]");
            }
        }
        Ok(exit)
    }
}

fn read_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    log: RunLog,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let mut limited = tokio::io::AsyncReadExt::take(&mut reader, MAX_LINE as u64);
            match limited.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => log.line(&String::from_utf8_lossy(&buf)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(script: &str, timeout: Option<Duration>) -> (ShellExit, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("script.sh");
        std::fs::write(&path, script).expect("write");
        let log = RunLog::new(10_000);
        let (_tx, mut rx) = watch::channel(false);
        let exit = ShellRun {
            script: &path,
            cwd: dir.path(),
            env: &[("GREETING".into(), "hello".into())],
            log: &log,
            timeout,
        }
        .run(&mut rx)
        .await
        .expect("runs");
        (exit, log.text())
    }

    #[tokio::test]
    async fn output_and_exit_status_are_kept() {
        let (exit, text) = run("echo \"$GREETING\"; echo oops >&2; exit 3\n", None).await;
        assert_eq!(exit, ShellExit::Exited(3));
        assert!(text.contains(" hello\n"), "{text}");
        assert!(text.contains(" oops\n"), "{text}");
    }

    #[tokio::test]
    async fn the_worker_s_secrets_are_not_passed_on() {
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "do-not-leak");
        let (_, text) = run("echo \"[${AWS_SECRET_ACCESS_KEY:-unset}]\"\n", None).await;
        assert!(text.contains("[unset]"), "{text}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_group_and_background_processes_do_not_hold_the_output() {
        let started = std::time::Instant::now();
        let (exit, _) = run("sleep 30 &\nsleep 30\n", Some(Duration::from_millis(300))).await;
        assert_eq!(exit, ShellExit::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
        let (exit, _) = run("sleep 30 &\necho done\n", None).await;
        assert_eq!(exit, ShellExit::Exited(0));
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}
