//! CloudFormation templates in YAML: read with `serde_yaml_ng`, then turned into the JSON form
//! `template.rs` reads, the short-form tags becoming the functions they stand for (`!Ref X` →
//! `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": "A.B"}`, `!Sub …` → `{"Fn::Sub": …}`).

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// The template `text` (YAML) as JSON.
pub fn to_json(text: &str) -> Result<Value, String> {
    let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    convert(yaml)
}

fn convert(yaml: Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("the number {n} has no JSON form"))?
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("a mapping key that is not text: {other:?}")),
                };
                out.insert(key, convert(value)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let function = match name {
                "Ref" | "Condition" => name.to_string(),
                _ => format!("Fn::{name}"),
            };
            let mut out = Map::new();
            out.insert(function, convert(tagged.value)?);
            Value::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn short_form_tags_become_the_functions_they_stand_for() {
        let text = r#"
Resources:
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      RoleArn: !GetAtt PipelineRole.Arn
      ArtifactStore:
        Type: S3
        Location: !Ref ArtifactsBucket
      Stages:
        - Name: Source
          Actions:
            - Name: Source
              RunOrder: 1
              Configuration:
                PollForSourceChanges: false
                BranchName: !Sub "${Branch}-release"
                Joined: !Join ["", ["a", !Ref AWS::Region]]
"#;
        let doc = to_json(text).expect("YAML");
        let p = &doc["Resources"]["Pipeline"]["Properties"];
        assert_eq!(p["RoleArn"], json!({"Fn::GetAtt": "PipelineRole.Arn"}));
        assert_eq!(
            p["ArtifactStore"]["Location"],
            json!({"Ref": "ArtifactsBucket"})
        );
        let action = &p["Stages"][0]["Actions"][0];
        assert_eq!(action["RunOrder"], 1);
        assert_eq!(action["Configuration"]["PollForSourceChanges"], false);
        assert_eq!(
            action["Configuration"]["BranchName"],
            json!({"Fn::Sub": "${Branch}-release"})
        );
        assert_eq!(
            action["Configuration"]["Joined"],
            json!({"Fn::Join": ["", ["a", {"Ref": "AWS::Region"}]]})
        );
    }

    /// A YAML template as people write them by hand converts like its JSON form.
    #[test]
    fn a_yaml_template_plans_like_its_json_form() {
        let text = r#"
Parameters:
  Branch: { Type: String, Default: main }
Resources:
  PipelineRole: { Type: AWS::IAM::Role }
  Artifacts: { Type: AWS::S3::Bucket, Properties: { BucketName: release-artifacts } }
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      Name: release
      RoleArn: !GetAtt PipelineRole.Arn
      ArtifactStore: { Type: S3, Location: !Ref Artifacts }
      Stages:
        - Name: Source
          Actions:
            - Name: Source
              ActionTypeId: { Category: Source, Owner: AWS, Provider: CodeCommit, Version: "1" }
              Configuration:
                RepositoryName: my-app
                BranchName: !Ref Branch
                PollForSourceChanges: false
              OutputArtifacts: [ { Name: src } ]
        - Name: Approve
          Actions:
            - Name: Approve
              ActionTypeId: { Category: Approval, Owner: AWS, Provider: Manual, Version: "1" }
              Configuration:
                CustomData: !Sub "Release from ${Branch} in ${AWS::Region}"
"#;
        let doc = to_json(text).expect("YAML");
        let target = crate::import::template::Target {
            account_id: "123456789012".into(),
            region: "eu-west-1".into(),
            stack_name: "Release".into(),
        };
        let plan = crate::import::template::plan(&doc, &target).expect("plans");
        let d = &plan.pipelines[0].declaration;
        assert_eq!(d["roleArn"], "arn:aws:iam::123456789012:role/PipelineRole");
        assert_eq!(d["artifactStore"]["location"], "release-artifacts");
        assert_eq!(
            d["stages"][0]["actions"][0]["configuration"],
            json!({"RepositoryName": "my-app", "BranchName": "main", "PollForSourceChanges": "false"})
        );
        assert_eq!(
            d["stages"][1]["actions"][0]["configuration"]["CustomData"],
            "Release from main in eu-west-1"
        );
    }

    #[test]
    fn malformed_yaml_is_an_error() {
        assert!(to_json("a: [1, 2").is_err());
    }
}
