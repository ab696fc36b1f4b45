//! Where pipeline artifacts live. CodePipeline keeps an artifact as a zip file in the pipeline's
//! artifact store, an S3 bucket, under an object key below the pipeline's name; Lockgate keeps
//! the same names, so the locations in a job's `inputArtifacts` / `outputArtifacts` mean what
//! they mean in CodePipeline.
//!
//! - [`ArtifactStore`]: put, get and delete a zip by [`ArtifactLocation`] (bucket and key), and
//!   find those written before a time (retention).
//! - [`DirectoryStore`]: the embedded store, a directory (under `--data-dir`) holding
//!   `<bucket>/<key>`, each file written whole and fsynced before it is visible.
//! - [`S3Store`]: S3 itself, or an S3-compatible service, configured by [`S3Settings`]; the
//!   artifact's bucket and key are the object's.
//! - [`pack`] and [`unpack`]: a directory's files chosen by globs into a zip, and a zip into a
//!   directory (entries that would land outside it are refused).

mod directory;
mod s3;
mod zipped;

pub use directory::DirectoryStore;
pub use s3::{S3Settings, S3Store};
pub use zipped::{pack, unpack};

/// Where one artifact is: an S3-style bucket and object key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactLocation {
    /// The artifact store's `location` (a bucket name).
    pub bucket: String,
    /// The object key, `/`-separated, below the pipeline's name.
    pub key: String,
}

impl ArtifactLocation {
    /// A location, checked: a bucket of 3 to 63 lowercase letters, digits, `.` and `-`; a key of
    /// `/`-separated non-empty segments, none of them `.` or `..`, without NUL or `\`.
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let location = ArtifactLocation {
            bucket: bucket.into(),
            key: key.into(),
        };
        let bucket_ok = (3..=63).contains(&location.bucket.len())
            && location
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !location.bucket.starts_with('.')
            && !location.bucket.contains("..");
        if !bucket_ok {
            return Err(ArtifactError::BadLocation(format!(
                "bucket {:?} is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')",
                location.bucket
            )));
        }
        let key_ok = !location.key.is_empty()
            && !location.key.contains(['\0', '\\'])
            && location
                .key
                .split('/')
                .all(|segment| !matches!(segment, "" | "." | ".."));
        if !key_ok {
            return Err(ArtifactError::BadLocation(format!(
                "object key {:?} is not a path of non-empty segments without '.' or '..'",
                location.key
            )));
        }
        Ok(location)
    }
}

impl std::fmt::Display for ArtifactLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an artifact could not be stored, read, packed or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A bucket or key that cannot name an artifact.
    #[error("{0}")]
    BadLocation(String),
    /// A glob that does not parse.
    #[error("bad file pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A zip that cannot be read, or an entry that would land outside the directory.
    #[error("bad artifact: {0}")]
    BadArchive(String),
    /// The file system failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Settings that cannot make a store (such as half an S3 key pair).
    #[error("{0}")]
    BadSettings(String),
    /// An artifact was stored into a bucket that does not exist; Lockgate does not create
    /// buckets.
    #[error(
        "{what}: the bucket {bucket:?} does not exist (S3 error NoSuchBucket); create it (for \
         example `aws s3 mb s3://{bucket}`) or point the pipeline's artifact store at one that \
         exists"
    )]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// What was being done, naming the object.
        what: String,
    },
    /// An S3 request failed: S3 answered with an error, or no answer came.
    #[error("{what}: {detail}")]
    S3 {
        /// What was being done, naming the bucket and key.
        what: String,
        /// The S3 error code (`AccessDenied`, `SignatureDoesNotMatch`...), when S3 answered
        /// with one.
        code: Option<String>,
        /// The code, HTTP status and message, or why no answer came.
        detail: String,
    },
}

impl ArtifactError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArtifactError {
        let what = what.into();
        move |source| ArtifactError::Io { what, source }
    }
}

/// Keeps artifacts, whole: a put replaces, a get returns what the last put stored.
#[async_trait::async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores `bytes` (a zip, or a deployed file) at `location`, durably, replacing what was
    /// there.
    async fn put(&self, location: &ArtifactLocation, bytes: Vec<u8>) -> Result<(), ArtifactError>;
    /// The object at `location`, if there is one.
    async fn get(&self, location: &ArtifactLocation) -> Result<Option<Vec<u8>>, ArtifactError>;
    /// Deletes the object at `location`; whether there was one.
    async fn delete(&self, location: &ArtifactLocation) -> Result<bool, ArtifactError>;
    /// Up to `limit` objects of `bucket` last written before `cutoff` (what retention deletes).
    async fn written_before(
        &self,
        bucket: &str,
        cutoff: std::time::SystemTime,
        limit: usize,
    ) -> Result<Vec<ArtifactLocation>, ArtifactError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_checked_like_s3_names_and_relative_paths() {
        assert!(ArtifactLocation::new("lockgate-artifacts", "release/SourceOut/a1b2c3d").is_ok());
        for (bucket, key) in [
            ("ab", "k"),
            ("Upper", "k"),
            ("under_score", "k"),
            (".dot", "k"),
            ("a..b", "k"),
            ("bucket", ""),
            ("bucket", "/abs"),
            ("bucket", "a//b"),
            ("bucket", "a/../b"),
            ("bucket", "./a"),
            ("bucket", "a\\b"),
            ("bucket", "a\0b"),
        ] {
            assert!(
                ArtifactLocation::new(bucket, key).is_err(),
                "{bucket:?} {key:?}"
            );
        }
        let location = ArtifactLocation::new("bucket", "p/a/b").expect("valid");
        assert_eq!(location.to_string(), "s3://bucket/p/a/b");
    }
}
