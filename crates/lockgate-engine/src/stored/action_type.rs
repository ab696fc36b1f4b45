//! `ActionType` records: custom action types, keyed by `category/owner/provider/version`.

use lockgate_shapes::ActionType;
use lockgate_store::{Collection, Record, StoreError};

use super::{read_as, sealed};
use crate::jobs::action_type_key;

/// The record of a custom action type.
pub fn record(action_type: &ActionType) -> Record {
    Record::new(
        Collection::ActionType,
        action_type_key(&action_type.id),
        sealed(action_type),
    )
}

/// A custom action type from its record.
pub fn read(r: &Record) -> Result<ActionType, StoreError> {
    // Formats 1 and 2 hold the same fields.
    read_as(r)
}
