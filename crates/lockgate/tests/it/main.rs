//! End-to-end tests: the real AWS SDK for Rust against a Lockgate server, in process
//! (`TestApp`) and as a child process (`LockgateProcess`) for restarts, SIGTERM and kill -9.

mod approval;
mod browser;
mod console;
mod edge;
mod harness;
mod lifecycle;
mod local_actions;
mod logs;
mod process;
mod signin;
mod users;
