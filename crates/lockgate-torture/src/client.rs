//! The campaign's view of a call over one keep-alive connection (`lockgate_loadgen::client`, the
//! lean client `lockgate-bench` uses too). Every call ends in one of three ways the campaign must tell
//! apart: an answer (2xx), a refusal (the service's error code), or a lost request (the
//! connection broke, so the write may or may not have happened).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::StatusCode;
use lockgate_loadgen::sign::Signer;
use serde_json::Value;

/// How long one request may take before the campaign calls the server hung. Far above any
/// healthy latency; only a deadlock or a lost wake-up gets near it.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// How a call ended when the server answered.
#[derive(Debug)]
pub enum Answer {
    /// 200: the operation's output (`null` for an empty body).
    Ok(Value),
    /// Any other status, with the service's error code (`__type`) and message.
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The error code, without a namespace.
        code: String,
        /// The error message.
        message: String,
    },
}

impl Answer {
    /// The error code of a refusal; `None` for a success.
    pub fn code(&self) -> Option<&str> {
        match self {
            Answer::Ok(_) => None,
            Answer::Refused { code, .. } => Some(code),
        }
    }
}

/// Why a call has no answer.
#[derive(Debug)]
pub enum Lost {
    /// The connection failed: the server died with the request in flight, or before it.
    Connection(anyhow::Error),
    /// No answer within [`REQUEST_LIMIT`] from a server that was not killed.
    Timeout,
}

/// One keep-alive connection to the server, signing every request as the torture user.
pub struct Conn(lockgate_loadgen::client::Conn);

impl Conn {
    /// Opens a connection and drives it on a background task.
    pub async fn connect(addr: SocketAddr, signer: Arc<Signer>) -> anyhow::Result<Conn> {
        Ok(Conn(
            lockgate_loadgen::client::Conn::connect(addr, signer).await?,
        ))
    }

    /// Calls `operation` with a JSON input.
    pub async fn call(&mut self, operation: &str, input: &Value) -> Result<Answer, Lost> {
        match tokio::time::timeout(REQUEST_LIMIT, self.send(operation, input)).await {
            Ok(result) => result.map_err(Lost::Connection),
            Err(_) => Err(Lost::Timeout),
        }
    }

    async fn send(&mut self, operation: &str, input: &Value) -> anyhow::Result<Answer> {
        let body = Bytes::from(serde_json::to_vec(input)?);
        let reply = self.0.send(operation, body).await?;
        let (status, body) = (reply.status, reply.body);
        let json: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .with_context(|| format!("{operation} answered {status} with a non-JSON body"))?
        };
        if status == StatusCode::OK {
            return Ok(Answer::Ok(json));
        }
        let code = json["__type"].as_str().unwrap_or("(no __type)");
        // Error codes may carry a namespace (`com.amazonaws.codepipeline#...`).
        let code = code.rsplit('#').next().unwrap_or(code).to_owned();
        Ok(Answer::Refused {
            status,
            code,
            message: json["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}
