//! The two wire protocols the API speaks over the same shapes: awsJson1.1 (`POST /` with
//! `X-Amz-Target`) and Smithy RPC v2 CBOR (`POST /service/<service>/operation/<operation>`).
//!
//! Each protocol knows how to find the operation a request names, how to turn a request body into
//! the JSON value the shapes crate validates and decodes, which [`Encoding`] its outputs take
//! (the shapes crate encodes them), and how to answer with an output or an error.
//! Everything between those steps is protocol-blind, which is what keeps the two encodings from
//! drifting apart.

use axum::body::{Body, Bytes};
use ciborium::Value as Cbor;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};
use lockgate_shapes::{Encoding, ErrorCode, Operation, ServiceError};
use serde_json::Value;

use crate::error::ApiError;

/// The prefix of every awsJson1.1 `X-Amz-Target` (`<prefix><Operation>`).
pub(crate) const TARGET_PREFIX: &str = "CodePipeline_20150709.";
/// The service's shape name, the `serviceName` segment of an RPC v2 path.
pub(crate) const SERVICE_NAME: &str = "CodePipeline_20150709";
/// The service's absolute shape id with `#` replaced by `.`, which RPC v2 servers should also accept.
const QUALIFIED_SERVICE_NAME: &str = "com.amazonaws.codepipeline.CodePipeline_20150709";
/// The namespace of the model's shapes; RPC v2 error bodies name the error by its absolute shape id.
pub(crate) const SHAPE_NAMESPACE: &str = "com.amazonaws.codepipeline";
/// The content type of awsJson1.1 requests and responses.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The content type of RPC v2 CBOR requests and responses.
pub(crate) const CBOR_CONTENT_TYPE: &str = "application/cbor";
/// The header naming the Smithy protocol, on every RPC v2 request and response.
pub(crate) const SMITHY_PROTOCOL: &str = "smithy-protocol";
/// The value of [`SMITHY_PROTOCOL`] for RPC v2 CBOR.
pub(crate) const RPC_V2_CBOR: &str = "rpc-v2-cbor";

/// A wire protocol of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `awsJson1.1`.
    AwsJson11,
    /// Smithy RPC v2 CBOR.
    RpcV2Cbor,
}

impl Protocol {
    /// The protocol a request path belongs to: RPC v2 CBOR for `…/service/<s>/operation/<o>`,
    /// awsJson1.1 for everything else.
    pub fn for_path(path: &str) -> Protocol {
        if rpc_v2_route(path).is_some() {
            Protocol::RpcV2Cbor
        } else {
            Protocol::AwsJson11
        }
    }

    /// The protocol's name as the Smithy model spells it, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::AwsJson11 => "awsJson1_1",
            Protocol::RpcV2Cbor => "rpcv2Cbor",
        }
    }

    /// The operation the request names, after the checks the protocol makes of the request line
    /// and headers.
    pub fn operation(
        self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Operation, ApiError> {
        match self {
            Protocol::AwsJson11 => json_operation(method, path, headers),
            Protocol::RpcV2Cbor => cbor_operation(method, path, headers),
        }
    }

    /// Headers the request signature must cover besides `host`. awsJson1.1 names the operation in
    /// `X-Amz-Target`, so a signature that left it out could be replayed as another operation;
    /// RPC v2 CBOR names it in the path, which every signature covers.
    pub fn signed_headers(self) -> &'static [&'static str] {
        match self {
            Protocol::AwsJson11 => &["x-amz-target"],
            Protocol::RpcV2Cbor => &[],
        }
    }

    /// The request body as the JSON value the shapes crate validates; an empty body is `{}`.
    pub fn decode_input(self, op: Operation, body: &[u8]) -> Result<Value, ApiError> {
        let value = match self {
            Protocol::AwsJson11 if body.iter().all(u8::is_ascii_whitespace) => {
                Value::Object(serde_json::Map::new())
            }
            Protocol::AwsJson11 => serde_json::from_slice(body).map_err(|e| {
                ApiError::new(
                    ErrorCode::SerializationException,
                    format!("The request body is not valid JSON: {e}"),
                )
            })?,
            Protocol::RpcV2Cbor => {
                lockgate_shapes::cbor::decode_input(op, body).map_err(ApiError::from_protocol)?
            }
        };
        match value {
            Value::Object(_) => Ok(value),
            // A JSON `null` body carries no members, like an empty one.
            Value::Null => Ok(Value::Object(serde_json::Map::new())),
            _ => Err(ApiError::from_protocol(ServiceError::serialization(
                "The request body must be a structure.",
            ))),
        }
    }

    /// How the protocol encodes output bodies.
    pub fn encoding(self) -> Encoding {
        match self {
            Protocol::AwsJson11 => Encoding::Json,
            Protocol::RpcV2Cbor => Encoding::Cbor,
        }
    }

    /// The 200 response carrying `body`, the output of `op` encoded in [`Protocol::encoding`].
    pub fn output_response(self, op: Operation, body: Bytes) -> Response<Body> {
        match self {
            Protocol::AwsJson11 => response(StatusCode::OK, Some(JSON_CONTENT_TYPE), self, body),
            // The RPC v2 specification: an operation without output answers with no body and
            // therefore no content type.
            Protocol::RpcV2Cbor if op.output_shape().is_none() => {
                response(StatusCode::OK, None, self, Bytes::new())
            }
            Protocol::RpcV2Cbor => response(StatusCode::OK, Some(CBOR_CONTENT_TYPE), self, body),
        }
    }

    /// The response carrying `error`.
    ///
    /// awsJson1.1 bodies name the error by its short code, as AWS does; RPC v2 CBOR bodies by its
    /// absolute shape id, as the RPC v2 specification requires (`com.amazonaws.codepipeline#…`).
    /// Every AWS SDK and botocore keep only what follows the `#`.
    pub fn error_response(self, error: &ApiError) -> Response<Body> {
        match self {
            Protocol::AwsJson11 => {
                let body = serde_json::json!({
                    "__type": error.code.as_str(),
                    "message": error.message,
                });
                let body = serde_json::to_vec(&body).unwrap_or_default();
                response(error.status, Some(JSON_CONTENT_TYPE), self, body.into())
            }
            Protocol::RpcV2Cbor => {
                let body = Cbor::Map(vec![
                    (
                        Cbor::Text("__type".to_owned()),
                        Cbor::Text(format!("{SHAPE_NAMESPACE}#{}", error.code.as_str())),
                    ),
                    (
                        Cbor::Text("message".to_owned()),
                        Cbor::Text(error.message.clone()),
                    ),
                ]);
                let mut bytes = Vec::new();
                // Writing a `ciborium::Value` into memory cannot fail; an empty body would still
                // let the client fall back on the status.
                if ciborium::ser::into_writer(&body, &mut bytes).is_err() {
                    bytes.clear();
                }
                response(error.status, Some(CBOR_CONTENT_TYPE), self, bytes.into())
            }
        }
    }
}

fn response(
    status: StatusCode,
    content_type: Option<&'static str>,
    protocol: Protocol,
    body: Bytes,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if protocol == Protocol::RpcV2Cbor {
        headers.insert(SMITHY_PROTOCOL, HeaderValue::from_static(RPC_V2_CBOR));
    }
    response
}

/// `(service, operation)` from a path whose last four segments are
/// `service/<service>/operation/<operation>`.
fn rpc_v2_route(path: &str) -> Option<(&str, &str)> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments[..] {
        [.., "service", service, "operation", operation] => Some((service, operation)),
        _ => None,
    }
}

/// The media type of the `Content-Type` header, lower-case and without parameters; `None` when the
/// header is absent.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?;
    let value = String::from_utf8_lossy(value.as_bytes());
    let essence = value.split(';').next().unwrap_or_default();
    Some(essence.trim().to_ascii_lowercase())
}

fn unsupported_media_type(media_type: &str, expected: &str) -> ApiError {
    ApiError::new(
        ErrorCode::SerializationException,
        format!(
            "Unsupported Content-Type '{}'; this endpoint expects '{expected}'.",
            truncate(media_type)
        ),
    )
    .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
}

fn unknown_operation(message: String) -> ApiError {
    ApiError::new(ErrorCode::UnknownOperationException, message)
}

fn json_operation(method: &Method, path: &str, headers: &HeaderMap) -> Result<Operation, ApiError> {
    if path != "/" {
        return Err(
            unknown_operation(format!("No operation is served at '{}'.", truncate(path)))
                .with_status(StatusCode::NOT_FOUND),
        );
    }
    if method != Method::POST {
        return Err(method_not_allowed());
    }
    let Some(target) = headers.get("x-amz-target") else {
        return Err(unknown_operation(
            "The request names no operation: the X-Amz-Target header is missing.".to_owned(),
        ));
    };
    let target = String::from_utf8_lossy(target.as_bytes());
    let op = target
        .strip_prefix(TARGET_PREFIX)
        .and_then(Operation::from_name)
        .ok_or_else(|| {
            unknown_operation(format!(
                "'{}' is not an operation of {SERVICE_NAME}.",
                truncate(&target)
            ))
        })?;
    match media_type(headers) {
        Some(media) if media != JSON_CONTENT_TYPE && media != "application/json" => {
            Err(unsupported_media_type(&media, JSON_CONTENT_TYPE))
        }
        _ => Ok(op),
    }
}

fn cbor_operation(method: &Method, path: &str, headers: &HeaderMap) -> Result<Operation, ApiError> {
    if method != Method::POST {
        return Err(method_not_allowed());
    }
    let protocol = headers.get(SMITHY_PROTOCOL).map(HeaderValue::as_bytes);
    if protocol != Some(RPC_V2_CBOR.as_bytes()) {
        return Err(unknown_operation(format!(
            "RPC v2 CBOR requests must carry the header '{SMITHY_PROTOCOL}: {RPC_V2_CBOR}'."
        )));
    }
    // The RPC v2 specification requires rejecting these: a proxy routing on the target header
    // must not be made to disagree with the path.
    if headers.contains_key("x-amz-target") || headers.contains_key("x-amzn-target") {
        return Err(unknown_operation(
            "RPC v2 CBOR requests must not carry an X-Amz-Target header.".to_owned(),
        ));
    }
    let Some((service, operation)) = rpc_v2_route(path) else {
        return Err(unknown_operation(format!(
            "No operation is served at '{}'.",
            truncate(path)
        )));
    };
    if service != SERVICE_NAME && service != QUALIFIED_SERVICE_NAME {
        return Err(unknown_operation(format!(
            "'{}' is not a service served here; expected '{SERVICE_NAME}'.",
            truncate(service)
        )));
    }
    let op = Operation::from_name(operation).ok_or_else(|| {
        unknown_operation(format!(
            "'{}' is not an operation of {SERVICE_NAME}.",
            truncate(operation)
        ))
    })?;
    match media_type(headers) {
        Some(media) if media != CBOR_CONTENT_TYPE => {
            Err(unsupported_media_type(&media, CBOR_CONTENT_TYPE))
        }
        _ => Ok(op),
    }
}

fn method_not_allowed() -> ApiError {
    unknown_operation("Operations are invoked with POST.".to_owned())
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Caps text echoed back from a request so that an error message stays short.
fn truncate(text: &str) -> &str {
    match text.char_indices().nth(128) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_v2_paths_are_recognised_by_their_last_four_segments() {
        assert_eq!(
            rpc_v2_route("/service/CodePipeline_20150709/operation/ListPipelines"),
            Some(("CodePipeline_20150709", "ListPipelines"))
        );
        assert_eq!(rpc_v2_route("/v1/service/S/operation/O"), Some(("S", "O")));
        assert_eq!(rpc_v2_route("/"), None);
        assert_eq!(rpc_v2_route("/service/S/operation"), None);
        assert_eq!(Protocol::for_path("/"), Protocol::AwsJson11);
        assert_eq!(
            Protocol::for_path("/service/S/operation/O"),
            Protocol::RpcV2Cbor
        );
    }

    #[test]
    fn the_qualified_service_name_routes_like_the_short_one() {
        let mut headers = HeaderMap::new();
        headers.insert(SMITHY_PROTOCOL, HeaderValue::from_static(RPC_V2_CBOR));
        let op = cbor_operation(
            &Method::POST,
            "/service/com.amazonaws.codepipeline.CodePipeline_20150709/operation/GetPipeline",
            &headers,
        );
        assert_eq!(op, Ok(Operation::GetPipeline));
    }

    #[test]
    fn json_content_types_with_parameters_are_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("CodePipeline_20150709.ListPipelines"),
        );
        for content_type in [
            "application/x-amz-json-1.1",
            "application/json; charset=utf-8",
            "Application/X-Amz-Json-1.1",
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            assert_eq!(
                json_operation(&Method::POST, "/", &headers),
                Ok(Operation::ListPipelines),
                "{content_type}"
            );
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let error = json_operation(&Method::POST, "/", &headers).unwrap_err();
        assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn bodies_that_are_not_structures_are_serialization_errors() {
        for body in [&b"[1]"[..], b"\"x\"", b"{"] {
            let error = Protocol::AwsJson11
                .decode_input(Operation::ListPipelines, body)
                .unwrap_err();
            assert_eq!(error.code, ErrorCode::SerializationException);
        }
        assert_eq!(
            Protocol::AwsJson11
                .decode_input(Operation::ListPipelines, b"  ")
                .unwrap(),
            serde_json::json!({})
        );
        assert_eq!(
            Protocol::RpcV2Cbor
                .decode_input(Operation::ListPipelines, b"")
                .unwrap(),
            serde_json::json!({})
        );
        let error = Protocol::RpcV2Cbor
            .decode_input(Operation::ListPipelines, &[0x83, 1, 2, 3])
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::SerializationException);
    }
}
