//! Answering a manual approval.

use lockgate_model::notice::NoticeKind;
use lockgate_shapes::{ActionExecutionStatus, ErrorCode, ServiceError};

use super::{err, ApprovalAnswer, Decider};
use crate::state::ActionKind;

impl<'a> Decider<'a> {
    /// Answers a manual approval. The caller has already checked that the stage and action exist
    /// in the current declaration. Returns the time of the answer.
    pub fn answer_approval(&mut self, answer: &ApprovalAnswer) -> Result<i64, ServiceError> {
        let mut found = None;
        'search: for (i, e) in self.state.executions.iter().enumerate().rev() {
            let decl = self.state.declaration(e.pipeline_version);
            for (s, stage) in e.stages.iter().enumerate() {
                let Some(stage) = stage else { continue };
                if decl.stages.get(s).map(|d| d.name.as_str()) != Some(answer.stage.as_str()) {
                    continue;
                }
                for (k, run) in stage.actions.iter().enumerate() {
                    let Some(run) = run else { continue };
                    if run.name == answer.action
                        && run.kind == ActionKind::Approval
                        && run.token.as_ref().is_some_and(|t| t.matches(&answer.token))
                    {
                        found = Some((i, s, k, run.status, run.decided));
                        break 'search;
                    }
                }
                if stage.history.iter().any(|r| {
                    r.name == answer.action
                        && r.token.as_ref().is_some_and(|t| t.matches(&answer.token))
                }) {
                    return Err(invalid_token(answer));
                }
            }
        }
        let Some((i, s, k, status, decided)) = found else {
            return Err(invalid_token(answer));
        };
        if status != ActionExecutionStatus::InProgress || !self.state.executions[i].is_active() {
            return Err(if decided {
                err(
                    ErrorCode::ApprovalAlreadyCompletedException,
                    format!(
                        "The approval action {} in stage {} has already been completed",
                        answer.action, answer.stage
                    ),
                )
            } else {
                invalid_token(answer)
            });
        }
        let now = self.now;
        let expires = self.state.executions[i].stages[s]
            .as_ref()
            .and_then(|st| st.actions[k].as_ref())
            .and_then(|run| run.deadline)
            .unwrap_or(now);
        if let Some(run) = self.run_mut(i, s, k) {
            run.status = if answer.approved {
                ActionExecutionStatus::Succeeded
            } else {
                ActionExecutionStatus::Failed
            };
            run.summary = Some(answer.summary.clone());
            run.last_updated_by = Some(answer.approver.clone());
            run.last_change = now;
            run.disarm();
            run.decided = true;
            if !answer.approved {
                run.error = Some((
                    "ApprovalRejected".to_string(),
                    format!("Rejected by {}: {}", answer.approver, answer.summary),
                ));
            }
        }
        let kind = if answer.approved {
            NoticeKind::Approved
        } else {
            NoticeKind::Rejected
        };
        self.notice(i, s, k, kind, expires);
        self.advance();
        Ok(now)
    }
}

fn invalid_token(answer: &ApprovalAnswer) -> ServiceError {
    err(
        ErrorCode::InvalidApprovalTokenException,
        format!(
            "The token {} is not valid for action {} in stage {}",
            answer.token, answer.action, answer.stage
        ),
    )
}
