//! Approvals whose `NotificationArn` names a topic that no `[[topics]]` entry lists, with no
//! catch-all topic: CodePipeline accepts such a pipeline, and so does Lockgate, but nobody will
//! hear its approvals. They are remembered here when a pipeline is created or updated (in
//! memory, since the server started) so the console's Notifications page can say so before an
//! approval's message fails.

use std::collections::BTreeMap;
use std::sync::Mutex;

use lockgate_model::action_types::NOTIFICATION_ARN;
use lockgate_model::notice::CATCH_ALL_TOPIC;
use lockgate_shapes::PipelineDeclaration;

/// How many pipelines are remembered; past that, only how many more there are.
const REMEMBERED_PIPELINES: usize = 1_000;

/// One approval action naming a topic nobody is subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnheardTopic {
    /// The pipeline.
    pub pipeline: String,
    /// The approval's stage.
    pub stage: String,
    /// The approval action.
    pub action: String,
    /// The topic it names.
    pub topic: String,
}

/// The approvals of each pipeline that name unheard topics.
#[derive(Debug, Default)]
pub(super) struct UnheardTopics {
    by_pipeline: Mutex<BTreeMap<String, Vec<UnheardTopic>>>,
}

impl UnheardTopics {
    /// Remembers `decl`'s unheard approvals (none forgets the pipeline). Returns them.
    pub(super) fn record(
        &self,
        decl: &PipelineDeclaration,
        topics: &std::collections::BTreeSet<String>,
    ) -> Vec<UnheardTopic> {
        let unheard = unheard(decl, topics);
        let mut map = self.by_pipeline.lock().unwrap_or_else(|p| p.into_inner());
        if unheard.is_empty() {
            map.remove(&decl.name);
        } else if map.len() < REMEMBERED_PIPELINES || map.contains_key(&decl.name) {
            map.insert(decl.name.clone(), unheard.clone());
        }
        unheard
    }

    /// Forgets a deleted pipeline.
    pub(super) fn forget(&self, pipeline: &str) {
        self.by_pipeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(pipeline);
    }

    /// Every remembered unheard approval, by pipeline, stage and action.
    pub(super) fn all(&self) -> Vec<UnheardTopic> {
        self.by_pipeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}

/// The approvals of `decl` naming a topic neither listed in `topics` nor caught by `*`.
fn unheard(
    decl: &PipelineDeclaration,
    topics: &std::collections::BTreeSet<String>,
) -> Vec<UnheardTopic> {
    if topics.contains(CATCH_ALL_TOPIC) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for stage in &decl.stages {
        for action in &stage.actions {
            let topic = action
                .configuration
                .as_ref()
                .and_then(|c| c.get(NOTIFICATION_ARN));
            if let Some(topic) = topic.filter(|t| !topics.contains(*t)) {
                out.push(UnheardTopic {
                    pipeline: decl.name.clone(),
                    stage: stage.name.clone(),
                    action: action.name.clone(),
                    topic: topic.clone(),
                });
            }
        }
    }
    out
}
