"""Both wire protocols on one port: what boto3 sends and what comes back."""

import urllib.request

from conftest import CBOR_PATH_PREFIX, make_boto3_client
from helpers import approval_pipeline, create_source_action_type, expect_error


def capture_responses(client) -> list:
    """Records (http_response, parsed) for every call the client makes."""
    seen = []
    client.meta.events.register(
        "after-call.codepipeline",
        lambda http_response, parsed, **_: seen.append((http_response, parsed)),
    )
    return seen


def capture_requests(client) -> list:
    seen = []
    client.meta.events.register("before-send.codepipeline", lambda request, **_: seen.append(request))
    return seen


def test_healthz_answers_ok_without_a_signature(lockgate):
    with urllib.request.urlopen(f"{lockgate.endpoint}/healthz", timeout=5) as response:
        assert response.status == 200
        assert response.read().decode().strip() == "ok"


def test_the_json_client_posts_awsjson_to_the_root_path(lockgate, cbor_data_path):
    client = make_boto3_client(lockgate.endpoint, "json", cbor_data_path)
    requests = capture_requests(client)
    responses = capture_responses(client)
    client.list_pipelines()
    request = requests[-1]
    assert request.url.endswith(lockgate.endpoint.split("//")[1] + "/")
    assert request.headers["X-Amz-Target"] in ("CodePipeline_20150709.ListPipelines", b"CodePipeline_20150709.ListPipelines")
    http_response, _ = responses[-1]
    assert http_response.headers["content-type"] == "application/x-amz-json-1.1"
    assert 'operation="ListPipelines" protocol="awsJson1_1"' in lockgate.log()


def test_the_cbor_client_really_speaks_rpc_v2_cbor_on_the_service_path(lockgate, cbor_data_path):
    client = make_boto3_client(lockgate.endpoint, "cbor", cbor_data_path)
    requests = capture_requests(client)
    responses = capture_responses(client)
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline("CborPipeline"))
    got = client.get_pipeline(name="CborPipeline")
    assert got["pipeline"]["name"] == "CborPipeline"

    request = requests[-1]
    assert request.url == f"{lockgate.endpoint}{CBOR_PATH_PREFIX}GetPipeline"
    body = request.body if isinstance(request.body, bytes) else request.body.encode()
    # A CBOR map (major type 5) holding {"name": ...}, not JSON text.
    assert body[0] & 0xE0 == 0xA0 or body[0] == 0xBF, body[:16]
    http_response, _ = responses[-1]
    assert http_response.headers["content-type"] == "application/cbor"
    assert http_response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert 'operation="GetPipeline" protocol="rpcv2Cbor"' in lockgate.log()
    assert 'protocol="awsJson1_1"' not in lockgate.log()


def test_every_response_carries_a_request_id(client):
    responses = capture_responses(client)
    client.list_pipelines()
    expect_error("PipelineNotFoundException", client.get_pipeline, name="Nowhere")
    ok = responses[0][0].headers.get("x-amzn-requestid")
    assert ok and len(ok) == 36, ok


def test_error_responses_carry_a_request_id_and_a_message(client):
    error = expect_error("PipelineNotFoundException", client.get_pipeline_state, name="Nowhere")
    assert error["Error"]["Message"], error
    assert len(error["ResponseMetadata"]["RequestId"]) == 36, error


def test_an_operation_without_input_works_with_an_empty_body(client):
    # ListPipelines and ListActionTypes need no input; the CBOR client may send no body at all.
    assert client.list_pipelines()["pipelines"] == []
    types = client.list_action_types(actionOwnerFilter="AWS")["actionTypes"]
    assert {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"} in [t["id"] for t in types]
