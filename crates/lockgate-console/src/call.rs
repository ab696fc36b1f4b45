//! Input checks for the operations the console calls: the same model constraints the API applies
//! (`check_input`) before the engine sees the input, so a console change is refused with the
//! same message an SDK call with the same values would get.

use lockgate_shapes::{Operation, ServiceError};
use serde::Serialize;

/// Checks `input` against `op`'s input shape in the service model.
pub fn checked<T: Serialize>(op: Operation, input: T) -> Result<T, ServiceError> {
    let value = serde_json::to_value(&input)
        .map_err(|e| ServiceError::validation(format!("invalid input: {e}")))?;
    lockgate_shapes::validate::check_input(op, &value)?;
    Ok(input)
}
