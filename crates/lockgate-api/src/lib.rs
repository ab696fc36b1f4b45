//! The wire edge of Lockgate: the AWS CodePipeline API over awsJson1.1 and Smithy RPC v2 CBOR,
//! authenticated with AWS Signature Version 4, so that the AWS CLI, boto3 and the AWS SDKs work
//! against Lockgate with `--endpoint-url`.
//!
//! [`router`] is the entry point: it takes any [`lockgate_shapes::CodePipelineService`] whose
//! context is the authenticated [`lockgate_model::Caller`], a [`CredentialsProvider`] to look up
//! access keys, and an [`ApiConfig`]. This crate keeps no state and makes no domain decisions; it
//! only translates between HTTP and the service trait.

pub mod credentials;
mod error;
mod fallback;
mod protocol;
mod router;
pub mod sigv4;

#[cfg(test)]
mod testing;

pub use credentials::{Credential, CredentialsProvider, StaticCredentials};
pub use fallback::{method_not_allowed, unknown_route};
pub use router::{router, ApiConfig, MAX_BODY_BYTES, REQUEST_ID_HEADER};
