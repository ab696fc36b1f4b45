//! CodeBuild's build specification (buildspec), version 0.2, read into typed structs, and the
//! one shell script a local build runs for it.
//!
//! The phases (`install`, `pre_build`, `build`, `post_build`) run in order in one shell, so a
//! variable one command sets or a `cd` it makes holds for the commands after it. Each command
//! is run through `command eval`, so a command that does not parse fails alone (exit status 2)
//! instead of ending the shell. As in CodeBuild: when a command fails, the rest of its phase's
//! commands are skipped and the phase's `finally` commands run; a failure in `install` or
//! `pre_build` then ends the build (unless the phase says `on-failure: CONTINUE`), a failure in
//! `build` still runs `post_build`, with `CODEBUILD_BUILD_SUCCEEDING` set to 0. A command that
//! ends the shell itself (`exit`, or a failure under `set -e`) ends the build there.
//!
//! After the last phase the script writes the exported variables, the failed commands (step
//! and exit status) and an end marker to the exports file; a run without the marker ended early.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;

use crate::script::{push_exports, quote, PREAMBLE};

/// The name under which the script writes its failed commands to the exports file.
pub(crate) const FAILURES: &str = "__lockgate_failures";

/// The name the script writes to the exports file once it ran to its end.
pub(crate) const END: &str = "__lockgate_end";

/// A buildspec, as its YAML says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Buildspec {
    /// The buildspec version; only `0.2` runs.
    pub version: String,
    /// The user to run as (not honoured locally).
    #[serde(default)]
    pub run_as: Option<String>,
    /// Variables and the shell.
    #[serde(default, deserialize_with = "or_default")]
    pub env: Env,
    /// Proxy settings (not used locally).
    #[serde(default)]
    pub proxy: Option<Value>,
    /// Batch build settings (not used locally).
    #[serde(default)]
    pub batch: Option<Value>,
    /// The commands, by phase.
    #[serde(default, deserialize_with = "or_default")]
    pub phases: Phases,
    /// Test reports (not used locally).
    #[serde(default)]
    pub reports: Option<Value>,
    /// The files of the output artifacts.
    #[serde(default)]
    pub artifacts: Option<ArtifactFiles>,
    /// Cached paths (not used locally).
    #[serde(default)]
    pub cache: Option<Value>,
}

/// The `env` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Env {
    /// `bash` or `sh`.
    #[serde(default)]
    pub shell: Option<String>,
    /// Plain variables (a number or boolean is taken as written).
    #[serde(default, deserialize_with = "or_default")]
    pub variables: BTreeMap<String, String>,
    /// Variables from Systems Manager Parameter Store (refused locally).
    #[serde(default, deserialize_with = "or_default")]
    pub parameter_store: BTreeMap<String, String>,
    /// Variables the build exports (the action's output variables).
    #[serde(default, deserialize_with = "or_default")]
    pub exported_variables: Vec<String>,
    /// Variables from Secrets Manager (refused locally).
    #[serde(default, deserialize_with = "or_default")]
    pub secrets_manager: BTreeMap<String, String>,
    /// Whether git uses CodeBuild's credential helper (not used locally).
    #[serde(default)]
    pub git_credential_helper: Option<String>,
}

/// The `phases` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Phases {
    /// Installs what the build needs.
    #[serde(default)]
    pub install: Option<Phase>,
    /// Runs before the build.
    #[serde(default)]
    pub pre_build: Option<Phase>,
    /// The build.
    #[serde(default)]
    pub build: Option<Phase>,
    /// Runs after the build, also when it failed.
    #[serde(default)]
    pub post_build: Option<Phase>,
}

/// One phase.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Phase {
    /// The user to run as (not honoured locally).
    #[serde(default)]
    pub run_as: Option<String>,
    /// What a failure in the phase does to the phases after it.
    #[serde(default, deserialize_with = "on_failure")]
    pub on_failure: OnFailure,
    /// Runtimes to install (a local build uses the worker's own tools).
    #[serde(default, deserialize_with = "or_default")]
    pub runtime_versions: BTreeMap<String, String>,
    /// The commands, in order; the first that fails skips the rest.
    #[serde(default, deserialize_with = "or_default")]
    pub commands: Vec<String>,
    /// Commands run after `commands`, whether they failed or not.
    #[serde(default, deserialize_with = "or_default")]
    pub finally: Vec<String>,
}

/// A phase's `on-failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum OnFailure {
    /// The build ends (after `build`, `post_build` still runs).
    #[default]
    Abort,
    /// The next phase runs; the build still fails at its end.
    Continue,
}

/// The `artifacts` section, or one of its `secondary-artifacts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ArtifactFiles {
    /// Globs of the files to pack, relative to the base directory.
    #[serde(default, deserialize_with = "or_default")]
    pub files: Vec<String>,
    /// The artifact's name (CodePipeline names output artifacts itself).
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the files are packed flat, at the zip's root.
    #[serde(default, deserialize_with = "yes_no")]
    pub discard_paths: bool,
    /// The directory, relative to the primary source, the files are taken from.
    #[serde(default)]
    pub base_directory: Option<String>,
    /// Globs of files left out, relative to the base directory.
    #[serde(default, deserialize_with = "or_default")]
    pub exclude_paths: Vec<String>,
    /// Whether symbolic links are kept (they are always left out locally).
    #[serde(default, deserialize_with = "yes_no")]
    pub enable_symlinks: bool,
    /// The S3 prefix of the artifact (not used locally).
    #[serde(default)]
    pub s3_prefix: Option<String>,
    /// More artifacts, by artifact identifier (an output artifact's name).
    #[serde(default, deserialize_with = "or_default")]
    pub secondary_artifacts: BTreeMap<String, ArtifactFiles>,
}

/// The four phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhaseName {
    /// `install`.
    Install,
    /// `pre_build`.
    PreBuild,
    /// `build`.
    Build,
    /// `post_build`.
    PostBuild,
}

impl PhaseName {
    /// The phases in the order they run.
    pub(crate) const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];

    /// The name CodeBuild's log gives the phase.
    pub(crate) fn label(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }

    /// Whether a failure of the phase (with `on-failure: ABORT`) skips the phases after it.
    fn failure_ends_build(self) -> bool {
        matches!(self, PhaseName::Install | PhaseName::PreBuild)
    }
}

/// One command of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Its phase.
    pub phase: PhaseName,
    /// Whether it is one of the phase's `finally` commands.
    pub finally: bool,
    /// The command as the buildspec gives it.
    pub command: String,
}

impl Step {
    /// Where the command is, for a message: `BUILD` or `BUILD (finally)`.
    pub(crate) fn place(&self) -> String {
        if self.finally {
            format!("{} (finally)", self.phase.label())
        } else {
            self.phase.label().to_string()
        }
    }
}

/// The script of a build.
#[derive(Debug, Clone)]
pub(crate) struct BuildScript {
    /// The shell text.
    pub text: String,
    /// The commands by step (step `n` is `steps[n - 1]`).
    pub steps: Vec<Step>,
    /// How many phases the buildspec has.
    pub phases: usize,
}

/// Whether `text` (a `BuildspecOverride`, a project's `buildspec`) is a buildspec itself rather
/// than the path of one: a YAML mapping with a `version`.
pub(crate) fn is_inline(text: &str) -> bool {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Mapping(map)) => map.contains_key("version"),
        _ => false,
    }
}

/// Reads a buildspec, checked: YAML errors say where (line and column); the version must be
/// 0.2; what a local build cannot provide (Parameter Store, Secrets Manager, a shell other than
/// `sh` or `bash`) is refused.
pub(crate) fn parse(text: &str) -> Result<Buildspec, String> {
    let spec: Buildspec = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    spec.check()?;
    Ok(spec)
}

impl Buildspec {
    fn check(&self) -> Result<(), String> {
        if self.version != "0.2" {
            return Err(format!(
                "version {} is not supported: a local build runs buildspec version 0.2 only",
                self.version
            ));
        }
        if !self.env.parameter_store.is_empty() {
            return Err(format!(
                "env.parameter-store ({}) cannot be read by a local build; give the values in \
                 env.variables, the project's environment_variables or the action's \
                 EnvironmentVariables",
                names(self.env.parameter_store.keys())
            ));
        }
        if !self.env.secrets_manager.is_empty() {
            return Err(format!(
                "env.secrets-manager ({}) cannot be read by a local build; give the values in \
                 the project's environment_variables or the action's EnvironmentVariables",
                names(self.env.secrets_manager.keys())
            ));
        }
        match self.env.shell.as_deref() {
            None | Some("bash" | "/bin/bash" | "sh" | "/bin/sh") => {}
            Some(other) => {
                return Err(format!(
                    "env.shell {other} is not supported: a local build runs bash or sh"
                ))
            }
        }
        if let Some(artifacts) = &self.artifacts {
            if artifacts.files.is_empty() && artifacts.secondary_artifacts.is_empty() {
                return Err("artifacts has no files".to_string());
            }
            for (id, secondary) in &artifacts.secondary_artifacts {
                if secondary.files.is_empty() {
                    return Err(format!("artifacts.secondary-artifacts.{id} has no files"));
                }
                if !secondary.secondary_artifacts.is_empty() {
                    return Err(format!(
                        "artifacts.secondary-artifacts.{id} has secondary-artifacts of its own"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The phases the buildspec has, in the order they run.
    pub(crate) fn phases(&self) -> Vec<(PhaseName, &Phase)> {
        let p = &self.phases;
        PhaseName::ALL
            .into_iter()
            .zip([&p.install, &p.pre_build, &p.build, &p.post_build])
            .filter_map(|(name, phase)| phase.as_ref().map(|phase| (name, phase)))
            .collect()
    }

    /// Whether the script runs in bash.
    pub(crate) fn bash(&self) -> bool {
        matches!(self.env.shell.as_deref(), Some("bash" | "/bin/bash"))
    }

    /// Log lines about what the buildspec asks that a local build does not do.
    pub(crate) fn ignored(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut ignore = |what: &str, why: &str| {
            lines.push(format!("[Container] {what} is ignored: {why}"));
        };
        let own_user = "a local build runs as the worker's user";
        if let Some(user) = &self.run_as {
            ignore(&format!("run-as {user}"), own_user);
        }
        for (name, phase) in self.phases() {
            if let Some(user) = &phase.run_as {
                ignore(
                    &format!("run-as {user} of phase {}", name.label()),
                    own_user,
                );
            }
            if !phase.runtime_versions.is_empty() {
                let runtimes = phase
                    .runtime_versions
                    .iter()
                    .map(|(runtime, version)| format!("{runtime} {version}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                ignore(
                    &format!("runtime-versions ({runtimes})"),
                    "a local build uses the tools installed on the worker",
                );
            }
        }
        let unused = "a local build does not use it";
        for (section, present) in [
            ("proxy", self.proxy.is_some()),
            ("batch", self.batch.is_some()),
            ("reports", self.reports.is_some()),
            ("cache", self.cache.is_some()),
            (
                "env.git-credential-helper",
                self.env.git_credential_helper.is_some(),
            ),
        ] {
            if present {
                ignore(section, unused);
            }
        }
        if let Some(artifacts) = &self.artifacts {
            let sets = std::iter::once(("artifacts".to_string(), artifacts)).chain(
                artifacts
                    .secondary_artifacts
                    .iter()
                    .map(|(id, set)| (format!("artifacts.secondary-artifacts.{id}"), set)),
            );
            for (section, set) in sets {
                if let Some(name) = &set.name {
                    ignore(
                        &format!("{section}.name {name}"),
                        "CodePipeline names the output artifacts",
                    );
                }
                if set.s3_prefix.is_some() {
                    ignore(&format!("{section}.s3-prefix"), unused);
                }
                if set.enable_symlinks {
                    ignore(
                        &format!("{section}.enable-symlinks"),
                        "symbolic links are left out of artifacts",
                    );
                }
            }
        }
        lines
    }

    /// The script running the phases, then writing `env.exported-variables`, the failed
    /// commands and the end marker to the exports file.
    pub(crate) fn script(&self) -> BuildScript {
        let mut text = String::new();
        if self.bash() {
            text.push_str(BASH);
        }
        text.push_str(PREAMBLE);
        text.push_str(HELPERS);
        let mut steps = Vec::new();
        let phases = self.phases();
        for (name, phase) in &phases {
            let label = name.label();
            text.push_str("if [ \"$__lockgate_go\" = 1 ]; then\n");
            text.push_str(&format!(
                "printf '[Container] Entering phase %s\\n' {label}\n\
                 __lockgate_phase_failed=0\n"
            ));
            for (finally, commands) in [(false, &phase.commands), (true, &phase.finally)] {
                text.push_str("__lockgate_ok=1\n");
                for command in commands {
                    steps.push(Step {
                        phase: *name,
                        finally,
                        command: command.clone(),
                    });
                    push_step(&mut text, steps.len(), command);
                }
            }
            let on_failure = if phase.on_failure == OnFailure::Abort && name.failure_ends_build() {
                "\n__lockgate_go=0"
            } else {
                ""
            };
            text.push_str(&format!(
                "if [ \"$__lockgate_phase_failed\" = 1 ]; then\n\
                 printf '[Container] Phase complete: %s State: FAILED\\n' {label}{on_failure}\n\
                 else\n\
                 printf '[Container] Phase complete: %s State: SUCCEEDED\\n' {label}\n\
                 fi\n\
                 fi\n"
            ));
        }
        push_exports(&mut text, &self.env.exported_variables);
        text.push_str(&format!(
            "printf '%s=%s\\0' {FAILURES} \"$__lockgate_failures\" >> \"$LOCKGATE_EXPORTS_FILE\"\n\
             printf '%s=1\\0' {END} >> \"$LOCKGATE_EXPORTS_FILE\"\n\
             exit 0\n"
        ));
        BuildScript {
            text,
            steps,
            phases: phases.len(),
        }
    }
}

/// The failed commands a run wrote (step and exit status, in the order they failed), or `None`
/// when the run did not reach its end.
pub(crate) fn failures(exports: &BTreeMap<String, String>) -> Option<Vec<(usize, i32)>> {
    exports.get(END)?;
    let text = exports
        .get(FAILURES)
        .map(String::as_str)
        .unwrap_or_default();
    Some(
        text.split_whitespace()
            .filter_map(|entry| {
                let (step, status) = entry.split_once(':')?;
                Some((step.parse().ok()?, status.parse().ok()?))
            })
            .collect(),
    )
}

/// Runs the script again in bash when the buildspec asks for it and bash is there.
const BASH: &str = "\
if [ -z \"${BASH_VERSION-}\" ]; then
    if [ -x /bin/bash ]; then exec /bin/bash \"$0\"; fi
    printf '[Container] env.shell is bash but /bin/bash is not installed: running with /bin/sh\\n'
fi
";

/// The state of a run: whether phases still run, the failed commands, and what a failure does.
const HELPERS: &str = "\
__lockgate_go=1
__lockgate_failures=''
__lockgate_fail() {
    __lockgate_ok=0
    __lockgate_phase_failed=1
    __lockgate_failures=\"$__lockgate_failures $1:$2\"
    CODEBUILD_BUILD_SUCCEEDING=0
    export CODEBUILD_BUILD_SUCCEEDING
}
";

/// Appends command number `step`: run (in the current shell) unless an earlier command of its
/// block failed, its failure recorded.
fn push_step(text: &mut String, step: usize, command: &str) {
    let quoted = quote(command);
    text.push_str(&format!(
        "if [ \"$__lockgate_ok\" = 1 ]; then\n\
         __lockgate_step {step} {quoted}\n\
         command eval {quoted}\n\
         __lockgate_rc=$?\n\
         if [ \"$__lockgate_rc\" -ne 0 ]; then __lockgate_fail {step} \"$__lockgate_rc\"; fi\n\
         fi\n"
    ));
}

fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    keys.map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// A value that may be left empty in the YAML (`env:` with nothing under it).
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `yes`/`no` (or `true`/`false`).
fn yes_no<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" | "" => Ok(false),
        _ => Err(serde::de::Error::custom(format!(
            "expected yes or no, found {text:?}"
        ))),
    }
}

/// `ABORT` or `CONTINUE`.
fn on_failure<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OnFailure, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    match text.as_str() {
        "ABORT" | "" => Ok(OnFailure::Abort),
        "CONTINUE" => Ok(OnFailure::Continue),
        retry if retry.starts_with("RETRY") => Err(serde::de::Error::custom(format!(
            "on-failure {retry} is not supported by a local build: use ABORT or CONTINUE"
        ))),
        other => Err(serde::de::Error::custom(format!(
            "on-failure {other:?} is not ABORT or CONTINUE"
        ))),
    }
}

#[cfg(test)]
mod tests {
    //! Reading buildspecs: the fields, the version, YAML errors and their position, scalars
    //! taken as written; and the script's shape.

    use super::*;

    const FULL: &str = "\
version: 0.2
env:
  shell: bash
  variables:
    GREETING: hello
    RETRIES: 3
    RATIO: 1.10
    ENABLED: true
    EMPTY:
  exported-variables:
    - VERSION
phases:
  install:
    runtime-versions:
      nodejs: 18
    commands:
      - echo install
  pre_build:
    on-failure: CONTINUE
    commands:
      - echo pre
  build:
    commands:
      - make
      - |
        echo 'multi'
        echo line
    finally:
      - echo cleanup
  post_build:
    commands:
      - echo done
artifacts:
  files:
    - '**/*'
  base-directory: dist
  discard-paths: yes
  secondary-artifacts:
    Docs:
      files: [docs/*.html]
      discard-paths: no
cache:
  paths: [.m2/**/*]
";

    #[test]
    fn a_full_buildspec_is_read() {
        let spec = parse(FULL).expect("valid");
        assert_eq!(spec.version, "0.2");
        assert!(spec.bash());
        assert_eq!(spec.env.exported_variables, ["VERSION"]);
        let phases = spec.phases();
        let names: Vec<_> = phases.iter().map(|(n, _)| n.label()).collect();
        assert_eq!(names, ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]);
        assert_eq!(phases[1].1.on_failure, OnFailure::Continue);
        assert_eq!(phases[2].1.on_failure, OnFailure::Abort);
        assert_eq!(phases[2].1.commands[1], "echo 'multi'\necho line\n");
        assert_eq!(phases[2].1.finally, ["echo cleanup"]);
        let artifacts = spec.artifacts.as_ref().expect("artifacts");
        assert_eq!(artifacts.files, ["**/*"]);
        assert_eq!(artifacts.base_directory.as_deref(), Some("dist"));
        assert!(artifacts.discard_paths);
        let docs = &artifacts.secondary_artifacts["Docs"];
        assert_eq!(docs.files, ["docs/*.html"]);
        assert!(!docs.discard_paths);
        let ignored = spec.ignored().join("\n");
        assert!(
            ignored.contains("runtime-versions (nodejs 18)"),
            "{ignored}"
        );
        assert!(ignored.contains("cache is ignored"), "{ignored}");
    }

    #[test]
    fn numbers_and_booleans_are_variables_as_written() {
        let spec = parse(FULL).expect("valid");
        let variables = &spec.env.variables;
        assert_eq!(variables["GREETING"], "hello");
        assert_eq!(variables["RETRIES"], "3");
        assert_eq!(variables["RATIO"], "1.10");
        assert_eq!(variables["ENABLED"], "true");
        assert_eq!(variables["EMPTY"], "");
    }

    #[test]
    fn only_version_0_2_runs() {
        for version in ["0.1", "1.0", "'0.3'"] {
            let error = parse(&format!("version: {version}\nphases: {{}}\n")).expect_err(version);
            assert!(error.contains("version 0.2 only"), "{error}");
        }
        let error = parse("phases: {}\n").expect_err("no version");
        assert!(error.contains("missing field `version`"), "{error}");
        assert!(parse("version: \"0.2\"\n").is_ok());
    }

    #[test]
    fn yaml_errors_say_where() {
        let error = parse("version: 0.2\nphases:\n  build:\n    commands: [\n").expect_err("bad");
        assert!(error.contains("line 5 column 1"), "{error}");
        let error = parse("version: 0.2\nphases:\n  build:\n    comands:\n      - make\n")
            .expect_err("typo");
        assert!(error.contains("unknown field `comands`"), "{error}");
        assert!(error.contains("line 4 column 5"), "{error}");
        // `- echo a: b` is a mapping in YAML, not a command.
        let error = parse("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n")
            .expect_err("a mapping");
        assert!(error.contains("phases.build.commands[0]"), "{error}");
        assert!(error.contains("line 5"), "{error}");
    }

    #[test]
    fn what_a_local_build_cannot_do_is_refused() {
        let error = parse("version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /ci/token\n")
            .expect_err("parameter store");
        assert!(error.contains("env.parameter-store (TOKEN)"), "{error}");
        let error = parse("version: 0.2\nenv:\n  secrets-manager:\n    KEY: arn:secret\n")
            .expect_err("secrets manager");
        assert!(error.contains("env.secrets-manager (KEY)"), "{error}");
        let error = parse("version: 0.2\nenv:\n  shell: powershell.exe\n").expect_err("shell");
        assert!(error.contains("env.shell powershell.exe"), "{error}");
        let error =
            parse("version: 0.2\nphases:\n  build:\n    on-failure: RETRY-3\n").expect_err("retry");
        assert!(
            error.contains("on-failure RETRY-3 is not supported"),
            "{error}"
        );
        let error =
            parse("version: 0.2\nartifacts:\n  discard-paths: yes\n").expect_err("no files");
        assert!(error.contains("artifacts has no files"), "{error}");
    }

    #[test]
    fn empty_sections_are_allowed() {
        let spec = parse("version: 0.2\nenv:\nphases:\n  install:\n  build:\n    commands:\n")
            .expect("valid");
        // `install:` with nothing under it is no phase; `build:` is one without commands.
        let phases = spec.phases();
        assert_eq!(phases.len(), 1);
        assert_eq!(phases[0].0, PhaseName::Build);
        assert!(phases[0].1.commands.is_empty());
        assert!(spec.env.variables.is_empty());
    }

    #[test]
    fn inline_buildspecs_are_told_from_paths() {
        assert!(is_inline("version: 0.2\nphases: {}\n"));
        assert!(!is_inline("ci/buildspec-test.yml"));
        assert!(!is_inline("phases: {}\n"));
        assert!(!is_inline("a: b: c"));
    }

    #[test]
    fn the_script_numbers_commands_across_phases() {
        let spec = parse(FULL).expect("valid");
        let script = spec.script();
        assert_eq!(script.phases, 4);
        let places: Vec<_> = script.steps.iter().map(Step::place).collect();
        assert_eq!(
            places,
            [
                "INSTALL",
                "PRE_BUILD",
                "BUILD",
                "BUILD",
                "BUILD (finally)",
                "POST_BUILD"
            ]
        );
        assert!(script.text.starts_with(BASH));
        assert!(script
            .text
            .contains("__lockgate_step 3 'make'\ncommand eval 'make'\n"));
        // Only an install or pre_build failure with on-failure ABORT ends the build.
        assert_eq!(script.text.matches("__lockgate_go=0").count(), 1);
    }

    #[test]
    fn failures_are_read_only_from_a_finished_run() {
        let mut exports = BTreeMap::new();
        exports.insert(FAILURES.to_string(), " 3:2 5:127".to_string());
        assert_eq!(failures(&exports), None);
        exports.insert(END.to_string(), "1".to_string());
        assert_eq!(failures(&exports), Some(vec![(3, 2), (5, 127)]));
        exports.insert(FAILURES.to_string(), String::new());
        assert_eq!(failures(&exports), Some(vec![]));
    }
}
