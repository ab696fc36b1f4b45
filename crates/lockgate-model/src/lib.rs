//! Lockgate's domain: identities, pipeline definitions and their validation, action types and
//! status words. No I/O and nothing async lives here.

pub mod action_types;
pub mod artifact_names;
pub mod caller;
pub mod catalogue;
pub mod clock;
pub mod conditions;
pub mod ids;
pub mod notice;
pub mod rule_types;
pub mod validate;
pub mod variable_check;
pub mod variables;

pub use action_types::{ActionTypeKey, ActionTypeRegistry};
pub use caller::Caller;
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{ActionExecutionId, ApprovalToken, ExecutionId, JobId, PipelineName};
pub use validate::{validate_pipeline, ValidatedPipeline};
