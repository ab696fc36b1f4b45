//! Message formats: CodePipeline's approval-needed JSON, the decision messages (approved,
//! rejected, expired), the readable email text and the Slack-compatible one-liner, all rendered
//! from one stored [`ApprovalNotice`].

use lockgate_model::notice::{ApprovalNotice, NoticeKind};
use serde_json::{json, Value};

/// One message, in every form a sink may send.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// What the message reports: `approval-needed`, `approved`, `rejected`, `expired` or
    /// `test` (the `X-Lockgate-Event` header of webhooks).
    pub event: &'static str,
    /// The email subject and SNS `Subject`.
    pub subject: String,
    /// The JSON body (webhooks, SNS).
    pub json: Value,
    /// The plain-text email body.
    pub text: String,
    /// A short rendering for chat (`{"text": ...}` webhooks).
    pub chat: String,
}

/// `<public_url>/console/pipelines/{pipeline}`: the pipeline's page in the console.
pub fn console_link(public_url: &str, pipeline: &str) -> String {
    format!(
        "{}/console/pipelines/{pipeline}",
        public_url.trim_end_matches('/')
    )
}

/// `<public_url>/console/pipelines/{pipeline}/stages/{stage}/actions/{action}/review`: the
/// console's page for answering this approval.
pub fn review_link(public_url: &str, pipeline: &str, stage: &str, action: &str) -> String {
    format!(
        "{}/stages/{stage}/actions/{action}/review",
        console_link(public_url, pipeline)
    )
}

/// A time (ms since the epoch) the way CodePipeline's message writes `expires`:
/// `2016-07-07T20:22Z` (UTC, to the minute).
pub fn format_minute(millis: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| millis.to_string())
}

/// Renders a notice for subscribers.
pub fn render(notice: &ApprovalNotice, public_url: &str) -> Message {
    let n = notice;
    let console = console_link(public_url, &n.pipeline_name);
    let review = review_link(public_url, &n.pipeline_name, &n.stage_name, &n.action_name);
    let expires = format_minute(n.expires);
    let mut body = json!({
        "region": n.region,
        "consoleLink": console,
        "approval": {
            "pipelineName": n.pipeline_name,
            "stageName": n.stage_name,
            "actionName": n.action_name,
            "token": n.token,
            "expires": expires,
            "externalEntityLink": n.external_entity_link,
            "approvalReviewLink": review,
            "customData": n.custom_data,
        }
    });
    let what = format!(
        "AWS CodePipeline {} for action {}",
        n.pipeline_name, n.action_name
    );
    let place = format!("{} / {} / {}", n.pipeline_name, n.stage_name, n.action_name);
    let (event, subject, text, chat) = match n.kind {
        NoticeKind::ApprovalNeeded => (
            "approval-needed",
            format!("APPROVAL NEEDED: {what}"),
            approval_needed_text(n, &console, &review, &expires),
            format!(
                "Approval needed: {place}. {}Approve or reject: {review} (expires {expires})",
                n.custom_data
                    .as_deref()
                    .map(|c| format!("{c} "))
                    .unwrap_or_default()
            ),
        ),
        decision => {
            let (word, status) = match decision {
                NoticeKind::Approved => ("APPROVED", "Approved"),
                NoticeKind::Rejected => ("REJECTED", "Rejected"),
                _ => ("EXPIRED", "Expired"),
            };
            let by = n.decided_by.as_deref().unwrap_or("nobody");
            let summary = n.summary.as_deref().unwrap_or("");
            body["result"] = json!({
                "status": status,
                "summary": n.summary,
                "lastUpdatedBy": n.decided_by,
                "decidedAt": format_minute(n.at),
            });
            let chat = match decision {
                NoticeKind::Expired => format!("Approval expired: {place}. {summary}"),
                _ => format!("{status} by {by}: {place}. {summary}"),
            };
            let text = format!(
                "The approval action {} in stage {} of pipeline {} was {} {}.\n\n\
                 Summary: {summary}\nPipeline: {console}\n",
                n.action_name,
                n.stage_name,
                n.pipeline_name,
                status.to_lowercase(),
                match decision {
                    NoticeKind::Expired => format!("at {}", format_minute(n.at)),
                    _ => format!("by {by} at {}", format_minute(n.at)),
                },
            );
            (
                decision.as_str(),
                format!("{word}: {what}"),
                text,
                chat.trim_end().to_string(),
            )
        }
    };
    Message {
        event,
        subject,
        json: body,
        text,
        chat,
    }
}

/// The email body CodePipeline's subscribers know, with the same facts as the JSON.
fn approval_needed_text(n: &ApprovalNotice, console: &str, review: &str, expires: &str) -> String {
    let mut text = format!(
        "Hello,\n\n\
         The following Approval action is waiting for your response:\n\n\
         --Pipeline Details--\n\n\
         Pipeline name: {}\n\
         Awaiting approval in stage: {}\n\
         Action name: {}\n\
         Region: {}\n\n\
         --Approval Details--\n\n\
         Approve or reject: {review}\n",
        n.pipeline_name, n.stage_name, n.action_name, n.region
    );
    if let Some(custom) = &n.custom_data {
        text.push_str(&format!("Additional information: {custom}\n"));
    }
    if let Some(link) = &n.external_entity_link {
        text.push_str(&format!("Content to review: {link}\n"));
    }
    text.push_str(&format!(
        "Deadline: This review request will expire on {expires}\n\n\
         Pipeline: {console}\n"
    ));
    text
}

/// The message `lockgate notify test` sends to every subscription of a topic.
pub fn test_message(topic_arn: &str, region: &str, public_url: &str) -> Message {
    let console = format!("{}/console", public_url.trim_end_matches('/'));
    let text = format!(
        "This is a test message from Lockgate for the topic {topic_arn}.\n\n\
         Approval notifications for this topic will reach you here.\nConsole: {console}\n"
    );
    Message {
        event: "test",
        subject: format!("TEST: Lockgate notifications for {topic_arn}"),
        json: json!({
            "region": region,
            "consoleLink": console,
            "test": true,
            "topicArn": topic_arn,
            "message": format!("This is a test message from Lockgate for the topic {topic_arn}."),
        }),
        chat: format!("Test message from Lockgate for the topic {topic_arn}."),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind) -> ApprovalNotice {
        ApprovalNotice {
            kind,
            topic_arn: "arn:aws:sns:us-east-2:123456789012:t".into(),
            region: "us-east-2".into(),
            pipeline_name: "MyFirstPipeline".into(),
            stage_name: "MyApprovalStage".into(),
            action_name: "MyApprovalAction".into(),
            pipeline_execution_id: "e".into(),
            action_execution_id: "a".into(),
            token: "tok".into(),
            // 2016-07-07T20:22:30Z
            expires: 1_467_922_950_000,
            custom_data: Some("Review the latest changes.".into()),
            external_entity_link: Some("http://example.com".into()),
            decided_by: None,
            summary: None,
            at: 1_467_318_150_000,
        }
    }

    #[test]
    fn expiry_is_written_to_the_minute_in_utc() {
        assert_eq!(format_minute(1_467_922_950_000), "2016-07-07T20:22Z");
    }

    #[test]
    fn the_approval_needed_json_is_codepipelines_message_with_console_links() {
        let m = render(
            &notice(NoticeKind::ApprovalNeeded),
            "https://lockgate.example.com/",
        );
        assert_eq!(
            m.json,
            json!({
                "region": "us-east-2",
                "consoleLink": "https://lockgate.example.com/console/pipelines/MyFirstPipeline",
                "approval": {
                    "pipelineName": "MyFirstPipeline",
                    "stageName": "MyApprovalStage",
                    "actionName": "MyApprovalAction",
                    "token": "tok",
                    "expires": "2016-07-07T20:22Z",
                    "externalEntityLink": "http://example.com",
                    "approvalReviewLink": "https://lockgate.example.com/console/pipelines/MyFirstPipeline/stages/MyApprovalStage/actions/MyApprovalAction/review",
                    "customData": "Review the latest changes."
                }
            })
        );
        assert_eq!(
            m.subject,
            "APPROVAL NEEDED: AWS CodePipeline MyFirstPipeline for action MyApprovalAction"
        );
        assert_eq!(m.event, "approval-needed");
    }

    #[test]
    fn the_email_text_has_the_facts_the_review_link_and_the_deadline() {
        let m = render(&notice(NoticeKind::ApprovalNeeded), "http://h");
        for fact in [
            "Pipeline name: MyFirstPipeline",
            "Awaiting approval in stage: MyApprovalStage",
            "Action name: MyApprovalAction",
            "Approve or reject: http://h/console/pipelines/MyFirstPipeline/stages/MyApprovalStage/actions/MyApprovalAction/review",
            "Additional information: Review the latest changes.",
            "Content to review: http://example.com",
            "expire on 2016-07-07T20:22Z",
        ] {
            assert!(m.text.contains(fact), "{fact} missing from\n{}", m.text);
        }
    }

    #[test]
    fn a_rejection_says_who_rejected_it_and_why() {
        let mut n = notice(NoticeKind::Rejected);
        n.decided_by = Some("arn:aws:iam::123456789012:user/Bob".into());
        n.summary = Some("Not this week".into());
        let m = render(&n, "http://h");
        assert_eq!(m.event, "rejected");
        assert!(m.subject.starts_with("REJECTED: "));
        assert_eq!(m.json["result"]["status"], "Rejected");
        assert_eq!(
            m.json["result"]["lastUpdatedBy"],
            "arn:aws:iam::123456789012:user/Bob"
        );
        assert_eq!(m.json["result"]["summary"], "Not this week");
        assert_eq!(m.json["approval"]["token"], "tok");
        assert!(m
            .chat
            .contains("Rejected by arn:aws:iam::123456789012:user/Bob"));
    }

    #[test]
    fn an_expiry_names_nobody() {
        let m = render(&notice(NoticeKind::Expired), "http://h");
        assert_eq!(m.json["result"]["status"], "Expired");
        assert!(m.json["result"]["lastUpdatedBy"].is_null());
        assert!(m.subject.starts_with("EXPIRED: "));
    }
}
