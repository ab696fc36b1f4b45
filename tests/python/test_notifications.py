"""Approval notifications against real receivers on loopback: an SMTP server (aiosmtpd), a webhook
receiver (http.server) and moto's SNS API (`moto_server`), with the server configured through a
generated lockgate.toml exactly as an operator would."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from aiosmtpd.controller import Controller

from conftest import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    USER_ARN,
    USER_NAME,
    LockgateServer,
    free_port,
    lockgate_binary,
    make_boto3_client,
)
from helpers import (
    APPROVAL_ACTION,
    APPROVAL_STAGE,
    approval_action,
    create_source_action_type,
    expect_error,
    run_source_job,
    source_stage,
    wait_for_approval,
    wait_until,
    ROLE_ARN,
)

TOPIC = "arn:aws:sns:us-east-1:123456789012:release-approvals"
SECRET = "s3cret"
PUBLIC_URL = "https://lockgate.example.com"
CUSTOM_DATA = "Review the latest changes and approve or reject within seven days."
ENTITY_LINK = "http://example.com/review"
# Fast retries so the tests do not wait: 0.2 s, 0.4 s, then 0.5 s between attempts.
FAST_RETRIES = """
[notifications]
first_retry_seconds = 0.2
max_retry_seconds = 0.5
max_attempts = {max_attempts}
timeout_seconds = 5
"""


# -- receivers ---------------------------------------------------------------------------------


class WebhookReceiver:
    """An HTTP server on loopback that records every POST and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200):
        self.statuses = list(statuses or [])
        self.default = default
        self.requests: list[dict] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.changed:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.title(): v for k, v in self.headers.items()}, "body": body, "status": status}
                    )
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, what: str, timeout: float = 20.0) -> list[dict]:
        """Blocks until `predicate(requests)` holds (woken by each request); returns the requests."""
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.requests), timeout):
                pytest.fail(f"timed out waiting for {what}; received: {self.summary()}")
            return list(self.requests)

    def delivered(self, event: str) -> list[dict]:
        return [r for r in self.requests if r["status"] == 200 and r["headers"].get("X-Lockgate-Event") == event]

    def wait_delivered(self, event: str, timeout: float = 20.0) -> dict:
        self.wait_for(lambda _: self.delivered(event), f"a delivered {event} message", timeout)
        return self.delivered(event)[0]

    def summary(self) -> list:
        return [(r["status"], r["headers"].get("X-Lockgate-Event")) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailSink:
    """aiosmtpd's handler: keeps every message the SMTP server accepts."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.changed:
            self.messages.append(message)
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20.0) -> list:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.messages) >= count, timeout):
                pytest.fail(f"timed out waiting for {count} emails; got {len(self.messages)}")
            return list(self.messages)


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp():
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture
def start_lockgate(tmp_path):
    """Starts Lockgate with the given lockgate.toml text; every server is stopped at the end."""
    servers: list[LockgateServer] = []

    def start(config: str) -> LockgateServer:
        n = len(servers)
        data_dir = tmp_path / f"data{n}"
        data_dir.mkdir()
        config_path = tmp_path / f"lockgate{n}.toml"
        config_path.write_text(config)
        server = LockgateServer(lockgate_binary(), data_dir, tmp_path / f"lockgate{n}.log", config_path)
        server.add_user(USER_NAME, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        running = server.process is not None
        code = server.stop()
        print(f"----- lockgate log ({server.log_path}) -----\n{server.log_tail(120)}")
        if running and code != 0:
            pytest.fail(f"lockgate exited with {code} on SIGTERM", pytrace=False)


def config(*subscriptions: str, smtp_port: int | None = None, max_attempts: int = 5, extra: str = "") -> str:
    text = f'public_url = "{PUBLIC_URL}"\n'
    if smtp_port:
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\nfrom = "lockgate@example.com"\n'
    text += FAST_RETRIES.format(max_attempts=max_attempts) + extra
    text += f'[[topics]]\narn = "{TOPIC}"\nsubscriptions = [\n'
    text += "".join(f"  {s},\n" for s in subscriptions) + "]\n"
    return text


def hook(url: str, secret: str | None = SECRET) -> str:
    return f'{{ protocol = "http", endpoint = "{url}"' + (f', secret = "{secret}"' if secret else "") + " }"


# -- pipelines ---------------------------------------------------------------------------------


def notifying_pipeline(name: str, topic: str = TOPIC, timeout_minutes: int | None = None) -> dict:
    return {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "lockgate-artifacts"},
        "stages": [
            source_stage(),
            {
                "name": APPROVAL_STAGE,
                "actions": [
                    approval_action(
                        timeout_minutes=timeout_minutes,
                        NotificationArn=topic,
                        CustomData=CUSTOM_DATA,
                        ExternalEntityLink=ENTITY_LINK,
                    )
                ],
            },
        ],
    }


def client_for(server: LockgateServer, cbor_data_path):
    return make_boto3_client(server.endpoint, "json", cbor_data_path)


def start_notifying_approval(client, name: str, source_type_exists: bool = False, **kwargs) -> str:
    """Creates the pipeline, runs its source job, waits for the approval; returns its token."""
    if not source_type_exists:
        create_source_action_type(client)
    client.create_pipeline(pipeline=notifying_pipeline(name, **kwargs))
    job = run_source_job(client, name)
    return wait_for_approval(client, name, job["data"]["pipelineContext"]["pipelineExecutionId"])["token"]


def review_link(pipeline: str) -> str:
    return f"{PUBLIC_URL}/console/pipelines/{pipeline}/stages/{APPROVAL_STAGE}/actions/{APPROVAL_ACTION}/review"


def metrics(server: LockgateServer) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def approve(client, pipeline: str, token: str, status: str = "Approved", summary: str = "Ship it"):
    client.put_approval_result(
        pipelineName=pipeline, stageName=APPROVAL_STAGE, actionName=APPROVAL_ACTION,
        result={"summary": summary, "status": status}, token=token,
    )


# -- email -------------------------------------------------------------------------------------


def test_an_approval_emails_the_subject_the_facts_the_review_link_and_the_deadline(start_lockgate, smtp, cbor_data_path):
    server = start_lockgate(config('{ protocol = "email", endpoint = "release-managers@example.com" }', smtp_port=smtp.port))
    client = client_for(server, cbor_data_path)
    token = start_notifying_approval(client, "Mailed")
    execution = client.get_pipeline_state(name="Mailed")["stageStates"][1]["actionStates"][0]["latestExecution"]
    assert execution["token"] == token

    [message] = smtp.wait_for(1)
    assert message["Subject"] == "APPROVAL NEEDED: AWS CodePipeline Mailed for action Gate"
    assert message["From"] == "lockgate@example.com"
    assert message["X-Envelope-To"] == "release-managers@example.com"
    text = message.get_content()
    for fact in (
        "Pipeline name: Mailed",
        f"Awaiting approval in stage: {APPROVAL_STAGE}",
        f"Action name: {APPROVAL_ACTION}",
        f"Additional information: {CUSTOM_DATA}",
        f"Content to review: {ENTITY_LINK}",
        f"Approve or reject: {review_link('Mailed')}",
        "Deadline: This review request will expire on ",
    ):
        assert fact in text, f"{fact!r} is not in:\n{text}"
    # Seven days from now, to the minute, in UTC.
    deadline = text.split("will expire on ")[1].split()[0]
    expected = time.time() + 7 * 24 * 3600
    assert deadline in {time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(expected + d)) for d in (-60, 0, 60)}, deadline


# -- webhooks ----------------------------------------------------------------------------------


def test_a_webhook_gets_the_signed_codepipeline_message_after_a_500_and_a_retry(start_lockgate, cbor_data_path):
    receiver = WebhookReceiver(statuses=[500])
    try:
        server = start_lockgate(config(hook(receiver.url)))
        client = client_for(server, cbor_data_path)
        token = start_notifying_approval(client, "Hooked")

        request = receiver.wait_delivered("approval-needed")
        assert receiver.summary()[:2] == [(500, "approval-needed"), (200, "approval-needed")]
        first, second = receiver.requests[:2]
        # The retry is the same message: same body and delivery id.
        assert first["body"] == second["body"]
        assert first["headers"]["X-Lockgate-Delivery"] == second["headers"]["X-Lockgate-Delivery"]
        body = request["body"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request["headers"]["X-Lockgate-Signature"], expected)
        assert request["headers"]["X-Lockgate-Timestamp"].isdigit()
        assert request["headers"]["Content-Type"] == "application/json"
        message = json.loads(body)
        assert message["region"] == "us-east-1"
        assert message["consoleLink"] == f"{PUBLIC_URL}/console/pipelines/Hooked"
        approval = message["approval"]
        assert approval["pipelineName"] == "Hooked"
        assert approval["stageName"] == APPROVAL_STAGE
        assert approval["actionName"] == APPROVAL_ACTION
        assert approval["token"] == token
        assert approval["customData"] == CUSTOM_DATA
        assert approval["externalEntityLink"] == ENTITY_LINK
        assert approval["approvalReviewLink"] == review_link("Hooked")
        assert len(approval["expires"]) == len("2016-07-07T20:22Z") and approval["expires"].endswith("Z")

        # The row leaves the outbox just after the receiver's answer.
        counts = wait_until(
            lambda: (m := metrics(server))["lockgate_notifications_pending"] == 0 and m,
            "the delivered message to leave the outbox",
        )
        assert counts["lockgate_notifications_delivered_total"] == 1
        assert counts["lockgate_notifications_retries_total"] == 1
        assert counts["lockgate_notifications_pending"] == 0
    finally:
        receiver.close()


def test_webhooks_hear_approvals_and_rejections_with_who_decided(start_lockgate, webhook, cbor_data_path):
    server = start_lockgate(config(hook(webhook.url)))
    client = client_for(server, cbor_data_path)
    approved = start_notifying_approval(client, "Yes")
    rejected = start_notifying_approval(client, "No", source_type_exists=True)
    webhook.wait_for(lambda _: len(webhook.delivered("approval-needed")) == 2, "two approval-needed messages")

    approve(client, "Yes", approved, summary="Looks good")
    approve(client, "No", rejected, status="Rejected", summary="Not this week")

    yes = json.loads(webhook.wait_delivered("approved")["body"])
    assert yes["approval"]["pipelineName"] == "Yes"
    assert yes["result"] == {**yes["result"], "status": "Approved", "summary": "Looks good", "lastUpdatedBy": USER_ARN}
    no = json.loads(webhook.wait_delivered("rejected")["body"])
    assert no["approval"]["pipelineName"] == "No"
    assert no["result"]["status"] == "Rejected"
    assert no["result"]["summary"] == "Not this week"


def test_a_webhook_hears_that_an_approval_expired(start_lockgate, webhook, cbor_data_path):
    server = start_lockgate(config(hook(webhook.url)))
    client = client_for(server, cbor_data_path)
    start_notifying_approval(client, "Late")
    webhook.wait_delivered("approval-needed")

    server.stop()
    server.start_with_clock_offset("+8d")

    expired = json.loads(webhook.wait_delivered("expired")["body"])
    assert expired["approval"]["pipelineName"] == "Late"
    assert expired["result"]["status"] == "Expired"
    assert expired["result"]["lastUpdatedBy"] is None


def test_a_message_pending_when_the_server_is_killed_is_delivered_after_the_restart(start_lockgate, cbor_data_path):
    receiver = WebhookReceiver(default=500)
    try:
        server = start_lockgate(config(hook(receiver.url), max_attempts=1000))
        client = client_for(server, cbor_data_path)
        start_notifying_approval(client, "Crash")
        receiver.wait_for(lambda rs: len(rs) >= 2, "two failed attempts")
        server.kill9()
        receiver.default = 200

        server.start()

        message = json.loads(receiver.wait_delivered("approval-needed")["body"])
        assert message["approval"]["pipelineName"] == "Crash"
    finally:
        receiver.close()


def test_a_message_pending_at_a_clean_shutdown_is_delivered_after_the_restart(start_lockgate, cbor_data_path):
    receiver = WebhookReceiver(default=503)
    try:
        server = start_lockgate(config(hook(receiver.url), max_attempts=1000))
        client = client_for(server, cbor_data_path)
        start_notifying_approval(client, "Paused")
        receiver.wait_for(lambda rs: len(rs) >= 1, "a failed attempt")
        assert server.stop() == 0
        receiver.default = 200

        server.start()

        assert json.loads(receiver.wait_delivered("approval-needed")["body"])["approval"]["pipelineName"] == "Paused"
    finally:
        receiver.close()


def test_a_message_that_never_gets_through_is_kept_as_failed_logged_and_counted(start_lockgate, cbor_data_path):
    receiver = WebhookReceiver(default=500)
    try:
        server = start_lockgate(config(hook(receiver.url), max_attempts=3))
        client = client_for(server, cbor_data_path)
        start_notifying_approval(client, "Unheard")
        receiver.wait_for(lambda rs: len(rs) >= 3, "three attempts")

        counts = wait_until(
            lambda: (m := metrics(server))["lockgate_notifications_failed_total"] == 1 and m,
            "the failure to be counted",
        )
        assert counts["lockgate_notifications_failed"] == 1
        assert counts["lockgate_notifications_pending"] == 0
        assert counts["lockgate_notifications_retries_total"] == 2
        assert "kept as failed" in server.log()
        assert len(receiver.requests) == 3
        # The pipeline itself is unaffected: the approval still waits for an answer.
        assert client.get_pipeline_state(name="Unheard")["stageStates"][1]["latestExecution"]["status"] == "InProgress"
    finally:
        receiver.close()


# -- SNS ---------------------------------------------------------------------------------------


def test_an_sns_subscription_publishes_the_message_to_the_real_topic(start_lockgate, moto, cbor_data_path):
    aws = {"endpoint_url": moto, "region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sns = boto3.client("sns", **aws)
    sqs = boto3.client("sqs", **aws)
    topic_arn = sns.create_topic(Name="release-approvals")["TopicArn"]
    assert topic_arn == TOPIC
    queue_url = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    sns_defaults = f'[sns]\nregion = "us-east-1"\naccess_key_id = "testing"\nsecret_access_key = "testing"\n'
    server = start_lockgate(config(f'{{ protocol = "sns", endpoint = "{moto}" }}', extra=sns_defaults))
    client = client_for(server, cbor_data_path)

    token = start_notifying_approval(client, "Published")

    def received():
        return sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages")

    [delivery] = wait_until(received, "the SNS message in the subscribed queue", timeout=20)
    envelope = json.loads(delivery["Body"])
    assert envelope["TopicArn"] == TOPIC
    assert envelope["Subject"] == "APPROVAL NEEDED: AWS CodePipeline Published for action Gate"
    message = json.loads(envelope["Message"])
    assert message["approval"]["token"] == token
    assert message["approval"]["approvalReviewLink"] == review_link("Published")


# -- validation and the command line -----------------------------------------------------------


def test_a_topic_no_entry_lists_is_accepted_and_kept_as_a_failed_delivery(start_lockgate, webhook, cbor_data_path):
    # CodePipeline accepts any topic; without a catch-all nobody can deliver it, and the message
    # waits as a failed delivery with the reason (the console's Notifications page shows it).
    server = start_lockgate(config(hook(webhook.url)))
    client = client_for(server, cbor_data_path)
    unknown = "arn:aws:sns:us-east-1:123456789012:nobody-listens"
    start_notifying_approval(client, "Deaf", topic=unknown)

    counts = wait_until(
        lambda: (m := metrics(server))["lockgate_notifications_failed_total"] == 1 and m,
        "the undeliverable message to be kept as failed",
    )
    assert counts["lockgate_notifications_delivered_total"] == 0
    assert "names a topic no [[topics]] entry lists" in server.log()
    assert webhook.requests == []


def test_a_catch_all_topic_receives_the_approvals_of_topics_no_entry_lists(start_lockgate, webhook, cbor_data_path):
    catch_all = f'[[topics]]\narn = "*"\nsubscriptions = [{hook(webhook.url)}]\n'
    server = start_lockgate(config(extra=catch_all))
    client = client_for(server, cbor_data_path)
    other = "arn:aws:sns:eu-west-1:123456789012:team-b-approvals"
    token = start_notifying_approval(client, "CaughtAll", topic=other)

    requests = webhook.wait_for(lambda rs: len(rs) >= 1, "the catch-all's message")
    message = json.loads(requests[0]["body"])
    assert message["approval"]["pipelineName"] == "CaughtAll"
    assert message["approval"]["token"] == token
    assert "names a topic no [[topics]] entry lists" not in server.log()


def test_a_configuration_with_an_email_subscription_but_no_smtp_server_stops_the_start(tmp_path):
    config_path = tmp_path / "lockgate.toml"
    config_path.write_text(config('{ protocol = "email", endpoint = "a@example.com" }'))
    result = subprocess.run(
        [str(lockgate_binary()), "serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}",
         "--config", str(config_path)],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "[smtp]" in result.stderr, result.stderr


def test_an_sns_subscription_with_no_keys_anywhere_stops_the_start(tmp_path):
    config_path = tmp_path / "lockgate.toml"
    config_path.write_text(config(f'{{ protocol = "sns", endpoint = "http://127.0.0.1:{free_port()}" }}'))
    # No keys in the file and none in the environment; profiles and roles are not looked at.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [str(lockgate_binary()), "serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}",
         "--config", str(config_path)],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=env,
    )
    assert result.returncode != 0
    assert f"topic {TOPIC}: the sns subscription" in result.stderr, result.stderr
    assert "has no credentials" in result.stderr, result.stderr
    assert "AWS profiles and instance roles are not read" in result.stderr, result.stderr


def test_notify_test_sends_to_every_subscription_and_prints_each_result(tmp_path, smtp, webhook):
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    config_path = tmp_path / "lockgate.toml"
    config_path.write_text(config(
        '{ protocol = "email", endpoint = "ops@example.com" }', hook(webhook.url), hook(dead, secret=None),
        smtp_port=smtp.port,
    ))

    result = subprocess.run(
        [str(lockgate_binary()), "notify", "test", TOPIC, "--config", str(config_path)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )

    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "OK      email:ops@example.com" in lines, result.stdout
    assert f"OK      http:{webhook.url}" in lines, result.stdout
    assert any(line.startswith(f"FAILED  http:{dead}: ") for line in lines), result.stdout
    assert "1 of 3 subscriptions failed" in result.stderr
    [mail] = smtp.wait_for(1)
    assert mail["Subject"] == f"TEST: Lockgate notifications for {TOPIC}"
    [request] = webhook.requests
    assert request["headers"]["X-Lockgate-Event"] == "test"
    assert json.loads(request["body"])["topicArn"] == TOPIC
