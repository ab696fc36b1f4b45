//! Latencies, one request at a time on one connection (no queueing in the figures): reads of
//! random pipelines no request has touched since the restart (cold) and of one pipeline read
//! over and over (hot), PollForJobs with build jobs queued, and full pagination of
//! ListPipelines, ListPipelineExecutions and ListActionExecutions.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::Rng;
use serde_json::{json, Value};

use lockgate_loadgen::client::Conn;
use lockgate_loadgen::gate::custom_type;

use super::api::{self, pipeline_name};
use super::load::jobs_of;
use super::watch::Watch;
use super::writes::PolledJob;
use crate::setup::{latest_execution, APPROVAL_ACTION, APPROVAL_STAGE, BUILD_PROVIDER};
use crate::stats::Summary;

/// GetPipelineState of random pipelines.
pub struct ColdReads {
    /// Their latencies.
    pub latency: Summary,
    /// Read pipelines that should be waiting at their approval.
    pub expected_waiting: usize,
    /// Of those, the ones that are.
    pub waiting: usize,
}

/// GetPipelineState once on each of `count` distinct random pipelines of `0 .. pipelines`;
/// those in `waiting` must show their approval in progress.
pub async fn cold_reads(
    conn: &Conn,
    pipelines: usize,
    waiting: std::ops::Range<usize>,
    count: usize,
    watch: &Arc<Watch>,
) -> anyhow::Result<ColdReads> {
    let count = count.min(pipelines);
    watch.phase("GetPipelineState, random pipelines (cold)", count);
    let mut rng = rand::thread_rng();
    let mut chosen = HashSet::with_capacity(count);
    while chosen.len() < count {
        chosen.insert(rng.gen_range(0..pipelines));
    }
    let mut samples = Vec::with_capacity(count);
    let (mut expected_waiting, mut seen_waiting) = (0, 0);
    for i in chosen {
        let (took, state) =
            api::timed(conn, "GetPipelineState", &json!({"name": pipeline_name(i)})).await?;
        samples.push(took);
        if waiting.contains(&i) {
            expected_waiting += 1;
            if is_waiting(&state) {
                seen_waiting += 1;
            }
        }
        watch.add(1);
    }
    Ok(ColdReads {
        latency: Summary::of(samples),
        expected_waiting,
        waiting: seen_waiting,
    })
}

/// Whether a GetPipelineState output shows the approval in progress.
fn is_waiting(state: &Value) -> bool {
    latest_execution(state, APPROVAL_STAGE, APPROVAL_ACTION)
        .is_some_and(|e| e["status"] == "InProgress" && e["token"].is_string())
}

/// GetPipelineState `count` times on pipeline `index`, after as many unmeasured reads.
pub async fn hot_reads(
    conn: &Conn,
    index: usize,
    count: usize,
    watch: &Arc<Watch>,
) -> anyhow::Result<Summary> {
    watch.phase(
        &format!(
            "GetPipelineState, {} over and over (hot)",
            pipeline_name(index)
        ),
        2 * count,
    );
    let input = json!({"name": pipeline_name(index)});
    let mut samples = Vec::with_capacity(count);
    for n in 0..2 * count {
        let (took, _) = api::timed(conn, "GetPipelineState", &input).await?;
        if n >= count {
            samples.push(took);
        }
        watch.add(1);
    }
    Ok(Summary::of(samples))
}

/// PollForJobs with jobs queued.
pub struct Polls {
    /// Latency of the polls, each of which handed out one job.
    pub latency: Summary,
    /// The jobs handed out, to be completed afterwards.
    pub jobs: Vec<PolledJob>,
}

/// PollForJobs for BenchBuild with `maxBatchSize` 1, `count` times; each must hand out a job.
pub async fn polls(conn: &Conn, count: usize, watch: &Arc<Watch>) -> anyhow::Result<Polls> {
    watch.phase("PollForJobs, build jobs queued", count);
    let input = json!({"actionTypeId": custom_type("Build", BUILD_PROVIDER), "maxBatchSize": 1});
    let mut samples = Vec::with_capacity(count);
    let mut jobs = Vec::with_capacity(count);
    for n in 0..count {
        let (took, out) = api::timed(conn, "PollForJobs", &input).await?;
        let mut handed = jobs_of(&out);
        if handed.len() != 1 {
            bail!(
                "PollForJobs number {} handed out {} jobs, expected 1",
                n + 1,
                handed.len()
            );
        }
        samples.push(took);
        jobs.append(&mut handed);
        watch.add(1);
    }
    Ok(Polls {
        latency: Summary::of(samples),
        jobs,
    })
}

/// A full pagination, possibly repeated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pages {
    /// Items listed in one pass.
    pub items: usize,
    /// Pages in one pass.
    pub pages: usize,
    /// Passes made.
    pub passes: usize,
    /// One pass, start to end (the first pass).
    pub first_pass: Duration,
    /// The first page of the first pass.
    pub first_page: Duration,
    /// The last page of the first pass.
    pub last_page: Duration,
    /// Every first page, over all passes.
    pub first_pages: Summary,
    /// Every page, over all passes.
    pub all: Summary,
}

/// Pages through `operation` (`input` plus `nextToken`) to the end `passes` times, counting
/// the items in `list`.
pub async fn paginate(
    conn: &Conn,
    operation: &str,
    input: Value,
    list: &str,
    passes: usize,
    watch: &Arc<Watch>,
) -> anyhow::Result<Pages> {
    let mut report = Pages {
        passes,
        ..Pages::default()
    };
    let (mut all, mut firsts) = (Vec::new(), Vec::new());
    for pass in 0..passes {
        watch.phase(
            &format!(
                "{operation}, full pagination, pass {} of {passes}",
                pass + 1
            ),
            report.items,
        );
        let began = Instant::now();
        let mut token: Option<String> = None;
        let (mut items, mut pages) = (0, 0);
        let mut last;
        loop {
            let mut request = input.clone();
            if let Some(t) = &token {
                request["nextToken"] = json!(t);
            }
            let (took, out) = api::timed(conn, operation, &request)
                .await
                .with_context(|| format!("{operation} page {}", pages + 1))?;
            let n = out[list].as_array().map_or(0, Vec::len);
            items += n;
            pages += 1;
            last = took;
            all.push(took);
            if pages == 1 {
                firsts.push(took);
                if pass == 0 {
                    report.first_page = took;
                }
            }
            watch.add(n);
            token = out["nextToken"].as_str().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if pass == 0 {
            report.first_pass = began.elapsed();
            report.last_page = last;
            report.items = items;
            report.pages = pages;
        } else if items != report.items {
            bail!(
                "{operation} listed {items} items, {} in the first pass",
                report.items
            );
        }
    }
    report.all = Summary::of(all);
    report.first_pages = Summary::of(firsts);
    Ok(report)
}
