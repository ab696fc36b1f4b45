//! [`S3Store`] against a real S3 API on loopback: moto's `moto_server` (PyPI `moto[server]`,
//! pinned in `tests/python/requirements.txt`), started on a free port for each test.
//!
//! The binary is `$LOCKGATE_MOTO_SERVER`, else `.venv/bin/moto_server` in the workspace root
//! (the virtual environment `scripts/test` creates). Without it the tests fail and say how to
//! install it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use lockgate_artifacts::{ArtifactError, ArtifactLocation, ArtifactStore, S3Settings, S3Store};

/// The secret key the stores are given (moto accepts any); it must never be shown.
const SECRET: &str = "moto-secret-that-must-not-be-shown";

/// How long `moto_server` may take to answer after it is started.
const STARTUP: Duration = Duration::from_secs(60);

/// A running `moto_server`, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LOCKGATE_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "LOCKGATE_MOTO_SERVER={} is not a file; point it at moto's `moto_server`",
            path.display()
        );
        return path;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(".venv/bin/moto_server");
    assert!(
        path.is_file(),
        "moto_server not found at {}: the S3 tests need moto's S3 API. Create the test \
         environment from the workspace root with\n    python3 -m venv .venv && \
         .venv/bin/pip install -r tests/python/requirements.txt\n(scripts/test does this), or \
         set LOCKGATE_MOTO_SERVER to a `moto_server` installed elsewhere (pip install \
         'moto[server]')",
        path.display()
    );
    path
}

/// A loopback port nothing listens on now (moto binds it just after; a lost race is retried).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether an HTTP server answers on `address` (any status line will do).
fn answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// Starts `moto_server` on a free loopback port and waits (bounded) until it answers.
fn start_moto() -> Moto {
    let binary = moto_binary();
    let mut last_failure = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("a file for moto's log");
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("moto's log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + STARTUP;
        loop {
            if answers(address) {
                return moto;
            }
            if let Some(status) = moto.child.try_wait().expect("moto's status") {
                // Most likely the port was taken between free_port and the bind: try another.
                last_failure = format!(
                    "moto_server exited ({status}):\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {address} within {STARTUP:?}:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("moto_server would not start: {last_failure}");
}

fn settings(moto: &Moto) -> S3Settings {
    S3Settings::at_endpoint(&moto.endpoint, "testing", SECRET)
}

/// Creates `bucket` with a client of the SDK's own (the store never creates buckets).
async fn create_bucket(moto: &Moto, bucket: &str) {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "creating bucket {bucket}: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        });
}

/// The real time: S3 stamps objects with its own clock, which the cutoffs are compared with.
#[allow(
    clippy::disallowed_methods,
    reason = "the cutoffs are compared with moto's wall clock, not a Lockgate Clock"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

fn at(bucket: &str, key: &str) -> ArtifactLocation {
    ArtifactLocation::new(bucket, key).expect("a valid location")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_is_stored_read_replaced_and_deleted() {
    let moto = start_moto();
    create_bucket(&moto, "lockgate-artifacts").await;
    let store = S3Store::new(settings(&moto)).expect("store");
    let location = at("lockgate-artifacts", "release/SourceOut/a1b2c3d");

    assert_eq!(store.get(&location).await.expect("reads"), None);
    store
        .put(&location, b"first".to_vec())
        .await
        .expect("stored");
    assert_eq!(
        store.get(&location).await.expect("reads").as_deref(),
        Some(&b"first"[..])
    );
    store
        .put(&location, b"second".to_vec())
        .await
        .expect("replaced");
    assert_eq!(
        store.get(&location).await.expect("reads").as_deref(),
        Some(&b"second"[..])
    );

    // Bytes are kept exactly (a zip is binary).
    let binary = at("lockgate-artifacts", "release/BuildOut/zip");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.put(&binary, bytes.clone()).await.expect("stored");
    assert_eq!(store.get(&binary).await.expect("reads"), Some(bytes));

    assert!(store.delete(&location).await.expect("deleted"));
    assert_eq!(store.get(&location).await.expect("reads"), None);
    assert!(!store.delete(&location).await.expect("already gone"));
    let never = at("lockgate-artifacts", "release/SourceOut/never-written");
    assert_eq!(store.get(&never).await.expect("reads"), None);
    assert!(!store.delete(&never).await.expect("nothing to delete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_does_not_exist_is_named_in_the_error_of_a_put() {
    let moto = start_moto();
    let store = S3Store::new(settings(&moto)).expect("store");
    let location = at("no-such-artifact-bucket", "release/SourceOut/a1b2c3d");

    let error = store
        .put(&location, b"zip".to_vec())
        .await
        .expect_err("no bucket to put into");
    assert!(
        matches!(&error, ArtifactError::NoSuchBucket { bucket, .. } if bucket == "no-such-artifact-bucket"),
        "{error:?}"
    );
    let message = error.to_string();
    for needle in [
        "no-such-artifact-bucket",
        "release/SourceOut/a1b2c3d",
        "NoSuchBucket",
        "create it",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    assert!(!message.contains(SECRET), "{message}");

    // Reading, deleting and listing a missing bucket find nothing.
    assert_eq!(store.get(&location).await.expect("reads"), None);
    assert!(!store.delete(&location).await.expect("nothing to delete"));
    let far_future = wall_clock() + Duration::from_secs(3600);
    let listed = store
        .written_before("no-such-artifact-bucket", far_future, 10)
        .await
        .expect("lists");
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_before_lists_the_objects_older_than_the_cutoff() {
    let moto = start_moto();
    create_bucket(&moto, "retained").await;
    create_bucket(&moto, "untouched").await;
    let store = S3Store::new(settings(&moto)).expect("store");
    let keys = ["p/Src/one", "p/Src/two", "p/Build/three"];
    for key in keys {
        store
            .put(&at("retained", key), key.as_bytes().to_vec())
            .await
            .expect("stored");
    }
    store
        .put(&at("untouched", "q/Src/other"), b"other".to_vec())
        .await
        .expect("stored");

    let hour = Duration::from_secs(3600);
    let mut listed = store
        .written_before("retained", wall_clock() + hour, 100)
        .await
        .expect("lists");
    listed.sort();
    let mut expected: Vec<ArtifactLocation> = keys.iter().map(|k| at("retained", k)).collect();
    expected.sort();
    assert_eq!(listed, expected, "only this bucket's objects, all of them");

    let limited = store
        .written_before("retained", wall_clock() + hour, 2)
        .await
        .expect("lists");
    assert_eq!(limited.len(), 2, "{limited:?}");
    assert!(limited.iter().all(|l| expected.contains(l)), "{limited:?}");

    let none = store
        .written_before("retained", wall_clock() - hour, 100)
        .await
        .expect("lists");
    assert!(none.is_empty(), "nothing was written an hour ago: {none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_key_is_never_shown() {
    let moto = start_moto();
    let store = S3Store::new(settings(&moto)).expect("store");
    let shown = format!("{store:?}");
    assert!(shown.contains("testing"), "the key ID is shown: {shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!format!("{:?}", store.settings()).contains(SECRET));

    // Nor in the error of a request S3 refuses, or of one that finds no server.
    let location = at("no-such-artifact-bucket", "k");
    let error = store
        .put(&location, b"zip".to_vec())
        .await
        .expect_err("refused");
    assert!(!format!("{error} {error:?}").contains(SECRET));
    drop(moto);
    let error = store
        .put(&location, b"zip".to_vec())
        .await
        .expect_err("no server");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("s3://no-such-artifact-bucket/k"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}
