//! `ServiceError`: an error code of the model plus a message, as sent to the client.

use crate::{ErrorCode, Operation};

/// An error answered to the client: its `__type` code and human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The error code, sent as `__type`.
    pub code: ErrorCode,
    /// The message, sent as `message`.
    pub message: String,
}

impl ServiceError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
        }
    }

    /// A `ValidationException` with the given message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationException, message)
    }

    /// A `SerializationException` with the given message.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::SerializationException, message)
    }

    /// The answer for an operation the server does not implement: `UnknownOperationException`, the
    /// code AWS uses for operations it does not know, so SDKs report it plainly.
    pub fn not_implemented(op: Operation) -> Self {
        Self::new(
            ErrorCode::UnknownOperationException,
            format!("Lockgate does not implement {}", op.name()),
        )
    }

    /// An opaque `InternalFailure`; the cause belongs in the server log, not in the response.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalFailure,
            "The request processing has failed because of an unknown error.",
        )
    }

    /// The HTTP status code the error is sent with.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ServiceError {}
