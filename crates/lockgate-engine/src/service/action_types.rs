//! Action types: CreateCustomActionType, DeleteCustomActionType, ListActionTypes and
//! GetActionType, and the ARN an action type is tagged under.

use std::collections::BTreeSet;

use lockgate_model::catalogue::aws_action_types;
use lockgate_model::{ActionTypeKey, Caller};
use lockgate_shapes::{
    ActionOwner, ActionType, ActionTypeArtifactDetails, ActionTypeDeclaration, ActionTypeExecutor,
    ActionTypeId, ActionTypeIdentifier, ActionTypeProperty, ArtifactDetails,
    CreateCustomActionTypeInput, CreateCustomActionTypeOutput, DeleteCustomActionTypeInput,
    ErrorCode, ExecutorConfiguration, ExecutorType, GetActionTypeInput, GetActionTypeOutput,
    JobWorkerExecutorConfiguration, ListActionTypesInput, ListActionTypesOutput, ServiceError,
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

    pub(super) async fn handle_get_action_type(
        &self,
        _caller: &Caller,
        input: GetActionTypeInput,
    ) -> Result<GetActionTypeOutput, ServiceError> {
        let key = ActionTypeKey::new(
            input.category.as_str(),
            input.owner.as_str(),
            input.provider.as_str(),
            input.version.as_str(),
        );
        let registry = self.registry();
        let found = registry.get_by_key(&key).filter(|_| key.owner != "Custom");
        let Some(action_type) = found else {
            return Err(err(
                ErrorCode::ActionTypeNotFoundException,
                format!("ActionType {key} is not found"),
            ));
        };
        Ok(GetActionTypeOutput {
            action_type: Some(declaration_of(action_type, catalogue_reference(&key))),
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

/// The user guide page an AWS action type was catalogued from, if it is one.
fn catalogue_reference(key: &ActionTypeKey) -> Option<&'static str> {
    aws_action_types()
        .iter()
        .find(|entry| &entry.key() == key)
        .map(|entry| entry.reference.as_str())
}

/// An action type as GetActionType describes it: run by job workers (which is how Lockgate hands
/// out every action but the manual approval), its properties with `optional` and `noEcho` for
/// ListActionTypes' `required` and `secret`.
fn declaration_of(action_type: &ActionType, reference: Option<&str>) -> ActionTypeDeclaration {
    let id = &action_type.id;
    let details = |d: &ArtifactDetails| ActionTypeArtifactDetails {
        minimum_count: d.minimum_count,
        maximum_count: d.maximum_count,
    };
    let properties = action_type
        .action_configuration_properties
        .iter()
        .flatten()
        .map(|p| ActionTypeProperty {
            name: p.name.clone(),
            optional: !p.required,
            key: p.key,
            no_echo: p.secret,
            queryable: p.queryable,
            description: p.description.clone(),
        })
        .collect();
    ActionTypeDeclaration {
        description: Some(match reference {
            Some(url) => format!(
                "{} action {}, as documented at {url}",
                id.category.as_str(),
                id.provider
            ),
            None => format!("{} action {}", id.category.as_str(), id.provider),
        }),
        executor: ActionTypeExecutor {
            configuration: ExecutorConfiguration {
                lambda_executor_configuration: None,
                job_worker_executor_configuration: Some(JobWorkerExecutorConfiguration {
                    polling_accounts: None,
                    polling_service_principals: None,
                }),
            },
            r#type: ExecutorType::JobWorker,
            policy_statements_template: None,
            job_timeout: None,
        },
        id: ActionTypeIdentifier {
            category: id.category,
            owner: id.owner.as_str().to_owned(),
            provider: id.provider.clone(),
            version: id.version.clone(),
        },
        input_artifact_details: details(&action_type.input_artifact_details),
        output_artifact_details: details(&action_type.output_artifact_details),
        permissions: None,
        properties: Some(properties),
        urls: None,
    }
}
