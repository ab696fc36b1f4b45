//! The `lockgate` binary's library half: command line, configuration and the composition root.
//! Integration tests build an [`App`] from a [`Config`] exactly as `lockgate serve` does.

pub mod app;
pub mod artifacts;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod import;
mod metrics;
pub mod server;
pub mod triggers;
pub mod worker;

pub use app::App;
pub use config::Config;
