//! Lockgate's execution engine: how pipeline executions run, stop at manual approvals, hand
//! work to job workers, and resume; and `PipelineService`, the facade every front end calls.

pub mod clock;
pub mod decide;
pub mod jobs;
pub mod paging;
pub mod service;
pub mod state;
pub mod stored;
pub mod users;
pub mod views;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decide::EngineConfig;
pub use service::{PipelineService, DEFAULT_PIPELINE_CACHE, FINISHED_EXECUTIONS_IN_MEMORY};
