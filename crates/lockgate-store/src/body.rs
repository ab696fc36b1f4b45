//! [`Body`]: a record's content as the JSON text a backend stores.

use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;

/// A record's content: one JSON value as text, exactly as a backend stores it.
///
/// Owners encode their records straight to text ([`Body::encode`]) and decode them straight
/// from it ([`Body::decode`]); neither side goes through a `serde_json::Value`, which would
/// cost a map entry and an allocation per field on every write and every cold read. Two bodies
/// are equal when their texts are.
#[derive(Clone, PartialEq, Eq)]
pub struct Body(String);

impl Body {
    /// The body holding `value` encoded as JSON. Fails only for what JSON cannot hold (a map
    /// with non-string keys, a failing `Serialize` implementation).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Body, serde_json::Error> {
        serde_json::to_string(value).map(Body)
    }

    /// A body from JSON text read back from a backend, after checking that it is one JSON value
    /// (without building it). The error says where the text stops being JSON.
    pub fn from_json(text: String) -> Result<Body, serde_json::Error> {
        serde_json::from_str::<IgnoredAny>(&text)?;
        Ok(Body(text))
    }

    /// The body's value as a `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The body as a JSON value, for code that inspects bodies of any shape (tests, the
    /// outbox's fields).
    pub fn value(&self) -> serde_json::Value {
        // A `Body` only ever holds text that parsed (or was printed) as one JSON value.
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<serde_json::Value> for Body {
    fn from(value: serde_json::Value) -> Body {
        Body(value.to_string())
    }
}

impl PartialEq<serde_json::Value> for Body {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.value() == *other
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_body_encodes_and_decodes_without_a_value_in_between() {
        #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Job {
            id: String,
            attempts: u32,
        }
        let job = Job {
            id: "j-1".into(),
            attempts: 2,
        };
        let body = Body::encode(&job).unwrap();
        assert_eq!(body.as_str(), r#"{"id":"j-1","attempts":2}"#);
        assert_eq!(body.decode::<Job>().unwrap(), job);
        assert_eq!(body, json!({"attempts": 2, "id": "j-1"}));
    }

    #[test]
    fn text_that_is_not_one_json_value_is_refused() {
        assert!(Body::from_json("{not json".into()).is_err());
        assert!(Body::from_json("{} {}".into()).is_err());
        assert_eq!(
            Body::from_json(r#"{"a":[1,2]}"#.into()).unwrap().as_str(),
            r#"{"a":[1,2]}"#
        );
    }
}
