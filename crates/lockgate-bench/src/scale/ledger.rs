//! What a kept data directory already holds (`--keep DIR`), so a long load is done once and a
//! later run measures only: the pipelines loaded to their approval, the long history, and the
//! pipelines earlier runs approved (each run approves its own, never one approved before).
//! Written to `lockgate-bench-scale.json` in the directory after every step that changes it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The ledger's file in the data directory.
pub const LEDGER_FILE: &str = "lockgate-bench-scale.json";

/// What a data directory holds, as far as the benchmark knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Pipelines `p0000000 …` loaded to their pending approval (every chunk up to here was
    /// complete).
    pub pipelines: usize,
    /// Finished executions of the history pipeline.
    pub history: usize,
    /// Pipelines approved by runs so far: `0 .. approved`; the ones still waiting at their
    /// approval are `approved .. pipelines`.
    pub approved: usize,
    /// Completed runs on this directory.
    pub runs: usize,
}

impl Ledger {
    /// The ledger in `dir`, `None` when the directory holds none.
    pub fn read(dir: &Path) -> anyhow::Result<Option<Ledger>> {
        let path = dir.join(LEDGER_FILE);
        match std::fs::read(&path) {
            Ok(text) => Ok(Some(
                serde_json::from_slice(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the ledger to `dir` (a new file renamed over the old, so a crash leaves one of
    /// the two whole).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(LEDGER_FILE);
        let fresh = PathBuf::from(format!("{}.new", path.display()));
        std::fs::write(&fresh, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", fresh.display()))?;
        std::fs::rename(&fresh, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Pipelines still waiting at their approval.
    pub fn waiting(&self) -> std::ops::Range<usize> {
        self.approved.min(self.pipelines)..self.pipelines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ledger::read(dir.path()).unwrap(), None);
        let ledger = Ledger {
            pipelines: 1000,
            history: 20,
            approved: 100,
            runs: 1,
        };
        ledger.write(dir.path()).unwrap();
        assert_eq!(Ledger::read(dir.path()).unwrap(), Some(ledger.clone()));
        assert_eq!(ledger.waiting(), 100..1000);
    }
}
