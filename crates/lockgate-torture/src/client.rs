//! A lean awsJson1.1 client over one HTTP/1.1 keep-alive connection (hyper's connection-level
//! client, as `lockgate-bench` uses). Every call ends in one of three ways the campaign must tell
//! apart: an answer (2xx), a refusal (the service's error code), or a lost request (the
//! connection broke, so the write may or may not have happened).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::sign::Signer;

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
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    signer: Arc<Signer>,
}

impl Conn {
    /// Opens a connection and drives it on a background task.
    pub async fn connect(addr: SocketAddr, signer: Arc<Signer>) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server dies; a request in
            // flight then fails and its caller records it as lost.
            let _ = connection.await;
        });
        Ok(Conn { sender, signer })
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
        let headers = self.signer.headers(operation, &body, wall_clock())?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .body(Full::new(body))?;
        *request.headers_mut() = headers;
        self.sender.ready().await.context("connection closed")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .context("sending the request")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
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

/// The real time requests are signed with. The torture client is outside the server, so it
/// reads the wall clock itself rather than through the server's `Clock`.
#[allow(
    clippy::disallowed_methods,
    reason = "a client signs with the real time"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}
