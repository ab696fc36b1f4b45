//! Data-driven tests of `validate_pipeline`.
//!
//! Each file in `tests/fixtures/pipelines/` holds one pipeline declaration (as a client sends it
//! in `CreatePipeline`), a sentence saying what it shows, and the expected answer: `null` for a
//! valid pipeline, or the error code and a fragment of the message. Every fixture must first pass
//! the model's constraint checks, so that each one exercises a structure rule and not a
//! constraint the shapes crate already enforces. The action types the fixtures may use are in
//! `tests/fixtures/action-types.json`, added to the built-in manual approval.

use std::fs;
use std::path::{Path, PathBuf};

use lockgate_model::{validate_pipeline, ActionTypeRegistry};
use lockgate_shapes::{ActionType, ErrorCode, ExecutionMode, PipelineDeclaration, PipelineType};
use serde::Deserialize;

/// One fixture file.
#[derive(Deserialize)]
struct Fixture {
    description: String,
    expect: Option<Expected>,
    pipeline: serde_json::Value,
}

/// The error a fixture expects.
#[derive(Deserialize)]
struct Expected {
    code: String,
    message: String,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The built-in action types plus `Source/Custom/LocalSource/1` and `Build/Custom/Shell/1`.
fn registry() -> ActionTypeRegistry {
    let text = fs::read_to_string(fixtures_dir().join("action-types.json"))
        .expect("the action type fixture is readable");
    let types: Vec<ActionType> =
        serde_json::from_str(&text).expect("the action type fixture decodes as ActionType");
    let mut registry = ActionTypeRegistry::new();
    for action_type in types {
        registry.insert(action_type);
    }
    registry
}

fn pipeline_fixtures() -> Vec<(String, Fixture)> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixtures_dir().join("pipelines"))
        .expect("the pipeline fixture directory is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .expect("a fixture file has a name")
                .to_string_lossy()
                .into_owned();
            let text = fs::read_to_string(&path).expect("the fixture is readable");
            let fixture: Fixture = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not a fixture: {e}"));
            (name, fixture)
        })
        .collect()
}

/// What went wrong with one fixture, or `None` when it got its expected answer.
fn check_fixture(name: &str, fixture: &Fixture, registry: &ActionTypeRegistry) -> Option<String> {
    let prefix = format!("{name} ({})", fixture.description);
    if let Err(e) = lockgate_shapes::validate::check_shape("PipelineDeclaration", &fixture.pipeline)
    {
        return Some(format!(
            "{prefix}: fails the model's constraints first: {e}"
        ));
    }
    let decl: PipelineDeclaration = match serde_json::from_value(fixture.pipeline.clone()) {
        Ok(decl) => decl,
        Err(e) => return Some(format!("{prefix}: does not decode: {e}")),
    };
    let result = validate_pipeline(&decl, registry);
    match (&fixture.expect, result) {
        (None, Ok(_)) => None,
        (None, Err(e)) => Some(format!("{prefix}: expected success, got {e}")),
        (Some(expected), Ok(_)) => {
            Some(format!("{prefix}: expected {}, got success", expected.code))
        }
        (Some(expected), Err(e)) => {
            if ErrorCode::from_name(&expected.code).is_none() {
                return Some(format!(
                    "{prefix}: '{}' is not an error code",
                    expected.code
                ));
            }
            if e.code.as_str() != expected.code || !e.message.contains(&expected.message) {
                return Some(format!(
                    "{prefix}: expected {} containing {:?}, got {e}",
                    expected.code, expected.message
                ));
            }
            None
        }
    }
}

#[test]
fn every_pipeline_fixture_gets_its_expected_answer() {
    let registry = registry();
    let fixtures = pipeline_fixtures();
    let valid = fixtures.iter().filter(|(_, f)| f.expect.is_none()).count();
    assert!(valid >= 5, "only {valid} valid fixtures were found");
    assert!(
        fixtures.len() - valid >= 30,
        "only {} invalid fixtures were found",
        fixtures.len() - valid
    );

    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|(name, fixture)| check_fixture(name, fixture, &registry))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_custom_type_removed_from_the_registry_is_no_longer_available() {
    let mut registry = registry();
    let (name, fixture) = pipeline_fixtures()
        .into_iter()
        .find(|(name, _)| name == "valid-source-then-approval.json")
        .expect("the basic valid fixture exists");
    let decl: PipelineDeclaration =
        serde_json::from_value(fixture.pipeline).expect("the fixture decodes");
    assert!(validate_pipeline(&decl, &registry).is_ok(), "{name}");

    let source = decl.stages[0].actions[0].action_type_id.clone();
    assert!(registry.remove(&source));
    let err = validate_pipeline(&decl, &registry).expect_err("the source type is gone");
    assert_eq!(err.code, ErrorCode::InvalidActionDeclarationException);
    assert!(err.message.contains("Provider: 'LocalSource'"), "{err}");
}

#[test]
fn approval_timeouts_outside_5_to_86400_minutes_are_refused_even_past_the_model_check() {
    // The shapes crate rejects these first; the rule is repeated so a declaration built in code
    // (not decoded from a request) cannot carry a timeout the scheduler would misuse.
    let registry = registry();
    let (_, fixture) = pipeline_fixtures()
        .into_iter()
        .find(|(name, _)| name == "valid-source-then-approval.json")
        .expect("the basic valid fixture exists");
    let mut decl: PipelineDeclaration =
        serde_json::from_value(fixture.pipeline).expect("the fixture decodes");
    for (timeout, accepted) in [(4, false), (5, true), (86_400, true), (86_401, false)] {
        decl.stages[1].actions[0].timeout_in_minutes = Some(timeout);
        let result = validate_pipeline(&decl, &registry);
        assert_eq!(result.is_ok(), accepted, "timeout {timeout}: {result:?}");
        if let Err(e) = result {
            assert_eq!(e.code, ErrorCode::InvalidActionDeclarationException);
        }
    }
}

#[test]
fn a_validated_pipeline_carries_the_defaults_codepipeline_applies() {
    let registry = registry();
    let (_, fixture) = pipeline_fixtures()
        .into_iter()
        .find(|(name, _)| name == "valid-source-then-approval.json")
        .expect("the basic valid fixture exists");
    let mut decl: PipelineDeclaration =
        serde_json::from_value(fixture.pipeline).expect("the fixture decodes");
    decl.pipeline_type = None;
    decl.execution_mode = None;

    let validated = validate_pipeline(&decl, &registry).expect("the declaration is valid");
    assert_eq!(validated.pipeline_type(), PipelineType::V1);
    assert_eq!(validated.execution_mode(), ExecutionMode::Superseded);
    let filled = validated.into_declaration();
    assert_eq!(filled.pipeline_type, Some(PipelineType::V1));
    assert_eq!(filled.execution_mode, Some(ExecutionMode::Superseded));
    // Nothing else is touched.
    assert_eq!(
        PipelineDeclaration {
            pipeline_type: None,
            execution_mode: None,
            ..filled
        },
        decl
    );

    // What the declaration names is kept.
    decl.pipeline_type = Some(PipelineType::V2);
    decl.execution_mode = Some(ExecutionMode::Queued);
    let validated = validate_pipeline(&decl, &registry).expect("the declaration is valid");
    assert_eq!(validated.execution_mode(), ExecutionMode::Queued);
    assert_eq!(validated.declaration(), &decl);
}
