//! SNS: publishes the message to a real SNS topic (or an SNS-compatible endpoint), so existing
//! AWS subscribers keep receiving CodePipeline's messages.

use std::collections::HashMap;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_sns::config::Region;
use aws_sdk_sns::error::DisplayErrorContext;
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::{SnsConfig, SubscriptionConfig};
use crate::message::Message;

/// What tells SNS clients apart: (endpoint, region, access key id).
type ClientId = (Option<String>, String, Option<String>);

/// SNS clients, one per [`ClientId`], built on first use.
#[derive(Default)]
pub(super) struct SnsSink {
    clients: Mutex<HashMap<ClientId, aws_sdk_sns::Client>>,
}

impl SnsSink {
    pub(super) async fn send(
        &self,
        defaults: &SnsConfig,
        topic_arn: &str,
        sub: &SubscriptionConfig,
        message: &Message,
    ) -> Result<(), String> {
        let target = sub.topic_arn.as_deref().unwrap_or(topic_arn);
        let region = sub
            .region
            .clone()
            .or_else(|| defaults.region.clone())
            .or_else(|| target.split(':').nth(3).map(str::to_string))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = sub.endpoint.clone().or_else(|| defaults.endpoint.clone());
        let (key, secret) = match (&sub.access_key_id, &sub.secret_access_key) {
            (Some(k), Some(s)) => (Some(k.clone()), Some(s.clone())),
            _ => (
                defaults.access_key_id.clone(),
                defaults.secret_access_key.clone(),
            ),
        };
        let client = {
            let mut clients = self.clients.lock().await;
            let id = (endpoint.clone(), region.clone(), key.clone());
            match clients.get(&id) {
                Some(c) => c.clone(),
                None => {
                    let mut loader =
                        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region));
                    if let Some(url) = endpoint {
                        loader = loader.endpoint_url(url);
                    }
                    if let (Some(key), Some(secret)) = (key, secret) {
                        loader = loader.credentials_provider(Credentials::new(
                            key,
                            secret.expose_secret().to_string(),
                            None,
                            None,
                            "lockgate-config",
                        ));
                    }
                    let client = aws_sdk_sns::Client::new(&loader.load().await);
                    clients.insert(id, client.clone());
                    client
                }
            }
        };
        let body = serde_json::to_string(&message.json)
            .map_err(|e| format!("cannot encode the message: {e}"))?;
        client
            .publish()
            .topic_arn(target)
            .subject(sns_subject(&message.subject))
            .message(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("SNS Publish to {target}: {}", DisplayErrorContext(e)))
    }
}

/// SNS subjects are printable ASCII without line breaks, shorter than 100 characters.
fn sns_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(99)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_subjects_are_short_printable_ascii() {
        let s = sns_subject(&format!("APPROVAL NEEDED: é\n{}", "x".repeat(200)));
        assert_eq!(s.len(), 99);
        assert!(s.starts_with("APPROVAL NEEDED: ??x"));
    }
}
