"""Where artifacts live: an S3 API (moto's, on loopback) that the server hands to job workers as
`artifactCredentials`, which a worker of the test's own and `lockgate worker` both use, and
retention, which deletes artifacts older than `[artifacts] retention_days`."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import boto3
import pytest

from conftest import running_server
from helpers import wait_until
from test_local_actions import (APP, BUCKET, Repo, action_detail, pending_token, release_pipeline, repo,  # noqa: F401
                                run_release, start_worker, write_config)

CODECOMMIT = {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.no_local_worker
def test_workers_get_the_s3_store_s_credentials_and_artifacts_travel_through_it(tmp_path, request, repo, moto, make_boto3_client_for):
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    config = write_config(tmp_path, repo)
    config.write_text(config.read_text() + (
        f'[artifacts.s3]\nendpoint = "{moto}"\naccess_key_id = "testing"\nsecret_access_key = "testing"\n'
    ))
    with running_server(tmp_path, request, config_path=config) as server:
        cp = make_boto3_client_for(server)
        repo.commit(APP, "Add the app")
        cp.create_pipeline(pipeline=release_pipeline("release", tmp_path / "never"))

        # A worker of the test's own takes the source job: its data names the artifact's place in
        # the S3 store and the credentials to write it with, as CodePipeline's jobs do.
        job = wait_until(lambda: (cp.poll_for_jobs(actionTypeId=CODECOMMIT, maxBatchSize=1)["jobs"] or [None])[0],
                         "the source job")
        credentials = job["data"]["artifactCredentials"]
        assert credentials["accessKeyId"] == "testing" and credentials["secretAccessKey"] == "testing"
        location = job["data"]["outputArtifacts"][0]["location"]["s3Location"]
        assert location["bucketName"] == BUCKET
        cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
        writer = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                              aws_access_key_id=credentials["accessKeyId"],
                              aws_secret_access_key=credentials["secretAccessKey"])
        writer.put_object(Bucket=location["bucketName"], Key=location["objectKey"], Body=zipped(APP))
        cp.put_job_success_result(jobId=job["id"], currentRevision={"revision": "r1", "changeIdentifier": "r1"},
                                  outputVariables={"CommitId": "r1"})

        # `lockgate worker`, configured with the same S3 store, runs the build from it.
        worker, log_path = start_worker(server, tmp_path)
        try:
            wait_until(lambda: pending_token(cp, "release"), "the approval", timeout=60, interval=0.2)
        finally:
            worker.terminate()
            worker.wait(30)
        execution_id = cp.list_pipeline_executions(pipelineName="release")["pipelineExecutionSummaries"][0][
            "pipelineExecutionId"]
        build = action_detail(cp, "release", execution_id, "Build")
        assert build["output"]["outputVariables"] == {"VERSION": "1.4.2"}, log_path.read_text()
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert any(k.startswith("release/BuildOutput/") for k in keys), keys
        assert f"release/logs/{build['actionExecutionId']}" in keys, keys
        built = s3.get_object(Bucket=BUCKET, Key=next(k for k in keys if k.startswith("release/BuildOutput/")))
        with zipfile.ZipFile(io.BytesIO(built["Body"].read())) as z:
            assert sorted(z.namelist()) == ["dist/VERSION", "dist/app.txt"]


def test_artifacts_older_than_the_retention_are_deleted(tmp_path, request, repo, make_boto3_client_for):
    config = write_config(tmp_path, repo)
    config.write_text(config.read_text() + "[artifacts]\nretention_days = 1\n")
    with running_server(tmp_path, request, config_path=config) as server:
        cp = make_boto3_client_for(server)
        run_release(cp, repo, tmp_path)
        wait_until(lambda: pending_token(cp, "release"), "the approval", timeout=60, interval=0.1)
        store = server.data_dir / "artifacts" / BUCKET / "release"
        source = next((store / "SourceOutput").iterdir())
        build = next((store / "BuildOutput").iterdir())
        two_days_ago = time.time() - 2 * 24 * 3600
        os.utime(source, (two_days_ago, two_days_ago))

        # Retention runs when the server starts and every hour after.
        server.stop()
        server.start()
        wait_until(lambda: not source.exists(), "the old artifact to be deleted", timeout=30, interval=0.1)
        assert build.exists()
        assert "artifact retention deleted old artifacts" in server.log()
