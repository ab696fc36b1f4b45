//! The axum router: one handler for both protocols, running every request through the same steps.
//!
//! route and protocol checks → declared body size → SigV4 checks that need no body (the request is
//! refused here, body unread, when unsigned or signed with an unknown key) → read the body
//! (size-limited) → the rest of SigV4 → decode → `check_input` → the service's already encoded
//! answer, if it keeps one ([`EncodedAnswers`]), else `dispatch`, which encodes the typed output.
//! Each step can end the request with an error encoded in the request's protocol. Every response carries an `x-amzn-RequestId`, and every request is logged once, with
//! its operation, status, request id, caller and latency, never with its headers or body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::routing::{any, post};
use axum::Router;
use futures_util::FutureExt;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lockgate_model::Caller;
use lockgate_shapes::{EncodedAnswers, ErrorCode, Operation};
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::credentials::CredentialsProvider;
use crate::error::ApiError;
use crate::protocol::Protocol;
use crate::sigv4::{self, Expectations, RequestHead, SignedRequest};

/// The largest request body accepted, in bytes. The largest CodePipeline inputs (a pipeline
/// declaration, a job result) are far below this.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-amzn-RequestId";

/// How the API authenticates requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The region this server answers for; a credential scoped to another region is rejected.
    pub region: String,
    /// How far a request's `X-Amz-Date` may be from the server's clock, either way.
    pub max_clock_skew: Duration,
}

impl ApiConfig {
    /// The configuration for `region`, with AWS's five-minute clock-skew allowance.
    pub fn new(region: impl Into<String>) -> Self {
        ApiConfig {
            region: region.into(),
            max_clock_skew: Duration::from_secs(5 * 60),
        }
    }
}

impl Default for ApiConfig {
    /// `us-east-1`, the region the AWS CLI falls back on, and a five-minute skew allowance.
    fn default() -> Self {
        ApiConfig::new("us-east-1")
    }
}

struct Api<S> {
    service: Arc<S>,
    credentials: Arc<dyn CredentialsProvider>,
    config: ApiConfig,
}

/// The CodePipeline API as an axum router, serving `POST /` (awsJson1.1) and
/// `/service/{service}/operation/{operation}` (RPC v2 CBOR) and nothing else, so it can be merged
/// with other routers. Requests run as the [`Caller`] their SigV4 signature authenticates.
pub fn router<S>(
    service: Arc<S>,
    credentials: Arc<dyn CredentialsProvider>,
    config: ApiConfig,
) -> Router
where
    S: EncodedAnswers<Context = Caller>,
{
    let api = Arc::new(Api {
        service,
        credentials,
        config,
    });
    Router::new()
        .route("/", post(handle::<S>))
        .route("/service/{service}/operation/{operation}", any(handle::<S>))
        .with_state(api)
}

/// What became of one request, for the response and the log line.
struct Outcome {
    operation: Option<Operation>,
    caller: Option<Caller>,
    /// The encoded output, or the error to answer with.
    result: Result<Bytes, ApiError>,
}

async fn handle<S>(State(api): State<Arc<Api<S>>>, request: Request) -> Response<Body>
where
    S: EncodedAnswers<Context = Caller>,
{
    let started = Instant::now();
    let mut id_text = Uuid::encode_buffer();
    let request_id: &str = Uuid::new_v4().hyphenated().encode_lower(&mut id_text);
    let span = tracing::info_span!("api_request", request_id = %request_id);
    async move {
        let (parts, body) = request.into_parts();
        // Signatures cover the path the client sent, even when this router is nested.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|original| original.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let protocol = Protocol::for_path(parts.uri.path());
        let outcome = serve(&api, protocol, &parts, &uri, body).await;

        let mut response = match (&outcome.result, outcome.operation) {
            (Ok(output), Some(op)) => protocol.output_response(op, output.clone()),
            (Err(error), _) => protocol.error_response(error),
            // `serve` only succeeds once it knows the operation.
            (Ok(_), None) => protocol.error_response(&ApiError::internal()),
        };
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        log(&outcome, protocol, response.status(), request_id, started);
        response
    }
    .instrument(span)
    .await
}

async fn serve<S>(
    api: &Api<S>,
    protocol: Protocol,
    parts: &Parts,
    uri: &http::Uri,
    body: Body,
) -> Outcome
where
    S: EncodedAnswers<Context = Caller>,
{
    let mut outcome = Outcome {
        operation: None,
        caller: None,
        result: Ok(Bytes::new()),
    };
    let op = match protocol.operation(&parts.method, parts.uri.path(), &parts.headers) {
        Ok(op) => op,
        Err(error) => return outcome.fail(error),
    };
    outcome.operation = Some(op);

    if let Err(error) = check_declared_length(parts) {
        return outcome.fail(error);
    }
    let expect = Expectations {
        region: &api.config.region,
        max_clock_skew: api.config.max_clock_skew,
        signed_headers: protocol.signed_headers(),
    };
    let head = RequestHead {
        method: &parts.method,
        uri,
        headers: &parts.headers,
    };
    // Everything that can refuse the request without its body runs first, so an unsigned or
    // unknown-key request never makes the server buffer (or wait for) up to MAX_BODY_BYTES.
    let pending = match sigv4::authenticate_head(
        &head,
        api.credentials.as_ref(),
        &expect,
        OffsetDateTime::from(lockgate_model::Clock::now_system(
            &lockgate_model::SystemClock,
        )),
    )
    .await
    {
        Ok(pending) => pending,
        Err(error) => return outcome.fail(ApiError::from_auth(&error)),
    };

    let body = match read_body(body).await {
        Ok(body) => body,
        Err(error) => return outcome.fail(error),
    };
    let signed = SignedRequest {
        method: &parts.method,
        uri,
        headers: &parts.headers,
        body: &body,
    };
    let caller = match pending.finish(&signed) {
        Ok(caller) => caller,
        Err(error) => return outcome.fail(ApiError::from_auth(&error)),
    };
    outcome.caller = Some(caller.clone());

    let input = match protocol.decode_input(op, &body) {
        Ok(input) => input,
        Err(error) => return outcome.fail(error),
    };
    if let Err(error) = lockgate_shapes::validate::check_input(op, &input) {
        return outcome.fail(ApiError::from_protocol(error));
    }

    let encoding = protocol.encoding();
    // A read the service keeps encoded is answered here, inline: no task, no typed output, no
    // encoding. `catch_unwind` keeps the promise the task below makes, that a panic becomes an
    // `InternalFailure` and not a dropped connection.
    let kept =
        std::panic::AssertUnwindSafe(api.service.encoded_answer(&caller, op, &input, encoding))
            .catch_unwind()
            .await;
    match kept {
        Ok(Some(body)) => {
            outcome.result = Ok(body);
            return outcome;
        }
        Ok(None) => {}
        Err(_) => {
            tracing::error!(operation = op.name(), "encoded answer panicked");
            return outcome.fail(ApiError::internal());
        }
    }

    // The handler runs as its own task: a panic in it becomes an `InternalFailure` instead of a
    // dropped connection, and a client that hangs up does not cancel a write halfway.
    let service = Arc::clone(&api.service);
    let task =
        tokio::spawn(
            async move {
                lockgate_shapes::dispatch(service.as_ref(), &caller, op, input, encoding).await
            }
            .in_current_span(),
        );
    outcome.result = match task.await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(error)) => Err(ApiError::from_handler(op, error)),
        Err(join_error) => {
            tracing::error!(operation = op.name(), error = %join_error, "handler panicked");
            Err(ApiError::internal())
        }
    };
    outcome
}

impl Outcome {
    fn fail(mut self, error: ApiError) -> Self {
        self.result = Err(error);
        self
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::SerializationException,
        format!("The request body is larger than the limit of {MAX_BODY_BYTES} bytes."),
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// A 413 when the declared `Content-Length` is over [`MAX_BODY_BYTES`], before anything is read.
fn check_declared_length(parts: &Parts) -> Result<(), ApiError> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    Ok(())
}

/// The whole body, or a 413 when it is larger than [`MAX_BODY_BYTES`] (a chunked body declares
/// no length), or a 408 when the connection's body timeout ended it.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) if is_timeout(error.as_ref()) => Err(ApiError::new(
            ErrorCode::SerializationException,
            "The request body did not arrive in time; the connection is closed.",
        )
        .with_status(StatusCode::REQUEST_TIMEOUT)),
        Err(error) => {
            tracing::debug!(error = %error, "could not read the request body");
            Err(ApiError::new(
                ErrorCode::SerializationException,
                "The request body could not be read.",
            ))
        }
    }
}

/// Whether a body error is (or wraps) an I/O timeout, which is how the server's connection layer
/// ends a body that stalls.
fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = error.source();
    }
    false
}

fn log(
    outcome: &Outcome,
    protocol: Protocol,
    status: StatusCode,
    request_id: &str,
    started: Instant,
) {
    let operation = outcome.operation.map(|op| op.name()).unwrap_or("-");
    // Made only if the line is logged: tracing evaluates a field when its level is enabled.
    let caller = || {
        outcome
            .caller
            .as_ref()
            .map(Caller::arn)
            .unwrap_or_else(|| "-".to_owned())
    };
    // Microsecond resolution is plenty and keeps the log line short.
    let latency_ms = || (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let code = outcome.result.as_ref().err().map(|e| e.code.as_str());
    if status.is_server_error() {
        tracing::warn!(
            operation,
            protocol = protocol.name(),
            status = status.as_u16(),
            code,
            request_id,
            caller = %caller(),
            latency_ms = latency_ms(),
            "request failed"
        );
    } else if code.is_none() && outcome.operation.is_some_and(is_read_only) {
        // Job workers poll and dashboards refresh all the time: successful reads are logged at
        // debug so that the info log shows what changed (writes) and what went wrong.
        tracing::debug!(
            operation,
            protocol = protocol.name(),
            status = status.as_u16(),
            request_id,
            caller = %caller(),
            latency_ms = latency_ms(),
            "request served"
        );
    } else {
        tracing::info!(
            operation,
            protocol = protocol.name(),
            status = status.as_u16(),
            code,
            request_id,
            caller = %caller(),
            latency_ms = latency_ms(),
            "request served"
        );
    }
}

/// Operations that change nothing: reads, and PollForJobs (handing out a job is not persisted).
fn is_read_only(op: Operation) -> bool {
    let name = op.name();
    name.starts_with("Get") || name.starts_with("List") || op == Operation::PollForJobs
}

#[cfg(test)]
mod tests;
