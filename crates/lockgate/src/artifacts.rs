//! `[artifacts]`: where pipeline artifacts are kept (a directory under the data directory by
//! default, or an S3 API for several machines: `[artifacts.s3]`), and their retention: objects
//! of the pipelines' artifact buckets written more than `retention_days` ago are deleted by a
//! sweep every hour.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use lockgate_artifacts::{ArtifactStore, DirectoryStore, S3Settings, S3Store};
use secrecy::ExposeSecret;
use serde::Deserialize;

/// How many objects one sweep deletes at most per bucket (the next sweep goes on).
const SWEEP_BATCH: usize = 10_000;

/// How often retention runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// What `[artifacts]` may set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactSettings {
    /// The directory of the embedded artifact store [default: `<data_dir>/artifacts`].
    pub dir: Option<PathBuf>,
    /// `[artifacts.s3]`: keep artifacts in an S3 API instead (AWS S3, MinIO, ...).
    pub s3: Option<S3Settings>,
    /// Days an artifact is kept after it was written; 0 keeps them forever.
    pub retention_days: u64,
}

impl Default for ArtifactSettings {
    fn default() -> ArtifactSettings {
        ArtifactSettings {
            dir: None,
            s3: None,
            retention_days: 30,
        }
    }
}

/// The artifact store the server and its workers use.
#[derive(Debug, Clone)]
pub struct ArtifactsConfig {
    /// The embedded store's directory (unused with `s3`).
    pub dir: PathBuf,
    /// The S3 API, when artifacts live there.
    pub s3: Option<S3Settings>,
    /// How long artifacts are kept.
    pub retention: Option<Duration>,
}

impl ArtifactSettings {
    /// The checked settings, the directory defaulting to `data_dir/artifacts`.
    pub fn resolve(self, data_dir: &Path) -> ArtifactsConfig {
        ArtifactsConfig {
            dir: self.dir.unwrap_or_else(|| data_dir.join("artifacts")),
            s3: self.s3,
            retention: (self.retention_days > 0)
                .then(|| Duration::from_secs(self.retention_days * 24 * 3600)),
        }
    }
}

impl ArtifactsConfig {
    /// Opens the store.
    pub fn open(&self) -> anyhow::Result<Arc<dyn ArtifactStore>> {
        Ok(match &self.s3 {
            Some(s3) => Arc::new(S3Store::new(s3.clone()).context("cannot set up [artifacts.s3]")?),
            None => Arc::new(DirectoryStore::open(&self.dir).with_context(|| {
                format!("cannot open the artifact store in {}", self.dir.display())
            })?),
        })
    }

    /// The credentials job workers are handed with their jobs (`artifactCredentials`): the S3
    /// store's keys, when it has its own.
    pub fn worker_credentials(&self) -> Option<lockgate_shapes::AWSSessionCredentials> {
        let s3 = self.s3.as_ref()?;
        Some(lockgate_shapes::AWSSessionCredentials {
            access_key_id: s3.access_key_id.clone()?,
            secret_access_key: s3.secret_access_key.as_ref()?.expose_secret().to_string(),
            session_token: String::new(),
        })
    }
}

/// Deletes the artifacts of `buckets` written before `cutoff`: only objects keyed as
/// CodePipeline keys artifacts (`<pipeline>/<artifact>/<id>`), so objects a deploy put in
/// the same bucket stay. Returns how many it deleted.
pub async fn sweep(
    store: &dyn ArtifactStore,
    buckets: &BTreeSet<String>,
    cutoff: SystemTime,
) -> usize {
    let mut deleted = 0;
    for bucket in buckets {
        let old = match store.written_before(bucket, cutoff, SWEEP_BATCH).await {
            Ok(old) => old,
            Err(e) => {
                tracing::warn!(bucket = %bucket, "artifact retention cannot list the bucket: {e}");
                continue;
            }
        };
        for location in old.iter().filter(|l| l.key.split('/').count() == 3) {
            match store.delete(location).await {
                Ok(true) => deleted += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!("artifact retention cannot delete {location}: {e}"),
            }
        }
    }
    deleted
}
