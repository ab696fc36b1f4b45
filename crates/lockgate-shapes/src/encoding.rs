//! Output bodies in both wire protocols, encoded straight from the typed output, and the hook by
//! which a service answers with a body it keeps already encoded.
//!
//! [`Encoding::encode`] serialises a typed output directly to bytes: JSON for awsJson1.1, CBOR
//! for RPC v2 CBOR, with no `serde_json::Value` (or `ciborium::Value`) tree in between. The CBOR
//! encoding means what the model-guided [`crate::cbor::json_to_cbor`] says: [`crate::Timestamp`]
//! serialises as tag 1 (epoch seconds) in CBOR, and the model has no blob in any output (a test
//! walks the model to keep it so), which is everything the model changes about CBOR.
//!
//! [`EncodedAnswers`] lets a service keep the encoded answer of a read it serves often (the
//! engine keeps GetPipelineState per pipeline and protocol, until the next commit) and hand the
//! bytes to the API, which otherwise calls [`crate::dispatch`]. It lives here, beside the
//! generated trait, because the API must not know which answers a service keeps or why.

use bytes::Bytes;
use serde::Serialize;

use crate::{CodePipelineService, Operation, ServiceError};

/// How an output body is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON, as awsJson1.1 answers.
    Json,
    /// CBOR, as Smithy RPC v2 CBOR answers: timestamps are tag 1 of epoch seconds.
    Cbor,
}

impl Encoding {
    /// `output` encoded as a body.
    ///
    /// Fails (as `InternalFailure`) only if the output cannot be represented at all, which the
    /// generated shapes never are.
    pub fn encode<T: Serialize + ?Sized>(self, output: &T) -> Result<Bytes, ServiceError> {
        // Most answers are a few KiB; starting there saves the first few reallocations.
        let mut body = Vec::with_capacity(1024);
        let written = match self {
            Encoding::Json => serde_json::to_writer(&mut body, output).is_ok(),
            Encoding::Cbor => ciborium::ser::into_writer(output, &mut body).is_ok(),
        };
        if !written {
            return Err(ServiceError::internal());
        }
        Ok(Bytes::from(body))
    }

    /// The empty structure `{}`, the body of an operation that returns nothing.
    pub fn empty_structure(self) -> Bytes {
        match self {
            Encoding::Json => Bytes::from_static(b"{}"),
            // A CBOR map of length 0.
            Encoding::Cbor => Bytes::from_static(&[0xa0]),
        }
    }
}

/// A service that may answer some operations with a body it already holds encoded.
///
/// The API asks this first for every request that passed authentication and the input checks,
/// and goes through [`crate::dispatch`] when the answer is `None`. It is only for reads: the API
/// awaits it inline, where a client hanging up would cancel it.
#[async_trait::async_trait]
pub trait EncodedAnswers: CodePipelineService {
    /// The successful answer to `op` with `input` (the constraint-checked JSON value `dispatch`
    /// would get), already encoded in `encoding`, when the service keeps one. It must decode to
    /// exactly what `dispatch` would answer at the same moment. `None`, the default, sends the
    /// request the normal way, errors included.
    async fn encoded_answer(
        &self,
        ctx: &Self::Context,
        op: Operation,
        input: &serde_json::Value,
        encoding: Encoding,
    ) -> Option<Bytes> {
        let _ = (ctx, op, input, encoding);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ciborium::Value as Cbor;

    use super::*;
    use crate::schema::{self, ShapeKind};
    use crate::*;

    /// A state with timestamps at several depths, enums, integers, optional members left out
    /// and a member list, as GetPipelineState answers.
    fn pipeline_state() -> GetPipelineStateOutput {
        GetPipelineStateOutput {
            pipeline_name: Some("release".to_owned()),
            pipeline_version: Some(3),
            created: Some(Timestamp::from_millis(1_700_000_000_123)),
            updated: Some(Timestamp::from_millis(1_700_000_005_000)),
            stage_states: Some(vec![StageState {
                stage_name: Some("Approve".to_owned()),
                inbound_transition_state: Some(TransitionState {
                    enabled: Some(false),
                    last_changed_by: Some("arn:aws:iam::123456789012:user/alice".to_owned()),
                    last_changed_at: Some(Timestamp::from_millis(1_700_000_001_500)),
                    disabled_reason: Some("frozen".to_owned()),
                }),
                action_states: Some(vec![ActionState {
                    action_name: Some("Approval".to_owned()),
                    latest_execution: Some(ActionExecution {
                        action_execution_id: Some("a-1".to_owned()),
                        status: Some(ActionExecutionStatus::InProgress),
                        last_status_change: Some(Timestamp::from_millis(1_700_000_002_000)),
                        token: Some("t-1".to_owned()),
                        percent_complete: Some(50),
                        ..ActionExecution::default()
                    }),
                    ..ActionState::default()
                }]),
                latest_execution: Some(StageExecution {
                    pipeline_execution_id: "e-1".to_owned(),
                    status: StageExecutionStatus::InProgress,
                    r#type: None,
                }),
                ..StageState::default()
            }]),
        }
    }

    /// `value` with every map's entries in key order, so two encodings that differ only in
    /// member order compare equal.
    fn canonical(value: Cbor) -> Cbor {
        match value {
            Cbor::Map(entries) => {
                let mut entries: Vec<(Cbor, Cbor)> = entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect();
                entries.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
                Cbor::Map(entries)
            }
            Cbor::Array(items) => Cbor::Array(items.into_iter().map(canonical).collect()),
            Cbor::Tag(tag, inner) => Cbor::Tag(tag, Box::new(canonical(*inner))),
            other => other,
        }
    }

    #[test]
    fn cbor_straight_from_the_output_is_the_model_guided_encoding() {
        let output = pipeline_state();
        let direct = Encoding::Cbor.encode(&output).unwrap();
        let direct: Cbor = ciborium::de::from_reader(direct.as_ref()).unwrap();
        let guided = cbor::json_to_cbor(
            "GetPipelineStateOutput",
            &serde_json::to_value(&output).unwrap(),
        );
        assert_eq!(canonical(direct.clone()), canonical(guided));
        // And the timestamps really are tag 1, at the top level and deep inside.
        let text = format!("{direct:?}");
        assert_eq!(text.matches("Tag(1, Float(").count(), 4, "{text}");
    }

    #[test]
    fn json_straight_from_the_output_is_the_json_value_encoding() {
        let output = pipeline_state();
        let direct = Encoding::Json.encode(&output).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&direct).unwrap();
        assert_eq!(parsed, serde_json::to_value(&output).unwrap());
        assert_eq!(parsed["created"], serde_json::json!(1_700_000_000.123));
        let back: GetPipelineStateOutput = serde_json::from_slice(&direct).unwrap();
        assert_eq!(back, output);
    }

    #[test]
    fn cbor_answers_decode_back_to_the_output() {
        let output = pipeline_state();
        let bytes = Encoding::Cbor.encode(&output).unwrap();
        let json = cbor::cbor_to_json(ciborium::de::from_reader(bytes.as_ref()).unwrap()).unwrap();
        let back: GetPipelineStateOutput = serde_json::from_value(json).unwrap();
        assert_eq!(back, output);
    }

    #[test]
    fn the_empty_structure_is_an_empty_map_in_both_encodings() {
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&Encoding::Json.empty_structure()).unwrap(),
            serde_json::json!({})
        );
        let cbor: Cbor =
            ciborium::de::from_reader(Encoding::Cbor.empty_structure().as_ref()).unwrap();
        assert_eq!(cbor, Cbor::Map(Vec::new()));
    }

    /// Encoding CBOR straight from the typed outputs relies on this: a blob would need a byte
    /// string where the generated type holds base64 text. If a regenerated model adds one, the
    /// generated type for blobs must serialise as bytes in CBOR first.
    #[test]
    fn no_output_of_the_model_holds_a_blob() {
        let model = schema::model();
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = Operation::ALL
            .iter()
            .filter_map(|op| op.output_shape())
            .collect();
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            let shape = model.shape(name).expect("a shape of the model");
            assert_ne!(shape.kind, ShapeKind::Blob, "{name} is a blob in an output");
            stack.extend(shape.members.iter().map(|m| m.target.as_str()));
            stack.extend(shape.list_member.as_deref());
            stack.extend(shape.map_value.as_deref());
        }
        assert!(seen.len() > 50, "the walk reached {} shapes", seen.len());
    }
}
