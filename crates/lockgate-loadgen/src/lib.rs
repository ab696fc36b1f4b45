//! `lockgate-loadgen`: the parts that both out-of-process drivers of a `lockgate serve` process
//! need, the benchmark (`lockgate-bench`) and the kill -9 campaign (`lockgate-torture`).
//!
//! Both run the release binary as a child process, sign every request with AWS's own SigV4
//! signer, talk to it over lean HTTP/1.1 keep-alive connections and load it with the same shape of
//! pipeline (source → manual approval → build). Keeping one copy of each means a fix to how the
//! server is started or how a request is signed reaches both.

pub mod client;
pub mod duration;
pub mod gate;
pub mod server;
pub mod sign;
