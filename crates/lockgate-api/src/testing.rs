//! Test helpers: requests signed by AWS's own SigV4 signer (`aws-sigv4`), so that the verifier is
//! checked against the implementation every AWS SDK for Rust uses rather than against itself.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The access key id every test signs with unless it says otherwise.
pub const ACCESS_KEY_ID: &str = "AKIDLOCKGATETEST";
/// The secret behind [`ACCESS_KEY_ID`].
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLOCKGATEKEY";
/// The region the test server runs in.
pub const REGION: &str = "us-east-1";

/// How a test request is signed.
#[derive(Clone, Debug)]
pub struct Signer {
    pub access_key_id: String,
    pub secret: String,
    pub region: String,
    pub service: String,
    pub time: SystemTime,
    /// `Some(expiry)` presigns into the query string instead of the `Authorization` header.
    pub presign: Option<Duration>,
}

impl Default for Signer {
    fn default() -> Self {
        Signer {
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret: SECRET.to_owned(),
            region: REGION.to_owned(),
            service: "codepipeline".to_owned(),
            time: lockgate_model::Clock::now_system(&lockgate_model::SystemClock),
            presign: None,
        }
    }
}

impl Signer {
    /// Signs `request` in place, as the AWS SDK for Rust would.
    pub fn sign(&self, request: &mut http::Request<Vec<u8>>) {
        let identity: Identity = Credentials::new(
            &self.access_key_id,
            &self.secret,
            None,
            None,
            "lockgate-test",
        )
        .into();
        let mut settings = SigningSettings::default();
        if let Some(expiry) = self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expiry);
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .expect("complete signing parameters")
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(request.body()),
        )
        .expect("signable request");
        let (instructions, _signature) = sign(signable, &params)
            .expect("aws-sigv4 signs the request")
            .into_parts();
        instructions.apply_to_request_http1x(request);
    }
}

/// A POST request to `uri` on `localhost:4680` with `headers` and `body`, not yet signed.
pub fn request(uri: &str, headers: &[(&str, &str)], body: &[u8]) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", "localhost:4680");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.to_vec()).expect("valid test request")
}
