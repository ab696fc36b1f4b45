//! The artifact buckets pipelines have named, kept in a small file under the data directory
//! (one name a line, rewritten whole and renamed into place when one is added), so artifact
//! retention knows every bucket after a restart without reading every pipeline.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// The known buckets and their file.
pub struct KnownBuckets {
    path: PathBuf,
    names: Mutex<BTreeSet<String>>,
}

impl KnownBuckets {
    /// The buckets recorded in `path` (none if it does not exist yet).
    pub fn load(path: PathBuf) -> KnownBuckets {
        let names = std::fs::read_to_string(&path)
            .map(|text| {
                text.lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        KnownBuckets {
            path,
            names: Mutex::new(names),
        }
    }

    /// Adds `buckets`; the file is rewritten only when one is new.
    pub fn add(&self, buckets: BTreeSet<String>) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let before = names.len();
        names.extend(
            buckets
                .into_iter()
                .filter(|b| !b.is_empty() && !b.contains('\n')),
        );
        if names.len() == before {
            return;
        }
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        let temporary = self.path.with_extension("new");
        let written =
            std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(e) = written {
            tracing::warn!(
                "cannot record the artifact buckets in {}: {e}",
                self.path.display()
            );
        }
    }

    /// Every known bucket.
    pub fn all(&self) -> BTreeSet<String> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
