//! `Deploy/AWS/S3/1`: the input artifact written into a bucket of the artifact store, as
//! CodePipeline writes it into S3: with `Extract` true every file of the zip becomes an object
//! (under `ObjectKey` when it is given, as a folder), with `Extract` false the zip itself is
//! stored at `ObjectKey`. With the embedded store, the bucket is a directory under the artifact
//! directory, so this is a deploy into a local directory tree.

use lockgate_artifacts::ArtifactLocation;
use lockgate_shapes::{ActionCategory, ActionTypeId};

use super::aws;
use crate::executor::{Executor, Failure, JobContext, Success};
use crate::job_artifacts::{off_thread, unpack_inputs};

/// Runs S3 deploy actions.
pub struct S3Deploy;

/// Settings a local deploy cannot apply; they are named in the log, not refused, so a pipeline
/// made for AWS runs unchanged.
const NOT_APPLIED: &[&str] = &["KMSEncryptionKeyARN", "CannedACL", "CacheControl"];

#[async_trait::async_trait]
impl Executor for S3Deploy {
    fn action_types(&self) -> Vec<ActionTypeId> {
        vec![aws(ActionCategory::Deploy, "S3")]
    }

    async fn run(&self, job: &mut JobContext) -> Result<Success, Failure> {
        let bucket = job.required("BucketName")?.to_string();
        let extract = match job.required("Extract")?.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(Failure::configuration(format!(
                    "Extract must be true or false, not {other:?}"
                )))
            }
        };
        let object_key = job
            .config("ObjectKey")
            .map(|k| k.trim_matches('/').to_string())
            .filter(|k| !k.is_empty());
        for key in NOT_APPLIED {
            if job.config(key).is_some() {
                job.log.line(&format!(
                    "{key} is set; a local deploy stores objects without it"
                ));
            }
        }
        let input = job
            .input_artifacts()
            .first()
            .cloned()
            .ok_or_else(|| Failure::configuration("An S3 deploy needs an input artifact"))?;
        let place = |key: &str| {
            ArtifactLocation::new(bucket.clone(), key.to_string()).map_err(|e| {
                Failure::configuration(format!("Cannot deploy to s3://{bucket}/{key}: {e}"))
            })
        };
        if !extract {
            let key = object_key.ok_or_else(|| {
                Failure::configuration("ObjectKey is required when Extract is false")
            })?;
            let location = place(&key)?;
            let zip = job
                .artifacts
                .get(&job.location(&input)?)
                .await
                .map_err(|e| Failure::system(format!("Reading the input artifact: {e}")))?
                .ok_or_else(|| Failure::job("The input artifact is not in the artifact store"))?;
            job.artifacts
                .put(&location, zip)
                .await
                .map_err(|e| Failure::system(format!("Deploying to {location}: {e}")))?;
            job.log.line(&format!("Stored the artifact at {location}"));
            return Ok(Success {
                summary: Some(format!("Deployed the artifact to {location}")),
                ..Success::default()
            });
        }
        unpack_inputs(job, None).await?;
        let src = job.workspace.src();
        let files = off_thread(move || {
            walk_files(&src)
                .into_iter()
                .map(|(relative, path)| std::fs::read(&path).map(|b| (relative, b)))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await?
        .map_err(|e| Failure::system(format!("Reading the unpacked artifact: {e}")))?;
        let count = files.len();
        for (relative, bytes) in files {
            let key = match &object_key {
                Some(prefix) => format!("{prefix}/{relative}"),
                None => relative,
            };
            let location = place(&key)?;
            job.artifacts
                .put(&location, bytes)
                .await
                .map_err(|e| Failure::system(format!("Deploying to {location}: {e}")))?;
            job.log.line(&format!("Deployed {location}"));
        }
        let target = match &object_key {
            Some(prefix) => format!("s3://{bucket}/{prefix}/"),
            None => format!("s3://{bucket}/"),
        };
        Ok(Success {
            summary: Some(format!(
                "Deployed {count} file{} to {target}",
                if count == 1 { "" } else { "s" }
            )),
            ..Success::default()
        })
    }
}

/// Every file below `root`, with its `/`-separated path relative to it, in name order.
fn walk_files(root: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let relative = e.path().strip_prefix(root).ok()?;
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            Some((relative, e.path().to_path_buf()))
        })
        .collect()
}
