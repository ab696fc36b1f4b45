//! Where an action's artifacts and its run's log are kept, named as CodePipeline names
//! artifacts: the bucket is the pipeline's artifact store (`artifactStore.location`, or the
//! action's region's in `artifactStores`), the key starts with the pipeline's name cut to 20
//! characters. The engine names artifacts with these, the worker writes logs with them and the
//! console reads them back.

use lockgate_shapes::{ActionDeclaration, PipelineDeclaration};

/// The first `n` characters of `s`.
pub fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((idx, _)) => &s[..idx],
        None => s,
    }
}

/// The bucket of `action`'s artifacts (empty when the pipeline names no artifact store).
pub fn artifact_bucket(decl: &PipelineDeclaration, action: &ActionDeclaration) -> String {
    if let Some(store) = &decl.artifact_store {
        return store.location.clone();
    }
    if let Some(stores) = &decl.artifact_stores {
        if let Some(store) = action.region.as_ref().and_then(|r| stores.get(r)) {
            return store.location.clone();
        }
        if let Some(store) = stores.values().next() {
            return store.location.clone();
        }
    }
    String::new()
}

/// The key of output artifact `artifact` of one run (`id` distinguishes runs).
pub fn artifact_key(pipeline: &str, artifact: &str, id: &str) -> String {
    format!(
        "{}/{}/{}",
        truncate(pipeline, 20),
        truncate(artifact, 20),
        id
    )
}

/// The key of the log of action execution `action_execution_id`.
pub fn log_key(pipeline: &str, action_execution_id: &str) -> String {
    format!("{}/logs/{action_execution_id}", truncate(pipeline, 20))
}

/// The key of the record a run of action execution `action_execution_id` keeps while it
/// carries on across continuation jobs (see the worker's `run_record`).
pub fn run_record_key(pipeline: &str, action_execution_id: &str) -> String {
    format!("{}/runs/{action_execution_id}", truncate(pipeline, 20))
}
