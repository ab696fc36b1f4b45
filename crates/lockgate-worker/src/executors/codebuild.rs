//! `Build/AWS/CodeBuild/1` and `Test/AWS/CodeBuild/1`: the project's buildspec (version 0.2) run
//! on this machine. The input artifacts are unpacked as CodeBuild lays them out (the primary
//! source, `PrimarySource` or the first, in `CODEBUILD_SRC_DIR`); the buildspec is the action's
//! `BuildspecOverride`, else the project's `buildspec`, else `buildspec.yml` at the primary
//! source's root (each either a buildspec itself or a path in the primary source). Its phases
//! run in one shell (see [`crate::buildspec`]) with the variables of the buildspec, the project
//! and the action's `EnvironmentVariables`, each overriding the one before, and the variables
//! CodeBuild sets. After a successful build, `env.exported-variables` become the action's output
//! variables and the output artifacts are packed: the first from `artifacts` (unless
//! `secondary-artifacts` names it), the others from `secondary-artifacts` by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lockgate_artifacts::{pack, unpack};
use lockgate_shapes::{ActionCategory, ActionTypeId, Artifact};

use super::aws;
use super::commands::{build_variables, environment, failure_text, run_script, with_output};
use crate::buildspec::{self, ArtifactFiles, BuildScript, Buildspec, Step};
use crate::executor::{Executor, Failure, JobContext, Success};
use crate::job_artifacts::{off_thread, store_output, unpack_inputs};
use crate::process::ShellExit;

/// The buildspec read when neither the action nor the project names one.
const DEFAULT_BUILDSPEC: &str = "buildspec.yml";

/// Runs CodeBuild actions. Any `ProjectName` runs; a project configured here can set its
/// buildspec, variables and timeout.
#[derive(Debug, Clone, Default)]
pub struct CodeBuild {
    projects: BTreeMap<String, Project>,
}

/// What a CodeBuild project sets for its builds here, where CodeBuild would keep it in the
/// project.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The project's buildspec: a buildspec itself (YAML with a `version`) or its path in the
    /// primary source. The action's `BuildspecOverride` wins over it.
    #[serde(default)]
    pub buildspec: Option<String>,
    /// Variables of every build of the project: they override the buildspec's `env.variables`
    /// and the action's `EnvironmentVariables` override them.
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    /// How long a build may run; the action's `timeoutInMinutes` when not set.
    #[serde(default)]
    pub timeout_minutes: Option<u64>,
}

impl CodeBuild {
    /// An executor knowing `projects` by name.
    pub fn new(projects: BTreeMap<String, Project>) -> CodeBuild {
        CodeBuild { projects }
    }
}

/// One entry of the action's `EnvironmentVariables`.
#[derive(serde::Deserialize)]
struct ConfiguredVariable {
    name: String,
    value: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[async_trait::async_trait]
impl Executor for CodeBuild {
    fn action_types(&self) -> Vec<ActionTypeId> {
        vec![
            aws(ActionCategory::Build, "CodeBuild"),
            aws(ActionCategory::Test, "CodeBuild"),
        ]
    }

    async fn run(&self, job: &mut JobContext) -> Result<Success, Failure> {
        let project_name = job.required("ProjectName")?.to_string();
        let project = self
            .projects
            .get(&project_name)
            .cloned()
            .unwrap_or_default();
        if job
            .config("BatchEnabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(Failure::configuration(format!(
                "The action {} runs a batch build (BatchEnabled), which a local build cannot",
                job.action.name
            )));
        }
        let action_variables = configured_variables(job)?;
        let declared_variables = environment(job)?;
        let primary = job.config("PrimarySource").map(str::to_string);
        let inputs = unpack_inputs(job, primary.as_deref()).await?;
        let (spec, origin) = load_buildspec(job, &project_name, &project, &inputs)?;
        job.log.line(&format!(
            "[Container] Running the buildspec {origin} for project {project_name}"
        ));
        let outputs = artifact_sections(job, &spec)?;

        let mut env = BTreeMap::new();
        let layers = [
            spec.env.variables.clone().into_iter().collect::<Vec<_>>(),
            project.environment_variables.clone().into_iter().collect(),
            declared_variables,
            action_variables,
        ];
        for (name, value) in layers.into_iter().flatten() {
            check_variable(job, &name, &value)?;
            env.insert(name, value);
        }
        env.extend(build_variables(job, &inputs));
        env.insert(
            "CODEBUILD_BUILD_ID".to_string(),
            format!("{project_name}:{}", job.job_id),
        );
        env.insert("CODEBUILD_BUILD_SUCCEEDING".to_string(), "1".to_string());

        for line in spec.ignored() {
            job.log.line(&line);
        }
        let script = spec.script();
        let timeout = project
            .timeout_minutes
            .map(|m| Duration::from_secs(m.saturating_mul(60)))
            .or_else(|| job.timeout());
        let run_env = env.clone().into_iter().collect();
        let outcome = run_script(job, &script.text, run_env, timeout).await?;
        match buildspec::failures(&outcome.exports) {
            Some(failures) if failures.is_empty() => {}
            Some(failures) => return Err(failed_commands(job, &script, &failures)),
            None => {
                let step = outcome
                    .step
                    .checked_sub(1)
                    .and_then(|i| script.steps.get(i));
                return Err(ended_early(job, outcome.exit, step, timeout));
            }
        }

        let exported = &spec.env.exported_variables;
        let mut output_variables = outcome.exports;
        output_variables.retain(|name, _| exported.contains(name));
        for missing in exported
            .iter()
            .filter(|n| !output_variables.contains_key(*n))
        {
            job.log.line(&format!(
                "[Container] The exported variable {missing} was not set by the build"
            ));
        }
        // Artifact paths may name the build's variables (`base-directory: $CODEBUILD_SRC_DIR_x`).
        env.extend(output_variables.clone());
        let src = job.workspace.src();
        for (index, (artifact, section)) in outputs.into_iter().enumerate() {
            let name = artifact.name.clone().unwrap_or_default();
            let staging = Staging {
                name: name.clone(),
                base: match &section.base_directory {
                    Some(dir) => src.join(expand(dir, &env)),
                    None => src.clone(),
                },
                dir: job.workspace.meta(&format!("artifact-{index}")),
                section,
            };
            let (root, files) = off_thread(move || staging.prepare()).await??;
            let bytes = store_output(job, &artifact, &root, &[]).await?;
            job.log.line(&format!(
                "[Container] Stored the output artifact {name}: {files} file{}, {bytes} bytes",
                if files == 1 { "" } else { "s" },
            ));
        }
        let commands = script.steps.len();
        Ok(Success {
            summary: Some(format!(
                "Build succeeded: {} phase{}, {} command{} in {:.1} s",
                script.phases,
                if script.phases == 1 { "" } else { "s" },
                commands,
                if commands == 1 { "" } else { "s" },
                outcome.elapsed.as_secs_f64()
            )),
            output_variables,
            current_revision: None,
            external_execution_id: Some(format!("{project_name}:{}", job.job_id)),
        })
    }
}

/// The action's `EnvironmentVariables` (a JSON array of `name`, `value` and `type`); only
/// PLAINTEXT values can be had locally.
fn configured_variables(job: &JobContext) -> Result<Vec<(String, String)>, Failure> {
    let Some(text) = job.config("EnvironmentVariables") else {
        return Ok(Vec::new());
    };
    let action = &job.action.name;
    let variables: Vec<ConfiguredVariable> = serde_json::from_str(text).map_err(|e| {
        Failure::configuration(format!(
            "The EnvironmentVariables of action {action} are not a JSON array of name, value \
             and type: {e}"
        ))
    })?;
    let mut env = Vec::new();
    for variable in variables {
        match variable.kind.as_deref() {
            None | Some("PLAINTEXT") => env.push((variable.name, variable.value)),
            Some(kind @ ("PARAMETER_STORE" | "SECRETS_MANAGER")) => {
                return Err(Failure::configuration(format!(
                    "The environment variable {} of action {action} is a {kind} reference, which \
                     a local build cannot read; give it as PLAINTEXT",
                    variable.name
                )))
            }
            Some(other) => {
                return Err(Failure::configuration(format!(
                    "The environment variable {} of action {action} has the type {other}; \
                     expected PLAINTEXT",
                    variable.name
                )))
            }
        }
    }
    Ok(env)
}

/// Refuses a variable the environment of a process cannot hold.
fn check_variable(job: &JobContext, name: &str, value: &str) -> Result<(), Failure> {
    if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
        return Err(Failure::configuration(format!(
            "The environment variable {name:?} of action {} cannot be set: a name must be \
             non-empty without '=' or NUL, a value without NUL",
            job.action.name
        )));
    }
    Ok(())
}

/// The buildspec: the action's `BuildspecOverride`, else the project's, else `buildspec.yml`,
/// each either the buildspec itself or its path in the primary source. Returns it with where
/// it comes from, for messages.
fn load_buildspec(
    job: &JobContext,
    project_name: &str,
    project: &Project,
    inputs: &[(String, PathBuf)],
) -> Result<(Buildspec, String), Failure> {
    let (given, whose) = match (job.config("BuildspecOverride"), &project.buildspec) {
        (Some(text), _) => (
            text.to_string(),
            format!("the BuildspecOverride of action {}", job.action.name),
        ),
        (None, Some(text)) => (
            text.clone(),
            format!("the buildspec of project {project_name}"),
        ),
        (None, None) => (DEFAULT_BUILDSPEC.to_string(), String::new()),
    };
    let (text, origin) = if buildspec::is_inline(&given) {
        (given, format!("given in {whose}"))
    } else {
        let path = given.trim();
        let (source, dir) = inputs
            .first()
            .map(|(name, dir)| (name.as_str(), dir.clone()))
            .unwrap_or(("", job.workspace.src()));
        let named_by = if whose.is_empty() {
            String::new()
        } else {
            format!(" (named by {whose})")
        };
        let text = std::fs::read_to_string(dir.join(path)).map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "it is not there".to_string()
            } else {
                e.to_string()
            };
            Failure::configuration(format!(
                "The buildspec {path}{named_by} cannot be read from the primary source \
                 {source}: {why}"
            ))
        })?;
        (text, path.to_string())
    };
    let spec = buildspec::parse(&text)
        .map_err(|e| Failure::configuration(format!("The buildspec {origin} is not valid: {e}")))?;
    Ok((spec, origin))
}

/// The buildspec's section for each output artifact: the one of `secondary-artifacts` its name
/// identifies, else for the first `artifacts` itself.
fn artifact_sections(
    job: &JobContext,
    spec: &Buildspec,
) -> Result<Vec<(Artifact, ArtifactFiles)>, Failure> {
    let mut sections = Vec::new();
    for (index, artifact) in job.output_artifacts().iter().enumerate() {
        let name = artifact.name.as_deref().unwrap_or_default();
        let section = spec.artifacts.as_ref().and_then(|a| {
            a.secondary_artifacts
                .get(name)
                .or((index == 0 && !a.files.is_empty()).then_some(a))
        });
        let Some(section) = section else {
            let wanted = if index == 0 {
                "artifacts (or secondary-artifacts."
            } else {
                "secondary-artifacts ("
            };
            return Err(Failure::job(format!(
                "The buildspec does not describe the output artifact {name} of action {}: it \
                 needs {wanted}{name})",
                job.action.name
            )));
        };
        sections.push((artifact.clone(), section.clone()));
    }
    Ok(sections)
}

/// The failure of a build that ran to its end with failed commands: each with its phase and
/// exit status, then the end of the output.
fn failed_commands(job: &JobContext, script: &BuildScript, failures: &[(usize, i32)]) -> Failure {
    let lines: Vec<String> = failures
        .iter()
        .map(|&(step, status)| {
            let step = step.checked_sub(1).and_then(|i| script.steps.get(i));
            let what = failure_text(
                job,
                ShellExit::Exited(status),
                step.map(|s| s.command.trim_end()),
            );
            match step {
                Some(step) => format!("Phase {} failed: {what}", step.place()),
                None => what,
            }
        })
        .collect();
    with_output(job, &lines.join("\n"))
}

/// The failure of a build whose shell ended before the script's end, while `step` ran.
fn ended_early(
    job: &JobContext,
    exit: ShellExit,
    step: Option<&Step>,
    timeout: Option<Duration>,
) -> Failure {
    let command = step.map(|s| s.command.trim_end());
    let phase = step.map(Step::place).unwrap_or_default();
    let what = match (exit, command) {
        (ShellExit::TimedOut, _) => format!(
            "The build did not finish within its timeout of {} minutes{}",
            timeout.map(|t| t.as_secs() / 60).unwrap_or_default(),
            command
                .map(|c| format!(" (phase {phase}, running: {c})"))
                .unwrap_or_default()
        ),
        (ShellExit::Cancelled, _) => "The build was cancelled".to_string(),
        (ShellExit::Exited(code), Some(c)) => format!(
            "Phase {phase} failed: Command ended the build's shell: {c} (exit status {code}); \
             no command, finally block or phase after it ran"
        ),
        (ShellExit::Exited(code), None) => {
            format!("The build's shell ended before its first command (exit status {code})")
        }
        (exit @ ShellExit::Signalled(_), _) => match step {
            Some(_) => format!("Phase {phase} failed: {}", failure_text(job, exit, command)),
            None => failure_text(job, exit, None),
        },
    };
    with_output(job, &what)
}

/// The files of one output artifact, gathered in a directory of the worker's before packing.
struct Staging {
    /// The output artifact's name.
    name: String,
    /// The directory the files are taken from.
    base: PathBuf,
    /// Where they are gathered (`<dir>`, and `<dir>-excluded`, `<dir>-flat` when needed).
    dir: PathBuf,
    /// What the buildspec says of the artifact.
    section: ArtifactFiles,
}

impl Staging {
    /// Gathers the files `section` describes (relative to its base directory, less the
    /// excluded, flat when it discards paths). Returns the directory holding them, ready to be
    /// packed whole, and how many there are.
    fn prepare(self) -> Result<(PathBuf, usize), Failure> {
        let Staging {
            name,
            base,
            dir,
            section,
        } = self;
        let packing = |e: lockgate_artifacts::ArtifactError| {
            Failure::job(format!("Packing the output artifact {name}: {e}"))
        };
        let io = |e: std::io::Error| {
            Failure::system(format!("Preparing the output artifact {name}: {e}"))
        };
        if !base.is_dir() {
            return Err(Failure::job(format!(
                "The base directory {} of the output artifact {name} does not exist after the \
                 build",
                section.base_directory.as_deref().unwrap_or_default()
            )));
        }
        let sibling = |suffix: &str| {
            let mut path = dir.clone().into_os_string();
            path.push(suffix);
            PathBuf::from(path)
        };
        unpack(&pack(&base, &section.files).map_err(packing)?, &dir).map_err(packing)?;
        if !section.exclude_paths.is_empty() {
            let listing = sibling("-excluded");
            let excluded = pack(&dir, &section.exclude_paths).map_err(packing)?;
            unpack(&excluded, &listing).map_err(packing)?;
            for file in files_under(&listing).map_err(io)? {
                std::fs::remove_file(dir.join(&file)).map_err(io)?;
            }
        }
        let files = files_under(&dir).map_err(io)?;
        if files.is_empty() {
            return Err(Failure::job(format!(
                "No file matches the files of the output artifact {name} ({}) in {}",
                section.files.join(", "),
                section
                    .base_directory
                    .as_deref()
                    .unwrap_or("the primary source")
            )));
        }
        if !section.discard_paths {
            return Ok((dir, files.len()));
        }
        let flat = sibling("-flat");
        std::fs::create_dir_all(&flat).map_err(io)?;
        let mut seen: BTreeMap<std::ffi::OsString, &Path> = BTreeMap::new();
        for file in &files {
            let Some(file_name) = file.file_name() else {
                continue;
            };
            if let Some(first) = seen.insert(file_name.to_os_string(), file) {
                return Err(Failure::job(format!(
                    "The output artifact {name} discards paths, but two of its files are named \
                     {}: {} and {}",
                    file_name.to_string_lossy(),
                    first.display(),
                    file.display()
                )));
            }
            std::fs::rename(dir.join(file), flat.join(file_name)).map_err(io)?;
        }
        Ok((flat, files.len()))
    }
}

/// The files under `dir`, as paths relative to it, in order.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `text` with `$NAME` and `${NAME}` replaced by the variables' values (empty when unset).
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() || !name.chars().all(is_name) {
            out.push('$');
            rest = after;
        } else {
            out.push_str(env.get(name).map(String::as_str).unwrap_or_default());
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    //! Expanding variables in artifact paths.

    use super::*;

    #[test]
    fn variables_in_paths_are_expanded() {
        let env = BTreeMap::from([
            (
                "CODEBUILD_SRC_DIR_lib".to_string(),
                "/w/inputs/lib".to_string(),
            ),
            ("OUT".to_string(), "dist".to_string()),
        ]);
        assert_eq!(
            expand("$CODEBUILD_SRC_DIR_lib/build", &env),
            "/w/inputs/lib/build"
        );
        assert_eq!(expand("${OUT}-x/$MISSING", &env), "dist-x/");
        assert_eq!(expand("cost$ 5 ${ and $", &env), "cost$ 5 ${ and $");
    }
}
