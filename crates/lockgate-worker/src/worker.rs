//! The worker loop: poll for the executors' action types, acknowledge, learn the action and
//! its variables through the API, run the executor in a fresh workspace, report. While a job
//! runs, AcknowledgeJob is called again every few seconds; when the job is no longer in
//! progress (its execution was stopped, or the server timed it out) the run is cancelled,
//! which kills its processes. A run longer than a third of the job timeout carries on under
//! continuation jobs (see `continuation`), which the loop polls for even when every slot is
//! busy. On shutdown the worker takes no more jobs and gives the running ones a grace period,
//! then cancels them and reports them failed, and hands back the continuation jobs it serves.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lockgate_artifacts::{ArtifactLocation, ArtifactStore};
use lockgate_model::artifact_names::{log_key, run_record_key};
use lockgate_model::variables::{has_reference, ExecutionVariables};
use lockgate_shapes::{
    ActionDeclaration, ActionExecutionDetail, ActionExecutionFilter, ActionExecutionStatus,
    ActionTypeId, ExecutionDetails, FailureDetails, GetPipelineExecutionInput, GetPipelineInput,
    Job, JobStatus, ListActionExecutionsInput, PollForJobsInput, PutJobFailureResultInput,
    PutJobSuccessResultInput,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::channel::{ChannelError, JobChannel};
use crate::continuation::RunBeat;
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
    /// How long the server lets one job be held (its per-job timeout, `[worker]
    /// job_timeout_seconds`): a run that lasts longer hands its job back with a continuation
    /// token every third of it and carries on under the next job.
    pub job_timeout: Duration,
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
            job_timeout: Duration::from_secs(600),
        }
    }

    /// How long a run holds one job before handing it back with a continuation token.
    pub fn continue_after(&self) -> Duration {
        self.job_timeout / 3
    }

    /// How often a running job is checked and a continued run beats: the heartbeat, or more
    /// often under a short job timeout.
    pub fn beat(&self) -> Duration {
        self.heartbeat.min(self.job_timeout / 10)
    }

    /// How long a continued run's record may stand still before its worker counts as stopped.
    pub fn stale_after(&self) -> Duration {
        self.job_timeout / 3
    }
}

/// Runs jobs for a set of executors.
pub struct Worker {
    pub(crate) channel: Arc<dyn JobChannel>,
    executors: Vec<Arc<dyn Executor>>,
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    pub(crate) settings: WorkerSettings,
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
        let (handover_tx, handover_rx) = watch::channel(false);
        let (continued_tx, mut continued_rx) = mpsc::unbounded_channel::<ActionTypeId>();
        let mut jobs = Jobs {
            worker: shared.clone(),
            running: JoinSet::new(),
            serving: JoinSet::new(),
            waiting: VecDeque::new(),
            abort: abort_rx,
            handover: handover_rx,
            continued: continued_tx,
        };
        // The action types of continuation jobs this worker's runs handed back, not taken yet.
        let mut expected: Vec<ActionTypeId> = Vec::new();
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
            jobs.reap();
            while let Ok(action_type) = continued_rx.try_recv() {
                expected.push(action_type);
            }
            // First the continuations handed back: they are queued ahead of other jobs, so
            // they are polled for even when every slot is busy (serving one takes no slot).
            // One that another worker took first is not waited for again.
            let mut polls: Vec<(ActionTypeId, usize)> = Vec::new();
            for action_type in expected.drain(..) {
                match polls.iter_mut().find(|(t, _)| *t == action_type) {
                    Some((_, n)) => *n += 1,
                    None => polls.push((action_type, 1)),
                }
            }
            if !jobs.waiting.is_empty() {
                polls.clear();
            }
            let mut taken = 0;
            let mut more = false;
            for (action_type, executor) in &types {
                let continuations = polls
                    .iter()
                    .find(|(t, _)| t == action_type)
                    .map_or(0, |(_, n)| *n);
                let wanted = continuations + jobs.free();
                if wanted == 0 {
                    continue;
                }
                let input = PollForJobsInput {
                    action_type_id: action_type.clone(),
                    max_batch_size: Some(i32::try_from(wanted.min(100)).unwrap_or(1)),
                    query_param: None,
                };
                match shared.channel.poll_for_jobs(input).await {
                    Ok(found) => {
                        if failing_since.take().is_some() {
                            tracing::info!("the job worker reaches the server again");
                        }
                        more |= found.len() == wanted;
                        taken += found.len();
                        for job in found {
                            jobs.dispatch(job, executor);
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
            if taken > 0 && more && jobs.free() > 0 {
                continue;
            }
            tokio::select! {
                () = shared.channel.wait_for_jobs(shared.settings.idle_poll) => {}
                Some(_) = jobs.running.join_next(), if !jobs.running.is_empty() => {}
                Some(action_type) = continued_rx.recv() => expected.push(action_type),
                changed = shutdown.changed() => {
                    // Whoever could tell the worker to stop is gone: stop.
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        for (job, _) in std::mem::take(&mut jobs.waiting) {
            shared.decline(job).await;
        }
        let running = &mut jobs.running;
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
        // The runs this worker held have ended and recorded how; the continuation jobs it
        // holds report that, or go back to be served by another worker.
        let _ = handover_tx.send(true);
        while jobs.serving.join_next().await.is_some() {}
        tracing::info!("job worker stopped");
    }

    /// Acknowledges `job`, runs it and reports how it ended. A run that outlasts
    /// [`WorkerSettings::continue_after`] hands the job back with a continuation token and
    /// carries on, keeping its record for whoever serves the continuation jobs.
    async fn take(
        &self,
        job: Job,
        executor: Arc<dyn Executor>,
        abort: watch::Receiver<bool>,
        continued: mpsc::UnboundedSender<ActionTypeId>,
    ) {
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
        let started = std::time::Instant::now();
        let log = RunLog::new(self.settings.log_bytes);
        let log_place = action_object(&data, log_key);
        let record_place = action_object(&data, run_record_key);
        let context = data.pipeline_context.clone().unwrap_or_default();
        let action_type = data.action_type_id.clone();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let stopped = std::sync::Mutex::new(None);
        let run = async {
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
        tokio::pin!(run);
        let watcher = || Watcher {
            worker: self,
            cancel: &cancel_tx,
            abort: abort.clone(),
            stopped: &stopped,
        };
        let cut_short = || Err(Failure::job("The run did not end when cancelled"));
        // While the run holds this job.
        let first = tokio::select! {
            outcome = &mut run => Some(outcome),
            () = watcher().watch(Checked::Job { id: &id, nonce: &nonce }) => Some(cut_short()),
            () = self.keep_log(&log, log_place.as_ref()) => unreachable!("keeping the log never ends"),
            () = tokio::time::sleep(self.settings.continue_after()), if record_place.is_some() => None,
        };
        // Where the run's record is, once it carries on under continuation jobs.
        let mut carried_on = None;
        let outcome = match first {
            Some(outcome) => outcome,
            None => {
                let beat = match (&record_place, action_type) {
                    (Some(place), Some(action_type)) => {
                        let record = self.hand_back(&id, place, &log, started).await;
                        if record.is_some() {
                            let _ = continued.send(action_type);
                        }
                        record.map(|record| RunBeat {
                            place: place.clone(),
                            record,
                            context: &context,
                            log: &log,
                            started,
                        })
                    }
                    _ => None,
                };
                // A run that could not hand its job back keeps holding it.
                let checked = match beat {
                    Some(beat) => {
                        carried_on = Some(beat.place.clone());
                        Checked::Run(Box::new(beat))
                    }
                    None => Checked::Job {
                        id: &id,
                        nonce: &nonce,
                    },
                };
                tokio::select! {
                    outcome = &mut run => outcome,
                    () = watcher().watch(checked) => cut_short(),
                    () = self.keep_log(&log, log_place.as_ref()) => unreachable!("keeping the log never ends"),
                }
            }
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
        let outcome = match stopped {
            // The job is no longer ours to report: its execution was stopped or it timed out.
            Some(Stop::NotInProgress(status)) => {
                tracing::info!("the action of job {id} is {status} now: its run was cancelled");
                return;
            }
            Some(Stop::Shutdown) => Err(Failure::system(
                "The job worker was stopped before the job finished; the job was cancelled",
            )),
            None => outcome,
        };
        match carried_on {
            // Whoever holds the continuation job reports it.
            Some(place) => self.record_outcome(&id, &place, outcome, started).await,
            None => self.report(&id, outcome).await,
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
        let details = self
            .action_executions(pipeline, execution_id)
            .await
            .map_err(|e| Failure::system(format!("Reading the execution's variables: {e}")))?;
        for detail in details {
            if detail.status != Some(ActionExecutionStatus::Succeeded) {
                continue;
            }
            let namespace = detail.input.and_then(|i| i.namespace);
            let vars = detail.output.and_then(|o| o.output_variables);
            if let (Some(namespace), Some(vars)) = (namespace, vars) {
                outputs.entry(namespace).or_insert(vars);
            }
        }
        Ok(outputs)
    }

    /// Every action execution of one pipeline execution (ListActionExecutions, all pages).
    pub(crate) async fn action_executions(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<Vec<ActionExecutionDetail>, ChannelError> {
        let mut details = Vec::new();
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
                .await?;
            details.extend(page.action_execution_details.into_iter().flatten());
            match page.next_token {
                Some(token) => next_token = Some(token),
                None => return Ok(details),
            }
        }
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

    /// Takes a job this worker polled for but will not run (it is stopping) and fails it, so
    /// it does not wait for its timeout.
    async fn decline(&self, job: Job) {
        let (Some(id), Some(nonce)) = (job.id, job.nonce) else {
            return;
        };
        if let Ok(JobStatus::InProgress) = self.channel.acknowledge_job(&id, &nonce).await {
            let failure = Failure::system(
                "The job worker was stopped before it could start the job; start the execution \
                 again or retry the stage",
            );
            self.report(&id, Err(failure)).await;
        }
    }

    /// Reports a finished run.
    pub(crate) async fn report(&self, id: &str, outcome: Result<Success, Failure>) {
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

/// The jobs a worker holds: runs (one slot each), continuation jobs being served (no slot),
/// and jobs taken while every slot was busy (acknowledged only when one frees).
struct Jobs {
    worker: Arc<Worker>,
    running: JoinSet<()>,
    serving: JoinSet<()>,
    waiting: VecDeque<(Job, Arc<dyn Executor>)>,
    abort: watch::Receiver<bool>,
    handover: watch::Receiver<bool>,
    continued: mpsc::UnboundedSender<ActionTypeId>,
}

impl Jobs {
    /// Slots free for new runs.
    fn free(&self) -> usize {
        self.worker
            .settings
            .concurrency
            .saturating_sub(self.running.len() + self.waiting.len())
    }

    /// Forgets what ended and starts the jobs that waited for a slot.
    fn reap(&mut self) {
        while self.running.try_join_next().is_some() {}
        while self.serving.try_join_next().is_some() {}
        while self.running.len() < self.worker.settings.concurrency {
            let Some((job, executor)) = self.waiting.pop_front() else {
                break;
            };
            self.start(job, executor);
        }
    }

    /// Serves a continuation job, runs a new job in a free slot, or keeps it for the next.
    fn dispatch(&mut self, job: Job, executor: &Arc<dyn Executor>) {
        let continues = job
            .data
            .as_ref()
            .is_some_and(|d| d.continuation_token.is_some());
        if continues {
            let (worker, handover, continued) = (
                self.worker.clone(),
                self.handover.clone(),
                self.continued.clone(),
            );
            self.serving.spawn(async move {
                worker.serve_continuation(job, handover, continued).await;
            });
        } else if self.running.len() < self.worker.settings.concurrency {
            self.start(job, executor.clone());
        } else {
            self.waiting.push_back((job, executor.clone()));
        }
    }

    fn start(&mut self, job: Job, executor: Arc<dyn Executor>) {
        let (worker, abort, continued) = (
            self.worker.clone(),
            self.abort.clone(),
            self.continued.clone(),
        );
        self.running
            .spawn(async move { worker.take(job, executor, abort, continued).await });
    }
}

/// Watches one run: the job it holds, or, once it carries on under continuation jobs, its
/// action.
struct Watcher<'a> {
    worker: &'a Worker,
    cancel: &'a watch::Sender<bool>,
    abort: watch::Receiver<bool>,
    stopped: &'a std::sync::Mutex<Option<Stop>>,
}

/// What a watcher checks every beat.
enum Checked<'a> {
    /// The job the run holds: AcknowledgeJob again tells its status.
    Job {
        /// The job.
        id: &'a str,
        /// Its nonce.
        nonce: &'a str,
    },
    /// A run that handed its job back: it beats its record and reads its action's status.
    Run(Box<RunBeat<'a>>),
}

/// How long a cancelled run may take to end (kill its processes, clean up) before it is
/// dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

impl Watcher<'_> {
    /// Checks every beat; when the server says the job or action is no longer in progress, or
    /// the worker aborts, records why in `stopped` and cancels the run (its processes are
    /// killed). Resolves only if the run has not ended a while after that.
    async fn watch(mut self, mut checked: Checked<'_>) {
        let mut tick = tokio::time::interval(self.worker.settings.beat());
        tick.tick().await;
        let stop = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let stop = match &mut checked {
                        Checked::Job { id, nonce } => self.worker.job_check(id, nonce).await,
                        Checked::Run(beat) => beat.check(self.worker).await,
                    };
                    if let Some(stop) = stop {
                        break stop;
                    }
                }
                changed = self.abort.changed() => {
                    if changed.is_err() || *self.abort.borrow() {
                        break Stop::Shutdown;
                    }
                }
            }
        };
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
        let _ = self.cancel.send(true);
        tokio::time::sleep(CANCEL_GRACE).await;
    }
}

impl Worker {
    /// AcknowledgeJob again: why the run must stop, if its job is no longer in progress.
    pub(crate) async fn job_check(&self, id: &str, nonce: &str) -> Option<Stop> {
        match self.channel.acknowledge_job(id, nonce).await {
            Ok(JobStatus::InProgress) => None,
            Ok(status) => Some(Stop::NotInProgress(status.as_str().to_string())),
            // Not reachable just now: keep running; the server's job timeout decides if this
            // lasts.
            Err(ChannelError::Transport(_)) => None,
            Err(ChannelError::Service { code, .. }) => Some(Stop::NotInProgress(code)),
        }
    }
}

/// How often a running action's log is uploaded while it changes.
const LOG_UPLOAD: Duration = Duration::from_secs(1);

/// Where an object of `data`'s action execution is kept: the bucket of its artifacts, under
/// `key(pipeline, action execution id)` ([`log_key`], [`run_record_key`]); none for a job
/// without artifacts.
pub(crate) fn action_object(
    data: &lockgate_shapes::JobData,
    key: fn(&str, &str) -> String,
) -> Option<ArtifactLocation> {
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
    ArtifactLocation::new(bucket, key(pipeline, action_execution)).ok()
}

/// Why a run was cut short.
pub(crate) enum Stop {
    /// The server says the job (or action) is no longer in progress: its status, or the error
    /// that says it is gone.
    NotInProgress(String),
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
