//! SNS: publishes the message to a real SNS topic (or an SNS-compatible endpoint), so existing
//! AWS subscribers keep receiving CodePipeline's messages.
//!
//! Publish is one request in SNS's Query protocol: a form-encoded `POST` (`Action=Publish`,
//! `Version=2010-03-31`, `TopicArn`, `Subject`, `Message`) signed with SigV4 by `aws-sigv4` and
//! sent through the HTTP client the webhooks use. That is all the AWS SDK would do for this one
//! call, without its second HTTP and TLS stack. SNS answers in XML: a `PublishResponse` with a
//! `MessageId`, or an `ErrorResponse` whose code and message become the delivery's error.
//!
//! Credentials come from the configuration (the subscription, then `[sns]`), else from
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, read once at start-up.
//! Profiles and instance roles are not read.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, NotifyConfig, Protocol, SnsConfig, SubscriptionConfig};
use crate::message::Message;

/// The SNS API version of the Query protocol.
const API_VERSION: &str = "2010-03-31";
/// The body's media type, as the AWS SDKs send it for Query-protocol services.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// How much of an answer that is not SNS's XML goes into the error text.
const UNREADABLE_ANSWER_CHARS: usize = 200;

/// Access keys to sign with.
#[derive(Debug, Clone)]
struct Keys {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

/// Where and as whom one subscription publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// The topic to publish to.
    pub(super) topic_arn: String,
    /// The region to sign for.
    pub(super) region: String,
    /// The SNS API URL.
    pub(super) endpoint: String,
}

impl Target {
    /// Resolves a subscription's topic, region and endpoint against the `[sns]` defaults.
    pub(super) fn of(defaults: &SnsConfig, topic_arn: &str, sub: &SubscriptionConfig) -> Target {
        let topic_arn = sub.topic_arn.as_deref().unwrap_or(topic_arn).to_string();
        let region = sub
            .region
            .clone()
            .or_else(|| defaults.region.clone())
            .or_else(|| topic_arn.split(':').nth(3).map(str::to_string))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = sub
            .endpoint
            .clone()
            .or_else(|| defaults.endpoint.clone())
            .unwrap_or_else(|| default_endpoint(&region));
        Target {
            topic_arn,
            region,
            endpoint,
        }
    }
}

/// AWS's own SNS endpoint for `region` (China's regions live under `amazonaws.com.cn`).
fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sns.{region}.{suffix}")
}

/// Publishes to SNS through the shared HTTP client.
pub(super) struct SnsSink {
    client: reqwest::Client,
    /// The keys found in the environment at start-up, for subscriptions configured without any.
    environment: Option<Keys>,
}

impl SnsSink {
    /// Reads the environment's keys once and checks that every `sns` subscription has keys to
    /// sign with, so a missing key stops the start rather than every later delivery.
    pub(super) fn new(
        config: &NotifyConfig,
        client: reqwest::Client,
    ) -> Result<SnsSink, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let environment = keys_from_environment(
            var("AWS_ACCESS_KEY_ID"),
            var("AWS_SECRET_ACCESS_KEY"),
            var("AWS_SESSION_TOKEN"),
        )?;
        SnsSink::with_environment(config, client, environment)
    }

    /// The sink with `environment` standing for the process environment's keys.
    fn with_environment(
        config: &NotifyConfig,
        client: reqwest::Client,
        environment: Option<Keys>,
    ) -> Result<SnsSink, ConfigError> {
        let sink = SnsSink {
            client,
            environment,
        };
        for topic in &config.topics {
            for sub in topic.subscriptions.iter() {
                if sub.protocol == Protocol::Sns && sink.keys(&config.sns, sub).is_none() {
                    return Err(ConfigError(format!(
                        "topic {}: the sns subscription {} has no credentials: set \
                         access_key_id and secret_access_key in [sns] or in the subscription, \
                         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment \
                         (AWS profiles and instance roles are not read)",
                        topic.arn,
                        sub.id()
                    )));
                }
            }
        }
        Ok(sink)
    }

    /// The keys a subscription signs with: its own, then `[sns]`'s, then the environment's.
    fn keys(&self, defaults: &SnsConfig, sub: &SubscriptionConfig) -> Option<Keys> {
        let configured = |id: &Option<String>, secret: &Option<SecretString>| match (id, secret) {
            (Some(id), Some(secret)) => Some(Keys {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: None,
            }),
            _ => None,
        };
        configured(&sub.access_key_id, &sub.secret_access_key)
            .or_else(|| configured(&defaults.access_key_id, &defaults.secret_access_key))
            .or_else(|| self.environment.clone())
    }

    /// Publishes `message` to the subscription's topic, once.
    pub(super) async fn send(
        &self,
        defaults: &SnsConfig,
        topic_arn: &str,
        sub: &SubscriptionConfig,
        message: &Message,
    ) -> Result<(), String> {
        let target = Target::of(defaults, topic_arn, sub);
        let fail = |why: String| format!("SNS Publish to {}: {why}", target.topic_arn);
        let keys = self.keys(defaults, sub).ok_or_else(|| {
            fail(
                "no credentials (set them in [sns] or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
                    .into(),
            )
        })?;
        let body = serde_json::to_string(&message.json)
            .map_err(|e| fail(format!("cannot encode the message: {e}")))?;
        let form = publish_form(&target.topic_arn, &sns_subject(&message.subject), &body);
        let request = signed_publish(
            &self.client,
            &target,
            &keys,
            form,
            lockgate_model::Clock::now_system(&lockgate_model::SystemClock),
        )
        .map_err(fail)?;
        let response = request
            .send()
            .await
            .map_err(|e| fail(super::error_chain(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| fail(format!("HTTP {status}, unreadable answer: {e}")))?;
        read_answer(status, &text).map_err(fail)
    }
}

/// The environment's keys: none when `AWS_ACCESS_KEY_ID` is unset; an error when only one of
/// the pair is set, which is surely a mistake.
fn keys_from_environment(
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
) -> Result<Option<Keys>, ConfigError> {
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret)) => Ok(Some(Keys {
            access_key_id,
            secret_access_key: SecretString::from(secret),
            session_token: session_token.map(SecretString::from),
        })),
        (None, None) => Ok(None),
        _ => Err(ConfigError(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
        )),
    }
}

/// The form-encoded body of a Publish call.
fn publish_form(topic_arn: &str, subject: &str, message: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "Publish")
        .append_pair("Version", API_VERSION)
        .append_pair("TopicArn", topic_arn)
        .append_pair("Subject", subject)
        .append_pair("Message", message)
        .finish()
}

/// The Publish request, signed as of `at`. The signed `host` is sent as the `Host` header
/// itself, so what the server checks is exactly what was signed.
fn signed_publish(
    client: &reqwest::Client,
    target: &Target,
    keys: &Keys,
    form: String,
    at: SystemTime,
) -> Result<reqwest::RequestBuilder, String> {
    let url = reqwest::Url::parse(&target.endpoint)
        .map_err(|e| format!("bad endpoint {:?}: {e}", target.endpoint))?;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => return Err(format!("endpoint {:?} has no host", target.endpoint)),
    };
    let identity: Identity = Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.expose_secret().to_string(),
        keys.session_token
            .as_ref()
            .map(|t| t.expose_secret().to_string()),
        None,
        "lockgate-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name("sns")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign: {e}"))?
        .into();
    let headers = [("host", host.as_str()), ("content-type", FORM_CONTENT_TYPE)];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(form.as_bytes()),
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign: {e}"))?
        .into_parts();
    let mut request = client.post(url.clone());
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    Ok(request.body(form))
}

/// What SNS's answer says: `Ok` for a `PublishResponse` with a `MessageId`, otherwise the
/// error's code and message (or the status and the start of whatever else came back).
fn read_answer(status: reqwest::StatusCode, text: &str) -> Result<(), String> {
    if status.is_success() {
        return match xml::leaf_text(text, "MessageId") {
            Some(id) if !id.is_empty() => {
                tracing::debug!(message_id = %id, "SNS accepted the message");
                Ok(())
            }
            _ => Err(format!(
                "HTTP {status} without a MessageId: {}",
                excerpt(text)
            )),
        };
    }
    let error = xml::inner(text, "Error");
    let field = |name| error.and_then(|e| xml::leaf_text(e, name));
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => Err(format!("{code}: {message} (HTTP {status})")),
        (Some(code), None) => Err(format!("{code} (HTTP {status})")),
        _ => Err(format!("HTTP {status}: {}", excerpt(text))),
    }
}

/// The start of an answer, on one line, for an error message.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(UNREADABLE_ANSWER_CHARS)
        .collect();
    one_line.trim().to_string()
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

/// Just enough XML for SNS's answers, which are small, fixed documents without namespace
/// prefixes: the raw content of an element, and the text of a leaf element with its entities
/// decoded. A general XML parser would be a dependency for three fields.
mod xml {
    /// The raw content of the first `<name>` element, between its start and end tags.
    pub(super) fn inner<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
        let open = format!("<{name}");
        let mut from = 0;
        while let Some(at) = xml[from..].find(&open) {
            let after_name = from + at + open.len();
            let rest = &xml[after_name..];
            // `<Code>` or `<Code attr="...">`, but not `<CodeX>` or the empty `<Code/>`.
            if rest.starts_with("/>") {
                return Some("");
            }
            match rest.chars().next() {
                Some('>') | Some(' ') | Some('\t') | Some('\r') | Some('\n') => {
                    let end_of_tag = after_name + rest.find('>')?;
                    if xml[..end_of_tag].ends_with('/') {
                        return Some("");
                    }
                    let content = &xml[end_of_tag + 1..];
                    let close = content.find(&format!("</{name}>"))?;
                    return Some(&content[..close]);
                }
                _ => from = after_name,
            }
        }
        None
    }

    /// The text of the first `<name>` element, which must hold text only (or one CDATA
    /// section), with character and entity references decoded.
    pub(super) fn leaf_text(xml: &str, name: &str) -> Option<String> {
        let raw = inner(xml, name)?.trim();
        if let Some(cdata) = raw
            .strip_prefix("<![CDATA[")
            .and_then(|r| r.strip_suffix("]]>"))
        {
            return Some(cdata.to_string());
        }
        if raw.contains('<') {
            return None;
        }
        Some(unescape(raw))
    }

    /// Decodes `&lt;`, `&gt;`, `&amp;`, `&quot;`, `&apos;` and `&#N;` / `&#xH;`; anything
    /// else is kept as it is.
    fn unescape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let decoded = rest.find(';').and_then(|end| {
                let entity = &rest[1..end];
                let c = match entity {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                        .map(|hex| u32::from_str_radix(hex, 16))
                        .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                        .and_then(Result::ok)
                        .and_then(char::from_u32),
                };
                c.map(|c| (c, end))
            });
            match decoded {
                Some((c, end)) => {
                    out.push(c);
                    rest = &rest[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
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

    #[test]
    fn a_publish_response_with_a_message_id_is_success() {
        let ok = r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
              <PublishResult><MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId></PublishResult>
              <ResponseMetadata><RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0</RequestId></ResponseMetadata>
            </PublishResponse>"#;
        assert_eq!(read_answer(reqwest::StatusCode::OK, ok), Ok(()));
        let e = read_answer(reqwest::StatusCode::OK, "<html>proxy login</html>").unwrap_err();
        assert!(e.contains("without a MessageId"), "{e}");
    }

    #[test]
    fn an_error_response_reports_its_code_and_decoded_message() {
        let err = r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
              <Error><Type>Sender</Type><Code>AuthorizationError</Code>
                <Message>User: arn:aws:iam::1:user/x is not authorized &amp; &lt;denied&gt; &#233;</Message>
              </Error><RequestId>9b5b0b2c</RequestId></ErrorResponse>"#;
        assert_eq!(
            read_answer(reqwest::StatusCode::FORBIDDEN, err),
            Err("AuthorizationError: User: arn:aws:iam::1:user/x is not authorized & <denied> é (HTTP 403 Forbidden)".into())
        );
        let e = read_answer(reqwest::StatusCode::BAD_GATEWAY, "Bad\ngateway").unwrap_err();
        assert_eq!(e, "HTTP 502 Bad Gateway: Bad gateway");
    }

    #[test]
    fn xml_elements_are_matched_by_their_whole_name() {
        let doc =
            "<Error><CodeName>x</CodeName><Code a=\"1\"><![CDATA[A<B]]></Code><Empty/></Error>";
        assert_eq!(xml::leaf_text(doc, "Code").as_deref(), Some("A<B"));
        assert_eq!(xml::leaf_text(doc, "Empty").as_deref(), Some(""));
        assert_eq!(xml::leaf_text(doc, "Error"), None);
        assert_eq!(xml::leaf_text(doc, "Missing"), None);
    }

    #[test]
    fn targets_default_to_the_topic_region_and_aws_endpoint() {
        let sub: SubscriptionConfig =
            serde_json::from_value(serde_json::json!({ "protocol": "sns" })).unwrap();
        let t = Target::of(
            &SnsConfig::default(),
            "arn:aws:sns:eu-west-3:123456789012:t",
            &sub,
        );
        assert_eq!(t.region, "eu-west-3");
        assert_eq!(t.endpoint, "https://sns.eu-west-3.amazonaws.com");
        assert_eq!(
            default_endpoint("cn-north-1"),
            "https://sns.cn-north-1.amazonaws.com.cn"
        );
    }

    fn client() -> reqwest::Client {
        super::super::http_client(std::time::Duration::from_secs(1)).expect("an HTTP client")
    }

    #[test]
    fn an_sns_subscription_without_any_credentials_stops_the_start() {
        let topic: crate::config::TopicConfig = serde_json::from_value(serde_json::json!({
            "arn": "arn:aws:sns:us-east-1:123456789012:t",
            "subscriptions": [{ "protocol": "sns" }],
        }))
        .unwrap();
        let mut config = NotifyConfig {
            topics: vec![topic],
            ..NotifyConfig::default()
        };
        let e = SnsSink::with_environment(&config, client(), None)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("has no credentials"), "{e}");
        assert!(
            e.contains("profiles and instance roles are not read"),
            "{e}"
        );

        let environment = keys_from_environment(Some("AKID".into()), Some("s".into()), None);
        assert!(SnsSink::with_environment(&config, client(), environment.unwrap()).is_ok());
        config.sns.access_key_id = Some("AKID".into());
        config.sns.secret_access_key = Some("secret".to_string().into());
        assert!(SnsSink::with_environment(&config, client(), None).is_ok());
    }

    #[test]
    fn a_half_set_environment_key_pair_is_refused() {
        assert!(keys_from_environment(Some("AKID".into()), None, None).is_err());
        assert!(keys_from_environment(None, None, Some("t".into()))
            .unwrap()
            .is_none());
    }
}
