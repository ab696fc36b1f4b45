//! The web console in headless Chromium: signing in, reviewing approvals, CSRF, escaping, live
//! updates and the execution history, checked against the API's view through the AWS SDK.

use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::{
    ActionExecutionStatus, ApprovalResult, ApprovalStatus, PipelineExecutionStatus,
};
use fantoccini::Locator;

use crate::browser::Browser;
use crate::harness::{
    approval_execution_of, ManualApproval, TestApp, ALICE, ALICE_ARN, ALICE_PASSWORD,
};

/// The approval's `CustomData` in most tests.
const COMMENTS: &str = "Check the release notes before approving";
/// The approval's `ExternalEntityLink` in most tests.
const LINK: &str = "https://example.com/releases/42";
/// How soon an open pipeline page must show a change made elsewhere.
const LIVE_UPDATE: Duration = Duration::from_secs(2);

fn approval<'a>(action: &'a str, custom_data: &'a str) -> ManualApproval<'a> {
    ManualApproval {
        action,
        custom_data,
        external_entity_link: LINK,
        notification_arn: None,
    }
}

/// A server with Alice and Bob, and `pipeline` waiting at the given approvals.
async fn app_waiting_for(pipeline: &str, approvals: &[ManualApproval<'_>]) -> TestApp {
    let app = TestApp::spawn_with_alice().await;
    app.create_source_type().await;
    app.create_pipeline_waiting_for_approvals(pipeline, approvals, "rev-1")
        .await;
    app
}

/// The CSS selector of action `action` in stage `stage` on a pipeline page.
fn action_css(stage: &str, action: &str) -> String {
    format!("section.stage[data-stage=\"{stage}\"] div.action[data-action=\"{action}\"]")
}

/// The CSS selector of the `data-testid` element `field` in the approval `action`.
fn approval_field(action: &str, field: &str) -> String {
    format!(
        "{} [data-testid=\"{field}\"]",
        action_css("Approve", action)
    )
}

/// The CSS selector of the `Approve` stage's status.
const APPROVE_STAGE_STATUS: &str =
    "section.stage[data-stage=\"Approve\"] [data-testid=\"stage-status\"]";
const SIGNED_IN_USER: &str = "[data-testid=\"signed-in-user\"]";
const DIALOG: &str = "dialog#review-dialog";

fn review_path(pipeline: &str, action: &str) -> String {
    format!("/console/pipelines/{pipeline}/stages/Approve/actions/{action}/review")
}

/// The decoded `next` parameter of the current URL.
async fn next_param(browser: &Browser) -> Option<String> {
    let url = browser.current_url().await.expect("current URL");
    url.query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
}

/// Clicks the `Review` button of approval `action` and waits for the review dialog to open.
async fn open_review_dialog(browser: &Browser, action: &str) {
    let action_el = browser.find(&action_css("Approve", action)).await;
    let review = action_el
        .find(Locator::XPath(".//button[normalize-space(.)='Review']"))
        .await
        .unwrap_or_else(|e| panic!("no Review button on approval {action}: {e}"));
    assert_eq!(
        review.attr("type").await.expect("type").as_deref(),
        Some("button")
    );
    review.click().await.expect("click Review");
    wait_for_open_dialog(browser).await;
}

/// Waits until the review dialog is open and shown.
async fn wait_for_open_dialog(browser: &Browser) {
    let deadline = Instant::now() + crate::browser::WAIT;
    loop {
        let dialog = browser.find(DIALOG).await;
        let open = dialog.attr("open").await.ok().flatten().is_some();
        if open && dialog.is_displayed().await.unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "the review dialog never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        browser.text(&format!("{DIALOG} h2")).await,
        "Approve or reject the revision"
    );
    assert_eq!(
        browser
            .text(&format!("{DIALOG} label[for=\"review-comments\"]"))
            .await,
        "Comments"
    );
}

/// Types `comments` into the open review dialog and presses `decision` (`Approve` or `Reject`);
/// waits for the page the decision redirects to.
async fn decide_in_dialog(browser: &Browser, comments: &str, decision: &str) {
    let textarea = browser
        .find(&format!(
            "{DIALOG} textarea#review-comments[name=\"comments\"]"
        ))
        .await;
    textarea.send_keys(comments).await.expect("type comments");
    press_decision(browser, decision).await;
}

async fn press_decision(browser: &Browser, decision: &str) {
    let button = browser
        .find(&format!(
            "{DIALOG} button[type=\"submit\"][name=\"decision\"][value=\"{decision}\"]"
        ))
        .await;
    assert_eq!(button.text().await.expect("button text"), decision);
    browser.click_and_wait_for_page(&button).await;
}

/// Approves `action` of `pipeline` through the SDK, as Bob.
async fn approve_with_sdk(app: &TestApp, pipeline: &str, action: &str, summary: &str) {
    let token = app
        .approval_token_of(pipeline, action)
        .await
        .expect("a pending approval");
    app.client
        .put_approval_result()
        .pipeline_name(pipeline)
        .stage_name("Approve")
        .action_name(action)
        .token(token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary(summary)
                .build()
                .expect("result"),
        )
        .send()
        .await
        .expect("approve through the SDK");
}

/// The approval `action` of `pipeline` as GetPipelineState reports it: (status, summary,
/// lastUpdatedBy).
async fn sdk_approval(
    app: &TestApp,
    pipeline: &str,
    action: &str,
) -> (
    Option<ActionExecutionStatus>,
    Option<String>,
    Option<String>,
) {
    let state = app
        .client
        .get_pipeline_state()
        .name(pipeline)
        .send()
        .await
        .expect("state");
    let exec = approval_execution_of(&state, action).expect("approval execution");
    (
        exec.status().cloned(),
        exec.summary().map(str::to_string),
        exec.last_updated_by().map(str::to_string),
    )
}

async fn latest_execution_status(app: &TestApp, pipeline: &str) -> Option<PipelineExecutionStatus> {
    app.client
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .send()
        .await
        .expect("executions")
        .pipeline_execution_summaries()
        .first()
        .and_then(|e| e.status().cloned())
}

/// Checks through the SDK that Alice answered `pipeline`'s approval with `summary`, leaving
/// the approval `status` and the execution `execution_status`.
async fn assert_answered_by_alice(
    app: &TestApp,
    pipeline: &str,
    status: ActionExecutionStatus,
    summary: &str,
    execution_status: PipelineExecutionStatus,
) {
    let (seen, seen_summary, updated_by) = sdk_approval(app, pipeline, "Approval").await;
    assert_eq!(seen, Some(status));
    assert_eq!(seen_summary.as_deref(), Some(summary));
    assert_eq!(updated_by.as_deref(), Some(ALICE_ARN));
    assert_eq!(
        latest_execution_status(app, pipeline).await,
        Some(execution_status)
    );
}

/// Whether the page holds a `<script>` element whose code mentions `alert(1)`.
async fn has_injected_script(browser: &Browser) -> bool {
    browser
        .js("return Array.from(document.scripts).some(s => s.textContent.includes('alert(1)'));")
        .await
        .as_bool()
        .expect("a boolean")
}

#[tokio::test]
async fn the_browser_harness_can_load_a_page_from_the_server() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/healthz", app.endpoint)).await;
    assert_eq!(browser.text("body").await.trim(), "ok");
}

#[tokio::test]
async fn a_signed_in_approver_sees_the_comments_and_link_approves_with_a_comment_and_is_named() {
    let app = app_waiting_for("WebsiteRelease", &[approval("Approval", COMMENTS)]).await;
    let browser = Browser::start().await;

    // The root leads to the pipelines, which first ask to sign in.
    browser.goto(&format!("{}/", app.endpoint)).await;
    browser.wait_for_path("/console/signin").await;
    assert_eq!(
        next_param(&browser).await.as_deref(),
        Some("/console/pipelines")
    );
    browser.screenshot("signin").await;
    browser.submit_sign_in(ALICE, ALICE_PASSWORD).await;
    browser.wait_for_path("/console/pipelines").await;
    browser.wait_for_text(SIGNED_IN_USER, ALICE).await;
    let cookie = browser
        .get_named_cookie("lockgate_session")
        .await
        .expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()).as_deref(),
        Some("Lax")
    );
    assert_eq!(cookie.path(), Some("/"));
    assert!(
        browser
            .exists("form[method=\"post\"][action=\"/console/signout\"]")
            .await
    );

    let link = browser
        .find("table#pipelines tr[data-pipeline=\"WebsiteRelease\"] a[href=\"/console/pipelines/WebsiteRelease\"]")
        .await;
    assert_eq!(link.text().await.expect("link text"), "WebsiteRelease");
    browser.click_and_wait_for_page(&link).await;
    browser
        .wait_for_path("/console/pipelines/WebsiteRelease")
        .await;
    assert_eq!(browser.text("h1").await, "WebsiteRelease");
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "In progress")
        .await;

    // The comments and the link are in the information tooltip, shown on hover.
    let action = action_css("Approve", "Approval");
    let tooltip = format!("{action} [role=\"tooltip\"]");
    let tip = browser.text_content(&tooltip).await;
    assert!(tip.contains(COMMENTS), "tooltip: {tip:?}");
    assert!(tip.contains(LINK), "tooltip: {tip:?}");
    let info = browser
        .find(&format!(
            "{action} button[type=\"button\"][aria-label=\"Information\"]"
        ))
        .await;
    browser.hover(&info).await;
    let deadline = Instant::now() + crate::browser::WAIT;
    while !browser
        .find(&tooltip)
        .await
        .is_displayed()
        .await
        .expect("displayed")
    {
        assert!(
            Instant::now() < deadline,
            "the tooltip is not shown on hover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let manual = browser
        .find(&format!("{action} a[target=\"_blank\"][rel~=\"noopener\"]"))
        .await;
    assert_eq!(manual.text().await.expect("link text"), "Manual approval");
    assert_eq!(
        manual.attr("href").await.expect("href").as_deref(),
        Some(LINK)
    );
    browser.screenshot("pipeline-waiting-for-approval").await;

    // On a phone-sized screen the page fits its width: nothing needs sideways scrolling.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resize to a phone's size");
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .expect("measure the page width");
    assert!(
        overflow.as_i64().unwrap_or(i64::MAX) <= 0,
        "the pipeline page is wider than a phone's screen by {overflow} px"
    );
    browser.screenshot("pipeline-phone").await;
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("resize back");

    open_review_dialog(&browser, "Approval").await;
    browser.screenshot("review-dialog").await;
    decide_in_dialog(&browser, "Release notes checked, ship it", "Approve").await;

    browser
        .wait_for_path("/console/pipelines/WebsiteRelease")
        .await;
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "Succeeded")
        .await;
    browser
        .wait_for_text(APPROVE_STAGE_STATUS, "Succeeded")
        .await;
    let summary = browser
        .text(&approval_field("Approval", "action-summary"))
        .await;
    assert!(
        summary.contains("Release notes checked, ship it"),
        "{summary:?}"
    );
    let by = browser
        .text(&approval_field("Approval", "action-updated-by"))
        .await;
    assert!(by.contains("Approved") && by.contains(ALICE), "{by:?}");
    browser.screenshot("pipeline-approved").await;

    assert_answered_by_alice(
        &app,
        "WebsiteRelease",
        ActionExecutionStatus::Succeeded,
        "Release notes checked, ship it",
        PipelineExecutionStatus::Succeeded,
    )
    .await;
}

/// An approval's comments name `#{SourceVariables.CommitId}`: the pipeline page and the review
/// dialog show the commit the source reported, not the reference.
#[tokio::test]
async fn the_console_shows_an_approvals_comments_with_their_variables_resolved() {
    let app = app_waiting_for(
        "VariableRelease",
        &[approval(
            "Approval",
            "Release #{SourceVariables.CommitId} is ready",
        )],
    )
    .await;
    let browser = Browser::start().await;
    browser
        .goto(&format!(
            "{}/console/pipelines/VariableRelease",
            app.endpoint
        ))
        .await;
    browser.wait_for_path("/console/signin").await;
    browser.submit_sign_in(ALICE, ALICE_PASSWORD).await;
    browser
        .wait_for_path("/console/pipelines/VariableRelease")
        .await;
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "In progress")
        .await;
    let tooltip = format!("{} [role=\"tooltip\"]", action_css("Approve", "Approval"));
    let tip = browser.text_content(&tooltip).await;
    assert!(tip.contains("Release rev-1 is ready"), "tooltip: {tip:?}");
    assert!(!tip.contains("#{"), "tooltip: {tip:?}");

    open_review_dialog(&browser, "Approval").await;
    let dialog = browser.text_content(DIALOG).await;
    assert!(
        dialog.contains("Release rev-1 is ready"),
        "dialog: {dialog:?}"
    );
}

#[tokio::test]
async fn a_rejection_in_the_console_fails_the_stage_and_names_the_approver() {
    let app = app_waiting_for("RejectedRelease", &[approval("Approval", COMMENTS)]).await;
    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    browser
        .goto(&format!(
            "{}/console/pipelines/RejectedRelease",
            app.endpoint
        ))
        .await;
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "In progress")
        .await;

    open_review_dialog(&browser, "Approval").await;
    decide_in_dialog(&browser, "The migration is missing", "Reject").await;

    browser
        .wait_for_path("/console/pipelines/RejectedRelease")
        .await;
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "Failed")
        .await;
    browser.wait_for_text(APPROVE_STAGE_STATUS, "Failed").await;
    let summary = browser
        .text(&approval_field("Approval", "action-summary"))
        .await;
    assert!(summary.contains("The migration is missing"), "{summary:?}");
    let by = browser
        .text(&approval_field("Approval", "action-updated-by"))
        .await;
    assert!(by.contains("Rejected") && by.contains(ALICE), "{by:?}");
    let review_buttons = browser
        .find(&action_css("Approve", "Approval"))
        .await
        .find_all(Locator::XPath(".//button[normalize-space(.)='Review']"))
        .await
        .expect("query the action");
    assert!(
        review_buttons.is_empty(),
        "a rejected approval still offers Review"
    );

    assert_answered_by_alice(
        &app,
        "RejectedRelease",
        ActionExecutionStatus::Failed,
        "The migration is missing",
        PipelineExecutionStatus::Failed,
    )
    .await;
}

#[tokio::test]
async fn the_direct_review_link_leads_a_signed_out_user_through_sign_in_to_the_open_dialog() {
    let app = app_waiting_for("LinkedReview", &[approval("Approval", COMMENTS)]).await;
    let browser = Browser::start().await;
    let review = review_path("LinkedReview", "Approval");

    browser.goto(&format!("{}{review}", app.endpoint)).await;
    browser.wait_for_path("/console/signin").await;
    assert_eq!(next_param(&browser).await.as_deref(), Some(review.as_str()));
    assert!(!browser.exists(SIGNED_IN_USER).await);

    browser.submit_sign_in(ALICE, ALICE_PASSWORD).await;
    browser.wait_for_path(&review).await;
    browser.wait_for_text(SIGNED_IN_USER, ALICE).await;
    wait_for_open_dialog(&browser).await;
    // The dialog answers this approval: its form carries the pending token.
    let token = app
        .approval_token_of("LinkedReview", "Approval")
        .await
        .expect("pending token");
    let form_token = browser
        .find(&format!(
            "{DIALOG} form input[type=\"hidden\"][name=\"token\"]"
        ))
        .await
        .prop("value")
        .await
        .expect("token value");
    assert_eq!(form_token.as_deref(), Some(token.as_str()));
    let action = browser
        .find(&format!("{DIALOG} form[method=\"post\"]"))
        .await
        .attr("action")
        .await
        .expect("form action");
    assert_eq!(action.as_deref(), Some(review.as_str()));
    browser.screenshot("review-link").await;

    decide_in_dialog(&browser, "Approved from the link", "Approve").await;
    browser
        .wait_for_path("/console/pipelines/LinkedReview")
        .await;
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "Succeeded")
        .await;
    let (_, _, updated_by) = sdk_approval(&app, "LinkedReview", "Approval").await;
    assert_eq!(updated_by.as_deref(), Some(ALICE_ARN));
}

#[tokio::test]
async fn a_wrong_password_shows_an_error_and_repeated_failures_engage_the_brake() {
    let app = TestApp::spawn_with_alice().await;
    let browser = Browser::start().await;
    let alert = "[role=\"alert\"]";
    let pipelines = format!("{}/console/pipelines", app.endpoint);

    browser.goto(&pipelines).await;
    browser.wait_for_path("/console/signin").await;
    browser.submit_sign_in(ALICE, "Tr0ub4dor&3").await;
    browser
        .wait_for_text(alert, "Incorrect user name or password.")
        .await;
    assert_eq!(browser.page_status().await, 401);
    assert!(!browser.exists(SIGNED_IN_USER).await);
    browser.screenshot("signin-failed").await;
    // Not signed in: the console still asks for a password.
    browser.goto(&pipelines).await;
    browser.wait_for_path("/console/signin").await;

    // Failures two to five are still told apart from a correct password...
    for attempt in 2..=5 {
        browser
            .submit_sign_in(ALICE, &format!("wrong password {attempt}"))
            .await;
        assert_eq!(browser.page_status().await, 401, "attempt {attempt}");
        if attempt < 5 {
            browser
                .wait_for_text(alert, "Incorrect user name or password.")
                .await;
        } else {
            // The fifth may already announce the brake; either way it is refused.
            assert!(browser.exists(alert).await);
        }
    }
    // ...and after five, even the right password is refused.
    browser.submit_sign_in(ALICE, ALICE_PASSWORD).await;
    browser
        .wait_for_text(alert, "Too many failed sign-in attempts")
        .await;
    assert!(!browser.exists(SIGNED_IN_USER).await);
    browser.goto(&pipelines).await;
    browser.wait_for_path("/console/signin").await;
}

/// POSTs a form to the console as the holder of `session`, without following redirects;
/// returns the HTTP status.
async fn post_form(endpoint: &str, path: &str, session: &str, body: &str) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    http.post(format!("{endpoint}{path}"))
        .header("cookie", format!("lockgate_session={session}"))
        // The same origin a browser would send, so only the token decides.
        .header("origin", endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = app_waiting_for("CsrfGuard", &[approval("Approval", COMMENTS)]).await;
    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    let review = review_path("CsrfGuard", "Approval");
    browser.goto(&format!("{}{review}", app.endpoint)).await;
    wait_for_open_dialog(&browser).await;
    let session = browser
        .get_named_cookie("lockgate_session")
        .await
        .expect("session cookie")
        .value()
        .to_string();
    let csrf = browser
        .find(&format!(
            "{DIALOG} input[type=\"hidden\"][name=\"csrf_token\"]"
        ))
        .await
        .prop("value")
        .await
        .expect("csrf value")
        .expect("a csrf token");
    let token = app
        .approval_token_of("CsrfGuard", "Approval")
        .await
        .expect("pending token");

    let without = format!("token={token}&comments=forged&decision=Approve");
    assert_eq!(
        post_form(&app.endpoint, &review, &session, &without).await,
        403
    );
    let wrong = format!("csrf_token={}&{without}", "0".repeat(csrf.len()));
    assert_eq!(
        post_form(&app.endpoint, &review, &session, &wrong).await,
        403
    );
    let release = "/console/pipelines/CsrfGuard/release";
    assert_eq!(post_form(&app.endpoint, release, &session, "").await, 403);
    assert_eq!(
        post_form(&app.endpoint, release, &session, "csrf_token=forged").await,
        403
    );

    // Nothing changed: the approval still waits with the same token, no new execution.
    let (status, summary, updated_by) = sdk_approval(&app, "CsrfGuard", "Approval").await;
    assert_eq!(status, Some(ActionExecutionStatus::InProgress));
    assert_eq!(summary, None);
    assert_eq!(updated_by, None);
    assert_eq!(
        app.approval_token_of("CsrfGuard", "Approval").await,
        Some(token.clone())
    );
    let executions = app
        .client
        .list_pipeline_executions()
        .pipeline_name("CsrfGuard")
        .send()
        .await
        .expect("executions");
    assert_eq!(executions.pipeline_execution_summaries().len(), 1);

    // The same request with the session's token is accepted: the token alone made the difference.
    let with = format!("csrf_token={csrf}&{without}");
    assert_eq!(
        post_form(&app.endpoint, &review, &session, &with).await,
        303
    );
    let (status, _, updated_by) = sdk_approval(&app, "CsrfGuard", "Approval").await;
    assert_eq!(status, Some(ActionExecutionStatus::Succeeded));
    assert_eq!(updated_by.as_deref(), Some(ALICE_ARN));
}

#[tokio::test]
async fn custom_data_with_a_script_tag_is_shown_as_text() {
    let script = "<script>alert(1)</script>";
    let app = app_waiting_for("EscapeCheck", &[approval("Approval", script)]).await;
    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;

    for path in [
        "/console/pipelines/EscapeCheck".to_string(),
        review_path("EscapeCheck", "Approval"),
    ] {
        browser.goto(&format!("{}{path}", app.endpoint)).await;
        assert!(
            browser.get_alert_text().await.is_err(),
            "{path} opened an alert"
        );
        assert_eq!(browser.text("h1").await, "EscapeCheck");
        let tip = browser
            .text_content(&format!(
                "{} [role=\"tooltip\"]",
                action_css("Approve", "Approval")
            ))
            .await;
        assert!(tip.contains(script), "{path}: tooltip {tip:?}");
        assert!(
            !has_injected_script(&browser).await,
            "{path} runs the CustomData"
        );
        assert!(
            browser.get_alert_text().await.is_err(),
            "{path} opened an alert"
        );
    }
}

#[tokio::test]
async fn the_pipeline_page_shows_an_api_approval_within_two_seconds_and_keeps_typed_comments() {
    let app = app_waiting_for(
        "LiveUpdate",
        &[
            approval("Approval", COMMENTS),
            approval("SecondApproval", "Second pair of eyes"),
        ],
    )
    .await;
    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    browser
        .goto(&format!("{}/console/pipelines/LiveUpdate", app.endpoint))
        .await;
    browser
        .wait_for_text(&approval_field("Approval", "action-status"), "In progress")
        .await;
    // A mark that a reload would erase.
    browser
        .js("window.__lockgateSamePage = true; return null;")
        .await;

    open_review_dialog(&browser, "SecondApproval").await;
    let typed = "Typed while someone else approved";
    browser
        .find(&format!("{DIALOG} textarea#review-comments"))
        .await
        .send_keys(typed)
        .await
        .expect("type comments");

    approve_with_sdk(&app, "LiveUpdate", "Approval", "Approved from the CLI").await;
    browser
        .wait_for_text_within(
            &approval_field("Approval", "action-status"),
            "Succeeded",
            LIVE_UPDATE,
        )
        .await;
    let summary = browser
        .text(&approval_field("Approval", "action-summary"))
        .await;
    assert!(summary.contains("Approved from the CLI"), "{summary:?}");
    let by = browser
        .text(&approval_field("Approval", "action-updated-by"))
        .await;
    assert!(by.contains("Bob"), "{by:?}");

    assert_eq!(
        browser
            .js("return window.__lockgateSamePage === true;")
            .await,
        serde_json::Value::Bool(true),
        "the page was reloaded instead of updated"
    );
    let dialog = browser.find(DIALOG).await;
    assert!(
        dialog.attr("open").await.expect("open").is_some(),
        "the update closed the review dialog"
    );
    let kept = browser
        .find(&format!("{DIALOG} textarea#review-comments"))
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some(typed));
    assert_eq!(
        browser
            .text(&approval_field("SecondApproval", "action-status"))
            .await,
        "In progress"
    );

    // The kept comments go with the decision.
    press_decision(&browser, "Approve").await;
    browser.wait_for_path("/console/pipelines/LiveUpdate").await;
    browser
        .wait_for_text(
            &approval_field("SecondApproval", "action-status"),
            "Succeeded",
        )
        .await;
    let (status, summary, updated_by) = sdk_approval(&app, "LiveUpdate", "SecondApproval").await;
    assert_eq!(status, Some(ActionExecutionStatus::Succeeded));
    assert_eq!(summary.as_deref(), Some(typed));
    assert_eq!(updated_by.as_deref(), Some(ALICE_ARN));
}

#[tokio::test]
async fn the_pipelines_list_marks_the_one_waiting_and_the_history_shows_the_approver() {
    let app = TestApp::spawn_with_alice().await;
    app.create_source_type().await;
    app.create_pipeline_waiting_for_approvals(
        "Approved",
        &[approval("Approval", COMMENTS)],
        "rev-approved",
    )
    .await;
    approve_with_sdk(&app, "Approved", "Approval", "Fine by the release team").await;
    app.create_pipeline_waiting_for_approvals(
        "Waiting",
        &[approval("Approval", COMMENTS)],
        "rev-waiting",
    )
    .await;

    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    browser
        .goto(&format!("{}/console/pipelines", app.endpoint))
        .await;
    let waiting = "table#pipelines tr[data-pipeline=\"Waiting\"]";
    let approved = "table#pipelines tr[data-pipeline=\"Approved\"]";
    let class = browser
        .find(waiting)
        .await
        .attr("class")
        .await
        .expect("class")
        .unwrap_or_default();
    assert!(
        class.split_whitespace().any(|c| c == "awaiting-approval"),
        "{class:?}"
    );
    browser.wait_for_text(waiting, "Waiting for approval").await;
    browser
        .wait_for_text(
            &format!("{waiting} [data-testid=\"latest-status\"]"),
            "In progress",
        )
        .await;
    let class = browser
        .find(approved)
        .await
        .attr("class")
        .await
        .expect("class")
        .unwrap_or_default();
    assert!(!class.contains("awaiting-approval"), "{class:?}");
    assert!(!browser
        .text(approved)
        .await
        .contains("Waiting for approval"));
    browser
        .wait_for_text(
            &format!("{approved} [data-testid=\"latest-status\"]"),
            "Succeeded",
        )
        .await;
    browser.screenshot("pipelines").await;

    // The history of the approved pipeline: one execution, as the API lists it.
    let summaries = app
        .client
        .list_pipeline_executions()
        .pipeline_name("Approved")
        .send()
        .await
        .expect("executions");
    let [execution] = summaries.pipeline_execution_summaries() else {
        panic!("expected one execution: {summaries:?}");
    };
    let id = execution.pipeline_execution_id().expect("execution id");
    browser
        .goto(&format!(
            "{}/console/pipelines/Approved/executions",
            app.endpoint
        ))
        .await;
    let row = format!("table#executions tr[data-execution-id=\"{id}\"]");
    browser.wait_for_text(&row, "Succeeded").await;
    assert_eq!(
        browser
            .client
            .find_all(Locator::Css("table#executions tr[data-execution-id]"))
            .await
            .expect("rows")
            .len(),
        1
    );
    if let Some(revision) = execution
        .source_revisions()
        .first()
        .and_then(|r| r.revision_id())
    {
        browser.wait_for_text(&row, revision).await;
    }
    browser.screenshot("execution-history").await;
    let link = browser
        .find(&format!(
            "{row} a[href=\"/console/pipelines/Approved/executions/{id}\"]"
        ))
        .await;
    browser.click_and_wait_for_page(&link).await;
    browser
        .wait_for_path(&format!("/console/pipelines/Approved/executions/{id}"))
        .await;

    let rows = browser
        .client
        .find_all(Locator::Css("tr[data-action-execution]"))
        .await
        .expect("action executions");
    let mut texts = Vec::new();
    for row in &rows {
        texts.push(row.text().await.expect("row text"));
    }
    let approval_row = texts
        .iter()
        .find(|t| t.contains("Approve") && t.contains("Approval") && !t.contains("Source"))
        .unwrap_or_else(|| panic!("no row for the approval among {texts:?}"));
    assert!(approval_row.contains("Succeeded"), "{approval_row:?}");
    assert!(
        approval_row.contains("Fine by the release team"),
        "{approval_row:?}"
    );
    assert!(approval_row.contains("Bob"), "{approval_row:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Source") && t.contains("Succeeded")),
        "no row for the source action among {texts:?}"
    );
    browser.screenshot("execution-detail").await;
}

/// Clicks the button with text `label` inside `css`.
async fn click_button_in(
    browser: &Browser,
    css: &str,
    label: &str,
) -> fantoccini::elements::Element {
    browser
        .find(css)
        .await
        .find(Locator::XPath(&format!(
            ".//button[normalize-space(.)='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no {label} button in {css}: {e}"))
}

/// The inbound transition of `pipeline`'s `Approve` stage, through the SDK.
async fn approve_transition(
    app: &TestApp,
    pipeline: &str,
) -> aws_sdk_codepipeline::types::TransitionState {
    let state = app
        .client
        .get_pipeline_state()
        .name(pipeline)
        .send()
        .await
        .expect("state");
    state.stage_states()[1]
        .inbound_transition_state()
        .expect("transition state")
        .clone()
}

/// Waits until the dialog `id` is open and shown.
async fn wait_for_dialog(browser: &Browser, id: &str) {
    let deadline = Instant::now() + crate::browser::WAIT;
    loop {
        let dialog = browser.find(&format!("dialog#{id}")).await;
        if dialog.attr("open").await.ok().flatten().is_some()
            && dialog.is_displayed().await.unwrap_or(false)
        {
            return;
        }
        assert!(Instant::now() < deadline, "dialog {id} never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn transitions_release_change_and_stop_execution_work_from_the_pipeline_page() {
    let app = app_waiting_for("Ops", &[approval("Approval", COMMENTS)]).await;
    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    browser
        .goto(&format!("{}/console/pipelines/Ops", app.endpoint))
        .await;

    // Disable the transition into Approve, with a reason.
    let transition = "[data-testid=\"transition\"][data-stage=\"Approve\"]";
    click_button_in(&browser, transition, "Disable transition")
        .await
        .click()
        .await
        .expect("click Disable transition");
    wait_for_dialog(&browser, "transition-dialog").await;
    browser
        .find("dialog#transition-dialog textarea#transition-reason")
        .await
        .send_keys("Freeze for the holidays")
        .await
        .expect("type the reason");
    let disable = click_button_in(&browser, "dialog#transition-dialog", "Disable").await;
    browser.click_and_wait_for_page(&disable).await;
    browser
        .wait_for_text(transition, "Transition disabled: Freeze for the holidays")
        .await;
    let inbound = approve_transition(&app, "Ops").await;
    assert!(!inbound.enabled());
    assert_eq!(inbound.disabled_reason(), Some("Freeze for the holidays"));
    assert_eq!(inbound.last_changed_by(), Some(ALICE_ARN));

    // Release change starts a second execution.
    let release = click_button_in(&browser, "div.head-actions", "Release change").await;
    browser.click_and_wait_for_page(&release).await;
    browser
        .wait_for_text(
            "[role=\"status\"]",
            "Release change started a new execution.",
        )
        .await;
    let executions = app
        .client
        .list_pipeline_executions()
        .pipeline_name("Ops")
        .send()
        .await
        .expect("executions");
    assert_eq!(executions.pipeline_execution_summaries().len(), 2);
    let newest = &executions.pipeline_execution_summaries()[0];
    assert_eq!(newest.status(), Some(&PipelineExecutionStatus::InProgress));
    let trigger = newest.trigger().expect("trigger");
    assert_eq!(trigger.trigger_detail(), Some(ALICE_ARN));
    let newest_id = newest.pipeline_execution_id().expect("id").to_string();

    // Stop it, abandoning what runs.
    let stop = click_button_in(&browser, "section.latest", "Stop execution").await;
    assert_eq!(
        stop.attr("data-execution-id")
            .await
            .expect("attr")
            .as_deref(),
        Some(newest_id.as_str())
    );
    stop.click().await.expect("click Stop execution");
    wait_for_dialog(&browser, "stop-dialog").await;
    browser
        .find("dialog#stop-dialog input[name=\"mode\"][value=\"abandon\"]")
        .await
        .click()
        .await
        .expect("choose abandon");
    browser
        .find("dialog#stop-dialog textarea#stop-reason")
        .await
        .send_keys("Wrong revision")
        .await
        .expect("type the reason");
    let confirm = click_button_in(&browser, "dialog#stop-dialog", "Stop").await;
    browser.click_and_wait_for_page(&confirm).await;
    browser
        .wait_for_text("[role=\"status\"]", "The execution is stopping.")
        .await;
    let stopped = app
        .client
        .get_pipeline_execution()
        .pipeline_name("Ops")
        .pipeline_execution_id(&newest_id)
        .send()
        .await
        .expect("execution");
    let stopped = stopped.pipeline_execution().expect("execution");
    assert!(
        matches!(
            stopped.status(),
            Some(PipelineExecutionStatus::Stopped | PipelineExecutionStatus::Stopping)
        ),
        "{:?}",
        stopped.status()
    );

    // Enable the transition again.
    let enable = click_button_in(&browser, transition, "Enable transition").await;
    browser.click_and_wait_for_page(&enable).await;
    browser
        .wait_for_text(transition, "Transition enabled")
        .await;
    assert!(approve_transition(&app, "Ops").await.enabled());
}

#[tokio::test]
async fn a_disabled_transition_without_a_reason_is_refused_with_the_api_message() {
    let app = app_waiting_for("NoReason", &[approval("Approval", COMMENTS)]).await;
    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    browser
        .goto(&format!("{}/console/pipelines/NoReason", app.endpoint))
        .await;
    // The dialog's textarea is `required`; remove that to send what a hand-made form could.
    browser
        .js("document.getElementById('transition-reason').removeAttribute('required'); return null;")
        .await;
    let transition = "[data-testid=\"transition\"][data-stage=\"Approve\"]";
    click_button_in(&browser, transition, "Disable transition")
        .await
        .click()
        .await
        .expect("click Disable transition");
    wait_for_dialog(&browser, "transition-dialog").await;
    let disable = click_button_in(&browser, "dialog#transition-dialog", "Disable").await;
    browser.click_and_wait_for_page(&disable).await;
    let alert = browser.text("[role=\"alert\"]").await;
    assert!(alert.contains("Nothing was changed."), "{alert}");
    assert_eq!(browser.page_status().await, 400);
    assert!(approve_transition(&app, "NoReason").await.enabled());
}

#[tokio::test]
async fn a_user_added_while_the_server_runs_can_sign_in_and_is_signed_out_once_removed() {
    let app = TestApp::spawn().await;
    crate::harness::add_console_user(app.dir.path(), "Carol", "a long enough password").await;
    let browser = Browser::start().await;
    // Signing in right away, before the server's periodic user refresh, must work.
    browser
        .sign_in(&app.endpoint, "Carol", "a long enough password")
        .await;
    browser
        .goto(&format!("{}/console/pipelines", app.endpoint))
        .await;
    assert_eq!(browser.text(SIGNED_IN_USER).await, "Carol");

    let store = lockgate_store_sqlite::SqliteStore::open(app.dir.path()).expect("open store");
    assert!(lockgate_engine::users::remove_user(&store, "Carol")
        .await
        .expect("remove Carol"));
    store.close().expect("close store");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        browser
            .goto(&format!("{}/console/pipelines", app.endpoint))
            .await;
        if browser.path().await.starts_with("/console/signin") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a removed user is still signed in"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_notification_that_cannot_be_delivered_is_listed_as_failed_in_the_console() {
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:release-approvals";
    // Nothing listens on the discard port, so every delivery fails at once.
    const DEAD_HOOK: &str = "http://127.0.0.1:9/hook";
    let dir = tempfile::tempdir().expect("tempdir");
    crate::harness::add_bob(dir.path()).await;
    crate::harness::add_console_user(dir.path(), ALICE, ALICE_PASSWORD).await;
    let mut config = crate::harness::test_config(dir.path());
    config.notify.topics = vec![lockgate_notify::TopicConfig {
        arn: TOPIC.into(),
        subscriptions: vec![lockgate_notify::SubscriptionConfig {
            protocol: lockgate_notify::Protocol::Http,
            endpoint: Some(DEAD_HOOK.into()),
            secret: None,
            format: Default::default(),
            topic_arn: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
        }],
    }];
    config.notify.delivery.max_attempts = 1;
    let app = TestApp::spawn_with_config(dir, config).await;
    app.create_source_type().await;
    let mut gate = approval("Approval", COMMENTS);
    gate.notification_arn = Some(TOPIC);
    app.create_pipeline_waiting_for_approvals("Notified", &[gate], "rev-1")
        .await;

    let browser = Browser::start().await;
    browser.sign_in(&app.endpoint, ALICE, ALICE_PASSWORD).await;
    let row = "#failed-notifications tr[data-notification]";
    let deadline = Instant::now() + crate::browser::WAIT;
    loop {
        browser
            .goto(&format!("{}/console/notifications", app.endpoint))
            .await;
        if browser.exists(row).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the undeliverable notification never showed as failed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = browser.text(row).await;
    for expected in [
        "approval-needed",
        "Notified",
        "Approve",
        "Approval",
        TOPIC,
        DEAD_HOOK,
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from {text:?}"
        );
    }
    assert!(browser
        .text("[role=\"alert\"]")
        .await
        .contains("could not be delivered"));
    browser.screenshot("notifications-failed").await;
    assert!(
        !browser.exists("#unheard-topics").await,
        "the configured topic is heard"
    );

    // A pipeline naming a topic no [[topics]] entry lists is accepted and listed at once.
    let mut deaf = approval("Approval", COMMENTS);
    deaf.notification_arn = Some("arn:aws:sns:us-east-1:123456789012:nobody-listens");
    app.client
        .create_pipeline()
        .pipeline(crate::harness::pipeline_with_approvals("Deaf", &[deaf]))
        .send()
        .await
        .expect("a pipeline naming an unlisted topic is created");
    browser
        .goto(&format!("{}/console/notifications", app.endpoint))
        .await;
    let unheard = browser
        .text("#unheard-topics tr[data-pipeline=\"Deaf\"]")
        .await;
    assert!(
        unheard.contains("nobody-listens") && unheard.contains("Approval"),
        "{unheard:?}"
    );
    // The pipeline is not held up by the failed notification: it still waits for its answer.
    assert!(app
        .approval_token_of("Notified", "Approval")
        .await
        .is_some());
}
