//! One client of the mixed load: it creates its own pipelines (source job → manual approval →
//! build job), starts executions, answers approvals (approve and reject), plays the job worker
//! for every pipeline, stops and retries executions, and disables and enables the build stage's
//! inbound transition. Every acknowledged write goes into its [`Journal`]; a write whose answer is
//! lost to the kill is counted as in doubt and the client stops until the next cycle.
//!
//! Each client is the only one to answer approvals on, stop, retry or gate its own pipelines, so
//! its journal knows their transition state exactly. Jobs are shared: any client may poll a job
//! of any pipeline, as real job workers do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lockgate_loadgen::gate::{custom_type, ReleaseGate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::client::{Answer, Conn, Lost};
use crate::journal::{
    ApprovalRecord, JobRecord, Journal, PipelineRecord, StartRecord, Transition, APPROVAL_ACTION,
    APPROVAL_STAGE, GATED_STAGE,
};

/// The custom source action type's provider.
pub const SOURCE_PROVIDER: &str = "TortureSource";
/// The custom build action type's provider.
pub const BUILD_PROVIDER: &str = "TortureBuild";
/// Each client keeps at least this many pipelines, creating them first.
const MIN_PIPELINES: usize = 2;
/// Each client creates no more than this many pipelines.
const MAX_PIPELINES: usize = 6;
/// The codes a second answer to an answered token may be refused with.
pub const SECOND_ANSWER_CODES: [&str; 2] = [
    "ApprovalAlreadyCompletedException",
    "InvalidApprovalTokenException",
];
/// The code a second result for a finished job must be refused with.
pub const SECOND_RESULT_CODE: &str = "InvalidJobStateException";

/// The campaign's pipelines: source → manual approval → build, the shape of a release gate.
pub const GATE: ReleaseGate = ReleaseGate {
    role: "LockgateTorture",
    bucket: "lockgate-torture-artifacts",
    custom_data: "Torture release gate",
    source_provider: SOURCE_PROVIDER,
    build_provider: BUILD_PROVIDER,
    approval_stage: APPROVAL_STAGE,
    approval_action: APPROVAL_ACTION,
    build_stage: GATED_STAGE,
};

/// The `latestExecution` of an action in a GetPipelineState output.
pub fn latest_action<'a>(state: &'a Value, stage: &str, action: &str) -> Option<&'a Value> {
    stage_state(state, stage)?["actionStates"]
        .as_array()?
        .iter()
        .find(|a| a["actionName"] == action)?
        .get("latestExecution")
}

/// A stage's entry in a GetPipelineState output.
pub fn stage_state<'a>(state: &'a Value, stage: &str) -> Option<&'a Value> {
    state["stageStates"]
        .as_array()?
        .iter()
        .find(|s| s["stageName"] == stage)
}

/// Compares what the journal knows of `pipeline`'s gated transition with a GetPipelineState
/// output, and learns what it did not know. Returns the violations found.
pub fn observe_transition(record: &mut PipelineRecord, state: &Value) -> Vec<String> {
    let Some(stage) = stage_state(state, GATED_STAGE) else {
        return vec![format!(
            "{}: GetPipelineState has no stage {GATED_STAGE}",
            record.name
        )];
    };
    let enabled = stage["inboundTransitionState"]["enabled"]
        .as_bool()
        .unwrap_or(true);
    let latest = stage["latestExecution"]["pipelineExecutionId"]
        .as_str()
        .map(str::to_owned);
    let mut violations = Vec::new();
    match &mut record.transition {
        Transition::Unknown => {
            record.transition = if enabled {
                Transition::Enabled
            } else {
                Transition::Disabled {
                    entered: Some(latest),
                }
            };
        }
        Transition::Enabled => {
            if !enabled {
                violations.push(format!(
                    "{}: the acknowledged EnableStageTransition of {GATED_STAGE} is lost (it \
                     shows disabled)",
                    record.name
                ));
            }
        }
        Transition::Disabled { entered } => {
            if enabled {
                violations.push(format!(
                    "{}: the acknowledged DisableStageTransition of {GATED_STAGE} is lost (it \
                     shows enabled)",
                    record.name
                ));
            }
            match entered {
                Some(before) if *before != latest => {
                    violations.push(match (&before, &latest) {
                        (Some(before), None) => format!(
                            "{}: GetPipelineState no longer shows {GATED_STAGE}'s latest \
                             execution {before} (nothing entered since it was disabled)",
                            record.name
                        ),
                        _ => format!(
                            "{}: execution {latest:?} entered {GATED_STAGE} while its inbound \
                             transition was disabled (latest was {before:?} when it was disabled)",
                            record.name
                        ),
                    });
                    // Reported once; what the stage shows now is the new reference.
                    *entered = Some(latest);
                }
                Some(_) => {}
                None => *entered = Some(latest),
            }
        }
    }
    violations
}

/// What a request is to the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A read: nothing is in doubt when its answer is lost.
    Read,
    /// A write the load makes.
    Write,
    /// A write that must be refused (a second answer or result); its refusal is a passed check.
    Probe,
}

/// One load client: its connection, its random choices and its journal.
pub struct Client {
    /// The client's number, part of its pipelines' names.
    pub id: usize,
    /// Seeded from the campaign's seed and the client's number.
    pub rng: StdRng,
    /// What the client knows.
    pub journal: Journal,
    conn: Option<Conn>,
    /// Set when a request was lost: the server is gone until the next cycle.
    lost: bool,
    sequence: u64,
}

impl Client {
    /// A client with its own random stream.
    pub fn new(id: usize, rng: StdRng) -> Client {
        Client {
            id,
            rng,
            journal: Journal::default(),
            conn: None,
            lost: false,
            sequence: 0,
        }
    }

    /// Runs operations on `conn` until `stop` is set or a request is lost, and returns the
    /// client (with its journal) for the check.
    pub async fn run(mut self, conn: Conn, stop: Arc<AtomicBool>) -> Client {
        self.conn = Some(conn);
        self.lost = false;
        while !self.lost && !stop.load(Ordering::Relaxed) {
            self.step().await;
        }
        self.conn = None;
        self
    }

    /// A text no other write in the campaign sends, so the check can find exactly this write.
    fn unique(&mut self, what: &str) -> String {
        self.sequence += 1;
        format!("torture {what} c{} #{}", self.id, self.sequence)
    }

    /// Sends one request. `None` when there is no answer: a write is then in doubt, and a
    /// request that hung while the server lived is a violation.
    async fn call(&mut self, operation: &str, input: Value, kind: Kind) -> Option<Answer> {
        let conn = self.conn.as_mut()?;
        match conn.call(operation, &input).await {
            Ok(answer) => {
                if let Answer::Refused { status, code, .. } = &answer {
                    if status.is_server_error() {
                        self.journal
                            .violate(format!("{operation} answered {status} {code} under load"));
                    }
                    if kind == Kind::Probe {
                        self.journal.probes += 1;
                    } else {
                        self.journal.refuse(code);
                    }
                }
                Some(answer)
            }
            Err(lost) => {
                if kind != Kind::Read {
                    self.journal.in_doubt += 1;
                }
                if let Lost::Timeout = lost {
                    self.journal.violate(format!(
                        "{operation} had no answer within {:?}",
                        crate::client::REQUEST_LIMIT
                    ));
                }
                self.lost = true;
                None
            }
        }
    }

    async fn step(&mut self) {
        let pipelines = self.journal.live_pipelines();
        if pipelines.len() < MIN_PIPELINES {
            return self.create_pipeline().await;
        }
        let pipeline = pipelines.choose(&mut self.rng).cloned().unwrap_or_default();
        match self.rng.gen_range(0..100) {
            0..=2 if self.journal.pipelines.len() < MAX_PIPELINES => self.create_pipeline().await,
            0..=14 => self.start(&pipeline).await,
            15..=39 => self.answer_approval(&pipeline).await,
            40..=71 => self.work_jobs().await,
            72..=79 => self.stop(&pipeline).await,
            80..=89 => self.retry(&pipeline).await,
            _ => self.toggle_transition(&pipeline).await,
        }
    }

    async fn create_pipeline(&mut self) {
        self.journal.created += 1;
        let name = format!("torture-c{}-p{}", self.id, self.journal.created);
        let mut record = PipelineRecord {
            name: name.clone(),
            acknowledged: false,
            transition: Transition::Enabled,
        };
        match self
            .call("CreatePipeline", GATE.declaration(&name), Kind::Write)
            .await
        {
            Some(Answer::Ok(_)) => {
                self.journal.ack("CreatePipeline");
                record.acknowledged = true;
            }
            // Refused: no pipeline; nothing to remember.
            Some(Answer::Refused { .. }) => return,
            // Lost: it may exist; the check finds out.
            None => {}
        }
        self.journal.pipelines.insert(name, record);
    }

    async fn start(&mut self, pipeline: &str) {
        let input = json!({"name": pipeline});
        if let Some(Answer::Ok(output)) = self
            .call("StartPipelineExecution", input, Kind::Write)
            .await
        {
            self.journal.ack("StartPipelineExecution");
            match output["pipelineExecutionId"].as_str() {
                Some(id) => self.journal.starts.push(StartRecord {
                    pipeline: pipeline.to_owned(),
                    execution_id: id.to_owned(),
                }),
                None => self.journal.violate(format!(
                    "{pipeline}: StartPipelineExecution answered without an execution id"
                )),
            }
        }
    }

    /// Reads the pipeline's state, checks its transition against the journal, and answers a
    /// waiting approval.
    async fn answer_approval(&mut self, pipeline: &str) {
        let Some(Answer::Ok(state)) = self
            .call("GetPipelineState", json!({"name": pipeline}), Kind::Read)
            .await
        else {
            return;
        };
        if let Some(record) = self.journal.pipelines.get_mut(pipeline) {
            for v in observe_transition(record, &state) {
                self.journal.violate(v);
            }
        }
        let Some(latest) = latest_action(&state, APPROVAL_STAGE, APPROVAL_ACTION) else {
            return;
        };
        let (Some(token), Some(action_execution_id)) = (
            latest["token"].as_str().map(str::to_owned),
            latest["actionExecutionId"].as_str().map(str::to_owned),
        ) else {
            return;
        };
        if latest["status"] != "InProgress" {
            return;
        }
        let status = if self.rng.gen_bool(0.7) {
            "Approved"
        } else {
            "Rejected"
        };
        let summary = self.unique(status);
        let input = approval_input(pipeline, &token, status, &summary);
        if let Some(Answer::Ok(_)) = self.call("PutApprovalResult", input, Kind::Write).await {
            self.journal.ack(&format!("PutApprovalResult {status}"));
            let mut record = ApprovalRecord {
                pipeline: pipeline.to_owned(),
                action_execution_id,
                token,
                status,
                summary,
                answered_twice: false,
            };
            if self.rng.gen_bool(0.3) {
                match self.answer_again(&record).await {
                    Some(Ok(())) => record.answered_twice = true,
                    Some(Err(v)) => self.journal.violate(v),
                    None => {}
                }
            }
            self.journal.approvals.push(record);
        }
    }

    /// Answers an answered token again with the other status; `Err` when the server took it.
    async fn answer_again(&mut self, record: &ApprovalRecord) -> Option<Result<(), String>> {
        let other = if record.status == "Approved" {
            "Rejected"
        } else {
            "Approved"
        };
        let input = approval_input(&record.pipeline, &record.token, other, "second answer");
        let answer = self.call("PutApprovalResult", input, Kind::Probe).await?;
        Some(second_answer_verdict(record, &answer))
    }

    /// Polls a batch of jobs of one type and finishes each: acknowledge, then success or failure.
    async fn work_jobs(&mut self) {
        let (category, provider) = if self.rng.gen_bool(0.5) {
            ("Source", SOURCE_PROVIDER)
        } else {
            ("Build", BUILD_PROVIDER)
        };
        let input = json!({"actionTypeId": custom_type(category, provider), "maxBatchSize": 2});
        let Some(Answer::Ok(output)) = self.call("PollForJobs", input, Kind::Write).await else {
            return;
        };
        let jobs = output["jobs"].as_array().cloned().unwrap_or_default();
        for job in jobs {
            if self.lost {
                return;
            }
            self.finish_job(category, &job).await;
        }
    }

    async fn finish_job(&mut self, category: &str, job: &Value) {
        let (Some(job_id), Some(nonce)) = (job["id"].as_str(), job["nonce"].as_str()) else {
            self.journal
                .violate(format!("PollForJobs gave a job without id or nonce: {job}"));
            return;
        };
        let context = &job["data"]["pipelineContext"];
        let pipeline = context["pipelineName"].as_str().unwrap_or_default();
        let action_execution_id = context["action"]["actionExecutionId"]
            .as_str()
            .unwrap_or_default();
        let input = json!({"jobId": job_id, "nonce": nonce});
        match self.call("AcknowledgeJob", input, Kind::Write).await {
            Some(Answer::Ok(_)) => self.journal.ack("AcknowledgeJob"),
            _ => return,
        }
        let succeeded = self.rng.gen_bool(0.8);
        let text = self.unique(if succeeded { "success" } else { "failure" });
        let (operation, input) = if succeeded {
            let mut input = json!({"jobId": job_id,
                "executionDetails": {"summary": text, "percentComplete": 100}});
            if category == "Source" {
                input["currentRevision"] = json!({"revision": text, "changeIdentifier": "torture"});
            }
            ("PutJobSuccessResult", input)
        } else {
            (
                "PutJobFailureResult",
                json!({"jobId": job_id,
                       "failureDetails": {"type": "JobFailed", "message": text}}),
            )
        };
        if let Some(Answer::Ok(_)) = self.call(operation, input, Kind::Write).await {
            self.journal.ack(operation);
            let mut record = JobRecord {
                job_id: job_id.to_owned(),
                pipeline: pipeline.to_owned(),
                action_execution_id: action_execution_id.to_owned(),
                succeeded,
                text,
                completed_twice: false,
            };
            if self.rng.gen_bool(0.25) {
                let input = json!({"jobId": job_id});
                if let Some(answer) = self.call("PutJobSuccessResult", input, Kind::Probe).await {
                    match second_result_verdict(&record, &answer) {
                        Ok(()) => record.completed_twice = true,
                        Err(v) => self.journal.violate(v),
                    }
                }
            }
            self.journal.jobs.push(record);
        }
    }

    async fn stop(&mut self, pipeline: &str) {
        let input = json!({"pipelineName": pipeline, "maxResults": 5});
        let Some(Answer::Ok(list)) = self.call("ListPipelineExecutions", input, Kind::Read).await
        else {
            return;
        };
        let Some(id) = list["pipelineExecutionSummaries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["status"] == "InProgress")
            .and_then(|e| e["pipelineExecutionId"].as_str())
            .map(str::to_owned)
        else {
            return;
        };
        let abandon = self.rng.gen_bool(0.5);
        let input = json!({"pipelineName": pipeline, "pipelineExecutionId": id,
                           "abandon": abandon, "reason": "torture stop"});
        if let Some(Answer::Ok(_)) = self.call("StopPipelineExecution", input, Kind::Write).await {
            self.journal.ack(if abandon {
                "StopPipelineExecution abandon"
            } else {
                "StopPipelineExecution"
            });
        }
    }

    /// Retries the last stage the pipeline's latest execution ran, when it failed or stopped.
    async fn retry(&mut self, pipeline: &str) {
        let input = json!({"pipelineName": pipeline, "maxResults": 1});
        let Some(Answer::Ok(list)) = self.call("ListPipelineExecutions", input, Kind::Read).await
        else {
            return;
        };
        let Some(latest) = list["pipelineExecutionSummaries"].get(0) else {
            return;
        };
        if latest["status"] != "Failed" && latest["status"] != "Stopped" {
            return;
        }
        let Some(id) = latest["pipelineExecutionId"].as_str().map(str::to_owned) else {
            return;
        };
        let input = json!({"pipelineName": pipeline, "filter": {"pipelineExecutionId": id}});
        let Some(Answer::Ok(actions)) = self.call("ListActionExecutions", input, Kind::Read).await
        else {
            return;
        };
        let stage = actions["actionExecutionDetails"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"] != "Succeeded")
            .max_by(|a, b| {
                let t = |v: &Value| v["startTime"].as_f64().unwrap_or(0.0);
                t(a).total_cmp(&t(b))
            })
            .and_then(|a| a["stageName"].as_str())
            .map(str::to_owned);
        let Some(stage) = stage else { return };
        let mode = if self.rng.gen_bool(0.5) {
            "FAILED_ACTIONS"
        } else {
            "ALL_ACTIONS"
        };
        let input = json!({"pipelineName": pipeline, "stageName": stage,
                           "pipelineExecutionId": id, "retryMode": mode});
        if let Some(Answer::Ok(_)) = self.call("RetryStageExecution", input, Kind::Write).await {
            self.journal.ack("RetryStageExecution");
        }
    }

    /// Disables the gated stage's inbound transition if it is enabled, and the reverse.
    async fn toggle_transition(&mut self, pipeline: &str) {
        let Some(record) = self.journal.pipelines.get_mut(pipeline) else {
            return;
        };
        let enable = matches!(record.transition, Transition::Disabled { .. });
        // Until the answer arrives the journal cannot know which way the transition is.
        record.transition = Transition::Unknown;
        let (operation, input) = if enable {
            (
                "EnableStageTransition",
                json!({"pipelineName": pipeline, "stageName": GATED_STAGE,
                       "transitionType": "Inbound"}),
            )
        } else {
            (
                "DisableStageTransition",
                json!({"pipelineName": pipeline, "stageName": GATED_STAGE,
                       "transitionType": "Inbound", "reason": "torture gate"}),
            )
        };
        let answer = self.call(operation, input, Kind::Write).await;
        if let Some(Answer::Ok(_)) = answer {
            self.journal.ack(operation);
            if let Some(record) = self.journal.pipelines.get_mut(pipeline) {
                record.transition = if enable {
                    Transition::Enabled
                } else {
                    Transition::Disabled { entered: None }
                };
            }
        }
        if answer.is_none() {
            return;
        }
        // Learn the stage's latest execution right after a disable (or the state after a
        // refusal) before anything else can happen.
        if let Some(Answer::Ok(state)) = self
            .call("GetPipelineState", json!({"name": pipeline}), Kind::Read)
            .await
        {
            if let Some(record) = self.journal.pipelines.get_mut(pipeline) {
                for v in observe_transition(record, &state) {
                    self.journal.violate(v);
                }
            }
        }
    }
}

/// A PutApprovalResult input for the pipeline's approval.
pub fn approval_input(pipeline: &str, token: &str, status: &str, summary: &str) -> Value {
    json!({"pipelineName": pipeline, "stageName": APPROVAL_STAGE, "actionName": APPROVAL_ACTION,
           "result": {"summary": summary, "status": status}, "token": token})
}

/// Whether the answer to a second PutApprovalResult for an answered token is a refusal with
/// one of [`SECOND_ANSWER_CODES`].
pub fn second_answer_verdict(record: &ApprovalRecord, answer: &Answer) -> Result<(), String> {
    match answer.code() {
        Some(code) if SECOND_ANSWER_CODES.contains(&code) => Ok(()),
        other => Err(format!(
            "{}: token {} was answered ({}) and acknowledged, yet a second answer got {}",
            record.pipeline,
            record.token,
            record.status,
            other.unwrap_or("200 OK")
        )),
    }
}

/// Whether the answer to a second result for a finished job is `InvalidJobStateException`.
pub fn second_result_verdict(record: &JobRecord, answer: &Answer) -> Result<(), String> {
    match answer.code() {
        Some(SECOND_RESULT_CODE) => Ok(()),
        other => Err(format!(
            "{}: job {} was completed and acknowledged, yet a second PutJobSuccessResult got {} \
             (expected {SECOND_RESULT_CODE})",
            record.pipeline,
            record.job_id,
            other.unwrap_or("200 OK")
        )),
    }
}
