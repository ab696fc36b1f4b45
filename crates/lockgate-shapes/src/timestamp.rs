//! The `timestamp` shape: milliseconds since the Unix epoch, sent as epoch seconds.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A point in time as milliseconds since the Unix epoch.
///
/// On the wire a timestamp is a number of epoch seconds with a fractional part, e.g.
/// `1700000000.123`: a plain number in JSON (awsJson1.1, and the stored format), and that number
/// under tag 1 in CBOR (RPC v2 CBOR), as Smithy's protocol requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The timestamp `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(&self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, with the milliseconds as the fraction.
    pub fn as_secs_f64(&self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The timestamp `secs` seconds after the Unix epoch, rounded to the millisecond; `None` when the
    /// value is not finite or out of range.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        let millis = (secs * 1000.0).round();
        // The range check keeps the cast below from saturating silently.
        if millis.is_finite() && millis.abs() < 9.0e18 {
            Some(Timestamp(millis as i64))
        } else {
            None
        }
    }
}

/// The CBOR tag of an epoch-based date/time (RFC 8949 §3.4.2).
const EPOCH_TAG: u64 = 1;

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde's way of telling formats apart: JSON is human-readable, CBOR (ciborium) is not,
        // and ciborium writes a `Required` value as its tag followed by the number.
        if serializer.is_human_readable() {
            serializer.serialize_f64(self.as_secs_f64())
        } else {
            ciborium::tag::Required::<f64, EPOCH_TAG>(self.as_secs_f64()).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number of epoch seconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        v.checked_mul(1000)
            .map(Timestamp)
            .ok_or_else(|| E::custom("timestamp out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(1000))
            .map(Timestamp)
            .ok_or_else(|| E::custom("timestamp out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        Timestamp::from_secs_f64(v).ok_or_else(|| E::custom("timestamp out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_serializes_as_fractional_epoch_seconds() {
        let json = serde_json::to_string(&Timestamp::from_millis(1_700_000_000_123)).unwrap();
        assert_eq!(json, "1700000000.123");
    }

    #[test]
    fn a_timestamp_serializes_as_tag_1_in_cbor() {
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&Timestamp::from_millis(1_700_000_000_123), &mut bytes).unwrap();
        let value: ciborium::Value = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(
            value,
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Float(1_700_000_000.123)))
        );
    }

    #[test]
    fn a_timestamp_deserializes_from_integer_and_float_seconds() {
        let int: Timestamp = serde_json::from_str("1700000000").unwrap();
        assert_eq!(int.as_millis(), 1_700_000_000_000);
        let float: Timestamp = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(float.as_millis(), 1_700_000_000_123);
        assert!(serde_json::from_str::<Timestamp>("\"2023-01-01\"").is_err());
    }
}
