//! What the server logs: a full run at the most verbose level (`LOCKGATE_LOG=trace`: signed API
//! calls, an approval answered with its token, a failed and a successful console sign-in, a page,
//! a sign-out) must not write a secret access key, a password, an approval token, a session
//! cookie or a CSRF token anywhere in its output.

use std::process::Command;

use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};
use reqwest::header::SET_COOKIE;

use crate::harness::{client, lockgate_bin, TestAppClient};
use crate::process::LockgateProcess;

/// The value after `label` on its line of `lockgate user add`'s output.
fn printed(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("`lockgate user add` printed no {label:?}:\n{output}"))
}

/// The value of the cookie `name` set by `response`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
        .filter(|v| !v.is_empty())
}

/// The first hidden `csrf_token` field's value on a console page.
fn csrf_field(page: &str) -> String {
    let start = page
        .find("name=\"csrf_token\" value=\"")
        .expect("a csrf_token field")
        + "name=\"csrf_token\" value=\"".len();
    page[start..].split('"').next().expect("value").to_string()
}

#[tokio::test]
async fn a_full_run_at_trace_level_logs_no_secret_password_token_cookie_or_csrf_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The real CLI makes the user, generating its keys and password.
    let added = Command::new(lockgate_bin())
        .args(["user", "add", "Dana", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("lockgate user add");
    assert!(added.status.success(), "{added:?}");
    let added = String::from_utf8(added.stdout).expect("UTF-8");
    let key = printed(&added, "access key id:");
    let secret = printed(&added, "secret access key:");
    let password = printed(&added, "console password:");

    let server = LockgateProcess::start_with_env(dir.path(), &[("LOCKGATE_LOG", "trace")]);
    let endpoint = server.endpoint.clone();
    let api = TestAppClient {
        client: client(&endpoint, &key, &secret),
    };
    api.create_source_type().await;
    api.create_approval_pipeline("Quiet").await;
    api.complete_source_job("rev-quiet").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let token = loop {
        if let Some(token) = api.approval_token("Quiet").await {
            break token;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the approval never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    api.client
        .put_approval_result()
        .pipeline_name("Quiet")
        .stage_name("Approve")
        .action_name("Approval")
        .token(&token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary("ship it")
                .build()
                .expect("result"),
        )
        .send()
        .await
        .expect("approve");

    // The console: a wrong password, the right one, a page, a sign-out. (reqwest's TLS needs the
    // process's crypto provider, which the server installs in its own process.)
    lockgate::app::install_crypto_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let form = http
        .get(format!("{endpoint}/console/signin"))
        .send()
        .await
        .expect("sign-in page");
    let signin_csrf = set_cookie(&form, "lockgate_signin_csrf").expect("CSRF cookie");
    let sign_in = |password: String| {
        http.post(format!("{endpoint}/console/signin"))
            .header("cookie", format!("lockgate_signin_csrf={signin_csrf}"))
            .form(&[
                ("csrf_token", signin_csrf.as_str()),
                ("username", "Dana"),
                ("password", password.as_str()),
            ])
            .send()
    };
    let wrong_password = "Tr0ub4dor&3-but-wrong".to_string();
    let failed = sign_in(wrong_password.clone()).await.expect("sign in");
    assert_eq!(failed.status().as_u16(), 401);
    let signed_in = sign_in(password.clone()).await.expect("sign in");
    assert_eq!(signed_in.status().as_u16(), 303);
    let session = set_cookie(&signed_in, "lockgate_session").expect("session cookie");
    let page = http
        .get(format!("{endpoint}/console/pipelines/Quiet"))
        .header("cookie", format!("lockgate_session={session}"))
        .send()
        .await
        .expect("pipeline page");
    assert_eq!(page.status().as_u16(), 200);
    let session_csrf = csrf_field(&page.text().await.expect("page"));
    let signed_out = http
        .post(format!("{endpoint}/console/signout"))
        .header("cookie", format!("lockgate_session={session}"))
        .form(&[("csrf_token", session_csrf.as_str())])
        .send()
        .await
        .expect("sign out");
    assert_eq!(signed_out.status().as_u16(), 303);

    let (status, log) = server.sigterm();
    assert!(status.success(), "exit status {status:?}");
    // The log did capture the run, debug lines included...
    for expected in [
        "request served",
        "PutApprovalResult",
        "GetPipelineState",
        "console sign-in failed",
        "console sign-in",
        "lockgate stopped",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
    // ...and none of the secrets that went through it.
    for (what, value) in [
        ("the secret access key", secret.as_str()),
        ("the console password", password.as_str()),
        ("the wrong password", wrong_password.as_str()),
        ("the approval token", token.as_str()),
        ("the session cookie", session.as_str()),
        ("the sign-in CSRF token", signin_csrf.as_str()),
        ("the session's CSRF token", session_csrf.as_str()),
    ] {
        let leaks: Vec<&str> = log.lines().filter(|l| l.contains(value)).collect();
        assert!(
            leaks.is_empty(),
            "{what} is in the log:\n{}",
            leaks.join("\n")
        );
    }
}
