//! The HTTP edge under abuse: idle-connection floods under a low open-file limit, half-sent
//! headers, stalled bodies, unsigned bodies, an operation swapped into an unsigned
//! `X-Amz-Target`, unknown routes, and who may read `/metrics`.

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{
    add_bob, approval_pipeline, client, test_config, TestApp, BOB_KEY, BOB_SECRET,
};
use crate::process::LockgateProcess;

/// The most any answer below may take when the server is healthy.
const PROMPT: Duration = Duration::from_secs(5);

fn host_port(endpoint: &str) -> &str {
    endpoint.trim_start_matches("http://")
}

/// Sends `request` on a fresh connection and reads until the server closes it or `limit` passes;
/// returns what arrived and how long it took.
async fn exchange(endpoint: &str, request: &[u8], limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(host_port(endpoint))
        .await
        .expect("connect");
    stream.write_all(request).await.expect("send");
    let mut received = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Signs `request` as Bob with `aws-sigv4`, in the header or (with `presign`) in the query.
fn sign_as_bob(request: &mut http::Request<Vec<u8>>, presign: bool) {
    let identity: Identity = Credentials::new(BOB_KEY, BOB_SECRET, None, None, "edge").into();
    let mut settings = SigningSettings::default();
    if presign {
        settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("codepipeline")
        .time(lockgate_model::Clock::now_system(
            &lockgate_model::SystemClock,
        ))
        .settings(settings)
        .build()
        .expect("signing parameters")
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(request);
}

/// The request line and headers of `request` as HTTP/1.1 text.
fn head_text(request: &http::Request<Vec<u8>>) -> String {
    let mut text = format!(
        "{} {} HTTP/1.1\r\n",
        request.method(),
        request.uri().path_and_query().unwrap()
    );
    for (name, value) in request.headers() {
        text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    text.push_str("\r\n");
    text
}

/// A signed awsJson1.1 call of `operation` with `body`, as it would leave an SDK.
fn signed_call(endpoint: &str, operation: &str, body: &[u8]) -> http::Request<Vec<u8>> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{endpoint}/"))
        .header("host", host_port(endpoint))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("CodePipeline_20150709.{operation}"))
        .header("content-length", body.len().to_string())
        .body(body.to_vec())
        .unwrap();
    sign_as_bob(&mut request, false);
    request
}

#[tokio::test]
async fn idle_connections_beyond_the_open_file_limit_do_not_lock_out_healthz_or_signed_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_bob(dir.path()).await;
    // 256 open files: the derived cap is (256 - 128) / 2 = 64 connections.
    let server = LockgateProcess::start_under(dir.path(), &["prlimit", "--nofile=256:256", "--"]);
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(
            TcpStream::connect(host_port(&server.endpoint))
                .await
                .expect("the kernel queues connections the server has not accepted"),
        );
    }

    let started = Instant::now();
    let (health, _) = exchange(
        &server.endpoint,
        b"GET /healthz HTTP/1.1\r\nHost: lockgate\r\nConnection: close\r\n\r\n",
        PROMPT,
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(health.ends_with("ok"), "{health:?}");
    let listed = tokio::time::timeout(
        PROMPT,
        client(&server.endpoint, BOB_KEY, BOB_SECRET)
            .list_pipelines()
            .send(),
    )
    .await
    .expect("a signed request is answered promptly")
    .expect("ListPipelines");
    assert!(listed.pipelines().is_empty());
    assert!(
        started.elapsed() < PROMPT,
        "took {:?} under 400 idle connections",
        started.elapsed()
    );
    drop(idle);
    server.kill9();
}

#[tokio::test]
async fn a_connection_that_sends_half_its_headers_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.http.header_timeout_seconds = 1;
    let app = TestApp::spawn_with_config(dir, config).await;
    let (answer, took) = exchange(
        &app.endpoint,
        b"POST / HTTP/1.1\r\nHost: lockgate\r\nX-Amz-Tar",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(answer, "", "the connection is closed without an answer");
    assert!(
        took >= Duration::from_millis(900) && took < PROMPT,
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_dropped_after_the_body_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.http.body_timeout_seconds = 1;
    let app = TestApp::spawn_with_config(dir, config).await;
    let request = signed_call(&app.endpoint, "ListPipelines", b"{\"maxResults\": 10}");
    // The headers and two bytes of the body, then nothing.
    let mut sent = head_text(&request).into_bytes();
    sent.extend_from_slice(b"{\"");
    let (answer, took) = exchange(&app.endpoint, &sent, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("SerializationException"), "{answer:?}");
    assert!(
        took >= Duration::from_millis(900) && took < PROMPT,
        "answered after {took:?}"
    );
}

#[tokio::test]
async fn an_unsigned_2_mib_post_is_refused_before_its_body_is_sent() {
    let app = TestApp::spawn().await;
    let head = "POST / HTTP/1.1\r\nHost: lockgate\r\n\
                X-Amz-Target: CodePipeline_20150709.ListPipelines\r\n\
                Content-Type: application/x-amz-json-1.1\r\n\
                Content-Length: 2097152\r\n\r\n";
    let (answer, took) = exchange(&app.endpoint, head.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(
        answer.contains("MissingAuthenticationTokenException"),
        "{answer:?}"
    );
    assert!(took < PROMPT, "answered after {took:?}");
}

/// GetPipeline `Victim`, signed without `X-Amz-Target`, then sent naming DeletePipeline.
fn delete_disguised_as_get(endpoint: &str, presign: bool) -> reqwest::Request {
    let body = br#"{"name":"Victim"}"#.to_vec();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{endpoint}/"))
        .header("host", host_port(endpoint))
        .body(body)
        .unwrap();
    sign_as_bob(&mut request, presign);
    let headers = request.headers_mut();
    headers.insert(
        "x-amz-target",
        "CodePipeline_20150709.DeletePipeline".parse().unwrap(),
    );
    headers.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    reqwest::Request::try_from(request.map(reqwest::Body::from)).expect("request")
}

#[tokio::test]
async fn an_operation_swapped_into_an_unsigned_target_header_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_source_type().await;
    app.client
        .create_pipeline()
        .pipeline(approval_pipeline("Victim"))
        .send()
        .await
        .expect("create Victim");
    let http = reqwest::Client::new();
    for presign in [false, true] {
        let response = http
            .execute(delete_disguised_as_get(&app.endpoint, presign))
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 400, "presigned: {presign}");
        let body: serde_json::Value = response.json().await.expect("JSON error");
        assert_eq!(body["__type"], "InvalidSignatureException", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("x-amz-target"),
            "{body}"
        );
    }
    let pipeline = app
        .client
        .get_pipeline()
        .name("Victim")
        .send()
        .await
        .expect("Victim still exists");
    assert_eq!(pipeline.pipeline().map(|p| p.name()), Some("Victim"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_aws_style_errors_and_the_console_still_redirects() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path, status) in [
        (reqwest::Method::POST, "/foo", 404),
        (reqwest::Method::GET, "/nothing/here", 404),
        (reqwest::Method::PUT, "/", 405),
        (reqwest::Method::DELETE, "/", 405),
    ] {
        let response = http
            .request(method.clone(), format!("{}{path}", app.endpoint))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let body: serde_json::Value = response.json().await.expect("JSON error body");
        assert_eq!(
            body["__type"], "UnknownOperationException",
            "{method} {path}"
        );
    }
    let root = http.get(format!("{}/", app.endpoint)).send().await.unwrap();
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(root.headers()["location"], "/console/pipelines");
}

#[tokio::test]
async fn metrics_answer_loopback_clients_without_a_token_and_require_it_once_configured() {
    let open = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/metrics", open.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.http.metrics_token = Some("scrape-me-7f3a".to_owned().into());
    let guarded = TestApp::spawn_with_config(dir, config).await;
    let url = format!("{}/metrics", guarded.endpoint);
    let without = http.get(&url).send().await.unwrap();
    assert_eq!(without.status().as_u16(), 401);
    let wrong = http
        .get(&url)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = http
        .get(&url)
        .bearer_auth("scrape-me-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert!(right.text().await.unwrap().contains("lockgate_"));
}

/// The value of an unlabelled sample in Prometheus's text format.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

#[tokio::test]
async fn metrics_count_durable_commits_and_their_group_transactions() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", app.endpoint);
    let before = http.get(&url).send().await.unwrap().text().await.unwrap();
    app.create_source_type().await;
    app.client
        .create_pipeline()
        .pipeline(approval_pipeline("Counted"))
        .send()
        .await
        .expect("create Counted");
    let after = http.get(&url).send().await.unwrap().text().await.unwrap();
    // The custom action type and the pipeline: two commits at least, each durable in a
    // transaction of its own or shared with others.
    let commits = sample(&after, "lockgate_store_commits_total")
        - sample(&before, "lockgate_store_commits_total");
    let transactions = sample(&after, "lockgate_store_transactions_total")
        - sample(&before, "lockgate_store_transactions_total");
    assert!(commits >= 2, "{commits} commits\n{after}");
    assert!(
        (1..=commits).contains(&transactions),
        "{transactions} transactions\n{after}"
    );
    assert_eq!(sample(&after, "lockgate_store_failed_commits_total"), 0);
    assert!(sample(&after, "lockgate_store_wal_limit_bytes") > 0);
    assert!(
        sample(&after, "lockgate_store_wal_peak_bytes")
            >= sample(&after, "lockgate_store_wal_bytes")
    );
}

#[tokio::test]
async fn sigterm_lets_a_request_in_progress_finish_then_stops_and_closes_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    add_bob(dir.path()).await;
    let server = LockgateProcess::start(dir.path());
    let endpoint = server.endpoint.clone();
    let body = b"{\"maxResults\": 10}";
    let mut request = signed_call(&endpoint, "ListPipelines", body);
    // hyper answers `100 Continue` when the handler starts reading the body: the sign that the
    // request is in progress.
    request
        .headers_mut()
        .insert("expect", "100-continue".parse().unwrap());
    let mut stream = TcpStream::connect(host_port(&endpoint)).await.unwrap();
    stream
        .write_all(head_text(&request).as_bytes())
        .await
        .unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(PROMPT, stream.read(&mut byte))
            .await
            .expect("100 Continue")
            .unwrap();
        assert_eq!(read, 1, "the server closed the connection");
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{interim:?}");
    stream.write_all(&body[..8]).await.unwrap();
    server.send_sigterm();
    let deadline = Instant::now() + PROMPT;
    while TcpStream::connect(host_port(&endpoint)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server kept accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stream.write_all(&body[8..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PROMPT, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"pipelines\""), "{answer}");
    let (status, log) = tokio::task::spawn_blocking(move || server.wait_for_exit())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}, log:\n{log}");
    assert!(log.contains("lockgate stopped"), "log:\n{log}");
}
