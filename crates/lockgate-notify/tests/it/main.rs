//! The notifier against real receivers on loopback and a real SQLite outbox: the relay's
//! concurrent delivery (`relay`) and the hand-signed SNS Publish (`sns`).

mod harness;
mod relay;
mod sns;
