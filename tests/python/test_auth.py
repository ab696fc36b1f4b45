"""SigV4: the errors AWS answers for unsigned, unknown, wrongly signed and stale requests."""

import datetime

import botocore
import botocore.auth
import pytest

from conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY
from helpers import (
    approval_pipeline,
    create_source_action_type,
    expect_error,
    start_approval_pipeline,
)


def nothing_was_created(client):
    assert client.list_pipelines()["pipelines"] == []


@pytest.fixture
def prepared(client):
    """Bob's client, with the source action type in place so a CreatePipeline could succeed."""
    create_source_action_type(client)
    return client


def test_an_unsigned_request_is_missing_authentication_token(prepared, make_client):
    anonymous = make_client(signature_version=botocore.UNSIGNED)
    expect_error("MissingAuthenticationTokenException", anonymous.create_pipeline, pipeline=approval_pipeline("Anon"))
    expect_error("MissingAuthenticationTokenException", anonymous.list_pipelines)
    nothing_was_created(prepared)


def test_an_unknown_access_key_is_an_unrecognized_client(prepared, make_client):
    stranger = make_client(access_key_id="AKIAUNKNOWNKEY000000", secret_access_key=SECRET_ACCESS_KEY)
    error = expect_error("UnrecognizedClientException", stranger.create_pipeline, pipeline=approval_pipeline("Stranger"))
    assert "security token included in the request is invalid" in error["Error"]["Message"]
    nothing_was_created(prepared)


def test_a_wrong_secret_is_an_invalid_signature(prepared, make_client):
    forger = make_client(access_key_id=ACCESS_KEY_ID, secret_access_key="not-Bobs-secret-at-all-0000000000000000")
    error = expect_error("InvalidSignatureException", forger.create_pipeline, pipeline=approval_pipeline("Forged"))
    assert "signature" in error["Error"]["Message"].lower()
    nothing_was_created(prepared)


def test_a_request_signed_more_than_five_minutes_off_is_an_expired_signature(prepared, make_client, monkeypatch):
    skewed = make_client()
    real = botocore.auth.get_current_datetime

    def ten_minutes_late(*args, **kwargs):
        return real(*args, **kwargs) - datetime.timedelta(minutes=10)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", ten_minutes_late)
    error = expect_error("InvalidSignatureException", skewed.create_pipeline, pipeline=approval_pipeline("Late"))
    assert "expired" in error["Error"]["Message"].lower(), error
    monkeypatch.undo()
    nothing_was_created(prepared)


def test_a_request_signed_for_another_region_is_rejected(prepared, make_client):
    # The credential scope names eu-west-1 while the server answers for us-east-1.
    elsewhere = make_client(region="eu-west-1")
    error = expect_error("InvalidSignatureException", elsewhere.create_pipeline, pipeline=approval_pipeline("Elsewhere"))
    assert "region" in error["Error"]["Message"], error
    nothing_was_created(prepared)


def test_a_user_added_while_stopped_can_approve_and_is_named_as_the_approver(lockgate, client, make_client):
    _, token = start_approval_pipeline(client, "Alice")
    assert lockgate.stop() == 0
    lockgate.add_user("Alice", "AKIALOCKGATETESTALICE", "alice-secret-0123456789abcdefghijklmnopq")
    lockgate.start()
    alice = make_client(access_key_id="AKIALOCKGATETESTALICE", secret_access_key="alice-secret-0123456789abcdefghijklmnopq")
    alice.put_approval_result(
        pipelineName="Alice", stageName="Approval", actionName="Gate",
        result={"summary": "Alice approves", "status": "Approved"}, token=token,
    )
    latest = client.get_pipeline_state(name="Alice")["stageStates"][1]["actionStates"][0]["latestExecution"]
    assert latest["lastUpdatedBy"] == "arn:aws:iam::123456789012:user/Alice"
