//! The bodies of the cargo-fuzz targets in the repository's `fuzz/` directory, kept in the
//! workspace so that `cargo test` runs each over its committed seed corpus on the stable
//! toolchain (`tests/corpus.rs`), and `cargo fuzz run` explores from there.
//!
//! Each body takes arbitrary bytes, feeds them to the production code an attacker can reach
//! first, and panics only when an invariant of that code breaks; errors answered to the client
//! are the expected outcome for most inputs. `docs/reliability.md` says how to run them.

mod input;
mod pipeline;
mod sigv4;

pub use input::{cbor_input, json_input};
pub use pipeline::pipeline_declaration;
pub use sigv4::sigv4_request;

/// How far an input got into the production code; the fuzz targets ignore it, the corpus tests
/// use it to show that the seeds reach past the first refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The input does not have the target's layout; no production code ran.
    Layout,
    /// The production code refused it (a decode error, a constraint, a validation rule, an
    /// authentication error).
    Refused,
    /// It was accepted all the way: decoded into the typed input, a valid pipeline, a signature
    /// that verifies.
    Accepted,
}

/// A fuzz target's body: arbitrary bytes in, how far they got out.
pub type Body = fn(&[u8]) -> Reached;

/// The fuzz targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` call
/// them.
pub const TARGETS: &[(&str, Body)] = &[
    ("json_input", json_input),
    ("cbor_input", cbor_input),
    ("sigv4_request", sigv4_request),
    ("pipeline_declaration", pipeline_declaration),
];
