"""The AWS action catalogue as clients see it: ListActionTypes and GetActionType answer with it,
and a pipeline written for CodePipeline (as CDK synthesises it) is created as it is."""

import json
from pathlib import Path

from helpers import expect_error, take_aws_job

import pytest

# These tests play the job worker for AWS-owned actions themselves.
pytestmark = pytest.mark.no_local_worker

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "crates/lockgate-model/tests/fixtures/pipelines/valid-aws-codecommit-codebuild-approval-s3-deploy.json"
)


def cdk_pipeline() -> dict:
    return json.loads(FIXTURE.read_text())["pipeline"]


def test_list_action_types_shows_the_aws_providers_with_their_properties(client):
    types = client.list_action_types(actionOwnerFilter="AWS")["actionTypes"]
    by_id = {(t["id"]["category"], t["id"]["provider"]): t for t in types}
    for key in [("Source", "CodeCommit"), ("Source", "S3"), ("Build", "CodeBuild"),
                ("Test", "CodeBuild"), ("Deploy", "S3"), ("Compute", "Commands"),
                ("Approval", "Manual")]:
        assert key in by_id, key
    codebuild = by_id[("Build", "CodeBuild")]
    project = next(p for p in codebuild["actionConfigurationProperties"] if p["name"] == "ProjectName")
    assert project["required"] and project["key"] and not project["secret"]
    assert codebuild["inputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 5}
    assert client.list_action_types(actionOwnerFilter="Custom")["actionTypes"] == []


def test_get_action_type_describes_an_aws_provider(client):
    declaration = client.get_action_type(
        category="Deploy", owner="AWS", provider="S3", version="1"
    )["actionType"]
    assert declaration["id"] == {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"}
    assert declaration["executor"]["type"] == "JobWorker"
    optional = {p["name"]: p["optional"] for p in declaration["properties"]}
    assert optional["BucketName"] is False and optional["Extract"] is False
    assert optional["ObjectKey"] is True
    expect_error(
        "ActionTypeNotFoundException",
        client.get_action_type, category="Deploy", owner="AWS", provider="Nowhere", version="1",
    )


def test_a_pipeline_as_cdk_writes_it_is_created_and_read_back_unchanged(client):
    declaration = cdk_pipeline()
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    got = client.get_pipeline(name=declaration["name"])["pipeline"]
    for answer in (created, got):
        assert answer["version"] == 1
        assert answer["stages"] == declaration["stages"], answer["stages"]
    # Its source waits for a worker that runs CodeCommit jobs.
    state = client.get_pipeline_state(name=declaration["name"])
    assert state["stageStates"][0]["latestExecution"]["status"] == "InProgress"
    jobs = client.poll_for_jobs(
        actionTypeId={"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        maxBatchSize=1,
    )["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["data"]["actionConfiguration"]["configuration"]["RepositoryName"] == "my-app"


def test_an_aws_provider_missing_a_required_key_is_refused_as_codepipeline_refuses_it(client):
    declaration = cdk_pipeline()
    del declaration["stages"][1]["actions"][0]["configuration"]["ProjectName"]
    error = expect_error("InvalidActionDeclarationException", client.create_pipeline, pipeline=declaration)
    assert "missing required configuration 'ProjectName'" in error["Error"]["Message"]
    unknown = cdk_pipeline()
    unknown["stages"][0]["actions"][0]["configuration"]["Branch"] = "main"
    error = expect_error("InvalidActionDeclarationException", client.create_pipeline, pipeline=unknown)
    assert "unknown configuration 'Branch'" in error["Error"]["Message"]
    assert client.list_pipelines()["pipelines"] == []


def test_variables_of_a_cdk_pipeline_resolve_for_the_next_job_and_the_reviewer(client):
    declaration = cdk_pipeline()
    client.create_pipeline(pipeline=declaration)
    source = take_aws_job(client, "Source", "CodeCommit")
    client.put_job_success_result(
        jobId=source["id"],
        currentRevision={"revision": "abc123", "changeIdentifier": "abc123"},
        outputVariables={"CommitId": "abc123", "BranchName": "main"},
    )

    build = take_aws_job(client, "Build", "CodeBuild")
    configuration = build["data"]["actionConfiguration"]["configuration"]
    assert json.loads(configuration["EnvironmentVariables"]) == [
        {"name": "COMMIT", "type": "PLAINTEXT", "value": "abc123"}
    ]
    client.put_job_success_result(jobId=build["id"])

    details = client.list_action_executions(pipelineName=declaration["name"])["actionExecutionDetails"]
    approval = next(d for d in details if d["actionName"] == "Approve")
    assert approval["status"] == "InProgress"
    assert approval["input"]["resolvedConfiguration"]["CustomData"] == "Review commit abc123"
    assert approval["input"]["configuration"]["CustomData"] == "Review commit #{SourceVariables.CommitId}"
    # GetPipeline answers the declaration as it was sent, references included.
    got = client.get_pipeline(name=declaration["name"])["pipeline"]
    assert got["stages"] == declaration["stages"]
