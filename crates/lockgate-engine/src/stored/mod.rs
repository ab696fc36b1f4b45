//! The stored format: the one place the engine's records are turned into store bodies and back.
//!
//! Every body written today carries `"format": 3` beside its fields, and reading dispatches on
//! it: a body without one is format 1 (what the engine wrote before formats were numbered),
//! and a body from a newer format is refused as corrupt rather than half-read. What a format
//! holds is frozen by the golden files in `tests/fixtures/stored-v3` (the pure tests encode a
//! fixed state and compare byte for byte), so a change to what goes on disk, including one that
//! comes from regenerating `lockgate-shapes`, fails a test and has to be made as a new format.
//! The golden files of older formats stay, and must read back to the state today's encode.
//!
//! The formats:
//! - 1: the record's serde JSON;
//! - 2: the same fields, with `format` beside them;
//! - 3: as 2, but a field holding its default (`null`, `false`, `0`, an empty list or map) is
//!   left out of execution and pipeline records, and read back as that default. An execution
//!   waiting at its approval went from 2.7 to 2.1 KB, and one whose build job was handed out
//!   from 4.2 KB, past what fits beside other rows in a 4 KiB page, to 3.4 KB.
//!
//! One submodule per record kind: `pipeline` (the pipeline entry and its declaration versions),
//! `execution`, `job` (where a job lives, and jobs stored before executions owned them),
//! `action_type` and `tags`.

pub mod action_type;
pub mod execution;
pub mod job;
pub mod pipeline;
pub mod tags;

use lockgate_store::{Body, Record, StoreError};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format every body is written in.
pub const FORMAT: u64 = 3;

/// The field holding a body's format.
const FORMAT_FIELD: &str = "format";

/// The formats a body can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Written before formats were numbered: the record's serde JSON, nothing else.
    V1,
    /// `{"format": 2, ...}` with the record's fields beside it.
    V2,
    /// `{"format": 3, ...}`: as 2, with fields that hold their default left out.
    V3,
}

/// A body of today's format: `{"format": 3, ...}` with the fields of `value` (our records
/// serialise to objects) beside it, encoded straight to text.
fn sealed(value: &impl Serialize) -> Body {
    #[derive(Serialize)]
    struct Sealed<'a, T> {
        format: u64,
        #[serde(flatten)]
        fields: &'a T,
    }
    seal_with(&Sealed {
        format: FORMAT,
        fields: value,
    })
}

/// A body of today's format holding `value` under `field`, for records that are not objects
/// of their own (a declaration version, a list of tags).
fn sealed_under(field: &'static str, value: &impl Serialize) -> Body {
    struct Under<'a, T> {
        field: &'static str,
        value: &'a T,
    }
    impl<T: Serialize> Serialize for Under<'_, T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry(FORMAT_FIELD, &FORMAT)?;
            map.serialize_entry(self.field, self.value)?;
            map.end()
        }
    }
    seal_with(&Under { field, value })
}

/// `value` encoded. Serialising our own plain data types cannot fail (no maps with non-string
/// keys); if a future type could, the record says so instead of silently storing less.
fn seal_with(value: &impl Serialize) -> Body {
    Body::encode(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a stored record could not be encoded");
        Body::from(serde_json::json!({ "format": FORMAT, "unencodable": e.to_string() }))
    })
}

/// The format a body was written in. Only the `format` field of an object is built; serde
/// skips the rest of the text. A body that is not an object (format 1 stored some records as
/// arrays) has no format field.
fn format_of(r: &Record) -> Result<Format, StoreError> {
    let Probe(format) = r.body.decode().map_err(|e| corrupt(r, e.to_string()))?;
    match format {
        None => Ok(Format::V1),
        Some(format) => match format.as_u64() {
            Some(2) => Ok(Format::V2),
            Some(3) => Ok(Format::V3),
            _ => Err(corrupt(
                r,
                format!("stored in format {format}; this build reads formats 1 to {FORMAT}"),
            )),
        },
    }
}

/// The `format` field of a body, if it is an object that has one (an array has none; anything
/// else is not a stored record, and refused).
struct Probe(Option<Value>);

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Probe, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Probe;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a stored body")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Probe, A::Error> {
                let mut format = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == FORMAT_FIELD {
                        format = Some(map.next_value::<Value>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Probe(format))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Probe, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Probe(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The record's body read as a `T`, for records whose formats hold the same fields (2 and 3 add
/// `format`, which `T` does not have and serde skips; 3 leaves out fields holding their default,
/// which `T` fills in), decoded straight from the text.
fn read_as<T: DeserializeOwned>(r: &Record) -> Result<T, StoreError> {
    format_of(r)?;
    r.body.decode().map_err(|e| corrupt(r, e.to_string()))
}

/// The record's format, and its body without the format field, for readers that look at the
/// body before choosing a type.
fn opened(r: &Record) -> Result<(Format, Value), StoreError> {
    let format = format_of(r)?;
    let mut body = r.body.value();
    if let Value::Object(fields) = &mut body {
        fields.remove(FORMAT_FIELD);
    }
    Ok((format, body))
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
