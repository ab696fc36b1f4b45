//! `Tags` records: a resource's tags, keyed by the resource's ARN.

use lockgate_shapes::Tag;
use lockgate_store::{Collection, Record, StoreError};

use super::{opened, parse, sealed_under, take, Format};

/// The record of the tags of the resource `arn`.
pub fn record(arn: &str, tags: &[Tag]) -> Record {
    Record::new(
        Collection::Tags,
        arn.to_string(),
        sealed_under("tags", &tags),
    )
}

/// A resource's tags from their record.
pub fn read(r: &Record) -> Result<Vec<Tag>, StoreError> {
    match opened(r)? {
        // Format 1 stored the list itself.
        (Format::V1, body) => parse(r, body),
        (Format::V2 | Format::V3, body) => parse(r, take(r, body, "tags")?),
    }
}
