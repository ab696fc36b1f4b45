//! Notification settings: where messages for each SNS topic ARN go (its subscriptions, in SNS's
//! words: a `protocol` and an `endpoint`), the SMTP server for email, SNS credentials, and the
//! retry policy. These are the `public_url`, `[smtp]`, `[sns]`, `[notifications]` and
//! `[[topics]]` parts of `lockgate.toml`; [`NotifyConfig::validate`] checks them at start-up.

use std::collections::BTreeSet;
use std::time::Duration;

use lockgate_model::notice::{is_sns_topic_arn, CATCH_ALL_TOPIC};
use secrecy::SecretString;
use serde::Deserialize;

/// Everything the notifier needs, resolved from the server's configuration. The default has no
/// topics (so nothing is ever sent) and links to Lockgate's default address.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The base of every link in a message (`<public_url>/console/...`), without a trailing `/`.
    pub public_url: String,
    /// The SMTP server email subscriptions are sent through.
    pub smtp: Option<SmtpConfig>,
    /// Defaults for `sns` subscriptions (region, credentials).
    pub sns: SnsConfig,
    /// The topics messages can be published to, each with its subscriptions.
    pub topics: Vec<TopicConfig>,
    /// How often and how long delivery is retried.
    pub delivery: DeliveryPolicy,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            public_url: "http://127.0.0.1:4680".to_string(),
            smtp: None,
            sns: SnsConfig::default(),
            topics: Vec::new(),
            delivery: DeliveryPolicy::default(),
        }
    }
}

/// `[smtp]`: the SMTP server that email subscriptions are sent through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or address of the SMTP server.
    pub host: String,
    /// Port; defaults to 587 for `starttls`, 465 for `tls` and 25 for `none`.
    pub port: Option<u16>,
    /// How the connection is protected: `starttls` (the default), `tls` (implicit TLS) or
    /// `none` (plain text; only for a relay on loopback or a trusted network).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH; no authentication when absent.
    pub username: Option<String>,
    /// Password for SMTP AUTH (never logged).
    pub password: Option<SecretString>,
    /// The sender address, e.g. `lockgate@example.com` or `Lockgate <lockgate@example.com>`.
    pub from: String,
}

impl SmtpConfig {
    /// The port to connect to: the configured one, or the usual one for the security mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No TLS at all.
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// `[sns]`: defaults for every `sns` subscription, which may override each of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// The SNS API URL (e.g. a local SNS emulator); AWS's own endpoint when absent.
    pub endpoint: Option<String>,
    /// The region to sign for; the target topic ARN's region when absent.
    pub region: Option<String>,
    /// Access key id; with `secret_access_key`. When both are absent here and in the
    /// subscription, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` are
    /// read from the environment at start-up; AWS profiles and instance roles are not read.
    pub access_key_id: Option<String>,
    /// Secret access key (never logged).
    pub secret_access_key: Option<SecretString>,
}

/// `[notifications]`: the retry policy and how much is delivered at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryPolicy {
    /// Seconds before the first retry; each later retry waits twice as long as the previous.
    pub first_retry_seconds: f64,
    /// The longest wait between two retries, in seconds.
    pub max_retry_seconds: f64,
    /// How many times a message is tried in all before it is kept as failed.
    pub max_attempts: u32,
    /// Seconds one attempt (an SMTP session, an HTTP request, an SNS call) may take.
    pub timeout_seconds: f64,
    /// How many messages (outbox rows) are delivered at the same time, in all.
    pub max_messages_in_flight: usize,
    /// How many of them may be sending to the same server (SMTP server, webhook origin, SNS
    /// endpoint) at the same time, so one slow or dead server cannot take every slot.
    pub max_connections_per_endpoint: usize,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            first_retry_seconds: 10.0,
            max_retry_seconds: 3600.0,
            max_attempts: 10,
            timeout_seconds: 10.0,
            max_messages_in_flight: 16,
            max_connections_per_endpoint: 4,
        }
    }
}

impl DeliveryPolicy {
    /// How long to wait after the `attempt`-th failed attempt (1-based) before the next one:
    /// `first_retry_seconds * 2^(attempt-1)`, at most `max_retry_seconds`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1).min(62)).unwrap_or(62);
        let seconds = (self.first_retry_seconds * 2f64.powi(exponent)).min(self.max_retry_seconds);
        Duration::from_secs_f64(seconds.max(0.0))
    }

    /// The time one attempt may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_seconds.max(0.001))
    }
}

/// `[[topics]]`: one SNS topic ARN and who receives what is published to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// The topic ARN approvals name in `NotificationArn`: `arn:aws:sns:<region>:<account>:<name>`,
    /// or `*` for every topic no other entry lists.
    pub arn: String,
    /// Where its messages go.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
}

/// One subscription of a topic, in SNS's words.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// `email`, `http`, `https` or `sns`.
    pub protocol: Protocol,
    /// `email`: the recipient address. `http`/`https`: the webhook URL. `sns`: the SNS API URL
    /// (optional; `[sns] endpoint`, then AWS's own endpoint, when absent).
    pub endpoint: Option<String>,
    /// Webhooks: the key of the `X-Lockgate-Signature` HMAC; unsigned when absent.
    pub secret: Option<SecretString>,
    /// Webhooks: `json` (the default, CodePipeline's message) or `slack` (`{"text": ...}`,
    /// what Slack and Mattermost incoming webhooks accept).
    #[serde(default)]
    pub format: WebhookFormat,
    /// `sns`: the topic to publish to, when it differs from the topic this subscription is in.
    pub topic_arn: Option<String>,
    /// `sns`: the region to sign for, overriding `[sns] region`.
    pub region: Option<String>,
    /// `sns`: access key id, overriding `[sns] access_key_id`.
    pub access_key_id: Option<String>,
    /// `sns`: secret access key, overriding `[sns] secret_access_key`.
    pub secret_access_key: Option<SecretString>,
}

impl SubscriptionConfig {
    /// A stable name for the subscription within its topic (`protocol:endpoint`), used as the
    /// key of its delivery state and in logs and `lockgate notify test` output.
    pub fn id(&self) -> String {
        format!(
            "{}:{}",
            self.protocol.as_str(),
            self.endpoint.as_deref().unwrap_or("default")
        )
    }
}

/// A subscription's protocol, with SNS's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Email through `[smtp]`.
    Email,
    /// A webhook over plain HTTP.
    Http,
    /// A webhook over HTTPS.
    Https,
    /// Publish to a real SNS topic.
    Sns,
}

impl Protocol {
    /// The protocol's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Email => "email",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Sns => "sns",
        }
    }

    /// Whether this is a webhook (`http` or `https`).
    pub fn is_webhook(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// CodePipeline's JSON message.
    #[default]
    Json,
    /// `{"text": "..."}` for Slack-compatible incoming webhooks.
    Slack,
}

/// A configuration mistake, found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl NotifyConfig {
    /// The configured topic ARNs (what `NotificationArn` may name).
    pub fn topic_arns(&self) -> BTreeSet<String> {
        self.topics.iter().map(|t| t.arn.clone()).collect()
    }

    /// The topic with this ARN, or else the catch-all topic (`arn = "*"`) if there is one.
    pub fn topic(&self, arn: &str) -> Option<&TopicConfig> {
        self.topics
            .iter()
            .find(|t| t.arn == arn)
            .or_else(|| self.topics.iter().find(|t| t.arn == CATCH_ALL_TOPIC))
    }

    /// Checks everything that can be checked without sending: ARNs, URLs, addresses, that
    /// email has an SMTP server, and the retry policy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return fail(format!(
                "public_url must start with http:// or https://, got {:?}",
                self.public_url
            ));
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.is_empty() {
                return fail("[smtp] host must not be empty".into());
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                return fail(format!(
                    "[smtp] from is not an email address: {:?}",
                    smtp.from
                ));
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return fail("[smtp] username and password go together".into());
            }
        }
        if self.sns.access_key_id.is_some() != self.sns.secret_access_key.is_some() {
            return fail("[sns] access_key_id and secret_access_key go together".into());
        }
        let p = &self.delivery;
        if p.max_attempts == 0 {
            return fail("[notifications] max_attempts must be at least 1".into());
        }
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        if !finite(p.first_retry_seconds) || !finite(p.max_retry_seconds) {
            return fail("[notifications] retry times must be zero or more seconds".into());
        }
        if !(p.timeout_seconds.is_finite() && p.timeout_seconds > 0.0) {
            return fail("[notifications] timeout_seconds must be more than zero".into());
        }
        if p.max_messages_in_flight == 0 || p.max_connections_per_endpoint == 0 {
            return fail(
                "[notifications] max_messages_in_flight and max_connections_per_endpoint must be \
                 at least 1"
                    .into(),
            );
        }
        let mut seen = BTreeSet::new();
        for topic in &self.topics {
            if topic.arn != CATCH_ALL_TOPIC && !is_sns_topic_arn(&topic.arn) {
                return fail(format!(
                    "topic {:?} is neither an SNS topic ARN \
                     (arn:aws:sns:<region>:<account>:<name>) nor \"*\" (every other topic)",
                    topic.arn
                ));
            }
            if !seen.insert(topic.arn.as_str()) {
                return fail(format!("topic {} is configured twice", topic.arn));
            }
            for sub in &topic.subscriptions {
                validate_subscription(self, &topic.arn, sub)?;
            }
        }
        Ok(())
    }
}

fn validate_subscription(
    config: &NotifyConfig,
    topic: &str,
    sub: &SubscriptionConfig,
) -> Result<(), ConfigError> {
    let fail = |msg: String| Err(ConfigError(format!("topic {topic}: {msg}")));
    let endpoint = sub.endpoint.as_deref();
    let webhook_only = sub.secret.is_some() || sub.format != WebhookFormat::Json;
    let sns_only = sub.topic_arn.is_some()
        || sub.region.is_some()
        || sub.access_key_id.is_some()
        || sub.secret_access_key.is_some();
    if webhook_only && !sub.protocol.is_webhook() {
        return fail(format!(
            "secret and format apply to http and https subscriptions, not {}",
            sub.protocol.as_str()
        ));
    }
    if sns_only && sub.protocol != Protocol::Sns {
        return fail(format!(
            "topic_arn, region and credentials apply to sns subscriptions, not {}",
            sub.protocol.as_str()
        ));
    }
    match sub.protocol {
        Protocol::Email => {
            let Some(address) = endpoint else {
                return fail("an email subscription needs an endpoint (the address)".into());
            };
            if address.parse::<lettre::message::Mailbox>().is_err() {
                return fail(format!("{address:?} is not an email address"));
            }
            if config.smtp.is_none() {
                return fail(format!(
                    "the email subscription {address} needs an [smtp] section to send through"
                ));
            }
        }
        Protocol::Http | Protocol::Https => {
            let scheme = format!("{}://", sub.protocol.as_str());
            let Some(url) = endpoint else {
                return fail("a webhook subscription needs an endpoint (the URL)".into());
            };
            if !url.starts_with(&scheme) || reqwest::Url::parse(url).is_err() {
                return fail(format!(
                    "{url:?} is not a valid {} URL for protocol {}",
                    sub.protocol.as_str(),
                    sub.protocol.as_str()
                ));
            }
        }
        Protocol::Sns => {
            if let Some(url) = endpoint.or(config.sns.endpoint.as_deref()) {
                if reqwest::Url::parse(url).is_err() {
                    return fail(format!("{url:?} is not a valid SNS endpoint URL"));
                }
            }
            if let Some(target) = &sub.topic_arn {
                if !is_sns_topic_arn(target) {
                    return fail(format!("topic_arn {target:?} is not an SNS topic ARN"));
                }
            }
            if sub.access_key_id.is_some() != sub.secret_access_key.is_some() {
                return fail("access_key_id and secret_access_key go together".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_subs: &str) -> NotifyConfig {
        #[derive(Deserialize)]
        struct File {
            smtp: Option<SmtpConfig>,
            #[serde(default)]
            topics: Vec<TopicConfig>,
        }
        let file: File = toml::from_str(toml_subs).expect("valid TOML");
        NotifyConfig {
            public_url: "http://127.0.0.1:4680".into(),
            smtp: file.smtp,
            topics: file.topics,
            ..NotifyConfig::default()
        }
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let cfg = parse(
            r#"
            [smtp]
            host = "127.0.0.1"
            port = 2525
            security = "none"
            from = "lockgate@example.com"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:release-approvals"
            subscriptions = [
              { protocol = "email", endpoint = "release-managers@example.com" },
              { protocol = "http",  endpoint = "http://127.0.0.1:9000/hook", secret = "s3cret" },
            ]
            "#,
        );
        cfg.validate().expect("valid");
        assert_eq!(cfg.smtp.as_ref().map(SmtpConfig::port), Some(2525));
        assert!(cfg
            .topic_arns()
            .contains("arn:aws:sns:us-east-1:123456789012:release-approvals"));
    }

    #[test]
    fn an_email_subscription_without_smtp_is_refused() {
        let cfg = parse(
            r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:t"
            subscriptions = [{ protocol = "email", endpoint = "a@example.com" }]
            "#,
        );
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("[smtp]"), "{e}");
    }

    #[test]
    fn a_malformed_topic_arn_is_refused() {
        let cfg = parse("[[topics]]\narn = \"arn:aws:sqs:us-east-1:123456789012:q\"");
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("neither an SNS topic ARN"), "{e}");
    }

    #[test]
    fn a_catch_all_topic_takes_every_topic_no_other_entry_lists() {
        let cfg = parse(
            r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:release-approvals"
            subscriptions = [{ protocol = "http", endpoint = "http://127.0.0.1:9000/release" }]
            [[topics]]
            arn = "*"
            subscriptions = [{ protocol = "http", endpoint = "http://127.0.0.1:9000/other" }]
            "#,
        );
        cfg.validate().expect("valid");
        let endpoint = |arn: &str| {
            cfg.topic(arn)
                .and_then(|t| t.subscriptions[0].endpoint.clone())
        };
        assert_eq!(
            endpoint("arn:aws:sns:us-east-1:123456789012:release-approvals").as_deref(),
            Some("http://127.0.0.1:9000/release")
        );
        assert_eq!(
            endpoint("arn:aws:sns:eu-west-1:210987654321:anything").as_deref(),
            Some("http://127.0.0.1:9000/other")
        );
        let without = parse("[[topics]]\narn = \"arn:aws:sns:us-east-1:123456789012:t\"");
        assert!(without
            .topic("arn:aws:sns:us-east-1:123456789012:u")
            .is_none());
    }

    #[test]
    fn an_unknown_protocol_is_refused_when_parsing() {
        let text = r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:t"
            subscriptions = [{ protocol = "sms", endpoint = "+15555550100" }]
        "#;
        #[derive(Deserialize, Debug)]
        #[allow(dead_code, reason = "only parsed, to see the error")]
        struct File {
            topics: Vec<TopicConfig>,
        }
        let e = toml::from_str::<File>(text).unwrap_err().to_string();
        assert!(e.contains("unknown variant `sms`"), "{e}");
    }

    #[test]
    fn a_webhook_url_must_match_its_protocol() {
        let cfg = parse(
            r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:t"
            subscriptions = [{ protocol = "https", endpoint = "http://example.com/hook" }]
            "#,
        );
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let cfg = parse(
            r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:t"
            subscriptions = [{ protocol = "http", endpoint = "http://h/x", secret = "hunter2" }]
            "#,
        );
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn backoff_doubles_from_the_first_retry_up_to_the_cap() {
        let p = DeliveryPolicy {
            first_retry_seconds: 10.0,
            max_retry_seconds: 60.0,
            ..DeliveryPolicy::default()
        };
        let secs: Vec<u64> = (1..=5).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 60, 60]);
        assert_eq!(p.backoff(1000).as_secs(), 60);
    }
}
