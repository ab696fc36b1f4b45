//! Every input, output and error shape of the AWS CodePipeline service model, as serde types.
//!
//! The types, the [`Operation`] and [`ErrorCode`] enums, the [`CodePipelineService`] trait and
//! [`dispatch`] live in [`generated`], written by `cargo xtask codegen` from
//! `model/codepipeline-service-2.json` and re-exported here. The hand-written modules interpret the same
//! model at run time: [`schema`] holds the constraint tables, [`validate`] checks inputs the way AWS does
//! and [`cbor`] converts between the RPC v2 CBOR wire format and JSON values. [`encoding`] writes
//! outputs in either protocol straight from the typed values, and holds [`EncodedAnswers`], the
//! hook through which a service answers with a body it keeps already encoded.

pub mod cbor;
pub mod encoding;
mod error;
pub mod generated;
pub mod schema;
mod timestamp;
pub mod validate;

pub use encoding::{EncodedAnswers, Encoding};
pub use error::ServiceError;
pub use generated::*;
pub use timestamp::Timestamp;
