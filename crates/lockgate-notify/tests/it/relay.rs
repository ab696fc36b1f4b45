//! Delivering side by side: a server that never answers holds up only its own messages, and a
//! drain still records each row's outcome and never brings back a row deleted meanwhile; topics
//! no entry lists go to the catch-all topic or fail with the reason.

use std::time::{Duration, Instant};

use lockgate_notify::DrainReport;
use lockgate_store::{Collection, Mutation};

use crate::harness::{config, notice, topic_arn, webhook, Outbox, Receiver, Silent, PATIENCE};

/// How long an attempt may take in these tests: far longer than any healthy delivery.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon a healthy delivery must arrive while another hangs: a third of the attempt
/// timeout, generous for a loaded machine, and impossible if it waited behind the hang.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_webhook_that_never_answers_does_not_hold_up_another_message() {
    let silent = Silent::start().await;
    let healthy = Receiver::start(200, "").await;
    let (dead_topic, live_topic) = (topic_arn("dead"), topic_arn("live"));
    let outbox = Outbox::new(config(
        vec![
            (
                dead_topic.clone(),
                vec![webhook(&format!("{}/hook", silent.url))],
            ),
            (
                live_topic.clone(),
                vec![webhook(&format!("{}/hook", healthy.url))],
            ),
        ],
        ATTEMPT_TIMEOUT.as_secs_f64(),
    ));
    // The message for the dead webhook is due first, so a relay sending one row at a time
    // would wait out its whole timeout before the healthy one.
    let dead = outbox
        .put(&notice(&dead_topic, "Dead"), Outbox::NOW - 2_000)
        .await;
    let live = outbox
        .put(&notice(&live_topic, "Live"), Outbox::NOW - 1_000)
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(outbox.relay.clone().run(async {
        let _ = stopped.await;
    }));

    let [request] = <[_; 1]>::try_from(healthy.wait_for(1, PROMPTLY).await).expect("one request");

    assert!(started.elapsed() < PROMPTLY, "{:?}", started.elapsed());
    let message: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(message["approval"]["pipelineName"], "Live");
    // The dead webhook's attempt is still hanging: it was accepted and nothing is recorded.
    silent.wait_for_connection(PATIENCE).await;
    let hanging = outbox
        .row(&dead)
        .await
        .expect("the dead row is still there");
    assert_eq!(
        hanging.body.value()["delivery"]["attempts"]
            .as_u64()
            .unwrap_or(0),
        0
    );
    wait_until_gone(&outbox, &live).await;
    let _ = stop.send(());
    running.await.expect("the relay stops");
}

#[tokio::test]
async fn a_subscription_that_never_answers_does_not_hold_up_the_others_of_the_same_message() {
    let silent = Silent::start().await;
    let healthy = Receiver::start(200, "").await;
    let topic = topic_arn("shared");
    let outbox = Outbox::new(config(
        vec![(
            topic.clone(),
            vec![
                webhook(&format!("{}/hook", silent.url)),
                webhook(&format!("{}/hook", healthy.url)),
            ],
        )],
        ATTEMPT_TIMEOUT.as_secs_f64(),
    ));
    outbox.put(&notice(&topic, "Both"), Outbox::NOW).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let running = tokio::spawn(outbox.relay.clone().run(async {
        let _ = stopped.await;
    }));

    healthy.wait_for(1, PROMPTLY).await;

    assert!(started.elapsed() < PROMPTLY, "{:?}", started.elapsed());
    silent.wait_for_connection(PATIENCE).await;
    let _ = stop.send(());
    running.await.expect("the relay stops");
}

#[tokio::test]
async fn a_drain_delivers_rows_side_by_side_and_records_each_outcome() {
    let healthy = Receiver::start(200, "").await;
    let failing = Receiver::start(500, "").await;
    let (good, bad) = (topic_arn("good"), topic_arn("bad"));
    let failing_url = format!("{}/hook", failing.url);
    let outbox = Outbox::new(config(
        vec![
            (
                good.clone(),
                vec![webhook(&format!("{}/hook", healthy.url))],
            ),
            (bad.clone(), vec![webhook(&failing_url)]),
        ],
        5.0,
    ));
    let delivered = outbox.put(&notice(&good, "Good"), Outbox::NOW - 1).await;
    let retried = outbox.put(&notice(&bad, "Bad"), Outbox::NOW).await;
    let later = outbox
        .put(&notice(&good, "Later"), Outbox::NOW + 60_000)
        .await;

    let report = outbox.relay.run_once().await.expect("drain");

    assert_eq!(
        report,
        DrainReport {
            processed: 2,
            completed: 1,
            retrying: 1,
            failed: 0
        }
    );
    assert_eq!(healthy.requests().len(), 1);
    assert_eq!(failing.requests().len(), 1);
    assert!(outbox.row(&delivered).await.is_none());
    let row = outbox.row(&retried).await.expect("kept for a retry");
    // The first retry waits `first_retry_seconds` (10 s).
    assert_eq!(row.due_at, Some(Outbox::NOW + 10_000));
    let log = &row.body.value()["delivery"];
    assert_eq!(log["attempts"], 1);
    let sub = &log["subscriptions"][format!("http:{failing_url}")];
    assert_eq!(sub["attempts"], 1);
    assert!(
        sub["lastError"].as_str().unwrap_or("").contains("HTTP 500"),
        "{sub}"
    );
    // Not due yet: untouched.
    assert!(outbox.row(&later).await.expect("still there").body.value()["delivery"].is_null());
    let stats = outbox.relay.stats();
    assert_eq!((stats.delivered, stats.retries, stats.failed), (1, 1, 0));
}

#[tokio::test]
async fn a_row_deleted_while_its_message_hangs_is_not_brought_back() {
    let silent = Silent::start().await;
    let topic = topic_arn("decided");
    let outbox = Outbox::new(config(
        vec![(
            topic.clone(),
            vec![webhook(&format!("{}/hook", silent.url))],
        )],
        1.0,
    ));
    let key = outbox.put(&notice(&topic, "Decided"), Outbox::NOW).await;
    let relay = outbox.relay.clone();
    let drain = tokio::spawn(async move { relay.run_once().await });
    silent.wait_for_connection(PATIENCE).await;

    // The approval is decided meanwhile: the engine's commit takes the row back.
    outbox
        .store
        .commit(vec![Mutation::Delete {
            collection: Collection::Outbox,
            key: key.clone(),
        }])
        .await
        .expect("delete");
    let report = drain.await.expect("the drain ends").expect("drain");

    assert_eq!(report.retrying, 1, "{report:?}");
    assert!(
        outbox.row(&key).await.is_none(),
        "the relay brought the row back"
    );
}

/// Waits until the row with `key` has left the outbox (it is deleted just after the receiver
/// answers), at most [`PATIENCE`].
async fn wait_until_gone(outbox: &Outbox, key: &str) {
    let deadline = Instant::now() + PATIENCE;
    while outbox.row(key).await.is_some() {
        assert!(Instant::now() < deadline, "{key} never left the outbox");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A topic no `[[topics]]` entry lists goes to the catch-all topic (`arn = "*"`), keeping the
/// topic the approval named; without a catch-all it is kept as failed, with what to do about it.
#[tokio::test]
async fn an_unlisted_topic_goes_to_the_catch_all_or_fails_with_the_reason() {
    let catch_all = Receiver::start(200, "").await;
    let unlisted = topic_arn("nobody-listed-this");
    let caught = Outbox::new(config(
        vec![
            (topic_arn("listed"), vec![]),
            (
                "*".to_string(),
                vec![webhook(&format!("{}/hook", catch_all.url))],
            ),
        ],
        5.0,
    ));
    let key = caught.put(&notice(&unlisted, "Caught"), Outbox::NOW).await;
    let report = caught.relay.run_once().await.expect("drain");
    assert_eq!((report.completed, report.failed), (1, 0));
    assert!(caught.row(&key).await.is_none(), "delivered and removed");
    let requests = catch_all.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        String::from_utf8_lossy(&requests[0].body).contains("Caught"),
        "the message of the approval that named the unlisted topic"
    );

    let uncaught = Outbox::new(config(vec![(topic_arn("listed"), vec![])], 5.0));
    let key = uncaught.put(&notice(&unlisted, "Lost"), Outbox::NOW).await;
    let report = uncaught.relay.run_once().await.expect("drain");
    assert_eq!((report.completed, report.failed), (0, 1));
    let row = uncaught.row(&key).await.expect("kept as failed");
    let error = row.body.value()["delivery"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains(&unlisted), "{error}");
    assert!(error.contains("arn = \"*\""), "{error}");
}
