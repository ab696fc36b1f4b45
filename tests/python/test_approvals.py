"""The manual approval action: approve, reject, bad answers, stop, supersede, retry, PARALLEL."""

import datetime
import re
import uuid

from conftest import USER_ARN
from helpers import (
    APPROVAL_ACTION,
    APPROVAL_STAGE,
    action_state,
    approval_action,
    approval_pipeline,
    create_source_action_type,
    execution_status,
    expect_error,
    run_source_job,
    stage_state,
    start_approval_pipeline,
    wait_for_approval,
    wait_for_execution_status,
    wait_until,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def answer(client, pipeline, token, status="Approved", summary="Looks good to me",
           stage=APPROVAL_STAGE, action=APPROVAL_ACTION):
    return client.put_approval_result(
        pipelineName=pipeline,
        stageName=stage,
        actionName=action,
        result={"summary": summary, "status": status},
        token=token,
    )


def assert_still_pending(client, pipeline, token):
    latest = action_state(client, pipeline)["latestExecution"]
    assert latest["status"] == "InProgress", latest
    assert latest["token"] == token, latest
    assert "lastUpdatedBy" not in latest, latest
    assert "summary" not in latest, latest


def test_a_pending_approval_shows_a_lowercase_uuid_token_and_the_review_link(client):
    execution_id, token = start_approval_pipeline(client, "Pending")
    assert UUID.match(token), token
    state = action_state(client, "Pending")
    assert state["entityUrl"] == "http://example.com/review"
    assert state["latestExecution"]["status"] == "InProgress"
    stage_latest = stage_state(client, "Pending", APPROVAL_STAGE)["latestExecution"]
    assert stage_latest["pipelineExecutionId"] == execution_id
    assert stage_latest["status"] == "InProgress"
    assert execution_status(client, "Pending", execution_id) == "InProgress"


def test_an_approved_action_succeeds_and_records_the_summary_and_the_approver(client):
    execution_id, token = start_approval_pipeline(client, "Approve")
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    out = answer(client, "Approve", token, summary="Ship it")
    assert out["approvedAt"] >= before, out

    latest = action_state(client, "Approve")["latestExecution"]
    assert latest["status"] == "Succeeded"
    assert latest["summary"] == "Ship it"
    assert latest["lastUpdatedBy"] == USER_ARN
    assert "token" not in latest, latest
    assert stage_state(client, "Approve", APPROVAL_STAGE)["latestExecution"]["status"] == "Succeeded"
    wait_for_execution_status(client, "Approve", execution_id, "Succeeded")


def test_a_rejected_action_fails_the_stage_and_the_execution(client):
    execution_id, token = start_approval_pipeline(client, "Reject")
    answer(client, "Reject", token, status="Rejected", summary="Not this week")

    latest = action_state(client, "Reject")["latestExecution"]
    assert latest["status"] == "Failed"
    assert latest["summary"] == "Not this week"
    assert latest["lastUpdatedBy"] == USER_ARN
    assert stage_state(client, "Reject", APPROVAL_STAGE)["latestExecution"]["status"] == "Failed"
    wait_for_execution_status(client, "Reject", execution_id, "Failed")


def test_an_approval_after_the_answer_is_approval_already_completed_and_changes_nothing(client):
    execution_id, token = start_approval_pipeline(client, "Twice")
    answer(client, "Twice", token, summary="First answer")
    expect_error("ApprovalAlreadyCompletedException", answer, client, "Twice", token, summary="Second answer")
    expect_error("ApprovalAlreadyCompletedException", answer, client, "Twice", token, status="Rejected")
    latest = action_state(client, "Twice")["latestExecution"]
    assert latest["status"] == "Succeeded"
    assert latest["summary"] == "First answer"
    assert execution_status(client, "Twice", execution_id) == "Succeeded"


def test_a_token_that_was_never_issued_is_invalid_and_changes_nothing(client):
    _, token = start_approval_pipeline(client, "WrongToken")
    expect_error("InvalidApprovalTokenException", answer, client, "WrongToken", str(uuid.uuid4()))
    assert_still_pending(client, "WrongToken", token)


def test_a_lower_case_approved_status_is_a_validation_error_and_changes_nothing(client):
    execution_id, token = start_approval_pipeline(client, "LowerCase")
    expect_error("ValidationException", answer, client, "LowerCase", token, status="approved")
    assert_still_pending(client, "LowerCase", token)
    assert execution_status(client, "LowerCase", execution_id) == "InProgress"
    # The same token still works once the status is spelled as the model spells it.
    answer(client, "LowerCase", token, status="Approved")
    assert action_state(client, "LowerCase")["latestExecution"]["status"] == "Succeeded"


def test_a_token_that_is_not_a_uuid_is_a_validation_error(client):
    _, token = start_approval_pipeline(client, "NotUuid")
    expect_error("ValidationException", answer, client, "NotUuid", "not-a-token")
    expect_error("ValidationException", answer, client, "NotUuid", token.upper())
    assert_still_pending(client, "NotUuid", token)


def test_an_unknown_stage_or_action_is_stage_or_action_not_found(client):
    _, token = start_approval_pipeline(client, "Targets")
    expect_error("StageNotFoundException", answer, client, "Targets", token, stage="NoSuchStage")
    expect_error("ActionNotFoundException", answer, client, "Targets", token, action="NoSuchAction")
    assert_still_pending(client, "Targets", token)


def test_stopping_an_execution_abandons_its_pending_approval_and_invalidates_the_token(client):
    execution_id, token = start_approval_pipeline(client, "Stop")
    out = client.stop_pipeline_execution(
        pipelineName="Stop", pipelineExecutionId=execution_id, abandon=False, reason="Release cancelled"
    )
    assert out["pipelineExecutionId"] == execution_id
    wait_for_execution_status(client, "Stop", execution_id, "Stopped")
    latest = action_state(client, "Stop")["latestExecution"]
    assert latest["status"] == "Abandoned", latest
    assert "token" not in latest, latest
    expect_error("InvalidApprovalTokenException", answer, client, "Stop", token)
    expect_error(
        "PipelineExecutionNotStoppableException",
        client.stop_pipeline_execution,
        pipelineName="Stop",
        pipelineExecutionId=execution_id,
    )
    assert execution_status(client, "Stop", execution_id) == "Stopped"


def test_retrying_a_stopped_approval_stage_asks_again_with_a_new_token(client):
    execution_id, token = start_approval_pipeline(client, "RetryStopped")
    client.stop_pipeline_execution(pipelineName="RetryStopped", pipelineExecutionId=execution_id, abandon=True)
    wait_for_execution_status(client, "RetryStopped", execution_id, "Stopped")
    out = client.retry_stage_execution(
        pipelineName="RetryStopped",
        stageName=APPROVAL_STAGE,
        pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    assert out["pipelineExecutionId"] == execution_id
    new_token = wait_for_approval(client, "RetryStopped", execution_id)["token"]
    assert new_token != token
    assert execution_status(client, "RetryStopped", execution_id) == "InProgress"
    expect_error("InvalidApprovalTokenException", answer, client, "RetryStopped", token)
    answer(client, "RetryStopped", new_token)
    wait_for_execution_status(client, "RetryStopped", execution_id, "Succeeded")


def test_retrying_a_rejected_approval_asks_again_and_the_old_token_is_invalid(client):
    execution_id, token = start_approval_pipeline(client, "RetryRejected")
    answer(client, "RetryRejected", token, status="Rejected", summary="Wrong build")
    wait_for_execution_status(client, "RetryRejected", execution_id, "Failed")
    client.retry_stage_execution(
        pipelineName="RetryRejected",
        stageName=APPROVAL_STAGE,
        pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    new_token = wait_for_approval(client, "RetryRejected", execution_id)["token"]
    assert new_token != token
    expect_error("InvalidApprovalTokenException", answer, client, "RetryRejected", token)
    answer(client, "RetryRejected", new_token, summary="Right build this time")
    wait_for_execution_status(client, "RetryRejected", execution_id, "Succeeded")
    latest = action_state(client, "RetryRejected")["latestExecution"]
    assert latest["summary"] == "Right build this time"


def test_a_stage_that_is_still_running_cannot_be_retried(client):
    execution_id, token = start_approval_pipeline(client, "NotRetryable")
    expect_error(
        "StageNotRetryableException",
        client.retry_stage_execution,
        pipelineName="NotRetryable",
        stageName=APPROVAL_STAGE,
        pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    assert_still_pending(client, "NotRetryable", token)


def test_a_newer_execution_supersedes_an_older_one_waiting_for_the_approval_stage(client):
    first, first_token = start_approval_pipeline(client, "Supersede")

    second = client.start_pipeline_execution(name="Supersede")["pipelineExecutionId"]
    run_source_job(client, "Supersede", revision="rev-2")
    # The approval stage is busy with the first execution: the second waits at the transition.
    wait_until(
        lambda: stage_state(client, "Supersede", "Source")["latestExecution"]["pipelineExecutionId"] == second
        and stage_state(client, "Supersede", "Source")["latestExecution"]["status"] == "Succeeded",
        "the second execution to finish its source stage",
    )
    assert execution_status(client, "Supersede", second) == "InProgress"

    third = client.start_pipeline_execution(name="Supersede")["pipelineExecutionId"]
    run_source_job(client, "Supersede", revision="rev-3")
    wait_for_execution_status(client, "Supersede", second, "Superseded")
    assert execution_status(client, "Supersede", third) == "InProgress"
    # The approval in progress belongs to the first execution and is untouched.
    assert_still_pending(client, "Supersede", first_token)

    answer(client, "Supersede", first_token)
    wait_for_execution_status(client, "Supersede", first, "Succeeded")
    third_token = wait_for_approval(client, "Supersede", third)["token"]
    assert third_token != first_token
    expect_error("ApprovalAlreadyCompletedException", answer, client, "Supersede", first_token)
    answer(client, "Supersede", third_token)
    wait_for_execution_status(client, "Supersede", third, "Succeeded")
    assert execution_status(client, "Supersede", second) == "Superseded"


def test_in_parallel_mode_each_execution_is_approved_with_its_external_execution_id(client):
    create_source_action_type(client)
    declaration = approval_pipeline("Parallel")
    declaration["pipelineType"] = "V2"
    declaration["executionMode"] = "PARALLEL"
    client.create_pipeline(pipeline=declaration)
    first = run_source_job(client, "Parallel", "rev-1")["data"]["pipelineContext"]["pipelineExecutionId"]
    second = client.start_pipeline_execution(name="Parallel")["pipelineExecutionId"]
    run_source_job(client, "Parallel", "rev-2")

    def pending_approval(execution_id):
        details = client.list_action_executions(
            pipelineName="Parallel", filter={"pipelineExecutionId": execution_id}
        )["actionExecutionDetails"]
        for d in details:
            if d["stageName"] == APPROVAL_STAGE and d["status"] == "InProgress":
                return d
        return None

    first_approval = wait_until(lambda: pending_approval(first), "the first execution's approval")
    second_approval = wait_until(lambda: pending_approval(second), "the second execution's approval")
    # GetPipelineState shows no token in PARALLEL mode.
    assert "token" not in (action_state(client, "Parallel").get("latestExecution") or {})

    first_id = first_approval["output"]["executionResult"]["externalExecutionId"]
    second_id = second_approval["output"]["executionResult"]["externalExecutionId"]
    assert first_id != second_id
    answer(client, "Parallel", second_id, status="Rejected", summary="Not the second one")
    wait_for_execution_status(client, "Parallel", second, "Failed")
    assert execution_status(client, "Parallel", first) == "InProgress"
    answer(client, "Parallel", first_id)
    wait_for_execution_status(client, "Parallel", first, "Succeeded")


def test_a_token_presented_for_another_approval_action_is_invalid(client):
    create_source_action_type(client)
    declaration = approval_pipeline("TwoGates")
    declaration["stages"][1]["actions"].append(approval_action("SecondGate"))
    client.create_pipeline(pipeline=declaration)
    execution_id = run_source_job(client, "TwoGates")["data"]["pipelineContext"]["pipelineExecutionId"]
    first = wait_for_approval(client, "TwoGates", execution_id)["token"]
    second = wait_for_approval(client, "TwoGates", execution_id, action="SecondGate")["token"]
    assert first != second

    expect_error("InvalidApprovalTokenException", answer, client, "TwoGates", first, action="SecondGate")
    assert action_state(client, "TwoGates", action="SecondGate")["latestExecution"]["status"] == "InProgress"
    assert_still_pending(client, "TwoGates", first)

    answer(client, "TwoGates", first)
    # The stage waits for its other approval.
    assert execution_status(client, "TwoGates", execution_id) == "InProgress"
    answer(client, "TwoGates", second, action="SecondGate")
    wait_for_execution_status(client, "TwoGates", execution_id, "Succeeded")


def test_a_summary_longer_than_512_characters_is_a_validation_error(client):
    _, token = start_approval_pipeline(client, "LongSummary")
    expect_error("ValidationException", answer, client, "LongSummary", token, summary="x" * 513)
    assert_still_pending(client, "LongSummary", token)
    answer(client, "LongSummary", token, summary="x" * 512)
    assert action_state(client, "LongSummary")["latestExecution"]["summary"] == "x" * 512


def test_an_answer_without_a_result_is_a_validation_error(raw_client):
    _, token = start_approval_pipeline(raw_client, "NoResult")
    expect_error(
        "ValidationException",
        raw_client.put_approval_result,
        pipelineName="NoResult", stageName=APPROVAL_STAGE, actionName=APPROVAL_ACTION, token=token,
    )
    assert_still_pending(raw_client, "NoResult", token)
