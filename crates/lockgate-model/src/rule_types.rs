//! The AWS-owned rule types of CodePipeline's rule structure reference (CloudWatchAlarm,
//! CodeBuild, Commands, DeploymentWindow, LambdaInvoke, VariableCheck), kept as reviewed data in
//! `catalogue/aws-rule-types.json` and compiled in, as the action types are (see `catalogue`).
//! `ListRuleTypes` answers with them and stage conditions are validated against them.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::catalogue::{Bounds, PropertyFile};

use lockgate_shapes::{
    ArtifactDetails, RuleCategory, RuleConfigurationProperty, RuleConfigurationPropertyType,
    RuleOwner, RuleType, RuleTypeId, RuleTypeSettings,
};

/// The catalogue file, as reviewed.
const CATALOGUE_JSON: &str = include_str!("../catalogue/aws-rule-types.json");

/// The version a rule declaration without one names.
pub const DEFAULT_RULE_VERSION: &str = "1";

/// One AWS-owned rule type, with the page that documents it.
#[derive(Debug, Clone)]
pub struct RuleCatalogueEntry {
    /// The type as `ListRuleTypes` shows it.
    pub rule_type: RuleType,
    /// The AWS user guide page the entry was taken from.
    pub reference: String,
}

/// `Category/Owner/Provider/Version` of a rule type, the owner and version filled in as
/// CodePipeline fills them (`AWS`, `1`).
pub fn rule_type_key(id: &RuleTypeId) -> String {
    format!(
        "{}/{}/{}/{}",
        id.category.as_str(),
        id.owner.as_ref().map_or("AWS", RuleOwner::as_str),
        id.provider,
        id.version.as_deref().unwrap_or(DEFAULT_RULE_VERSION)
    )
}

/// Every rule type of the catalogue, in the file's order (by provider).
pub fn aws_rule_types() -> &'static [RuleCatalogueEntry] {
    static CATALOGUE: LazyLock<Vec<RuleCatalogueEntry>> = LazyLock::new(|| {
        parse(CATALOGUE_JSON)
            .unwrap_or_else(|e| panic!("the compiled-in rule catalogue is invalid: {e}"))
    });
    &CATALOGUE
}

/// The catalogue's entry for the rule type a declaration names, if there is one.
pub fn find_rule_type(id: &RuleTypeId) -> Option<&'static RuleCatalogueEntry> {
    let key = rule_type_key(id);
    aws_rule_types()
        .iter()
        .find(|e| rule_type_key(&e.rule_type.id) == key)
}

/// The file's shape: reviewed by people, so it names things plainly rather than as the API does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogueFile {
    #[allow(dead_code)]
    about: String,
    rule_types: Vec<EntryFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntryFile {
    category: RuleCategory,
    owner: RuleOwner,
    provider: String,
    version: String,
    reference: String,
    input_artifacts: Bounds,
    properties: Vec<PropertyFile<RuleConfigurationPropertyType>>,
}

/// Reads and checks the catalogue: bounds within 0 to 10, unique property names, unique types.
fn parse(text: &str) -> Result<Vec<RuleCatalogueEntry>, String> {
    let file: CatalogueFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut entries: Vec<RuleCatalogueEntry> = Vec::with_capacity(file.rule_types.len());
    for entry in file.rule_types {
        let id = RuleTypeId {
            category: entry.category,
            owner: Some(entry.owner),
            provider: entry.provider,
            version: Some(entry.version),
        };
        let key = rule_type_key(&id);
        if entries
            .iter()
            .any(|e| rule_type_key(&e.rule_type.id) == key)
        {
            return Err(format!("{key}: listed twice"));
        }
        let bounds = &entry.input_artifacts;
        if !(0 <= bounds.min && bounds.min <= bounds.max && bounds.max <= 10) {
            return Err(format!(
                "{key}: input artifacts {} to {} are not within 0 to 10",
                bounds.min, bounds.max
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        if let Some(p) = entry.properties.iter().find(|p| !names.insert(&p.name)) {
            return Err(format!("{key}: property {} is listed twice", p.name));
        }
        let properties = entry
            .properties
            .into_iter()
            .map(|p| RuleConfigurationProperty {
                name: p.name,
                required: p.required,
                key: p.key,
                secret: p.secret,
                queryable: Some(false),
                description: Some(p.description),
                r#type: Some(p.kind),
            })
            .collect();
        entries.push(RuleCatalogueEntry {
            rule_type: RuleType {
                id,
                settings: Some(RuleTypeSettings::default()),
                rule_configuration_properties: Some(properties),
                input_artifact_details: ArtifactDetails {
                    minimum_count: bounds.min,
                    maximum_count: bounds.max,
                },
            },
            reference: entry.reference,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_reference_s_six_types_are_listed_with_their_required_properties() {
        let listed: Vec<String> = aws_rule_types()
            .iter()
            .map(|e| rule_type_key(&e.rule_type.id))
            .collect();
        assert_eq!(
            listed,
            [
                "Rule/AWS/CloudWatchAlarm/1",
                "Rule/AWS/CodeBuild/1",
                "Rule/AWS/Commands/1",
                "Rule/AWS/DeploymentWindow/1",
                "Rule/AWS/LambdaInvoke/1",
                "Rule/AWS/VariableCheck/1",
            ]
        );
        let required = |provider: &str| -> Vec<String> {
            let id = RuleTypeId {
                category: RuleCategory::Rule,
                owner: None,
                provider: provider.to_string(),
                version: None,
            };
            find_rule_type(&id)
                .expect("in the catalogue")
                .rule_type
                .rule_configuration_properties
                .iter()
                .flatten()
                .filter(|p| p.required)
                .map(|p| p.name.clone())
                .collect()
        };
        assert_eq!(required("DeploymentWindow"), ["Cron"]);
        assert_eq!(required("VariableCheck"), ["Operator", "Variable", "Value"]);
        assert_eq!(required("CloudWatchAlarm"), ["AlarmName"]);
        assert!(required("Commands").is_empty());
    }

    #[test]
    fn a_broken_catalogue_is_refused() {
        let twice = r#"{"about":"","ruleTypes":[
            {"category":"Rule","owner":"AWS","provider":"X","version":"1","reference":"",
             "inputArtifacts":{"min":0,"max":0},"properties":[]},
            {"category":"Rule","owner":"AWS","provider":"X","version":"1","reference":"",
             "inputArtifacts":{"min":0,"max":0},"properties":[]}]}"#;
        assert_eq!(parse(twice).unwrap_err(), "Rule/AWS/X/1: listed twice");
        let bounds = twice.replacen(r#""max":0"#, r#""max":11"#, 1);
        assert!(parse(&bounds).unwrap_err().contains("not within 0 to 10"));
    }
}
