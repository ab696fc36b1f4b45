//! Constraint checks of an operation's input, with AWS's wording.
//!
//! [`check_input`] walks a JSON value against the operation's input shape before the value is decoded
//! into its typed structure. It collects every constraint violation into one `ValidationException`
//! (`"2 validation errors detected: Value ... ; Value ..."`), and answers `SerializationException` for
//! the first value of the wrong JSON type, which the typed decode could not accept anyway.
//!
//! Paths name members joined by `.`; a list element is `<list>.<1-based index>.member` and a map value
//! `<map>.<key>.member`. Violations of a map key are reported at the map's path as
//! `Map keys must satisfy constraint: [...]`. Unknown members are ignored.

use serde_json::Value;

use crate::schema::{self, Model, Shape, ShapeKind};
use crate::{ErrorCode, Operation, ServiceError, Timestamp};

/// Checks `value`, the decoded request body, against the input shape of `op`.
///
/// A missing body or JSON `null` counts as `{}`.
pub fn check_input(op: Operation, value: &Value) -> Result<(), ServiceError> {
    match op.input_shape() {
        Some(shape) => check_shape(shape, value),
        None => Ok(()),
    }
}

/// Checks `value` against the named shape of the model; `null` counts as `{}` for a structure.
pub fn check_shape(shape: &str, value: &Value) -> Result<(), ServiceError> {
    let model = schema::model();
    let Some(shape) = model.shape(shape) else {
        return Err(ServiceError::internal());
    };
    let empty = Value::Object(serde_json::Map::new());
    let value = if value.is_null() && shape.kind == ShapeKind::Structure {
        &empty
    } else {
        value
    };
    let mut walker = Walker {
        model,
        violations: Vec::new(),
    };
    walker.walk(shape, value, "", shape.sensitive)?;
    match walker.violations.len() {
        0 => Ok(()),
        1 => Err(ServiceError::validation(format!(
            "1 validation error detected: {}",
            walker.violations[0]
        ))),
        n => Err(ServiceError::validation(format!(
            "{n} validation errors detected: {}",
            walker.violations.join("; ")
        ))),
    }
}

struct Walker<'m> {
    model: &'m Model,
    violations: Vec<String>,
}

impl Walker<'_> {
    fn violation(&mut self, value: Option<&Value>, path: &str, sensitive: bool, constraint: &str) {
        let rendered = match value {
            None | Some(Value::Null) => "null".to_owned(),
            Some(_) if sensitive => "'***'".to_owned(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => render(v),
            Some(v) => format!("'{}'", render(v)),
        };
        self.violations.push(format!(
            "Value {rendered} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn walk(
        &mut self,
        shape: &Shape,
        value: &Value,
        path: &str,
        sensitive: bool,
    ) -> Result<(), ServiceError> {
        let sensitive = sensitive || shape.sensitive;
        match shape.kind {
            ShapeKind::Structure => {
                let object = value
                    .as_object()
                    .ok_or_else(|| mismatch("a structure", value, path))?;
                for member in &shape.members {
                    let member_path = join(path, &member.name);
                    let Some(target) = self.model.shape(&member.target) else {
                        continue;
                    };
                    match object.get(&member.name).filter(|v| !v.is_null()) {
                        Some(v) => self.walk(target, v, &member_path, sensitive)?,
                        None if member.required => {
                            self.violation(None, &member_path, sensitive, "Member must not be null")
                        }
                        None => {}
                    }
                }
            }
            ShapeKind::String => {
                let s = value
                    .as_str()
                    .ok_or_else(|| mismatch("a string", value, path))?;
                if !shape.enum_values.is_empty() && !shape.enum_values.iter().any(|e| e == s) {
                    let constraint = format!(
                        "Member must satisfy enum value set: [{}]",
                        shape.enum_values.join(", ")
                    );
                    self.violation(Some(value), path, sensitive, &constraint);
                }
                self.check_length(shape, s.chars().count(), value, path, sensitive);
                if let Some(pattern) = &shape.pattern {
                    if !pattern.is_match(s) {
                        let constraint = format!(
                            "Member must satisfy regular expression pattern: {}",
                            pattern.source
                        );
                        self.violation(Some(value), path, sensitive, &constraint);
                    }
                }
            }
            ShapeKind::Integer | ShapeKind::Long => {
                let n = value
                    .as_i64()
                    .ok_or_else(|| mismatch("an integer", value, path))?;
                if shape.kind == ShapeKind::Integer && i32::try_from(n).is_err() {
                    return Err(mismatch("a 32-bit integer", value, path));
                }
                if let Some(min) = shape.min.filter(|min| n < *min) {
                    let constraint =
                        format!("Member must have value greater than or equal to {min}");
                    self.violation(Some(value), path, sensitive, &constraint);
                }
                if let Some(max) = shape.max.filter(|max| n > *max) {
                    let constraint = format!("Member must have value less than or equal to {max}");
                    self.violation(Some(value), path, sensitive, &constraint);
                }
            }
            ShapeKind::Float | ShapeKind::Double => {
                if !value.is_number() {
                    return Err(mismatch("a number", value, path));
                }
            }
            ShapeKind::Timestamp => {
                if !value.is_number() {
                    return Err(mismatch("a number", value, path));
                }
                // The typed decode refuses a time it cannot hold; refusing it here keeps the
                // promise that what passes these checks decodes (found by the cbor_input fuzz
                // target: `created` of 1e243 seconds).
                if value.as_f64().and_then(Timestamp::from_secs_f64).is_none() {
                    return Err(mismatch("a timestamp in range", value, path));
                }
            }
            ShapeKind::Boolean => {
                if !value.is_boolean() {
                    return Err(mismatch("a boolean", value, path));
                }
            }
            ShapeKind::Blob => {
                if !value.is_string() {
                    return Err(mismatch("a base64 string", value, path));
                }
            }
            ShapeKind::List => {
                let items = value
                    .as_array()
                    .ok_or_else(|| mismatch("a list", value, path))?;
                self.check_length(shape, items.len(), value, path, sensitive);
                let Some(member) = shape
                    .list_member
                    .as_deref()
                    .and_then(|m| self.model.shape(m))
                else {
                    return Ok(());
                };
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{}.{}.member", path, i + 1);
                    if item.is_null() {
                        self.violation(None, &item_path, sensitive, "Member must not be null");
                    } else {
                        self.walk(member, item, &item_path, sensitive)?;
                    }
                }
            }
            ShapeKind::Map => {
                let entries = value
                    .as_object()
                    .ok_or_else(|| mismatch("a map", value, path))?;
                self.check_length(shape, entries.len(), value, path, sensitive);
                let key_shape = shape.map_key.as_deref().and_then(|k| self.model.shape(k));
                let value_shape = shape.map_value.as_deref().and_then(|v| self.model.shape(v));
                for (key, item) in entries {
                    if let Some(key_shape) = key_shape {
                        let key_value = Value::String(key.clone());
                        let mut keys = Walker {
                            model: self.model,
                            violations: Vec::new(),
                        };
                        keys.walk(key_shape, &key_value, path, sensitive)?;
                        if !keys.violations.is_empty() {
                            let phrases: Vec<&str> = keys
                                .violations
                                .iter()
                                .filter_map(|v| v.split_once("failed to satisfy constraint: "))
                                .map(|(_, phrase)| phrase)
                                .collect();
                            let constraint = format!(
                                "Map keys must satisfy constraint: [{}]",
                                phrases.join(", ")
                            );
                            self.violation(Some(&key_value), path, sensitive, &constraint);
                        }
                    }
                    let item_path = format!("{path}.{key}.member");
                    match value_shape {
                        _ if item.is_null() => {
                            self.violation(None, &item_path, sensitive, "Member must not be null")
                        }
                        Some(value_shape) => self.walk(value_shape, item, &item_path, sensitive)?,
                        None => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Length bounds of strings (in characters), lists and maps (in entries).
    fn check_length(
        &mut self,
        shape: &Shape,
        len: usize,
        value: &Value,
        path: &str,
        sensitive: bool,
    ) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        if let Some(min) = shape.min.filter(|min| len < *min) {
            let constraint = format!("Member must have length greater than or equal to {min}");
            self.violation(Some(value), path, sensitive, &constraint);
        }
        if let Some(max) = shape.max.filter(|max| len > *max) {
            let constraint = format!("Member must have length less than or equal to {max}");
            self.violation(Some(value), path, sensitive, &constraint);
        }
    }
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

/// The `SerializationException` for a value of the wrong JSON type.
fn mismatch(expected: &str, value: &Value, path: &str) -> ServiceError {
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let location = if path.is_empty() {
        "the request body".to_owned()
    } else {
        format!("'{path}'")
    };
    ServiceError::new(
        ErrorCode::SerializationException,
        format!("Expected {expected} at {location} but found {found}"),
    )
}

/// Renders a value the way AWS's Java services print it (the caller adds quotes): strings bare, lists as `[a, b]`, structures as
/// `{key=value}`.
fn render(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn approval(status: &str) -> Value {
        json!({
            "pipelineName": "my-pipeline",
            "stageName": "Approve",
            "actionName": "Manual",
            "result": {"summary": "ok", "status": status},
            "token": "1a2b3c4d-0000-1111-2222-333344445555"
        })
    }

    fn message(result: Result<(), ServiceError>) -> String {
        let err = result.expect_err("the input violates a constraint");
        assert_eq!(err.code, ErrorCode::ValidationException, "{err}");
        err.message
    }

    #[test]
    fn a_timestamp_beyond_what_the_typed_input_can_hold_is_a_serialization_error() {
        let revision = |created: Value| {
            json!({"pipelineName": "release", "stageName": "Source", "actionName": "Source",
                   "actionRevision": {"revisionId": "r43", "revisionChangeId": "c43",
                                      "created": created}})
        };
        check_input(Operation::PutActionRevision, &revision(json!(1796040000.5))).unwrap();
        let err = check_input(Operation::PutActionRevision, &revision(json!(1.1e243)))
            .expect_err("a time beyond the typed decode's range");
        assert_eq!(err.code, ErrorCode::SerializationException, "{err}");
        assert_eq!(
            err.message,
            "Expected a timestamp in range at 'actionRevision.created' but found a number"
        );
    }

    #[test]
    fn a_valid_approval_passes() {
        check_input(Operation::PutApprovalResult, &approval("Approved")).unwrap();
    }

    #[test]
    fn an_enum_value_in_the_wrong_case_is_rejected_with_the_value_set() {
        assert_eq!(
            message(check_input(
                Operation::PutApprovalResult,
                &approval("approved")
            )),
            "1 validation error detected: Value 'approved' at 'result.status' failed to satisfy \
             constraint: Member must satisfy enum value set: [Approved, Rejected]"
        );
    }

    #[test]
    fn a_missing_required_member_is_reported_as_null() {
        let mut input = approval("Approved");
        input.as_object_mut().unwrap().remove("token");
        assert_eq!(
            message(check_input(Operation::PutApprovalResult, &input)),
            "1 validation error detected: Value null at 'token' failed to satisfy constraint: \
             Member must not be null"
        );
    }

    #[test]
    fn a_too_long_name_is_reported_with_its_bound() {
        let name = "p".repeat(101);
        assert_eq!(
            message(check_input(Operation::GetPipeline, &json!({ "name": name }))),
            format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: \
                 Member must have length less than or equal to 100"
            )
        );
    }

    #[test]
    fn a_name_outside_the_pattern_is_reported_with_the_model_pattern() {
        assert_eq!(
            message(check_input(Operation::GetPipeline, &json!({ "name": "my pipeline" }))),
            "1 validation error detected: Value 'my pipeline' at 'name' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+"
        );
    }

    #[test]
    fn an_integer_out_of_range_is_reported_with_its_bound() {
        assert_eq!(
            message(check_input(Operation::ListPipelines, &json!({ "maxResults": 1001 }))),
            "1 validation error detected: Value 1001 at 'maxResults' failed to satisfy constraint: \
             Member must have value less than or equal to 1000"
        );
    }

    #[test]
    fn every_violation_is_collected_and_counted() {
        let input = json!({
            "pipelineName": "bad name",
            "stageName": "Approve",
            "actionName": "Manual",
            "result": {"summary": "ok", "status": "approved"},
        });
        let message = message(check_input(Operation::PutApprovalResult, &input));
        assert!(
            message.starts_with("3 validation errors detected: "),
            "{message}"
        );
        let parts: Vec<&str> = message["3 validation errors detected: ".len()..]
            .split("; ")
            .collect();
        assert_eq!(parts.len(), 3, "{message}");
        assert!(
            parts[0].starts_with("Value 'bad name' at 'pipelineName'"),
            "{message}"
        );
        assert!(
            parts[1].starts_with("Value 'approved' at 'result.status'"),
            "{message}"
        );
        assert!(parts[2].starts_with("Value null at 'token'"), "{message}");
    }

    #[test]
    fn list_elements_are_addressed_by_one_based_index() {
        let input = json!({
            "pipeline": {
                "name": "p",
                "roleArn": "arn:aws:iam::123456789012:role/r",
                "artifactStore": {"type": "S3", "location": "bucket"},
                "stages": [
                    {"name": "Source", "actions": [{"name": "a", "actionTypeId": {
                        "category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}}]},
                    {"name": "Build", "actions": [{"name": "bad name", "actionTypeId": {
                        "category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}}]}
                ]
            }
        });
        let message = message(check_input(Operation::CreatePipeline, &input));
        assert!(
            message.contains("at 'pipeline.stages.2.member.actions.1.member.name'"),
            "{message}"
        );
    }

    #[test]
    fn map_keys_and_values_are_checked() {
        let key = "k".repeat(51);
        let input = json!({
            "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "Mine", "version": "1"},
            "queryParam": { key.clone(): "a b" }
        });
        assert_eq!(
            message(check_input(Operation::PollForJobs, &input)),
            format!(
                "2 validation errors detected: Value '{key}' at 'queryParam' failed to satisfy constraint: \
                 Map keys must satisfy constraint: [Member must have length less than or equal to 50]; \
                 Value 'a b' at 'queryParam.{key}.member' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
            )
        );
    }

    #[test]
    fn a_value_of_the_wrong_json_type_is_a_serialization_error() {
        let err =
            check_input(Operation::ListPipelines, &json!({ "maxResults": "10" })).unwrap_err();
        assert_eq!(err.code, ErrorCode::SerializationException);
        let err = check_input(Operation::ListPipelines, &json!([])).unwrap_err();
        assert_eq!(err.code, ErrorCode::SerializationException);
    }

    #[test]
    fn a_missing_body_counts_as_an_empty_object_and_unknown_members_are_ignored() {
        check_input(Operation::ListPipelines, &Value::Null).unwrap();
        check_input(
            Operation::ListPipelines,
            &json!({ "somethingElse": [1, 2] }),
        )
        .unwrap();
        let err = check_input(Operation::GetPipeline, &Value::Null).unwrap_err();
        assert!(err.message.contains("Value null at 'name'"), "{err}");
    }
}
