//! The built-in executors, one module each.

mod codebuild;
mod commands;
mod git_source;
mod s3_deploy;

pub use codebuild::{CodeBuild, Project};
pub use commands::Commands;
pub use git_source::{Connection, GitSource, Repository};
pub use s3_deploy::S3Deploy;

use lockgate_shapes::{ActionCategory, ActionOwner, ActionTypeId};

/// An AWS-owned action type id.
pub(crate) fn aws(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: ActionOwner::Aws,
        provider: provider.to_string(),
        version: "1".to_string(),
    }
}
