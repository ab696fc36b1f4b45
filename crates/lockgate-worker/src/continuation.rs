//! Long runs carried on across continuation jobs, as CodePipeline's job workers carry on long
//! work: a run that outlasts the worker's continuation interval writes its record
//! (`run_record`), hands its job back with PutJobSuccessResult and a continuation token, and
//! keeps running, beating its record and watching its action. The server queues the
//! continuation job ahead of other work; whichever worker takes it reads the record and
//! reports the run's progress (handing the job back again), its outcome once it ended, or that
//! its worker stopped beating. A worker that dies is therefore noticed within the job timeout,
//! however long its run was meant to last.

use std::time::Instant;

use lockgate_artifacts::ArtifactLocation;
use lockgate_model::artifact_names::run_record_key;
use lockgate_shapes::{
    ActionExecutionStatus, ActionTypeId, ExecutionDetails, Job, PipelineContext,
    PutJobSuccessResultInput,
};
use tokio::sync::{mpsc, watch};

use crate::channel::ChannelError;
use crate::executor::{Failure, Success};
use crate::run_record::{
    self, outcome_location, token_for, worker_name, Ending, Outcome, RunRecord, TOKEN_PREFIX,
};
use crate::runlog::RunLog;
use crate::worker::{action_object, truncate_chars, Stop, Worker};

/// The most characters of a progress summary (ExecutionDetails' limit).
const MAX_SUMMARY: usize = 2048;

/// A run that handed its job back: what it beats and where.
pub(crate) struct RunBeat<'a> {
    /// Where its record is kept.
    pub place: ArtifactLocation,
    /// The record, as last written.
    pub record: RunRecord,
    /// Which action it runs.
    pub context: &'a PipelineContext,
    /// Its output, for the progress summary.
    pub log: &'a RunLog,
    /// When it started.
    pub started: Instant,
}

impl RunBeat<'_> {
    /// One beat: writes the record with the run's progress, then reads the action's status;
    /// why the run must stop, if the action is no longer in progress.
    pub(crate) async fn check(&mut self, worker: &Worker) -> Option<Stop> {
        self.record.beat += 1;
        self.record.summary = progress(self.started, self.log, &self.record.worker);
        if let Err(e) = run_record::write(&*worker.artifacts, &self.place, &self.record).await {
            tracing::warn!("cannot store the run record at {}: {e}", self.place);
        }
        match worker.action_status(self.context).await {
            Ok(Some(ActionExecutionStatus::InProgress)) => None,
            Ok(Some(status)) => Some(Stop::NotInProgress(status.as_str().to_string())),
            Ok(None) => Some(Stop::NotInProgress("gone".into())),
            // Not reachable just now: keep running; the job timeout decides if this lasts.
            Err(ChannelError::Transport(_)) => None,
            Err(ChannelError::Service { code, .. }) => Some(Stop::NotInProgress(code)),
        }
    }
}

impl Worker {
    /// Writes the record of the long run holding job `id` and hands the job back with a
    /// continuation token. The record written, or none when either step failed (the run then
    /// keeps holding its job).
    pub(crate) async fn hand_back(
        &self,
        id: &str,
        place: &ArtifactLocation,
        log: &RunLog,
        started: Instant,
    ) -> Option<RunRecord> {
        let worker = worker_name();
        let record = RunRecord {
            token: token_for(id),
            summary: progress(started, log, &worker),
            worker,
            beat: 0,
        };
        if let Err(e) = run_record::write(&*self.artifacts, place, &record).await {
            tracing::warn!(
                "job {id} keeps its job instead of carrying on under continuation jobs: its \
                 run record cannot be stored at {place}: {e}"
            );
            return None;
        }
        match self.continue_job(id, &record.token, &record.summary).await {
            Ok(()) => {
                log.line(&format!(
                    "[Lockgate] The run carries on under continuation jobs, reporting its \
                     progress every {} s",
                    self.settings.continue_after().as_secs()
                ));
                Some(record)
            }
            Err(e) => {
                tracing::warn!("cannot hand job {id} back with a continuation token: {e}");
                None
            }
        }
    }

    /// Records how a run that carried on under continuation jobs ended, for whoever holds its
    /// current continuation job to report. A success without a summary of its own says how
    /// long the run took, in place of the last progress report.
    pub(crate) async fn record_outcome(
        &self,
        first_job: &str,
        place: &ArtifactLocation,
        mut outcome: Result<Success, Failure>,
        started: Instant,
    ) {
        if let Ok(success) = &mut outcome {
            success.summary.get_or_insert_with(|| {
                format!(
                    "Ran for {} on {}",
                    duration_text(started.elapsed().as_secs()),
                    worker_name()
                )
            });
        }
        let ending = Ending {
            token: token_for(first_job),
            outcome: Outcome::of(&outcome),
        };
        let place = outcome_location(place);
        for attempt in 1..=5u32 {
            match run_record::write(&*self.artifacts, &place, &ending).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        "cannot store how the run ended at {place} (try {attempt}): {e}"
                    );
                    tokio::time::sleep(self.settings.beat()).await;
                }
            }
        }
    }

    /// Takes a continuation job and serves it from its run's record: reports the outcome once
    /// the run ended, fails the job when the run's worker stopped beating, and otherwise hands
    /// it back with the run's progress after [`crate::WorkerSettings::continue_after`] (or at
    /// once when this worker stops, so another one serves the next).
    pub(crate) async fn serve_continuation(
        &self,
        job: Job,
        mut handover: watch::Receiver<bool>,
        continued: mpsc::UnboundedSender<ActionTypeId>,
    ) {
        let (Some(id), Some(nonce), Some(data)) = (job.id, job.nonce, job.data) else {
            return;
        };
        let token = data.continuation_token.clone().unwrap_or_default();
        if self.job_check(&id, &nonce).await.is_some() {
            return;
        }
        if !token.starts_with(TOKEN_PREFIX) {
            let failure = Failure::configuration(format!(
                "The continuation token {token:?} was not handed out by a Lockgate worker, so \
                 this worker cannot carry the run on"
            ));
            self.report(&id, Err(failure)).await;
            return;
        }
        let Some(place) = action_object(&data, run_record_key) else {
            let failure = Failure::job(
                "The continuation job names no artifact store to read its run's record from",
            );
            self.report(&id, Err(failure)).await;
            return;
        };
        let ending_place = outcome_location(&place);
        let taken = Instant::now();
        let mut heard = Instant::now();
        let mut last_beat = None;
        let mut summary = String::new();
        let mut runner = String::from("that started the run");
        let mut handing_over = *handover.borrow();
        let mut tick = tokio::time::interval(self.settings.beat());
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = handover.changed(), if !handing_over => {
                    handing_over = changed.is_err() || *handover.borrow();
                }
            }
            // The job is no longer ours (its execution was stopped, or it timed out).
            if self.job_check(&id, &nonce).await.is_some() {
                return;
            }
            let ending = run_record::read::<Ending>(&*self.artifacts, &ending_place).await;
            if let Ok(Some(ending)) = ending {
                if ending.token == token {
                    self.report(&id, ending.outcome.into_result()).await;
                    return;
                }
            }
            match run_record::read::<RunRecord>(&*self.artifacts, &place).await {
                Ok(Some(record)) if record.token == token => {
                    if last_beat != Some(record.beat) {
                        last_beat = Some(record.beat);
                        heard = Instant::now();
                    }
                    summary = record.summary;
                    runner = record.worker;
                }
                Ok(_) if last_beat.is_none() => {
                    let failure = Failure::job(format!(
                        "The run this job continues has no record at {place}: the worker that \
                         started it does not share this worker's artifact store (give every \
                         worker the same [artifacts.s3] store), or the record was deleted"
                    ));
                    self.report(&id, Err(failure)).await;
                    return;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("cannot read the run record at {place}: {e}"),
            }
            if heard.elapsed() >= self.settings.stale_after() {
                let failure = Failure::job(format!(
                    "The job worker {runner} running this action stopped: its run was last \
                     heard from {} s ago, so it cannot finish",
                    heard.elapsed().as_secs()
                ));
                self.report(&id, Err(failure)).await;
                return;
            }
            if handing_over || taken.elapsed() >= self.settings.continue_after() {
                match self.continue_job(&id, &token, &summary).await {
                    Ok(()) if !handing_over => {
                        if let Some(action_type) = data.action_type_id.clone() {
                            let _ = continued.send(action_type);
                        }
                    }
                    Ok(()) => {}
                    Err(e) => tracing::warn!("cannot hand job {id} back: {e}"),
                }
                return;
            }
        }
    }

    /// PutJobSuccessResult with a continuation token: the run goes on under a new job.
    async fn continue_job(&self, id: &str, token: &str, summary: &str) -> Result<(), ChannelError> {
        let input = PutJobSuccessResultInput {
            job_id: id.to_string(),
            current_revision: None,
            continuation_token: Some(token.to_string()),
            execution_details: Some(ExecutionDetails {
                summary: (!summary.is_empty()).then(|| truncate_chars(summary, MAX_SUMMARY)),
                external_execution_id: None,
                percent_complete: None,
            }),
            output_variables: None,
        };
        self.channel.put_job_success_result(input).await
    }

    /// The status of the action execution `context` names; none when its execution does not
    /// list it.
    async fn action_status(
        &self,
        context: &PipelineContext,
    ) -> Result<Option<ActionExecutionStatus>, ChannelError> {
        let pipeline = context.pipeline_name.as_deref().unwrap_or_default();
        let execution = context.pipeline_execution_id.as_deref().unwrap_or_default();
        let wanted = context
            .action
            .as_ref()
            .and_then(|a| a.action_execution_id.clone());
        let details = self.action_executions(pipeline, execution).await?;
        Ok(details
            .into_iter()
            .find(|d| d.action_execution_id == wanted)
            .and_then(|d| d.status))
    }
}

/// What a running run says about itself: how long it has run, where, and its last output.
fn progress(started: Instant, log: &RunLog, worker: &str) -> String {
    let last = log.last_lines(300);
    let last = last.lines().last().unwrap_or_default();
    let mut text = format!(
        "Running for {} on {worker}",
        duration_text(started.elapsed().as_secs())
    );
    if !last.is_empty() {
        text.push_str(": ");
        text.push_str(last);
    }
    text
}

/// `3725` → `1h 2m 5s`.
fn duration_text(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration_text(5), "5s");
        assert_eq!(duration_text(200), "3m 20s");
        assert_eq!(duration_text(3725), "1h 2m 5s");
    }
}
