//! A minimal CodePipeline client for the command line (`pipelines import`, `worker`):
//! awsJson1.1 requests signed with SigV4 (the `aws-sigv4` crate), credentials from the AWS
//! SDK's default chain (environment, shared config and credentials files, SSO, ...), exactly
//! what the AWS CLI would send.

use anyhow::{bail, Context};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;

/// The JSON content type of awsJson1.1.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An error the service answered with: its code (`PipelineNameInUseException`, ...) and message.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceError {
    /// The error code, without botocore's namespace prefix.
    pub code: String,
    /// The message.
    pub message: String,
}

/// Calls one Lockgate (or CodePipeline) endpoint.
pub struct Client {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    region: String,
    identity: Identity,
}

impl Client {
    /// A client for `endpoint`, signing for `region` with the default credential chain's
    /// credentials.
    pub async fn new(endpoint: &str, region: &str) -> anyhow::Result<Client> {
        let endpoint =
            reqwest::Url::parse(endpoint).with_context(|| format!("{endpoint:?} is not a URL"))?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .load()
            .await;
        let provider = config.credentials_provider().context(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a key from \
             `lockgate user add`) or a profile, as for the AWS CLI",
        )?;
        let credentials = provider
            .provide_credentials()
            .await
            .context("reading AWS credentials")?;
        Ok(Client {
            http: reqwest::Client::new(),
            endpoint,
            region: region.to_string(),
            identity: credentials.into(),
        })
    }

    /// Calls `operation` with a typed input (a `lockgate_shapes` shape, whose serde names are
    /// the wire's) and reads the typed output.
    pub async fn call_typed<I: serde::Serialize, O: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        input: &I,
    ) -> anyhow::Result<Result<O, ServiceError>> {
        let input = serde_json::to_value(input)?;
        Ok(match self.call(operation, &input).await? {
            Ok(value) => Ok(serde_json::from_value(value)
                .with_context(|| format!("{operation} answered with an unexpected shape"))?),
            Err(e) => Err(e),
        })
    }

    /// Calls `operation` with `input`; the answer's JSON, or the service's error.
    pub async fn call(
        &self,
        operation: &str,
        input: &Value,
    ) -> anyhow::Result<Result<Value, ServiceError>> {
        let body = serde_json::to_vec(input)?;
        let host = match (self.endpoint.host_str(), self.endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => bail!("the endpoint {} has no host", self.endpoint),
        };
        let target = format!("CodePipeline_20150709.{operation}");
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("codepipeline")
            .time(lockgate_model::Clock::now_system(
                &lockgate_model::SystemClock,
            ))
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers = [
            ("host", host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let mut request = self.http.post(self.endpoint.clone());
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .with_context(|| format!("calling {operation} at {}", self.endpoint))?;
        let status = response.status();
        let text = response.text().await?;
        let json: Value = if text.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("{operation} answered HTTP {status} with {text:?}"))?
        };
        if status.is_success() {
            return Ok(Ok(json));
        }
        let code = json
            .get("__type")
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Err(ServiceError { code, message }))
    }
}
