//! Errors as they leave the API: one model [`ErrorCode`] plus a message and an HTTP status, and the
//! only two conversions into them, from an authentication failure and from what a handler returned.
//!
//! The status comes from the model's one error table ([`ErrorCode::http_status`]); the transport
//! overrides it only where HTTP has a more precise word (413 for an oversized body, 415 for a
//! foreign content type, 405 for a method other than POST).

use http::StatusCode;
use lockgate_shapes::{ErrorCode, Operation, ServiceError};

use crate::sigv4::AuthError;

/// An error answered to the client, in either protocol's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The `__type` of the error body.
    pub code: ErrorCode,
    /// The `message` of the error body.
    pub message: String,
    /// The HTTP status the error is sent with.
    pub status: StatusCode,
}

impl ApiError {
    /// An error with the status the model's table gives `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status: status_of(code),
        }
    }

    /// The same error sent with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A failure of the wire layer itself (routing, decoding, validation), passed through as is.
    pub fn from_protocol(error: ServiceError) -> Self {
        ApiError::new(error.code, error.message)
    }

    /// The answer for a request whose signature did not verify.
    pub fn from_auth(error: &AuthError) -> Self {
        let code = match error {
            AuthError::MissingAuthenticationToken => ErrorCode::MissingAuthenticationTokenException,
            AuthError::IncompleteSignature(_) => ErrorCode::IncompleteSignatureException,
            AuthError::UnrecognizedClient => ErrorCode::UnrecognizedClientException,
            AuthError::InvalidSignature(_) => ErrorCode::InvalidSignatureException,
        };
        ApiError::new(code, error.to_string())
    }

    /// The answer for an error a handler of `op` returned. A code the operation does not declare,
    /// and that is not one every operation may return, would surprise every SDK that generated its
    /// error types from the model; it becomes an opaque `InternalFailure` and the real code is
    /// logged for the operator.
    pub fn from_handler(op: Operation, error: ServiceError) -> Self {
        if error.code.is_common() || op.errors().contains(&error.code) {
            return ApiError::new(error.code, error.message);
        }
        tracing::error!(
            operation = op.name(),
            code = error.code.as_str(),
            message = %error.message,
            "handler returned an error code its operation does not declare; answering InternalFailure"
        );
        Self::internal()
    }

    /// The opaque `InternalFailure`, for a failure whose cause belongs in the log only.
    pub fn internal() -> Self {
        let error = ServiceError::internal();
        ApiError::new(error.code, error.message)
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    // The table only holds valid statuses; the fallback keeps a bad entry from becoming a panic.
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_error_passes_through_with_its_status() {
        let error = ApiError::from_handler(
            Operation::GetPipeline,
            ServiceError::new(ErrorCode::PipelineNotFoundException, "no such pipeline"),
        );
        assert_eq!(error.code, ErrorCode::PipelineNotFoundException);
        assert_eq!(error.message, "no such pipeline");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_common_error_passes_through_for_any_operation() {
        let error = ApiError::from_handler(
            Operation::ListPipelines,
            ServiceError::new(ErrorCode::ThrottlingException, "slow down"),
        );
        assert_eq!(error.code, ErrorCode::ThrottlingException);
    }

    #[test]
    fn service_unavailable_passes_through_with_its_message_and_503_for_any_operation() {
        // The engine answers a full disk this way; no operation declares it, every one may send it.
        let error = ApiError::from_handler(
            Operation::PutApprovalResult,
            ServiceError::new(ErrorCode::ServiceUnavailable, "the disk is full"),
        );
        assert_eq!(error.code, ErrorCode::ServiceUnavailable);
        assert_eq!(error.message, "the disk is full");
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn an_undeclared_error_becomes_an_opaque_internal_failure() {
        let error = ApiError::from_handler(
            Operation::ListPipelines,
            ServiceError::new(ErrorCode::JobNotFoundException, "secret detail"),
        );
        assert_eq!(error.code, ErrorCode::InternalFailure);
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message.contains("secret detail"));
    }

    #[test]
    fn every_authentication_failure_maps_to_its_aws_code() {
        for auth in [
            AuthError::MissingAuthenticationToken,
            AuthError::IncompleteSignature("x".to_owned()),
            AuthError::UnrecognizedClient,
            AuthError::InvalidSignature("x".to_owned()),
        ] {
            let error = ApiError::from_auth(&auth);
            assert_eq!(error.code.as_str(), auth.code());
            assert_eq!(error.message, auth.to_string());
        }
    }
}
