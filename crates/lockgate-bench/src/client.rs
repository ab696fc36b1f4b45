//! A [`Pool`] of the lean keep-alive connections (`lockgate_loadgen::client::Conn`) that spreads
//! a list of work over many connections.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use lockgate_loadgen::client::Conn;
use lockgate_loadgen::sign::Signer;

/// Several connections that work through a list of items together.
pub struct Pool {
    conns: Vec<Arc<Conn>>,
}

impl Pool {
    /// Opens `size` connections.
    pub async fn connect(
        addr: SocketAddr,
        signer: Arc<Signer>,
        size: usize,
    ) -> anyhow::Result<Pool> {
        let mut conns = Vec::with_capacity(size);
        for _ in 0..size.max(1) {
            conns.push(Arc::new(Conn::connect(addr, signer.clone()).await?));
        }
        Ok(Pool { conns })
    }

    /// The first connection, for one-off calls.
    pub fn first(&self) -> &Conn {
        &self.conns[0]
    }

    /// Runs `work` on every item, one request stream per connection, and returns the results in
    /// the items' order; fails with the first error met.
    pub async fn run<T, R, F, Fut>(&self, items: Vec<T>, work: F) -> anyhow::Result<Vec<R>>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(Arc<Conn>, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
    {
        let total = items.len();
        let queue: Arc<Mutex<VecDeque<(usize, T)>>> =
            Arc::new(Mutex::new(items.into_iter().enumerate().collect()));
        let work = Arc::new(work);
        let mut workers = Vec::with_capacity(self.conns.len());
        for conn in &self.conns {
            let (conn, queue, work) = (conn.clone(), queue.clone(), work.clone());
            workers.push(tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some((index, item)) = next else { break };
                    done.push((index, work(conn.clone(), item).await?));
                }
                anyhow::Ok(done)
            }));
        }
        let mut results: Vec<Option<R>> = (0..total).map(|_| None).collect();
        let mut first_error = None;
        for worker in workers {
            match worker.await {
                Ok(Ok(done)) => {
                    for (index, result) in done {
                        results[index] = Some(result);
                    }
                }
                Ok(Err(e)) => {
                    // Stop the other workers early: nothing more is taken from the queue.
                    queue.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(anyhow!("a worker task failed: {e}"));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| anyhow!("an item was not processed")))
            .collect()
    }
}
