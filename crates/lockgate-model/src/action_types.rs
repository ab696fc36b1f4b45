//! The catalogue of action types a pipeline may use: the built-in manual approval
//! (`Approval/AWS/Manual/1`), the other AWS-owned types of CodePipeline's action structure
//! reference (`catalogue.rs`), and the custom action types registered through
//! `CreateCustomActionType`.
//!
//! The registry is plain data. It is the store's job to persist custom types and to rebuild a
//! registry from them on start-up; the registry only answers "does this type exist and what does
//! it accept", which is what pipeline validation and `ListActionTypes` need.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::catalogue::aws_action_types;
use lockgate_shapes::{
    ActionCategory, ActionConfigurationProperty, ActionConfigurationPropertyType, ActionOwner,
    ActionType, ActionTypeId, ActionTypeSettings, ArtifactDetails,
};

/// Category of the built-in manual approval action type.
pub const MANUAL_APPROVAL_CATEGORY: &str = "Approval";
/// Owner of the built-in manual approval action type.
pub const MANUAL_APPROVAL_OWNER: &str = "AWS";
/// Provider of the built-in manual approval action type.
pub const MANUAL_APPROVAL_PROVIDER: &str = "Manual";
/// Version of the built-in manual approval action type.
pub const MANUAL_APPROVAL_VERSION: &str = "1";

/// Configuration key of the manual approval: the SNS topic that is told about a pending approval.
pub const NOTIFICATION_ARN: &str = "NotificationArn";
/// Configuration key of the manual approval: text shown to the reviewer (at most 500 characters).
pub const CUSTOM_DATA: &str = "CustomData";
/// Configuration key of the manual approval: the URL of what is to be reviewed.
pub const EXTERNAL_ENTITY_LINK: &str = "ExternalEntityLink";

/// Longest `CustomData` a manual approval accepts, in characters.
pub const CUSTOM_DATA_MAX_CHARS: usize = 500;

/// The owner string that marks an action type as registered through `CreateCustomActionType`.
const CUSTOM_OWNER: &str = "Custom";

/// An action type's identity in string form (`Category/Owner/Provider/Version`), usable as a map
/// key: it is `Ord` and `Hash`, which the generated `ActionTypeId` need not be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionTypeKey {
    /// The action category as CodePipeline spells it, e.g. `Source` or `Approval`.
    pub category: String,
    /// The owner: `AWS`, `ThirdParty` or `Custom`.
    pub owner: String,
    /// The provider name, e.g. `Manual` or a custom provider's name.
    pub provider: String,
    /// The action type's version string, e.g. `1`.
    pub version: String,
}

impl ActionTypeKey {
    /// A key from its four parts, taken as given.
    pub fn new(
        category: impl Into<String>,
        owner: impl Into<String>,
        provider: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        ActionTypeKey {
            category: category.into(),
            owner: owner.into(),
            provider: provider.into(),
            version: version.into(),
        }
    }

    /// The key of an action type id as it appears in a request or a pipeline declaration.
    pub fn from_id(id: &ActionTypeId) -> Self {
        ActionTypeKey::new(
            id.category.as_str(),
            id.owner.as_str(),
            id.provider.as_str(),
            id.version.as_str(),
        )
    }

    /// The key of the built-in manual approval, `Approval/AWS/Manual/1`.
    pub fn manual_approval() -> Self {
        ActionTypeKey::new(
            MANUAL_APPROVAL_CATEGORY,
            MANUAL_APPROVAL_OWNER,
            MANUAL_APPROVAL_PROVIDER,
            MANUAL_APPROVAL_VERSION,
        )
    }

    /// Whether this is the key of the built-in manual approval.
    pub fn is_manual_approval(&self) -> bool {
        self.category == MANUAL_APPROVAL_CATEGORY
            && self.owner == MANUAL_APPROVAL_OWNER
            && self.provider == MANUAL_APPROVAL_PROVIDER
            && self.version == MANUAL_APPROVAL_VERSION
    }
}

impl From<&ActionTypeId> for ActionTypeKey {
    fn from(id: &ActionTypeId) -> Self {
        ActionTypeKey::from_id(id)
    }
}

impl fmt::Display for ActionTypeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.category, self.owner, self.provider, self.version
        )
    }
}

/// Why a string is not an [`ActionTypeKey`]: it must have exactly four non-empty parts
/// separated by `/`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an action type key of the form Category/Owner/Provider/Version")]
pub struct ParseActionTypeKeyError(pub String);

impl FromStr for ActionTypeKey {
    type Err = ParseActionTypeKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [category, owner, provider, version] if parts.iter().all(|part| !part.is_empty()) => {
                Ok(ActionTypeKey::new(*category, *owner, *provider, *version))
            }
            _ => Err(ParseActionTypeKeyError(s.to_owned())),
        }
    }
}

/// The action types a pipeline may use, keyed by [`ActionTypeKey`].
///
/// Invariant: the built-in types (the manual approval and the AWS catalogue) are always present
/// and unchanged; [`ActionTypeRegistry::insert`] does not replace them and
/// [`ActionTypeRegistry::remove`] does not remove them.
#[derive(Debug, Clone)]
pub struct ActionTypeRegistry {
    types: BTreeMap<ActionTypeKey, ActionType>,
}

impl Default for ActionTypeRegistry {
    fn default() -> Self {
        ActionTypeRegistry::new()
    }
}

impl ActionTypeRegistry {
    /// A registry holding only the built-in action types: the manual approval and every type
    /// of the AWS catalogue.
    pub fn new() -> Self {
        let mut types: BTreeMap<ActionTypeKey, ActionType> = aws_action_types()
            .iter()
            .map(|entry| (entry.key(), entry.action_type.clone()))
            .collect();
        types.insert(
            ActionTypeKey::manual_approval(),
            manual_approval_action_type(),
        );
        ActionTypeRegistry { types }
    }

    /// Adds or replaces a custom action type (owner `Custom`), as `CreateCustomActionType`
    /// declares it, and returns the one it replaced. Built-in types are never replaced (the
    /// approval flow relies on the manual approval's fixed shape, and the AWS catalogue is
    /// CodePipeline's), so inserting a type of another owner changes nothing and returns `None`.
    pub fn insert(&mut self, action_type: ActionType) -> Option<ActionType> {
        let key = ActionTypeKey::from_id(&action_type.id);
        if key.owner != CUSTOM_OWNER {
            return None;
        }
        self.types.insert(key, action_type)
    }

    /// Removes a custom action type (`DeleteCustomActionType`). Returns whether a type was
    /// removed; built-in types are never removed.
    pub fn remove(&mut self, id: &ActionTypeId) -> bool {
        let key = ActionTypeKey::from_id(id);
        if key.owner != CUSTOM_OWNER {
            return false;
        }
        self.types.remove(&key).is_some()
    }

    /// The action type with this id, if it is registered.
    pub fn get(&self, id: &ActionTypeId) -> Option<&ActionType> {
        self.types.get(&ActionTypeKey::from_id(id))
    }

    /// The action type with this key, if it is registered.
    pub fn get_by_key(&self, key: &ActionTypeKey) -> Option<&ActionType> {
        self.types.get(key)
    }

    /// Whether an action type with this id is registered.
    pub fn contains(&self, id: &ActionTypeId) -> bool {
        self.get(id).is_some()
    }

    /// Every registered action type whose owner matches `owner_filter` (all when `None`), in
    /// the stable order of their keys: category, owner, provider, version, compared as strings.
    pub fn list(&self, owner_filter: Option<ActionOwner>) -> Vec<ActionType> {
        let owner = owner_filter.as_ref().map(|owner| owner.as_str());
        self.types
            .iter()
            .filter(|(key, _)| owner.is_none_or(|owner| key.owner == owner))
            .map(|(_, action_type)| action_type.clone())
            .collect()
    }

    /// How many action types are registered, built-ins included.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Always `false`: the built-in manual approval is always registered. Present because
    /// clippy expects `is_empty` beside `len`.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Whether `id` names the built-in manual approval, `Approval/AWS/Manual/1`.
    pub fn is_manual_approval(&self, id: &ActionTypeId) -> bool {
        is_manual_approval(id)
    }
}

/// The AWS-owned action types Lockgate's own executors run (`lockgate-worker`), as
/// (category, provider): their runs keep a log the console shows, and the action's
/// `externalExecutionUrl` points there.
pub const RUN_BY_LOCKGATE: &[(&str, &str)] = &[
    ("Compute", "Commands"),
    ("Build", "CodeBuild"),
    ("Test", "CodeBuild"),
    ("Source", "CodeCommit"),
    ("Source", "CodeStarSourceConnection"),
    ("Deploy", "S3"),
];

/// Whether Lockgate's own executors run actions of type `id` ([`RUN_BY_LOCKGATE`]).
pub fn is_run_by_lockgate(id: &ActionTypeId) -> bool {
    id.owner == lockgate_shapes::ActionOwner::Aws
        && id.version == "1"
        && RUN_BY_LOCKGATE
            .iter()
            .any(|(c, p)| id.category.as_str() == *c && id.provider == *p)
}

/// Whether `id` names the built-in manual approval, `Approval/AWS/Manual/1`.
pub fn is_manual_approval(id: &ActionTypeId) -> bool {
    id.category.as_str() == MANUAL_APPROVAL_CATEGORY
        && id.owner.as_str() == MANUAL_APPROVAL_OWNER
        && id.provider == MANUAL_APPROVAL_PROVIDER
        && id.version == MANUAL_APPROVAL_VERSION
}

/// The id of the built-in manual approval, `Approval/AWS/Manual/1`.
pub fn manual_approval_id() -> ActionTypeId {
    ActionTypeId {
        category: ActionCategory::Approval,
        owner: ActionOwner::Aws,
        provider: MANUAL_APPROVAL_PROVIDER.to_owned(),
        version: MANUAL_APPROVAL_VERSION.to_owned(),
    }
}

/// The built-in manual approval as `ListActionTypes` shows it: three optional, non-key,
/// non-secret configuration properties and no input or output artifacts.
pub fn manual_approval_action_type() -> ActionType {
    let property = |name: &str, description: &str| ActionConfigurationProperty {
        name: name.to_owned(),
        required: false,
        key: false,
        secret: false,
        queryable: Some(false),
        description: Some(description.to_owned()),
        r#type: Some(ActionConfigurationPropertyType::String),
    };
    let no_artifacts = || ArtifactDetails {
        minimum_count: 0,
        maximum_count: 0,
    };
    ActionType {
        id: manual_approval_id(),
        settings: Some(ActionTypeSettings {
            third_party_configuration_url: None,
            entity_url_template: None,
            execution_url_template: None,
            revision_url_template: None,
        }),
        action_configuration_properties: Some(vec![
            property(
                NOTIFICATION_ARN,
                "The ARN of the Amazon SNS topic to notify when the approval is pending.",
            ),
            property(
                CUSTOM_DATA,
                "Comments for the reviewer, at most 500 characters.",
            ),
            property(EXTERNAL_ENTITY_LINK, "The URL of the resource to review."),
        ]),
        input_artifact_details: no_artifacts(),
        output_artifact_details: no_artifacts(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom_type(category: ActionCategory, provider: &str, version: &str) -> ActionType {
        ActionType {
            id: ActionTypeId {
                category,
                owner: ActionOwner::Custom,
                provider: provider.to_owned(),
                version: version.to_owned(),
            },
            settings: None,
            action_configuration_properties: None,
            input_artifact_details: ArtifactDetails {
                minimum_count: 0,
                maximum_count: 0,
            },
            output_artifact_details: ArtifactDetails {
                minimum_count: 1,
                maximum_count: 1,
            },
        }
    }

    fn keys(types: &[ActionType]) -> Vec<String> {
        types
            .iter()
            .map(|t| ActionTypeKey::from_id(&t.id).to_string())
            .collect()
    }

    #[test]
    fn a_new_registry_holds_the_manual_approval_and_the_aws_catalogue() {
        let registry = ActionTypeRegistry::new();
        let aws = keys(&registry.list(Some(ActionOwner::Aws)));
        for key in [
            "Approval/AWS/Manual/1",
            "Build/AWS/CodeBuild/1",
            "Source/AWS/CodeCommit/1",
        ] {
            assert!(aws.iter().any(|k| k == key), "{key}");
        }
        assert_eq!(registry.len(), aws_action_types().len() + 1);
        assert!(registry.list(Some(ActionOwner::Custom)).is_empty());
        assert!(!registry.is_empty());
    }

    #[test]
    fn aws_types_can_be_neither_replaced_nor_removed() {
        let mut registry = ActionTypeRegistry::new();
        let codebuild = aws_action_types()
            .iter()
            .find(|e| e.key().to_string() == "Build/AWS/CodeBuild/1")
            .expect("CodeBuild is catalogued")
            .action_type
            .clone();
        let mut replacement = codebuild.clone();
        replacement.input_artifact_details.maximum_count = 0;
        assert_eq!(registry.insert(replacement), None);
        assert!(!registry.remove(&codebuild.id));
        assert_eq!(registry.get(&codebuild.id), Some(&codebuild));
    }

    #[test]
    fn the_manual_approval_has_three_optional_plain_properties_and_no_artifacts() {
        let registry = ActionTypeRegistry::new();
        let approval = registry
            .get(&manual_approval_id())
            .expect("the manual approval is built in");
        let properties = approval
            .action_configuration_properties
            .as_deref()
            .unwrap_or_default();
        let names: Vec<&str> = properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, [NOTIFICATION_ARN, CUSTOM_DATA, EXTERNAL_ENTITY_LINK]);
        assert!(properties
            .iter()
            .all(|p| !p.required && !p.key && !p.secret));
        for details in [
            &approval.input_artifact_details,
            &approval.output_artifact_details,
        ] {
            assert_eq!((details.minimum_count, details.maximum_count), (0, 0));
        }
    }

    #[test]
    fn custom_types_are_listed_in_key_order_and_filtered_by_owner() {
        let mut registry = ActionTypeRegistry::new();
        assert!(registry
            .insert(custom_type(ActionCategory::Source, "LocalSource", "1"))
            .is_none());
        assert!(registry
            .insert(custom_type(ActionCategory::Build, "Shell", "2"))
            .is_none());
        assert!(registry
            .insert(custom_type(ActionCategory::Build, "Shell", "1"))
            .is_none());
        let custom_or_approval: Vec<String> = keys(&registry.list(None))
            .into_iter()
            .filter(|k| k.contains("/Custom/") || k == "Approval/AWS/Manual/1")
            .collect();
        assert_eq!(
            custom_or_approval,
            [
                "Approval/AWS/Manual/1",
                "Build/Custom/Shell/1",
                "Build/Custom/Shell/2",
                "Source/Custom/LocalSource/1",
            ]
        );
        assert_eq!(
            keys(&registry.list(Some(ActionOwner::Custom))),
            [
                "Build/Custom/Shell/1",
                "Build/Custom/Shell/2",
                "Source/Custom/LocalSource/1",
            ]
        );
        assert!(registry
            .list(Some(ActionOwner::ThirdParty))
            .iter()
            .all(|t| t.id.owner == ActionOwner::ThirdParty));
    }

    #[test]
    fn inserting_a_type_again_replaces_it_and_returns_the_old_one() {
        let mut registry = ActionTypeRegistry::new();
        let first = custom_type(ActionCategory::Build, "Shell", "1");
        registry.insert(first.clone());
        let mut second = first.clone();
        second.output_artifact_details.maximum_count = 5;
        assert_eq!(registry.insert(second.clone()), Some(first));
        assert_eq!(registry.get(&second.id), Some(&second));
    }

    #[test]
    fn removing_a_custom_type_succeeds_once() {
        let mut registry = ActionTypeRegistry::new();
        let shell = custom_type(ActionCategory::Build, "Shell", "1");
        registry.insert(shell.clone());
        assert!(registry.remove(&shell.id));
        assert!(!registry.remove(&shell.id));
        assert!(registry.get(&shell.id).is_none());
    }

    #[test]
    fn the_manual_approval_can_be_neither_removed_nor_replaced() {
        let mut registry = ActionTypeRegistry::new();
        let original = manual_approval_action_type();
        assert!(!registry.remove(&manual_approval_id()));
        let mut replacement = original.clone();
        replacement.input_artifact_details.maximum_count = 5;
        assert_eq!(registry.insert(replacement), None);
        assert_eq!(registry.get(&manual_approval_id()), Some(&original));
    }

    #[test]
    fn only_approval_aws_manual_1_is_the_manual_approval() {
        let registry = ActionTypeRegistry::new();
        assert!(registry.is_manual_approval(&manual_approval_id()));
        let mut other_version = manual_approval_id();
        other_version.version = "2".to_owned();
        assert!(!registry.is_manual_approval(&other_version));
        let mut custom = manual_approval_id();
        custom.owner = ActionOwner::Custom;
        assert!(!registry.is_manual_approval(&custom));
    }

    #[test]
    fn an_action_type_key_displays_and_parses_as_category_owner_provider_version() {
        let key = ActionTypeKey::from_id(&manual_approval_id());
        assert_eq!(key.to_string(), "Approval/AWS/Manual/1");
        assert_eq!("Approval/AWS/Manual/1".parse(), Ok(key.clone()));
        assert!(key.is_manual_approval());
        for bad in ["", "Approval/AWS/Manual", "Approval/AWS//1", "a/b/c/d/e"] {
            assert!(bad.parse::<ActionTypeKey>().is_err(), "{bad:?}");
        }
    }
}
