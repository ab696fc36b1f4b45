//! Rule types: ListRuleTypes answers with the AWS-owned rule types of the rule reference
//! (`lockgate_model::rule_types`), the ones stage conditions may use.

use lockgate_model::rule_types::aws_rule_types;
use lockgate_model::Caller;
use lockgate_shapes::{ListRuleTypesInput, ListRuleTypesOutput, RuleOwner, ServiceError};

use super::PipelineService;

impl PipelineService {
    pub(super) async fn handle_list_rule_types(
        &self,
        _caller: &Caller,
        input: ListRuleTypesInput,
    ) -> Result<ListRuleTypesOutput, ServiceError> {
        // Every rule type is owned by AWS and offered in every region, this one included.
        let rule_types = aws_rule_types()
            .iter()
            .map(|entry| entry.rule_type.clone())
            .filter(|t| {
                input
                    .rule_owner_filter
                    .as_ref()
                    .is_none_or(|owner| t.id.owner.as_ref().unwrap_or(&RuleOwner::Aws) == owner)
            })
            .collect();
        Ok(ListRuleTypesOutput { rule_types })
    }
}
