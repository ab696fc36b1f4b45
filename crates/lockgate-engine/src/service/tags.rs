//! Tags on pipelines and custom action types: TagResource, UntagResource and
//! ListTagsForResource, and the tag rules CreatePipeline and CreateCustomActionType also apply.

use std::collections::BTreeSet;

use lockgate_model::Caller;
use lockgate_shapes::{
    ErrorCode, ListTagsForResourceInput, ListTagsForResourceOutput, ServiceError, Tag,
    TagResourceInput, TagResourceOutput, UntagResourceInput, UntagResourceOutput,
};
use lockgate_store::{Collection, Mutation};

use super::{err, internal, Decision, PipelineService};
use crate::paging;
use crate::stored;

/// Most tags on one resource.
const MAX_TAGS: usize = 50;

impl PipelineService {
    pub(super) async fn handle_tag_resource(
        &self,
        _caller: &Caller,
        input: TagResourceInput,
    ) -> Result<TagResourceOutput, ServiceError> {
        self.check_tags(&input.tags)?;
        self.edit_tags(&input.resource_arn, |tags| {
            for t in input.tags {
                match tags.iter_mut().find(|x| x.key == t.key) {
                    Some(x) => x.value = t.value,
                    None => tags.push(t),
                }
            }
        })
        .await?;
        Ok(TagResourceOutput {})
    }

    pub(super) async fn handle_untag_resource(
        &self,
        _caller: &Caller,
        input: UntagResourceInput,
    ) -> Result<UntagResourceOutput, ServiceError> {
        self.edit_tags(&input.resource_arn, |tags| {
            tags.retain(|t| !input.tag_keys.contains(&t.key));
        })
        .await?;
        Ok(UntagResourceOutput {})
    }

    pub(super) async fn handle_list_tags_for_resource(
        &self,
        _caller: &Caller,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        self.check_resource(&input.resource_arn).await?;
        let tags = self.stored_tags(&input.resource_arn).await?;
        let max = paging::max_results(input.max_results, 100, 100);
        let offset: usize = match paging::decode(input.next_token.as_deref())? {
            Some(s) => s.parse().map_err(|_| paging::invalid())?,
            None => 0,
        };
        let page: Vec<Tag> = tags.iter().skip(offset).take(max).cloned().collect();
        let next = (offset + page.len() < tags.len())
            .then(|| paging::encode(&(offset + page.len()).to_string()));
        Ok(ListTagsForResourceOutput {
            tags: Some(page),
            next_token: next,
        })
    }

    /// Changes the tags of an existing resource: checks the ARN, applies `edit`, checks the
    /// result against the tag rules, and commits. The edit holds the pipeline's write lock (or,
    /// for an action type, the admin lock), so it cannot interleave with another edit or bring
    /// back the tags of a pipeline deleted meanwhile.
    async fn edit_tags(
        &self,
        arn: &str,
        edit: impl FnOnce(&mut Vec<Tag>),
    ) -> Result<(), ServiceError> {
        let _admin = self.admin.lock().await;
        let slot = match self.tagged_pipeline(arn) {
            Some(name) => Some(self.slot(name).await?),
            None => None,
        };
        let _write = match &slot {
            Some(slot) => Some(slot.write.lock().await),
            None => None,
        };
        self.check_resource(arn).await?;
        let mut tags = self.stored_tags(arn).await?;
        edit(&mut tags);
        self.check_tags(&tags)?;
        self.commit(Decision {
            mutations: vec![tags_mutation(arn, &tags)],
            effects: Vec::new(),
        })
        .await
    }

    /// The tags of a resource, as stored.
    pub(super) async fn stored_tags(&self, arn: &str) -> Result<Vec<Tag>, ServiceError> {
        match self
            .store
            .get(Collection::Tags, arn)
            .await
            .map_err(internal)?
        {
            Some(r) => stored::tags::read(&r).map_err(internal),
            None => Ok(Vec::new()),
        }
    }

    /// The pipeline name an ARN of this account names, if it names one.
    fn tagged_pipeline<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let prefix = format!(
            "arn:aws:codepipeline:{}:{}:",
            self.cfg.region, self.cfg.account_id
        );
        arn.strip_prefix(&prefix)
            .filter(|rest| !rest.starts_with("actiontype:"))
    }

    /// Checks tags against the rules: at most `MAX_TAGS`, no reserved `aws:` prefix, no key
    /// given twice.
    pub(super) fn check_tags(&self, tags: &[Tag]) -> Result<(), ServiceError> {
        if tags.len() > MAX_TAGS {
            return Err(err(
                ErrorCode::TooManyTagsException,
                format!("A resource can have at most {MAX_TAGS} tags"),
            ));
        }
        if let Some(t) = tags
            .iter()
            .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
        {
            return Err(err(
                ErrorCode::InvalidTagsException,
                format!("Tag key '{}' uses the reserved prefix 'aws:'", t.key),
            ));
        }
        let mut seen = BTreeSet::new();
        if let Some(t) = tags.iter().find(|t| !seen.insert(t.key.as_str())) {
            return Err(err(
                ErrorCode::InvalidTagsException,
                format!("Tag key '{}' is given more than once", t.key),
            ));
        }
        Ok(())
    }

    /// Checks that `arn` names an existing pipeline or custom action type of this account.
    async fn check_resource(&self, arn: &str) -> Result<(), ServiceError> {
        let prefix = format!(
            "arn:aws:codepipeline:{}:{}:",
            self.cfg.region, self.cfg.account_id
        );
        let missing = || {
            err(
                ErrorCode::ResourceNotFoundException,
                format!("The resource with the ARN {arn} does not exist"),
            )
        };
        if !arn.starts_with("arn:aws") || arn.split(':').count() < 6 {
            return Err(err(
                ErrorCode::InvalidArnException,
                format!("The ARN {arn} is not valid"),
            ));
        }
        let Some(rest) = arn.strip_prefix(&prefix) else {
            return Err(missing());
        };
        if let Some(t) = rest.strip_prefix("actiontype:") {
            let exists = self.registry().list(None).iter().any(|at| {
                self.action_type_arn(&at.id)
                    .ends_with(&format!(":actiontype:{t}"))
            });
            return if exists { Ok(()) } else { Err(missing()) };
        }
        match self.pipeline(rest).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::PipelineNotFoundException => Err(missing()),
            Err(e) => Err(e),
        }
    }
}

/// The record holding a resource's tags.
pub(super) fn tags_mutation(arn: &str, tags: &[Tag]) -> Mutation {
    Mutation::Put(stored::tags::record(arn, tags))
}
