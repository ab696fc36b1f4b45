//! Pagination tokens: opaque to clients, a cursor to us.

use lockgate_shapes::{ErrorCode, ServiceError};

const PREFIX: &str = "lg1.";

/// The error for a token we did not issue.
pub fn invalid() -> ServiceError {
    ServiceError::new(
        ErrorCode::InvalidNextTokenException,
        "The next token is not valid".to_string(),
    )
}

/// Wraps a cursor into a next token.
pub fn encode(cursor: &str) -> String {
    format!("{PREFIX}{}", hex::encode(cursor))
}

/// Unwraps a next token into its cursor; a token we did not issue is InvalidNextTokenException.
pub fn decode(token: Option<&str>) -> Result<Option<String>, ServiceError> {
    let Some(token) = token else { return Ok(None) };
    let raw = token.strip_prefix(PREFIX).ok_or_else(invalid)?;
    let bytes = hex::decode(raw).map_err(|_| invalid())?;
    String::from_utf8(bytes).map(Some).map_err(|_| invalid())
}

/// The page size: the request's `maxResults` or `default`, at most `max`.
pub fn max_results(requested: Option<i32>, default: usize, max: usize) -> usize {
    requested
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(default)
        .clamp(1, max)
}
