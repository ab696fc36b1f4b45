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

impl ArtifactStore for DirectoryStore {
    fn put(&self, location: &ArtifactLocation, zip: &[u8]) -> Result<(), ArtifactError> {
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

    fn get(&self, location: &ArtifactLocation) -> Result<Option<Vec<u8>>, ArtifactError> {
        match fs::read(self.path(location)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ArtifactError::Io {
                what: format!("reading {location}"),
                source,
            }),
        }
    }

    fn delete(&self, location: &ArtifactLocation) -> Result<bool, ArtifactError> {
        match fs::remove_file(self.path(location)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ArtifactError::Io {
                what: format!("deleting {location}"),
                source,
            }),
        }
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
        assert_eq!(store.get(&location).expect("reads"), None);
        store.put(&location, b"first").expect("stored");
        assert_eq!(
            store.get(&location).expect("reads").as_deref(),
            Some(&b"first"[..])
        );
        store.put(&location, b"second").expect("replaced");
        assert_eq!(
            store.get(&location).expect("reads").as_deref(),
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
        assert!(store.delete(&location).expect("deleted"));
        assert!(!store.delete(&location).expect("already gone"));
        assert_eq!(store.get(&location).expect("reads"), None);

        // A store opened again over the same directory finds what was put.
        store.put(&location, b"kept").expect("stored");
        let reopened = DirectoryStore::open(dir.path()).expect("reopens");
        assert_eq!(
            reopened.get(&location).expect("reads").as_deref(),
            Some(&b"kept"[..])
        );
    }
}
