//! Work over a range of pipeline indices spread across the benchmark's keep-alive connections:
//! each connection takes the next index from a shared counter, so a million items cost no
//! memory beyond the latency samples the caller asks for.

use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use lockgate_loadgen::client::Conn;

use crate::stats::Summary;

/// What one fan-out did.
pub struct Fanned {
    /// Items done.
    pub done: usize,
    /// From the first item taken to the last one finished.
    pub elapsed: Duration,
    /// The latencies the work reported, when kept.
    pub latency: Summary,
}

impl Fanned {
    /// Items per second.
    pub fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `work` on every index of `items`, one stream of requests per connection. `work`
/// returns the latency to record (kept when `keep_latency`). The first error stops every
/// connection from taking more items and is returned.
pub async fn fan_out<F, Fut>(
    conns: &[Arc<Conn>],
    items: Range<usize>,
    keep_latency: bool,
    work: F,
) -> anyhow::Result<Fanned>
where
    F: Fn(Arc<Conn>, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Duration>> + Send + 'static,
{
    let end = items.end;
    let next = Arc::new(AtomicUsize::new(items.start));
    let failed = Arc::new(AtomicBool::new(false));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(conns.len());
    for conn in conns {
        let (conn, next, failed, work) = (conn.clone(), next.clone(), failed.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut done = 0;
            while !failed.load(Ordering::Relaxed) {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= end {
                    break;
                }
                match work(conn.clone(), index).await {
                    Ok(took) => {
                        done += 1;
                        if keep_latency {
                            samples.push(took);
                        }
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e.context(format!("item {index}")));
                    }
                }
            }
            anyhow::Ok((done, samples))
        }));
    }
    let mut samples = Vec::new();
    let mut done = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await.context("a client task failed") {
            Ok(Ok((n, s))) => {
                done += n;
                samples.extend(s);
            }
            Ok(Err(e)) | Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if done != items.len() {
        return Err(anyhow!("{done} of {} items were done", items.len()));
    }
    Ok(Fanned {
        done,
        elapsed: started.elapsed(),
        latency: Summary::of(samples),
    })
}
