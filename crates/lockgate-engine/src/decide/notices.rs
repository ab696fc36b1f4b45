//! Approval notices: the facts an approval event leaves for the notifier, recorded in the
//! [`Outcome`](super::Outcome) so the service writes them to the outbox in the same commit as
//! the state change. Only approvals whose declaration names a `NotificationArn` produce them.

use lockgate_model::action_types::{CUSTOM_DATA, EXTERNAL_ENTITY_LINK, NOTIFICATION_ARN};
use lockgate_model::notice::{ApprovalNotice, NoticeKind};

use super::Decider;
use crate::state::ActionKind;

impl<'a> Decider<'a> {
    /// Records a notice of `kind` for the approval at action `k` of stage `s` in execution `i`,
    /// if its declaration names a `NotificationArn`. `expires` is the approval's deadline (the
    /// run's own deadline is cleared once it is decided, so the caller passes it).
    pub(super) fn notice(&mut self, i: usize, s: usize, k: usize, kind: NoticeKind, expires: i64) {
        let e = &self.state.executions[i];
        let Some(run) = e.stages[s].as_ref().and_then(|st| st.actions[k].as_ref()) else {
            return;
        };
        if run.kind != ActionKind::Approval {
            return;
        }
        let decl = self.state.declaration(e.pipeline_version);
        let Some(stage) = decl.stages.get(s) else {
            return;
        };
        let Some(action) = stage.actions.get(run.action_index) else {
            return;
        };
        let configuration = action.configuration.as_ref();
        let value = |key: &str| configuration.and_then(|c| c.get(key)).cloned();
        let Some(topic_arn) = value(NOTIFICATION_ARN) else {
            return;
        };
        let notice = ApprovalNotice {
            kind,
            topic_arn,
            region: self.cfg.region.clone(),
            pipeline_name: decl.name.clone(),
            stage_name: stage.name.clone(),
            action_name: run.name.clone(),
            pipeline_execution_id: e.id.clone(),
            action_execution_id: run.action_execution_id.clone(),
            token: run.token.clone().unwrap_or_default(),
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
        let e = &self.state.executions[i];
        let Some(run) = e.stages[s].as_ref().and_then(|st| st.actions[k].as_ref()) else {
            return;
        };
        if run.kind != ActionKind::Approval {
            return;
        }
        let decl = self.state.declaration(e.pipeline_version);
        let notifies = decl
            .stages
            .get(s)
            .and_then(|stage| stage.actions.get(run.action_index))
            .and_then(|a| a.configuration.as_ref())
            .is_some_and(|c| c.contains_key(NOTIFICATION_ARN));
        if notifies {
            let id = run.action_execution_id.clone();
            self.out.notices_withdrawn.push(id);
        }
    }
}
