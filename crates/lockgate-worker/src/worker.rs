//! The worker loop: poll for the executors' action types, acknowledge, learn the action and
//! its variables through the API, run the executor in a fresh workspace, report. While a job
//! runs, AcknowledgeJob is called again every few seconds; when the job is no longer in
//! progress (its execution was stopped, or the server timed it out) the run is cancelled,
//! which kills its processes. On shutdown the worker takes no more jobs and gives the running
//! ones a grace period, then cancels them and reports them failed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lockgate_artifacts::{ArtifactLocation, ArtifactStore};
use lockgate_model::artifact_names::log_key;
use lockgate_model::variables::{has_reference, ExecutionVariables};
use lockgate_shapes::{
    ActionDeclaration, ActionExecutionFilter, ActionExecutionStatus, ActionTypeId,
    ExecutionDetails, FailureDetails, GetPipelineExecutionInput, GetPipelineInput, Job, JobStatus,
    ListActionExecutionsInput, PollForJobsInput, PutJobFailureResultInput,
    PutJobSuccessResultInput,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::channel::{ChannelError, JobChannel};
use crate::executor::{Executor, Failure, JobContext, Success, MAX_FAILURE_MESSAGE};
use crate::runlog::RunLog;
use crate::workspace::Workspace;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Where job workspaces are made.
    pub work_dir: PathBuf,
    /// How many jobs run at once.
    pub concurrency: usize,
    /// How often a running job's status is checked.
    pub heartbeat: Duration,
    /// How long the worker waits for new jobs before polling again.
    pub idle_poll: Duration,
    /// How much of a run's output is kept.
    pub log_bytes: usize,
    /// How long running jobs may take to finish once the worker is told to stop.
    pub grace: Duration,
}

impl WorkerSettings {
    /// Settings with the usual values, workspaces under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> WorkerSettings {
        WorkerSettings {
            work_dir: work_dir.into(),
            concurrency: 4,
            heartbeat: Duration::from_secs(3),
            idle_poll: Duration::from_secs(2),
            log_bytes: crate::runlog::DEFAULT_LOG_BYTES,
            grace: Duration::from_secs(30),
        }
    }
}

/// Runs jobs for a set of executors.
pub struct Worker {
    channel: Arc<dyn JobChannel>,
    executors: Vec<Arc<dyn Executor>>,
    artifacts: Arc<dyn ArtifactStore>,
    settings: WorkerSettings,
}

impl Worker {
    /// A worker taking jobs through `channel` for `executors`.
    pub fn new(
        channel: Arc<dyn JobChannel>,
        executors: Vec<Arc<dyn Executor>>,
        artifacts: Arc<dyn ArtifactStore>,
        settings: WorkerSettings,
    ) -> Worker {
        Worker {
            channel,
            executors,
            artifacts,
            settings,
        }
    }

    /// Takes and runs jobs until `shutdown` turns true, then lets the running jobs finish
    /// within the grace period and cancels those that do not.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let shared = Arc::new(self);
        if let Err(e) = std::fs::create_dir_all(&shared.settings.work_dir) {
            tracing::error!(
                "the worker cannot make its work directory {}: {e}",
                shared.settings.work_dir.display()
            );
            return;
        }
        let (abort_tx, abort_rx) = watch::channel(false);
        let mut running = JoinSet::new();
        let mut failing_since: Option<String> = None;
        let types: Vec<(ActionTypeId, Arc<dyn Executor>)> = shared
            .executors
            .iter()
            .flat_map(|e| e.action_types().into_iter().map(move |t| (t, e.clone())))
            .collect();
        tracing::info!(
            "job worker running {} action types, {} jobs at once",
            types.len(),
            shared.settings.concurrency
        );
        while !*shutdown.borrow() {
            while running.try_join_next().is_some() {}
            let mut free = shared.settings.concurrency.saturating_sub(running.len());
            let mut started = 0;
            for (action_type, executor) in &types {
                if free == 0 {
                    break;
                }
                let input = PollForJobsInput {
                    action_type_id: action_type.clone(),
                    max_batch_size: Some(i32::try_from(free).unwrap_or(1)),
                    query_param: None,
                };
                match shared.channel.poll_for_jobs(input).await {
                    Ok(jobs) => {
                        if failing_since.take().is_some() {
                            tracing::info!("the job worker reaches the server again");
                        }
                        for job in jobs {
                            free = free.saturating_sub(1);
                            started += 1;
                            let worker = shared.clone();
                            let executor = executor.clone();
                            let abort = abort_rx.clone();
                            running.spawn(async move { worker.take(job, executor, abort).await });
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if failing_since.as_ref() != Some(&text) {
                            tracing::warn!("the job worker cannot poll for jobs: {text}");
                            failing_since = Some(text);
                        }
                    }
                }
            }
            if started > 0 && free > 0 {
                continue;
            }
            tokio::select! {
                () = shared.channel.wait_for_jobs(shared.settings.idle_poll) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                changed = shutdown.changed() => {
                    // Whoever could tell the worker to stop is gone: stop.
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        if !running.is_empty() {
            tracing::info!(
                "job worker stopping: waiting up to {:?} for {} running jobs",
                shared.settings.grace,
                running.len()
            );
            let finish = async { while running.join_next().await.is_some() {} };
            if tokio::time::timeout(shared.settings.grace, finish)
                .await
                .is_err()
            {
                let _ = abort_tx.send(true);
                while running.join_next().await.is_some() {}
            }
        }
        tracing::info!("job worker stopped");
    }

    /// Acknowledges `job`, runs it and reports how it ended.
    async fn take(&self, job: Job, executor: Arc<dyn Executor>, abort: watch::Receiver<bool>) {
        let (Some(id), Some(nonce), Some(data)) = (job.id, job.nonce, job.data) else {
            return;
        };
        match self.channel.acknowledge_job(&id, &nonce).await {
            Ok(JobStatus::InProgress) => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!("cannot acknowledge job {id}: {e}");
                return;
            }
        }
        let log = RunLog::new(self.settings.log_bytes);
        let log_place = log_location(&data);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let watcher = self.watch_job(&id, &nonce, cancel_tx, abort);
        let outcome = async {
            let (action, variables) = self.action_of(&data).await?;
            let workspace = Workspace::create(&self.settings.work_dir, &id).map_err(|e| {
                Failure::system(format!(
                    "The worker cannot make a workspace in {}: {e}",
                    self.settings.work_dir.display()
                ))
            })?;
            let mut context = JobContext {
                job_id: id.clone(),
                data,
                action,
                variables,
                workspace,
                artifacts: self.artifacts.clone(),
                log: log.clone(),
                cancel: cancel_rx,
            };
            executor.run(&mut context).await
        };
        let stopped = std::sync::Mutex::new(None);
        let outcome = tokio::select! {
            outcome = outcome => outcome,
            () = watcher.watch(&stopped) => Err(Failure::job("The run did not end when cancelled")),
            () = self.keep_log(&log, log_place.as_ref()) => unreachable!("keeping the log never ends"),
        };
        log.line(&match &outcome {
            Ok(success) => format!(
                "[Lockgate] The action succeeded{}",
                success
                    .summary
                    .as_deref()
                    .map(|s| format!(": {}", first_line(s)))
                    .unwrap_or_default()
            ),
            Err(failure) => format!(
                "[Lockgate] The action failed: {}",
                first_line(&failure.message)
            ),
        });
        self.upload_log(&log, log_place.as_ref()).await;
        let stopped = stopped.lock().unwrap_or_else(|p| p.into_inner()).take();
        match stopped {
            // The job is no longer ours to report: its execution was stopped or it timed out.
            Some(Stop::NotInProgress(status)) => {
                tracing::info!("job {id} is {} now: its run was cancelled", status.as_str());
                return;
            }
            Some(Stop::Shutdown) => {
                let failure = Failure::system(
                    "The job worker was stopped before the job finished; the job was cancelled",
                );
                self.report(&id, Err(failure)).await;
                return;
            }
            None => {}
        }
        self.report(&id, outcome).await;
    }

    /// What watches a running job (see [`Watcher::watch`]).
    fn watch_job<'a>(
        &'a self,
        id: &'a str,
        nonce: &'a str,
        cancel: watch::Sender<bool>,
        abort: watch::Receiver<bool>,
    ) -> Watcher<'a> {
        Watcher {
            worker: self,
            id,
            nonce,
            cancel,
            abort,
        }
    }

    /// The action as its execution's pipeline version declares it, and the variables its
    /// commands may refer to.
    async fn action_of(
        &self,
        data: &lockgate_shapes::JobData,
    ) -> Result<(ActionDeclaration, ExecutionVariables), Failure> {
        let context = data.pipeline_context.as_ref();
        let pipeline = context
            .and_then(|c| c.pipeline_name.clone())
            .unwrap_or_default();
        let execution_id = context
            .and_then(|c| c.pipeline_execution_id.clone())
            .unwrap_or_default();
        let stage = context
            .and_then(|c| c.stage.as_ref())
            .and_then(|s| s.name.clone())
            .unwrap_or_default();
        let action_name = context
            .and_then(|c| c.action.as_ref())
            .and_then(|a| a.name.clone())
            .unwrap_or_default();
        let unavailable =
            |what: &str, e: ChannelError| Failure::system(format!("Reading {what}: {e}"));
        let execution = self
            .channel
            .get_pipeline_execution(GetPipelineExecutionInput {
                pipeline_name: pipeline.clone(),
                pipeline_execution_id: execution_id.clone(),
            })
            .await
            .map_err(|e| unavailable("the job's execution", e))?
            .pipeline_execution
            .unwrap_or_default();
        let declaration = self
            .channel
            .get_pipeline(GetPipelineInput {
                name: pipeline.clone(),
                version: execution.pipeline_version,
            })
            .await
            .map_err(|e| unavailable("the job's pipeline", e))?
            .pipeline
            .ok_or_else(|| Failure::system("GetPipeline answered without a pipeline"))?;
        let action = declaration
            .stages
            .iter()
            .find(|s| s.name == stage)
            .and_then(|s| s.actions.iter().find(|a| a.name == action_name))
            .cloned()
            .ok_or_else(|| {
                Failure::system(format!(
                    "The pipeline {pipeline} has no action {action_name} in stage {stage}"
                ))
            })?;
        let mut variables = ExecutionVariables {
            execution_id: execution_id.clone(),
            pipeline: execution
                .variables
                .iter()
                .flatten()
                .filter_map(|v| Some((v.name.clone()?, v.resolved_value.clone()?)))
                .collect(),
            actions: BTreeMap::new(),
        };
        let refers = action.commands.iter().flatten().any(|c| has_reference(c))
            || action
                .environment_variables
                .iter()
                .flatten()
                .any(|v| has_reference(&v.value));
        if refers {
            variables.actions = self.outputs_of(&pipeline, &execution_id).await?;
        }
        Ok((action, variables))
    }

    /// The output variables of the execution's succeeded actions, by namespace.
    async fn outputs_of(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, Failure> {
        let mut outputs = BTreeMap::new();
        let mut next_token = None;
        loop {
            let page = self
                .channel
                .list_action_executions(ListActionExecutionsInput {
                    pipeline_name: pipeline.to_string(),
                    filter: Some(ActionExecutionFilter {
                        pipeline_execution_id: Some(execution_id.to_string()),
                        latest_in_pipeline_execution: None,
                    }),
                    max_results: Some(100),
                    next_token: next_token.take(),
                })
                .await
                .map_err(|e| Failure::system(format!("Reading the execution's variables: {e}")))?;
            for detail in page.action_execution_details.into_iter().flatten() {
                if detail.status != Some(ActionExecutionStatus::Succeeded) {
                    continue;
                }
                let namespace = detail.input.and_then(|i| i.namespace);
                let vars = detail.output.and_then(|o| o.output_variables);
                if let (Some(namespace), Some(vars)) = (namespace, vars) {
                    outputs.entry(namespace).or_insert(vars);
                }
            }
            match page.next_token {
                Some(token) => next_token = Some(token),
                None => break,
            }
        }
        Ok(outputs)
    }

    /// Uploads the log every [`LOG_UPLOAD`] while it changes, so the console shows a running
    /// action's output as it comes. Never ends.
    async fn keep_log(&self, log: &RunLog, place: Option<&ArtifactLocation>) {
        let mut uploaded = 0;
        loop {
            tokio::time::sleep(LOG_UPLOAD).await;
            let written = log.written();
            if written != uploaded {
                uploaded = written;
                self.upload_log(log, place).await;
            }
        }
    }

    /// Stores the log where the console reads it.
    async fn upload_log(&self, log: &RunLog, place: Option<&ArtifactLocation>) {
        let Some(place) = place else { return };
        if let Err(e) = self.artifacts.put(place, log.text().into_bytes()).await {
            tracing::warn!("cannot store the log at {place}: {e}");
        }
    }

    /// Reports a finished run.
    async fn report(&self, id: &str, outcome: Result<Success, Failure>) {
        let result = match outcome {
            Ok(success) => {
                let input = PutJobSuccessResultInput {
                    job_id: id.to_string(),
                    current_revision: success.current_revision,
                    continuation_token: None,
                    execution_details: Some(ExecutionDetails {
                        summary: success.summary,
                        external_execution_id: success.external_execution_id,
                        percent_complete: Some(100),
                    }),
                    output_variables: (!success.output_variables.is_empty())
                        .then_some(success.output_variables),
                };
                self.channel.put_job_success_result(input).await
            }
            Err(failure) => {
                tracing::info!("job {id} failed: {}", first_line(&failure.message));
                let input = PutJobFailureResultInput {
                    job_id: id.to_string(),
                    failure_details: FailureDetails {
                        r#type: failure.kind,
                        message: truncate_chars(&failure.message, MAX_FAILURE_MESSAGE),
                        external_execution_id: None,
                    },
                };
                self.channel.put_job_failure_result(input).await
            }
        };
        if let Err(e) = result {
            tracing::warn!("cannot report the result of job {id}: {e}");
        }
    }
}

/// Watches one running job.
struct Watcher<'a> {
    worker: &'a Worker,
    id: &'a str,
    nonce: &'a str,
    cancel: watch::Sender<bool>,
    abort: watch::Receiver<bool>,
}

/// How long a cancelled run may take to end (kill its processes, clean up) before it is
/// dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

impl Watcher<'_> {
    /// Checks the job's status every heartbeat; when the server says it is no longer in
    /// progress, or the worker aborts, records why in `stopped` and cancels the run (its
    /// processes are killed). Resolves only if the run has not ended a while after that.
    async fn watch(mut self, stopped: &std::sync::Mutex<Option<Stop>>) {
        let mut tick = tokio::time::interval(self.worker.settings.heartbeat);
        tick.tick().await;
        let stop = loop {
            tokio::select! {
                _ = tick.tick() => {
                    match self.worker.channel.acknowledge_job(self.id, self.nonce).await {
                        Ok(JobStatus::InProgress) => {}
                        Ok(status) => break Stop::NotInProgress(status),
                        // Not reachable just now: keep running; the server's job timeout
                        // decides if this lasts.
                        Err(ChannelError::Transport(_)) => {}
                        Err(ChannelError::Service { .. }) => {
                            break Stop::NotInProgress(JobStatus::Failed)
                        }
                    }
                }
                changed = self.abort.changed() => {
                    if changed.is_err() || *self.abort.borrow() {
                        break Stop::Shutdown;
                    }
                }
            }
        };
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
        let _ = self.cancel.send(true);
        tokio::time::sleep(CANCEL_GRACE).await;
    }
}

/// How often a running action's log is uploaded while it changes.
const LOG_UPLOAD: Duration = Duration::from_secs(1);

/// Where the log of `data`'s action execution is kept: the bucket of its artifacts, under
/// [`log_key`]; none for a job without artifacts.
fn log_location(data: &lockgate_shapes::JobData) -> Option<ArtifactLocation> {
    let context = data.pipeline_context.as_ref()?;
    let pipeline = context.pipeline_name.as_deref()?;
    let action_execution = context.action.as_ref()?.action_execution_id.as_deref()?;
    let bucket = data
        .output_artifacts
        .iter()
        .chain(data.input_artifacts.iter())
        .flatten()
        .find_map(|a| a.location.as_ref()?.s3_location.as_ref())
        .map(|s3| s3.bucket_name.clone())?;
    ArtifactLocation::new(bucket, log_key(pipeline, action_execution)).ok()
}

/// Why a run was cut short.
enum Stop {
    /// The server says the job is no longer in progress.
    NotInProgress(JobStatus),
    /// The worker is shutting down and the grace period is over.
    Shutdown,
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// At most `n` characters of `text`.
pub(crate) fn truncate_chars(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}
