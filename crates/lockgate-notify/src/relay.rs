//! The outbox relay: delivers the approval notices the engine committed to the outbox, at least
//! once, in the background.
//!
//! Each outbox row holds one notice; the relay fans it out to the subscriptions of its topic
//! when it sends (approval-needed messages to every subscription, decisions to webhooks only)
//! and records each subscription's delivery in the row, so a retry sends only to those still
//! missing it. A row whose subscriptions all have it is deleted. Otherwise it is tried again
//! after an exponential backoff (`first_retry_seconds`, doubling, capped at
//! `max_retry_seconds`); after `max_attempts` it stays in the outbox with no due time, as a
//! visible failure. Because the state lives in the store, pending messages survive restarts.
//! Nothing here can fail or block a pipeline: the engine only ever writes rows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lockgate_model::notice::ApprovalNotice;
use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{ConfigError, NotifyConfig, SubscriptionConfig};
use crate::message::{render, Message};
use crate::sinks::Sinks;

/// How many due rows one store query returns; the relay keeps asking until none is due.
const BATCH: usize = 32;
/// The longest the relay sleeps without looking at the outbox, in case the wall clock jumped.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Where the current time comes from (ms since the epoch); the wall clock in production.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the relay has recorded about one message's delivery, kept in its outbox row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryLog {
    /// How many times the message was tried.
    pub attempts: u32,
    /// When it was last tried (ms since the epoch).
    pub last_attempt: Option<i64>,
    /// Whether the relay gave up on it (after the last attempt, or because its topic is gone).
    pub failed: bool,
    /// Why it failed, when it failed as a whole rather than per subscription.
    pub error: Option<String>,
    /// Per subscription (by [`SubscriptionConfig::id`]): how its delivery went.
    pub subscriptions: BTreeMap<String, SubscriptionDelivery>,
}

/// One subscription's delivery of one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDelivery {
    /// When it was delivered (ms since the epoch); `None` while not yet delivered.
    pub delivered_at: Option<i64>,
    /// How many times it was tried.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
}

/// An outbox row as the relay reads and writes it: the engine's notice plus the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxBody {
    notice: ApprovalNotice,
    #[serde(default)]
    delivery: DeliveryLog,
}

/// One message in the outbox, for listings (the console, `failed()`, `pending()`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The row's key (`<action execution id>/<kind>`), also the webhook delivery id.
    pub key: String,
    /// The notice.
    pub notice: ApprovalNotice,
    /// How its delivery went so far.
    pub delivery: DeliveryLog,
    /// When it is tried next (ms since the epoch); `None` once it has failed for good.
    pub next_attempt: Option<i64>,
}

/// Running totals since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages delivered to a subscription.
    pub delivered: u64,
    /// Deliveries to a subscription given up on after the last attempt.
    pub failed: u64,
    /// Retries scheduled after a failed attempt.
    pub retries: u64,
}

/// What one [`Relay::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Outbox rows looked at.
    pub processed: usize,
    /// Rows completely delivered (and removed).
    pub completed: usize,
    /// Rows scheduled for another attempt.
    pub retrying: usize,
    /// Rows given up on.
    pub failed: usize,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
}

/// The outbox relay. Build one per process, [`Relay::run`] it in the background, and let the
/// engine's outbox signal wake it.
pub struct Relay {
    store: Arc<dyn Store>,
    config: Arc<NotifyConfig>,
    sinks: Sinks,
    now: Now,
    wake: Arc<Notify>,
    busy: tokio::sync::Mutex<()>,
    counters: Counters,
}

/// The wall clock, in ms since the epoch.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Relay {
    /// A relay over `store`, delivering with `config` (validated), woken early by `wake`
    /// (signal it after committing outbox rows).
    pub fn new(
        store: Arc<dyn Store>,
        config: NotifyConfig,
        wake: Arc<Notify>,
    ) -> Result<Relay, ConfigError> {
        config.validate()?;
        let config = Arc::new(config);
        Ok(Relay {
            sinks: Sinks::new(config.clone())?,
            store,
            config,
            now: Arc::new(system_now),
            wake,
            busy: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        })
    }

    /// The same relay reading time from `now` (tests).
    pub fn with_clock(mut self, now: Now) -> Relay {
        self.now = now;
        self
    }

    /// The configuration it delivers with.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// Delivery totals since start.
    pub fn stats(&self) -> Stats {
        Stats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    /// Runs until `shutdown` resolves: delivers what is due, then sleeps until the next row is
    /// due or the engine signals a new one. A send cut short by shutdown is sent again after
    /// the restart, which is what "at least once" allows.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = tokio::select! {
                _ = &mut shutdown => break,
                wait = self.tick() => wait,
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round of the background loop; returns how long to sleep.
    async fn tick(&self) -> Duration {
        if let Err(e) = self.run_once().await {
            tracing::error!(error = %e, "the notification relay could not read the outbox");
            return Duration::from_secs(1);
        }
        match self.store.due(Collection::Outbox, i64::MAX, 1).await {
            Ok(rows) => match rows.first().and_then(|r| r.due_at) {
                Some(due) => {
                    let ms = (due - (self.now)()).clamp(1, 60_000);
                    Duration::from_millis(u64::try_from(ms).unwrap_or(1))
                }
                None => MAX_SLEEP,
            },
            Err(e) => {
                tracing::error!(error = %e, "the notification relay could not read the outbox");
                Duration::from_secs(1)
            }
        }
    }

    /// Delivers every outbox row due now, and returns what happened. Tests call this to process
    /// the outbox synchronously; the background loop calls it too (never two at once).
    pub async fn run_once(&self) -> Result<DrainReport, StoreError> {
        let _busy = self.busy.lock().await;
        let mut report = DrainReport::default();
        let now = (self.now)();
        loop {
            let rows = self.store.due(Collection::Outbox, now, BATCH).await?;
            let n = rows.len();
            for row in rows {
                report.processed += 1;
                match self.deliver(row).await? {
                    Outcome::Completed => report.completed += 1,
                    Outcome::Retrying => report.retrying += 1,
                    Outcome::Failed => report.failed += 1,
                    Outcome::Gone => {}
                }
            }
            if n < BATCH {
                return Ok(report);
            }
        }
    }

    /// Tries one row's missing deliveries and writes the result back.
    async fn deliver(&self, row: Record) -> Result<Outcome, StoreError> {
        // The batch was read a while ago: an approval decided since then has taken its
        // approval-needed row back, and that message must not go out any more.
        let Some(row) = self.store.get(Collection::Outbox, &row.key).await? else {
            return Ok(Outcome::Gone);
        };
        let mut body: OutboxBody = match serde_json::from_value(row.body.clone()) {
            Ok(b) => b,
            Err(e) => {
                // A row nobody can read is kept for inspection, out of the way of the others.
                tracing::error!(key = %row.key, error = %e, "unreadable outbox row; kept as failed");
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                let mut kept = row;
                kept.due_at = None;
                self.store.commit(vec![Mutation::Update(kept)]).await?;
                return Ok(Outcome::Failed);
            }
        };
        let now = (self.now)();
        let notice = body.notice.clone();
        let log = &mut body.delivery;
        log.attempts += 1;
        log.last_attempt = Some(now);
        let Some(topic) = self.config.topic(&notice.topic_arn) else {
            log.failed = true;
            log.error = Some(format!(
                "topic {} is no longer in the server configuration",
                notice.topic_arn
            ));
            tracing::error!(key = %row.key, topic = %notice.topic_arn, "notification topic is not configured; message kept as failed");
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            self.write_back(&row, &body, None).await?;
            return Ok(Outcome::Failed);
        };
        let message = render(&notice, &self.config.public_url);
        let mut missing = 0;
        for sub in targets(&notice, &topic.subscriptions) {
            let id = sub.id();
            let entry = log.subscriptions.entry(id.clone()).or_default();
            if entry.delivered_at.is_some() {
                continue;
            }
            entry.attempts += 1;
            match self
                .sinks
                .send(&notice.topic_arn, sub, &message, &row.key)
                .await
            {
                Ok(()) => {
                    entry.delivered_at = Some((self.now)());
                    entry.last_error = None;
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(key = %row.key, subscription = %id, event = message.event, "notification delivered");
                }
                Err(e) => {
                    tracing::warn!(key = %row.key, subscription = %id, attempt = log.attempts, error = %e, "notification delivery failed");
                    entry.last_error = Some(e);
                    missing += 1;
                }
            }
        }
        if missing == 0 {
            self.store
                .commit(vec![Mutation::Delete {
                    collection: Collection::Outbox,
                    key: row.key.clone(),
                }])
                .await?;
            return Ok(Outcome::Completed);
        }
        if log.attempts >= self.config.delivery.max_attempts {
            log.failed = true;
            let attempts = log.attempts;
            self.write_back(&row, &body, None).await?;
            // Counted once stored, so whoever sees the count also finds the row in `failed()`.
            self.counters.failed.fetch_add(missing, Ordering::Relaxed);
            tracing::error!(key = %row.key, attempts, subscriptions = missing, event = message.event, "notification not delivered after the last attempt; kept as failed");
            return Ok(Outcome::Failed);
        }
        let wait = self.config.delivery.backoff(log.attempts);
        let next = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        self.write_back(&row, &body, Some(next)).await?;
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        Ok(Outcome::Retrying)
    }

    /// Stores the updated row, unless the engine deleted it meanwhile (`Mutation::Update` is a
    /// no-op for a missing row, atomically): an approval decided while its approval-needed
    /// message was being sent must not bring that message back.
    async fn write_back(
        &self,
        row: &Record,
        body: &OutboxBody,
        due_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_value(body).unwrap_or(serde_json::Value::Null);
        let mut updated = Record::new(Collection::Outbox, row.key.clone(), json);
        updated.parent = row.parent.clone();
        updated.due_at = due_at;
        self.store.commit(vec![Mutation::Update(updated)]).await
    }

    /// Every message still to be delivered, earliest first.
    pub async fn pending(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self
            .store
            .due(Collection::Outbox, i64::MAX, usize::MAX)
            .await?;
        Ok(rows.into_iter().filter_map(entry).collect())
    }

    /// Every message given up on (kept with no due time), for the console and operators.
    pub async fn failed(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self.store.load(Collection::Outbox).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.due_at.is_none())
            .filter_map(entry)
            .collect())
    }

    /// The delivery counters and outbox sizes in Prometheus's text format.
    pub async fn metrics(&self) -> Result<String, StoreError> {
        let stats = self.stats();
        let pending = self.pending().await?.len();
        let failed_now = self.failed().await?.len();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "lockgate_notifications_delivered_total",
            "counter",
            "Notifications delivered to a subscription since start.",
            stats.delivered.to_string(),
        );
        metric(
            "lockgate_notifications_failed_total",
            "counter",
            "Deliveries to a subscription given up on after the last attempt, since start.",
            stats.failed.to_string(),
        );
        metric(
            "lockgate_notifications_retries_total",
            "counter",
            "Retries scheduled after a failed delivery attempt, since start.",
            stats.retries.to_string(),
        );
        metric(
            "lockgate_notifications_pending",
            "gauge",
            "Notifications waiting in the outbox to be delivered.",
            pending.to_string(),
        );
        metric(
            "lockgate_notifications_failed",
            "gauge",
            "Notifications kept in the outbox as failed.",
            failed_now.to_string(),
        );
        Ok(out)
    }
}

enum Outcome {
    Completed,
    Retrying,
    Failed,
    /// The row was deleted (its approval was decided) before it could be sent.
    Gone,
}

/// The subscriptions a notice goes to: everyone for an approval that needs an answer, webhooks
/// only for decisions (email and SNS subscribers get what CodePipeline sends them, nothing more).
fn targets<'a>(
    notice: &'a ApprovalNotice,
    subscriptions: &'a [SubscriptionConfig],
) -> impl Iterator<Item = &'a SubscriptionConfig> {
    subscriptions
        .iter()
        .filter(move |s| !notice.kind.is_decision() || s.protocol.is_webhook())
}

fn entry(row: Record) -> Option<OutboxEntry> {
    let body: OutboxBody = serde_json::from_value(row.body).ok()?;
    Some(OutboxEntry {
        key: row.key,
        notice: body.notice,
        delivery: body.delivery,
        next_attempt: row.due_at,
    })
}

/// What `lockgate notify test` reports for one subscription.
#[derive(Debug)]
pub struct TestResult {
    /// The subscription ([`SubscriptionConfig::id`]).
    pub subscription: String,
    /// Whether the test message went through, or why not.
    pub result: Result<(), String>,
}

/// Sends a test message straight to every subscription of `topic_arn` (not through the
/// outbox), once each, and reports each result.
pub async fn send_test(
    config: NotifyConfig,
    topic_arn: &str,
) -> Result<Vec<TestResult>, ConfigError> {
    config.validate()?;
    let Some(topic) = config.topic(topic_arn).cloned() else {
        return Err(ConfigError(format!(
            "topic {topic_arn} is not configured: add it under [[topics]]"
        )));
    };
    let region = topic_arn.split(':').nth(3).unwrap_or("").to_string();
    let message: Message = crate::message::test_message(topic_arn, &region, &config.public_url);
    let sinks = Sinks::new(Arc::new(config))?;
    let delivery_id = format!("test-{}", system_now());
    let mut results = Vec::new();
    for sub in &topic.subscriptions {
        results.push(TestResult {
            subscription: sub.id(),
            result: sinks.send(topic_arn, sub, &message, &delivery_id).await,
        });
    }
    Ok(results)
}
