//! The embedded artifact store: a directory holding `<bucket>/<key>` files.
//!
//! A put writes a temporary file in the store's own `.incoming` directory, fsyncs it, renames it
//! into place and fsyncs the directory it landed in, so a reader sees the old zip or the new one,
//! whole, and an acknowledged put survives a crash.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::{ArtifactError, ArtifactLocation, ArtifactStore};

/// Where temporary files are written before they are renamed into place. Not a valid bucket
/// name (it starts with a dot), so no artifact can live there.
const INCOMING: &str = ".incoming";

/// Artifacts as files under one directory.
#[derive(Debug, Clone)]
pub struct DirectoryStore {
    root: PathBuf,
}

impl DirectoryStore {
    /// A store under `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<DirectoryStore, ArtifactError> {
        let root = root.into();
        fs::create_dir_all(root.join(INCOMING)).map_err(ArtifactError::io(format!(
            "creating the artifact store in {}",
            root.display()
        )))?;
        Ok(DirectoryStore { root })
    }

    /// The file of `location` (checked by [`ArtifactLocation::new`], so inside the root).
    fn path(&self, location: &ArtifactLocation) -> PathBuf {
        let mut path = self.root.join(&location.bucket);
        path.extend(location.key.split('/'));
        path
    }
}

impl DirectoryStore {
    /// [`ArtifactStore::put`], blocking.
    pub fn put_blocking(
        &self,
        location: &ArtifactLocation,
        zip: &[u8],
    ) -> Result<(), ArtifactError> {
        let path = self.path(location);
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent)
            .map_err(ArtifactError::io(format!("creating {}", parent.display())))?;
        let temporary = self
            .root
            .join(INCOMING)
            .join(format!("{:016x}", rand::thread_rng().gen::<u64>()));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(zip)?;
            file.sync_all()?;
            fs::rename(&temporary, &path)?;
            sync_dir(&parent)
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&temporary);
            ArtifactError::Io {
                what: format!("storing {location}"),
                source,
            }
        })
    }

    /// [`ArtifactStore::get`], blocking.
    pub fn get_blocking(
        &self,
        location: &ArtifactLocation,
    ) -> Result<Option<Vec<u8>>, ArtifactError> {
        match fs::read(self.path(location)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ArtifactError::Io {
                what: format!("reading {location}"),
                source,
            }),
        }
    }

    /// [`ArtifactStore::delete`], blocking.
    pub fn delete_blocking(&self, location: &ArtifactLocation) -> Result<bool, ArtifactError> {
        match fs::remove_file(self.path(location)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ArtifactError::Io {
                what: format!("deleting {location}"),
                source,
            }),
        }
    }

    /// [`ArtifactStore::written_before`], blocking: walks the bucket's directory.
    pub fn written_before_blocking(
        &self,
        bucket: &str,
        cutoff: std::time::SystemTime,
        limit: usize,
    ) -> Result<Vec<ArtifactLocation>, ArtifactError> {
        let dir = self.root.join(bucket);
        let mut found = Vec::new();
        if !dir.is_dir() {
            return Ok(found);
        }
        for entry in walkdir::WalkDir::new(&dir).min_depth(1) {
            if found.len() >= limit {
                break;
            }
            let entry = entry.map_err(|e| ArtifactError::Io {
                what: format!("listing {}", dir.display()),
                source: e.into(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let modified = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .unwrap_or(cutoff);
            if modified >= cutoff {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&dir) else {
                continue;
            };
            let key: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if let Ok(location) = ArtifactLocation::new(bucket, key.join("/")) {
                found.push(location);
            }
        }
        Ok(found)
    }
}

/// Runs `f` on the store on a blocking thread.
async fn off_thread<T: Send + 'static>(
    store: &DirectoryStore,
    f: impl FnOnce(DirectoryStore) -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store))
        .await
        .map_err(|e| ArtifactError::Io {
            what: "the artifact store's thread".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

#[async_trait::async_trait]
impl ArtifactStore for DirectoryStore {
    async fn put(&self, location: &ArtifactLocation, bytes: Vec<u8>) -> Result<(), ArtifactError> {
        let location = location.clone();
        off_thread(self, move |s| s.put_blocking(&location, &bytes)).await
    }

    async fn get(&self, location: &ArtifactLocation) -> Result<Option<Vec<u8>>, ArtifactError> {
        let location = location.clone();
        off_thread(self, move |s| s.get_blocking(&location)).await
    }

    async fn delete(&self, location: &ArtifactLocation) -> Result<bool, ArtifactError> {
        let location = location.clone();
        off_thread(self, move |s| s.delete_blocking(&location)).await
    }

    async fn written_before(
        &self,
        bucket: &str,
        cutoff: std::time::SystemTime,
        limit: usize,
    ) -> Result<Vec<ArtifactLocation>, ArtifactError> {
        let bucket = bucket.to_string();
        off_thread(self, move |s| {
            s.written_before_blocking(&bucket, cutoff, limit)
        })
        .await
    }
}

/// Makes a rename into `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_is_read_back_replaced_and_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirectoryStore::open(dir.path()).expect("opens");
        let location =
            ArtifactLocation::new("lockgate-artifacts", "release/Src/abc1234").expect("valid");
        assert_eq!(store.get_blocking(&location).expect("reads"), None);
        store.put_blocking(&location, b"first").expect("stored");
        assert_eq!(
            store.get_blocking(&location).expect("reads").as_deref(),
            Some(&b"first"[..])
        );
        store.put_blocking(&location, b"second").expect("replaced");
        assert_eq!(
            store.get_blocking(&location).expect("reads").as_deref(),
            Some(&b"second"[..])
        );
        assert!(dir
            .path()
            .join("lockgate-artifacts/release/Src/abc1234")
            .is_file());
        assert_eq!(
            fs::read_dir(dir.path().join(INCOMING))
                .expect("incoming")
                .count(),
            0,
            "no temporary file is left behind"
        );
        assert!(store.delete_blocking(&location).expect("deleted"));
        assert!(!store.delete_blocking(&location).expect("already gone"));
        assert_eq!(store.get_blocking(&location).expect("reads"), None);

        // A store opened again over the same directory finds what was put.
        store.put_blocking(&location, b"kept").expect("stored");
        let reopened = DirectoryStore::open(dir.path()).expect("reopens");
        assert_eq!(
            reopened.get_blocking(&location).expect("reads").as_deref(),
            Some(&b"kept"[..])
        );
    }
}
