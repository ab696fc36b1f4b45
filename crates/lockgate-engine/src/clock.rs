//! Time as the engine sees it: the [`Clock`] of `lockgate-model`, re-exported so the engine's
//! modules and its users keep naming `lockgate_engine::Clock`.

pub use lockgate_model::clock::{Clock, ManualClock, SystemClock};
