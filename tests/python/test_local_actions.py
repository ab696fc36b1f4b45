"""Actions Lockgate runs itself: a CodeCommit source fetched with git from a repository the test
makes, Commands actions run by /bin/sh with their variables and artifacts, a manual approval
that shows what the build exported, and the same jobs taken by `lockgate worker` in a second
process while the server's own worker is off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (ACCESS_KEY_ID, ACCOUNT_ID, REGION, SECRET_ACCESS_KEY, USER_NAME, lockgate_binary,
                      running_server)
from helpers import ROLE_ARN, wait_for_execution_status, wait_until

BUCKET = "lockgate-artifacts"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


class Repo:
    """A bare repository (what the server fetches) and a working copy the test commits in."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / "my-app.git"
        self.work = root / "work"
        git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git(root, "clone", "--quiet", str(self.bare), str(self.work))
        git(self.work, "checkout", "--quiet", "-B", "main")

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path / "git")


HOOK_SECRET = "hook-secret-for-tests"


def write_config(tmp_path: Path, repo: Repo, poll_seconds: int = 0) -> Path:
    path = tmp_path / "lockgate.toml"
    path.write_text(
        f'[[repositories]]\nname = "my-app"\nurl = "{repo.bare}"\nhook_secret = "{HOOK_SECRET}"\n'
        f"[worker]\nconcurrency = 2\n[triggers]\npoll_seconds = {poll_seconds}\n"
    )
    return path


@pytest.fixture
def server(tmp_path, repo, request):
    """A server that knows the repository `my-app` (polling every `poll_seconds` marker's
    seconds, or not at all)."""
    marker = request.node.get_closest_marker("poll_seconds")
    config = write_config(tmp_path, repo, marker.args[0] if marker else 0)
    with running_server(tmp_path, request, config_path=config) as s:
        yield s


@pytest.fixture
def cp(server, make_boto3_client_for):
    return make_boto3_client_for(server)


def commands_action(name: str, commands: list[str], inputs: list[str], outputs: list[dict] | None = None,
                    **extra) -> dict:
    action = {
        "name": name,
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": commands,
        "inputArtifacts": [{"name": n} for n in inputs],
        "runOrder": 1,
    }
    if outputs:
        action["outputArtifacts"] = outputs
    action.update(extra)
    return action


def release_pipeline(name: str, target: Path, build_commands: list[str] | None = None,
                     detect_changes: bool = False) -> dict:
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "my-app", "BranchName": "main", "PollForSourceChanges": str(detect_changes).lower()},
        "outputArtifacts": [{"name": "SourceOutput"}],
        "namespace": "SourceVariables",
        "runOrder": 1,
    }
    build = commands_action(
        "Build",
        build_commands or [
            "sh test.sh",
            "VERSION=$(cat VERSION)",
            "mkdir -p dist && cp app.txt VERSION dist/",
        ],
        ["SourceOutput"],
        [{"name": "BuildOutput", "files": ["dist/**/*"]}],
        outputVariables=["VERSION"],
        namespace="Build",
    )
    approve = {
        "name": "Approve",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "configuration": {"CustomData": "Deploy #{Build.VERSION} (#{SourceVariables.CommitId})"},
        "runOrder": 1,
    }
    deploy = commands_action(
        "Deploy",
        ["mkdir -p \"$TARGET\"", "cp -R dist/. \"$TARGET/\"", "echo \"deployed $VERSION\""],
        ["BuildOutput"],
        environmentVariables=[{"name": "TARGET", "value": str(target), "type": "PLAINTEXT"},
                              {"name": "VERSION", "value": "#{Build.VERSION}", "type": "PLAINTEXT"}],
    )
    return {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": BUCKET},
        "pipelineType": "V2",
        "executionMode": "QUEUED",
        "stages": [
            {"name": "Source", "actions": [source]},
            {"name": "Build", "actions": [build]},
            {"name": "Approve", "actions": [approve]},
            {"name": "Deploy", "actions": [deploy]},
        ],
    }


APP = {
    "app.txt": "hello\n",
    "VERSION": "1.4.2\n",
    "test.sh": "grep -q hello app.txt && echo 'tests passed'\n",
}


def action_detail(cp, pipeline: str, execution_id: str, action: str) -> dict | None:
    details = cp.list_action_executions(
        pipelineName=pipeline, filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    return next((d for d in details if d["actionName"] == action), None)


def wait_for_action(cp, pipeline: str, execution_id: str, action: str, status: str, timeout: float = 60):
    def probe():
        d = action_detail(cp, pipeline, execution_id, action)
        return d if d and d["status"] == status else None

    return wait_until(probe, f"{action} to be {status}", timeout, interval=0.1)


def pending_token(cp, pipeline: str, stage: str = "Approve") -> str | None:
    state = cp.get_pipeline_state(name=pipeline)
    for s in state["stageStates"]:
        if s["stageName"] == stage:
            latest = s["actionStates"][0].get("latestExecution") or {}
            if latest.get("status") == "InProgress":
                return latest.get("token")
    return None


def run_release(cp, repo: Repo, tmp_path: Path, pipeline: str = "release") -> tuple[str, str, Path]:
    commit = repo.commit(APP, "Add the app\n\nWith its tests.")
    target = tmp_path / "deployed"
    cp.create_pipeline(pipeline=release_pipeline(pipeline, target))
    summaries = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName=pipeline)["pipelineExecutionSummaries"],
        "the first execution",
    )
    execution_id = summaries[0]["pipelineExecutionId"]
    return commit, execution_id, target


def console_opener(server):
    """A urllib opener signed in to the console as Bob (cookies kept)."""
    import http.cookiejar
    import re as _re
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{server.endpoint}/console/signin").read().decode()
    token = _re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "next": "/console/pipelines", "username": USER_NAME,
                                   "password": "correct-horse-battery-staple"}).encode()
    opener.open(f"{server.endpoint}/console/signin", data=body).read()
    return opener


def test_a_commit_is_fetched_built_approved_and_deployed(server, cp, repo, tmp_path):
    commit, execution_id, target = run_release(cp, repo, tmp_path)
    token = wait_until(lambda: pending_token(cp, "release"), "the approval", timeout=60, interval=0.1)

    execution = cp.get_pipeline_execution(pipelineName="release", pipelineExecutionId=execution_id)[
        "pipelineExecution"]
    revision = execution["artifactRevisions"][0]
    assert revision["revisionId"] == commit
    assert revision["revisionSummary"].startswith("Add the app")

    source = action_detail(cp, "release", execution_id, "Source")
    assert source["output"]["outputVariables"]["CommitId"] == commit
    assert source["output"]["outputVariables"]["BranchName"] == "main"
    assert source["output"]["outputVariables"]["RepositoryName"] == "my-app"
    build = action_detail(cp, "release", execution_id, "Build")
    assert build["status"] == "Succeeded", build
    assert build["output"]["outputVariables"] == {"VERSION": "1.4.2"}

    approve = action_detail(cp, "release", execution_id, "Approve")
    assert approve["input"]["resolvedConfiguration"]["CustomData"] == f"Deploy 1.4.2 ({commit})"

    # The build's output is kept with it, on the console page its externalExecutionUrl names.
    url = build["output"]["executionResult"]["externalExecutionUrl"]
    assert url.startswith(f"{server.endpoint}/console/pipelines/release/executions/{execution_id}/actions/"), url
    page = console_opener(server).open(url).read().decode()
    assert "[Container] Running command sh test.sh" in page, page
    assert "tests passed" in page and "[Lockgate] The action succeeded" in page, page

    cp.put_approval_result(pipelineName="release", stageName="Approve", actionName="Approve",
                           result={"summary": "ship it", "status": "Approved"}, token=token)
    wait_for_execution_status(cp, "release", execution_id, "Succeeded", timeout=60)
    assert (target / "app.txt").read_text() == "hello\n"
    assert (target / "VERSION").read_text() == "1.4.2\n"
    deploy = action_detail(cp, "release", execution_id, "Deploy")
    assert deploy["output"]["executionResult"]["externalExecutionSummary"].startswith("Ran 3 commands")


def test_a_failing_command_fails_the_action_with_its_exit_status_and_output(cp, repo, tmp_path):
    repo.commit(APP, "Add the app")
    pipeline = release_pipeline("failing", tmp_path / "never",
                                build_commands=["echo compiling", "echo 'error: boom' >&2; exit 3", "echo never"])
    cp.create_pipeline(pipeline=pipeline)
    execution_id = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName="failing")["pipelineExecutionSummaries"],
        "the first execution")[0]["pipelineExecutionId"]
    wait_for_execution_status(cp, "failing", execution_id, "Failed", timeout=60)
    build = action_detail(cp, "failing", execution_id, "Build")
    assert build["status"] == "Failed"
    state = cp.get_pipeline_state(name="failing")
    error = state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]
    message = error["message"]
    assert "echo 'error: boom' >&2; exit 3" in message and "exit status 3" in message, message
    assert "error: boom" in message and "compiling" in message, message
    assert "never" not in message.split("Last output:")[1], message


def test_stopping_an_execution_kills_the_running_commands(cp, repo, tmp_path):
    repo.commit(APP, "Add the app")
    pid_file = tmp_path / "pids"
    pipeline = release_pipeline("stopped", tmp_path / "never", build_commands=[
        f"sleep 300 & echo $! >> {pid_file}",
        f"echo $$ >> {pid_file}; sleep 300",
    ])
    cp.create_pipeline(pipeline=pipeline)
    execution_id = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName="stopped")["pipelineExecutionSummaries"],
        "the first execution")[0]["pipelineExecutionId"]
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2,
               "the commands to start", timeout=60, interval=0.1)
    pids = [int(p) for p in pid_file.read_text().split()]
    cp.stop_pipeline_execution(pipelineName="stopped", pipelineExecutionId=execution_id, abandon=True,
                               reason="wrong commit")

    def gone():
        for pid in pids:
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                continue
        return True

    wait_until(gone, "the build's processes to be killed", timeout=30, interval=0.2)
    wait_for_execution_status(cp, "stopped", execution_id, "Stopped", timeout=30)


def worker_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCKGATE_"))}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1")
    return env


def start_worker(server, tmp_path: Path, config: Path | None = None,
                 job_timeout_seconds: int | None = None) -> tuple[subprocess.Popen, Path]:
    """`lockgate worker` in its own process, sharing the server's artifact directory."""
    log_path = tmp_path / "worker.log"
    extra = ["--job-timeout-seconds", str(job_timeout_seconds)] if job_timeout_seconds else []
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [str(lockgate_binary()), "worker", "--endpoint-url", server.endpoint, "--region", REGION,
             "--config", str(config or server.config_path), "--data-dir", str(tmp_path / "worker-data"),
             "--artifacts-dir", str(server.data_dir / "artifacts"), "--poll-seconds", "1", *extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=worker_env(),
        )
    return worker, log_path


@pytest.mark.no_local_worker
def test_a_worker_in_another_process_takes_the_jobs(server, cp, repo, tmp_path):
    commit, execution_id, target = run_release(cp, repo, tmp_path)
    # Nobody runs the source while the server's own worker is off.
    time.sleep(0.5)
    source = action_detail(cp, "release", execution_id, "Source")
    assert source is None or source["status"] == "InProgress"

    worker, log_path = start_worker(server, tmp_path)
    try:
        token = wait_until(lambda: pending_token(cp, "release"), "the approval", timeout=60, interval=0.2)
        build = action_detail(cp, "release", execution_id, "Build")
        assert build["output"]["outputVariables"] == {"VERSION": "1.4.2"}
        cp.put_approval_result(pipelineName="release", stageName="Approve", actionName="Approve",
                               result={"summary": "ok", "status": "Approved"}, token=token)
        wait_for_execution_status(cp, "release", execution_id, "Succeeded", timeout=60)
        assert (target / "VERSION").read_text() == "1.4.2\n"
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
        print(log_path.read_text())
    assert code == 0


def start_long_build(cp, repo: Repo, tmp_path: Path, pipeline: str, pid_file: Path | None = None) -> str:
    """Creates a pipeline whose build runs for five minutes (writing its shell's pid, which is
    its process group, to `pid_file`); returns its execution once the build's commands have
    started."""
    repo.commit(APP, "Add the app")
    marker = tmp_path / "building"
    pid = [f"echo $$ > {pid_file}"] if pid_file else []
    cp.create_pipeline(pipeline=release_pipeline(pipeline, tmp_path / "never", build_commands=[
        *pid, f"echo building; touch {marker}", "sleep 300",
    ]))
    execution_id = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName=pipeline)["pipelineExecutionSummaries"],
        "the first execution")[0]["pipelineExecutionId"]
    wait_until(marker.exists, "the build to start", timeout=60, interval=0.1)
    return execution_id


# A job timeout of a few seconds: runs longer than a third of it carry on under continuation
# jobs, and a worker that stops is noticed within it.
SHORT_JOB_TIMEOUT = 6


def build_summary(cp, pipeline: str) -> str:
    """What the Build action's latest execution says about itself in GetPipelineState."""
    state = cp.get_pipeline_state(name=pipeline)
    latest = state["stageStates"][1]["actionStates"][0].get("latestExecution") or {}
    return latest.get("summary") or ""


def wait_until_continued(cp, pipeline: str) -> str:
    """Waits until the Build action reports progress from a continuation; returns the summary."""
    return wait_until(lambda: "Running for" in build_summary(cp, pipeline) and build_summary(cp, pipeline),
                      "the build to report its progress", timeout=30, interval=0.2)


def test_a_long_command_carries_on_under_continuation_jobs_past_the_job_timeout(server, cp, repo, tmp_path):
    server.restart(env={"LOCKGATE_WORKER__JOB_TIMEOUT_SECONDS": str(SHORT_JOB_TIMEOUT)})
    repo.commit(APP, "Add the app")
    cp.create_pipeline(pipeline=release_pipeline("long", tmp_path / "never", build_commands=[
        "echo compiling", "sleep 8", "VERSION=$(cat VERSION)",
    ]))
    execution_id = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName="long")["pipelineExecutionSummaries"],
        "the first execution")[0]["pipelineExecutionId"]
    # Past a third of the job timeout the run hands its job back with a continuation token and
    # its progress shows with the action.
    summary = wait_until_continued(cp, "long")
    assert "(pid " in summary, summary
    # It outlives the job timeout, and its outcome, exported variables included, arrives
    # through whichever continuation job is current when it ends.
    wait_until(lambda: pending_token(cp, "long"), "the approval", timeout=60, interval=0.2)
    build = action_detail(cp, "long", execution_id, "Build")
    assert build["status"] == "Succeeded", build
    assert build["output"]["outputVariables"] == {"VERSION": "1.4.2"}
    log = (server.data_dir / "artifacts" / BUCKET / "long" / "logs" / build["actionExecutionId"]).read_text()
    assert "carries on under continuation jobs" in log, log


@pytest.mark.no_local_worker
@pytest.mark.parametrize("continued", [False, True], ids=["holding-its-job", "continued"])
def test_sigterm_stops_a_worker_cleanly_and_fails_what_it_could_not_finish(server, cp, repo, tmp_path, continued):
    config = tmp_path / "worker.toml"
    config.write_text(server.config_path.read_text().replace("[worker]\n", "[worker]\ngrace_seconds = 1\n"))
    if continued:
        server.restart(env={"LOCKGATE_WORKER__JOB_TIMEOUT_SECONDS": str(SHORT_JOB_TIMEOUT)})
    worker, log_path = start_worker(server, tmp_path, config,
                                    job_timeout_seconds=SHORT_JOB_TIMEOUT if continued else None)
    execution_id = start_long_build(cp, repo, tmp_path, "long")
    if continued:
        wait_until_continued(cp, "long")
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, log_path.read_text()
    assert time.monotonic() - started < 15
    wait_for_execution_status(cp, "long", execution_id, "Failed", timeout=30)
    state = cp.get_pipeline_state(name="long")
    error = state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]["message"]
    assert "The job worker was stopped before the job finished" in error, error


@pytest.mark.no_local_worker
def test_a_worker_killed_mid_job_is_noticed_within_the_job_timeout(server, cp, repo, tmp_path):
    server.restart(env={"LOCKGATE_WORKER__JOB_TIMEOUT_SECONDS": str(SHORT_JOB_TIMEOUT)})
    worker, log_path = start_worker(server, tmp_path, job_timeout_seconds=SHORT_JOB_TIMEOUT)
    pid_file = tmp_path / "build.pid"
    execution_id = start_long_build(cp, repo, tmp_path, "orphan", pid_file=pid_file)
    wait_until_continued(cp, "orphan")
    worker.kill()
    worker.wait(15)
    try:
        # The job the dead worker held (or the continuation nobody takes) times out: the action
        # fails within the job timeout, not the action's 24 hours.
        killed = time.monotonic()
        wait_for_execution_status(cp, "orphan", execution_id, "Failed", timeout=4 * SHORT_JOB_TIMEOUT)
        assert time.monotonic() - killed <= 2 * SHORT_JOB_TIMEOUT + 2
        build = action_detail(cp, "orphan", execution_id, "Build")
        assert build["status"] == "Failed", build
        state = cp.get_pipeline_state(name="orphan")
        error = state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]
        assert error["code"] == "JobTimedOut", error
        assert "job timeout (6 s)" in error["message"], error
    finally:
        # A worker killed with -9 cannot kill what it started.
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.no_local_worker
def test_a_continuation_job_taken_by_another_worker_fails_when_the_run_s_worker_stops_beating(
        server, cp, repo, tmp_path):
    """The test plays a worker that started a long run, handed its job back with a
    continuation token and died; `lockgate worker` takes the continuation job, reads the run's
    record and, seeing its heartbeat stand still, fails the action naming the dead worker."""
    server.restart(env={"LOCKGATE_WORKER__JOB_TIMEOUT_SECONDS": str(SHORT_JOB_TIMEOUT)})
    repo.commit(APP, "Add the app")
    cp.create_pipeline(pipeline=release_pipeline("handed", tmp_path / "never", build_commands=["sleep 300"]))
    execution_id = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName="handed")["pipelineExecutionSummaries"],
        "the first execution")[0]["pipelineExecutionId"]

    def take(provider: str, category: str) -> dict:
        action_type = {"category": category, "owner": "AWS", "provider": provider, "version": "1"}
        job = wait_until(lambda: cp.poll_for_jobs(actionTypeId=action_type, maxBatchSize=1)["jobs"],
                         f"the {provider} job")[0]
        assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
        return job

    cp.put_job_success_result(jobId=take("CodeCommit", "Source")["id"])
    job = take("Commands", "Compute")
    context = job["data"]["pipelineContext"]
    record = (server.data_dir / "artifacts" / BUCKET / "handed" / "runs" /
              context["action"]["actionExecutionId"])
    record.parent.mkdir(parents=True, exist_ok=True)
    token = f"lockgate-run/{job['id']}"
    record.write_text(json.dumps({"token": token, "worker": "build-7 (pid 4242)", "beat": 1,
                                  "summary": "Running for 2s on build-7 (pid 4242)"}))
    cp.put_job_success_result(jobId=job["id"], continuationToken=token,
                              executionDetails={"summary": "Running for 2s on build-7 (pid 4242)"})
    assert build_summary(cp, "handed") == "Running for 2s on build-7 (pid 4242)"

    worker, log_path = start_worker(server, tmp_path, job_timeout_seconds=SHORT_JOB_TIMEOUT)
    try:
        wait_for_execution_status(cp, "handed", execution_id, "Failed", timeout=4 * SHORT_JOB_TIMEOUT)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log_path.read_text()
    state = cp.get_pipeline_state(name="handed")
    error = state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]
    assert error["code"] == "JobFailed", error
    assert error["message"].startswith(
        "The job worker build-7 (pid 4242) running this action stopped: its run was last heard from"), error


def test_a_command_that_outlives_the_job_timeout_fails_and_is_killed(server, cp, repo, tmp_path):
    server.restart(env={"LOCKGATE_JOB_TIMEOUT_MINUTES": "1"})
    repo.commit(APP, "Add the app")
    pid_file = tmp_path / "pid"
    cp.create_pipeline(pipeline=release_pipeline("slow", tmp_path / "never", build_commands=[
        f"echo $$ > {pid_file}; sleep 300",
    ]))
    execution_id = wait_until(
        lambda: cp.list_pipeline_executions(pipelineName="slow")["pipelineExecutionSummaries"],
        "the first execution")[0]["pipelineExecutionId"]
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), "the command to start",
               timeout=60, interval=0.1)
    pid = int(pid_file.read_text())
    # The job timeout (one minute here) fails the action on the server; the worker learns it at
    # its next AcknowledgeJob and kills the command's process group.
    wait_for_execution_status(cp, "slow", execution_id, "Failed", timeout=120)
    state = cp.get_pipeline_state(name="slow")
    error = state["stageStates"][1]["actionStates"][0]["latestExecution"]["errorDetails"]
    assert error["code"] == "JobTimedOut", error

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True

    wait_until(gone, "the command to be killed", timeout=15, interval=0.2)
