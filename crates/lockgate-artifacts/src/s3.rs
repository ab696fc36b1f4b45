//! The S3 artifact store: artifacts as objects in S3, or in an S3-compatible service (MinIO,
//! Ceph, moto) at another endpoint.
//!
//! Names are kept exactly as CodePipeline keeps them: an artifact's bucket is the S3 bucket and
//! its key the S3 object key, with no prefix, so a pipeline's artifact store can be a bucket
//! that CodePipeline itself wrote to. Every call names its bucket; one client serves them all.
//! Lockgate does not create buckets: a put into one that does not exist fails, saying so.
//!
//! The operator's secret key is kept in a [`SecretString`] and handed to the SDK's signer only;
//! neither the store's nor the settings' `Debug` shows it, and no error message carries it.

use std::time::SystemTime;

use aws_credential_types::provider::{self, ProvideCredentials};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{ArtifactError, ArtifactLocation, ArtifactStore};

/// The S3 error code of a bucket that does not exist.
const NO_SUCH_BUCKET: &str = "NoSuchBucket";

/// How to reach S3: the `[artifacts.s3]` table of lockgate.toml.
///
/// ```toml
/// [artifacts.s3]
/// endpoint = "http://127.0.0.1:9000"   # MinIO; leave out for AWS
/// region = "us-east-1"
/// access_key_id = "lockgate"
/// secret_access_key = "..."            # both keys, or neither (the AWS credential chain)
/// path_style = true                    # the default when an endpoint is given
/// ```
///
/// Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "SettingsTable")]
pub struct S3Settings {
    /// The S3 API's base URL, such as `http://127.0.0.1:9000` for MinIO or moto; none for AWS
    /// (the region's endpoint).
    pub endpoint: Option<String>,
    /// The region requests are signed for (and, without an endpoint, sent to).
    pub region: String,
    /// The access key ID; with [`secret_access_key`](Self::secret_access_key), static
    /// credentials. Without both, the default AWS credential chain (environment, profile, web
    /// identity, container or instance role) supplies them.
    pub access_key_id: Option<String>,
    /// The secret access key that goes with [`access_key_id`](Self::access_key_id).
    pub secret_access_key: Option<SecretString>,
    /// Buckets addressed as `<endpoint>/<bucket>/<key>` rather than `<bucket>.<endpoint>/<key>`.
    /// Defaults to true when an endpoint is given (S3-compatible services rarely have the
    /// wildcard DNS virtual-hosted addressing needs), false for AWS.
    pub path_style: bool,
}

impl S3Settings {
    /// Settings for AWS in `region`, credentials from the default chain.
    pub fn aws(region: impl Into<String>) -> S3Settings {
        S3Settings {
            endpoint: None,
            region: region.into(),
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
        }
    }

    /// Settings for an S3-compatible service at `endpoint` (path-style addressing), with static
    /// credentials, signed for `us-east-1`.
    pub fn at_endpoint(
        endpoint: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> S3Settings {
        S3Settings {
            endpoint: Some(endpoint.into()),
            region: default_region(),
            access_key_id: Some(access_key_id.into()),
            secret_access_key: Some(SecretString::from(secret_access_key.into())),
            path_style: true,
        }
    }
}

/// [`S3Settings`] as written in the file, before the defaults that depend on other keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsTable {
    endpoint: Option<String>,
    #[serde(default = "default_region")]
    region: String,
    access_key_id: Option<String>,
    secret_access_key: Option<SecretString>,
    path_style: Option<bool>,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

impl From<SettingsTable> for S3Settings {
    fn from(table: SettingsTable) -> S3Settings {
        let path_style = table.path_style.unwrap_or(table.endpoint.is_some());
        S3Settings {
            endpoint: table.endpoint,
            region: table.region,
            access_key_id: table.access_key_id,
            secret_access_key: table.secret_access_key,
            path_style,
        }
    }
}

/// Artifacts as objects in S3 buckets, any bucket per call.
#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand: the SDK client's own Debug is long, and this one must never be able to show
        // the secret key, whatever the SDK prints.
        f.debug_struct("S3Store")
            .field("endpoint", &self.settings.endpoint)
            .field("region", &self.settings.region)
            .field("path_style", &self.settings.path_style)
            .field("access_key_id", &self.settings.access_key_id)
            .field(
                "secret_access_key",
                &self
                    .settings
                    .secret_access_key
                    .as_ref()
                    .map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl S3Store {
    /// A store reaching S3 as `settings` say. Makes no request: a wrong endpoint or bad
    /// credentials show on the first call.
    pub fn new(settings: S3Settings) -> Result<S3Store, ArtifactError> {
        if settings.region.trim().is_empty() {
            return Err(ArtifactError::BadSettings(
                "the S3 artifact store's region is empty".into(),
            ));
        }
        let credentials = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
                id.clone(),
                secret.expose_secret().to_string(),
                None,
                None,
                "lockgate.toml [artifacts.s3]",
            )),
            (None, None) => SharedCredentialsProvider::new(DefaultChain {
                region: Region::new(settings.region.clone()),
                chain: tokio::sync::OnceCell::new(),
            }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(ArtifactError::BadSettings(
                    "the S3 artifact store needs both access_key_id and secret_access_key, or \
                     neither (the AWS credential chain)"
                        .into(),
                ))
            }
        };
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.path_style);
        if let Some(endpoint) = &settings.endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !scheme_ok {
                return Err(ArtifactError::BadSettings(format!(
                    "the S3 artifact store's endpoint {endpoint:?} is not an http:// or https:// \
                     URL"
                )));
            }
            // Many S3-compatible services refuse the CRC checksum headers the SDK sends by
            // default since 2025; send (and check) checksums only where an operation needs them.
            config = config
                .endpoint_url(endpoint)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        Ok(S3Store {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            settings,
        })
    }

    /// The settings the store was made with.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }
}

#[async_trait::async_trait]
impl ArtifactStore for S3Store {
    async fn put(&self, location: &ArtifactLocation, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        // One PutObject: S3 acknowledges it once the whole object is stored durably, and a
        // reader sees the old object or the new one.
        self.client
            .put_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| {
                if error.code() == Some(NO_SUCH_BUCKET) {
                    ArtifactError::NoSuchBucket {
                        bucket: location.bucket.clone(),
                        what: format!("storing {location}"),
                    }
                } else {
                    failure(format!("storing {location}"), &error)
                }
            })?;
        Ok(())
    }

    async fn get(&self, location: &ArtifactLocation) -> Result<Option<Vec<u8>>, ArtifactError> {
        let output = match self
            .client
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error.as_service_error().is_some_and(|e| e.is_no_such_key())
                    || error.code() == Some(NO_SUCH_BUCKET) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(failure(format!("reading {location}"), &error)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|error| ArtifactError::S3 {
                what: format!("reading {location}"),
                code: None,
                detail: format!("the object's body: {}", DisplayErrorContext(&error)),
            })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn delete(&self, location: &ArtifactLocation) -> Result<bool, ArtifactError> {
        // DeleteObject answers the same whether or not the object was there; ask first.
        match self
            .client
            .head_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
        {
            Ok(_) => {}
            // A HEAD has no body, so a missing bucket is a 404 like a missing key.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => {
                return Ok(false)
            }
            Err(error) if error.code() == Some(NO_SUCH_BUCKET) => return Ok(false),
            Err(error) => return Err(failure(format!("deleting {location}"), &error)),
        }
        self.client
            .delete_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
            .map_err(|error| failure(format!("deleting {location}"), &error))?;
        Ok(true)
    }

    async fn written_before(
        &self,
        bucket: &str,
        cutoff: SystemTime,
        limit: usize,
    ) -> Result<Vec<ArtifactLocation>, ArtifactError> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_no_such_bucket())
                        || error.code() == Some(NO_SUCH_BUCKET) =>
                {
                    return Ok(found)
                }
                Err(error) => {
                    return Err(failure(format!("listing bucket {bucket:?}"), &error));
                }
            };
            for object in page.contents() {
                let (Some(key), Some(modified)) = (object.key(), object.last_modified()) else {
                    continue;
                };
                // A time SystemTime cannot hold is far from any cutoff: keep the object.
                let Ok(modified) = SystemTime::try_from(*modified) else {
                    continue;
                };
                if modified >= cutoff {
                    continue;
                }
                // Keys no artifact could have (`a//b`, `../x`) are someone else's objects.
                if let Ok(location) = ArtifactLocation::new(bucket, key) {
                    found.push(location);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(found)
    }
}

/// The error of a failed request: the S3 error code, HTTP status and message when S3 answered,
/// else why no answer came (connection refused, timeout, credentials).
fn failure<E>(what: String, error: &SdkError<E, HttpResponse>) -> ArtifactError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code().map(str::to_owned);
    let status = error.raw_response().map(|r| r.status().as_u16());
    let detail = match (&code, status) {
        (Some(code), Some(status)) => format!("S3 error {code} (HTTP {status})"),
        (Some(code), None) => format!("S3 error {code}"),
        (None, Some(status)) => format!("S3 answered HTTP {status}"),
        (None, None) => format!("no answer from S3: {}", DisplayErrorContext(error)),
    };
    let detail = match error.message() {
        Some(message) if !message.is_empty() => format!("{detail}: {message}"),
        _ => detail,
    };
    ArtifactError::S3 { what, code, detail }
}

/// The default AWS credential chain, built on first use: building it is async (it reads profile
/// files), and [`S3Store::new`] is not. The SDK's identity cache keeps what it provides.
#[derive(Debug)]
struct DefaultChain {
    region: Region,
    chain:
        tokio::sync::OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
}

impl ProvideCredentials for DefaultChain {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| {
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .region(self.region.clone())
                        .build()
                })
                .await;
            chain.provide_credentials().await
        })
    }
}

#[cfg(test)]
mod tests {
    //! Settings as lockgate.toml gives them, and what `Debug` shows; requests are tested against
    //! a real S3 API in `tests/s3.rs`.

    use super::*;

    fn parse(toml: &str) -> Result<S3Settings, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            s3: S3Settings,
        }
        toml::from_str::<Wrapper>(toml)
            .map(|w| w.s3)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn settings_default_the_region_and_path_style_from_the_endpoint() {
        let local = parse(
            "[s3]\nendpoint = \"http://127.0.0.1:9000\"\naccess_key_id = \"id\"\n\
             secret_access_key = \"hush-hush\"\n",
        )
        .expect("parses");
        assert_eq!(local.region, "us-east-1");
        assert!(local.path_style);
        assert_eq!(
            local.secret_access_key.as_ref().map(|s| s.expose_secret()),
            Some("hush-hush")
        );
        assert!(!format!("{local:?}").contains("hush-hush"));

        let aws = parse("[s3]\nregion = \"eu-west-1\"\n").expect("parses");
        assert_eq!(aws.region, "eu-west-1");
        assert!(!aws.path_style);
        assert!(aws.endpoint.is_none() && aws.access_key_id.is_none());

        let explicit =
            parse("[s3]\nendpoint = \"http://minio:9000\"\npath_style = false\n").expect("parses");
        assert!(!explicit.path_style);

        let unknown = parse("[s3]\nprefix = \"artifacts/\"\n").expect_err("refused");
        assert!(unknown.contains("prefix"), "{unknown}");
    }

    #[test]
    fn half_a_key_pair_and_a_bad_endpoint_are_refused() {
        let mut settings = S3Settings::aws("us-east-1");
        settings.access_key_id = Some("id".into());
        let error = S3Store::new(settings).expect_err("refused");
        assert!(error.to_string().contains("secret_access_key"), "{error}");

        let mut settings = S3Settings::at_endpoint("127.0.0.1:9000", "id", "secret");
        settings.path_style = true;
        let error = S3Store::new(settings).expect_err("refused");
        assert!(error.to_string().contains("127.0.0.1:9000"), "{error}");
    }

    #[test]
    fn debug_shows_the_key_id_but_not_the_secret() {
        let store = S3Store::new(S3Settings::at_endpoint(
            "http://127.0.0.1:9000",
            "AKIDLOCKGATE",
            "wJalrXUtnFEMI-not-to-be-shown",
        ))
        .expect("store");
        let shown = format!("{store:?} {:?}", store.settings());
        assert!(shown.contains("AKIDLOCKGATE"), "{shown}");
        assert!(!shown.contains("not-to-be-shown"), "{shown}");
    }
}
