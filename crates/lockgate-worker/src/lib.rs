//! Lockgate's job worker: it takes jobs through CodePipeline's job-worker protocol
//! (PollForJobs, AcknowledgeJob, PutJobSuccessResult / PutJobFailureResult) and runs the
//! AWS-owned actions that can run on this machine.
//!
//! - [`JobChannel`]: where jobs come from and results go: the server's own service in the same
//!   process, or a server over HTTP (`lockgate worker --endpoint-url`). The worker cannot tell
//!   them apart.
//! - [`Executor`]: runs one kind of action. [`executors`] holds the built-in ones: Commands
//!   and CodeBuild (a buildspec's phases run locally).
//! - [`Worker`]: polls for the executors' action types, runs up to N jobs at once, watches each
//!   job (a stopped execution or a job timeout kills its processes) and reports the result.
//! - [`RunLog`]: a run's output, timestamped, the tail kept within a size bound.
//! - Long runs carry on across continuation jobs (`continuation`), keeping a record in the
//!   artifact store (`run_record`) that any worker serving a continuation job reads.

mod buildspec;
mod channel;
mod continuation;
mod executor;
pub mod executors;
pub mod git;
mod job_artifacts;
mod process;
mod run_record;
mod runlog;
mod script;
mod worker;
mod workspace;

pub use channel::{ChannelError, JobChannel};
pub use executor::{Executor, Failure, JobContext, Success};
pub use process::{ShellExit, ShellRun};
pub use runlog::RunLog;
pub use worker::{Worker, WorkerSettings};
pub use workspace::Workspace;
