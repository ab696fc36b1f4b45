//! A full disk: the change is refused with `ServiceUnavailable` and a message that says why,
//! nothing changes, and writes work again once space is freed.
//!
//! The SQLite backend's own test shows that a real full database yields `StoreError::Full`
//! (`lockgate-store-sqlite`, writer tests); here the test store `Faulty` in front of the real
//! SQLite store answers commits with that error while the disk is "full", so the whole service
//! path is exercised.

use lockgate_engine::service::DISK_FULL_MESSAGE;
use lockgate_engine::ManualClock;

use crate::faulty::{Fault, Faulty};
use crate::*;

async fn names(svc: &PipelineService, caller: &Caller) -> Vec<String> {
    svc.list_pipelines(caller, ListPipelinesInput::default())
        .await
        .expect("pipelines are listable")
        .pipelines
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.name)
        .collect()
}

#[tokio::test]
async fn a_change_on_a_full_disk_is_refused_as_service_unavailable_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Arc::new(Faulty::over(
        SqliteStore::open(dir.path()).expect("the store opens"),
    ));
    let svc = PipelineService::load(
        disk.clone(),
        Arc::new(ManualClock::new(START_MILLIS)),
        config(),
    )
    .await
    .expect("the service loads");
    let caller = Caller::new("Bob", ACCOUNT);
    // A source and a manual approval: only the source's custom type has to exist.
    let create = |name: &str| CreatePipelineInput {
        pipeline: pipeline(
            name,
            vec![
                stage("Source", vec![source_action("Source", "src")]),
                stage("Approve", vec![approval_action("Approval", None)]),
            ],
        ),
        tags: None,
    };
    let source = CreateCustomActionTypeInput {
        category: ActionCategory::Source,
        provider: "LocalSource".to_string(),
        version: "1".to_string(),
        input_artifact_details: ArtifactDetails {
            minimum_count: 0,
            maximum_count: 0,
        },
        output_artifact_details: ArtifactDetails {
            minimum_count: 1,
            maximum_count: 1,
        },
        ..Default::default()
    };
    svc.create_custom_action_type(&caller, source)
        .await
        .expect("the source type is created");
    svc.create_pipeline(&caller, create("before"))
        .await
        .expect("created while there is space");

    disk.set(Fault::Fail);
    let error = svc
        .create_pipeline(&caller, create("during"))
        .await
        .expect_err("refused on a full disk");
    assert_eq!(error.code, ErrorCode::ServiceUnavailable);
    assert_eq!(error.http_status(), 503);
    assert_eq!(error.message, DISK_FULL_MESSAGE);
    assert_eq!(names(&svc, &caller).await, ["before"]);

    disk.set(Fault::None);
    svc.create_pipeline(&caller, create("during"))
        .await
        .expect("created once space is freed");
    assert_eq!(names(&svc, &caller).await, ["before", "during"]);
}
