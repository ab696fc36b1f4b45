//! Approval notices: the facts an approval event leaves for the notifier, recorded in the
//! [`Outcome`](super::Outcome) so the service writes them to the outbox in the same commit as
//! the state change. Only approvals whose declaration names a `NotificationArn` produce them.

use lockgate_model::action_types::{CUSTOM_DATA, EXTERNAL_ENTITY_LINK, NOTIFICATION_ARN};
use lockgate_model::notice::{ApprovalNotice, NoticeKind};

use super::Decider;
use lockgate_shapes::ActionDeclaration;

use crate::state::{ActionKind, ActionRun};

impl<'a> Decider<'a> {
    /// The approval run at action `k` of stage `s` in execution `i` with its stage and action
    /// declarations, when that approval names a `NotificationArn` (the only ones with notices).
    fn notifying_approval(
        &self,
        i: usize,
        s: usize,
        k: usize,
    ) -> Option<(&ActionRun, String, ActionDeclaration)> {
        let e = &self.state.executions[i];
        let run = e.stages[s].as_ref().and_then(|st| st.actions[k].as_ref())?;
        if run.kind != ActionKind::Approval {
            return None;
        }
        let decl = self.state.declaration(e.pipeline_version);
        let stage = decl.stages.get(s)?;
        let action = stage.actions.get(run.action_index)?;
        let notifies = action
            .configuration
            .as_ref()
            .is_some_and(|c| c.contains_key(NOTIFICATION_ARN));
        notifies.then(|| (run, stage.name.clone(), action.clone()))
    }

    /// Records a notice of `kind` for the approval at action `k` of stage `s` in execution `i`,
    /// if its declaration names a `NotificationArn`. `expires` is the approval's deadline (the
    /// run's own deadline is cleared once it is decided, so the caller passes it).
    pub(super) fn notice(&mut self, i: usize, s: usize, k: usize, kind: NoticeKind, expires: i64) {
        let Some((run, stage_name, action)) = self.notifying_approval(i, s, k) else {
            return;
        };
        let e = &self.state.executions[i];
        // What the reviewer reads is what the approval started with, references resolved.
        let value = |key: &str| run.configuration(&action).and_then(|c| c.get(key)).cloned();
        let notice = ApprovalNotice {
            kind,
            topic_arn: value(NOTIFICATION_ARN).unwrap_or_default(),
            region: self.cfg.region.clone(),
            pipeline_name: self.state.entry.declaration.name.clone(),
            stage_name,
            action_name: run.name.clone(),
            pipeline_execution_id: e.id.to_string(),
            action_execution_id: run.action_execution_id.to_string(),
            token: run.token.clone().map(String::from).unwrap_or_default(),
            expires,
            custom_data: value(CUSTOM_DATA),
            external_entity_link: value(EXTERNAL_ENTITY_LINK),
            decided_by: kind
                .is_decision()
                .then(|| run.last_updated_by.clone())
                .flatten(),
            summary: kind.is_decision().then(|| run.summary.clone()).flatten(),
            at: self.now,
        };
        self.out.notices.push(notice);
    }

    /// Records that the approval at action `k` of stage `s` in execution `i` ended without a
    /// decision (stopped, abandoned), so its approval-needed message must not go out if it has
    /// not yet. Approvals without a `NotificationArn` have no message and record nothing.
    pub(super) fn withdraw_notice(&mut self, i: usize, s: usize, k: usize) {
        if let Some((run, _, _)) = self.notifying_approval(i, s, k) {
            let id = run.action_execution_id.clone();
            self.out.notices_withdrawn.push(id);
        }
    }
}
