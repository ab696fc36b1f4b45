//! The wire edge of Lockgate: the AWS CodePipeline API over awsJson1.1 and Smithy RPC v2 CBOR,
//! authenticated with SigV4.

pub mod credentials;
pub mod sigv4;

#[cfg(test)]
mod testing;

pub use credentials::{Credential, CredentialsProvider, StaticCredentials};
