//! Answers for requests that reach no operation: a path nothing serves, or a method a path does
//! not take. They are encoded like every other API error (awsJson1.1 `{__type, message}`, or RPC
//! v2 CBOR for RPC v2 paths) with a request id, so an SDK pointed at the wrong URL reports an AWS
//! error instead of failing to parse an empty body.

use axum::body::Body;
use axum::extract::Request;
use http::header::HeaderValue;
use http::{Response, StatusCode};
use lockgate_shapes::ErrorCode;
use uuid::Uuid;

use crate::error::ApiError;
use crate::protocol::Protocol;
use crate::router::REQUEST_ID_HEADER;

/// The fallback for a path no route serves: `UnknownOperationException` with 404.
pub async fn unknown_route(request: Request) -> Response<Body> {
    let path = request.uri().path();
    let error = ApiError::new(
        ErrorCode::UnknownOperationException,
        format!(
            "No operation is served at '{}'. CodePipeline operations are POST / with an \
             X-Amz-Target header (awsJson1.1) or POST /service/CodePipeline_20150709/operation/<Operation> \
             (RPC v2 CBOR).",
            truncate(path)
        ),
    )
    .with_status(StatusCode::NOT_FOUND);
    answer(&request, &error)
}

/// The fallback for a method a path does not take: `UnknownOperationException` with 405.
pub async fn method_not_allowed(request: Request) -> Response<Body> {
    let error = ApiError::new(
        ErrorCode::UnknownOperationException,
        format!(
            "'{}' does not take {}; operations are invoked with POST.",
            truncate(request.uri().path()),
            request.method()
        ),
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED);
    answer(&request, &error)
}

fn answer(request: &Request, error: &ApiError) -> Response<Body> {
    let protocol = Protocol::for_path(request.uri().path());
    let request_id = Uuid::new_v4().to_string();
    tracing::debug!(
        method = %request.method(),
        status = error.status.as_u16(),
        request_id,
        "no route for the request"
    );
    let mut response = protocol.error_response(error);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Caps the path echoed back so that an error message stays short.
fn truncate(text: &str) -> &str {
    match text.char_indices().nth(128) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    async fn send(method: &str, path: &str) -> (StatusCode, serde_json::Value, bool) {
        let app = Router::new()
            .route("/", get(|| async { "console" }).post(|| async { "api" }))
            .fallback(unknown_route)
            .method_not_allowed_fallback(method_not_allowed);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let has_id = response.headers().contains_key(REQUEST_ID_HEADER);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap(), has_id)
    }

    #[tokio::test]
    async fn a_path_nothing_serves_is_an_unknown_operation_with_404() {
        for (method, path) in [("POST", "/foo"), ("GET", "/nothing/here")] {
            let (status, body, has_id) = send(method, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body["__type"], "UnknownOperationException");
            assert!(body["message"].as_str().unwrap().contains(path), "{body}");
            assert!(has_id);
        }
    }

    #[tokio::test]
    async fn a_method_a_path_does_not_take_is_an_unknown_operation_with_405() {
        let (status, body, _) = send("PUT", "/").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["__type"], "UnknownOperationException");
        assert_eq!(
            body["message"],
            "'/' does not take PUT; operations are invoked with POST."
        );
    }
}
