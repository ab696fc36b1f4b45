//! Sinks: how one message reaches one subscription. Each sink makes a single attempt and says
//! whether it worked; retrying, backoff and bookkeeping belong to the relay.

mod email;
mod sns;
mod webhook;

use crate::config::{ConfigError, NotifyConfig, Protocol, SubscriptionConfig};
use crate::message::Message;

pub use webhook::{signature, SIGNATURE_HEADER};

/// The connections every subscription shares: the SMTP transport, the HTTP client and the SNS
/// clients (built once per endpoint, region and key).
pub struct Sinks {
    config: std::sync::Arc<NotifyConfig>,
    email: Option<email::EmailSink>,
    webhook: webhook::WebhookSink,
    sns: sns::SnsSink,
}

impl Sinks {
    /// Builds the shared clients from a validated configuration.
    pub fn new(config: std::sync::Arc<NotifyConfig>) -> Result<Sinks, ConfigError> {
        let timeout = config.delivery.timeout();
        let email = match &config.smtp {
            Some(smtp) => Some(email::EmailSink::new(smtp, timeout)?),
            None => None,
        };
        Ok(Sinks {
            email,
            webhook: webhook::WebhookSink::new(timeout)?,
            sns: sns::SnsSink::default(),
            config,
        })
    }

    /// Sends `message` to one subscription of `topic_arn`, once, within the configured time
    /// limit. `delivery_id` identifies the message across retries (webhooks receive it, so a
    /// receiver can ignore a message delivered twice). Errors come back as readable text.
    pub async fn send(
        &self,
        topic_arn: &str,
        subscription: &SubscriptionConfig,
        message: &Message,
        delivery_id: &str,
    ) -> Result<(), String> {
        let attempt = async {
            match subscription.protocol {
                Protocol::Email => match &self.email {
                    Some(sink) => sink.send(subscription, message).await,
                    None => Err("no [smtp] server is configured".to_string()),
                },
                Protocol::Http | Protocol::Https => {
                    self.webhook.send(subscription, message, delivery_id).await
                }
                Protocol::Sns => {
                    self.sns
                        .send(&self.config.sns, topic_arn, subscription, message)
                        .await
                }
            }
        };
        match tokio::time::timeout(self.config.delivery.timeout(), attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {} s",
                self.config.delivery.timeout_seconds
            )),
        }
    }
}
