//! Pipeline declarations: CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline and
//! ListPipelines, and the defaults CodePipeline fills into a declaration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lockgate_model::Caller;
use lockgate_shapes::{
    CreatePipelineInput, CreatePipelineOutput, DeletePipelineInput, ErrorCode, GetPipelineInput,
    GetPipelineOutput, ListPipelinesInput, ListPipelinesOutput, PipelineDeclaration,
    PipelineSummary, ServiceError, TriggerType, UpdatePipelineInput, UpdatePipelineOutput,
};
use lockgate_store::{Collection, Cursor, Mutation, Scan};

use super::tags::tags_mutation;
use super::{err, internal, version_key, Decision, Effect, PipelineService};
use crate::decide::{Decider, RandomIds, StartRequest};
use crate::paging;
use crate::state::{PipelineEntry, PipelineState};
use crate::stored;
use crate::views;
use lockgate_model::validate_pipeline;

impl PipelineService {
    /// Remembers, and warns about, approvals whose `NotificationArn` names a topic the server's
    /// configuration neither lists nor catches (`[[topics]]` with `arn = "*"`). CodePipeline
    /// accepts any topic, so the pipeline is accepted as it is; the console's Notifications page
    /// lists these approvals, and their messages are kept as failed deliveries with the reason.
    fn note_unheard_topics(&self, decl: &PipelineDeclaration) {
        for u in self.unheard.record(decl, &self.cfg.notification_topics) {
            tracing::warn!(
                pipeline = %u.pipeline,
                stage = %u.stage,
                action = %u.action,
                topic = %u.topic,
                "the approval's NotificationArn names a topic no [[topics]] entry lists and there \
                 is no catch-all topic (arn = \"*\"): its notifications will be kept as failed \
                 deliveries"
            );
        }
    }

    pub(super) async fn handle_create_pipeline(
        &self,
        caller: &Caller,
        input: CreatePipelineInput,
    ) -> Result<CreatePipelineOutput, ServiceError> {
        let validated = validate_pipeline(&input.pipeline, &self.registry())?;
        let tags = input.tags.unwrap_or_default();
        self.check_tags(&tags)?;
        let mut decl = validated.into_declaration();
        decl.version = Some(1);
        // The name's slot serialises creating, changing and deleting this pipeline; creations of
        // other pipelines go on side by side and share group commits.
        let slot = self.slot(&decl.name).await?;
        let _write = slot.write.lock().await;
        if slot.state().is_some() {
            return Err(err(
                ErrorCode::PipelineNameInUseException,
                format!("A pipeline with the name '{}' already exists", decl.name),
            ));
        }
        let now = self.clock.now_millis();
        let name = decl.name.clone();
        let shared = Arc::new(decl.clone());
        let mut state = PipelineState {
            entry: PipelineEntry {
                declaration: Arc::clone(&shared),
                created: now,
                updated: now,
                transitions: BTreeMap::new(),
                next_seq: 0,
            },
            versions: BTreeMap::from([(1, shared)]),
            executions: Vec::new(),
            history_truncated: false,
            complete_from_seq: 0,
        };
        let mut ids = RandomIds;
        let outcome = {
            let mut d = Decider::new(&mut state, now, &mut ids, &self.cfg);
            d.start(StartRequest {
                trigger_type: TriggerType::CreatePipeline,
                trigger_detail: caller.arn(),
                client_request_token: None,
                variables: default_variables(&decl),
                source_overrides: Vec::new(),
            });
            d.out
        };
        let mut decision = self.decision(&slot, None, state, &outcome);
        decision
            .mutations
            .push(Mutation::Put(stored::pipeline::version_record(
                &name, 1, &decl,
            )));
        if !tags.is_empty() {
            let arn = self.cfg.pipeline_arn(&name);
            decision.mutations.push(tags_mutation(&arn, &tags));
        }
        self.commit(decision).await?;
        self.note_unheard_topics(&decl);
        Ok(CreatePipelineOutput {
            pipeline: Some(decl),
            tags: (!tags.is_empty()).then_some(tags),
        })
    }

    pub(super) async fn handle_get_pipeline(
        &self,
        _caller: &Caller,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ServiceError> {
        let state = self.pipeline(&input.name).await?;
        let current = state.entry.version();
        let pipeline = match input.version {
            None => (*state.entry.declaration).clone(),
            Some(v) if v == current => (*state.entry.declaration).clone(),
            Some(v) => {
                let found = match state.versions.get(&v) {
                    Some(d) => Some((**d).clone()),
                    None => match self
                        .store
                        .get(Collection::PipelineVersion, &version_key(&input.name, v))
                        .await
                        .map_err(internal)?
                    {
                        Some(r) => Some(stored::pipeline::read_version(&r).map_err(internal)?),
                        None => None,
                    },
                };
                found.ok_or_else(|| {
                    err(
                        ErrorCode::PipelineVersionNotFoundException,
                        format!("Pipeline {} has no version {v}", input.name),
                    )
                })?
            }
        };
        Ok(GetPipelineOutput {
            pipeline: Some(pipeline),
            metadata: Some(views::pipeline_metadata(&state.entry, &self.cfg)),
        })
    }

    pub(super) async fn handle_update_pipeline(
        &self,
        _caller: &Caller,
        input: UpdatePipelineInput,
    ) -> Result<UpdatePipelineOutput, ServiceError> {
        let decl = input.pipeline;
        if self.slot(&decl.name).await?.state().is_none() {
            return Err(err(
                ErrorCode::ValidationException,
                format!(
                    "Account '{}' does not have a pipeline with name '{}'",
                    self.cfg.account_id, decl.name
                ),
            ));
        }
        let mut decl = validate_pipeline(&decl, &self.registry())?.into_declaration();
        let name = decl.name.clone();
        let now = self.clock.now_millis();
        let out = self
            .mutate(&name, |d, extra| {
                let version = d.state.entry.version() + 1;
                decl.version = Some(version);
                let stages: BTreeSet<&str> = decl.stages.iter().map(|s| s.name.as_str()).collect();
                let entry = &mut d.state.entry;
                entry.transitions.retain(|k, _| stages.contains(k.as_str()));
                let shared = Arc::new(decl.clone());
                entry.declaration = Arc::clone(&shared);
                entry.updated = now;
                d.state.versions.insert(version, shared);
                d.out.entry_dirty = true;
                extra.push(Mutation::Put(stored::pipeline::version_record(
                    &name, version, &decl,
                )));
                d.advance();
                Ok(UpdatePipelineOutput {
                    pipeline: Some(decl.clone()),
                })
            })
            .await?;
        if let Some(decl) = &out.pipeline {
            self.note_unheard_topics(decl);
        }
        Ok(out)
    }

    pub(super) async fn handle_delete_pipeline(
        &self,
        _caller: &Caller,
        input: DeletePipelineInput,
    ) -> Result<(), ServiceError> {
        let slot = self.slot(&input.name).await?;
        let _write = slot.write.lock().await;
        if slot.state().is_none() {
            return Ok(());
        }
        let name = input.name;
        let arn = self.cfg.pipeline_arn(&name);
        let mut mutations = vec![
            Mutation::Delete {
                collection: Collection::Pipeline,
                key: name.clone(),
            },
            Mutation::Delete {
                collection: Collection::Tags,
                key: arn.clone(),
            },
        ];
        for c in [
            Collection::PipelineVersion,
            Collection::Execution,
            Collection::Job,
            Collection::Timer,
            // Undelivered notifications would only point at a pipeline that is gone.
            Collection::Outbox,
        ] {
            mutations.push(Mutation::DeleteChildren {
                collection: c,
                parent: name.clone(),
            });
        }
        self.unheard.forget(&name);
        self.commit(Decision {
            mutations,
            effects: vec![Effect::RemovePipeline(slot.clone(), name)],
        })
        .await?;
        Ok(())
    }

    pub(super) async fn handle_list_pipelines(
        &self,
        _caller: &Caller,
        input: ListPipelinesInput,
    ) -> Result<ListPipelinesOutput, ServiceError> {
        let max = paging::max_results(input.max_results, 100, 1000);
        let after = paging::decode(input.next_token.as_deref())?;
        // One index scan from the cursor (the name the last page ended with): the page costs
        // the page, and names created or deleted meanwhile never shift it.
        let records = self
            .store
            .scan(
                Scan::new(Collection::Pipeline, max + 1)
                    .after(after.map(|key| Cursor { position: 0, key })),
            )
            .await
            .map_err(internal)?;
        let more = records.len() > max;
        let mut page = Vec::with_capacity(max);
        for r in records.iter().take(max) {
            let entry = stored::pipeline::read_entry(r).map_err(internal)?;
            page.push(views::pipeline_summary(&entry));
        }
        let next = more
            .then(|| page.last().and_then(|p: &PipelineSummary| p.name.clone()))
            .flatten();
        Ok(ListPipelinesOutput {
            pipelines: Some(page),
            next_token: next.map(|n| paging::encode(&n)),
        })
    }
}

/// The pipeline variables a new execution starts with: those declared with a default value.
pub(super) fn default_variables(decl: &PipelineDeclaration) -> BTreeMap<String, String> {
    decl.variables
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.default_value.clone()?)))
        .collect()
}
