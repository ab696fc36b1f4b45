//! `Pipeline` records (a pipeline's entry: its current declaration, transitions, sequence
//! counter) and `PipelineVersion` records (each declaration version executions ran).

use lockgate_shapes::PipelineDeclaration;
use lockgate_store::{Collection, Record, StoreError};

use super::{opened, parse, read_as, sealed, sealed_under, take, Format};
use crate::state::PipelineEntry;

/// The key of a pipeline's declaration version: the name, then the version padded so that
/// keys sort by version.
pub fn version_key(name: &str, version: i32) -> String {
    format!("{name}/{version:010}")
}

/// The record of a pipeline's entry, keyed by the pipeline's name.
pub fn entry_record(entry: &PipelineEntry) -> Record {
    Record::new(
        Collection::Pipeline,
        entry.declaration.name.clone(),
        sealed(entry),
    )
}

/// A pipeline entry from its record.
pub fn read_entry(r: &Record) -> Result<PipelineEntry, StoreError> {
    // Every format holds the same fields (3 leaves out those at their default).
    read_as(r)
}

/// The record of one declaration version of the pipeline `name`.
pub fn version_record(name: &str, version: i32, decl: &PipelineDeclaration) -> Record {
    Record::new(
        Collection::PipelineVersion,
        version_key(name, version),
        sealed_under("declaration", decl),
    )
    .with_parent(name.to_string())
}

/// A declaration version from its record.
pub fn read_version(r: &Record) -> Result<PipelineDeclaration, StoreError> {
    match opened(r)? {
        // Format 1 stored the declaration itself.
        (Format::V1, body) => parse(r, body),
        (Format::V2 | Format::V3, body) => parse(r, take(r, body, "declaration")?),
    }
}
