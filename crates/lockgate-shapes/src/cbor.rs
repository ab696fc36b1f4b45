//! Conversion between the RPC v2 CBOR wire format and the JSON values the rest of the API works on.
//!
//! Requests are decoded into [`ciborium::Value`] and converted to JSON with [`decode_input`], which
//! follows the operation's input shape (a byte string is only accepted where the model says blob),
//! so validation and typed decoding are the same for both protocols. Malformed bodies are
//! answered in words (`SerializationException`), never with the decoder's debug text. Responses are
//! encoded straight from the typed output ([`crate::Encoding`]); [`json_to_cbor`] goes the other
//! way by the model (timestamps become CBOR tag 1, epoch seconds, as Smithy's RPC v2 CBOR protocol
//! requires), and tests hold the direct encoding to it.

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
                    "The CBOR integer {i} is out of range: integers must fit in 64 bits."
                )));
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| {
                ServiceError::serialization(format!(
                    "The CBOR number {f} is not finite; JSON and the model have no such number."
                ))
            })?,
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
                    return Err(ServiceError::serialization(
                        "CBOR map keys must be text strings.",
                    ));
                };
                object.insert(key, cbor_to_json(value)?);
            }
            Json::Object(object)
        }
        _ => return Err(ServiceError::serialization(
            "The CBOR body holds a simple value (such as undefined) that no shape of the model \
                 can carry.",
        )),
    })
}

/// Decodes an RPC v2 CBOR request body into JSON without a shape; an empty body counts as `{}`.
pub fn decode_body(body: &[u8]) -> Result<Json, ServiceError> {
    if body.is_empty() {
        return Ok(Json::Object(serde_json::Map::new()));
    }
    cbor_to_json(parse(body)?)
}

/// Decodes the RPC v2 CBOR request body of `op` into JSON, following its input shape: a byte
/// string is accepted only where the model says blob (it becomes base64, as in awsJson1.1), and
/// refused where it says string or anything else. Members the model does not know convert as in
/// [`cbor_to_json`]. An empty body counts as `{}`.
pub fn decode_input(op: Operation, body: &[u8]) -> Result<Json, ServiceError> {
    if body.is_empty() {
        return Ok(Json::Object(serde_json::Map::new()));
    }
    let value = parse(body)?;
    let model = schema::model();
    let shape = op.input_shape().and_then(|name| model.shape(name));
    guided(value, shape, &mut String::new())
}

/// Parses exactly one CBOR value from `body`, with the reason in words when it is not one.
fn parse(body: &[u8]) -> Result<Cbor, ServiceError> {
    use ciborium::de::Error;
    let mut rest = body;
    let value: Cbor = ciborium::de::from_reader(&mut rest).map_err(|e| {
        ServiceError::serialization(match e {
            // Reading from memory fails only when the bytes run out.
            Error::Io(_) => "The CBOR body ends before the value is complete.".to_owned(),
            Error::Syntax(offset) | Error::Semantic(Some(offset), _) => {
                format!("Malformed CBOR at byte {offset}.")
            }
            Error::Semantic(None, _) => "The CBOR body is not a well-formed data item.".to_owned(),
            Error::RecursionLimitExceeded => {
                "The CBOR body is nested too deeply to be a CodePipeline input.".to_owned()
            }
        })
    })?;
    if !rest.is_empty() {
        return Err(ServiceError::serialization(format!(
            "The CBOR body has {} bytes after its value; a request body is exactly one value.",
            rest.len()
        )));
    }
    Ok(value)
}

/// Converts `value` to JSON as a value of `shape` (`None`: a member the model does not know),
/// `path` naming where it is for error messages.
fn guided(
    value: Cbor,
    shape: Option<&schema::Shape>,
    path: &mut String,
) -> Result<Json, ServiceError> {
    let model = schema::model();
    let Some(shape) = shape else {
        return cbor_to_json(value);
    };
    match value {
        Cbor::Bytes(_) if shape.kind != ShapeKind::Blob => {
            Err(ServiceError::serialization(format!(
                "Expected {} at '{}' but the CBOR body has a byte string there; send a text string.",
                kind_name(shape.kind),
                if path.is_empty() { "the top level" } else { path.as_str() }
            )))
        }
        Cbor::Tag(_, inner) => guided(*inner, Some(shape), path),
        Cbor::Array(items) => {
            let member = shape.list_member.as_deref().and_then(|m| model.shape(m));
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                out.push(guided(item, member, path)?);
                path.truncate(len);
            }
            Ok(Json::Array(out))
        }
        Cbor::Map(entries) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let Cbor::Text(key) = key else {
                    return Err(ServiceError::serialization(
                        "CBOR map keys must be text strings.",
                    ));
                };
                let target = match shape.kind {
                    ShapeKind::Structure => shape.member(&key).map(|m| m.target.as_str()),
                    ShapeKind::Map => shape.map_value.as_deref(),
                    _ => None,
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                let value = guided(value, target.and_then(|t| model.shape(t)), path)?;
                path.truncate(len);
                object.insert(key, value);
            }
            Ok(Json::Object(object))
        }
        other => cbor_to_json(other),
    }
}

/// The model's word for a kind of shape, for messages.
fn kind_name(kind: ShapeKind) -> &'static str {
    match kind {
        ShapeKind::Structure => "a structure",
        ShapeKind::String => "a string",
        ShapeKind::Integer | ShapeKind::Long => "an integer",
        ShapeKind::Boolean => "a boolean",
        ShapeKind::Timestamp => "a timestamp",
        ShapeKind::List => "a list",
        ShapeKind::Map => "a map",
        ShapeKind::Blob => "a blob",
        ShapeKind::Float | ShapeKind::Double => "a number",
    }
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
        let bytes = to_bytes(&json_to_cbor("GetPipelineOutput", &json));
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
    fn malformed_bodies_are_explained_in_words_not_decoder_debug_text() {
        let cases: [(&[u8], &str); 4] = [
            // A map announcing one entry whose text key is cut short.
            (
                &[0xa1, 0x64, b'n', b'a'],
                "The CBOR body ends before the value is complete.",
            ),
            // 0x1c is a reserved additional-information value.
            (&[0xa1, 0x1c], "Malformed CBOR at byte 1."),
            (&[0xff], "The CBOR body is not a well-formed data item."),
            (
                &[0xa0, 0x01, 0x02],
                "The CBOR body has 2 bytes after its value; a request body is exactly one value.",
            ),
        ];
        for (body, message) in cases {
            let error = decode_input(Operation::ListPipelines, body).unwrap_err();
            assert_eq!(error.code, ErrorCode::SerializationException, "{body:?}");
            assert_eq!(error.message, message, "{body:?}");
        }
    }

    #[test]
    fn a_byte_string_where_the_model_says_string_is_refused() {
        let body = to_bytes(&Cbor::Map(vec![(
            Cbor::Text("name".into()),
            Cbor::Bytes(b"Victim".to_vec()),
        )]));
        let error = decode_input(Operation::GetPipeline, &body).unwrap_err();
        assert_eq!(error.code, ErrorCode::SerializationException);
        assert_eq!(
            error.message,
            "Expected a string at 'name' but the CBOR body has a byte string there; send a text \
             string."
        );
        let nested = to_bytes(&Cbor::Map(vec![(
            Cbor::Text("tags".into()),
            Cbor::Array(vec![Cbor::Map(vec![
                (Cbor::Text("key".into()), Cbor::Text("team".into())),
                (Cbor::Text("value".into()), Cbor::Bytes(b"x".to_vec())),
            ])]),
        )]));
        let error = decode_input(Operation::TagResource, &nested).unwrap_err();
        assert!(
            error.message.contains("'tags[0].value'"),
            "{}",
            error.message
        );
        let text = to_bytes(&Cbor::Map(vec![(
            Cbor::Text("name".into()),
            Cbor::Text("Victim".into()),
        )]));
        assert_eq!(
            decode_input(Operation::GetPipeline, &text).unwrap(),
            json!({"name": "Victim"})
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
