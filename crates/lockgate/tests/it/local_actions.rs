//! Actions Lockgate runs itself, seen in the console: a Commands action's log page shows its
//! output while it runs (re-read every two seconds, no reload) and keeps it once it ends.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType,
    InputArtifact, OutputArtifact, PipelineDeclaration, StageDeclaration,
};
use lockgate_worker::executors::Repository;

use crate::browser::Browser;
use crate::harness::{add_bob, add_console_user, test_config, TestApp, ALICE, ALICE_PASSWORD};

fn git(cwd: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(cwd)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository `app.git` in `dir` with one commit on `main`; its path.
fn repository(dir: &Path) -> String {
    let bare = dir.join("app.git");
    git(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "app.git",
        ],
    );
    git(dir, &["clone", "--quiet", "app.git", "work"]);
    let work = dir.join("work");
    std::fs::write(work.join("README"), "app\n").expect("write");
    git(&work, &["checkout", "--quiet", "-B", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "--quiet", "-m", "First"]);
    git(&work, &["push", "--quiet", "origin", "main"]);
    bare.display().to_string()
}

fn aws(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId::builder()
        .category(category)
        .owner(ActionOwner::Aws)
        .provider(provider)
        .version("1")
        .build()
        .expect("action type id")
}

#[tokio::test]
async fn a_running_action_s_log_grows_on_its_page_and_is_kept_once_it_ends() {
    let world = tempfile::tempdir().expect("tempdir");
    let url = repository(world.path());
    let go = world.path().join("go");
    let dir = tempfile::tempdir().expect("tempdir");
    add_bob(dir.path()).await;
    add_console_user(dir.path(), ALICE, ALICE_PASSWORD).await;
    let mut config = test_config(dir.path());
    config.repositories = vec![Repository {
        name: "app".into(),
        url,
        hook_secret: None,
    }];
    config.triggers.poll_seconds = 0;
    let app = TestApp::spawn_with_config(dir, config).await;

    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(aws(ActionCategory::Source, "CodeCommit"))
        .configuration("RepositoryName", "app")
        .configuration("BranchName", "main")
        .output_artifacts(
            OutputArtifact::builder()
                .name("Src")
                .build()
                .expect("artifact"),
        )
        .build()
        .expect("source");
    let build = ActionDeclaration::builder()
        .name("Build")
        .action_type_id(aws(ActionCategory::Compute, "Commands"))
        .commands("echo first-line")
        .commands(format!(
            "while [ ! -f {} ]; do sleep 0.1; done",
            go.display()
        ))
        .commands("echo second-line")
        .input_artifacts(
            InputArtifact::builder()
                .name("Src")
                .build()
                .expect("artifact"),
        )
        .build()
        .expect("build");
    let pipeline = PipelineDeclaration::builder()
        .name("Logged")
        .role_arn("arn:aws:iam::123456789012:role/Pipeline")
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("lockgate-artifacts")
                .build()
                .expect("store"),
        )
        .stages(
            StageDeclaration::builder()
                .name("Source")
                .actions(source)
                .build()
                .expect("stage"),
        )
        .stages(
            StageDeclaration::builder()
                .name("Build")
                .actions(build)
                .build()
                .expect("stage"),
        )
        .build()
        .expect("pipeline");
    app.client
        .create_pipeline()
        .pipeline(pipeline)
        .send()
        .await
        .expect("created");

    // The build's log page, as its externalExecutionUrl names it, once the build runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let log_url = loop {
        let state = app
            .client
            .get_pipeline_state()
            .name("Logged")
            .send()
            .await
            .expect("state");
        let url = state
            .stage_states()
            .iter()
            .find(|s| s.stage_name() == Some("Build"))
            .and_then(|s| s.action_states().first())
            .and_then(|a| a.latest_execution())
            .and_then(|e| e.external_execution_url())
            .map(str::to_string);
        if let Some(url) = url {
            break url;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the build did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The URL starts with the configured public URL; this server listens on a port of its own.
    let path = &log_url[log_url.find("/console/").expect("a console URL")..];
    assert!(
        path.starts_with("/console/pipelines/Logged/executions/") && path.ends_with("/log"),
        "{log_url}"
    );

    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    browser.goto(&format!("{}{path}", app.endpoint)).await;
    browser.wait_for_text("#action-log", "first-line").await;
    assert!(!browser.text("#action-log").await.contains("second-line"));

    // The page is not reloaded: its live region is re-read while the action runs.
    std::fs::write(&go, "").expect("go");
    browser
        .wait_for_text_within("#action-log", "second-line", Duration::from_secs(15))
        .await;
    browser
        .wait_for_text_within(
            "[data-testid=\"action-status\"]",
            "Succeeded",
            Duration::from_secs(15),
        )
        .await;
    let log = browser.text("#action-log").await;
    assert!(
        log.contains("[Container] Running command echo first-line"),
        "{log}"
    );
    assert!(log.contains("[Lockgate] The action succeeded"), "{log}");
}
