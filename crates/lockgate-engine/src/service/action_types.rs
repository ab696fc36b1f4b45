//! Custom action types: CreateCustomActionType, DeleteCustomActionType and ListActionTypes, and
//! the ARN an action type is tagged under.

use std::collections::BTreeSet;

use lockgate_model::Caller;
use lockgate_shapes::{
    ActionOwner, ActionType, ActionTypeId, CreateCustomActionTypeInput,
    CreateCustomActionTypeOutput, DeleteCustomActionTypeInput, ErrorCode, ListActionTypesInput,
    ListActionTypesOutput, ServiceError,
};
use lockgate_store::{Collection, Mutation};

use super::tags::tags_mutation;
use super::{err, Decision, Effect, PipelineService};
use crate::jobs::action_type_key;
use crate::paging;
use crate::stored;

impl PipelineService {
    pub(super) async fn handle_create_custom_action_type(
        &self,
        _caller: &Caller,
        input: CreateCustomActionTypeInput,
    ) -> Result<CreateCustomActionTypeOutput, ServiceError> {
        let tags = input.tags.unwrap_or_default();
        self.check_tags(&tags)?;
        let id = ActionTypeId {
            category: input.category,
            owner: ActionOwner::Custom,
            provider: input.provider,
            version: input.version,
        };
        let props = input.configuration_properties.unwrap_or_default();
        let keys = props.iter().filter(|p| p.key).count();
        if keys > 3 {
            return Err(err(
                ErrorCode::ValidationException,
                "A custom action type can have at most 3 key configuration properties",
            ));
        }
        let mut names = BTreeSet::new();
        if let Some(p) = props.iter().find(|p| !names.insert(p.name.as_str())) {
            return Err(err(
                ErrorCode::ValidationException,
                format!(
                    "Configuration property '{}' is declared more than once",
                    p.name
                ),
            ));
        }
        for details in [
            &input.input_artifact_details,
            &input.output_artifact_details,
        ] {
            if details.minimum_count > details.maximum_count {
                return Err(err(
                    ErrorCode::ValidationException,
                    "minimumCount must not exceed maximumCount",
                ));
            }
        }
        let action_type = ActionType {
            id: id.clone(),
            settings: input.settings,
            action_configuration_properties: Some(props),
            input_artifact_details: input.input_artifact_details,
            output_artifact_details: input.output_artifact_details,
        };
        let _admin = self.admin.lock().await;
        if self.registry().contains(&id) {
            return Err(err(
                ErrorCode::ValidationException,
                format!("The action type {} already exists", action_type_key(&id)),
            ));
        }
        let arn = self.action_type_arn(&id);
        let mut mutations = vec![Mutation::Put(stored::action_type::record(&action_type))];
        if !tags.is_empty() {
            mutations.push(tags_mutation(&arn, &tags));
        }
        let effects = vec![Effect::AddActionType(Box::new(action_type.clone()))];
        self.commit(Decision { mutations, effects }).await?;
        Ok(CreateCustomActionTypeOutput {
            action_type,
            tags: (!tags.is_empty()).then_some(tags),
        })
    }

    pub(super) async fn handle_delete_custom_action_type(
        &self,
        _caller: &Caller,
        input: DeleteCustomActionTypeInput,
    ) -> Result<(), ServiceError> {
        let id = ActionTypeId {
            category: input.category,
            owner: ActionOwner::Custom,
            provider: input.provider,
            version: input.version,
        };
        let _admin = self.admin.lock().await;
        if !self.registry().contains(&id) {
            return Err(err(
                ErrorCode::ValidationException,
                format!("The action type {} does not exist", action_type_key(&id)),
            ));
        }
        let arn = self.action_type_arn(&id);
        self.commit(Decision {
            mutations: vec![
                Mutation::Delete {
                    collection: Collection::ActionType,
                    key: action_type_key(&id),
                },
                Mutation::Delete {
                    collection: Collection::Tags,
                    key: arn,
                },
            ],
            effects: vec![Effect::RemoveActionType(id)],
        })
        .await?;
        Ok(())
    }

    pub(super) async fn handle_list_action_types(
        &self,
        _caller: &Caller,
        input: ListActionTypesInput,
    ) -> Result<ListActionTypesOutput, ServiceError> {
        if input.next_token.is_some() {
            paging::decode(input.next_token.as_deref())?;
        }
        Ok(ListActionTypesOutput {
            action_types: self.registry().list(input.action_owner_filter),
            next_token: None,
        })
    }

    /// The ARN of an action type, under which its tags are kept.
    pub(super) fn action_type_arn(&self, id: &ActionTypeId) -> String {
        format!(
            "arn:aws:codepipeline:{}:{}:actiontype:{}/{}/{}/{}",
            self.cfg.region,
            self.cfg.account_id,
            id.owner.as_str(),
            id.category.as_str(),
            id.provider,
            id.version
        )
    }
}
