//! SigV4 signing with AWS's own signer (`aws-sigv4`), so the load generators' requests are signed
//! exactly as the AWS SDK for Rust signs them and the server verifies real signatures.

use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The media type of every awsJson1.1 request.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The `X-Amz-Target` prefix of every CodePipeline operation.
pub const TARGET_PREFIX: &str = "CodePipeline_20150709.";

/// Signs `POST /` requests for one user, region and host.
pub struct Signer {
    identity: Identity,
    region: String,
    host: String,
}

impl Signer {
    /// A signer for the user with these keys, talking to `host` (`127.0.0.1:PORT`).
    pub fn new(access_key_id: &str, secret_access_key: &str, region: &str, host: &str) -> Self {
        let identity = Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "lockgate-loadgen",
        )
        .into();
        Signer {
            identity,
            region: region.to_owned(),
            host: host.to_owned(),
        }
    }

    /// Every header of a `POST /` calling `operation` with `body`, signed as of `at`: `host`,
    /// `content-type`, `x-amz-target`, `x-amz-date` and `authorization`.
    pub fn headers(
        &self,
        operation: &str,
        body: &[u8],
        at: SystemTime,
    ) -> anyhow::Result<HeaderMap> {
        let target = format!("{TARGET_PREFIX}{operation}");
        let unsigned = [
            ("host", self.host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("codepipeline")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .context("incomplete SigV4 signing parameters")?
            .into();
        let signable = SignableRequest::new(
            "POST",
            format!("http://{}/", self.host),
            unsigned.iter().copied(),
            SignableBody::Bytes(body),
        )
        .context("building the request to sign")?;
        let (instructions, _signature) = sign(signable, &params)
            .context("signing the request")?
            .into_parts();
        let mut headers = HeaderMap::with_capacity(8);
        for (name, value) in unsigned.iter().copied().chain(instructions.headers()) {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
        Ok(headers)
    }
}
