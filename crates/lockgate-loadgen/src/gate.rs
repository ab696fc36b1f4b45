//! The pipeline both drivers load the server with: source (a custom action) → manual approval →
//! build (a custom action), the shape of a release gate. Each driver names its own providers,
//! role and bucket so their pipelines are told apart in a shared data directory or log.

use serde_json::{json, Value};

/// The names that make one driver's release-gate pipelines its own.
pub struct ReleaseGate {
    /// The role name in the pipeline's `roleArn`.
    pub role: &'static str,
    /// The artifact store's S3 bucket.
    pub bucket: &'static str,
    /// The approval's `CustomData`.
    pub custom_data: &'static str,
    /// The custom source action type's provider.
    pub source_provider: &'static str,
    /// The custom build action type's provider.
    pub build_provider: &'static str,
    /// The stage holding the approval.
    pub approval_stage: &'static str,
    /// The approval action.
    pub approval_action: &'static str,
    /// The stage after the approval, holding the build action.
    pub build_stage: &'static str,
}

/// `{category, owner: Custom, provider, version: 1}`.
pub fn custom_type(category: &str, provider: &str) -> Value {
    json!({"category": category, "owner": "Custom", "provider": provider, "version": "1"})
}

impl ReleaseGate {
    /// The CreateCustomActionType inputs of the two custom action types: a source with one
    /// output artifact and a build with one input artifact.
    pub fn action_type_inputs(&self) -> Vec<Value> {
        [
            ("Source", self.source_provider, (0, 0), (1, 1)),
            ("Build", self.build_provider, (1, 1), (0, 0)),
        ]
        .into_iter()
        .map(|(category, provider, input, output)| {
            json!({
                "category": category,
                "provider": provider,
                "version": "1",
                "inputArtifactDetails": {"minimumCount": input.0, "maximumCount": input.1},
                "outputArtifactDetails": {"minimumCount": output.0, "maximumCount": output.1},
            })
        })
        .collect()
    }

    /// The CreatePipeline input of the pipeline `name`.
    pub fn declaration(&self, name: &str) -> Value {
        json!({"pipeline": {
            "name": name,
            "roleArn": format!("arn:aws:iam::123456789012:role/{}", self.role),
            "artifactStore": {"type": "S3", "location": self.bucket},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Source",
                    "actionTypeId": custom_type("Source", self.source_provider),
                    "outputArtifacts": [{"name": "SourceOutput"}],
                }]},
                {"name": self.approval_stage, "actions": [{
                    "name": self.approval_action,
                    "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                                     "version": "1"},
                    "configuration": {"CustomData": self.custom_data},
                }]},
                {"name": self.build_stage, "actions": [{
                    "name": "Build",
                    "actionTypeId": custom_type("Build", self.build_provider),
                    "inputArtifacts": [{"name": "SourceOutput"}],
                }]},
            ],
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATE: ReleaseGate = ReleaseGate {
        role: "Role",
        bucket: "bucket",
        custom_data: "gate",
        source_provider: "Src",
        build_provider: "Bld",
        approval_stage: "Approve",
        approval_action: "Approval",
        build_stage: "Build",
    };

    #[test]
    fn the_declaration_puts_the_approval_between_source_and_build() {
        let declaration = GATE.declaration("p");
        let stages = declaration["pipeline"]["stages"].as_array().unwrap();
        let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Source", "Approve", "Build"]);
        assert_eq!(stages[1]["actions"][0]["name"], "Approval");
        assert_eq!(
            stages[2]["actions"][0]["actionTypeId"],
            custom_type("Build", "Bld")
        );
        assert_eq!(
            declaration["pipeline"]["roleArn"],
            "arn:aws:iam::123456789012:role/Role"
        );
    }

    #[test]
    fn the_action_types_match_the_artifacts_the_declaration_passes() {
        let inputs = GATE.action_type_inputs();
        assert_eq!(inputs[0]["provider"], "Src");
        assert_eq!(inputs[0]["outputArtifactDetails"]["minimumCount"], 1);
        assert_eq!(inputs[1]["provider"], "Bld");
        assert_eq!(inputs[1]["inputArtifactDetails"]["minimumCount"], 1);
    }
}
