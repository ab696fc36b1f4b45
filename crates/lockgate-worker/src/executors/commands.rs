//! `Compute/AWS/Commands/1`: the action's `commands` run in order by one `/bin/sh` in the
//! primary input's directory, with the action's `environmentVariables` and the variables a
//! CodeBuild build sets; `outputVariables` are read from the shell after the last command, and
//! the output artifact is packed from its `files` globs. A command that exits non-zero fails
//! the action with the command, its exit status and the end of the output.

use std::path::PathBuf;
use std::time::Instant;

use lockgate_shapes::{ActionCategory, ActionTypeId, EnvironmentVariableType};

use super::aws;
use crate::executor::{Executor, Failure, JobContext, Success, MAX_FAILURE_MESSAGE};
use crate::job_artifacts::{store_output, unpack_inputs};
use crate::process::{ShellExit, ShellRun};
use crate::script;

/// Runs Commands actions.
pub struct Commands;

#[async_trait::async_trait]
impl Executor for Commands {
    fn action_types(&self) -> Vec<ActionTypeId> {
        vec![aws(ActionCategory::Compute, "Commands")]
    }

    async fn run(&self, job: &mut JobContext) -> Result<Success, Failure> {
        let commands = job
            .action
            .commands
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|c| job.resolve(c, "commands"))
            .collect::<Result<Vec<_>, _>>()?;
        if commands.is_empty() {
            return Err(Failure::configuration(format!(
                "The Commands action {} has no commands",
                job.action.name
            )));
        }
        let mut env = environment(job)?;
        let inputs = unpack_inputs(job, None).await?;
        env.extend(build_variables(job, &inputs));
        let exports = job.action.output_variables.clone().unwrap_or_default();
        let timeout = job.timeout();
        let outcome = run_script(job, &script::commands(&commands, &exports), env, timeout).await?;
        match outcome.exit {
            ShellExit::Exited(0) => {}
            exit => {
                let command = outcome
                    .step
                    .checked_sub(1)
                    .and_then(|i| commands.get(i))
                    .map(String::as_str);
                return Err(failed(job, exit, command));
            }
        }
        let mut output_variables = outcome.exports;
        output_variables.retain(|name, _| exports.contains(name));
        for missing in exports
            .iter()
            .filter(|n| !output_variables.contains_key(*n))
        {
            job.log.line(&format!(
                "[Container] The output variable {missing} was not set by the commands"
            ));
        }
        let src = job.workspace.src();
        for artifact in job.output_artifacts().to_vec() {
            let name = artifact.name.clone().unwrap_or_default();
            let files = job
                .action
                .output_artifacts
                .iter()
                .flatten()
                .find(|o| o.name == name)
                .and_then(|o| o.files.clone())
                .unwrap_or_default();
            store_output(job, &artifact, &src, &files).await?;
        }
        Ok(Success {
            summary: Some(format!(
                "Ran {} command{} in {:.1} s",
                commands.len(),
                if commands.len() == 1 { "" } else { "s" },
                outcome.elapsed.as_secs_f64()
            )),
            output_variables,
            current_revision: None,
            external_execution_id: None,
        })
    }
}

/// The action's `environmentVariables`, resolved (only PLAINTEXT values can be had locally).
pub(crate) fn environment(job: &JobContext) -> Result<Vec<(String, String)>, Failure> {
    let mut env = Vec::new();
    for variable in job.action.environment_variables.iter().flatten() {
        if matches!(
            variable.r#type,
            Some(EnvironmentVariableType::SecretsManager)
        ) {
            return Err(Failure::configuration(format!(
                "The environment variable {} of action {} is a SECRETS_MANAGER reference, \
                 which a local worker cannot read; give it as PLAINTEXT",
                variable.name, job.action.name
            )));
        }
        env.push((
            variable.name.clone(),
            job.resolve(&variable.value, "environment variables")?,
        ));
    }
    Ok(env)
}

/// The variables a CodeBuild build sets that a script may rely on.
pub(crate) fn build_variables(
    job: &JobContext,
    inputs: &[(String, PathBuf)],
) -> Vec<(String, String)> {
    let src = job.workspace.src();
    let mut env = vec![
        ("CODEBUILD_SRC_DIR".to_string(), src.display().to_string()),
        (
            "CODEBUILD_BUILD_ID".to_string(),
            format!("lockgate:{}", job.job_id),
        ),
        (
            "CODEBUILD_INITIATOR".to_string(),
            format!("codepipeline/{}", job.pipeline_name()),
        ),
        ("CODEBUILD_CI".to_string(), "true".to_string()),
        (
            "CODEPIPELINE_EXECUTION_ID".to_string(),
            job.execution_id().to_string(),
        ),
        (
            "HOME".to_string(),
            job.workspace.meta("home").display().to_string(),
        ),
    ];
    let primary_revision = job
        .input_artifacts()
        .first()
        .and_then(|a| a.revision.clone());
    if let Some(revision) = primary_revision {
        env.push((
            "CODEBUILD_RESOLVED_SOURCE_VERSION".to_string(),
            revision.clone(),
        ));
        env.push(("CODEBUILD_SOURCE_VERSION".to_string(), revision));
    }
    for (name, dir) in inputs.iter().skip(1) {
        env.push((
            format!("CODEBUILD_SRC_DIR_{name}"),
            dir.display().to_string(),
        ));
    }
    env
}

/// How a script run ended.
pub(crate) struct ScriptOutcome {
    pub exit: ShellExit,
    /// The command running when it ended (1-based; 0 after the last).
    pub step: usize,
    /// The exported variables.
    pub exports: std::collections::BTreeMap<String, String>,
    pub elapsed: std::time::Duration,
}

/// Runs `text` as the job's script in its primary source directory, killed after `timeout`.
pub(crate) async fn run_script(
    job: &mut JobContext,
    text: &str,
    mut env: Vec<(String, String)>,
    timeout: Option<std::time::Duration>,
) -> Result<ScriptOutcome, Failure> {
    let script = job.workspace.meta("script.sh");
    let step_file = job.workspace.meta("step");
    let exports_file = job.workspace.meta("exports");
    let home = job.workspace.meta("home");
    let io = |e: std::io::Error| Failure::system(format!("Preparing the run: {e}"));
    std::fs::write(&script, text).map_err(io)?;
    std::fs::create_dir_all(&home).map_err(io)?;
    env.push(("LOCKGATE_STEP_FILE".into(), step_file.display().to_string()));
    env.push((
        "LOCKGATE_EXPORTS_FILE".into(),
        exports_file.display().to_string(),
    ));
    let started = Instant::now();
    let src = job.workspace.src();
    let exit = ShellRun {
        script: &script,
        cwd: &src,
        env: &env,
        log: &job.log,
        timeout,
    }
    .run(&mut job.cancel)
    .await
    .map_err(|e| Failure::system(format!("Starting /bin/sh: {e}")))?;
    let step = std::fs::read_to_string(&step_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let exports = std::fs::read(&exports_file)
        .map(|b| script::read_exports(&b))
        .unwrap_or_default();
    Ok(ScriptOutcome {
        exit,
        step,
        exports,
        elapsed: started.elapsed(),
    })
}

/// The failure of a run that did not exit 0, naming `command` and ending with the output's
/// last lines.
pub(crate) fn failed(job: &JobContext, exit: ShellExit, command: Option<&str>) -> Failure {
    with_output(job, &failure_text(job, exit, command))
}

/// What went wrong when a run ended with `exit` while `command` ran.
pub(crate) fn failure_text(job: &JobContext, exit: ShellExit, command: Option<&str>) -> String {
    match exit {
        ShellExit::Exited(code) => match command {
            Some(c) => format!("Command did not exit successfully: {c} (exit status {code})"),
            None => format!("The commands did not exit successfully (exit status {code})"),
        },
        ShellExit::Signalled(signal) => match command {
            Some(c) => format!("Command was killed by signal {signal}: {c}"),
            None => format!("The commands were killed by signal {signal}"),
        },
        ShellExit::TimedOut => format!(
            "The commands did not finish within the action's timeout of {} minutes{}",
            job.action.timeout_in_minutes.unwrap_or_default(),
            command
                .map(|c| format!(" (running: {c})"))
                .unwrap_or_default()
        ),
        ShellExit::Cancelled => "The run was cancelled".to_string(),
    }
}

/// A job failure saying `what`, followed by as many of the output's last lines as fit.
pub(crate) fn with_output(job: &JobContext, what: &str) -> Failure {
    let room = MAX_FAILURE_MESSAGE.saturating_sub(what.len() + 20);
    let tail = job.log.last_lines(room);
    let message = if tail.is_empty() {
        what.to_string()
    } else {
        format!("{what}\nLast output:\n{tail}")
    };
    Failure::job(message)
}
