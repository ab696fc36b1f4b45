"""Deadlines: approvals and jobs that time out, including while the server was down.

Approval timeouts are at least five minutes, so these tests move the server's clock instead of
waiting: the server is restarted under libfaketime (`LD_PRELOAD` + `FAKETIME=+8d`), which makes the
deadline overdue at start-up. The boto3 clients sign with the same moved clock, since the server
rejects signatures more than five minutes away from its own time.
"""

import datetime

import botocore.auth
import pytest

from helpers import (
    SOURCE_STAGE,
    action_state,
    approval_pipeline,
    create_source_action_type,
    execution_status,
    expect_error,
    poll_job,
    run_source_job,
    start_approval_pipeline,
    wait_for_approval,
    wait_for_execution_status,
    wait_until,
)

REAL_NOW = botocore.auth.get_current_datetime


@pytest.fixture
def move_clocks(lockgate, monkeypatch):
    """Restarts the server with its clock moved forward, and makes boto3 sign at that time too."""

    def move(server_offset: str, client_offset: datetime.timedelta) -> None:
        assert lockgate.stop() == 0
        lockgate.start_with_clock_offset(server_offset)
        monkeypatch.setattr(
            botocore.auth,
            "get_current_datetime",
            lambda *args, **kwargs: REAL_NOW(*args, **kwargs) + client_offset,
        )

    return move


def answer(client, pipeline, token):
    return client.put_approval_result(
        pipelineName=pipeline, stageName="Approval", actionName="Gate",
        result={"summary": "Too late?", "status": "Approved"}, token=token,
    )


def wait_for_action_status(client, pipeline, status, stage="Approval", action="Gate"):
    return wait_until(
        lambda: (latest := action_state(client, pipeline, stage, action).get("latestExecution"))
        and latest["status"] == status
        and latest,
        f"{stage}/{action} of {pipeline} to be {status}",
    )


def test_an_approval_whose_seven_days_passed_while_the_server_was_down_expires_at_start_up(
    lockgate, client, move_clocks, monkeypatch
):
    execution_id, token = start_approval_pipeline(client, "Expires")
    move_clocks("+8d", datetime.timedelta(days=8))

    latest = wait_for_action_status(client, "Expires", "Failed")
    assert "expired" in latest["summary"].lower(), latest
    assert "token" not in latest, latest
    assert "lastUpdatedBy" not in latest, latest
    wait_for_execution_status(client, "Expires", execution_id, "Failed")
    expect_error("InvalidApprovalTokenException", answer, client, "Expires", token)

    # Back on the real clock, the expiry has stayed expired.
    assert lockgate.stop() == 0
    monkeypatch.undo()
    lockgate.start()
    assert action_state(client, "Expires")["latestExecution"]["status"] == "Failed"
    assert execution_status(client, "Expires", execution_id) == "Failed"
    expect_error("InvalidApprovalTokenException", answer, client, "Expires", token)


def test_a_five_minute_approval_timeout_is_honoured_to_the_minute(lockgate, client, move_clocks):
    create_source_action_type(client)
    tokens = {}
    for name in ("AnsweredInTime", "LeftAlone"):
        client.create_pipeline(pipeline=approval_pipeline(name, timeout_minutes=5))
        run_source_job(client, name)
        tokens[name] = wait_for_approval(client, name)["token"]

    move_clocks("+4m", datetime.timedelta(minutes=4))
    answer(client, "AnsweredInTime", tokens["AnsweredInTime"])
    assert action_state(client, "AnsweredInTime")["latestExecution"]["status"] == "Succeeded"
    assert action_state(client, "LeftAlone")["latestExecution"]["status"] == "InProgress"

    move_clocks("+6m", datetime.timedelta(minutes=6))
    wait_for_action_status(client, "LeftAlone", "Failed")
    assert action_state(client, "AnsweredInTime")["latestExecution"]["status"] == "Succeeded"
    expect_error("InvalidApprovalTokenException", answer, client, "LeftAlone", tokens["LeftAlone"])


def test_a_job_that_outlives_the_job_timeout_fails_its_action(lockgate, client, move_clocks):
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline("SlowJob"))
    job = poll_job(client)
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    execution_id = job["data"]["pipelineContext"]["pipelineExecutionId"]

    # The default job timeout is 24 hours.
    move_clocks("+2d", datetime.timedelta(days=2))
    wait_for_action_status(client, "SlowJob", "Failed", stage=SOURCE_STAGE, action="Checkout")
    wait_for_execution_status(client, "SlowJob", execution_id, "Failed")
    expect_error(
        "InvalidJobStateException",
        client.put_job_success_result,
        jobId=job["id"],
        currentRevision={"revision": "late", "changeIdentifier": "late"},
    )
