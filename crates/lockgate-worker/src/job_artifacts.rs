//! A job's artifacts moving between the artifact store and its workspace: the inputs
//! unpacked where CodeBuild would put them, an output packed from its files and stored.

use std::path::{Path, PathBuf};

use lockgate_artifacts::{pack, unpack, ArtifactStore};
use lockgate_shapes::Artifact;

use crate::executor::{Failure, JobContext};

/// Unpacks the job's input artifacts: `primary` (or the first) into `src/`, the others into
/// `inputs/<name>/`. Returns the directories, primary first, with the artifacts' names.
pub async fn unpack_inputs(
    job: &JobContext,
    primary: Option<&str>,
) -> Result<Vec<(String, PathBuf)>, Failure> {
    let inputs = job.input_artifacts();
    let primary_index = match primary {
        Some(name) => inputs
            .iter()
            .position(|a| a.name.as_deref() == Some(name))
            .ok_or_else(|| {
                Failure::configuration(format!(
                    "The primary source {name} is not an input artifact of action {}",
                    job.action.name
                ))
            })?,
        None => 0,
    };
    let mut dirs = Vec::new();
    for (i, artifact) in inputs.iter().enumerate() {
        let name = artifact.name.clone().unwrap_or_default();
        let dir = if i == primary_index {
            job.workspace.src()
        } else {
            job.workspace.secondary(&name)
        };
        fetch(job.artifacts.as_ref(), job, artifact, &dir).await?;
        if i == primary_index {
            dirs.insert(0, (name, dir));
        } else {
            dirs.push((name, dir));
        }
    }
    Ok(dirs)
}

async fn fetch(
    store: &dyn ArtifactStore,
    job: &JobContext,
    artifact: &Artifact,
    dir: &Path,
) -> Result<(), Failure> {
    let name = artifact.name.as_deref().unwrap_or_default();
    let location = job.location(artifact)?;
    let zip = store
        .get(&location)
        .await
        .map_err(|e| Failure::system(format!("Reading the input artifact {name}: {e}")))?
        .ok_or_else(|| {
            Failure::job(format!(
                "The input artifact {name} is not in the artifact store ({location}): the \
                 action that produced it did not upload it, or it was deleted"
            ))
        })?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::system(format!("Making the directory of {name}: {e}")))?;
    let target = dir.to_path_buf();
    off_thread(move || unpack(&zip, &target))
        .await?
        .map_err(|e| Failure::job(format!("Unpacking the input artifact {name}: {e}")))
}

/// Packs the files of `dir` matching `files` (all files when empty) as `artifact` and stores
/// it. Returns how many bytes the zip has.
pub async fn store_output(
    job: &JobContext,
    artifact: &Artifact,
    dir: &Path,
    files: &[String],
) -> Result<usize, Failure> {
    let name = artifact.name.as_deref().unwrap_or_default();
    let patterns = if files.is_empty() {
        vec!["**/*".to_string()]
    } else {
        files.to_vec()
    };
    let source = dir.to_path_buf();
    let zip = off_thread(move || pack(&source, &patterns))
        .await?
        .map_err(|e| Failure::job(format!("Packing the output artifact {name}: {e}")))?;
    let location = job.location(artifact)?;
    let size = zip.len();
    job.artifacts
        .put(&location, zip)
        .await
        .map_err(|e| Failure::system(format!("Storing the output artifact {name}: {e}")))?;
    Ok(size)
}

/// Runs file work (packing, unpacking) on a blocking thread.
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::system(format!("A file task of the worker failed: {e}")))
}
