//! Sinks: how one message reaches one subscription. Each sink makes a single attempt and says
//! whether it worked; retrying, backoff, concurrency and bookkeeping belong to the relay.

mod email;
mod sns;
mod webhook;

use crate::config::{ConfigError, NotifyConfig, Protocol, SubscriptionConfig};
use crate::message::Message;

pub use webhook::{signature, SIGNATURE_HEADER};

/// The connections every subscription shares: the SMTP transport and one HTTP client for
/// webhooks and SNS.
pub struct Sinks {
    config: std::sync::Arc<NotifyConfig>,
    email: Option<email::EmailSink>,
    webhook: webhook::WebhookSink,
    sns: sns::SnsSink,
}

impl Sinks {
    /// Builds the shared clients from a validated configuration. Fails when an `sns`
    /// subscription has no credentials to sign with.
    pub fn new(config: std::sync::Arc<NotifyConfig>) -> Result<Sinks, ConfigError> {
        let timeout = config.delivery.timeout();
        let email = match &config.smtp {
            Some(smtp) => Some(email::EmailSink::new(smtp, timeout)?),
            None => None,
        };
        let http = http_client(timeout)?;
        Ok(Sinks {
            email,
            webhook: webhook::WebhookSink::new(http.clone()),
            sns: sns::SnsSink::new(&config, http)?,
            config,
        })
    }

    /// The server a subscription's messages go to, for limiting how many attempts reach one
    /// server at once: the SMTP server for email, the URL's origin for webhooks and SNS.
    pub fn endpoint(&self, topic_arn: &str, subscription: &SubscriptionConfig) -> String {
        let origin = |url: &str| match reqwest::Url::parse(url) {
            Ok(parsed) => parsed.origin().ascii_serialization(),
            Err(_) => url.to_string(),
        };
        match subscription.protocol {
            Protocol::Email => match &self.config.smtp {
                Some(smtp) => format!("smtp://{}:{}", smtp.host, smtp.port()),
                None => "smtp://".to_string(),
            },
            Protocol::Http | Protocol::Https => {
                origin(subscription.endpoint.as_deref().unwrap_or_default())
            }
            Protocol::Sns => {
                origin(&sns::Target::of(&self.config.sns, topic_arn, subscription).endpoint)
            }
        }
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

/// The HTTP client webhooks and SNS share, giving up on a request after `timeout`.
fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, ConfigError> {
    use_the_servers_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("Lockgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError(format!("cannot build the HTTP client: {e}")))
}

/// reqwest is built without a TLS crypto provider of its own, so that the server carries only
/// the one it installs (aws-lc-rs); a caller that installed none (a test, a tool) gets the same.
fn use_the_servers_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error only means another thread installed one meanwhile.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// An error with its causes, since reqwest's own message ("error sending request") hides them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
