//! The CodeBuild executor run for real: a job made by hand (an input zip in a directory store,
//! a fresh workspace, a log), its buildspec's phases run by the shell, and what it reports and
//! stores checked: phase order and shared shell state, failures and what still runs after them,
//! exported variables, artifacts, the buildspec's sources and the variables' precedence.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lockgate_artifacts::{pack, unpack, ArtifactLocation, ArtifactStore, DirectoryStore};
use lockgate_model::variables::ExecutionVariables;
use lockgate_shapes::{
    ActionCategory, ActionConfiguration, ActionDeclaration, ActionOwner, ActionTypeId, Artifact,
    ArtifactLocationType, FailureType, InputArtifact, JobData, OutputArtifact, S3ArtifactLocation,
};
use lockgate_worker::executors::{CodeBuild, Project};
use lockgate_worker::{Executor, Failure, JobContext, RunLog, Success, Workspace};
use tokio::sync::watch;

const BUCKET: &str = "lockgate-test";

/// One job to run: the primary source's files, the action's configuration (besides
/// `ProjectName: demo`), its output artifacts and the executor's projects.
#[derive(Default)]
struct Build<'a> {
    source: Vec<(&'a str, &'a str)>,
    config: Vec<(&'a str, &'a str)>,
    outputs: Vec<&'a str>,
    projects: BTreeMap<String, Project>,
}

/// What a run left: its result, its log and the store holding its outputs.
struct Ran {
    result: Result<Success, Failure>,
    log: String,
    store: Arc<DirectoryStore>,
    dir: tempfile::TempDir,
}

fn s3(key: String) -> Option<lockgate_shapes::ArtifactLocation> {
    Some(lockgate_shapes::ArtifactLocation {
        r#type: Some(ArtifactLocationType::S3),
        s3_location: Some(S3ArtifactLocation {
            bucket_name: BUCKET.to_string(),
            object_key: key,
        }),
    })
}

fn write(root: &Path, name: &str, text: &str) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
    std::fs::write(path, text).expect("write");
}

impl Build<'_> {
    async fn run(self) -> Ran {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("input");
        std::fs::create_dir_all(&input).expect("input dir");
        for (name, text) in &self.source {
            write(&input, name, text);
        }
        let store = Arc::new(DirectoryStore::open(dir.path().join("store")).expect("store"));
        let zip = pack(&input, &[]).expect("pack");
        let location = ArtifactLocation::new(BUCKET, "p/Src/abc1234").expect("location");
        store.put(&location, zip).await.expect("put");

        let mut config: BTreeMap<String, String> = self
            .config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config.insert("ProjectName".to_string(), "demo".to_string());
        let data = JobData {
            action_configuration: Some(ActionConfiguration {
                configuration: Some(config.clone()),
            }),
            input_artifacts: Some(vec![Artifact {
                name: Some("Src".to_string()),
                revision: Some("abc1234".to_string()),
                location: s3("p/Src/abc1234".to_string()),
            }]),
            output_artifacts: Some(
                self.outputs
                    .iter()
                    .map(|name| Artifact {
                        name: Some(name.to_string()),
                        revision: None,
                        location: s3(format!("p/{name}/out1234")),
                    })
                    .collect(),
            ),
            ..JobData::default()
        };
        let action = ActionDeclaration {
            name: "Build".to_string(),
            action_type_id: ActionTypeId {
                category: ActionCategory::Build,
                owner: ActionOwner::Aws,
                provider: "CodeBuild".to_string(),
                version: "1".to_string(),
            },
            configuration: Some(config),
            input_artifacts: Some(vec![InputArtifact {
                name: "Src".to_string(),
            }]),
            output_artifacts: Some(
                self.outputs
                    .iter()
                    .map(|name| OutputArtifact {
                        name: name.to_string(),
                        files: None,
                    })
                    .collect(),
            ),
            ..ActionDeclaration::default()
        };
        let log = RunLog::new(1 << 20);
        let (_cancel, cancel) = watch::channel(false);
        let mut job = JobContext {
            job_id: "job-1".to_string(),
            data,
            action,
            variables: ExecutionVariables::default(),
            workspace: Workspace::create(&dir.path().join("work"), "job-1").expect("workspace"),
            artifacts: store.clone(),
            log: log.clone(),
            cancel,
        };
        let executor = CodeBuild::new(self.projects);
        let result = executor.run(&mut job).await;
        Ran {
            result,
            log: log.text(),
            store,
            dir,
        }
    }
}

impl Ran {
    fn success(&self) -> &Success {
        match &self.result {
            Ok(success) => success,
            Err(failure) => panic!("the build failed: {failure:?}\n{}", self.log),
        }
    }

    fn failure(&self) -> &Failure {
        match &self.result {
            Ok(success) => panic!("the build succeeded: {success:?}\n{}", self.log),
            Err(failure) => failure,
        }
    }

    /// The files of output artifact `name`, by path.
    async fn output(&self, name: &str) -> BTreeMap<String, String> {
        let location =
            ArtifactLocation::new(BUCKET, format!("p/{name}/out1234")).expect("location");
        let zip = self
            .store
            .get(&location)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{name} was not stored"));
        let out = self.dir.path().join("unpacked").join(name);
        unpack(&zip, &out).expect("unpack");
        let mut files = BTreeMap::new();
        let mut pending = vec![out.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(&out).expect("inside");
                    let text = std::fs::read_to_string(&path).expect("text");
                    files.insert(relative.to_string_lossy().replace('\\', "/"), text);
                }
            }
        }
        files
    }

    /// Where `text` first is in the log.
    fn at(&self, text: &str) -> usize {
        self.log
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} is not in the log:\n{}", self.log))
    }
}

fn buildspec(text: &str) -> Vec<(&str, &str)> {
    vec![("buildspec.yml", text)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_run_in_order_in_one_shell() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
env:
  variables:
    GREETING: hello
phases:
  install:
    commands:
      - mkdir -p sub && cd sub
      - STATE=installed
  pre_build:
    commands:
      - echo "pre_build in $(basename "$PWD") after $STATE"
  build:
    commands:
      - echo "build says $GREETING with succeeding=$CODEBUILD_BUILD_SUCCEEDING"
      - |
        for word in one two; do
          echo "loop $word"
        done
  post_build:
    commands:
      - echo "post_build in $(basename "$PWD") for $CODEBUILD_BUILD_ID"
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    let summary = ran.success().summary.clone().unwrap_or_default();
    assert!(
        summary.starts_with("Build succeeded: 4 phases, 6 commands in "),
        "{summary}"
    );
    let install = ran.at("[Container] Entering phase INSTALL");
    let pre_build = ran.at("[Container] Entering phase PRE_BUILD");
    let build = ran.at("[Container] Entering phase BUILD");
    let post_build = ran.at("[Container] Entering phase POST_BUILD");
    assert!(install < pre_build && pre_build < build && build < post_build);
    assert!(ran.at("pre_build in sub after installed") > pre_build);
    ran.at("build says hello with succeeding=1");
    ran.at("loop two");
    ran.at("post_build in sub for demo:job-1");
    ran.at("[Container] Running command mkdir -p sub && cd sub");
    ran.at("[Container] Phase complete: POST_BUILD State: SUCCEEDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_command_runs_finally_and_post_build_and_fails_the_job() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
phases:
  build:
    commands:
      - echo compiling
      - sh -c 'exit 3'
      - echo never-printed
    finally:
      - echo cleaning-up
  post_build:
    commands:
      - echo "post_build with succeeding=$CODEBUILD_BUILD_SUCCEEDING"
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert_eq!(failure.kind, FailureType::JobFailed);
    assert!(
        failure.message.starts_with(
            "Phase BUILD failed: Command did not exit successfully: sh -c 'exit 3' (exit status 3)\n"
        ),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("Last output:"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("post_build with succeeding=0"),
        "{}",
        failure.message
    );
    assert!(ran.at("cleaning-up") > ran.at("[Container] Running command sh -c 'exit 3'"));
    ran.at("[Container] Phase complete: BUILD State: FAILED");
    ran.at("post_build with succeeding=0");
    assert!(!ran.log.contains("never-printed"), "{}", ran.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_failure_skips_build_and_post_build() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
phases:
  install:
    commands:
      - "false"
    finally:
      - echo install-finally
  build:
    commands:
      - echo building
  post_build:
    commands:
      - echo posting
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert!(
        failure.message.starts_with(
            "Phase INSTALL failed: Command did not exit successfully: false (exit status 1)"
        ),
        "{}",
        failure.message
    );
    ran.at("install-finally");
    for skipped in [
        "Entering phase BUILD",
        "Entering phase POST_BUILD",
        "building",
        "posting",
    ] {
        assert!(!ran.log.contains(skipped), "{skipped}: {}", ran.log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_continue_runs_the_next_phase_and_the_build_still_fails() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
phases:
  pre_build:
    on-failure: CONTINUE
    commands:
      - test -f missing-file
      - echo skipped-in-pre-build
  build:
    commands:
      - echo "built with succeeding=$CODEBUILD_BUILD_SUCCEEDING"
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert!(
        failure.message.starts_with(
            "Phase PRE_BUILD failed: Command did not exit successfully: test -f missing-file \
             (exit status 1)"
        ),
        "{}",
        failure.message
    );
    ran.at("built with succeeding=0");
    ran.at("[Container] Phase complete: BUILD State: SUCCEEDED");
    assert!(!ran.log.contains("skipped-in-pre-build"), "{}", ran.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_variables_become_the_action_s_output_variables() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
env:
  exported-variables:
    - VERSION
    - COMMIT
    - NEVER_SET
phases:
  build:
    commands:
      - VERSION=1.2.3
      - COMMIT="$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - NOT_EXPORTED=x
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    let success = ran.success();
    let expected = BTreeMap::from([
        ("COMMIT".to_string(), "abc1234".to_string()),
        ("VERSION".to_string(), "1.2.3".to_string()),
    ]);
    assert_eq!(success.output_variables, expected);
    ran.at("The exported variable NEVER_SET was not set by the build");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_take_base_directory_discard_paths_and_secondary_artifacts() {
    let ran = Build {
        source: vec![
            (
                "buildspec.yml",
                r#"
version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/bin dist/lib
      - echo app > dist/bin/app
      - echo lib > dist/lib/libdemo.so
      - echo symbols > dist/lib/libdemo.so.debug
artifacts:
  files:
    - '**/*'
  base-directory: dist
  discard-paths: yes
  exclude-paths:
    - '**/*.debug'
  secondary-artifacts:
    Docs:
      files:
        - 'docs/**/*'
"#,
            ),
            ("docs/index.html", "<h1>index</h1>"),
            ("docs/guide/intro.html", "<h1>intro</h1>"),
            ("main.c", "int main(void) { return 0; }"),
        ],
        outputs: vec!["BuildOut", "Docs"],
        ..Build::default()
    }
    .run()
    .await;
    ran.success();
    let build_out = ran.output("BuildOut").await;
    let expected = BTreeMap::from([
        ("app".to_string(), "app\n".to_string()),
        ("libdemo.so".to_string(), "lib\n".to_string()),
    ]);
    assert_eq!(build_out, expected);
    let docs = ran.output("Docs").await;
    let names: Vec<_> = docs.keys().map(String::as_str).collect();
    assert_eq!(names, ["docs/guide/intro.html", "docs/index.html"]);
    ran.at("[Container] Stored the output artifact BuildOut: 2 files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_artifact_the_buildspec_does_not_describe_fails_the_job() {
    let ran = Build {
        source: buildspec(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\n\
             artifacts:\n  files:\n    - buildspec.yml\n",
        ),
        outputs: vec!["BuildOut", "Reports"],
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert_eq!(failure.kind, FailureType::JobFailed);
    assert!(
        failure
            .message
            .contains("does not describe the output artifact Reports"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("secondary-artifacts (Reports)"),
        "{}",
        failure.message
    );

    let ran = Build {
        source: buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"),
        outputs: vec!["BuildOut"],
        ..Build::default()
    }
    .run()
    .await;
    let message = &ran.failure().message;
    assert!(message.contains("output artifact BuildOut"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buildspec_comes_from_the_override_the_project_or_buildspec_yml() {
    let source = vec![
        (
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo from-default\n",
        ),
        (
            "ci/project.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo from-project\n",
        ),
        (
            "ci/override.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo from-override-file\n",
        ),
    ];
    let project = || {
        BTreeMap::from([(
            "demo".to_string(),
            Project {
                buildspec: Some("ci/project.yml".to_string()),
                ..Project::default()
            },
        )])
    };
    let inline = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo from-inline\n";
    for (config, projects, expected) in [
        (vec![], BTreeMap::new(), "from-default"),
        (vec![], project(), "from-project"),
        (
            vec![("BuildspecOverride", "ci/override.yml")],
            project(),
            "from-override-file",
        ),
        (
            vec![("BuildspecOverride", inline)],
            project(),
            "from-inline",
        ),
    ] {
        let ran = Build {
            source: source.clone(),
            config,
            projects,
            ..Build::default()
        }
        .run()
        .await;
        ran.success();
        // The echoed line (after the log's UTC timestamp), not the command.
        ran.at(&format!("Z {expected}\n"));
        for other in [
            "from-default",
            "from-project",
            "from-override-file",
            "from-inline",
        ] {
            assert!(
                other == expected || !ran.log.contains(other),
                "{other}: {}",
                ran.log
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_invalid_buildspec_is_a_configuration_error() {
    let ran = Build {
        source: vec![("README.md", "nothing to build")],
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert_eq!(failure.kind, FailureType::ConfigurationError);
    assert!(
        failure
            .message
            .contains("The buildspec buildspec.yml cannot be read")
            && failure.message.contains("primary source Src"),
        "{}",
        failure.message
    );

    let ran = Build {
        source: buildspec("version: 0.2\nphases:\n  build:\n    commands: [\n"),
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert_eq!(failure.kind, FailureType::ConfigurationError);
    assert!(
        failure
            .message
            .starts_with("The buildspec buildspec.yml is not valid: ")
            && failure.message.contains("line 5 column 1"),
        "{}",
        failure.message
    );

    let ran = Build {
        source: buildspec("version: 0.1\nphases:\n  build:\n    commands: [make]\n"),
        ..Build::default()
    }
    .run()
    .await;
    let message = &ran.failure().message;
    assert!(
        message.contains("version 0.1 is not supported"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_variables_override_project_variables_which_override_the_buildspec_s() {
    let source = buildspec(
        r#"
version: 0.2
env:
  variables:
    FROM_SPEC: spec
    FROM_PROJECT: spec
    FROM_ACTION: spec
    RETRIES: 3
    RATIO: 1.50
  exported-variables: [FROM_SPEC, FROM_PROJECT, FROM_ACTION, ONLY_ACTION, RETRIES, RATIO]
phases:
  build:
    commands:
      - echo "$FROM_SPEC $FROM_PROJECT $FROM_ACTION $ONLY_ACTION"
"#,
    );
    let projects = || {
        BTreeMap::from([(
            "demo".to_string(),
            Project {
                environment_variables: BTreeMap::from([
                    ("FROM_PROJECT".to_string(), "project".to_string()),
                    ("FROM_ACTION".to_string(), "project".to_string()),
                ]),
                ..Project::default()
            },
        )])
    };
    let ran = Build {
        source: source.clone(),
        config: vec![(
            "EnvironmentVariables",
            r#"[{"name":"FROM_ACTION","value":"action","type":"PLAINTEXT"},
                {"name":"ONLY_ACTION","value":"action too"}]"#,
        )],
        projects: projects(),
        ..Build::default()
    }
    .run()
    .await;
    let variables = &ran.success().output_variables;
    let get = |name: &str| variables.get(name).map(String::as_str);
    assert_eq!(get("FROM_SPEC"), Some("spec"));
    assert_eq!(get("FROM_PROJECT"), Some("project"));
    assert_eq!(get("FROM_ACTION"), Some("action"));
    assert_eq!(get("ONLY_ACTION"), Some("action too"));
    assert_eq!(get("RETRIES"), Some("3"));
    assert_eq!(get("RATIO"), Some("1.50"));
    ran.at("spec project action action too");

    let ran = Build {
        source,
        config: vec![(
            "EnvironmentVariables",
            r#"[{"name":"TOKEN","value":"/ci/token","type":"PARAMETER_STORE"}]"#,
        )],
        ..Build::default()
    }
    .run()
    .await;
    let failure = ran.failure();
    assert_eq!(failure.kind, FailureType::ConfigurationError);
    assert!(
        failure.message.contains("TOKEN") && failure.message.contains("PARAMETER_STORE"),
        "{}",
        failure.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_parse_fails_alone_and_one_that_exits_ends_the_build() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
phases:
  build:
    commands:
      - echo "unterminated
    finally:
      - echo finally-ran
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    let message = &ran.failure().message;
    assert!(
        message.starts_with("Phase BUILD failed: Command did not exit successfully: echo \"unterminated (exit status 2)"),
        "{message}"
    );
    ran.at("finally-ran");

    let ran = Build {
        source: buildspec(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 0\n\
             \x20 post_build:\n    commands:\n      - echo post-ran\n",
        ),
        ..Build::default()
    }
    .run()
    .await;
    let message = &ran.failure().message;
    assert!(
        message.starts_with(
            "Phase BUILD failed: Command ended the build's shell: exit 0 (exit status 0)"
        ),
        "{message}"
    );
    assert!(!ran.log.contains("post-ran"), "{}", ran.log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_shell_bash_runs_the_phases_in_bash() {
    let ran = Build {
        source: buildspec(
            r#"
version: 0.2
env:
  shell: bash
phases:
  build:
    commands:
      - names=(one two)
      - if [[ -n "${BASH_VERSION:-}" ]]; then echo "bash with ${names[1]}"; fi
"#,
        ),
        ..Build::default()
    }
    .run()
    .await;
    if !Path::new("/bin/bash").exists() {
        return;
    }
    ran.success();
    ran.at("bash with two");
}
