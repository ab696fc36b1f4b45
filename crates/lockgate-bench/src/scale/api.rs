//! The CodePipeline calls the scale benchmark makes, on top of `lockgate_loadgen::client::Conn`:
//! the names of its pipelines (derived from an index, so nothing per pipeline is kept), calls
//! whose service error the caller inspects, and calls timed without the client's signing work.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use lockgate_loadgen::client::Conn;

/// The pipeline with the long history (`--history`), beside the `p…` ones.
pub const HISTORY_PIPELINE: &str = "history";

/// The name of pipeline `index`: `p0000123`. Seven digits keep names of up to ten million
/// pipelines the same width, so ListPipelines (sorted by name) returns them in index order.
pub fn pipeline_name(index: usize) -> String {
    format!("p{index:07}")
}

/// An error the service answered with (any status but 200).
#[derive(Debug)]
pub struct Fault {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code (`__type` without a namespace), e.g. `PipelineNameInUseException`.
    pub code: String,
    /// The service's message.
    pub message: String,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

/// Calls `operation`; a transport failure is the outer error, a service error the inner one.
pub async fn call(
    conn: &Conn,
    operation: &str,
    input: &Value,
) -> anyhow::Result<Result<Value, Fault>> {
    let reply = conn
        .send(operation, Bytes::from(serde_json::to_vec(input)?))
        .await?;
    if reply.status == StatusCode::OK {
        return Ok(Ok(parse(operation, &reply.body)?));
    }
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let code = body["__type"].as_str().unwrap_or("unknown");
    Ok(Err(Fault {
        status: reply.status,
        code: code.rsplit('#').next().unwrap_or(code).to_owned(),
        message: body["message"]
            .as_str()
            .or_else(|| body["Message"].as_str())
            .unwrap_or_default()
            .to_owned(),
    }))
}

/// Calls `operation` and returns the round trip (signing excluded: the request is signed before
/// the clock starts) and the output; any service error is an error.
pub async fn timed(
    conn: &Conn,
    operation: &str,
    input: &Value,
) -> anyhow::Result<(Duration, Value)> {
    let body = Bytes::from(serde_json::to_vec(input)?);
    let headers = conn.sign(operation, &body)?;
    let sent = Instant::now();
    let reply = conn.send_signed(headers, body).await?;
    let took = sent.elapsed();
    if reply.status != StatusCode::OK {
        bail!(
            "{operation} answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok((took, parse(operation, &reply.body)?))
}

fn parse(operation: &str, body: &[u8]) -> anyhow::Result<Value> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| anyhow!("{operation} returned bad JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_names_sort_in_index_order() {
        assert_eq!(pipeline_name(0), "p0000000");
        assert_eq!(pipeline_name(123), "p0000123");
        assert_eq!(pipeline_name(999_999), "p0999999");
        assert!(pipeline_name(99_999) < pipeline_name(100_000));
    }
}
