"""Executions that start when a branch moves: by polling the repository, at once through its push
hook (`POST /hooks/git/<repository>`), filtered by a V2 pipeline's trigger, and a chosen commit
run with StartPipelineExecution's `sourceRevisions`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from helpers import wait_until
from test_local_actions import (APP, HOOK_SECRET, action_detail, cp, release_pipeline,  # noqa: F401
                                repo, server)


def executions(cp, pipeline: str) -> list[dict]:
    return cp.list_pipeline_executions(pipelineName=pipeline)["pipelineExecutionSummaries"]


def wait_for_executions(cp, pipeline: str, n: int, timeout: float = 30) -> list[dict]:
    return wait_until(lambda: (lambda e: e if len(e) >= n else None)(executions(cp, pipeline)),
                      f"{n} executions of {pipeline}", timeout=timeout, interval=0.1)


def wait_until_watched(server) -> None:
    wait_until(lambda: "watching repository my-app for changes" in server.log(),
               "the server to watch my-app", timeout=30, interval=0.1)


def source_revision(cp, pipeline: str, execution_id: str) -> str:
    def probe():
        e = cp.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)["pipelineExecution"]
        revisions = e.get("artifactRevisions") or []
        return revisions[0]["revisionId"] if revisions and revisions[0].get("revisionId") else None

    return wait_until(probe, "the execution's source revision", timeout=30, interval=0.1)


def call_hook(server, secret: str | None, repository: str = "my-app") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    request = urllib.request.Request(f"{server.endpoint}/hooks/git/{repository}", data=b"{}",
                                     method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.poll_seconds(1)
def test_a_push_to_the_watched_branch_starts_an_execution_by_polling(server, cp, repo, tmp_path):
    repo.commit(APP, "First")
    cp.create_pipeline(pipeline=release_pipeline("polled", tmp_path / "out", detect_changes=True))
    first = wait_for_executions(cp, "polled", 1)[0]
    assert first["trigger"]["triggerType"] == "CreatePipeline"
    wait_until_watched(server)

    second_commit = repo.commit({"app.txt": "hello again\n"}, "Second")
    latest = wait_for_executions(cp, "polled", 2)[0]
    assert latest["trigger"]["triggerType"] == "PollForSourceChanges"
    assert "main" in latest["trigger"]["triggerDetail"] and second_commit in latest["trigger"]["triggerDetail"]
    assert source_revision(cp, "polled", latest["pipelineExecutionId"]) == second_commit


def test_the_push_hook_starts_an_execution_at_once_and_needs_its_secret(server, cp, repo, tmp_path):
    repo.commit(APP, "First")
    cp.create_pipeline(pipeline=release_pipeline("hooked", tmp_path / "out", detect_changes=True))
    wait_for_executions(cp, "hooked", 1)
    wait_until_watched(server)

    commit = repo.commit({"app.txt": "pushed\n"}, "Pushed")
    status, body = call_hook(server, "wrong")
    assert status == 401, body
    status, body = call_hook(server, None)
    assert status == 401, body
    assert call_hook(server, HOOK_SECRET, repository="unknown")[0] == 404
    assert len(executions(cp, "hooked")) == 1

    status, body = call_hook(server, HOOK_SECRET)
    assert status == 200, body
    assert body["moved"] == [{"ref": "refs/heads/main", "commit": commit}]
    assert [s["pipeline"] for s in body["started"]] == ["hooked"]
    latest = executions(cp, "hooked")[0]
    assert latest["pipelineExecutionId"] == body["started"][0]["pipelineExecutionId"]
    assert latest["trigger"]["triggerType"] == "Webhook"
    assert source_revision(cp, "hooked", latest["pipelineExecutionId"]) == commit

    # Nothing moved since: calling again starts nothing.
    status, body = call_hook(server, HOOK_SECRET)
    assert status == 200 and body["started"] == [] and body["moved"] == []


def test_a_v2_trigger_s_file_path_filter_decides_which_pushes_start(server, cp, repo, tmp_path):
    repo.commit(APP, "First")
    pipeline = release_pipeline("filtered", tmp_path / "out")
    pipeline["triggers"] = [{
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {
            "sourceActionName": "Source",
            "push": [{"branches": {"includes": ["main", "release/*"]},
                      "filePaths": {"includes": ["**"], "excludes": ["docs/**"]}}],
        },
    }]
    cp.create_pipeline(pipeline=pipeline)
    wait_for_executions(cp, "filtered", 1)
    wait_until_watched(server)

    repo.commit({"docs/guide.md": "words\n"}, "Docs only")
    status, body = call_hook(server, HOOK_SECRET)
    assert status == 200 and len(body["moved"]) == 1 and body["started"] == [], body

    commit = repo.commit({"app.txt": "changed\n"}, "Code")
    status, body = call_hook(server, HOOK_SECRET)
    assert [s["pipeline"] for s in body["started"]] == ["filtered"], body
    latest = executions(cp, "filtered")[0]
    assert latest["trigger"]["triggerType"] == "WebhookV2"
    assert source_revision(cp, "filtered", latest["pipelineExecutionId"]) == commit


def test_start_pipeline_execution_runs_a_chosen_commit(server, cp, repo, tmp_path):
    old = repo.commit(APP, "Old")
    repo.commit({"app.txt": "new\n"}, "New")
    cp.create_pipeline(pipeline=release_pipeline("chosen", tmp_path / "out"))
    wait_for_executions(cp, "chosen", 1)
    started = cp.start_pipeline_execution(
        name="chosen",
        sourceRevisions=[{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": old}],
    )["pipelineExecutionId"]
    assert source_revision(cp, "chosen", started) == old
    source = wait_until(lambda: (lambda d: d if d and d["status"] == "Succeeded" else None)(
        action_detail(cp, "chosen", started, "Source")), "the source", timeout=30)
    assert source["output"]["outputVariables"]["CommitMessage"] == "Old"


def test_a_push_right_after_the_pipeline_was_created_is_not_missed(server, cp, repo, tmp_path):
    repo.commit(APP, "First")
    cp.create_pipeline(pipeline=release_pipeline("quick", tmp_path / "out", detect_changes=True))
    first = wait_for_executions(cp, "quick", 1)[0]["pipelineExecutionId"]
    source_revision(cp, "quick", first)
    # Pushed and announced at once, whether or not the server has started following the
    # repository yet: the new commit is not the one the pipeline fetched, so it starts.
    commit = repo.commit({"app.txt": "quick\n"}, "Quick")
    status, body = call_hook(server, HOOK_SECRET)
    assert status == 200, body
    assert [(s["pipeline"], s["commit"]) for s in body["started"]] == [("quick", commit)], body
