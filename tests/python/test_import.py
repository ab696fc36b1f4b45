"""`lockgate pipelines import`: the template AWS CDK synthesised for examples/cdk-release loads
through the server's API with the credentials the AWS CLI would use, and runs: its source and
build go to job workers (this test), the approval shows the resolved variables, and after the
approval the deploy is handed out."""

import json
import os
import subprocess
from pathlib import Path

from conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, lockgate_binary
from helpers import take_aws_job

import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "examples/cdk-release/ReleaseStack.template.json"


def import_file(lockgate, path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        [str(lockgate_binary()), "pipelines", "import", str(path),
         "--endpoint-url", lockgate.endpoint, "--region", REGION],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60,
    )


def run_job(client, category: str, provider: str, **result) -> dict:
    job = take_aws_job(client, category, provider)
    client.put_job_success_result(jobId=job["id"], **result)
    return job


@pytest.mark.no_local_worker
def test_the_cdk_example_imports_and_runs_to_the_approval_and_the_deploy(lockgate, client):
    result = import_file(lockgate, TEMPLATE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "created   pipeline release (version 1) from PipelineC660917D" in lines, result.stdout
    assert any(
        line.startswith("assumed   PipelineC660917D.RoleArn: Fn::GetAtt PipelineRoleD68726F7.Arn")
        for line in lines
    ), result.stdout

    got = client.get_pipeline(name="release")["pipeline"]
    assert [s["name"] for s in got["stages"]] == ["Source", "Build", "Approve", "Deploy"]
    assert got["stages"][1]["actions"][0]["configuration"] == {"ProjectName": "my-app-build"}

    source = run_job(
        client, "Source", "CodeCommit",
        currentRevision={"revision": "abc123", "changeIdentifier": "abc123"},
        outputVariables={"CommitId": "abc123"},
    )
    assert source["data"]["actionConfiguration"]["configuration"]["RepositoryName"] == "my-app"
    run_job(client, "Build", "CodeBuild", outputVariables={"VERSION": "1.0.7"})

    details = client.list_action_executions(pipelineName="release")["actionExecutionDetails"]
    approval = next(d for d in details if d["actionName"] == "Approve")
    assert approval["status"] == "InProgress"
    resolved = approval["input"]["resolvedConfiguration"]
    assert resolved["CustomData"] == "Review commit abc123, version 1.0.7"
    assert resolved["ExternalEntityLink"] == "https://git.example.com/my-app/commit/abc123"

    state = client.get_pipeline_state(name="release")
    token = state["stageStates"][2]["actionStates"][0]["latestExecution"]["token"]
    client.put_approval_result(
        pipelineName="release", stageName="Approve", actionName="Approve",
        result={"summary": "Ship it", "status": "Approved"}, token=token,
    )
    deploy = run_job(client, "Deploy", "S3")
    assert deploy["data"]["actionConfiguration"]["configuration"] == {"BucketName": "my-app-site", "Extract": "true"}
    summaries = client.list_pipeline_executions(pipelineName="release")["pipelineExecutionSummaries"]
    assert summaries[0]["status"] == "Succeeded"

    # Importing again updates the pipeline instead.
    again = import_file(lockgate, TEMPLATE)
    assert again.returncode == 0, again.stderr
    assert "updated   pipeline release (version 2) from PipelineC660917D" in again.stdout.splitlines()


@pytest.mark.no_local_worker
def test_an_import_names_what_it_cannot_convert(lockgate, tmp_path):
    template = json.loads(TEMPLATE.read_text())
    pipeline = template["Resources"]["PipelineC660917D"]["Properties"]
    pipeline["Stages"][1]["Actions"][0]["Configuration"]["ProjectName"] = {"Fn::ImportValue": "shared"}
    path = tmp_path / "Broken.template.json"
    path.write_text(json.dumps(template))
    result = import_file(lockgate, path)
    assert result.returncode != 0
    assert (
        "resource PipelineC660917D, property Stages[1].Actions[0].Configuration.ProjectName: "
        "Fn::ImportValue cannot be resolved outside CloudFormation"
    ) in result.stderr, result.stderr


def test_the_template_in_yaml_imports_the_same_pipeline(lockgate, client, tmp_path):
    import yaml  # awscli's dependency

    path = tmp_path / "ReleaseStack.template.yaml"
    path.write_text(yaml.safe_dump(json.loads(TEMPLATE.read_text()), sort_keys=False))
    result = import_file(lockgate, path)
    assert result.returncode == 0, result.stderr
    assert "created   pipeline release (version 1) from PipelineC660917D" in result.stdout.splitlines()
    got = client.get_pipeline(name="release")["pipeline"]
    assert got["stages"][0]["actions"][0]["configuration"] == {
        "RepositoryName": "my-app", "BranchName": "main", "PollForSourceChanges": "false",
    }


BUILDSPEC = """version: 0.2
env:
  exported-variables:
    - VERSION
phases:
  build:
    commands:
      - VERSION=$(cat VERSION)
      - mkdir -p site && cp index.html site/
artifacts:
  base-directory: site
  files:
    - '**/*'
"""


def test_the_cdk_example_runs_on_lockgate_s_own_executors(tmp_path, request, make_boto3_client_for):
    """The same template, with nobody but Lockgate running its actions: the CodeCommit source is
    a git repository, CodeBuild runs the repository's buildspec.yml, S3 deploys into the
    artifact store's bucket."""
    from conftest import running_server
    from helpers import wait_until
    from test_local_actions import Repo

    repo = Repo(tmp_path / "git")
    commit = repo.commit({"buildspec.yml": BUILDSPEC, "VERSION": "2.0.0\n", "index.html": "<h1>my-app</h1>\n"},
                         "my-app 2.0.0")
    config = tmp_path / "lockgate.toml"
    config.write_text(f'[[repositories]]\nname = "my-app"\nurl = "{repo.bare}"\n')
    with running_server(tmp_path, request, config_path=config) as server:
        cp = make_boto3_client_for(server)
        result = import_file(server, TEMPLATE)
        assert result.returncode == 0, result.stderr

        def approval():
            details = cp.list_action_executions(pipelineName="release")["actionExecutionDetails"]
            a = next((d for d in details if d["actionName"] == "Approve"), None)
            failed = [d for d in details if d["status"] == "Failed"]
            assert not failed, failed
            return a if a and a["status"] == "InProgress" else None

        pending = wait_until(approval, "the approval", timeout=60, interval=0.2)
        assert pending["input"]["resolvedConfiguration"]["CustomData"] == f"Review commit {commit}, version 2.0.0"
        state = cp.get_pipeline_state(name="release")
        token = state["stageStates"][2]["actionStates"][0]["latestExecution"]["token"]
        cp.put_approval_result(pipelineName="release", stageName="Approve", actionName="Approve",
                               result={"summary": "Ship it", "status": "Approved"}, token=token)
        wait_until(lambda: cp.list_pipeline_executions(pipelineName="release")["pipelineExecutionSummaries"][0][
            "status"] == "Succeeded", "the deploy", timeout=60, interval=0.2)
        assert (server.data_dir / "artifacts" / "my-app-site" / "index.html").read_text() == "<h1>my-app</h1>\n"
