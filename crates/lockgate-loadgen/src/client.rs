//! A lean awsJson1.1 client: one HTTP/1.1 keep-alive connection per [`Conn`] (hyper's
//! connection-level client, no pool), every request signed with SigV4 as of the wall clock.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::sign::Signer;

/// A reply: the status and the whole body.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response body.
    pub body: Bytes,
}

/// A reply whose body was counted, not kept (a large page).
pub struct Counted {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// How many body bytes arrived.
    pub body_bytes: u64,
}

/// Signed headers kept for reuse within one wall-clock second.
struct Cached {
    second: u64,
    operation: String,
    body: Bytes,
    headers: HeaderMap,
}

/// One keep-alive connection to the server.
pub struct Conn {
    sender: tokio::sync::Mutex<SendRequest<Full<Bytes>>>,
    signer: Arc<Signer>,
    cached: Mutex<Option<Cached>>,
}

impl Conn {
    /// Opens a connection (with `TCP_NODELAY`, as SDKs do) and drives it on a background task.
    pub async fn connect(addr: SocketAddr, signer: Arc<Signer>) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server hangs up (or dies); a
            // request in flight then fails and its caller counts it.
            let _ = connection.await;
        });
        Ok(Conn {
            sender: tokio::sync::Mutex::new(sender),
            signer,
            cached: Mutex::new(None),
        })
    }

    /// Sends `operation` with `body`, signed now.
    pub async fn send(&self, operation: &str, body: Bytes) -> anyhow::Result<Reply> {
        let headers = self.sign(operation, &body)?;
        self.send_signed(headers, body).await
    }

    /// Sends `operation` with `body`, reusing the signed headers of the previous identical
    /// request when it was signed in the same wall-clock second. The server still verifies the
    /// signature of every request in full; only the client's signing work is saved.
    pub async fn send_reusing_signature(
        &self,
        operation: &str,
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let now = wall_clock();
        let second = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let headers = {
            let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            match cached.as_ref() {
                Some(c) if c.second == second && c.operation == operation && c.body == body => {
                    c.headers.clone()
                }
                _ => {
                    let headers = self.signer.headers(operation, &body, now)?;
                    *cached = Some(Cached {
                        second,
                        operation: operation.to_owned(),
                        body: body.clone(),
                        headers: headers.clone(),
                    });
                    headers
                }
            }
        };
        self.send_signed(headers, body).await
    }

    /// The signed headers for `operation` with `body`, as of now.
    pub fn sign(&self, operation: &str, body: &[u8]) -> anyhow::Result<HeaderMap> {
        self.signer.headers(operation, body, wall_clock())
    }

    /// Sends `body` with headers from [`Conn::sign`]; lets a caller keep signing out of a timing.
    pub async fn send_signed(&self, headers: HeaderMap, body: Bytes) -> anyhow::Result<Reply> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .body(Full::new(body))?;
        *request.headers_mut() = headers;
        let mut sender = self.sender.lock().await;
        sender.ready().await.context("connection closed")?;
        let response = sender
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
        Ok(Reply { status, body })
    }

    /// Sends `request` as it is (unsigned: the console's pages and forms) and reads the whole
    /// body, counting its bytes without keeping them, so a page of hundreds of megabytes costs
    /// the driver no memory.
    pub async fn fetch_counting(&self, request: Request<Full<Bytes>>) -> anyhow::Result<Counted> {
        let mut sender = self.sender.lock().await;
        sender.ready().await.context("connection closed")?;
        let response = sender
            .send_request(request)
            .await
            .context("sending the request")?;
        let (head, mut body) = response.into_parts();
        let mut body_bytes = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.context("reading the response body")?.data_ref() {
                body_bytes += data.len() as u64;
            }
        }
        Ok(Counted {
            status: head.status,
            headers: head.headers,
            body_bytes,
        })
    }

    /// Calls `operation` with a JSON input and returns its JSON output; any status but 200 is an
    /// error carrying the service's `__type` and message.
    pub async fn call(&self, operation: &str, input: &Value) -> anyhow::Result<Value> {
        let reply = self
            .send(operation, Bytes::from(serde_json::to_vec(input)?))
            .await?;
        reply.json(operation)
    }
}

impl Reply {
    /// The body as JSON when the status is 200, else an error naming the operation and the
    /// service's error.
    pub fn json(&self, operation: &str) -> anyhow::Result<Value> {
        if self.status != StatusCode::OK {
            bail!(
                "{operation} answered {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            );
        }
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).with_context(|| format!("{operation} returned bad JSON"))
    }
}

/// The real time requests are signed with. The load generators are clients of the server, not
/// part of it, so they read the wall clock themselves rather than through the server's `Clock`.
#[allow(
    clippy::disallowed_methods,
    reason = "a client signs with the real time"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}
