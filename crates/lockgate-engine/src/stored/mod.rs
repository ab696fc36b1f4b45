//! The stored format: the one place the engine's records are turned into store bodies and back.
//!
//! Every body written today carries `"format": 2` beside its fields, and reading dispatches on
//! it: a body without one is format 1 (what the engine wrote before formats were numbered),
//! and a body from a newer format is refused as corrupt rather than half-read. What a format
//! holds is frozen by the golden files in `tests/fixtures/stored-v2` (the pure tests encode a
//! fixed state and compare byte for byte), so a change to what goes on disk, including one that
//! comes from regenerating `lockgate-shapes`, fails a test and has to be made as a new format.
//!
//! One submodule per record kind: `pipeline` (the pipeline entry and its declaration versions),
//! `execution`, `job` (where a job lives, and jobs stored before executions owned them),
//! `action_type` and `tags`.

pub mod action_type;
pub mod execution;
pub mod job;
pub mod pipeline;
pub mod tags;

use lockgate_store::{Record, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The format every body is written in.
pub const FORMAT: u64 = 2;

/// The field holding a body's format.
const FORMAT_FIELD: &str = "format";

/// The formats a body can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Written before formats were numbered: the record's serde JSON, nothing else.
    V1,
    /// `{"format": 2, ...}` with the record's fields beside it.
    V2,
}

/// The fields of `value` with today's format added. Our records serialise to objects.
fn sealed(value: &impl Serialize) -> Value {
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    let mut fields = match serde_json::to_value(value) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    fields.insert(FORMAT_FIELD.to_string(), Value::from(FORMAT));
    Value::Object(fields)
}

/// A body of today's format holding `value` under `field`, for records that are not objects
/// of their own (a declaration version, a list of tags).
fn sealed_under(field: &str, value: &impl Serialize) -> Value {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    Value::Object(Map::from_iter([
        (FORMAT_FIELD.to_string(), Value::from(FORMAT)),
        (field.to_string(), value),
    ]))
}

/// The record's format, and its body without the format field.
fn opened(r: &Record) -> Result<(Format, Value), StoreError> {
    let Some(format) = r.body.get(FORMAT_FIELD) else {
        return Ok((Format::V1, r.body.clone()));
    };
    match format.as_u64() {
        Some(2) => {
            let mut body = r.body.clone();
            if let Value::Object(fields) = &mut body {
                fields.remove(FORMAT_FIELD);
            }
            Ok((Format::V2, body))
        }
        _ => Err(corrupt(
            r,
            format!("stored in format {format}; this build reads formats 1 to {FORMAT}"),
        )),
    }
}

/// `body` read as a `T`.
fn parse<T: DeserializeOwned>(r: &Record, body: Value) -> Result<T, StoreError> {
    serde_json::from_value(body).map_err(|e| corrupt(r, e.to_string()))
}

/// The field `field` of a body that holds its value under one field.
fn take(r: &Record, mut body: Value, field: &str) -> Result<Value, StoreError> {
    body.get_mut(field)
        .map(Value::take)
        .ok_or_else(|| corrupt(r, format!("no `{field}` field")))
}

fn corrupt(r: &Record, reason: String) -> StoreError {
    StoreError::Corrupt {
        collection: r.collection.as_str(),
        key: r.key.clone(),
        reason,
    }
}
