//! Converting templates: a hand-written template in the shape CDK writes, the real template of
//! `examples/cdk-release`, artifact stores by region, get-pipeline answers, and what cannot be
//! converted, named by resource and property.

use serde_json::json;

use super::*;

fn target() -> Target {
    Target {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        stack_name: "ReleaseStack".into(),
    }
}

/// A template in the shape `cdk synth` writes: roles and buckets by `Fn::GetAtt` and `Ref`, a
/// boolean configuration value, a topic, and a CloudFormation-only property.
fn template() -> Value {
    serde_json::from_str(
        r##"{
        "Parameters": {"Branch": {"Type": "String", "Default": "main"}},
        "Resources": {
            "PipelineRoleD68726F7": {"Type": "AWS::IAM::Role", "Properties": {}},
            "ArtifactsBucket2AAC5544": {"Type": "AWS::S3::Bucket"},
            "ArtifactsKey": {"Type": "AWS::KMS::Key"},
            "ApprovalTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "release-approvals"}},
            "Repo": {"Type": "AWS::CodeCommit::Repository", "Properties": {"RepositoryName": "my-app"}},
            "Build": {"Type": "AWS::CodeBuild::Project", "Properties": {"Name": "my-app-build"}},
            "Shell": {"Type": "AWS::CodePipeline::CustomActionType", "Properties": {
                "Category": "Build", "Provider": "Shell", "Version": "1",
                "InputArtifactDetails": {"MinimumCount": 0, "MaximumCount": 1},
                "OutputArtifactDetails": {"MinimumCount": 0, "MaximumCount": 1},
                "ConfigurationProperties": [{"Name": "Command", "Required": true, "Key": true, "Secret": false}]
            }},
            "Pipeline": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
                "Name": "release",
                "RoleArn": {"Fn::GetAtt": ["PipelineRoleD68726F7", "Arn"]},
                "ArtifactStore": {
                    "Type": "S3",
                    "Location": {"Ref": "ArtifactsBucket2AAC5544"},
                    "EncryptionKey": {"Id": {"Fn::GetAtt": ["ArtifactsKey", "Arn"]}, "Type": "KMS"}
                },
                "PipelineType": "V2",
                "RestartExecutionOnUpdate": true,
                "Tags": [{"Key": "team", "Value": "payments"}],
                "DisableInboundStageTransitions": [{"StageName": "Build", "Reason": "freeze"}],
                "Stages": [
                    {"Name": "Source", "Actions": [{
                        "Name": "Source",
                        "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "CodeCommit", "Version": "1"},
                        "Configuration": {
                            "RepositoryName": {"Fn::GetAtt": ["Repo", "Name"]},
                            "BranchName": {"Ref": "Branch"},
                            "PollForSourceChanges": false
                        },
                        "OutputArtifacts": [{"Name": "Artifact_Source"}],
                        "RunOrder": 1,
                        "Namespace": "SourceVariables",
                        "RoleArn": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/SourceRole"]]}
                    }]},
                    {"Name": "Build", "Actions": [{
                        "Name": "Build",
                        "ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild", "Version": "1"},
                        "Configuration": {
                            "ProjectName": {"Ref": "Build"},
                            "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"type\":\"PLAINTEXT\",\"value\":\"#{SourceVariables.CommitId}\"}]"
                        },
                        "InputArtifacts": [{"Name": "Artifact_Source"}],
                        "Region": {"Ref": "AWS::NoValue"}
                    }]},
                    {"Name": "Approve", "Actions": [{
                        "Name": "Approve",
                        "ActionTypeId": {"Category": "Approval", "Owner": "AWS", "Provider": "Manual", "Version": "1"},
                        "Configuration": {
                            "NotificationArn": {"Ref": "ApprovalTopic"},
                            "CustomData": {"Fn::Sub": "Release ${AWS::StackName} in ${AWS::Region}, ${!Literal}"}
                        }
                    }]}
                ]
            }}
        }
    }"##,
    )
    .expect("the test template is JSON")
}

#[test]
fn a_cdk_template_becomes_the_declaration_the_api_takes() {
    let plan = plan(&template(), &target()).expect("the template converts");
    assert_eq!(plan.pipelines.len(), 1);
    let p = &plan.pipelines[0];
    assert_eq!(p.source, "Pipeline");
    assert_eq!(p.tags, vec![json!({"key": "team", "value": "payments"})]);
    assert_eq!(
        p.disabled_transitions,
        vec![("Build".to_string(), "freeze".to_string())]
    );
    let d = &p.declaration;
    assert_eq!(d["name"], "release");
    assert_eq!(
        d["roleArn"],
        "arn:aws:iam::123456789012:role/PipelineRoleD68726F7"
    );
    assert_eq!(d["pipelineType"], "V2");
    assert_eq!(
        d["artifactStore"],
        json!({"type": "S3", "location": "artifactsbucket2aac5544",
               "encryptionKey": {"id": "arn:aws:kms:us-east-1:123456789012:key/ArtifactsKey", "type": "KMS"}})
    );
    assert!(d.get("restartExecutionOnUpdate").is_none());
    assert!(d.get("tags").is_none() && d.get("disableInboundStageTransitions").is_none());

    let source = &d["stages"][0]["actions"][0];
    assert_eq!(
        source["actionTypeId"],
        json!({"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"})
    );
    assert_eq!(
        source["configuration"],
        json!({"RepositoryName": "my-app", "BranchName": "main", "PollForSourceChanges": "false"})
    );
    assert_eq!(
        source["outputArtifacts"],
        json!([{"name": "Artifact_Source"}])
    );
    assert_eq!(source["runOrder"], 1);
    assert_eq!(source["namespace"], "SourceVariables");
    assert_eq!(
        source["roleArn"],
        "arn:aws:iam::123456789012:role/SourceRole"
    );

    let build = &d["stages"][1]["actions"][0];
    assert_eq!(build["configuration"]["ProjectName"], "my-app-build");
    assert!(build["configuration"]["EnvironmentVariables"]
        .as_str()
        .is_some_and(|v| v.contains("#{SourceVariables.CommitId}")));
    assert!(
        build.get("region").is_none(),
        "Ref AWS::NoValue removes the property"
    );

    let approve = &d["stages"][2]["actions"][0]["configuration"];
    assert_eq!(
        approve["NotificationArn"],
        "arn:aws:sns:us-east-1:123456789012:release-approvals"
    );
    assert_eq!(
        approve["CustomData"],
        "Release ReleaseStack in us-east-1, ${Literal}"
    );

    assert_eq!(plan.custom_action_types.len(), 1);
    assert_eq!(plan.custom_action_types[0]["provider"], "Shell");
    assert_eq!(
        plan.custom_action_types[0]["configurationProperties"][0],
        json!({"name": "Command", "required": true, "key": true, "secret": false})
    );
    // Every resolution is told.
    assert!(plan.assumptions.iter().any(|a| a
        == "Pipeline.RoleArn: Fn::GetAtt PipelineRoleD68726F7.Arn → arn:aws:iam::123456789012:role/PipelineRoleD68726F7"));
    assert!(plan.assumptions.iter().any(
        |a| a.starts_with("Pipeline.Stages[0].Actions[0].Configuration.BranchName: Ref Branch")
    ));
}

#[test]
fn artifact_stores_by_region_become_the_apis_map() {
    let doc = json!({"Resources": {"P": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "ArtifactStores": [
            {"Region": "us-east-1", "ArtifactStore": {"Type": "S3", "Location": "east"}},
            {"Region": "eu-west-1", "ArtifactStore": {"Type": "S3", "Location": "west"}}
        ],
        "Stages": []
    }}}});
    let plan = plan(&doc, &target()).expect("converts");
    let d = &plan.pipelines[0].declaration;
    assert_eq!(
        d["name"], "P",
        "a pipeline without a Name takes its logical id"
    );
    assert_eq!(
        d["artifactStores"],
        json!({"us-east-1": {"type": "S3", "location": "east"}, "eu-west-1": {"type": "S3", "location": "west"}})
    );
}

#[test]
fn a_get_pipeline_answer_is_taken_as_it_is_without_its_version() {
    let doc = json!({"pipeline": {"name": "p", "version": 7, "stages": []}, "metadata": {}});
    let plan = plan(&doc, &target()).expect("converts");
    assert_eq!(
        plan.pipelines[0].declaration,
        json!({"name": "p", "stages": []})
    );
    assert_eq!(plan.pipelines[0].source, "get-pipeline");
}

#[test]
fn what_cannot_be_converted_is_named_by_resource_and_property() {
    let mut doc = template();
    doc["Resources"]["Pipeline"]["Properties"]["Stages"][1]["Actions"][0]["Configuration"]
        ["ProjectName"] = json!({"Fn::ImportValue": "shared-project"});
    assert_eq!(
        plan(&doc, &target()),
        Err(ImportError::Property {
            resource: "Pipeline".into(),
            property: "Stages[1].Actions[0].Configuration.ProjectName".into(),
            problem: "Fn::ImportValue cannot be resolved outside CloudFormation".into(),
        })
    );
    let mut doc = template();
    doc["Resources"]["Pipeline"]["Properties"]["RoleArn"] =
        json!({"Fn::GetAtt": ["Nowhere", "Arn"]});
    let err = plan(&doc, &target()).unwrap_err().to_string();
    assert!(
        err.starts_with("resource Pipeline, property RoleArn: Nowhere is neither"),
        "{err}"
    );
    let mut doc = template();
    doc["Resources"]["Pipeline"]["Properties"]["RoleArn"] = json!({"Ref": "Build", "Extra": 1});
    assert!(
        plan(&doc, &target()).is_ok(),
        "an object with two keys is not an intrinsic"
    );
    assert!(matches!(
        plan(&json!({"Resources": {}}), &target()),
        Err(ImportError::Unrecognised(_))
    ));
    assert!(matches!(
        plan(&json!([1]), &target()),
        Err(ImportError::Unrecognised(_))
    ));
}

/// The template AWS CDK synthesised for `examples/cdk-release` (CodeCommit, CodeBuild, a
/// manual approval with `notifyEmails`, an S3 deploy) converts into a declaration that
/// Lockgate's validation accepts as it is.
#[test]
fn the_cdk_example_template_converts_into_a_valid_declaration() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/cdk-release/ReleaseStack.template.json"
    );
    let text = std::fs::read_to_string(path).expect("the example template is committed");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let plan = plan(&doc, &target()).expect("the CDK template converts");
    assert_eq!(plan.pipelines.len(), 1);
    let d = &plan.pipelines[0].declaration;
    assert_eq!(d["name"], "release");
    assert_eq!(
        d["roleArn"],
        "arn:aws:iam::123456789012:role/PipelineRoleD68726F7"
    );
    let config = |stage: usize| &d["stages"][stage]["actions"][0]["configuration"];
    assert_eq!(
        config(0),
        &json!({"RepositoryName": "my-app", "BranchName": "main", "PollForSourceChanges": "false"})
    );
    assert_eq!(config(1)["ProjectName"], "my-app-build");
    assert_eq!(
        config(2)["NotificationArn"],
        "arn:aws:sns:us-east-1:123456789012:PipelineApproveTopicResource2E2CCFC4"
    );
    assert_eq!(
        config(2)["CustomData"],
        "Review commit #{SourceVariables.CommitId}, version #{Build.VERSION}"
    );
    assert_eq!(
        config(3),
        &json!({"BucketName": "my-app-site", "Extract": "true"})
    );

    let declaration: lockgate_shapes::PipelineDeclaration =
        serde_json::from_value(d.clone()).expect("the declaration has the API's shape");
    lockgate_model::validate_pipeline(&declaration, &lockgate_model::ActionTypeRegistry::new())
        .expect("Lockgate accepts the declaration");
}
