"""Pipeline builders, a job worker and polling helpers shared by the boto3 tests."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/LockgatePipelineRole"
SOURCE_TYPE = {"category": "Source", "owner": "Custom", "provider": "LocalSource", "version": "1"}
APPROVAL_TYPE = {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
SOURCE_STAGE = "Source"
APPROVAL_STAGE = "Approval"
APPROVAL_ACTION = "Gate"


def wait_until(probe: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.05):
    """Calls `probe` until it returns something truthy, and returns that; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def expect_error(code: str, call: Callable, *args, **kwargs) -> dict:
    """Runs `call`, asserts it fails with the error `code` and status 400, returns the error."""
    with pytest.raises(ClientError) as excinfo:
        call(*args, **kwargs)
    response = excinfo.value.response
    assert response["Error"]["Code"] == code, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    return response


# -- declarations ------------------------------------------------------------------------------


def create_source_action_type(client) -> None:
    """Creates the custom source type `Source/Custom/LocalSource/1`, whose worker is the test."""
    client.create_custom_action_type(
        category=SOURCE_TYPE["category"],
        provider=SOURCE_TYPE["provider"],
        version=SOURCE_TYPE["version"],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    )


def source_stage() -> dict:
    return {
        "name": SOURCE_STAGE,
        "actions": [
            {
                "name": "Checkout",
                "actionTypeId": SOURCE_TYPE,
                "outputArtifacts": [{"name": "SourceOutput"}],
                "runOrder": 1,
            }
        ],
    }


def approval_action(name: str = APPROVAL_ACTION, timeout_minutes: int | None = None, **configuration) -> dict:
    action = {
        "name": name,
        "actionTypeId": APPROVAL_TYPE,
        "runOrder": 1,
        "configuration": configuration
        or {
            "CustomData": "Review the latest changes and approve or reject.",
            "ExternalEntityLink": "http://example.com/review",
        },
    }
    if timeout_minutes is not None:
        action["timeoutInMinutes"] = timeout_minutes
    return action


def approval_pipeline(name: str, timeout_minutes: int | None = None, stages: list | None = None) -> dict:
    """Source (custom source action) → Approval (manual approval `Gate`) [→ more stages]."""
    return {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "lockgate-artifacts"},
        "stages": [
            source_stage(),
            {"name": APPROVAL_STAGE, "actions": [approval_action(timeout_minutes=timeout_minutes)]},
            *(stages or []),
        ],
    }


# -- reading state -----------------------------------------------------------------------------


def stage_state(client, pipeline: str, stage: str) -> dict:
    state = client.get_pipeline_state(name=pipeline)
    for s in state["stageStates"]:
        if s["stageName"] == stage:
            return s
    raise AssertionError(f"stage {stage} is not in {state}")


def action_state(client, pipeline: str, stage: str = APPROVAL_STAGE, action: str = APPROVAL_ACTION) -> dict:
    for a in stage_state(client, pipeline, stage)["actionStates"]:
        if a["actionName"] == action:
            return a
    raise AssertionError(f"action {action} is not in stage {stage}")


def execution_status(client, pipeline: str, execution_id: str) -> str:
    return client.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]["status"]


def wait_for_execution_status(client, pipeline: str, execution_id: str, status: str, timeout: float = 10.0) -> dict:
    def probe():
        e = client.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)
        return e["pipelineExecution"] if e["pipelineExecution"]["status"] == status else None

    return wait_until(probe, f"execution {execution_id} of {pipeline} to be {status}", timeout)


def latest_execution_id(client, pipeline: str) -> str:
    summaries = client.list_pipeline_executions(pipelineName=pipeline)["pipelineExecutionSummaries"]
    assert summaries, f"{pipeline} has no executions"
    return summaries[0]["pipelineExecutionId"]


def wait_for_approval(client, pipeline: str, execution_id: str | None = None, stage: str = APPROVAL_STAGE,
                      action: str = APPROVAL_ACTION, timeout: float = 10.0) -> dict:
    """Waits until the approval is pending (for `execution_id` when given); returns its latestExecution."""

    def probe():
        stage_s = stage_state(client, pipeline, stage)
        if execution_id and stage_s.get("latestExecution", {}).get("pipelineExecutionId") != execution_id:
            return None
        for a in stage_s["actionStates"]:
            latest = a.get("latestExecution") or {}
            if a["actionName"] == action and latest.get("status") == "InProgress" and latest.get("token"):
                return latest
        return None

    return wait_until(probe, f"a pending approval {stage}/{action} in {pipeline}", timeout)


# -- the job worker ----------------------------------------------------------------------------


def poll_job(client, action_type: dict = SOURCE_TYPE, timeout: float = 10.0) -> dict:
    """Polls until one job for `action_type` is handed out, and returns it."""

    def probe():
        jobs = client.poll_for_jobs(actionTypeId=action_type, maxBatchSize=1)["jobs"]
        return jobs[0] if jobs else None

    return wait_until(probe, f"a job for {action_type}", timeout)


def run_source_job(client, pipeline: str, revision: str = "rev-1") -> dict:
    """Acts as the source worker once: poll, acknowledge, report success with `revision`."""
    job = poll_job(client)
    assert job["data"]["pipelineContext"]["pipelineName"] == pipeline, job
    ack = client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    assert ack["status"] == "InProgress", ack
    client.put_job_success_result(
        jobId=job["id"],
        currentRevision={"revision": revision, "changeIdentifier": f"change-{revision}"},
    )
    return job


def start_approval_pipeline(client, name: str, timeout_minutes: int | None = None,
                            stages: list | None = None, action_type_exists: bool = False) -> tuple[str, str]:
    """Creates the pipeline, runs its source job and waits for the approval.

    Returns (execution id, approval token).
    """
    if not action_type_exists:
        create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline(name, timeout_minutes, stages))
    job = run_source_job(client, name)
    execution_id = job["data"]["pipelineContext"]["pipelineExecutionId"]
    pending = wait_for_approval(client, name, execution_id)
    return execution_id, pending["token"]


def take_aws_job(client, category: str, provider: str) -> dict:
    """Polls for the one job of the AWS-owned action type `category`/`provider` and acknowledges it."""
    jobs = client.poll_for_jobs(
        actionTypeId={"category": category, "owner": "AWS", "provider": provider, "version": "1"},
        maxBatchSize=1,
    )["jobs"]
    assert len(jobs) == 1, f"one {provider} job"
    client.acknowledge_job(jobId=jobs[0]["id"], nonce=jobs[0]["nonce"])
    return jobs[0]
