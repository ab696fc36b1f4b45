//! Server configuration: defaults, an optional `lockgate.toml`, `LOCKGATE_*` environment
//! variables and command-line flags, in rising precedence (CLI > env > file > default).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lockgate_console::ConsoleSettings;
use lockgate_notify::config::{DeliveryPolicy, SmtpConfig, SnsConfig};
use lockgate_notify::{NotifyConfig, TopicConfig};
use secrecy::SecretString;
use serde::Deserialize;

use crate::http::HttpConfig;

/// The address Lockgate listens on unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4680";
/// Where Lockgate keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./lockgate-data";
/// The account id pipelines and users belong to unless told otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// The region Lockgate answers for unless told otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";
/// How long a custom action's job may run before it times out, unless told otherwise.
pub const DEFAULT_JOB_TIMEOUT_MINUTES: u64 = 24 * 60;

/// The settings `lockgate serve` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The socket address the API listens on.
    pub listen: SocketAddr,
    /// The directory holding the SQLite database.
    pub data_dir: PathBuf,
    /// The AWS account id (12 digits) that ARNs name.
    pub account_id: String,
    /// The region requests must be signed for and ARNs name.
    pub region: String,
    /// How long a custom action's job may run, from the action's start, before it fails.
    pub job_timeout: Duration,
    /// Approval notifications: `public_url`, `[smtp]`, `[sns]`, `[notifications]`, `[[topics]]`.
    pub notify: NotifyConfig,
    /// The web console: `[console]` (trusted proxies, concurrent password checks).
    pub console: ConsoleSettings,
    /// Client connection limits and timeouts, and who may read `/metrics`: `[http]`.
    pub http: HttpConfig,
}

/// What `lockgate.toml` may set; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Config::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`Config::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Config::account_id`].
    pub account_id: Option<String>,
    /// See [`Config::region`].
    pub region: Option<String>,
    /// See [`Config::job_timeout`], in minutes.
    pub job_timeout_minutes: Option<u64>,
    /// The base URL people reach Lockgate at; every link in a notification starts with it.
    /// Default: `http://<listen address>`.
    pub public_url: Option<String>,
    /// The SMTP server email subscriptions are sent through.
    pub smtp: Option<SmtpConfig>,
    /// Defaults for `sns` subscriptions: endpoint, region, credentials.
    pub sns: Option<SnsConfig>,
    /// Notification retry policy.
    pub notifications: Option<DeliveryPolicy>,
    /// SNS topic ARNs that approvals may name in `NotificationArn`, with their subscriptions.
    #[serde(default)]
    pub topics: Vec<TopicConfig>,
    /// The web console's sign-in settings.
    pub console: Option<ConsoleSettings>,
    /// Connection limits and timeouts, and the `/metrics` token.
    #[serde(default)]
    pub http: HttpConfig,
}

impl FileConfig {
    /// Reads a configuration file; a missing or malformed file is an error worth stopping for.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

/// Values given on the command line or in the environment (clap merges the two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `LOCKGATE_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir` / `LOCKGATE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--account-id` / `LOCKGATE_ACCOUNT_ID`.
    pub account_id: Option<String>,
    /// `--region` / `LOCKGATE_REGION`.
    pub region: Option<String>,
    /// `--job-timeout-minutes` / `LOCKGATE_JOB_TIMEOUT_MINUTES`.
    pub job_timeout_minutes: Option<u64>,
    /// `--public-url` / `LOCKGATE_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// `LOCKGATE_METRICS_TOKEN` (environment only, so it stays out of `ps`).
    pub metrics_token: Option<SecretString>,
}

impl Config {
    /// Layers overrides over the file over the defaults, and checks the result.
    pub fn resolve(overrides: Overrides, file: FileConfig) -> anyhow::Result<Config> {
        let listen = match overrides.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let account_id = overrides
            .account_id
            .or(file.account_id)
            .unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_string());
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!("account id must be 12 digits, got {account_id:?}");
        }
        let region = overrides
            .region
            .or(file.region)
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            anyhow::bail!("region must look like us-east-1, got {region:?}");
        }
        let minutes = overrides
            .job_timeout_minutes
            .or(file.job_timeout_minutes)
            .unwrap_or(DEFAULT_JOB_TIMEOUT_MINUTES);
        if minutes == 0 {
            anyhow::bail!("job timeout must be at least one minute");
        }
        let notify = NotifyConfig {
            public_url: overrides
                .public_url
                .or(file.public_url)
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_string(),
            smtp: file.smtp,
            sns: file.sns.unwrap_or_default(),
            topics: file.topics,
            delivery: file.notifications.unwrap_or_default(),
        };
        notify
            .validate()
            .context("invalid notification configuration")?;
        let mut http = file.http;
        if let Some(token) = overrides.metrics_token {
            http.metrics_token = Some(token);
        }
        http.validate()?;
        Ok(Config {
            listen,
            data_dir: overrides
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            account_id,
            region,
            job_timeout: Duration::from_secs(minutes * 60),
            notify,
            console: file.console.unwrap_or_default(),
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nregion = \"eu-west-1\"\naccount_id = \"111111111111\"",
        )
        .unwrap();
        let cfg = Config::resolve(
            Overrides {
                region: Some("us-west-2".into()),
                ..Overrides::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(cfg.region, "us-west-2");
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.account_id, "111111111111");
        assert_eq!(cfg.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn defaults_bind_to_loopback() {
        let cfg = Config::resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert!(cfg.listen.ip().is_loopback());
        assert_eq!(cfg.listen.port(), 4680);
    }

    #[test]
    fn a_malformed_account_id_is_refused() {
        let err = Config::resolve(
            Overrides {
                account_id: Some("12345".into()),
                ..Overrides::default()
            },
            FileConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("12 digits"));
    }

    #[test]
    fn notification_topics_come_from_the_file_and_links_default_to_the_listen_address() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            [smtp]
            host = "127.0.0.1"
            port = 2525
            security = "none"
            from = "lockgate@example.com"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:release-approvals"
            subscriptions = [
              { protocol = "email", endpoint = "release-managers@example.com" },
              { protocol = "http",  endpoint = "http://127.0.0.1:9000/hook", secret = "s3cret" },
            ]
            "#,
        )
        .unwrap();
        let cfg = Config::resolve(Overrides::default(), file).unwrap();
        assert_eq!(cfg.notify.public_url, "http://127.0.0.1:9000");
        assert_eq!(cfg.notify.topics[0].subscriptions.len(), 2);
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn an_email_subscription_without_an_smtp_server_stops_the_start() {
        let file: FileConfig = toml::from_str(
            r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:t"
            subscriptions = [{ protocol = "email", endpoint = "a@example.com" }]
            "#,
        )
        .unwrap();
        let err = Config::resolve(Overrides::default(), file).unwrap_err();
        assert!(format!("{err:#}").contains("[smtp]"), "{err:#}");
    }

    #[test]
    fn the_console_section_names_trusted_proxies_and_the_sign_in_concurrency() {
        let file: FileConfig = toml::from_str(
            "[console]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nsignin_concurrency = 3",
        )
        .unwrap();
        let cfg = Config::resolve(Overrides::default(), file).unwrap();
        assert_eq!(cfg.console.trusted_proxies.len(), 2);
        assert_eq!(cfg.console.signin_concurrency.get(), 3);
        let cfg = Config::resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert!(cfg.console.trusted_proxies.is_empty());
    }

    #[test]
    fn the_http_section_is_read_and_the_metrics_token_from_the_environment_wins() {
        use secrecy::ExposeSecret;
        let file: FileConfig =
            toml::from_str("[http]\nidle_timeout_seconds = 5\nmetrics_token = \"from-the-file\"")
                .unwrap();
        let cfg = Config::resolve(
            Overrides {
                metrics_token: Some("from-the-environment".to_owned().into()),
                ..Overrides::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(cfg.http.idle_timeout_seconds, 5);
        assert_eq!(cfg.http.header_timeout_seconds, 10);
        assert_eq!(
            cfg.http.metrics_token.as_ref().map(|t| t.expose_secret()),
            Some("from-the-environment")
        );
        assert!(toml::from_str::<FileConfig>("[http]\nidle = 5").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
