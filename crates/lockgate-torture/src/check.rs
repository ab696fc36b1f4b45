//! The check after each restart, with the load paused so the server's state holds still:
//! every acknowledged write is there, and every pipeline's state and history keep the
//! invariants.
//!
//! - Created pipelines exist; acknowledged starts are in ListPipelineExecutions.
//! - Acknowledged approvals show Succeeded (Approved) or Failed (Rejected) with the approver's
//!   ARN and the summary sent; acknowledged job results show Succeeded with the summary sent or
//!   Failed with the message sent.
//! - A token answered once refuses a second answer; a job completed once refuses a second
//!   result with `InvalidJobStateException` (tried once per record, before the history is read,
//!   so the reading also shows the refusal changed nothing).
//! - Each execution appears once in the history and GetPipelineExecution agrees with the list;
//!   a finished execution has no action execution in progress; each action execution appears
//!   once.
//! - An acknowledged disable or enable of the gated transition holds, and no execution entered
//!   the gated stage while it was disabled.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use crate::client::{Answer, Conn, Lost};
use crate::journal::Journal;
use crate::load::{
    approval_input, observe_transition, second_answer_verdict, second_result_verdict,
};
use crate::server::user_arn;

/// Execution statuses after which nothing may be in progress.
const FINISHED: [&str; 5] = ["Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"];
/// Every execution status CodePipeline defines.
const STATUSES: [&str; 8] = [
    "Cancelled",
    "InProgress",
    "Stopped",
    "Stopping",
    "Succeeded",
    "Superseded",
    "Failed",
    "Queued",
];

/// What one check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Facts compared (one per acknowledged write or invariant instance).
    pub checks: u64,
    /// Everything that did not hold.
    pub violations: Vec<String>,
    /// Pipelines read.
    pub pipelines: usize,
    /// Executions read.
    pub executions: usize,
}

/// One pipeline's history as the server shows it now.
struct History {
    executions: BTreeMap<String, String>,
    actions: HashMap<String, Value>,
}

/// Reads back everything the journals hold and checks the invariants.
pub async fn check(conn: &mut Conn, journals: &mut [&mut Journal]) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    resolve_doubtful_pipelines(conn, journals).await?;
    answer_twice(conn, journals, &mut report).await?;

    let mut histories = BTreeMap::new();
    for journal in journals.iter_mut() {
        for name in journal.live_pipelines() {
            let history = read_history(conn, &name, &mut report).await?;
            let state = call_ok(conn, "GetPipelineState", json!({"name": name})).await?;
            report.checks += 1;
            if let Some(record) = journal.pipelines.get_mut(&name) {
                report.violations.extend(observe_transition(record, &state));
            }
            histories.insert(name, history);
        }
    }
    report.pipelines = histories.len();

    let approver = user_arn();
    for journal in journals.iter() {
        for start in &journal.starts {
            report.checks += 1;
            let listed = histories
                .get(&start.pipeline)
                .is_some_and(|h| h.executions.contains_key(&start.execution_id));
            if !listed {
                report.violations.push(format!(
                    "{}: acknowledged start {} is not in ListPipelineExecutions",
                    start.pipeline, start.execution_id
                ));
            }
        }
        for a in &journal.approvals {
            report.checks += 1;
            let expected = if a.status == "Approved" {
                "Succeeded"
            } else {
                "Failed"
            };
            let found = histories
                .get(&a.pipeline)
                .and_then(|h| h.actions.get(&a.action_execution_id));
            let ok = found.is_some_and(|d| {
                d["status"] == expected
                    && d["updatedBy"] == approver.as_str()
                    && d["output"]["executionResult"]["externalExecutionSummary"]
                        == a.summary.as_str()
            });
            if !ok {
                report.violations.push(format!(
                    "{}: acknowledged {} of action execution {} (summary {:?}) is not shown: {}",
                    a.pipeline,
                    a.status,
                    a.action_execution_id,
                    a.summary,
                    brief(found)
                ));
            }
        }
        for j in &journal.jobs {
            report.checks += 1;
            let found = histories
                .get(&j.pipeline)
                .and_then(|h| h.actions.get(&j.action_execution_id));
            let ok = found.is_some_and(|d| {
                let result = &d["output"]["executionResult"];
                if j.succeeded {
                    d["status"] == "Succeeded"
                        && result["externalExecutionSummary"] == j.text.as_str()
                } else {
                    d["status"] == "Failed" && result["errorDetails"]["message"] == j.text.as_str()
                }
            });
            if !ok {
                report.violations.push(format!(
                    "{}: acknowledged result of job {} ({} {:?}) is not shown on action \
                     execution {}: {}",
                    j.pipeline,
                    j.job_id,
                    if j.succeeded { "success" } else { "failure" },
                    j.text,
                    j.action_execution_id,
                    brief(found)
                ));
            }
        }
    }
    Ok(report)
}

/// Learns whether pipelines whose CreatePipeline answer was lost exist: adopted if they do,
/// forgotten if they do not.
async fn resolve_doubtful_pipelines(
    conn: &mut Conn,
    journals: &mut [&mut Journal],
) -> anyhow::Result<()> {
    for journal in journals.iter_mut() {
        let doubtful: Vec<String> = journal
            .pipelines
            .values()
            .filter(|p| !p.acknowledged)
            .map(|p| p.name.clone())
            .collect();
        for name in doubtful {
            match call(conn, "GetPipeline", json!({"name": name})).await? {
                Answer::Ok(_) => {
                    if let Some(p) = journal.pipelines.get_mut(&name) {
                        p.acknowledged = true;
                    }
                }
                Answer::Refused { code, .. } if code == "PipelineNotFoundException" => {
                    journal.pipelines.remove(&name);
                }
                Answer::Refused { status, code, .. } => {
                    journal.violate(format!("GetPipeline {name} answered {status} {code}"));
                }
            }
        }
    }
    Ok(())
}

/// Tries once, for each acknowledged answer and job result not tried yet, to answer or complete
/// it a second time; each must be refused.
async fn answer_twice(
    conn: &mut Conn,
    journals: &mut [&mut Journal],
    report: &mut CheckReport,
) -> anyhow::Result<()> {
    for journal in journals.iter_mut() {
        for a in journal.approvals.iter_mut().filter(|a| !a.answered_twice) {
            let other = if a.status == "Approved" {
                "Rejected"
            } else {
                "Approved"
            };
            let input = approval_input(&a.pipeline, &a.token, other, "second answer after kill");
            let answer = call(conn, "PutApprovalResult", input).await?;
            report.checks += 1;
            a.answered_twice = true;
            if let Err(v) = second_answer_verdict(a, &answer) {
                report.violations.push(v);
            }
        }
        for j in journal.jobs.iter_mut().filter(|j| !j.completed_twice) {
            let answer = call(conn, "PutJobSuccessResult", json!({"jobId": j.job_id})).await?;
            report.checks += 1;
            j.completed_twice = true;
            if let Err(v) = second_result_verdict(j, &answer) {
                report.violations.push(v);
            }
        }
    }
    Ok(())
}

/// Reads a pipeline's whole history and checks the invariants of each execution.
async fn read_history(
    conn: &mut Conn,
    pipeline: &str,
    report: &mut CheckReport,
) -> anyhow::Result<History> {
    report.checks += 1;
    if let Answer::Refused { code, .. } =
        call(conn, "GetPipeline", json!({"name": pipeline})).await?
    {
        report.violations.push(format!(
            "{pipeline}: acknowledged CreatePipeline is lost (GetPipeline answered {code})"
        ));
    }

    let mut executions = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"pipelineName": pipeline, "maxResults": 100});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = call_ok(conn, "ListPipelineExecutions", input).await?;
        for e in page["pipelineExecutionSummaries"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = e["pipelineExecutionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let status = e["status"].as_str().unwrap_or_default().to_owned();
            report.checks += 1;
            if !STATUSES.contains(&status.as_str()) {
                report
                    .violations
                    .push(format!("{pipeline}: execution {id} has status {status:?}"));
            }
            if executions.insert(id.clone(), status).is_some() {
                report.violations.push(format!(
                    "{pipeline}: execution {id} is listed twice by ListPipelineExecutions"
                ));
            }
        }
        token = page["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    report.executions += executions.len();

    let mut actions: HashMap<String, Value> = HashMap::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"pipelineName": pipeline, "maxResults": 100});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let page = call_ok(conn, "ListActionExecutions", input).await?;
        for d in page["actionExecutionDetails"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = d["actionExecutionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if actions.insert(id.clone(), d.clone()).is_some() {
                report.violations.push(format!(
                    "{pipeline}: action execution {id} is listed twice by ListActionExecutions"
                ));
            }
        }
        token = page["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }

    let mut in_progress: HashSet<&str> = HashSet::new();
    for d in actions.values() {
        if d["status"] == "InProgress" {
            in_progress.insert(d["pipelineExecutionId"].as_str().unwrap_or_default());
        }
    }
    for (id, status) in &executions {
        report.checks += 1;
        if FINISHED.contains(&status.as_str()) && in_progress.contains(id.as_str()) {
            report.violations.push(format!(
                "{pipeline}: execution {id} is {status} but has an action execution in progress"
            ));
        }
        // Finished successes and supersessions never change again; everything else is compared
        // with GetPipelineExecution, which must tell the same state as the list.
        if status == "Succeeded" || status == "Superseded" {
            continue;
        }
        let input = json!({"pipelineName": pipeline, "pipelineExecutionId": id});
        let one = call_ok(conn, "GetPipelineExecution", input).await?;
        report.checks += 1;
        let single = &one["pipelineExecution"]["status"];
        if single != status.as_str() {
            report.violations.push(format!(
                "{pipeline}: execution {id} is {status} in ListPipelineExecutions but {single} \
                 in GetPipelineExecution"
            ));
        }
    }
    for d in actions.values() {
        let execution = d["pipelineExecutionId"].as_str().unwrap_or_default();
        report.checks += 1;
        if !executions.contains_key(execution) {
            report.violations.push(format!(
                "{pipeline}: action execution {} belongs to execution {execution}, which \
                 ListPipelineExecutions does not list",
                d["actionExecutionId"]
            ));
        }
    }
    Ok(History {
        executions,
        actions,
    })
}

/// One request of the check; a lost request here is an error of the campaign, not a doubt.
async fn call(conn: &mut Conn, operation: &str, input: Value) -> anyhow::Result<Answer> {
    match conn.call(operation, &input).await {
        Ok(answer) => Ok(answer),
        Err(Lost::Connection(e)) => Err(e.context(format!("{operation} during the check"))),
        Err(Lost::Timeout) => anyhow::bail!("{operation} hung during the check"),
    }
}

/// As [`call`], for a read that must succeed.
async fn call_ok(conn: &mut Conn, operation: &str, input: Value) -> anyhow::Result<Value> {
    match call(conn, operation, input).await? {
        Answer::Ok(v) => Ok(v),
        Answer::Refused {
            status,
            code,
            message,
        } => anyhow::bail!("{operation} answered {status} {code}: {message}"),
    }
}

/// A short rendering of an action execution for a violation message.
fn brief(found: Option<&Value>) -> String {
    match found {
        None => "no such action execution".to_owned(),
        Some(d) => format!(
            "status {}, updatedBy {}, result {}",
            d["status"], d["updatedBy"], d["output"]["executionResult"]
        ),
    }
}
