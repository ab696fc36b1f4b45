//! Users added or removed with `lockgate user` while the server runs take effect without a
//! restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use lockgate_engine::users::{put_user, remove_user, UserRecord};
use lockgate_store::Store;
use lockgate_store_sqlite::SqliteStore;

use crate::harness::{client, TestApp};

const CAROL_KEY: &str = "AKIACAROLCAROLCAROL0";
const CAROL_SECRET: &str = "carol-secret-carol-secret";

#[tokio::test]
async fn a_user_added_while_the_server_runs_can_sign_at_once_and_a_removed_one_is_refused_soon() {
    let app = TestApp::spawn().await;
    // A second store handle on the same database, as `lockgate user add` opens one.
    let cli_store = SqliteStore::open(app.dir.path()).expect("open store");
    let shared: Arc<dyn Store> = Arc::new(cli_store.clone());
    put_user(
        shared.as_ref(),
        &UserRecord {
            name: "Carol".into(),
            account_id: "123456789012".into(),
            access_key_id: CAROL_KEY.into(),
            secret_access_key: CAROL_SECRET.into(),
            password_hash: None,
            created: 0,
        },
    )
    .await
    .expect("add Carol");
    let carol = client(&app.endpoint, CAROL_KEY, CAROL_SECRET);
    // An unknown key makes the server re-read its users (at most once a second).
    let deadline = Instant::now() + Duration::from_secs(5);
    while carol.list_pipelines().send().await.is_err() {
        assert!(Instant::now() < deadline, "Carol's key was never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(remove_user(shared.as_ref(), "Carol").await.expect("remove"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match carol.list_pipelines().send().await {
            Err(e) if e.code() == Some("UnrecognizedClientException") => break,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "Carol's key still works after removal"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    cli_store.close().expect("close");
}
