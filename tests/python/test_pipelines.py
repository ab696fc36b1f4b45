"""Pipeline create/read/update/delete and the errors CreatePipeline answers with."""

import copy

from helpers import (
    APPROVAL_TYPE,
    ROLE_ARN,
    approval_action,
    approval_pipeline,
    create_source_action_type,
    expect_error,
    source_stage,
)


def pipeline_names(client) -> list:
    return [p["name"] for p in client.list_pipelines()["pipelines"]]


def test_a_created_pipeline_can_be_read_listed_updated_and_deleted(client):
    create_source_action_type(client)
    declaration = approval_pipeline("Crud")
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    assert created["name"] == "Crud"
    assert created["version"] == 1
    assert [s["name"] for s in created["stages"]] == ["Source", "Approval"]

    got = client.get_pipeline(name="Crud")
    assert got["pipeline"]["version"] == 1
    assert got["pipeline"]["roleArn"] == ROLE_ARN
    assert got["pipeline"]["stages"][1]["actions"][0]["actionTypeId"] == APPROVAL_TYPE
    assert got["metadata"]["pipelineArn"] == "arn:aws:codepipeline:us-east-1:123456789012:Crud"
    assert pipeline_names(client) == ["Crud"]

    updated = copy.deepcopy(got["pipeline"])
    updated["stages"].append({"name": "SecondApproval", "actions": [approval_action("SecondGate")]})
    after = client.update_pipeline(pipeline=updated)["pipeline"]
    assert after["version"] == 2
    assert [s["name"] for s in client.get_pipeline(name="Crud")["pipeline"]["stages"]] == [
        "Source", "Approval", "SecondApproval",
    ]
    first = client.get_pipeline(name="Crud", version=1)["pipeline"]
    assert first["version"] == 1
    assert [s["name"] for s in first["stages"]] == ["Source", "Approval"]

    client.delete_pipeline(name="Crud")
    expect_error("PipelineNotFoundException", client.get_pipeline, name="Crud")
    assert pipeline_names(client) == []


def test_creating_a_pipeline_starts_an_execution(client):
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline("StartsAtOnce"))
    summaries = client.list_pipeline_executions(pipelineName="StartsAtOnce")["pipelineExecutionSummaries"]
    assert len(summaries) == 1
    assert summaries[0]["status"] == "InProgress"
    assert summaries[0]["trigger"]["triggerType"] == "CreatePipeline"
    state = client.get_pipeline_state(name="StartsAtOnce")
    assert state["stageStates"][0]["latestExecution"]["status"] == "InProgress"


def test_a_pipeline_name_outside_the_allowed_pattern_is_a_validation_error(raw_client):
    create_source_action_type(raw_client)
    for bad in ("my pipeline", "release/prod", "x" * 101):
        expect_error("ValidationException", raw_client.create_pipeline, pipeline=approval_pipeline(bad))
    assert pipeline_names(raw_client) == []


def test_a_pipeline_without_a_role_arn_is_a_validation_error(raw_client):
    create_source_action_type(raw_client)
    declaration = approval_pipeline("NoRole")
    del declaration["roleArn"]
    expect_error("ValidationException", raw_client.create_pipeline, pipeline=declaration)
    assert pipeline_names(raw_client) == []


def test_a_pipeline_with_a_single_stage_is_an_invalid_structure(client):
    create_source_action_type(client)
    declaration = approval_pipeline("OneStage")
    declaration["stages"] = [source_stage()]
    expect_error("InvalidStructureException", client.create_pipeline, pipeline=declaration)
    assert pipeline_names(client) == []


def test_a_pipeline_whose_first_stage_has_no_source_action_is_an_invalid_structure(client):
    declaration = approval_pipeline("NoSource")
    declaration["stages"] = [
        {"name": "First", "actions": [approval_action("A")]},
        {"name": "Second", "actions": [approval_action("B")]},
    ]
    expect_error("InvalidStructureException", client.create_pipeline, pipeline=declaration)
    assert pipeline_names(client) == []


def test_a_second_pipeline_with_a_taken_name_is_rejected_and_the_first_is_unchanged(client):
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline("Taken"))
    other = approval_pipeline("Taken", stages=[{"name": "Extra", "actions": [approval_action("More")]}])
    expect_error("PipelineNameInUseException", client.create_pipeline, pipeline=other)
    kept = client.get_pipeline(name="Taken")["pipeline"]
    assert kept["version"] == 1
    assert [s["name"] for s in kept["stages"]] == ["Source", "Approval"]
    assert len(client.list_pipeline_executions(pipelineName="Taken")["pipelineExecutionSummaries"]) == 1


def test_operations_on_a_missing_pipeline_answer_pipeline_not_found(client):
    expect_error("PipelineNotFoundException", client.get_pipeline, name="Missing")
    expect_error("PipelineNotFoundException", client.get_pipeline_state, name="Missing")
    expect_error("PipelineNotFoundException", client.start_pipeline_execution, name="Missing")
    expect_error("PipelineNotFoundException", client.list_pipeline_executions, pipelineName="Missing")
    expect_error(
        "PipelineNotFoundException",
        client.put_approval_result,
        pipelineName="Missing",
        stageName="Approval",
        actionName="Gate",
        result={"summary": "ok", "status": "Approved"},
        token="0c7ab5b5-2a4f-4a35-9b3e-0123456789ab",
    )
    assert pipeline_names(client) == []


def test_reading_a_version_that_never_existed_is_pipeline_version_not_found(client):
    create_source_action_type(client)
    client.create_pipeline(pipeline=approval_pipeline("Versions"))
    expect_error("PipelineVersionNotFoundException", client.get_pipeline, name="Versions", version=7)


def test_a_timeout_on_an_action_other_than_manual_approval_is_an_invalid_action_declaration(client):
    create_source_action_type(client)
    declaration = approval_pipeline("TimedSource")
    declaration["stages"][0]["actions"][0]["timeoutInMinutes"] = 60
    expect_error("InvalidActionDeclarationException", client.create_pipeline, pipeline=declaration)
    assert pipeline_names(client) == []


def test_an_approval_timeout_under_five_minutes_is_a_validation_error(raw_client):
    create_source_action_type(raw_client)
    expect_error("ValidationException", raw_client.create_pipeline, pipeline=approval_pipeline("Quick", timeout_minutes=4))
    assert pipeline_names(raw_client) == []
