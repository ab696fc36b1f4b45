//! Approval notifications: the outbox relay and its sinks (email, webhooks, SNS), and the
//! message formats.
//!
//! The engine never sends anything. It writes one outbox row per approval event in the same
//! store commit as the state change (see `lockgate_model::notice`); the [`Relay`] reads due rows,
//! renders them ([`message`]) and hands them to the sinks, retrying with exponential backoff
//! and keeping messages it gave up on visible as failed. Delivery is therefore at least once,
//! survives restarts, and can never block or fail a pipeline.
//!
//! - [`config`]: topics and their subscriptions, SMTP, SNS and retry settings.
//! - [`message`]: CodePipeline's approval-needed JSON, decision messages, email text.
//! - [`relay`]: the background delivery loop, counters and listings.
//! - `limits`: how many rows are delivered at once, in all and per server.
//! - [`sinks`]: one attempt to one subscription (SMTP via lettre, HTTP via reqwest, SNS).

pub mod config;
mod limits;
pub mod message;
pub mod relay;
pub mod sinks;

pub use config::{NotifyConfig, Protocol, SubscriptionConfig, TopicConfig};
pub use relay::{send_test, DrainReport, OutboxEntry, Relay, Stats, TestResult};
