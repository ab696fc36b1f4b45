//! The AWS-owned action types of CodePipeline's action structure reference (S3, CodeCommit and
//! CodeStarSourceConnection sources, CodeBuild, Commands, CloudFormation, ECS, Lambda, ...), kept
//! as reviewed data in `catalogue/aws-action-types.json` and compiled in.
//!
//! Each entry carries what `ListActionTypes` shows for the type (its configuration properties with
//! `required`, `key`, `secret`, `queryable` and `type`, and its input and output artifact bounds)
//! and the page of the AWS user guide it was taken from. Pipeline validation checks declarations
//! against these entries exactly as it checks custom action types, so a declaration taken from
//! `aws codepipeline get-pipeline`, CDK or CloudFormation loads as it is, and one with a missing
//! required or an unknown configuration key is refused as CodePipeline refuses it.

use std::sync::LazyLock;

use serde::Deserialize;

use lockgate_shapes::{
    ActionCategory, ActionConfigurationProperty, ActionConfigurationPropertyType, ActionOwner,
    ActionType, ActionTypeId, ActionTypeSettings, ArtifactDetails,
};

use crate::action_types::ActionTypeKey;

/// The catalogue file, as reviewed.
const CATALOGUE_JSON: &str = include_str!("../catalogue/aws-action-types.json");

/// One AWS-owned action type of the catalogue, with the page it documents it.
#[derive(Debug, Clone)]
pub struct CatalogueEntry {
    /// The type as `ListActionTypes` shows it.
    pub action_type: ActionType,
    /// The AWS user guide page the entry was taken from.
    pub reference: String,
}

impl CatalogueEntry {
    /// The entry's `Category/Owner/Provider/Version` key.
    pub fn key(&self) -> ActionTypeKey {
        ActionTypeKey::from_id(&self.action_type.id)
    }
}

/// Every entry of the catalogue, in the file's order (category, owner, provider, version).
pub fn aws_action_types() -> &'static [CatalogueEntry] {
    static CATALOGUE: LazyLock<Vec<CatalogueEntry>> = LazyLock::new(|| {
        parse(CATALOGUE_JSON)
            .unwrap_or_else(|e| panic!("the compiled-in catalogue is invalid: {e}"))
    });
    &CATALOGUE
}

/// The file's shape: reviewed by people, so it names things plainly rather than as the API does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogueFile {
    #[allow(dead_code)]
    about: String,
    action_types: Vec<EntryFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntryFile {
    category: ActionCategory,
    owner: ActionOwner,
    provider: String,
    version: String,
    reference: String,
    input_artifacts: Bounds,
    output_artifacts: Bounds,
    properties: Vec<PropertyFile<ActionConfigurationPropertyType>>,
}

/// An artifact count range as the catalogue files write it (the rule catalogue's too).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bounds {
    pub(crate) min: i32,
    pub(crate) max: i32,
}

/// A configuration property as the catalogue files write it; `K` is the API's type enum
/// (actions' or rules').
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PropertyFile<K> {
    pub(crate) name: String,
    pub(crate) required: bool,
    pub(crate) key: bool,
    pub(crate) secret: bool,
    #[serde(rename = "type")]
    pub(crate) kind: K,
    pub(crate) description: String,
}

/// Why the catalogue cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The file is not the JSON described above.
    #[error("malformed catalogue: {0}")]
    Malformed(#[from] serde_json::Error),
    /// An entry breaks a rule the API relies on.
    #[error("{key}: {problem}")]
    Invalid {
        /// The entry's `Category/Owner/Provider/Version`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Reads and checks a catalogue: every entry's artifact bounds are ordered and within
/// CodePipeline's 0 to 10, its property names are unique, and no two entries share a key.
fn parse(text: &str) -> Result<Vec<CatalogueEntry>, CatalogueError> {
    let file: CatalogueFile = serde_json::from_str(text)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = Vec::with_capacity(file.action_types.len());
    for entry in file.action_types {
        let id = ActionTypeId {
            category: entry.category,
            owner: entry.owner,
            provider: entry.provider,
            version: entry.version,
        };
        let key = ActionTypeKey::from_id(&id);
        let invalid = |problem: String| CatalogueError::Invalid {
            key: key.to_string(),
            problem,
        };
        if !seen.insert(key.clone()) {
            return Err(invalid("listed twice".into()));
        }
        for (kind, bounds) in [
            ("input", &entry.input_artifacts),
            ("output", &entry.output_artifacts),
        ] {
            if !(0 <= bounds.min && bounds.min <= bounds.max && bounds.max <= 10) {
                return Err(invalid(format!(
                    "{kind} artifacts {} to {} are not within 0 to 10",
                    bounds.min, bounds.max
                )));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        if let Some(p) = entry.properties.iter().find(|p| !names.insert(&p.name)) {
            return Err(invalid(format!("property {} is listed twice", p.name)));
        }
        let properties = entry
            .properties
            .into_iter()
            .map(|p| ActionConfigurationProperty {
                name: p.name,
                required: p.required,
                key: p.key,
                secret: p.secret,
                queryable: Some(false),
                description: Some(p.description),
                r#type: Some(p.kind),
            })
            .collect();
        let details = |b: &Bounds| ArtifactDetails {
            minimum_count: b.min,
            maximum_count: b.max,
        };
        entries.push(CatalogueEntry {
            action_type: ActionType {
                id,
                settings: Some(ActionTypeSettings {
                    third_party_configuration_url: None,
                    entity_url_template: None,
                    execution_url_template: None,
                    revision_url_template: None,
                }),
                action_configuration_properties: Some(properties),
                input_artifact_details: details(&entry.input_artifacts),
                output_artifact_details: details(&entry.output_artifacts),
            },
            reference: entry.reference,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(key: &str) -> &'a CatalogueEntry {
        aws_action_types()
            .iter()
            .find(|e| e.key().to_string() == key)
            .unwrap_or_else(|| panic!("{key} is in the catalogue"))
    }

    fn required(entry: &CatalogueEntry) -> Vec<&str> {
        entry
            .action_type
            .action_configuration_properties
            .iter()
            .flatten()
            .filter(|p| p.required)
            .map(|p| p.name.as_str())
            .collect()
    }

    #[test]
    fn the_compiled_in_catalogue_parses_and_is_sorted() {
        let keys: Vec<ActionTypeKey> = aws_action_types().iter().map(CatalogueEntry::key).collect();
        assert!(keys.len() >= 20, "{} entries", keys.len());
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "the file lists entries in key order");
        assert!(
            !keys.iter().any(ActionTypeKey::is_manual_approval),
            "the manual approval is built into the code, not the catalogue"
        );
        for e in aws_action_types() {
            assert!(
                e.reference
                    .starts_with("https://docs.aws.amazon.com/codepipeline/"),
                "{}: {}",
                e.key(),
                e.reference
            );
        }
    }

    #[test]
    fn the_providers_a_cdk_pipeline_uses_are_there_with_their_required_keys() {
        assert_eq!(
            required(entry("Source/AWS/CodeCommit/1")),
            ["RepositoryName", "BranchName"]
        );
        let s3 = entry("Source/AWS/S3/1");
        assert!(required(s3).contains(&"S3Bucket"));
        assert!(required(s3).contains(&"S3ObjectKey"));
        let connection = entry("Source/AWS/CodeStarSourceConnection/1");
        for key in ["ConnectionArn", "FullRepositoryId", "BranchName"] {
            assert!(required(connection).contains(&key), "{key}");
        }
        for category in ["Build", "Test"] {
            let codebuild = entry(&format!("{category}/AWS/CodeBuild/1"));
            assert_eq!(required(codebuild), ["ProjectName"]);
            let inputs = &codebuild.action_type.input_artifact_details;
            assert_eq!((inputs.minimum_count, inputs.maximum_count), (1, 5));
        }
        let deploy = entry("Deploy/AWS/S3/1");
        assert!(required(deploy).contains(&"BucketName"));
        assert!(required(deploy).contains(&"Extract"));
        entry("Compute/AWS/Commands/1");
        entry("Deploy/AWS/CloudFormation/1");
        entry("Invoke/AWS/Lambda/1");
    }

    #[test]
    fn a_catalogue_with_a_broken_entry_is_refused() {
        let wrap = |entry: &str| format!(r#"{{"about": "", "actionTypes": [{entry}]}}"#);
        let good = r#"{"category": "Build", "owner": "AWS", "provider": "P", "version": "1",
            "reference": "https://docs.aws.amazon.com/codepipeline/x",
            "inputArtifacts": {"min": 1, "max": 5}, "outputArtifacts": {"min": 0, "max": 5},
            "properties": [{"name": "A", "required": true, "key": true, "secret": false,
                            "type": "String", "description": "d"}]}"#;
        assert_eq!(parse(&wrap(good)).expect("a good entry").len(), 1);
        let twice = format!("{good}, {good}");
        assert!(parse(&wrap(&twice))
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let bounds = good.replace(r#""min": 1, "max": 5"#, r#""min": 6, "max": 5"#);
        assert!(parse(&wrap(&bounds)).is_err());
        let unknown_field = good.replace(r#""version": "1","#, r#""version": "1", "extra": 1,"#);
        assert!(parse(&wrap(&unknown_field)).is_err());
        let bad_category = good.replace(r#""Build""#, r#""Building""#);
        assert!(parse(&wrap(&bad_category)).is_err());
    }
}
