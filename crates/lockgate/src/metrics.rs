//! `GET /metrics`: notification delivery counters in Prometheus's text format, for whoever holds
//! the configured bearer token (`[http] metrics_token`), or, when none is configured, for clients
//! on the loopback interface only.
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
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// What the `/metrics` handler needs.
pub(crate) struct Metrics {
    /// Where the counters come from.
    pub relay: Arc<Relay>,
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
        Ok(text) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox for /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
