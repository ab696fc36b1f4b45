//! The `timestamp` shape: milliseconds since the Unix epoch, sent as epoch seconds.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A point in time as milliseconds since the Unix epoch.
///
/// On the wire (awsJson1.1 and, after [`crate::cbor`] conversion, RPC v2 CBOR) a timestamp is a number
/// of epoch seconds with a fractional part, e.g. `1700000000.123`.
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

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_secs_f64())
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
    fn a_timestamp_deserializes_from_integer_and_float_seconds() {
        let int: Timestamp = serde_json::from_str("1700000000").unwrap();
        assert_eq!(int.as_millis(), 1_700_000_000_000);
        let float: Timestamp = serde_json::from_str("1700000000.123").unwrap();
        assert_eq!(float.as_millis(), 1_700_000_000_123);
        assert!(serde_json::from_str::<Timestamp>("\"2023-01-01\"").is_err());
    }
}
