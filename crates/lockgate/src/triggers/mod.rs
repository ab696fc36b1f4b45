//! Executions that start when a branch moves: the [`SourceWatcher`] keeps a bare mirror of
//! every repository a pipeline's git source watches, fetches it every `[triggers]
//! poll_seconds` and at once when the repository's push hook is called
//! (`POST /hooks/git/<repository>`, `hook.rs`), and starts the pipelines whose watches
//! (`watches.rs`) the moved refs match, with the commit to fetch as the execution's source
//! revision. Which pipelines watch what follows the engine's change feed, so the cost of
//! keeping it is that of the changes, not of the installation. Following the declarations, it
//! also learns the artifact buckets pipelines use (`buckets.rs`), which artifact retention
//! sweeps.

mod buckets;
pub mod hook;
pub mod mirror;
pub mod watches;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockgate_engine::PipelineService;
use lockgate_model::Caller;
use lockgate_shapes::{
    CodePipelineService, ListPipelinesInput, SourceRevisionOverride, SourceRevisionType,
    StartPipelineExecutionInput, TriggerType,
};
use lockgate_worker::executors::{Connection, Repository};
use serde::{Deserialize, Serialize};

use mirror::Mirror;
use watches::{watches_of, Detection, RefMove, Source, Watch};

/// `[triggers]`: how source changes are looked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggersConfig {
    /// Seconds between fetches of every watched repository; 0 turns polling off (push hooks
    /// still work).
    pub poll_seconds: u64,
}

impl Default for TriggersConfig {
    fn default() -> TriggersConfig {
        TriggersConfig { poll_seconds: 60 }
    }
}

/// How often the watch list is brought up to date and new repositories are followed.
const WATCH_TICK: Duration = Duration::from_secs(1);

/// An execution a source change started.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// The pipeline.
    pub pipeline: String,
    /// The new execution.
    #[serde(rename = "pipelineExecutionId")]
    pub pipeline_execution_id: String,
    /// The commit it fetches.
    pub commit: String,
}

/// Watches the repositories pipelines fetch from and starts them when they change.
pub struct SourceWatcher {
    service: Arc<PipelineService>,
    repositories: BTreeMap<String, Repository>,
    connections: BTreeMap<String, Connection>,
    mirrors_dir: PathBuf,
    poll: Option<Duration>,
    /// One mirror per remote URL, fetched by one caller at a time.
    mirrors: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<Mirror>>>>,
    /// Each pipeline's watches, and the change-feed point they are true at.
    watches: Mutex<(u64, BTreeMap<String, Vec<Watch>>)>,
    /// Taken while the watch list is brought up to date.
    refreshing: tokio::sync::Mutex<bool>,
    /// The artifact buckets pipelines named.
    known_buckets: buckets::KnownBuckets,
    caller: Caller,
}

impl SourceWatcher {
    /// A watcher over `service`, mirrors under `data_dir/mirrors`.
    pub fn new(service: Arc<PipelineService>, config: &crate::Config) -> SourceWatcher {
        let caller = Caller::new(
            crate::worker::local::LOCAL_WORKER_USER,
            config.account_id.clone(),
        );
        SourceWatcher {
            service,
            repositories: config
                .repositories
                .iter()
                .map(|r| (r.name.clone(), r.clone()))
                .collect(),
            connections: config
                .connections
                .iter()
                .map(|c| (c.arn.clone(), c.clone()))
                .collect(),
            mirrors_dir: config.data_dir.join("mirrors"),
            poll: (config.triggers.poll_seconds > 0)
                .then(|| Duration::from_secs(config.triggers.poll_seconds)),
            mirrors: Mutex::default(),
            watches: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(false),
            known_buckets: buckets::KnownBuckets::load(config.data_dir.join("artifact-buckets")),
            caller,
        }
    }

    /// A configured repository.
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.get(name)
    }

    /// Keeps the watch list current, starts following every newly watched repository, and
    /// fetches all of them every `poll_seconds`, until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut last_poll = tokio::time::Instant::now();
        loop {
            self.refresh().await;
            self.follow_new_sources().await;
            if let Some(poll) = self.poll {
                if last_poll.elapsed() >= poll {
                    last_poll = tokio::time::Instant::now();
                    self.poll_all().await;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(WATCH_TICK) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Fetches each watched repository that has no mirror in memory yet: a new mirror takes
    /// its baseline (changes after it start pipelines); one kept on disk from before a restart
    /// reports what moved meanwhile, which starts pipelines as a poll would.
    async fn follow_new_sources(&self) {
        let sources: BTreeSet<Source> = self.all_watches().into_iter().map(|w| w.source).collect();
        for source in sources {
            let Ok((url, _)) = self.remote(&source) else {
                continue;
            };
            let known = self
                .mirrors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&url);
            if !known {
                let started = self.check(&source, Detection::Poll).await;
                tracing::info!(
                    "watching {} for changes ({} executions started by changes made while it was not watched)",
                    source_name(&source),
                    started.len()
                );
            }
        }
    }

    /// Fetches every watched repository once and starts what changed.
    pub async fn poll_all(&self) -> Vec<Started> {
        self.refresh().await;
        let sources: BTreeSet<Source> = self.all_watches().into_iter().map(|w| w.source).collect();
        let mut started = Vec::new();
        for source in sources {
            started.extend(self.check(&source, Detection::Poll).await);
        }
        started
    }

    /// Fetches repository `name` now (its push hook was called) and starts what changed.
    pub async fn hook(&self, name: &str) -> Result<(Vec<RefMove>, Vec<Started>), String> {
        self.refresh().await;
        let source = Source::Repository(name.to_string());
        let (first, moves) = self.fetch(&source).await?;
        let started = self.start(&source, first, &moves, Detection::Hook).await;
        let moved = if first {
            // A new mirror's branches did not move; those a pipeline had not fetched yet show
            // as what started it.
            moves
                .into_iter()
                .filter(|m| started.iter().any(|s| s.commit == m.commit))
                .collect()
        } else {
            moves
        };
        Ok((moved, started))
    }

    async fn check(&self, source: &Source, detection: Detection) -> Vec<Started> {
        match self.fetch(source).await {
            Ok((first, moves)) => self.start(source, first, &moves, detection).await,
            Err(e) => {
                tracing::warn!("cannot look for changes: {e}");
                Vec::new()
            }
        }
    }

    /// The remote URL and token of `source`, as lockgate.toml gives them.
    fn remote(&self, source: &Source) -> Result<(String, Option<secrecy::SecretString>), String> {
        match source {
            Source::Repository(name) => self
                .repositories
                .get(name)
                .map(|r| (r.url.clone(), None))
                .ok_or_else(|| format!("the repository {name} is not in [[repositories]]")),
            Source::Connection {
                arn,
                full_repository_id,
            } => self
                .connections
                .get(arn)
                .map(|c| {
                    (
                        format!(
                            "{}/{}",
                            c.base_url.trim_end_matches('/'),
                            full_repository_id
                        ),
                        c.token.clone(),
                    )
                })
                .ok_or_else(|| format!("the connection {arn} is not in [[connections]]")),
        }
    }

    /// Fetches `source`'s mirror; whether it was the mirror's first fetch, and the refs that
    /// moved (on a first fetch: every branch).
    async fn fetch(&self, source: &Source) -> Result<(bool, Vec<RefMove>), String> {
        let (url, token) = self.remote(source)?;
        let mirror = {
            let mut mirrors = self.mirrors.lock().unwrap_or_else(|p| p.into_inner());
            let dir = self.mirrors_dir.join(mirror_name(&url));
            mirrors
                .entry(url.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Mirror::new(dir, url, token))))
                .clone()
        };
        let mirror = mirror.lock().await;
        mirror
            .fetch()
            .await
            .map_err(|e| format!("fetching {}: {e}", mirror.shown_url()))
    }

    /// Starts the pipelines whose watches of `source` the moves match. After a mirror's first
    /// fetch (`first`), a watched branch starts its pipeline only if its head is not the commit
    /// the pipeline's latest execution fetched for that action (a push made between the
    /// pipeline's creation and the mirror's first fetch).
    async fn start(
        &self,
        source: &Source,
        first: bool,
        moves: &[RefMove],
        detection: Detection,
    ) -> Vec<Started> {
        let watches: Vec<Watch> = self
            .all_watches()
            .into_iter()
            .filter(|w| &w.source == source)
            .collect();
        let mut started = Vec::new();
        for moved in moves {
            // One execution per pipeline and move, fetching the commit for each of its
            // matching source actions.
            let mut by_pipeline: BTreeMap<String, (Vec<SourceRevisionOverride>, bool)> =
                BTreeMap::new();
            let mut starts = Vec::new();
            for watch in &watches {
                if first && (moved.tag || moved.name != watch.branch) {
                    continue;
                }
                // On a first fetch the branch head is compared with what was fetched, whatever
                // a trigger's file filters would say of a push.
                let Some(start) = (if first {
                    Some(watches::Start {
                        pipeline: watch.pipeline.clone(),
                        action: watch.action.clone(),
                        commit: moved.commit.clone(),
                        by_trigger: watch.filters.is_some(),
                    })
                } else {
                    watch.decide(moved)
                }) else {
                    continue;
                };
                if first {
                    match self.latest_revision(&watch.pipeline, &watch.action).await {
                        Some(fetched) if fetched != moved.commit => {}
                        _ => continue,
                    }
                }
                starts.push(start);
            }
            for start in starts {
                let entry = by_pipeline.entry(start.pipeline.clone()).or_default();
                entry.0.push(SourceRevisionOverride {
                    action_name: start.action,
                    revision_type: SourceRevisionType::CommitId,
                    revision_value: start.commit,
                });
                entry.1 |= start.by_trigger;
            }
            for (pipeline, (overrides, by_trigger)) in by_pipeline {
                let trigger = match (by_trigger, detection) {
                    (true, _) => TriggerType::WebhookV2,
                    (false, Detection::Poll) => TriggerType::PollForSourceChanges,
                    (false, Detection::Hook) => TriggerType::Webhook,
                };
                let kind = if moved.tag { "tag" } else { "branch" };
                let detail = format!(
                    "{} {kind} {} moved to {}",
                    source_name(source),
                    moved.name,
                    moved.commit
                );
                let input = StartPipelineExecutionInput {
                    name: pipeline.clone(),
                    source_revisions: Some(overrides),
                    ..Default::default()
                };
                match self.service.start_triggered(input, trigger, detail).await {
                    Ok(out) => {
                        let id = out.pipeline_execution_id.unwrap_or_default();
                        tracing::info!(
                            pipeline = %pipeline,
                            execution = %id,
                            "started by {} {} {}",
                            source_name(source),
                            moved.name,
                            moved.commit
                        );
                        started.push(Started {
                            pipeline,
                            pipeline_execution_id: id,
                            commit: moved.commit.clone(),
                        });
                    }
                    Err(e) => tracing::warn!(
                        pipeline = %pipeline,
                        "{} {} moved, but the pipeline could not be started: {}",
                        source_name(source),
                        moved.name,
                        e.message
                    ),
                }
            }
        }
        started
    }

    /// The commit the pipeline's latest execution fetched for source action `action`; none when
    /// it has not fetched one yet (it will fetch the head itself) or has no execution.
    async fn latest_revision(&self, pipeline: &str, action: &str) -> Option<String> {
        let out = self
            .service
            .list_pipeline_executions(
                &self.caller,
                lockgate_shapes::ListPipelineExecutionsInput {
                    pipeline_name: pipeline.to_string(),
                    max_results: Some(1),
                    ..Default::default()
                },
            )
            .await
            .ok()?;
        let latest = out.pipeline_execution_summaries?.into_iter().next()?;
        latest
            .source_revisions?
            .into_iter()
            .find(|r| r.action_name == action)
            .and_then(|r| r.revision_id)
    }

    fn all_watches(&self) -> Vec<Watch> {
        let watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        watches.1.values().flatten().cloned().collect()
    }

    /// Brings the watch list up to date with the change feed: the pipelines that changed are
    /// read again; the first time, or after falling behind the feed, all of them (only when
    /// some repository or connection is configured: otherwise nothing can be watched, and a
    /// server with a million pipelines does not read them all). Every pipeline read adds its
    /// artifact buckets to the known ones (for retention).
    async fn refresh(&self) {
        let mut loaded = self.refreshing.lock().await;
        let since = self.watches.lock().unwrap_or_else(|p| p.into_inner()).0;
        let changes = self.service.changes_since(since);
        let watching = !self.repositories.is_empty() || !self.connections.is_empty();
        let names: Vec<String> = match (&changes.changes, *loaded) {
            (Some(list), true) => {
                let set: BTreeSet<&str> = list.iter().map(|c| c.pipeline.as_str()).collect();
                set.into_iter().map(str::to_string).collect()
            }
            (list, _) if !watching => list
                .iter()
                .flatten()
                .map(|c| c.pipeline.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            _ => match self.all_pipelines().await {
                Ok(names) => {
                    self.watches
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .1
                        .clear();
                    names
                }
                Err(e) => {
                    tracing::warn!("cannot list pipelines to watch their sources: {e}");
                    return;
                }
            },
        };
        let mut buckets = BTreeSet::new();
        for name in names {
            let declaration = self
                .service
                .pipeline(&name)
                .await
                .ok()
                .map(|state| state.entry.declaration.clone());
            let found = declaration.as_ref().map(|d| watches_of(d));
            if let Some(decl) = &declaration {
                buckets.extend(artifact_buckets(decl));
            }
            let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
            match found {
                Some(w) if !w.is_empty() => {
                    watches.1.insert(name, w);
                }
                _ => {
                    watches.1.remove(&name);
                }
            }
        }
        self.known_buckets.add(buckets);
        self.watches.lock().unwrap_or_else(|p| p.into_inner()).0 = changes.seq;
        *loaded = true;
    }

    /// The artifact buckets of the pipelines seen so far (kept across restarts).
    pub async fn artifact_buckets(&self) -> BTreeSet<String> {
        self.refresh().await;
        self.known_buckets.all()
    }

    async fn all_pipelines(&self) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .service
                .list_pipelines(
                    &self.caller,
                    ListPipelinesInput {
                        next_token: next_token.take(),
                        max_results: Some(1000),
                    },
                )
                .await
                .map_err(|e| e.message)?;
            names.extend(page.pipelines.into_iter().flatten().filter_map(|p| p.name));
            match page.next_token {
                Some(token) => next_token = Some(token),
                None => return Ok(names),
            }
        }
    }
}

/// The artifact buckets `decl` names (`artifactStore`, or each region's of `artifactStores`).
fn artifact_buckets(decl: &lockgate_shapes::PipelineDeclaration) -> Vec<String> {
    decl.artifact_store
        .iter()
        .map(|s| s.location.clone())
        .chain(
            decl.artifact_stores
                .iter()
                .flat_map(|m| m.values().map(|s| s.location.clone())),
        )
        .collect()
}

/// How a source is named in logs and trigger details.
fn source_name(source: &Source) -> String {
    match source {
        Source::Repository(name) => format!("repository {name}"),
        Source::Connection {
            full_repository_id, ..
        } => format!("repository {full_repository_id}"),
    }
}

/// The mirror directory of `url`: readable, and unique by a hash of the whole URL.
fn mirror_name(url: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(url.as_bytes());
    let tail: String = url
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    format!("{tail}-{}", hex::encode(&digest[..6]))
}
