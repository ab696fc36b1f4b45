//! Router tests: whole requests, signed by `aws-sigv4`, through the axum router to a small
//! in-test service, checking status, headers and exact bodies in both protocols.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use ciborium::Value as Cbor;
use lockgate_model::Caller;
use lockgate_shapes::{
    CodePipelineService, DeletePipelineInput, EncodedAnswers, Encoding, ErrorCode,
    GetJobDetailsInput, GetJobDetailsOutput, GetPipelineInput, GetPipelineOutput,
    GetPipelineStateInput, GetPipelineStateOutput, ListPipelinesInput, ListPipelinesOutput,
    PipelineSummary, ServiceError, Timestamp,
};
use serde_json::json;
use tower::ServiceExt;

use super::*;
use crate::credentials::StaticCredentials;
use crate::testing::{request, Signer, ACCESS_KEY_ID, SECRET};

const JSON_TYPE: &str = "application/x-amz-json-1.1";
const CBOR_PATH_PREFIX: &str = "/service/CodePipeline_20150709/operation/";

/// A service that answers from the caller it is given, and counts how often it was reached.
#[derive(Default)]
struct Pipelines {
    calls: AtomicUsize,
    /// Answers sent from bytes the service kept.
    kept: AtomicUsize,
}

/// The page of ListPipelines this service keeps encoded, the way the engine keeps GetPipelineState.
fn kept_page() -> ListPipelinesOutput {
    ListPipelinesOutput {
        pipelines: Some(Vec::new()),
        next_token: Some("from the kept answer".to_owned()),
    }
}

/// ListPipelines for the page `kept` is answered from encoded bytes; for the page `panic` that
/// answer has a bug; everything else goes the typed way.
#[async_trait]
impl EncodedAnswers for Pipelines {
    async fn encoded_answer(
        &self,
        _ctx: &Caller,
        op: Operation,
        input: &serde_json::Value,
        encoding: Encoding,
    ) -> Option<Bytes> {
        if op != Operation::ListPipelines {
            return None;
        }
        match input.get("nextToken").and_then(serde_json::Value::as_str) {
            Some("kept") => {
                self.kept.fetch_add(1, Ordering::SeqCst);
                Some(encoding.encode(&kept_page()).unwrap())
            }
            Some("panic") => panic!("a bug in a kept answer"),
            _ => None,
        }
    }
}

#[async_trait]
impl CodePipelineService for Pipelines {
    type Context = Caller;

    async fn list_pipelines(
        &self,
        ctx: &Caller,
        input: ListPipelinesInput,
    ) -> Result<ListPipelinesOutput, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(ListPipelinesOutput {
            pipelines: Some(vec![PipelineSummary {
                name: Some(ctx.arn()),
                version: Some(1),
                created: Some(Timestamp::from_millis(1_700_000_000_500)),
                ..PipelineSummary::default()
            }]),
            next_token: input.next_token,
        })
    }

    async fn get_pipeline(
        &self,
        _ctx: &Caller,
        input: GetPipelineInput,
    ) -> Result<GetPipelineOutput, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(ServiceError::new(
            ErrorCode::PipelineNotFoundException,
            format!("no pipeline {}", input.name),
        ))
    }

    async fn get_pipeline_state(
        &self,
        _ctx: &Caller,
        _input: GetPipelineStateInput,
    ) -> Result<GetPipelineStateOutput, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // GetPipelineState does not declare JobNotFoundException.
        Err(ServiceError::new(
            ErrorCode::JobNotFoundException,
            "an internal detail",
        ))
    }

    async fn delete_pipeline(
        &self,
        _ctx: &Caller,
        _input: DeletePipelineInput,
    ) -> Result<(), ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn get_job_details(
        &self,
        _ctx: &Caller,
        _input: GetJobDetailsInput,
    ) -> Result<GetJobDetailsOutput, ServiceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        panic!("a bug in a handler");
    }
}

struct Harness {
    service: Arc<Pipelines>,
    app: Router,
}

impl Harness {
    fn new() -> Self {
        let service = Arc::new(Pipelines::default());
        let credentials = StaticCredentials::new().with_key(
            ACCESS_KEY_ID,
            SECRET,
            Caller::new("alice", "123456789012"),
        );
        let app = router(
            Arc::clone(&service),
            Arc::new(credentials),
            ApiConfig::new("us-east-1"),
        );
        Harness { service, app }
    }

    fn calls(&self) -> usize {
        self.service.calls.load(Ordering::SeqCst)
    }

    async fn send(&self, request: http::Request<Vec<u8>>) -> Answer {
        let response = self
            .app
            .clone()
            .oneshot(request.map(Body::from))
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("response body")
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn cbor(&self) -> Cbor {
        ciborium::de::from_reader(self.body.as_slice()).expect("a CBOR body")
    }

    fn assert_json_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.header("content-type"), Some(JSON_TYPE));
        assert_eq!(self.json()["__type"], code, "{}", self.json());
    }

    fn assert_cbor_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/cbor"));
        assert_eq!(self.header("smithy-protocol"), Some("rpc-v2-cbor"));
        let body = self.cbor();
        assert_eq!(
            cbor_get(&body, "__type").and_then(Cbor::as_text),
            Some(format!("com.amazonaws.codepipeline#{code}").as_str()),
            "{body:?}"
        );
    }
}

fn cbor_get<'a>(value: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn json_call(operation: &str, body: &str) -> http::Request<Vec<u8>> {
    let target = format!("CodePipeline_20150709.{operation}");
    request(
        "/",
        &[("content-type", JSON_TYPE), ("x-amz-target", &target)],
        body.as_bytes(),
    )
}

fn cbor_call(operation: &str, body: &[u8]) -> http::Request<Vec<u8>> {
    request(
        &format!("{CBOR_PATH_PREFIX}{operation}"),
        &[
            ("content-type", "application/cbor"),
            ("accept", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        body,
    )
}

fn cbor_body(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

fn signed(mut request: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    Signer::default().sign(&mut request);
    request
}

fn signed_with(signer: Signer, mut request: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    signer.sign(&mut request);
    request
}

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

#[tokio::test]
async fn a_signed_json_request_runs_as_its_caller_and_answers_json() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(json_call("ListPipelines", r#"{"nextToken":"t1"}"#)))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some(JSON_TYPE));
    assert_eq!(
        answer.json(),
        json!({
            "pipelines": [{"name": ALICE, "version": 1, "created": 1_700_000_000.5}],
            "nextToken": "t1"
        })
    );
    // Timestamps travel as fractional epoch seconds.
    let text = String::from_utf8(answer.body.clone()).unwrap();
    assert!(text.contains(r#""created":1700000000.5"#), "{text}");
    assert_eq!(harness.calls(), 1);
}

#[tokio::test]
async fn a_signed_cbor_request_answers_cbor_with_tag_1_timestamps() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(cbor_call(
            "ListPipelines",
            &cbor_body(&json!({"maxResults": 10})),
        )))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/cbor"));
    assert_eq!(answer.header("smithy-protocol"), Some("rpc-v2-cbor"));
    let body = answer.cbor();
    let pipelines = cbor_get(&body, "pipelines").unwrap().as_array().unwrap();
    let summary = &pipelines[0];
    assert_eq!(
        cbor_get(summary, "name").and_then(Cbor::as_text),
        Some(ALICE)
    );
    assert_eq!(cbor_get(summary, "version"), Some(&Cbor::Integer(1.into())));
    assert_eq!(
        cbor_get(summary, "created"),
        Some(&Cbor::Tag(1, Box::new(Cbor::Float(1_700_000_000.5))))
    );
    assert_eq!(cbor_get(&body, "nextToken"), None);
}

#[tokio::test]
async fn an_empty_cbor_body_is_an_empty_input() {
    let harness = Harness::new();
    let answer = harness.send(signed(cbor_call("ListPipelines", b""))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(harness.calls(), 1);
}

#[tokio::test]
async fn a_declared_error_is_encoded_as_json_with_its_code_and_message() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(json_call("GetPipeline", r#"{"name":"nope"}"#)))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.header("content-type"), Some(JSON_TYPE));
    assert_eq!(
        String::from_utf8(answer.body).unwrap(),
        r#"{"__type":"PipelineNotFoundException","message":"no pipeline nope"}"#
    );
}

/// The CBOR encoding of a text string shorter than 256 bytes.
fn cbor_text(text: &str) -> Vec<u8> {
    let mut out = if text.len() < 24 {
        vec![0x60 + text.len() as u8]
    } else {
        vec![0x78, text.len() as u8]
    };
    out.extend_from_slice(text.as_bytes());
    out
}

#[tokio::test]
async fn a_declared_error_is_encoded_as_cbor_with_its_absolute_shape_id() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(cbor_call(
            "GetPipeline",
            &cbor_body(&json!({"name": "nope"})),
        )))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.header("content-type"), Some("application/cbor"));
    assert_eq!(answer.header("smithy-protocol"), Some("rpc-v2-cbor"));
    let mut golden = vec![0xa2];
    golden.extend(cbor_text("__type"));
    golden.extend(cbor_text(
        "com.amazonaws.codepipeline#PipelineNotFoundException",
    ));
    golden.extend(cbor_text("message"));
    golden.extend(cbor_text("no pipeline nope"));
    assert_eq!(answer.body, golden);
}

#[tokio::test]
async fn an_operation_without_output_answers_an_empty_cbor_body_and_an_empty_json_object() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(cbor_call(
            "DeletePipeline",
            &cbor_body(&json!({"name": "p"})),
        )))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("content-type"), None);
    assert_eq!(answer.header("smithy-protocol"), Some("rpc-v2-cbor"));

    let answer = harness
        .send(signed(json_call("DeletePipeline", r#"{"name":"p"}"#)))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body, b"{}");
    assert_eq!(harness.calls(), 2);
}

#[tokio::test]
async fn a_kept_answer_is_sent_in_the_request_protocol_without_calling_the_operation() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(json_call(
            "ListPipelines",
            r#"{"nextToken":"kept"}"#,
        )))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some(JSON_TYPE));
    assert!(answer.header(REQUEST_ID_HEADER).is_some());
    assert_eq!(answer.json(), serde_json::to_value(kept_page()).unwrap());

    let answer = harness
        .send(signed(cbor_call(
            "ListPipelines",
            &cbor_body(&json!({"nextToken": "kept"})),
        )))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/cbor"));
    assert_eq!(answer.header("smithy-protocol"), Some("rpc-v2-cbor"));
    assert_eq!(
        cbor_get(&answer.cbor(), "nextToken").and_then(Cbor::as_text),
        Some("from the kept answer")
    );
    assert_eq!(harness.service.kept.load(Ordering::SeqCst), 2);
    assert_eq!(harness.calls(), 0);

    // A kept answer is still only for a signed request with a valid input.
    harness
        .send(json_call("ListPipelines", r#"{"nextToken":"kept"}"#))
        .await
        .assert_json_error(400, "MissingAuthenticationTokenException");
    harness
        .send(signed(json_call(
            "ListPipelines",
            r#"{"nextToken":"kept","maxResults":0}"#,
        )))
        .await
        .assert_json_error(400, "ValidationException");
    assert_eq!(harness.service.kept.load(Ordering::SeqCst), 2);
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_panicking_kept_answer_becomes_an_internal_failure() {
    let harness = Harness::new();
    harness
        .send(signed(json_call(
            "ListPipelines",
            r#"{"nextToken":"panic"}"#,
        )))
        .await
        .assert_json_error(500, "InternalFailure");
    // The router keeps serving, the typed way for a request the service keeps nothing for.
    let answer = harness.send(signed(cbor_call("ListPipelines", b""))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(harness.calls(), 1);
}

#[tokio::test]
async fn an_unknown_json_operation_is_rejected_before_authentication() {
    let harness = Harness::new();
    let answer = harness.send(json_call("Frobnicate", "{}")).await;
    answer.assert_json_error(400, "UnknownOperationException");

    let mut other_service = json_call("ListPipelines", "{}");
    other_service.headers_mut().insert(
        "x-amz-target",
        "DynamoDB_20120810.ListTables".parse().unwrap(),
    );
    harness
        .send(other_service)
        .await
        .assert_json_error(400, "UnknownOperationException");

    let mut no_target = json_call("ListPipelines", "{}");
    no_target.headers_mut().remove("x-amz-target");
    harness
        .send(signed(no_target))
        .await
        .assert_json_error(400, "UnknownOperationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn an_unknown_cbor_operation_or_service_is_rejected_in_cbor() {
    let harness = Harness::new();
    harness
        .send(signed(cbor_call("Frobnicate", b"")))
        .await
        .assert_cbor_error(400, "UnknownOperationException");
    let mut other = cbor_call("ListPipelines", b"");
    *other.uri_mut() = "/service/Other_20200101/operation/ListPipelines"
        .parse()
        .unwrap();
    harness
        .send(signed(other))
        .await
        .assert_cbor_error(400, "UnknownOperationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_cbor_request_without_the_smithy_protocol_header_is_rejected() {
    let harness = Harness::new();
    let mut req = cbor_call("ListPipelines", b"");
    req.headers_mut().remove("smithy-protocol");
    let answer = harness.send(signed(req)).await;
    answer.assert_cbor_error(400, "UnknownOperationException");
    let message = cbor_get(&answer.cbor(), "message")
        .and_then(Cbor::as_text)
        .unwrap()
        .to_owned();
    assert!(message.contains("smithy-protocol"), "{message}");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_cbor_request_carrying_a_target_header_is_rejected() {
    let harness = Harness::new();
    let mut req = cbor_call("ListPipelines", b"");
    req.headers_mut().insert(
        "x-amz-target",
        "CodePipeline_20150709.DeletePipeline".parse().unwrap(),
    );
    harness
        .send(signed(req))
        .await
        .assert_cbor_error(400, "UnknownOperationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn an_unsigned_request_is_missing_its_authentication_token() {
    let harness = Harness::new();
    let answer = harness.send(json_call("ListPipelines", "{}")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8(answer.body).unwrap(),
        r#"{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}"#
    );
    harness
        .send(cbor_call("ListPipelines", b""))
        .await
        .assert_cbor_error(400, "MissingAuthenticationTokenException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn bad_signatures_are_rejected_with_aws_codes_and_reach_no_handler() {
    let harness = Harness::new();
    let cases = [
        (
            Signer {
                access_key_id: "AKIDNOBODY".to_owned(),
                ..Signer::default()
            },
            "UnrecognizedClientException",
        ),
        (
            Signer {
                secret: "wrong".to_owned(),
                ..Signer::default()
            },
            "InvalidSignatureException",
        ),
        (
            Signer {
                time: lockgate_model::Clock::now_system(&lockgate_model::SystemClock)
                    - Duration::from_secs(600),
                ..Signer::default()
            },
            "InvalidSignatureException",
        ),
        (
            Signer {
                region: "eu-west-1".to_owned(),
                ..Signer::default()
            },
            "InvalidSignatureException",
        ),
        (
            Signer {
                service: "codebuild".to_owned(),
                ..Signer::default()
            },
            "InvalidSignatureException",
        ),
    ];
    for (signer, code) in cases {
        let json = harness
            .send(signed_with(
                signer.clone(),
                json_call("ListPipelines", "{}"),
            ))
            .await;
        json.assert_json_error(400, code);
        let cbor = harness
            .send(signed_with(signer, cbor_call("ListPipelines", b"")))
            .await;
        cbor.assert_cbor_error(400, code);
    }
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_stale_signature_says_when_it_expired() {
    let harness = Harness::new();
    let signer = Signer {
        time: lockgate_model::Clock::now_system(&lockgate_model::SystemClock)
            - Duration::from_secs(600),
        ..Signer::default()
    };
    let answer = harness
        .send(signed_with(signer, json_call("ListPipelines", "{}")))
        .await;
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Signature expired: "), "{message}");
    assert!(message.ends_with(" - 5 min.)"), "{message}");
}

#[tokio::test]
async fn a_presigned_request_is_accepted() {
    let harness = Harness::new();
    let signer = Signer {
        presign: Some(Duration::from_secs(300)),
        ..Signer::default()
    };
    let answer = harness
        .send(signed_with(signer, cbor_call("ListPipelines", b"")))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(harness.calls(), 1);
}

#[tokio::test]
async fn an_input_that_breaks_a_constraint_is_a_validation_error_before_the_handler() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(json_call("ListPipelines", r#"{"maxResults":0}"#)))
        .await;
    answer.assert_json_error(400, "ValidationException");
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("maxResults"), "{message}");

    harness
        .send(signed(cbor_call("GetPipeline", b"")))
        .await
        .assert_cbor_error(400, "ValidationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_serialization_error() {
    let harness = Harness::new();
    harness
        .send(signed(json_call("ListPipelines", "{not json")))
        .await
        .assert_json_error(400, "SerializationException");
    harness
        .send(signed(cbor_call("ListPipelines", &[0xff, 0x00])))
        .await
        .assert_cbor_error(400, "SerializationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_foreign_content_type_is_unsupported() {
    let harness = Harness::new();
    let mut req = json_call("ListPipelines", "{}");
    req.headers_mut()
        .insert("content-type", "text/xml".parse().unwrap());
    harness
        .send(signed(req))
        .await
        .assert_json_error(415, "SerializationException");
    let mut req = cbor_call("ListPipelines", b"\xa0");
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    harness
        .send(signed(req))
        .await
        .assert_cbor_error(415, "SerializationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_too_large() {
    let harness = Harness::new();
    let big = format!(r#"{{"nextToken":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    harness
        .send(signed(json_call("ListPipelines", &big)))
        .await
        .assert_json_error(413, "SerializationException");
    harness
        .send(signed(cbor_call("ListPipelines", big.as_bytes())))
        .await
        .assert_cbor_error(413, "SerializationException");
    assert_eq!(harness.calls(), 0);
}

#[tokio::test]
async fn an_error_the_operation_does_not_declare_becomes_an_internal_failure() {
    let harness = Harness::new();
    let answer = harness
        .send(signed(json_call("GetPipelineState", r#"{"name":"p"}"#)))
        .await;
    answer.assert_json_error(500, "InternalFailure");
    assert!(!String::from_utf8_lossy(&answer.body).contains("internal detail"));
    assert_eq!(harness.calls(), 1);
}

#[tokio::test]
async fn a_panicking_handler_becomes_an_internal_failure() {
    let harness = Harness::new();
    harness
        .send(signed(cbor_call(
            "GetJobDetails",
            &cbor_body(&json!({"jobId": "11111111-2222-3333-4444-555555555555"})),
        )))
        .await
        .assert_cbor_error(500, "InternalFailure");
    // The router keeps serving.
    let answer = harness.send(signed(cbor_call("ListPipelines", b""))).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn an_operation_the_service_does_not_implement_is_unknown() {
    let harness = Harness::new();
    harness
        .send(signed(json_call("ListWebhooks", "{}")))
        .await
        .assert_json_error(400, "UnknownOperationException");
}

#[tokio::test]
async fn a_method_other_than_post_is_not_allowed_on_the_cbor_path() {
    let harness = Harness::new();
    let mut req = cbor_call("ListPipelines", b"");
    *req.method_mut() = http::Method::GET;
    harness
        .send(signed(req))
        .await
        .assert_cbor_error(405, "UnknownOperationException");
}

#[tokio::test]
async fn every_response_carries_a_fresh_uuid_request_id() {
    let harness = Harness::new();
    let answers = [
        harness.send(signed(json_call("ListPipelines", "{}"))).await,
        harness.send(json_call("ListPipelines", "{}")).await,
        harness.send(signed(cbor_call("ListPipelines", b""))).await,
        harness.send(cbor_call("Frobnicate", b"")).await,
    ];
    let mut ids = Vec::new();
    for answer in &answers {
        let id = answer
            .header("x-amzn-requestid")
            .unwrap_or_else(|| panic!("no request id: {answer:?}"));
        let uuid = Uuid::parse_str(id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 4);
        ids.push(id.to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), answers.len());
}

#[tokio::test]
async fn a_nested_router_verifies_the_path_the_client_signed() {
    let service = Arc::new(Pipelines::default());
    let credentials = StaticCredentials::new().with_key(
        ACCESS_KEY_ID,
        SECRET,
        Caller::new("alice", "123456789012"),
    );
    let app = Router::new().nest(
        "/api",
        router(
            Arc::clone(&service),
            Arc::new(credentials),
            ApiConfig::default(),
        ),
    );
    let mut req = cbor_call("ListPipelines", b"");
    *req.uri_mut() = format!("/api{CBOR_PATH_PREFIX}ListPipelines")
        .parse()
        .unwrap();
    let response = app.oneshot(signed(req).map(Body::from)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(service.calls.load(Ordering::SeqCst), 1);
}

/// A log sink shared between the subscriber and the test.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The process-wide log capture. A subscriber set per test (`set_default`) raced with the
/// other tests of this binary over tracing's cached per-callsite interest and sometimes saw no
/// event at all; one global subscriber, installed once, sees every event. Tests pick their own
/// lines out by request id.
fn captured_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a global subscriber");
        logs
    })
    .clone()
}

#[tokio::test]
async fn each_request_is_logged_once_with_its_id_and_caller_but_never_its_signature() {
    let logs = captured_logs();

    let harness = Harness::new();
    let answer = harness.send(signed(json_call("ListPipelines", "{}"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let request_id = answer.header("x-amzn-requestid").unwrap().to_owned();

    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("request served") && l.contains(&request_id))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    for expected in [
        "operation=\"ListPipelines\"",
        "status=200",
        &request_id,
        ALICE,
        "latency_ms=",
        "protocol=\"awsJson1_1\"",
    ] {
        assert!(line.contains(expected), "missing {expected}: {line}");
    }
    for secret in [SECRET, "AWS4-HMAC-SHA256", "Signature=", ACCESS_KEY_ID] {
        assert!(!text.contains(secret), "logged {secret}: {text}");
    }
}

/// A request body whose bytes never arrive, like a client that sent its headers and stalled.
struct StalledBody;

impl http_body::Body for StalledBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// `request`'s head with a declared 2 MiB body that never comes.
fn with_stalled_body(request: http::Request<Vec<u8>>) -> http::Request<Body> {
    let (mut parts, _) = request.into_parts();
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(MAX_BODY_BYTES));
    http::Request::from_parts(parts, Body::new(StalledBody))
}

#[tokio::test]
async fn unsigned_and_unknown_key_requests_are_answered_without_waiting_for_their_body() {
    let harness = Harness::new();
    let unknown_key = Signer {
        access_key_id: "AKIDNOBODY".to_owned(),
        ..Signer::default()
    };
    let cases = [
        (
            json_call("ListPipelines", ""),
            "MissingAuthenticationTokenException",
        ),
        (
            signed_with(unknown_key, json_call("ListPipelines", "")),
            "UnrecognizedClientException",
        ),
    ];
    for (request, code) in cases {
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            harness.app.clone().oneshot(with_stalled_body(request)),
        )
        .await
        .expect("answered while the body is still missing")
        .expect("the router is infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["__type"], code);
    }
    assert_eq!(harness.calls(), 0);
}

/// GetPipeline for `Victim`, signed without `X-Amz-Target`, then sent naming DeletePipeline.
fn delete_disguised_as_get(signer: Signer) -> http::Request<Vec<u8>> {
    let mut request = request("/", &[("content-type", JSON_TYPE)], br#"{"name":"Victim"}"#);
    signer.sign(&mut request);
    request.headers_mut().insert(
        "x-amz-target",
        HeaderValue::from_static("CodePipeline_20150709.DeletePipeline"),
    );
    request
}

#[tokio::test]
async fn an_operation_swapped_into_an_unsigned_target_header_is_refused() {
    let harness = Harness::new();
    let answer = harness
        .send(delete_disguised_as_get(Signer::default()))
        .await;
    answer.assert_json_error(400, "InvalidSignatureException");
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("'x-amz-target'"), "{message}");
    let presigned = Signer {
        presign: Some(Duration::from_secs(300)),
        ..Signer::default()
    };
    harness
        .send(delete_disguised_as_get(presigned))
        .await
        .assert_json_error(400, "InvalidSignatureException");
    assert_eq!(harness.calls(), 0, "DeletePipeline must not run");
}
