//! The server under test, run as a separate process (as in real use) through
//! `lockgate_loadgen::server`: a fresh data directory, the benchmark user with fixed keys, and
//! `lockgate serve` on a free loopback port, killed when the handle is dropped. The scale
//! benchmark may name a data directory to keep instead.

use std::path::PathBuf;
use std::time::Duration;

use lockgate_loadgen::server::{Server, ServerOptions, User};

use crate::machine;

/// The benchmark user's access key id.
pub const ACCESS_KEY_ID: &str = "AKIALOCKGATEBENCH001";
/// The benchmark user's secret access key.
pub const SECRET_ACCESS_KEY: &str = "lockgate/bench/SECRET/key/0123456789abcdef";
/// The region the server answers for (its default).
pub const REGION: &str = "us-east-1";
/// The benchmark user's name.
pub const USER: &str = "bench";
/// The benchmark user's console password.
pub const PASSWORD: &str = "lockgate-bench-password";

/// How the benchmark's server is made: `binary` with the `LOCKGATE_LOG` filter `log`, the
/// benchmark user, a temporary data directory (if any) under `data_parent`.
pub fn options(binary: PathBuf, data_parent: PathBuf, log: String) -> ServerOptions {
    ServerOptions {
        binary,
        data_parent,
        dir_prefix: "lockgate-bench-",
        user: User {
            name: USER,
            account_id: None,
            access_key_id: ACCESS_KEY_ID,
            secret_access_key: SECRET_ACCESS_KEY,
            password: PASSWORD,
        },
        serve_args: Vec::new(),
        log,
    }
}

/// Creates a data directory under `data_parent`, adds the benchmark user and starts `binary`
/// with the `LOCKGATE_LOG` filter `log`.
pub fn start(binary: PathBuf, data_parent: PathBuf, log: String) -> anyhow::Result<Server> {
    Server::create(options(binary, data_parent, log))
}

/// CPU time (user + system, all threads) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    machine::process_cpu_time(&format!("/proc/{pid}/stat"))
}
