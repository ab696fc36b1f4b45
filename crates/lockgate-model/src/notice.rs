//! Approval notices: what an approval event leaves in the outbox for the notifier to deliver.
//!
//! The engine writes one notice per event (an approval started, was approved, rejected or
//! expired) in the same store commit as the state change that caused it; `lockgate-notify`
//! reads it back, renders the messages and delivers them. The notice therefore carries every
//! fact a message needs, so delivery never has to read pipeline state that may have moved on.

use serde::{Deserialize, Serialize};

/// What happened to the approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The approval action started and waits for an answer.
    ApprovalNeeded,
    /// Someone approved it.
    Approved,
    /// Someone rejected it.
    Rejected,
    /// Nobody answered before its deadline.
    Expired,
}

impl NoticeKind {
    /// A short lowercase word for keys, headers and logs (`approval-needed`, `approved`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::ApprovalNeeded => "approval-needed",
            NoticeKind::Approved => "approved",
            NoticeKind::Rejected => "rejected",
            NoticeKind::Expired => "expired",
        }
    }

    /// Whether the notice reports the end of an approval rather than its start.
    pub fn is_decision(self) -> bool {
        !matches!(self, NoticeKind::ApprovalNeeded)
    }
}

/// One approval event, as stored in an outbox row's `notice` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalNotice {
    /// What happened.
    pub kind: NoticeKind,
    /// The SNS topic ARN from the action's `NotificationArn`.
    pub topic_arn: String,
    /// The region the pipeline lives in.
    pub region: String,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The stage holding the approval.
    pub stage_name: String,
    /// The approval action's name.
    pub action_name: String,
    /// The pipeline execution the approval belongs to.
    pub pipeline_execution_id: String,
    /// The approval's action execution id; together with `kind` it names the outbox row.
    pub action_execution_id: String,
    /// The approval token PutApprovalResult needs.
    pub token: String,
    /// When the approval expires (ms since the epoch).
    pub expires: i64,
    /// The action's `CustomData`.
    pub custom_data: Option<String>,
    /// The action's `ExternalEntityLink`.
    pub external_entity_link: Option<String>,
    /// The ARN of whoever answered (decisions only).
    pub decided_by: Option<String>,
    /// The approver's summary, or why the approval expired (decisions only).
    pub summary: Option<String>,
    /// When the event happened (ms since the epoch).
    pub at: i64,
}

impl ApprovalNotice {
    /// The key of this notice's outbox row: `<action execution id>/<kind>`. It is deterministic
    /// so that a decision can delete the approval-needed row of the same approval in its commit.
    pub fn outbox_key(&self) -> String {
        outbox_key(&self.action_execution_id, self.kind)
    }
}

/// The outbox key of the notice of `kind` for the approval with this action execution id.
pub fn outbox_key(action_execution_id: &str, kind: NoticeKind) -> String {
    format!("{action_execution_id}/{}", kind.as_str())
}

/// The body the engine stores in a new outbox row; the notifier adds its delivery log beside it.
pub fn outbox_body(notice: &ApprovalNotice) -> serde_json::Value {
    serde_json::json!({ "notice": notice })
}

/// The `[[topics]]` ARN that catches approvals naming a topic no other entry lists.
pub const CATCH_ALL_TOPIC: &str = "*";

/// Whether `arn` is an SNS topic ARN: `arn:aws:sns:<region>:<12-digit account>:<name>`, the name
/// being 1 to 256 letters, digits, hyphens or underscores (a FIFO topic's `.fifo` suffix too).
pub fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, partition, service, region, account, name] = parts.as_slice() else {
        return false;
    };
    let name = name.strip_suffix(".fifo").unwrap_or(name);
    *arn_word == "arn"
        && partition.starts_with("aws")
        && *service == "sns"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns_are_recognised_by_their_sns_shape() {
        assert!(is_sns_topic_arn(
            "arn:aws:sns:us-east-1:123456789012:release-approvals"
        ));
        assert!(is_sns_topic_arn(
            "arn:aws:sns:eu-west-1:123456789012:t.fifo"
        ));
        assert!(!is_sns_topic_arn("arn:aws:sqs:us-east-1:123456789012:q"));
        assert!(!is_sns_topic_arn("arn:aws:sns:us-east-1:1234:t"));
        assert!(!is_sns_topic_arn("arn:aws:sns:us-east-1:123456789012:"));
        assert!(!is_sns_topic_arn("arn:aws:sns:us-east-1:123456789012:a b"));
    }

    #[test]
    fn outbox_keys_name_the_approval_and_the_event() {
        assert_eq!(
            outbox_key("abc", NoticeKind::ApprovalNeeded),
            "abc/approval-needed"
        );
        assert_eq!(outbox_key("abc", NoticeKind::Expired), "abc/expired");
    }
}
