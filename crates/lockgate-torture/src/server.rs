//! The server under test as a child process (through `lockgate_loadgen::server`): one data
//! directory for the whole campaign, the torture user added through the CLI, `lockgate serve`
//! started on a free loopback port, killed with SIGKILL and started again on the same data.

use std::path::{Path, PathBuf};

use lockgate_loadgen::server::{Server, ServerOptions, User};

/// The torture user's name; approvals show `arn:aws:iam::<account>:user/torture`.
pub const USER: &str = "torture";
/// The account id the server is started with, so the approver's ARN is known in advance.
pub const ACCOUNT_ID: &str = "123456789012";
/// The torture user's access key id.
pub const ACCESS_KEY_ID: &str = "AKIALOCKGATETORTURE1";
/// The torture user's secret access key.
pub const SECRET_ACCESS_KEY: &str = "lockgate/torture/SECRET/key/0123456789abc";
/// The region the server answers for.
pub const REGION: &str = "us-east-1";

/// The ARN every acknowledged approval must name as its approver.
pub fn user_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{USER}")
}

/// Creates the data directory under `data_parent`, adds the torture user and starts `binary`
/// with the account id and region fixed, so the approver's ARN is known in advance.
pub fn create(binary: &Path, data_parent: PathBuf) -> anyhow::Result<Server> {
    Server::create(ServerOptions {
        binary: binary.to_owned(),
        data_parent,
        dir_prefix: "lockgate-torture-",
        user: User {
            name: USER,
            account_id: Some(ACCOUNT_ID),
            access_key_id: ACCESS_KEY_ID,
            secret_access_key: SECRET_ACCESS_KEY,
            password: "lockgate-torture-password",
        },
        serve_args: ["--account-id", ACCOUNT_ID, "--region", REGION]
            .map(String::from)
            .to_vec(),
        log: "warn".to_owned(),
    })
}
