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
//!
//! Rows are delivered side by side, within the [`crate::limits`]: a row starts as soon as it is
//! due and its servers have room, whatever other rows are still waiting for theirs, so a webhook
//! that never answers delays only its own messages. Within a row, the subscriptions on
//! different servers are sent to at the same time. A row is only ever delivered by one task at
//! a time (the in-flight set), and only that task writes its delivery log.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lockgate_model::notice::ApprovalNotice;
use lockgate_model::{Clock, SystemClock};
use lockgate_store::{Collection, Mutation, Record, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{ConfigError, NotifyConfig, SubscriptionConfig};
use crate::limits::{Admission, Limits};
use crate::message::{render, Message};
use crate::sinks::Sinks;

/// How many due rows the first store query returns; later queries ask for twice as many, until
/// the due rows run out or no more can start.
const BATCH: usize = 32;
/// The longest the relay sleeps without looking at the outbox, in case the wall clock jumped.
const MAX_SLEEP: Duration = Duration::from_secs(60);

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

impl DrainReport {
    fn count(&mut self, outcome: Outcome) {
        self.processed += 1;
        match outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::Retrying => self.retrying += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Gone => {}
        }
    }
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
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    limits: Limits,
    /// The keys of the rows being delivered right now, by whichever loop started them.
    in_flight: Mutex<HashSet<String>>,
    /// Signalled whenever a row's delivery ends, so whoever waits for room looks again.
    finished: Notify,
    counters: Counters,
}

/// One row's delivery in progress: its outcome, once the row is written back.
type Delivery<'a> = BoxFuture<'a, Result<Outcome, StoreError>>;

/// What one look at the outbox found.
struct Started {
    /// Rows due now (started or not).
    due: usize,
    /// The rows it started.
    keys: Vec<String>,
    /// Whether a due row was left alone because another task delivers it or its servers had
    /// no room; it is worth looking again when a delivery ends.
    held_back: bool,
}

/// A row claimed for delivery: its slots and its place in the in-flight set, both given back
/// when the delivery ends or is dropped (at shutdown, or when a drain is abandoned).
struct Claim<'a> {
    relay: &'a Relay,
    key: String,
    _admission: Admission,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.relay
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        self.relay.finished.notify_waiters();
    }
}

/// The wall clock, in ms since the epoch.
pub fn system_now() -> i64 {
    SystemClock.now_millis()
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
            limits: Limits::new(
                config.delivery.max_messages_in_flight,
                config.delivery.max_connections_per_endpoint,
            ),
            store,
            config,
            clock: Arc::new(SystemClock),
            wake,
            in_flight: Mutex::new(HashSet::new()),
            finished: Notify::new(),
            counters: Counters::default(),
        })
    }

    /// The same relay reading time from `now` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Relay {
        self.clock = clock;
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

    /// Runs until `shutdown` resolves: starts every due row that has room, then waits for a
    /// delivery to end, the engine to signal a new row, or the next row to come due. Sends cut
    /// short by shutdown are sent again after the restart, which is what "at least once"
    /// allows.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut deliveries: FuturesUnordered<Delivery<'_>> = FuturesUnordered::new();
        loop {
            let now = self.clock.now_millis();
            let wait = match self.start_due(now, &HashSet::new(), &mut deliveries).await {
                Ok(started) => self.until_next_due(now, started.due).await,
                Err(e) => {
                    tracing::error!(error = %e, "the notification relay could not read the outbox");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                Some(result) = deliveries.next(), if !deliveries.is_empty() => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "the notification relay could not record a delivery");
                    }
                }
                _ = self.wake.notified() => {}
                // A delivery started by `run_once` ended, which may have made room.
                _ = self.finished.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How long to sleep until the first row due after `now`, given that `due_now` rows are
    /// due already (those are in flight or waiting for room, and a finished delivery wakes
    /// the loop for them).
    async fn until_next_due(&self, now: i64, due_now: usize) -> Duration {
        let next = self
            .store
            .due(Collection::Outbox, i64::MAX, due_now.saturating_add(1))
            .await;
        match next {
            Ok(rows) => match rows.iter().filter_map(|r| r.due_at).find(|&d| d > now) {
                Some(due) => {
                    let ms = (due - now).clamp(1, 60_000);
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

    /// Delivers every outbox row due now, each at most once, and returns what happened. Tests
    /// call this to process the outbox synchronously; it runs rows side by side like the
    /// background loop, and waits for rows that loop is delivering at the same time.
    pub async fn run_once(&self) -> Result<DrainReport, StoreError> {
        let now = self.clock.now_millis();
        let mut report = DrainReport::default();
        // Rows this drain started: each is tried once, even if it comes due again at once.
        let mut tried = HashSet::new();
        let mut deliveries: FuturesUnordered<Delivery<'_>> = FuturesUnordered::new();
        loop {
            // Registered before looking, so a delivery ending meanwhile is not missed.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let started = self.start_due(now, &tried, &mut deliveries).await?;
            tried.extend(started.keys);
            if let Some(result) = deliveries.next().await {
                report.count(result?);
                continue;
            }
            if !started.held_back {
                return Ok(report);
            }
            finished.await;
        }
    }

    /// Starts delivering, into `deliveries`, every row due at `now` that is not in `skip`,
    /// not already being delivered, and whose servers have room.
    async fn start_due<'a>(
        &'a self,
        now: i64,
        skip: &HashSet<String>,
        deliveries: &mut FuturesUnordered<Delivery<'a>>,
    ) -> Result<Started, StoreError> {
        let mut limit = BATCH;
        let mut keys = Vec::new();
        let mut held_back = false;
        loop {
            let rows = self.store.due(Collection::Outbox, now, limit).await?;
            let due = rows.len();
            let everything = due < limit;
            for row in rows {
                if skip.contains(&row.key) {
                    continue;
                }
                if !self.limits.has_room() {
                    return Ok(Started {
                        due,
                        keys,
                        held_back: true,
                    });
                }
                match self.claim(&row) {
                    Some(claim) => {
                        keys.push(row.key.clone());
                        deliveries.push(Box::pin(async move {
                            let outcome = self.deliver(row).await;
                            drop(claim);
                            outcome
                        }));
                    }
                    // Being delivered already (perhaps by this very call, in an earlier and
                    // smaller query), or its servers are full.
                    None => held_back = true,
                }
            }
            if everything {
                return Ok(Started {
                    due,
                    keys,
                    held_back,
                });
            }
            limit = limit.saturating_mul(2);
        }
    }

    /// Claims `row` for delivery if nobody is delivering it and its servers have room.
    fn claim(&self, row: &Record) -> Option<Claim<'_>> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if in_flight.contains(&row.key) {
            return None;
        }
        let admission = self.limits.try_admit(&self.endpoints(row))?;
        in_flight.insert(row.key.clone());
        Some(Claim {
            relay: self,
            key: row.key.clone(),
            _admission: admission,
        })
    }

    /// The servers a row still has to reach (none for a row that cannot be read or whose
    /// topic is gone: it only takes a message slot).
    fn endpoints(&self, row: &Record) -> BTreeSet<String> {
        let Ok(body) = row.body.decode::<OutboxBody>() else {
            return BTreeSet::new();
        };
        let Some(topic) = self.config.topic(&body.notice.topic_arn) else {
            return BTreeSet::new();
        };
        missing(&body.notice, &body.delivery, &topic.subscriptions)
            .map(|sub| self.sinks.endpoint(&body.notice.topic_arn, sub))
            .collect()
    }

    /// Tries one row's missing deliveries and writes the result back.
    async fn deliver(&self, row: Record) -> Result<Outcome, StoreError> {
        // The row was listed a while ago: an approval decided since then has taken its
        // approval-needed row back, and that message must not go out any more.
        let Some(row) = self.store.get(Collection::Outbox, &row.key).await? else {
            return Ok(Outcome::Gone);
        };
        let mut body: OutboxBody = match row.body.decode() {
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
        let now = self.clock.now_millis();
        let notice = body.notice.clone();
        let log = &mut body.delivery;
        log.attempts += 1;
        log.last_attempt = Some(now);
        let Some(topic) = self.config.topic(&notice.topic_arn) else {
            log.failed = true;
            log.error = Some(format!(
                "topic {} is not in the server configuration: add it under [[topics]], or add a \
                 catch-all topic with arn = \"*\"",
                notice.topic_arn
            ));
            tracing::error!(key = %row.key, topic = %notice.topic_arn, "notification topic is not configured; message kept as failed");
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            self.write_back(&row, &body, None).await?;
            return Ok(Outcome::Failed);
        };
        let message = render(&notice, &self.config.public_url);
        // One sequence of sends per server, the servers side by side: a row holds one slot
        // per server (see `claim`), so it never opens more than one connection to each.
        let mut by_endpoint: BTreeMap<String, Vec<&SubscriptionConfig>> = BTreeMap::new();
        for sub in missing(&notice, log, &topic.subscriptions) {
            by_endpoint
                .entry(self.sinks.endpoint(&notice.topic_arn, sub))
                .or_default()
                .push(sub);
        }
        let sends = by_endpoint.into_values().map(|subs| {
            let (notice, message, key) = (&notice, &message, &row.key);
            async move {
                let mut results = Vec::with_capacity(subs.len());
                for sub in subs {
                    let result = self.sinks.send(&notice.topic_arn, sub, message, key).await;
                    results.push((sub.id(), result, self.clock.now_millis()));
                }
                results
            }
        });
        let results = futures_util::future::join_all(sends).await;
        let mut missing = 0;
        for (id, result, at) in results.into_iter().flatten() {
            let entry = log.subscriptions.entry(id.clone()).or_default();
            entry.attempts += 1;
            match result {
                Ok(()) => {
                    entry.delivered_at = Some(at);
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

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Completed,
    Retrying,
    Failed,
    /// The row was deleted (its approval was decided) before it could be sent.
    Gone,
}

/// The subscriptions a notice goes to that do not have it yet: everyone for an approval that
/// needs an answer, webhooks only for decisions (email and SNS subscribers get what
/// CodePipeline sends them, nothing more).
fn missing<'a>(
    notice: &'a ApprovalNotice,
    log: &'a DeliveryLog,
    subscriptions: &'a [SubscriptionConfig],
) -> impl Iterator<Item = &'a SubscriptionConfig> {
    subscriptions
        .iter()
        .filter(move |s| !notice.kind.is_decision() || s.protocol.is_webhook())
        .filter(move |s| {
            log.subscriptions
                .get(&s.id())
                .is_none_or(|d| d.delivered_at.is_none())
        })
}

fn entry(row: Record) -> Option<OutboxEntry> {
    let body: OutboxBody = row.body.decode().ok()?;
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
