//! Conversion between the RPC v2 CBOR wire format and the JSON values the rest of the API works on.
//!
//! Requests are decoded into [`ciborium::Value`] and converted to JSON with [`cbor_to_json`], so
//! validation and typed decoding are the same for both protocols. Responses go the other way with
//! [`json_to_cbor`], which follows the model so that timestamps become CBOR tag 1 (epoch seconds) as
//! Smithy's RPC v2 CBOR protocol requires.

use base64::Engine as _;
use ciborium::Value as Cbor;
use serde_json::Value as Json;

use crate::schema::{self, ShapeKind};
use crate::{ErrorCode, Operation, ServiceError};

/// The CBOR tag of an epoch-based date/time (RFC 8949 §3.4.2).
const EPOCH_TAG: u64 = 1;

/// Converts a decoded CBOR value to JSON.
///
/// Maps need text keys; tag 1 (and any other tag) yields its inner value, so a timestamp becomes its
/// number of epoch seconds; byte strings become base64 strings; integers and floats keep their kind.
pub fn cbor_to_json(value: Cbor) -> Result<Json, ServiceError> {
    Ok(match value {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(n) = i64::try_from(i) {
                Json::from(n)
            } else if let Ok(n) = u64::try_from(i) {
                Json::from(n)
            } else {
                return Err(ServiceError::serialization(format!(
                    "integer {i} is out of range"
                )));
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| ServiceError::serialization(format!("number {f} is not finite")))?,
        Cbor::Text(s) => Json::String(s),
        Cbor::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Cbor::Tag(_, inner) => cbor_to_json(*inner)?,
        Cbor::Array(items) => Json::Array(
            items
                .into_iter()
                .map(cbor_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(entries) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let Cbor::Text(key) = key else {
                    return Err(ServiceError::serialization("map keys must be text strings"));
                };
                object.insert(key, cbor_to_json(value)?);
            }
            Json::Object(object)
        }
        _ => return Err(ServiceError::serialization("unsupported CBOR value")),
    })
}

/// Decodes an RPC v2 CBOR request body into JSON; an empty body counts as `{}`.
pub fn decode_body(body: &[u8]) -> Result<Json, ServiceError> {
    if body.is_empty() {
        return Ok(Json::Object(serde_json::Map::new()));
    }
    let value: Cbor = ciborium::de::from_reader(body)
        .map_err(|e| ServiceError::serialization(format!("invalid CBOR body: {e}")))?;
    cbor_to_json(value)
}

/// Converts a JSON value of the named shape to CBOR, guided by the model: members whose shape is a
/// timestamp become `Tag(1, seconds)`, blobs become byte strings, everything else maps naturally.
///
/// Members the model does not know are converted naturally, so the function never fails.
pub fn json_to_cbor(shape: &str, value: &Json) -> Cbor {
    let model = schema::model();
    let Some(shape) = model.shape(shape) else {
        return natural(value);
    };
    match (shape.kind, value) {
        (ShapeKind::Timestamp, Json::Number(_)) => Cbor::Tag(EPOCH_TAG, Box::new(natural(value))),
        (ShapeKind::Blob, Json::String(s)) => {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(bytes) => Cbor::Bytes(bytes),
                Err(_) => Cbor::Text(s.clone()),
            }
        }
        (ShapeKind::Structure, Json::Object(members)) => Cbor::Map(
            members
                .iter()
                .map(|(name, v)| {
                    let v = match shape.member(name) {
                        Some(member) => json_to_cbor(&member.target, v),
                        None => natural(v),
                    };
                    (Cbor::Text(name.clone()), v)
                })
                .collect(),
        ),
        (ShapeKind::List, Json::Array(items)) => Cbor::Array(
            items
                .iter()
                .map(|item| match &shape.list_member {
                    Some(member) => json_to_cbor(member, item),
                    None => natural(item),
                })
                .collect(),
        ),
        (ShapeKind::Map, Json::Object(entries)) => Cbor::Map(
            entries
                .iter()
                .map(|(key, v)| {
                    let v = match &shape.map_value {
                        Some(value_shape) => json_to_cbor(value_shape, v),
                        None => natural(v),
                    };
                    (Cbor::Text(key.clone()), v)
                })
                .collect(),
        ),
        _ => natural(value),
    }
}

/// Converts JSON to CBOR without a shape: integers stay integers, other numbers become floats.
fn natural(value: &Json) -> Cbor {
    match value {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(items) => Cbor::Array(items.iter().map(natural).collect()),
        Json::Object(members) => Cbor::Map(
            members
                .iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), natural(v)))
                .collect(),
        ),
    }
}

/// Serializes a CBOR value to bytes.
fn to_bytes(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a `Vec` cannot fail, and every `ciborium::Value` is serializable.
    ciborium::ser::into_writer(value, &mut out).expect("serializing CBOR into memory");
    out
}

/// Encodes the JSON output of `op` as an RPC v2 CBOR body; operations without output answer `{}`.
pub fn encode_output(op: Operation, output: &Json) -> Vec<u8> {
    let value = match (op.output_shape(), output) {
        (_, Json::Null) | (None, _) => Cbor::Map(Vec::new()),
        (Some(shape), output) => json_to_cbor(shape, output),
    };
    to_bytes(&value)
}

/// Encodes an error body: the map `{"__type": code, "message": message}`.
pub fn encode_error(code: ErrorCode, message: &str) -> Vec<u8> {
    to_bytes(&Cbor::Map(vec![
        (
            Cbor::Text("__type".to_owned()),
            Cbor::Text(code.as_str().to_owned()),
        ),
        (
            Cbor::Text("message".to_owned()),
            Cbor::Text(message.to_owned()),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{GetPipelineOutput, Timestamp};

    #[test]
    fn timestamps_become_tag_1_and_come_back_as_epoch_seconds() {
        let output = GetPipelineOutput {
            metadata: Some(crate::PipelineMetadata {
                pipeline_arn: Some("arn:aws:codepipeline:us-east-1:123456789012:p".to_owned()),
                created: Some(Timestamp::from_millis(1_700_000_000_123)),
                updated: Some(Timestamp::from_millis(1_700_000_001_000)),
                polling_disabled_at: None,
            }),
            pipeline: None,
        };
        let json = serde_json::to_value(&output).unwrap();
        let bytes = encode_output(Operation::GetPipeline, &json);
        let cbor: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let metadata = cbor.as_map().unwrap()[0].1.as_map().unwrap();
        let created = metadata
            .iter()
            .find(|(k, _)| k.as_text() == Some("created"))
            .unwrap();
        assert_eq!(
            created.1,
            Cbor::Tag(1, Box::new(Cbor::Float(1_700_000_000.123)))
        );
        let back = cbor_to_json(cbor).unwrap();
        let decoded: GetPipelineOutput = serde_json::from_value(back).unwrap();
        assert_eq!(decoded, output);
    }

    #[test]
    fn integers_stay_integers_and_unknown_members_convert_naturally() {
        let cbor = json_to_cbor(
            "ListPipelinesInput",
            &json!({"maxResults": 10, "extra": [1.5, true]}),
        );
        let back = cbor_to_json(cbor).unwrap();
        assert_eq!(back, json!({"maxResults": 10, "extra": [1.5, true]}));
    }

    #[test]
    fn request_bodies_decode_with_tags_and_byte_strings() {
        let body = to_bytes(&Cbor::Map(vec![
            (
                Cbor::Text("at".into()),
                Cbor::Tag(1, Box::new(Cbor::Integer(1_700_000_000.into()))),
            ),
            (Cbor::Text("blob".into()), Cbor::Bytes(b"hi".to_vec())),
        ]));
        assert_eq!(
            decode_body(&body).unwrap(),
            json!({"at": 1_700_000_000, "blob": "aGk="})
        );
        assert_eq!(decode_body(&[]).unwrap(), json!({}));
        assert_eq!(
            decode_body(&[0xff]).unwrap_err().code,
            ErrorCode::SerializationException
        );
    }

    #[test]
    fn errors_encode_type_and_message() {
        let bytes = encode_error(ErrorCode::ValidationException, "bad");
        let back = cbor_to_json(ciborium::de::from_reader(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(
            back,
            json!({"__type": "ValidationException", "message": "bad"})
        );
    }
}
