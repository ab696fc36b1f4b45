//! The service model at run time: shapes with their constraints, operations and paginators.
//!
//! The embedded botocore model is parsed once, on first use, into a small representation that
//! [`crate::validate`] and [`crate::cbor`] walk. Patterns are compiled with the `regex` crate and match
//! the whole value, as Smithy's `@pattern` does in practice for these shapes.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::Operation;

/// The botocore service model this crate is generated from.
pub const SERVICE_MODEL_JSON: &str = include_str!("../model/codepipeline-service-2.json");
/// The botocore paginator definitions of the service.
pub const PAGINATORS_JSON: &str = include_str!("../model/codepipeline-paginators-1.json");

static MODEL: LazyLock<Model> = LazyLock::new(|| {
    Model::parse(SERVICE_MODEL_JSON, PAGINATORS_JSON).expect("the embedded model is valid")
});

/// The parsed service model, built on first use.
pub fn model() -> &'static Model {
    &MODEL
}

/// The kind of a shape (`type` in the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeKind {
    /// A structure with named members.
    Structure,
    /// A string, possibly with an enum value set.
    String,
    /// A 32-bit integer.
    Integer,
    /// A 64-bit integer.
    Long,
    /// A boolean.
    Boolean,
    /// A point in time, sent as epoch seconds.
    Timestamp,
    /// A list of members of one shape.
    List,
    /// A map from string keys to values of one shape.
    Map,
    /// Binary data.
    Blob,
    /// A 32-bit float.
    Float,
    /// A 64-bit float.
    Double,
}

/// A member of a structure shape.
#[derive(Debug, Clone)]
pub struct MemberSchema {
    /// The member name, exactly as on the wire.
    pub name: String,
    /// The name of the member's shape.
    pub target: String,
    /// Whether the structure lists the member as required.
    pub required: bool,
}

/// A `pattern` constraint of a string shape.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern exactly as written in the model; it appears in validation messages.
    pub source: String,
    /// The compiled pattern, anchored to match the whole value; `None` if the regex crate cannot
    /// compile it, in which case the constraint is not enforced (a test asserts this never happens).
    pub regex: Option<Regex>,
}

impl Pattern {
    fn new(source: &str) -> Self {
        Pattern {
            source: source.to_owned(),
            regex: Regex::new(&format!("^(?:{source})$")).ok(),
        }
    }

    /// Whether `value` satisfies the pattern (always true for a pattern that did not compile).
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.as_ref().is_none_or(|r| r.is_match(value))
    }
}

/// A shape of the model with its constraints.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The shape name.
    pub name: String,
    /// What kind of value the shape describes.
    pub kind: ShapeKind,
    /// Structure members, in model order.
    pub members: Vec<MemberSchema>,
    /// Minimum length (strings, lists, maps) or value (numbers).
    pub min: Option<i64>,
    /// Maximum length (strings, lists, maps) or value (numbers).
    pub max: Option<i64>,
    /// The pattern a string must match.
    pub pattern: Option<Pattern>,
    /// The allowed values of an enum string, in model order; empty when unrestricted.
    pub enum_values: Vec<String>,
    /// The member shape of a list.
    pub list_member: Option<String>,
    /// The key shape of a map.
    pub map_key: Option<String>,
    /// The value shape of a map.
    pub map_value: Option<String>,
    /// Whether values of the shape are secret and must not be echoed in messages.
    pub sensitive: bool,
    /// Whether the shape is an error shape.
    pub exception: bool,
}

impl Shape {
    /// The structure member with the given wire name.
    pub fn member(&self, name: &str) -> Option<&MemberSchema> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// How an operation pages its results (from `codepipeline-paginators-1.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paginator {
    /// The input member carrying the continuation token.
    pub input_token: String,
    /// The output member carrying the next continuation token.
    pub output_token: String,
    /// The input member limiting the page size, if any.
    pub limit_key: Option<String>,
    /// The output member holding the page's items.
    pub result_key: String,
}

/// The service model at run time.
#[derive(Debug)]
pub struct Model {
    shapes: HashMap<String, Shape>,
    paginators: HashMap<String, Paginator>,
}

impl Model {
    /// Parses a botocore service model and its paginator definitions.
    pub fn parse(service_json: &str, paginators_json: &str) -> Result<Model, String> {
        let raw: RawModel = serde_json::from_str(service_json).map_err(|e| e.to_string())?;
        let mut shapes = HashMap::with_capacity(raw.shapes.0.len());
        for (name, s) in raw.shapes.0 {
            let kind = match s.kind.as_str() {
                "structure" => ShapeKind::Structure,
                "string" => ShapeKind::String,
                "integer" => ShapeKind::Integer,
                "long" => ShapeKind::Long,
                "boolean" => ShapeKind::Boolean,
                "timestamp" => ShapeKind::Timestamp,
                "list" => ShapeKind::List,
                "map" => ShapeKind::Map,
                "blob" => ShapeKind::Blob,
                "float" => ShapeKind::Float,
                "double" => ShapeKind::Double,
                other => return Err(format!("shape {name} has unsupported type {other}")),
            };
            let members = s
                .members
                .0
                .into_iter()
                .map(|(member, m)| MemberSchema {
                    required: s.required.contains(&member),
                    name: member,
                    target: m.shape,
                })
                .collect();
            let shape = Shape {
                name: name.clone(),
                kind,
                members,
                min: s.min.as_ref().and_then(number_as_i64),
                max: s.max.as_ref().and_then(number_as_i64),
                pattern: s.pattern.as_deref().map(Pattern::new),
                enum_values: s.r#enum,
                list_member: s.member.map(|m| m.shape),
                map_key: s.key.map(|m| m.shape),
                map_value: s.value.map(|m| m.shape),
                sensitive: s.sensitive,
                exception: s.exception,
            };
            shapes.insert(name, shape);
        }
        let raw_pages: RawPaginators =
            serde_json::from_str(paginators_json).map_err(|e| e.to_string())?;
        let paginators = raw_pages
            .pagination
            .into_iter()
            .map(|(op, p)| {
                let paginator = Paginator {
                    input_token: p.input_token,
                    output_token: p.output_token,
                    limit_key: p.limit_key,
                    result_key: p.result_key,
                };
                (op, paginator)
            })
            .collect();
        let model = Model { shapes, paginators };
        model.check_references()?;
        Ok(model)
    }

    /// Every shape reference must resolve, so the walkers can treat a missing shape as impossible.
    fn check_references(&self) -> Result<(), String> {
        for shape in self.shapes.values() {
            let targets = shape
                .members
                .iter()
                .map(|m| &m.target)
                .chain(&shape.list_member)
                .chain(&shape.map_key)
                .chain(&shape.map_value);
            for target in targets {
                if !self.shapes.contains_key(target) {
                    return Err(format!(
                        "shape {} refers to unknown shape {target}",
                        shape.name
                    ));
                }
            }
        }
        for op in Operation::ALL {
            for shape in [op.input_shape(), op.output_shape()].into_iter().flatten() {
                if !self.shapes.contains_key(shape) {
                    return Err(format!("operation {op} refers to unknown shape {shape}"));
                }
            }
        }
        Ok(())
    }

    /// The shape with the given name.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// Every shape, in no particular order.
    pub fn shapes(&self) -> impl Iterator<Item = &Shape> {
        self.shapes.values()
    }

    /// The input structure of an operation.
    pub fn input_shape(&self, op: Operation) -> Option<&Shape> {
        op.input_shape().and_then(|s| self.shape(s))
    }

    /// The output structure of an operation.
    pub fn output_shape(&self, op: Operation) -> Option<&Shape> {
        op.output_shape().and_then(|s| self.shape(s))
    }

    /// How the operation pages its results, if it does.
    pub fn paginator(&self, op: Operation) -> Option<&Paginator> {
        self.paginators.get(op.name())
    }
}

fn number_as_i64(n: &serde_json::Number) -> Option<i64> {
    // Bounds in the model are integral, but botocore writes some as floats (e.g. `1.0`) in other models.
    n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
}

#[derive(Deserialize)]
struct RawModel {
    shapes: Ordered<RawShape>,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: Ordered<RawRef>,
    #[serde(default)]
    required: Vec<String>,
    min: Option<serde_json::Number>,
    max: Option<serde_json::Number>,
    pattern: Option<String>,
    #[serde(default)]
    r#enum: Vec<String>,
    member: Option<RawRef>,
    key: Option<RawRef>,
    value: Option<RawRef>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    exception: bool,
}

#[derive(Deserialize)]
struct RawRef {
    shape: String,
}

#[derive(Deserialize)]
struct RawPaginators {
    pagination: HashMap<String, RawPaginator>,
}

#[derive(Deserialize)]
struct RawPaginator {
    input_token: String,
    output_token: String,
    limit_key: Option<String>,
    result_key: String,
}

/// A JSON object read as a list of entries in document order, because member order decides the order
/// of validation messages and `serde_json::Map` sorts its keys.
struct Ordered<T>(Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, T>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }

        deserializer.deserialize_map(OrderedVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_parses_and_every_reference_resolves() {
        let model = model();
        assert!(model.shape("PipelineDeclaration").is_some());
        for op in Operation::ALL {
            assert!(model.input_shape(*op).is_some(), "{op} has an input shape");
        }
    }

    #[test]
    fn every_pattern_in_the_model_compiles_with_the_regex_crate() {
        let broken: Vec<&str> = model()
            .shapes()
            .filter_map(|s| s.pattern.as_ref())
            .filter(|p| p.regex.is_none())
            .map(|p| p.source.as_str())
            .collect();
        assert!(
            broken.is_empty(),
            "patterns that do not compile: {broken:?}"
        );
    }

    #[test]
    fn patterns_match_the_whole_value() {
        let name = model()
            .shape("PipelineName")
            .unwrap()
            .pattern
            .as_ref()
            .unwrap();
        assert!(name.is_match("my-pipeline"));
        assert!(!name.is_match("my pipeline"));
        let token = model()
            .shape("ClientRequestToken")
            .unwrap()
            .pattern
            .as_ref()
            .unwrap();
        assert!(token.is_match("abc-123"));
        assert!(!token.is_match("abc_123"));
    }

    #[test]
    fn members_keep_model_order() {
        let input = model().shape("PutApprovalResultInput").unwrap();
        let names: Vec<&str> = input.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["pipelineName", "stageName", "actionName", "result", "token"]
        );
        assert!(input.members.iter().all(|m| m.required));
    }

    #[test]
    fn every_exception_shape_has_an_error_code_and_every_declared_error_is_an_exception() {
        for shape in model().shapes().filter(|s| s.exception) {
            let code = crate::ErrorCode::from_name(&shape.name);
            assert!(
                code.is_some_and(|c| !c.is_common()),
                "{} has an error code",
                shape.name
            );
        }
        for op in Operation::ALL {
            for code in op.errors() {
                assert!(
                    model().shape(code.as_str()).is_some_and(|s| s.exception),
                    "{op} declares {code}"
                );
            }
        }
    }

    #[test]
    fn paginators_are_loaded() {
        let p = model().paginator(Operation::ListPipelines).unwrap();
        assert_eq!(p.input_token, "nextToken");
        assert_eq!(p.limit_key.as_deref(), Some("maxResults"));
        assert!(model().paginator(Operation::CreatePipeline).is_none());
    }
}
