"""The rule catalogue as clients see it, over both wire protocols: ListRuleTypes lists the rule
types of CodePipeline's rule reference, and a V2 pipeline's stage conditions are checked against
them on CreatePipeline, the way CodePipeline checks them."""

import json
from pathlib import Path

import pytest

from helpers import expect_error

# Nothing here should run: the tests look at declarations only.
pytestmark = pytest.mark.no_local_worker

FIXTURES = Path(__file__).resolve().parents[2] / "crates/lockgate-model/tests/fixtures/pipelines"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def client(client):
    """Bob's client, on a server that knows the fixtures' source type `Source/Custom/LocalSource/1`."""
    client.create_custom_action_type(
        category="Source", provider="LocalSource", version="1",
        configurationProperties=[{"name": "Path", "required": False, "key": True, "secret": False,
                                  "queryable": False, "type": "String"}],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    )
    return client


def test_list_rule_types_shows_the_rule_reference_with_its_properties(client):
    types = client.list_rule_types()["ruleTypes"]
    assert [t["id"]["provider"] for t in types] == [
        "CloudWatchAlarm", "CodeBuild", "Commands", "DeploymentWindow", "LambdaInvoke", "VariableCheck",
    ]
    for t in types:
        assert t["id"]["category"] == "Rule" and t["id"]["owner"] == "AWS" and t["id"]["version"] == "1"
    by_provider = {t["id"]["provider"]: t for t in types}
    window = {p["name"]: p for p in by_provider["DeploymentWindow"]["ruleConfigurationProperties"]}
    assert window["Cron"]["required"] and not window["TimeZone"]["required"]
    assert by_provider["DeploymentWindow"]["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 0}
    check = {p["name"] for p in by_provider["VariableCheck"]["ruleConfigurationProperties"] if p["required"]}
    assert check == {"Variable", "Value", "Operator"}
    assert client.list_rule_types(ruleOwnerFilter="AWS", regionFilter="us-east-1")["ruleTypes"] == types


def test_a_v2_pipeline_with_conditions_of_every_kind_is_created_and_read_back_unchanged(client):
    declaration = fixture("valid-v2-conditions-of-every-kind.json")["pipeline"]
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    got = client.get_pipeline(name=declaration["name"])["pipeline"]
    for answer in (created, got):
        assert answer["stages"] == declaration["stages"], answer["stages"]


@pytest.mark.parametrize("name", [
    "invalid-skip-with-deployment-window.json",
    "invalid-rule-missing-required-configuration.json",
    "invalid-retry-with-on-failure-conditions.json",
])
def test_a_condition_codepipeline_would_refuse_is_refused_and_nothing_is_created(client, name):
    case = fixture(name)
    error = expect_error(case["expect"]["code"], client.create_pipeline, pipeline=case["pipeline"])
    assert case["expect"]["message"] in error["Error"]["Message"], error
    expect_error("PipelineNotFoundException", client.get_pipeline, name=case["pipeline"]["name"])
