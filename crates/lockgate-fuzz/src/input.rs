//! Request bodies in both wire protocols: awsJson1.1 (JSON) and RPC v2 CBOR, decoded to the JSON
//! value the API validates, checked with `check_input`, then decoded into the typed input.
//!
//! An input is the operation's name, a newline, and the request body. The invariant: whatever
//! `check_input` accepts, the typed decode accepts too (`check_input` promises a
//! `SerializationException` for every value the typed decode could not take), so a request that
//! passed validation never fails later with a decode error.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use lockgate_shapes::{CodePipelineService, ErrorCode, Operation};
use serde_json::{Map, Value};

use crate::Reached;

/// A service with every operation left at its default (`not implemented`): `dispatch` to it
/// decodes the typed input and does nothing else.
struct DecodeOnly;

impl CodePipelineService for DecodeOnly {
    type Context = ();
}

/// Fuzzes the awsJson1.1 body decoding and constraint checks.
pub fn json_input(data: &[u8]) -> Reached {
    let Some((op, body)) = operation_and_body(data) else {
        return Reached::Layout;
    };
    // As lockgate-api's awsJson1.1 decoding: a blank body is an empty structure.
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => value,
            Err(_) => return Reached::Refused,
        }
    };
    check_then_decode(op, value)
}

/// Fuzzes the RPC v2 CBOR body decoding (`lockgate_shapes::cbor::decode_body`) and the same
/// checks.
pub fn cbor_input(data: &[u8]) -> Reached {
    let Some((op, body)) = operation_and_body(data) else {
        return Reached::Layout;
    };
    let Ok(value) = lockgate_shapes::cbor::decode_body(body) else {
        return Reached::Refused;
    };
    check_then_decode(op, value)
}

/// `<OperationName>\n<body>`; `None` when the first line names no operation.
fn operation_and_body(data: &[u8]) -> Option<(Operation, &[u8])> {
    let newline = data.iter().position(|&b| b == b'\n')?;
    let name = std::str::from_utf8(&data[..newline]).ok()?;
    let op = Operation::ALL.iter().find(|op| op.name() == name)?;
    Some((*op, &data[newline + 1..]))
}

fn check_then_decode(op: Operation, value: Value) -> Reached {
    // As the API: `null` carries no members; any other non-structure is refused before checks.
    let value = match value {
        Value::Null => Value::Object(Map::new()),
        Value::Object(_) => value,
        _ => return Reached::Refused,
    };
    if lockgate_shapes::validate::check_input(op, &value).is_err() {
        return Reached::Refused;
    }
    let input = value.clone();
    let decoded = {
        let future = pin!(lockgate_shapes::dispatch(
            &DecodeOnly,
            &(),
            op,
            value,
            lockgate_shapes::Encoding::Json,
        ));
        match future.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("dispatch to a service that does nothing did not finish"),
        }
    };
    if let Err(error) = decoded {
        assert!(
            error.code != ErrorCode::SerializationException,
            "check_input accepted this {} input, but its typed decode refused it ({}): {input}",
            op.name(),
            error.message
        );
    }
    Reached::Accepted
}
