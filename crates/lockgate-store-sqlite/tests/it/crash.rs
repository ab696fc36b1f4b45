//! Crash safety: a child process commits as fast as it can and prints each acknowledged key; it is
//! killed with SIGKILL mid-stream, and the reopened store must hold every key it acknowledged.
//!
//! The child is this same test binary, re-run with an environment variable that turns the test
//! into the child's loop.
//!
//! Each commit also moves a timer (puts the task's next one, deletes its previous one): timers
//! are a deferred collection, logged in the commit and written to their table later, so the
//! kill usually lands with deferred mutations not yet written, and reopening must write them,
//! in order.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lockgate_store::{Collection, Mutation, Record, Store};
use lockgate_store_sqlite::SqliteStore;
use serde_json::json;

/// Set (to the data directory) in the child process.
const CHILD_DIR_ENV: &str = "LOCKGATE_TEST_CRASH_CHILD_DIR";
/// Set (to the round number) in the child process, to keep keys of different rounds apart.
const CHILD_ROUND_ENV: &str = "LOCKGATE_TEST_CRASH_CHILD_ROUND";
/// Concurrent committing tasks in the child, so the kill lands amid group commits.
const CHILD_TASKS: usize = 16;
/// A child left running by a parent that died stops on its own after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

#[test]
fn acknowledged_commits_survive_kill_9() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        let round = std::env::var(CHILD_ROUND_ENV).unwrap_or_default();
        run_child(Path::new(&dir), &round);
        return;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let mut acknowledged = Vec::new();
    // Several rounds, each killed at a different point, each recovering the previous crash.
    for (round, kill_after) in [150, 400, 1000].into_iter().enumerate() {
        acknowledged.extend(run_and_kill_child(dir.path(), round, kill_after));
    }

    let store = SqliteStore::open(dir.path()).expect("store reopens after the crashes");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let records = runtime
        .block_on(store.load(Collection::Execution))
        .expect("load succeeds");
    let stored: HashSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|key| !stored.contains(key.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commits were lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    for record in &records {
        assert_eq!(
            record.body.value()["key"],
            json!(record.key),
            "bodies are intact"
        );
    }
    // Each task's timer moved on with every commit: exactly one is left per task, and it is
    // the last acknowledged one or a later one (a commit in flight when the child died).
    let timers = runtime
        .block_on(store.load(Collection::Timer))
        .expect("timers load");
    let mut last_acknowledged: std::collections::HashMap<&str, &str> = Default::default();
    for key in &acknowledged {
        let (task, n) = key.rsplit_once('/').expect("keys are task/n");
        let last = last_acknowledged.entry(task).or_insert(n);
        *last = (*last).max(n);
    }
    for (task, n) in &last_acknowledged {
        let left: Vec<&str> = timers
            .iter()
            .filter_map(|t| t.key.rsplit_once('/'))
            .filter(|(t, _)| t == task)
            .map(|(_, n)| n)
            .collect();
        assert_eq!(left.len(), 1, "{task} has one timer left: {left:?}");
        assert!(
            left[0] >= *n,
            "{task}: timer {} is older than acknowledged {n}",
            left[0]
        );
    }
    // The recovered store takes writes again.
    runtime
        .block_on(store.commit(vec![Mutation::Put(Record::new(
            Collection::Execution,
            "after-crash",
            json!({"key": "after-crash"}),
        ))]))
        .expect("commit after recovery succeeds");
}

/// Runs one child until it has acknowledged `kill_after` commits, kills it with SIGKILL, and
/// returns every key it acknowledged (including those still in the pipe when it died).
fn run_and_kill_child(dir: &Path, round: usize, kill_after: usize) -> Vec<String> {
    let test_name = format!(
        "{}::acknowledged_commits_survive_kill_9",
        module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, path)| path)
    );
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            test_name.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("child stdout is piped");
    let mut acknowledged = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output is UTF-8");
        if let Some(error) = line.strip_prefix("ERR ") {
            panic!("the child's commit failed: {error}");
        }
        if let Some(key) = line.strip_prefix("ACK ") {
            acknowledged.push(key.to_owned());
            if acknowledged.len() == kill_after && !killed {
                child.kill().expect("SIGKILL is delivered");
                killed = true;
            }
        }
        // After the kill, keep reading: lines the child wrote before dying are acknowledgements.
    }
    let status = child.wait().expect("child is reaped");
    assert!(
        killed,
        "the child exited ({status}) before acknowledging {kill_after} commits"
    );
    assert_eq!(status.signal(), Some(9), "the child died of SIGKILL");
    acknowledged
}

/// The child's side: commit from several tasks until killed, printing each acknowledged key.
fn run_child(dir: &Path, round: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child runtime");
    let store = SqliteStore::open(dir).expect("child opens the store");
    let deadline = Instant::now() + CHILD_LIFETIME;
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CHILD_TASKS)
            .map(|task| {
                let store = store.clone();
                let round = round.to_owned();
                tokio::spawn(async move {
                    let mut n = 0_u64;
                    while Instant::now() < deadline {
                        let key = format!("round-{round}/task-{task:02}/{n:06}");
                        let record = Record::new(
                            Collection::Execution,
                            key.clone(),
                            json!({"key": key, "padding": "x".repeat(200)}),
                        )
                        .with_parent(format!("round-{round}"));
                        let timer = Record::new(Collection::Timer, key.clone(), json!({}))
                            .with_parent(format!("round-{round}"))
                            .with_due_at(i64::try_from(n).expect("small"));
                        let mut mutations = vec![Mutation::Put(record), Mutation::Put(timer)];
                        if let Some(previous) = n.checked_sub(1) {
                            mutations.push(Mutation::Delete {
                                collection: Collection::Timer,
                                key: format!("round-{round}/task-{task:02}/{previous:06}"),
                            });
                        }
                        let line = match store.commit(mutations).await {
                            Ok(()) => format!("ACK {key}\n"),
                            Err(e) => format!("ERR {e}\n"),
                        };
                        // Written straight to the file descriptor (not through the test
                        // harness's capture) and flushed, so the parent sees it at once.
                        let mut stdout = std::io::stdout().lock();
                        if stdout
                            .write_all(line.as_bytes())
                            .and_then(|()| stdout.flush())
                            .is_err()
                        {
                            return;
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
}
