//! Real HTTP receivers on loopback (a recording server with a scripted answer, and a server
//! that accepts connections and never answers), an outbox in a temporary SQLite store, and a
//! relay over it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use lockgate_model::notice::{outbox_body, ApprovalNotice, NoticeKind};
use lockgate_notify::config::DeliveryPolicy;
use lockgate_notify::{NotifyConfig, Relay, SubscriptionConfig, TopicConfig};
use lockgate_store::{Collection, Mutation, Record, Store};
use lockgate_store_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The longest any test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The HTTP method.
    pub method: Method,
    /// The path and query.
    pub uri: Uri,
    /// Every header.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Received>>,
    changed: Notify,
}

/// An HTTP server on loopback that records every request and answers each with one status and
/// body.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    log: Arc<Log>,
}

impl Receiver {
    /// Starts a receiver answering `status` with `body`.
    pub async fn start(status: u16, body: &'static str) -> Receiver {
        let log = Arc::new(Log::default());
        let status = StatusCode::from_u16(status).expect("a status code");
        let app = axum::Router::new()
            .fallback(
                move |State(log): State<Arc<Log>>,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      body_in: Bytes| async move {
                    log.requests.lock().unwrap().push(Received {
                        method,
                        uri,
                        headers,
                        body: body_in,
                    });
                    log.changed.notify_waiters();
                    (status, body)
                },
            )
            .with_state(log.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, log }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Received> {
        self.log.requests.lock().unwrap().clone()
    }

    /// Waits until `count` requests have arrived, at most `bound`; returns them.
    pub async fn wait_for(&self, count: usize, bound: Duration) -> Vec<Received> {
        let waiting = async {
            loop {
                let changed = self.log.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let requests = self.requests();
                if requests.len() >= count {
                    return requests;
                }
                changed.await;
            }
        };
        match tokio::time::timeout(bound, waiting).await {
            Ok(requests) => requests,
            Err(_) => panic!(
                "{} received {} requests within {bound:?}, not {count}",
                self.url,
                self.requests().len()
            ),
        }
    }
}

/// A server that accepts TCP connections and never answers, holding them open.
pub struct Silent {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    accepted: tokio::sync::watch::Receiver<usize>,
}

impl Silent {
    /// Starts it.
    pub async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (count, accepted) = tokio::sync::watch::channel(0);
        tokio::spawn(async move {
            // Closing a connection would fail the attempt at once; it must hang instead.
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
                count.send_replace(held.len());
            }
        });
        Silent { url, accepted }
    }

    /// Waits until it has accepted a connection, at most `bound`.
    pub async fn wait_for_connection(&self, bound: Duration) {
        let mut accepted = self.accepted.clone();
        tokio::time::timeout(bound, accepted.wait_for(|n| *n > 0))
            .await
            .expect("a connection to the silent server in time")
            .expect("the silent server is running");
    }
}

/// A subscription from its JSON form (`{"protocol": "http", "endpoint": "..."}`).
pub fn subscription(json: serde_json::Value) -> SubscriptionConfig {
    serde_json::from_value(json).expect("a subscription")
}

/// A webhook subscription to `url`.
pub fn webhook(url: &str) -> SubscriptionConfig {
    subscription(serde_json::json!({ "protocol": "http", "endpoint": url }))
}

/// A topic ARN named `name`.
pub fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:us-east-1:123456789012:{name}")
}

/// A configuration with these topics, and attempts that may take `timeout_seconds`.
pub fn config(
    topics: Vec<(String, Vec<SubscriptionConfig>)>,
    timeout_seconds: f64,
) -> NotifyConfig {
    NotifyConfig {
        public_url: "https://lockgate.example.com".into(),
        topics: topics
            .into_iter()
            .map(|(arn, subscriptions)| TopicConfig { arn, subscriptions })
            .collect(),
        delivery: DeliveryPolicy {
            first_retry_seconds: 10.0,
            timeout_seconds,
            ..DeliveryPolicy::default()
        },
        ..NotifyConfig::default()
    }
}

/// An approval-needed notice for `topic`, naming pipeline `pipeline`.
pub fn notice(topic: &str, pipeline: &str) -> ApprovalNotice {
    ApprovalNotice {
        kind: NoticeKind::ApprovalNeeded,
        topic_arn: topic.to_string(),
        region: "us-east-1".into(),
        pipeline_name: pipeline.into(),
        stage_name: "Approve".into(),
        action_name: "Gate".into(),
        pipeline_execution_id: format!("{pipeline}-execution"),
        action_execution_id: format!("{pipeline}-action"),
        token: format!("{pipeline}-token"),
        expires: 1_800_000_000_000,
        custom_data: None,
        external_entity_link: None,
        decided_by: None,
        summary: None,
        at: 1_700_000_000_000,
    }
}

/// A relay over an outbox in a temporary SQLite store, with the clock held at [`Outbox::NOW`].
pub struct Outbox {
    /// The store the outbox lives in.
    pub store: Arc<dyn Store>,
    /// The relay delivering it.
    pub relay: Arc<Relay>,
    _dir: tempfile::TempDir,
}

impl Outbox {
    /// The relay's time, ms since the epoch.
    pub const NOW: i64 = 1_750_000_000_000;

    /// An empty outbox and a relay delivering it with `config`.
    pub fn new(config: NotifyConfig) -> Outbox {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
        let relay = Relay::new(store.clone(), config, Arc::new(Notify::new()))
            .expect("a valid configuration")
            .with_clock(Arc::new(lockgate_model::ManualClock::new(Outbox::NOW)));
        Outbox {
            store,
            relay: Arc::new(relay),
            _dir: dir,
        }
    }

    /// Commits `notice`'s row, as the engine does, due at `due_at`; returns its key.
    pub async fn put(&self, notice: &ApprovalNotice, due_at: i64) -> String {
        let key = notice.outbox_key();
        let mut row = Record::new(Collection::Outbox, key.clone(), outbox_body(notice))
            .with_parent(notice.pipeline_name.clone());
        row.due_at = Some(due_at);
        self.store
            .commit(vec![Mutation::Put(row)])
            .await
            .expect("commit the row");
        key
    }

    /// The row with this key, if it is still in the outbox.
    pub async fn row(&self, key: &str) -> Option<Record> {
        self.store
            .get(Collection::Outbox, key)
            .await
            .expect("read the outbox")
    }
}
