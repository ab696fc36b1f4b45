//! Who is making a request: the verified identity every operation runs as.

use serde::{Deserialize, Serialize};

/// The authenticated user behind a request. Its ARN is what CodePipeline shows as an approval's
/// `lastUpdatedBy` and as an execution trigger's detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The user's name, as given to `lockgate user add`.
    pub user_name: String,
    /// The account the user belongs to (12 digits).
    pub account_id: String,
}

impl Caller {
    /// A caller in `account_id` named `user_name`.
    pub fn new(user_name: impl Into<String>, account_id: impl Into<String>) -> Self {
        Caller {
            user_name: user_name.into(),
            account_id: account_id.into(),
        }
    }

    /// The IAM-style ARN: `arn:aws:iam::<account>:user/<name>`.
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account_id, self.user_name)
    }
}
