"""What survives a kill -9 and a clean SIGTERM restart."""

from conftest import USER_ARN
from helpers import (
    action_state,
    execution_status,
    poll_job,
    start_approval_pipeline,
    wait_for_approval,
    wait_for_execution_status,
    create_source_action_type,
    approval_pipeline,
)


def approve(client, pipeline, token, summary="Approved after the crash"):
    return client.put_approval_result(
        pipelineName=pipeline, stageName="Approval", actionName="Gate",
        result={"summary": summary, "status": "Approved"}, token=token,
    )


def test_a_token_from_before_a_kill_9_still_approves_after_the_restart(lockgate, client):
    execution_id, token = start_approval_pipeline(client, "Crash")
    lockgate.kill9()
    lockgate.start()

    pending = wait_for_approval(client, "Crash", execution_id)
    assert pending["token"] == token
    approve(client, "Crash", token)
    latest = action_state(client, "Crash")["latestExecution"]
    assert latest["status"] == "Succeeded"
    assert latest["summary"] == "Approved after the crash"
    assert latest["lastUpdatedBy"] == USER_ARN
    wait_for_execution_status(client, "Crash", execution_id, "Succeeded")


def test_an_answered_approval_is_not_lost_to_a_kill_9_right_after_the_answer(lockgate, client):
    execution_id, token = start_approval_pipeline(client, "Acked")
    approve(client, "Acked", token, summary="Answered just before the crash")
    lockgate.kill9()
    lockgate.start()

    latest = action_state(client, "Acked")["latestExecution"]
    assert latest["status"] == "Succeeded"
    assert latest["summary"] == "Answered just before the crash"
    assert latest["lastUpdatedBy"] == USER_ARN
    assert execution_status(client, "Acked", execution_id) == "Succeeded"


def test_a_job_handed_out_before_a_kill_9_can_be_finished_after_the_restart(lockgate, client):
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline("JobCrash"))
    job = poll_job(client)
    lockgate.kill9()
    lockgate.start()

    assert client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    client.put_job_success_result(jobId=job["id"], currentRevision={"revision": "r", "changeIdentifier": "c"})
    wait_for_approval(client, "JobCrash", job["data"]["pipelineContext"]["pipelineExecutionId"])


def test_sigterm_stops_the_server_cleanly_and_it_comes_back_with_its_pipelines(lockgate, client):
    execution_id, token = start_approval_pipeline(client, "Clean")
    assert lockgate.stop() == 0
    assert "lockgate stopped" in lockgate.log()
    lockgate.start()

    assert client.get_pipeline(name="Clean")["pipeline"]["version"] == 1
    assert wait_for_approval(client, "Clean", execution_id)["token"] == token
    summaries = client.list_pipeline_executions(pipelineName="Clean")["pipelineExecutionSummaries"]
    assert [s["pipelineExecutionId"] for s in summaries] == [execution_id]
