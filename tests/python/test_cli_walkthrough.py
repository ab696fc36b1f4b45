"""The README walk-through, run with the real AWS CLI (v1) against a fresh server.

The commands live in `walkthrough/walkthrough.sh` (with `walkthrough/pipeline.json`), which the
README quotes; this test runs that file as it is, then checks the outcome with the CLI too.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, USER_ARN

WALKTHROUGH = Path(__file__).parent / "walkthrough"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SUMMARY = "The new design looks good. Ready to release to customers."


def cli_env(lockgate, aws_cli) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{aws_cli.parent}{os.pathsep}{env.get('PATH', '')}",
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        LOCKGATE_ENDPOINT=lockgate.endpoint,
    )
    return env


def aws(env, cwd, *args) -> dict:
    result = subprocess.run(
        [shutil.which("aws", path=env["PATH"]), *args, "--endpoint-url", env["LOCKGATE_ENDPOINT"], "--output", "json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
    )
    assert result.returncode == 0, f"aws {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_the_readme_walkthrough_approves_my_first_pipeline_with_the_aws_cli(lockgate, aws_cli, tmp_path):
    work = tmp_path / "walkthrough"
    work.mkdir()
    shutil.copy(WALKTHROUGH / "pipeline.json", work / "pipeline.json")
    env = cli_env(lockgate, aws_cli)

    result = subprocess.run(
        ["bash", "-x", str(WALKTHROUGH / "walkthrough.sh")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=work, timeout=300,
    )
    assert result.returncode == 0, f"walkthrough.sh failed:\n{result.stdout}\n{result.stderr}"

    # The answer file the walk-through wrote names the approval it answered.
    answer = json.loads((work / "approvalstage-approved.json").read_text())
    assert answer["pipelineName"] == "MyFirstPipeline"
    assert answer["stageName"] == "MyApprovalStage"
    assert answer["actionName"] == "MyApprovalAction"
    assert UUID.match(answer["token"]), answer
    assert answer["result"] == {"status": "Approved", "summary": SUMMARY}

    state = aws(env, work, "codepipeline", "get-pipeline-state", "--name", "MyFirstPipeline")
    stages = {s["stageName"]: s for s in state["stageStates"]}
    source = stages["Source"]["actionStates"][0]
    assert source["latestExecution"]["status"] == "Succeeded"
    assert source["currentRevision"]["revisionId"] == "v1.0.0"
    approval = stages["MyApprovalStage"]["actionStates"][0]
    assert approval["actionName"] == "MyApprovalAction"
    assert approval["entityUrl"] == "http://example.com"
    latest = approval["latestExecution"]
    assert latest["status"] == "Succeeded"
    assert latest["summary"] == SUMMARY
    assert latest["lastUpdatedBy"] == USER_ARN
    assert "token" not in latest

    executions = aws(env, work, "codepipeline", "list-pipeline-executions", "--pipeline-name", "MyFirstPipeline")
    assert [e["status"] for e in executions["pipelineExecutionSummaries"]] == ["Succeeded"]

    # The same token cannot approve twice.
    again = subprocess.run(
        [shutil.which("aws", path=env["PATH"]), "codepipeline", "put-approval-result",
         "--endpoint-url", lockgate.endpoint, "--cli-input-json", "file://approvalstage-approved.json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=work, timeout=120,
    )
    assert again.returncode != 0
    assert "ApprovalAlreadyCompletedException" in again.stderr, again.stderr
