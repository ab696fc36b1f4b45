//! End-to-end checks of the generated shapes: typed round trips, validation and dispatch.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use lockgate_shapes::{
    dispatch, validate, ApprovalStatus, CodePipelineService, CreatePipelineInput, Encoding,
    ErrorCode, ExecutionMode, GetPipelineStateInput, GetPipelineStateOutput, Operation,
    PipelineType, PutApprovalResultInput, PutApprovalResultOutput, ServiceError, StageRetryMode,
    Timestamp,
};
use serde_json::{json, Value};

/// Runs a future that never waits on I/O, which is all `dispatch` does with the test service below.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn create_pipeline_json() -> Value {
    json!({
        "pipeline": {
            "name": "release-app",
            "roleArn": "arn:aws:iam::123456789012:role/pipeline-role",
            "artifactStore": {"type": "S3", "location": "my-artifact-bucket"},
            "stages": [
                {
                    "name": "Source",
                    "actions": [{
                        "name": "Checkout",
                        "actionTypeId": {
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "CodeStarSourceConnection",
                            "version": "1"
                        },
                        "runOrder": 1,
                        "configuration": {
                            "ConnectionArn": "arn:aws:codestar-connections:us-east-1:123456789012:connection/abc",
                            "FullRepositoryId": "org/app",
                            "BranchName": "main"
                        },
                        "outputArtifacts": [{"name": "SourceOutput"}],
                        "namespace": "SourceVariables"
                    }]
                },
                {
                    "name": "Approve",
                    "actions": [{
                        "name": "ManualApproval",
                        "actionTypeId": {
                            "category": "Approval",
                            "owner": "AWS",
                            "provider": "Manual",
                            "version": "1"
                        },
                        "configuration": {"CustomData": "Please review"}
                    }],
                    "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}
                }
            ],
            "version": 1,
            "executionMode": "QUEUED",
            "pipelineType": "V2",
            "variables": [{"name": "Env", "defaultValue": "prod", "description": "Target environment"}],
            "triggers": [{
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {
                    "sourceActionName": "Checkout",
                    "push": [{"branches": {"includes": ["main"]}}]
                }
            }]
        },
        "tags": [{"key": "team", "value": "platform"}]
    })
}

#[test]
fn a_realistic_create_pipeline_input_round_trips_through_the_typed_struct() {
    let original = create_pipeline_json();
    validate::check_input(Operation::CreatePipeline, &original).unwrap();
    let input: CreatePipelineInput = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(input.pipeline.name, "release-app");
    assert_eq!(input.pipeline.execution_mode, Some(ExecutionMode::Queued));
    assert_eq!(input.pipeline.pipeline_type, Some(PipelineType::V2));
    let on_failure = input.pipeline.stages[1].on_failure.as_ref().unwrap();
    assert_eq!(
        on_failure.retry_configuration.as_ref().unwrap().retry_mode,
        Some(StageRetryMode::FailedActions)
    );
    assert_eq!(serde_json::to_value(&input).unwrap(), original);
}

#[test]
fn enums_expose_their_wire_values() {
    assert_eq!(
        ApprovalStatus::ALL,
        [ApprovalStatus::Approved, ApprovalStatus::Rejected]
    );
    assert_eq!(
        "Rejected".parse::<ApprovalStatus>(),
        Ok(ApprovalStatus::Rejected)
    );
    assert_eq!("rejected".parse::<ApprovalStatus>(), Err(()));
    assert_eq!(StageRetryMode::FailedActions.as_str(), "FAILED_ACTIONS");
}

#[test]
fn operations_and_error_codes_follow_the_model() {
    assert_eq!(
        Operation::from_name("PutApprovalResult"),
        Some(Operation::PutApprovalResult)
    );
    assert_eq!(
        Operation::PutApprovalResult.input_shape(),
        Some("PutApprovalResultInput")
    );
    assert_eq!(Operation::DeletePipeline.output_shape(), None);
    assert!(Operation::PutApprovalResult
        .errors()
        .contains(&ErrorCode::InvalidApprovalTokenException));
    assert_eq!(Operation::ALL.len(), 44);
    assert_eq!(
        ErrorCode::ValidationException.as_str(),
        "ValidationException"
    );
    assert_eq!(ErrorCode::ConflictException.http_status(), 409);
    assert_eq!(ErrorCode::InternalFailure.http_status(), 500);
    assert_eq!(ErrorCode::ServiceUnavailable.http_status(), 503);
    assert_eq!(ErrorCode::PipelineNotFoundException.http_status(), 400);
    assert!(ErrorCode::ThrottlingException.is_common());
    assert!(!ErrorCode::ValidationException.is_common());
}

/// A service that implements two operations and leaves the rest to the defaults.
struct ApprovalsOnly;

#[async_trait::async_trait]
impl CodePipelineService for ApprovalsOnly {
    type Context = String;

    async fn put_approval_result(
        &self,
        ctx: &String,
        input: PutApprovalResultInput,
    ) -> Result<PutApprovalResultOutput, ServiceError> {
        assert_eq!(ctx, "caller");
        assert_eq!(input.result.status, ApprovalStatus::Approved);
        Ok(PutApprovalResultOutput {
            approved_at: Some(Timestamp::from_millis(1_700_000_000_500)),
        })
    }

    async fn get_pipeline_state(
        &self,
        _ctx: &String,
        input: GetPipelineStateInput,
    ) -> Result<GetPipelineStateOutput, ServiceError> {
        Err(ServiceError::new(
            ErrorCode::PipelineNotFoundException,
            format!(
                "Account '123456789012' does not have a pipeline with name '{}'",
                input.name
            ),
        ))
    }
}

#[test]
fn dispatch_decodes_calls_and_encodes() {
    let ctx = "caller".to_owned();
    let input = json!({
        "pipelineName": "p", "stageName": "s", "actionName": "a",
        "result": {"summary": "ok", "status": "Approved"},
        "token": "1a2b3c4d-0000-1111-2222-333344445555"
    });
    let output = block_on(dispatch(
        &ApprovalsOnly,
        &ctx,
        Operation::PutApprovalResult,
        input.clone(),
        Encoding::Json,
    ))
    .unwrap();
    assert_eq!(output.as_ref(), br#"{"approvedAt":1700000000.5}"#);
    let output = block_on(dispatch(
        &ApprovalsOnly,
        &ctx,
        Operation::PutApprovalResult,
        input,
        Encoding::Cbor,
    ))
    .unwrap();
    let cbor: ciborium::Value = ciborium::de::from_reader(output.as_ref()).unwrap();
    assert_eq!(
        cbor,
        ciborium::Value::Map(vec![(
            ciborium::Value::Text("approvedAt".into()),
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Float(1_700_000_000.5)))
        )])
    );
}

#[test]
fn dispatch_answers_an_empty_structure_for_operations_without_output() {
    struct Deletes;
    #[async_trait::async_trait]
    impl CodePipelineService for Deletes {
        type Context = ();
        async fn delete_pipeline(
            &self,
            _ctx: &(),
            _input: lockgate_shapes::DeletePipelineInput,
        ) -> Result<(), ServiceError> {
            Ok(())
        }
    }
    for encoding in [Encoding::Json, Encoding::Cbor] {
        let output = block_on(dispatch(
            &Deletes,
            &(),
            Operation::DeletePipeline,
            json!({"name": "p"}),
            encoding,
        ))
        .unwrap();
        assert_eq!(output, encoding.empty_structure());
    }
}

#[test]
fn dispatch_passes_service_errors_through() {
    let ctx = "caller".to_owned();
    let err = block_on(dispatch(
        &ApprovalsOnly,
        &ctx,
        Operation::GetPipelineState,
        json!({"name": "p"}),
        Encoding::Json,
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::PipelineNotFoundException);
}

#[test]
fn dispatch_answers_unknown_operation_for_unimplemented_methods() {
    let ctx = "caller".to_owned();
    let err = block_on(dispatch(
        &ApprovalsOnly,
        &ctx,
        Operation::DeletePipeline,
        json!({"name": "p"}),
        Encoding::Json,
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownOperationException);
    assert_eq!(err.message, "Lockgate does not implement DeletePipeline");
    assert_eq!(
        err.to_string(),
        "UnknownOperationException: Lockgate does not implement DeletePipeline"
    );
}

#[test]
fn dispatch_reports_a_typed_decode_failure_as_a_serialization_exception() {
    let ctx = "caller".to_owned();
    let err = block_on(dispatch(
        &ApprovalsOnly,
        &ctx,
        Operation::GetPipelineState,
        json!({"name": 5}),
        Encoding::Json,
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SerializationException);
    assert!(err.message.contains("invalid type"), "{}", err.message);
}

#[test]
fn dispatch_works_through_a_trait_object() {
    let svc: &dyn CodePipelineService<Context = String> = &ApprovalsOnly;
    let ctx = "caller".to_owned();
    let err = block_on(dispatch(
        svc,
        &ctx,
        Operation::DeletePipeline,
        Value::Null,
        Encoding::Json,
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SerializationException);
}
