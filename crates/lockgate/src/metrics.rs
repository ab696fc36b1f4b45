//! `GET /metrics`: notification delivery counters and the store's group-commit and write-ahead-log
//! counters in Prometheus's text format, for whoever holds the configured bearer token
//! (`[http] metrics_token`), or, when none is configured, for clients on the loopback interface
//! only.
//!
//! Behind a reverse proxy on the same host every client looks like loopback: configure a token
//! there.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lockgate_notify::Relay;
use lockgate_store_sqlite::{CommitStats, SqliteStore, WalStats};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// What the `/metrics` handler needs.
pub(crate) struct Metrics {
    /// Where the notification counters come from.
    pub relay: Arc<Relay>,
    /// Where the commit and write-ahead-log counters come from.
    pub store: SqliteStore,
    /// The bearer token required, if one is configured.
    pub token: Option<SecretString>,
}

/// Why a client may not read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A token is configured and the request does not carry it.
    BadToken,
    /// No token is configured and the client is not on the loopback interface.
    NotLoopback,
}

/// Whether a client at `peer` sending `headers` may read the metrics.
pub(crate) fn check_access(
    token: Option<&SecretString>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    match token {
        Some(token) => {
            let given = headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            // Constant time, so the comparison does not reveal how much of a guess was right.
            if given
                .as_bytes()
                .ct_eq(token.expose_secret().as_bytes())
                .into()
            {
                Ok(())
            } else {
                Err(Refusal::BadToken)
            }
        }
        None if peer.ip().to_canonical().is_loopback() => Ok(()),
        None => Err(Refusal::NotLoopback),
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match check_access(metrics.token.as_ref(), peer, &headers) {
        Ok(()) => {}
        Err(Refusal::BadToken) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(WWW_AUTHENTICATE, "Bearer realm=\"lockgate-metrics\"")],
                "/metrics requires the bearer token configured as [http] metrics_token.\n",
            )
                .into_response();
        }
        Err(Refusal::NotLoopback) => {
            tracing::debug!(%peer, "refused /metrics to a client that is not on loopback");
            return (
                StatusCode::FORBIDDEN,
                "/metrics answers loopback clients only; configure [http] metrics_token \
                 (LOCKGATE_METRICS_TOKEN) to read it from elsewhere.\n",
            )
                .into_response();
        }
    }
    match metrics.relay.metrics().await {
        Ok(relay) => {
            let store = store_metrics(&metrics.store.stats(), &metrics.store.wal_stats());
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                relay + &store,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox for /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The store's counters in Prometheus's text format: commits against write transactions (their
/// ratio is the average group commit; each transaction is one fsync), commits waiting for the
/// writer, deferred mutations and their flushes, and the write-ahead log's size against its limit with the checkpoints that keep it
/// there.
fn store_metrics(commits: &CommitStats, wal: &WalStats) -> String {
    let rows: [(&str, &str, &str, u64); 12] = [
        (
            "lockgate_store_commits_total",
            "counter",
            "Commits acknowledged as durable since start.",
            commits.commits,
        ),
        (
            "lockgate_store_failed_commits_total",
            "counter",
            "Commits answered with an error since start (nothing of them was stored).",
            commits.failed_commits,
        ),
        (
            "lockgate_store_transactions_total",
            "counter",
            "Write transactions (one WAL fsync each) since start; commits_total divided by this is the average group commit.",
            commits.transactions,
        ),
        (
            "lockgate_store_pending_commits",
            "gauge",
            "Commits waiting for the writer.",
            commits.pending,
        ),
        (
            "lockgate_store_flushes_total",
            "counter",
            "Flushes since start: deferred mutations (pipelines, jobs, timers), already durable in the log, written to their tables many commits at a time.",
            commits.flushes,
        ),
        (
            "lockgate_store_deferred_mutations",
            "gauge",
            "Deferred mutations of acknowledged commits waiting for the next flush.",
            commits.deferred,
        ),
        (
            "lockgate_store_wal_bytes",
            "gauge",
            "Size of the write-ahead log file after the last group commit.",
            wal.wal_bytes,
        ),
        (
            "lockgate_store_wal_peak_bytes",
            "gauge",
            "Largest size of the write-ahead log file since start.",
            wal.wal_peak_bytes,
        ),
        (
            "lockgate_store_wal_limit_bytes",
            "gauge",
            "The write-ahead log's size limit ([store] wal_limit_mb).",
            wal.wal_limit_bytes,
        ),
        (
            "lockgate_store_checkpoints_total",
            "counter",
            "PASSIVE checkpoints run after commits since start.",
            wal.checkpoints,
        ),
        (
            "lockgate_store_forced_checkpoints_total",
            "counter",
            "RESTART checkpoints run because the write-ahead log passed its limit, since start.",
            wal.forced_checkpoints,
        ),
        (
            "lockgate_store_blocked_checkpoints_total",
            "counter",
            "Forced checkpoints that could not finish (a reader held an old snapshot), since start.",
            wal.blocked_checkpoints,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_counters_print_in_prometheus_text_format() {
        // Both are `non_exhaustive`: filled in field by field.
        let mut commits = CommitStats::default();
        commits.commits = 640;
        commits.failed_commits = 1;
        commits.transactions = 10;
        commits.pending = 3;
        commits.flushes = 4;
        commits.deferred = 1_500;
        let mut wal = WalStats::default();
        wal.checkpoints = 7;
        wal.forced_checkpoints = 2;
        wal.wal_bytes = 4_128_768;
        wal.wal_peak_bytes = 70_000_000;
        wal.wal_limit_bytes = 67_108_864;
        let text = store_metrics(&commits, &wal);
        for line in [
            "# TYPE lockgate_store_commits_total counter\nlockgate_store_commits_total 640\n",
            "lockgate_store_failed_commits_total 1\n",
            "lockgate_store_transactions_total 10\n",
            "# TYPE lockgate_store_pending_commits gauge\nlockgate_store_pending_commits 3\n",
            "# TYPE lockgate_store_flushes_total counter\nlockgate_store_flushes_total 4\n",
            "# TYPE lockgate_store_deferred_mutations gauge\nlockgate_store_deferred_mutations 1500\n",
            "lockgate_store_wal_bytes 4128768\n",
            "lockgate_store_wal_peak_bytes 70000000\n",
            "lockgate_store_wal_limit_bytes 67108864\n",
            "lockgate_store_checkpoints_total 7\n",
            "lockgate_store_forced_checkpoints_total 2\n",
            "lockgate_store_blocked_checkpoints_total 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        // Every sample has its HELP and TYPE lines, and nothing else is printed.
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 12);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# HELP ")).count(),
            samples
        );
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# TYPE ")).count(),
            samples
        );
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 50000)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn without_a_token_only_loopback_clients_may_read() {
        let none = HeaderMap::new();
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(check_access(None, peer(ip), &none), Ok(()), "{ip}");
        }
        for ip in ["10.0.0.7", "192.168.1.20", "2001:db8::1"] {
            assert_eq!(
                check_access(None, peer(ip), &none),
                Err(Refusal::NotLoopback),
                "{ip}"
            );
        }
    }

    #[test]
    fn with_a_token_every_client_needs_it_loopback_included() {
        let token = SecretString::from("metrics-token-123");
        for ip in ["127.0.0.1", "10.0.0.7"] {
            assert_eq!(
                check_access(Some(&token), peer(ip), &bearer("metrics-token-123")),
                Ok(())
            );
            for headers in [
                HeaderMap::new(),
                bearer("metrics-token-12"),
                bearer("wrong"),
            ] {
                assert_eq!(
                    check_access(Some(&token), peer(ip), &headers),
                    Err(Refusal::BadToken)
                );
            }
        }
    }
}
