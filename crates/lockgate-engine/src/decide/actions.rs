//! Starting an action: an approval waiting for an answer, or a job for a worker with its
//! input and output artifacts.

use std::collections::BTreeMap;

use lockgate_shapes::{
    ActionExecutionStatus, Artifact, ArtifactLocation, ArtifactLocationType, JobData, JobStatus,
    PipelineContext, PipelineDeclaration, S3ArtifactLocation,
};

use lockgate_model::action_types::{is_run_by_lockgate, EXTERNAL_ENTITY_LINK};
use lockgate_model::artifact_names::{artifact_bucket, artifact_key};
use lockgate_model::notice::NoticeKind;
use lockgate_model::validate::is_http_url;
use lockgate_model::{ActionExecutionId, ApprovalToken, JobId};

use super::variables::{check_commands, resolve_configuration, Scope};
use super::{is_manual_approval, Decider, DEFAULT_APPROVAL_TIMEOUT_MINUTES};
use crate::state::{ActionKind, ActionRun, ArtifactRecord, JobRecord};

impl<'a> Decider<'a> {
    /// Starts action `k` of stage `s` in execution `i`.
    pub(super) fn start_action(
        &mut self,
        i: usize,
        s: usize,
        k: usize,
        decl: &PipelineDeclaration,
    ) {
        let action = &decl.stages[s].actions[k];
        let kind = if is_manual_approval(&action.action_type_id) {
            ActionKind::Approval
        } else {
            ActionKind::Job
        };
        let action_execution_id = ActionExecutionId::from(self.ids.uuid());
        let mut run = ActionRun {
            action_index: k,
            name: action.name.clone(),
            kind,
            action_execution_id: action_execution_id.clone(),
            status: ActionExecutionStatus::InProgress,
            summary: None,
            started: self.now,
            last_change: self.now,
            token: None,
            last_updated_by: None,
            external_execution_id: None,
            external_execution_url: None,
            percent_complete: None,
            error: None,
            job_id: None,
            deadline: None,
            job_deadline: None,
            output_variables: BTreeMap::new(),
            resolved_configuration: None,
            decided: false,
        };
        let (resolved, commands) = {
            let scope = Scope::of(&self.state.executions[i], decl);
            (
                resolve_configuration(action.configuration.as_ref(), &scope),
                check_commands(action, &scope),
            )
        };
        // A link a variable made must still be one the console may render.
        let bad_link = resolved.as_ref().ok().and_then(|r| {
            r.as_ref()
                .filter(|_| kind == ActionKind::Approval)
                .and_then(|c| c.get(EXTERNAL_ENTITY_LINK))
                .filter(|link| !is_http_url(link))
                .map(|link| {
                    format!(
                        "The {EXTERNAL_ENTITY_LINK} of action {} resolved to '{link}', which is \
                         not an http or https URL",
                        action.name
                    )
                })
        });
        let failure = match resolved {
            Ok(_) if bad_link.is_some() => bad_link,
            Ok(_) if commands.is_err() => commands.err(),
            Ok(resolved) => {
                run.resolved_configuration = resolved;
                None
            }
            Err(unresolved) => Some(unresolved.message(&action.name, "configuration")),
        };
        if let Some(message) = failure {
            // Nothing was handed out or armed: the action fails as it starts, and the stage with
            // it (the next step of `advance` sees the failure).
            run.status = ActionExecutionStatus::Failed;
            run.error = Some(("VariableResolutionFailed".into(), message));
            let e = self.exec_mut(i);
            if let Some(stage) = e.stages[s].as_mut() {
                stage.actions[k] = Some(run);
            }
            return;
        }
        match kind {
            ActionKind::Approval => {
                let token = ApprovalToken::from(self.ids.uuid());
                let minutes = action
                    .timeout_in_minutes
                    .map(i64::from)
                    .unwrap_or(DEFAULT_APPROVAL_TIMEOUT_MINUTES);
                run.external_execution_id = Some(token.to_string());
                run.token = Some(token);
                run.deadline = Some(self.now + minutes * 60_000);
            }
            ActionKind::Job => {
                if is_run_by_lockgate(&action.action_type_id) {
                    run.external_execution_url = Some(self.cfg.action_log_url(
                        &decl.name,
                        self.state.executions[i].id.as_str(),
                        action_execution_id.as_str(),
                    ));
                }
                let configuration = run.configuration(action).cloned();
                let job = self.new_job(i, s, k, decl, &action_execution_id, configuration, None);
                run.job_id = Some(job.id.clone());
                run.deadline = Some(self.now + self.cfg.job_timeout_millis);
                self.open_job(i, job);
            }
        }
        let expires = run.deadline;
        let e = self.exec_mut(i);
        if let Some(stage) = e.stages[s].as_mut() {
            stage.actions[k] = Some(run);
        }
        if let (ActionKind::Approval, Some(expires)) = (kind, expires) {
            self.notice(i, s, k, NoticeKind::ApprovalNeeded, expires);
        }
    }

    /// Builds the job a worker receives for action `k` of stage `s`, carrying `configuration`
    /// (the action's, with its variable references resolved).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_job(
        &mut self,
        i: usize,
        s: usize,
        k: usize,
        decl: &PipelineDeclaration,
        action_execution_id: &ActionExecutionId,
        configuration: Option<BTreeMap<String, String>>,
        continuation_token: Option<String>,
    ) -> JobRecord {
        let pipeline_name = decl.name.clone();
        let stage = &decl.stages[s];
        let action = &stage.actions[k];
        let bucket = artifact_bucket(decl, action);
        // A source action told which revision to fetch (StartPipelineExecution's
        // sourceRevisions) finds it as its output artifacts' revision.
        let wanted = self.state.executions[i]
            .source_overrides
            .iter()
            .find(|o| o.action_name == action.name)
            .map(|o| o.revision_value.clone());
        let mut output_artifacts = Vec::new();
        let mut new_records = Vec::new();
        for out in action.output_artifacts.iter().flatten() {
            // A continuation job carries on the same action execution, so it must write where
            // the first job was told to: later actions read the artifact from that location.
            let recorded = continuation_token.as_ref().and_then(|_| {
                self.state.executions[i]
                    .artifacts
                    .get(&out.name)
                    .map(|r| (r.bucket.clone(), r.object_key.clone()))
            });
            if let Some((bucket, key)) = recorded {
                output_artifacts.push(artifact(&out.name, wanted.clone(), &bucket, &key));
                continue;
            }
            let key = artifact_key(&pipeline_name, &out.name, &self.ids.uuid()[..7]);
            new_records.push((
                out.name.clone(),
                ArtifactRecord {
                    bucket: bucket.clone(),
                    object_key: key.clone(),
                    revision: None,
                    change_identifier: None,
                    revision_summary: None,
                    created: None,
                    producer: action.name.clone(),
                },
            ));
            output_artifacts.push(artifact(&out.name, wanted.clone(), &bucket, &key));
        }
        let execution = &self.state.executions[i];
        let input_artifacts = action
            .input_artifacts
            .iter()
            .flatten()
            .map(|input| match execution.artifacts.get(&input.name) {
                Some(r) => artifact(&input.name, r.revision.clone(), &r.bucket, &r.object_key),
                None => artifact(&input.name, None, &bucket, ""),
            })
            .collect();
        let execution_id = execution.id.clone();
        // A continuation carries on a run that is under way: it is queued as of the action's
        // start, ahead of jobs created since, so the worker watching the run gets it at once.
        let created = continuation_token
            .as_ref()
            .and_then(|_| execution.stages[s].as_ref()?.actions[k].as_ref())
            .map_or(self.now, |run| run.started);
        let job_id = JobId::from(self.ids.uuid());
        let nonce = self.ids.nonce();
        if continuation_token.is_none() {
            let e = self.exec_mut(i);
            for (name, rec) in new_records {
                e.artifacts.insert(name, rec);
            }
        }
        JobRecord {
            id: job_id,
            nonce,
            status: JobStatus::Queued,
            action_type_id: action.action_type_id.clone(),
            pipeline_name: pipeline_name.clone(),
            execution_id: execution_id.clone(),
            stage_index: s,
            action_index: k,
            action_execution_id: action_execution_id.clone(),
            data: JobData {
                action_type_id: Some(action.action_type_id.clone()),
                action_configuration: Some(lockgate_shapes::ActionConfiguration { configuration }),
                pipeline_context: Some(PipelineContext {
                    pipeline_name: Some(pipeline_name.clone()),
                    stage: Some(lockgate_shapes::StageContext {
                        name: Some(stage.name.clone()),
                    }),
                    action: Some(lockgate_shapes::ActionContext {
                        name: Some(action.name.clone()),
                        action_execution_id: Some(action_execution_id.to_string()),
                    }),
                    pipeline_arn: Some(self.cfg.pipeline_arn(&pipeline_name)),
                    pipeline_execution_id: Some(execution_id.into()),
                }),
                input_artifacts: Some(input_artifacts),
                output_artifacts: Some(output_artifacts),
                artifact_credentials: None,
                continuation_token,
                encryption_key: None,
            },
            created,
        }
    }
}

fn artifact(name: &str, revision: Option<String>, bucket: &str, key: &str) -> Artifact {
    Artifact {
        name: Some(name.to_string()),
        revision,
        location: Some(ArtifactLocation {
            r#type: Some(ArtifactLocationType::S3),
            s3_location: Some(S3ArtifactLocation {
                bucket_name: bucket.to_string(),
                object_key: key.to_string(),
            }),
        }),
    }
}
