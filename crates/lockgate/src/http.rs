//! The `[http]` section of the configuration: how long a client connection may take over each
//! part of a request, how many connections are served at once, and who may read `/metrics`.
//!
//! ```toml
//! [http]
//! header_timeout_seconds = 10   # from a connection's first byte to the end of its headers
//! idle_timeout_seconds = 60     # a kept-alive connection with no request in progress
//! body_timeout_seconds = 30     # from the end of the headers to the end of the body
//! max_connections = 448         # default: derived from the open-file limit
//! metrics_token = "…"           # default: /metrics for loopback clients only
//! ```

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Seconds a client has from its connection's first byte (or from connecting) to the end of the
/// request headers. Every AWS SDK sends its headers in one write; a slow mobile link needs a
/// second. Ten seconds bounds how long a "slowloris" client can hold a connection slot.
pub const DEFAULT_HEADER_TIMEOUT_SECONDS: u64 = 10;
/// Seconds a kept-alive connection may sit with no request in progress before it is closed.
/// Longer than the header timeout so that SDK connection pools (which reuse a connection for
/// calls seconds apart) rarely meet a closed connection; short enough that idle connections do
/// not pile up.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
/// Seconds a client has from the end of the headers to the end of the body. The largest body
/// accepted is 2 MiB: 30 s is ~70 KB/s, slower than any link an SDK would be used over.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 30;
/// Open files kept back from client connections: the SQLite database, its WAL and shared memory
/// for the writer, the checkpointer and pooled readers, the listener, standard streams, the
/// runtime's own descriptors, and outgoing SMTP, webhook and SNS connections.
pub const RESERVED_DESCRIPTORS: u64 = 128;
/// The most connections the derived default allows, however high the open-file limit.
pub const MAX_DERIVED_CONNECTIONS: usize = 4096;
/// The connection cap when the open-file limit cannot be read (or is unlimited).
pub const FALLBACK_MAX_CONNECTIONS: usize = 512;

/// What `[http]` may set; every key is optional.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds from a connection's first byte to the end of the request headers
    /// (default [`DEFAULT_HEADER_TIMEOUT_SECONDS`]).
    pub header_timeout_seconds: u64,
    /// Seconds a connection may stay open with no request in progress
    /// (default [`DEFAULT_IDLE_TIMEOUT_SECONDS`]).
    pub idle_timeout_seconds: u64,
    /// Seconds from the end of the headers to the end of the body
    /// (default [`DEFAULT_BODY_TIMEOUT_SECONDS`]).
    pub body_timeout_seconds: u64,
    /// Client connections served at once. Default: half of the open-file limit left after
    /// [`RESERVED_DESCRIPTORS`] (a connection in flight can need a second descriptor: a SQLite
    /// reader, an outgoing notification), at most [`MAX_DERIVED_CONNECTIONS`].
    pub max_connections: Option<usize>,
    /// A bearer token `/metrics` requires. Without one, `/metrics` answers loopback clients only.
    pub metrics_token: Option<SecretString>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_seconds: DEFAULT_HEADER_TIMEOUT_SECONDS,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            body_timeout_seconds: DEFAULT_BODY_TIMEOUT_SECONDS,
            max_connections: None,
            metrics_token: None,
        }
    }
}

// Hand-written so that the metrics token never reaches a log line.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("header_timeout_seconds", &self.header_timeout_seconds)
            .field("idle_timeout_seconds", &self.idle_timeout_seconds)
            .field("body_timeout_seconds", &self.body_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// The limits the server applies to every client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a connection's first byte (or from connecting) to the end of the request headers.
    pub header_timeout: Duration,
    /// With no request in progress.
    pub idle_timeout: Duration,
    /// From the end of the headers to the end of the body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl HttpConfig {
    /// Refuses zero timeouts, a zero cap and an empty token, which would lock every client out.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, value) in [
            ("header_timeout_seconds", self.header_timeout_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("body_timeout_seconds", self.body_timeout_seconds),
        ] {
            if value == 0 {
                anyhow::bail!("[http] {key} must be at least 1");
            }
        }
        if self.max_connections == Some(0) {
            anyhow::bail!("[http] max_connections must be at least 1");
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            anyhow::bail!("[http] metrics_token must not be empty");
        }
        Ok(())
    }

    /// The limits to serve with; the connection cap is derived from the open-file limit unless
    /// configured (and a configured cap the limit cannot carry is reported).
    pub fn limits(&self) -> ConnectionLimits {
        let available = open_file_limit().map(|limit| limit.saturating_sub(RESERVED_DESCRIPTORS));
        let max_connections = match (self.max_connections, available) {
            (Some(max), Some(available)) => {
                if max as u64 > available {
                    tracing::warn!(
                        max_connections = max,
                        open_file_limit = available + RESERVED_DESCRIPTORS,
                        "[http] max_connections is above what the open-file limit leaves for \
                         clients; raise the limit (ulimit -n, LimitNOFILE=) or lower the cap"
                    );
                }
                max
            }
            (Some(max), None) => max,
            (None, available) => derived_max_connections(available),
        };
        ConnectionLimits {
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            body_timeout: Duration::from_secs(self.body_timeout_seconds),
            max_connections,
        }
    }
}

/// The default cap for `available` descriptors (the open-file limit minus the reserve).
fn derived_max_connections(available: Option<u64>) -> usize {
    match available {
        Some(available) => usize::try_from(available / 2)
            .unwrap_or(MAX_DERIVED_CONNECTIONS)
            .clamp(1, MAX_DERIVED_CONNECTIONS),
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The process's soft open-file limit, when there is one.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The process's soft open-file limit, when there is one.
#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let limits = HttpConfig::default().limits();
        assert_eq!(limits.header_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.body_timeout, Duration::from_secs(30));
        assert!(limits.max_connections >= 1);
    }

    #[test]
    fn the_derived_cap_leaves_descriptors_for_the_store_and_outgoing_connections() {
        // 1,024 open files (a common default): (1024 - 128) / 2.
        assert_eq!(derived_max_connections(Some(1024 - 128)), 448);
        assert_eq!(derived_max_connections(Some(1_000_000)), 4096);
        assert_eq!(derived_max_connections(Some(0)), 1);
        assert_eq!(derived_max_connections(None), 512);
    }

    #[test]
    fn a_configured_cap_is_kept_and_zero_values_are_refused() {
        let config: HttpConfig =
            toml::from_str("max_connections = 7\nheader_timeout_seconds = 2").unwrap();
        assert_eq!(config.limits().max_connections, 7);
        assert_eq!(config.limits().header_timeout, Duration::from_secs(2));
        assert_eq!(config.limits().idle_timeout, Duration::from_secs(60));
        for bad in [
            "idle_timeout_seconds = 0",
            "max_connections = 0",
            "metrics_token = \"\"",
        ] {
            let config: HttpConfig = toml::from_str(bad).unwrap();
            assert!(config.validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<HttpConfig>("idle_timeout = 5").is_err());
    }

    #[test]
    fn the_metrics_token_never_shows_in_debug_output() {
        let config: HttpConfig = toml::from_str("metrics_token = \"s3cret-token\"").unwrap();
        assert!(!format!("{config:?}").contains("s3cret-token"));
    }
}
