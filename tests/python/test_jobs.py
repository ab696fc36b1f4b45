"""Job workers for custom action types: poll, acknowledge, success, failure and their errors."""

import uuid

from helpers import (
    SOURCE_STAGE,
    SOURCE_TYPE,
    action_state,
    approval_pipeline,
    create_source_action_type,
    execution_status,
    expect_error,
    poll_job,
    wait_for_approval,
    wait_for_execution_status,
)

SOURCE_ACTION = "Checkout"


def source_state(client, pipeline):
    return action_state(client, pipeline, SOURCE_STAGE, SOURCE_ACTION)


def new_pipeline(client, name):
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline(name))
    job = poll_job(client)
    return job, job["data"]["pipelineContext"]["pipelineExecutionId"]


def test_a_worker_polls_acknowledges_and_reports_success_and_the_pipeline_moves_on(client):
    job, execution_id = new_pipeline(client, "Worker")
    data = job["data"]
    assert data["actionTypeId"] == SOURCE_TYPE
    assert data["pipelineContext"]["pipelineName"] == "Worker"
    assert data["pipelineContext"]["stage"]["name"] == SOURCE_STAGE
    assert data["pipelineContext"]["action"]["name"] == SOURCE_ACTION
    assert [a["name"] for a in data["outputArtifacts"]] == ["SourceOutput"]
    assert data["inputArtifacts"] == []
    assert job["accountId"] == "123456789012"
    assert job["nonce"]
    assert client.get_job_details(jobId=job["id"])["jobDetails"]["id"] == job["id"]

    assert client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    # Acknowledging again is harmless and reports the same status.
    assert client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    client.put_job_success_result(
        jobId=job["id"],
        currentRevision={"revision": "abc123", "changeIdentifier": "commit-abc123"},
        executionDetails={"summary": "Checked out abc123", "externalExecutionId": "checkout-1"},
    )

    state = source_state(client, "Worker")
    assert state["latestExecution"]["status"] == "Succeeded"
    assert state["latestExecution"]["summary"] == "Checked out abc123"
    assert state["currentRevision"]["revisionId"] == "abc123"
    assert state["currentRevision"]["revisionChangeId"] == "commit-abc123"
    wait_for_approval(client, "Worker", execution_id)
    expect_error("InvalidJobStateException", client.put_job_success_result, jobId=job["id"])


def test_a_job_is_handed_out_only_once(client):
    job, _ = new_pipeline(client, "Once")
    assert job["id"]
    assert client.poll_for_jobs(actionTypeId=SOURCE_TYPE, maxBatchSize=5)["jobs"] == []


def test_a_job_failure_fails_the_action_the_stage_and_the_execution(client):
    job, execution_id = new_pipeline(client, "JobFails")
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.put_job_failure_result(
        jobId=job["id"], failureDetails={"type": "JobFailed", "message": "checkout failed: disk full"}
    )
    latest = source_state(client, "JobFails")["latestExecution"]
    assert latest["status"] == "Failed"
    assert latest["errorDetails"]["message"] == "checkout failed: disk full"
    wait_for_execution_status(client, "JobFails", execution_id, "Failed")
    expect_error(
        "InvalidJobStateException",
        client.put_job_success_result,
        jobId=job["id"],
        currentRevision={"revision": "late", "changeIdentifier": "late"},
    )
    assert source_state(client, "JobFails")["latestExecution"]["status"] == "Failed"


def test_acknowledging_with_a_wrong_nonce_is_invalid_nonce_and_the_job_is_not_taken(client):
    job, execution_id = new_pipeline(client, "Nonce")
    expect_error("InvalidNonceException", client.acknowledge_job, jobId=job["id"], nonce="not-the-nonce")
    assert source_state(client, "Nonce")["latestExecution"]["status"] == "InProgress"
    assert client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    assert execution_status(client, "Nonce", execution_id) == "InProgress"


def test_an_unknown_job_id_is_job_not_found(client):
    missing = str(uuid.uuid4())
    expect_error("JobNotFoundException", client.acknowledge_job, jobId=missing, nonce="1")
    expect_error("JobNotFoundException", client.get_job_details, jobId=missing)
    expect_error(
        "JobNotFoundException",
        client.put_job_success_result,
        jobId=missing,
        currentRevision={"revision": "r", "changeIdentifier": "c"},
    )
    expect_error(
        "JobNotFoundException",
        client.put_job_failure_result,
        jobId=missing,
        failureDetails={"type": "JobFailed", "message": "no"},
    )


def test_polling_for_an_action_type_that_does_not_exist_is_action_type_not_found(client):
    expect_error(
        "ActionTypeNotFoundException",
        client.poll_for_jobs,
        actionTypeId={"category": "Build", "owner": "Custom", "provider": "Nothing", "version": "1"},
    )


def test_a_continuation_token_keeps_the_action_running_with_a_new_job(client):
    job, execution_id = new_pipeline(client, "Continue")
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.put_job_success_result(jobId=job["id"], continuationToken="step-2")
    assert source_state(client, "Continue")["latestExecution"]["status"] == "InProgress"

    follow_up = poll_job(client)
    assert follow_up["id"] != job["id"]
    assert follow_up["data"]["continuationToken"] == "step-2"
    client.acknowledge_job(jobId=follow_up["id"], nonce=follow_up["nonce"])
    client.put_job_success_result(
        jobId=follow_up["id"], currentRevision={"revision": "r2", "changeIdentifier": "c2"}
    )
    assert source_state(client, "Continue")["latestExecution"]["status"] == "Succeeded"
    wait_for_approval(client, "Continue", execution_id)


def test_stopping_an_execution_waits_for_its_running_job_then_stops(client):
    job, execution_id = new_pipeline(client, "StopWaits")
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.stop_pipeline_execution(pipelineName="StopWaits", pipelineExecutionId=execution_id, reason="Hold")
    assert execution_status(client, "StopWaits", execution_id) == "Stopping"
    expect_error(
        "DuplicatedStopRequestException",
        client.stop_pipeline_execution,
        pipelineName="StopWaits",
        pipelineExecutionId=execution_id,
    )
    client.put_job_success_result(jobId=job["id"], currentRevision={"revision": "r", "changeIdentifier": "c"})
    wait_for_execution_status(client, "StopWaits", execution_id, "Stopped")
    # A stopped execution goes no further: the approval stage never starts.
    approval = action_state(client, "StopWaits")
    assert "latestExecution" not in approval, approval


def test_stopping_and_abandoning_closes_the_running_job(client):
    job, execution_id = new_pipeline(client, "Abandon")
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.stop_pipeline_execution(pipelineName="Abandon", pipelineExecutionId=execution_id, abandon=True)
    wait_for_execution_status(client, "Abandon", execution_id, "Stopped")
    assert source_state(client, "Abandon")["latestExecution"]["status"] == "Abandoned"
    expect_error(
        "InvalidJobStateException",
        client.put_job_success_result,
        jobId=job["id"],
        currentRevision={"revision": "r", "changeIdentifier": "c"},
    )


def test_retrying_a_failed_source_stage_hands_out_a_new_job(client):
    job, execution_id = new_pipeline(client, "RetrySource")
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed", "message": "flaky"})
    wait_for_execution_status(client, "RetrySource", execution_id, "Failed")
    client.retry_stage_execution(
        pipelineName="RetrySource", stageName=SOURCE_STAGE, pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    again = poll_job(client)
    assert again["id"] != job["id"]
    assert again["data"]["pipelineContext"]["pipelineExecutionId"] == execution_id
    client.acknowledge_job(jobId=again["id"], nonce=again["nonce"])
    client.put_job_success_result(jobId=again["id"], currentRevision={"revision": "r", "changeIdentifier": "c"})
    wait_for_approval(client, "RetrySource", execution_id)
