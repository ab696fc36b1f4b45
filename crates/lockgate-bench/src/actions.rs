//! `lockgate-bench actions`: what Lockgate's own executors cost, on the example pipeline of
//! `examples/release` (a git source, a Commands build that tests the app and exports its
//! version, a manual approval, a Commands deploy).
//!
//! - **Commit → approval pending**: a commit is pushed to the example's repository, its push
//!   hook is called, and the clock runs until GetPipelineState shows that execution's approval
//!   waiting (git fetch and archive, the build's commands, three stage transitions, every
//!   durable commit in between). Each execution is then rejected, so the next one finds the
//!   stage free.
//! - **Empty Commands action**: a pipeline whose build is one `true`; the overhead is the
//!   action's own duration as the server recorded it (start to success, from
//!   ListActionExecutions): polling, the API reads the worker makes, the workspace, the shell,
//!   the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use lockgate_loadgen::client::Conn;
use lockgate_loadgen::server::{Server, ServerOptions};
use lockgate_loadgen::sign::Signer;
use serde_json::{json, Value};

use crate::server;
use crate::stats::{ms, Summary};

/// The example the benchmark runs.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/release");

/// The push hook's secret in the benchmark's configuration.
const HOOK_SECRET: &str = "lockgate-bench-hook";

/// The options of the actions benchmark.
#[derive(Debug, clap::Args)]
pub struct ActionsArgs {
    /// How many commits are taken to the approval, and how many empty Commands actions run.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// The `lockgate` binary [default: `lockgate` next to this executable].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Where the temporary data directory is created [default: the system temp dir].
    #[arg(long)]
    data_parent: Option<PathBuf>,
}

/// Runs the benchmark and prints its table.
pub async fn run(args: &ActionsArgs) -> anyhow::Result<bool> {
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("lockgate"),
    };
    let parent = args.data_parent.clone().unwrap_or_else(std::env::temp_dir);
    let world = tempfile::Builder::new()
        .prefix("lockgate-bench-actions-")
        .tempdir_in(&parent)?;
    let repo = Repository::create(world.path())?;
    let config = world.path().join("lockgate.toml");
    std::fs::write(
        &config,
        format!(
            "[[repositories]]\nname = \"hello-app\"\nurl = \"{}\"\nhook_secret = \"{HOOK_SECRET}\"\n\
             [triggers]\npoll_seconds = 0\n",
            repo.bare.display()
        ),
    )?;
    let mut options: ServerOptions = server::options(binary, parent.clone(), "warn".to_string());
    options.serve_args = vec!["--config".into(), config.display().to_string()];
    let server = Server::create(options)?;
    let signer = Arc::new(Signer::new(
        server::ACCESS_KEY_ID,
        server::SECRET_ACCESS_KEY,
        server::REGION,
        &server.addr.to_string(),
    ));
    let conn = Conn::connect(server.addr, signer).await?;

    let template = std::fs::read_to_string(Path::new(EXAMPLE).join("pipeline.json"))
        .context("reading examples/release/pipeline.json")?;
    let site = world.path().join("site");
    let release: Value =
        serde_json::from_str(&template.replace("@DEPLOY_DIR@", &site.display().to_string()))?;
    conn.call("CreatePipeline", &release).await?;
    // The execution CreatePipeline starts: wait for its approval and reject it.
    let first = wait_for_approval(&conn, "release", None).await?;
    reject(&conn, "release", &first.1).await?;

    let mut to_approval = Vec::new();
    for i in 0..args.runs {
        repo.commit(i)?;
        let started = Instant::now();
        let execution = call_hook(&server, &conn).await?;
        let (_, token) = wait_for_approval(&conn, "release", Some(&execution)).await?;
        to_approval.push(started.elapsed());
        reject(&conn, "release", &token).await?;
    }

    let mut empty = release.clone();
    empty["pipeline"]["name"] = json!("empty-commands");
    let stages = empty["pipeline"]["stages"]
        .as_array_mut()
        .context("stages")?;
    stages.truncate(2);
    stages[1]["actions"][0]["commands"] = json!(["true"]);
    stages[1]["actions"][0].as_object_mut().map(|a| {
        a.remove("outputArtifacts");
        a.remove("outputVariables")
    });
    conn.call("CreatePipeline", &empty).await?;
    let mut overhead = Vec::new();
    let mut sources = Vec::new();
    for run in 0..=args.runs {
        let execution = if run == 0 {
            latest_execution(&conn, "empty-commands").await?
        } else {
            let out = conn
                .call("StartPipelineExecution", &json!({"name": "empty-commands"}))
                .await?;
            out["pipelineExecutionId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let (source, build) = wait_for_build(&conn, "empty-commands", &execution).await?;
        if run > 0 {
            sources.push(source);
            overhead.push(build);
        }
    }
    drop(server);

    let to_approval = Summary::of(to_approval);
    let overhead = Summary::of(overhead);
    let sources = Summary::of(sources);
    println!("| measurement | runs | p50 | mean | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, s) in [
        (
            "commit pushed → approval pending (examples/release)",
            to_approval,
        ),
        ("git source action (fetch, archive, store)", sources),
        ("empty Commands action (`true`), start to success", overhead),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            s.count,
            ms(s.p50),
            ms(s.mean),
            ms(s.p99),
            ms(s.max)
        );
    }
    let passed = overhead.p50 < Duration::from_millis(100);
    println!(
        "\nempty Commands overhead p50 {} (target < 100 ms): {}",
        ms(overhead.p50),
        if passed { "met" } else { "NOT met" }
    );
    Ok(passed)
}

/// The example app's git repository: a bare one the server fetches, and a working copy.
struct Repository {
    bare: PathBuf,
    work: PathBuf,
}

impl Repository {
    fn create(dir: &Path) -> anyhow::Result<Repository> {
        let bare = dir.join("hello-app.git");
        let work = dir.join("hello-app");
        git(
            dir,
            &["init", "--quiet", "--bare", "--initial-branch=main"],
            Some(&bare),
        )?;
        git(dir, &["clone", "--quiet"], Some(&bare))?;
        std::fs::rename(dir.join("hello-app"), &work).ok();
        for file in ["VERSION", "hello.sh", "test.sh"] {
            std::fs::copy(Path::new(EXAMPLE).join("app").join(file), work.join(file))?;
        }
        git(&work, &["checkout", "--quiet", "-B", "main"], None)?;
        let repo = Repository { bare, work };
        repo.commit_all("hello-app 1.0.0")?;
        Ok(repo)
    }

    fn commit(&self, i: usize) -> anyhow::Result<()> {
        std::fs::write(self.work.join("VERSION"), format!("1.0.{}\n", i + 1))?;
        self.commit_all(&format!("hello-app 1.0.{}", i + 1))
    }

    fn commit_all(&self, message: &str) -> anyhow::Result<()> {
        git(&self.work, &["add", "-A"], None)?;
        git(
            &self.work,
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@lockgate.invalid",
                "commit",
                "--quiet",
                "-m",
                message,
            ],
            None,
        )?;
        git(&self.work, &["push", "--quiet", "origin", "main"], None)
    }
}

fn git(cwd: &Path, args: &[&str], path: Option<&Path>) -> anyhow::Result<()> {
    let mut command = Command::new("git");
    command.current_dir(cwd).args(args);
    if let Some(path) = path {
        command.arg(path);
    }
    let out = command.output().context("running git")?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Calls the repository's push hook; the execution it started.
async fn call_hook(server: &Server, conn: &Conn) -> anyhow::Result<String> {
    let request = http::Request::builder()
        .method("POST")
        .uri("/hooks/git/hello-app")
        .header("host", server.addr.to_string())
        .header("authorization", format!("Bearer {HOOK_SECRET}"))
        .body(Full::new(Bytes::new()))?;
    let _ = conn.fetch_counting(request).await?;
    latest_execution(conn, "release").await
}

async fn latest_execution(conn: &Conn, pipeline: &str) -> anyhow::Result<String> {
    let out = conn
        .call(
            "ListPipelineExecutions",
            &json!({"pipelineName": pipeline, "maxResults": 1}),
        )
        .await?;
    Ok(out["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Polls GetPipelineState until the approval waits (for `execution`, when given); its execution
/// and token.
async fn wait_for_approval(
    conn: &Conn,
    pipeline: &str,
    execution: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let state = conn
            .call("GetPipelineState", &json!({"name": pipeline}))
            .await?;
        last = state.clone();
        for stage in state["stageStates"].as_array().into_iter().flatten() {
            if stage["latestExecution"]["status"] == "Failed"
                && stage["stageName"] != "Approve"
                && execution.is_none_or(|e| stage["latestExecution"]["pipelineExecutionId"] == e)
            {
                bail!("stage {} failed: {stage}", stage["stageName"]);
            }
            if stage["stageName"] != "Approve" {
                continue;
            }
            let latest = &stage["actionStates"][0]["latestExecution"];
            let id = stage["latestExecution"]["pipelineExecutionId"]
                .as_str()
                .unwrap_or_default();
            if latest["status"] == "InProgress"
                && execution.is_none_or(|e| e == id)
                && latest["token"].is_string()
            {
                return Ok((
                    id.to_string(),
                    latest["token"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("the approval did not become pending within two minutes: {last}")
}

async fn reject(conn: &Conn, pipeline: &str, token: &str) -> anyhow::Result<()> {
    conn.call(
        "PutApprovalResult",
        &json!({
            "pipelineName": pipeline, "stageName": "Approve", "actionName": "Approve",
            "token": token, "result": {"summary": "benchmark", "status": "Rejected"},
        }),
    )
    .await?;
    Ok(())
}

/// Waits until `execution` has finished; its source and build actions' durations as the server
/// recorded them.
async fn wait_for_build(
    conn: &Conn,
    pipeline: &str,
    execution: &str,
) -> anyhow::Result<(Duration, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let out = conn
            .call(
                "ListActionExecutions",
                &json!({"pipelineName": pipeline, "filter": {"pipelineExecutionId": execution}}),
            )
            .await?;
        let details = out["actionExecutionDetails"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let took = |name: &str| {
            details
                .iter()
                .find(|d| d["actionName"] == name && d["status"] == "Succeeded")
                .map(|d| {
                    let start = d["startTime"].as_f64().unwrap_or_default();
                    let end = d["lastUpdateTime"].as_f64().unwrap_or_default();
                    Duration::from_secs_f64((end - start).max(0.0))
                })
        };
        if details.iter().any(|d| d["status"] == "Failed") {
            bail!("an action failed: {details:?}");
        }
        if let (Some(source), Some(build)) = (took("Source"), took("BuildAndTest")) {
            return Ok((source, build));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("the execution did not finish within two minutes")
}
