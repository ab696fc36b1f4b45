//! A job's directories, made fresh for it and removed after it: `src/` holds the primary input
//! artifact (CodeBuild's `CODEBUILD_SRC_DIR`), `inputs/<name>/` each other input (as CodeBuild
//! lays out secondary sources, beside the primary), and `meta/` the files the worker itself
//! needs (scripts, step and exports files), outside anything an output artifact could pack.

use std::path::{Path, PathBuf};

/// A job's directories.
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Makes the (empty) directories of job `job_id` under `base`.
    pub fn create(base: &Path, job_id: &str) -> std::io::Result<Workspace> {
        let safe: String = job_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let root = base.join(format!("job-{safe}"));
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        for dir in ["src", "inputs", "meta"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        Ok(Workspace { root })
    }

    /// The primary source directory.
    pub fn src(&self) -> PathBuf {
        self.root.join("src")
    }

    /// The directory of secondary input `name`.
    pub fn secondary(&self, name: &str) -> PathBuf {
        self.root.join("inputs").join(name)
    }

    /// A file of the worker's own.
    pub fn meta(&self, name: &str) -> PathBuf {
        self.root.join("meta").join(name)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
