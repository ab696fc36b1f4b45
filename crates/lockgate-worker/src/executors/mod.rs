//! The built-in executors, one module each.

mod commands;
mod git_source;

pub use commands::Commands;
pub use git_source::{Connection, GitSource, Repository};

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

/// Runs blocking file work (unpacking, packing, storing artifacts) without stalling the
/// runtime's other tasks when the runtime can spare the thread.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
