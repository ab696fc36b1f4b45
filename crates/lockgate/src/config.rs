//! Server configuration: defaults, an optional `lockgate.toml`, `LOCKGATE_*` environment
//! variables and command-line flags, in rising precedence (CLI > env > file > default).
//!
//! [`Settings`] is the one list of settings: its serde field names are the TOML keys, the
//! environment variable names (`LOCKGATE_<KEY>`, `LOCKGATE_<SECTION>__<KEY>` for a key in a
//! section) and, for the few that have one, the flags' names; its `Default` holds the defaults.
//! `figment` layers the sources as serde values, so no layer lists the fields again: the TOML
//! file, then [`EnvVars`] (lockgate's own provider: it passes values on as strings, so an
//! account id like `012345678901` keeps its leading zero, and it only takes variables whose
//! first key is a setting, so `LOCKGATE_LOG` or a test's `LOCKGATE_BIN` are left alone), then
//! the flags clap parsed, serialized without the ones not given. [`Config::from_settings`]
//! checks the result and turns it into the typed [`Config`] the server runs with.
//! (clap's `env` was the alternative: it covers only the settings that have a flag, and would
//! still need a hand-written merge of those over the file.)

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use lockgate_console::ConsoleSettings;
use lockgate_notify::config::{DeliveryPolicy, SmtpConfig, SnsConfig};
use lockgate_notify::{NotifyConfig, TopicConfig};
use lockgate_store_sqlite::StoreOptions;
use serde::{Deserialize, Serialize};

use crate::artifacts::{ArtifactSettings, ArtifactsConfig};
use crate::http::HttpConfig;
use crate::triggers::TriggersConfig;
use crate::worker::WorkerConfig;
use lockgate_worker::executors::{Connection, Repository};

/// The address Lockgate listens on unless told otherwise: loopback only, port 4680.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    4680,
));
/// Where Lockgate keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./lockgate-data";
/// The account id pipelines and users belong to unless told otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// The region Lockgate answers for unless told otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";
/// How long a custom action's job may run before it times out, unless told otherwise.
pub const DEFAULT_JOB_TIMEOUT_MINUTES: u64 = 24 * 60;
/// The WAL file size, in MiB, the store keeps to unless told otherwise.
pub const DEFAULT_WAL_LIMIT_MB: u64 = 64;

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
    /// How many pipelines the engine keeps in memory.
    pub pipeline_cache: usize,
    /// How the SQLite store is run: `[store]`.
    pub store: StoreOptions,
    /// The built-in executors' worker: `[worker]`.
    pub worker: WorkerConfig,
    /// Where artifacts are kept and for how long: `[artifacts]`.
    pub artifacts: ArtifactsConfig,
    /// `[codebuild.projects.<name>]`: buildspecs, variables and timeouts of CodeBuild projects.
    pub codebuild: CodeBuildConfig,
    /// `[[repositories]]`.
    pub repositories: Vec<Repository>,
    /// `[[connections]]`.
    pub connections: Vec<Connection>,
    /// `[triggers]`.
    pub triggers: TriggersConfig,
}

/// Every setting, as `lockgate.toml` spells it; what a source leaves out keeps its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The address the API listens on (`--listen`, `LOCKGATE_LISTEN`).
    pub listen: SocketAddr,
    /// The directory holding the database (`--data-dir`, `LOCKGATE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The 12-digit account id ARNs name (`--account-id`, `LOCKGATE_ACCOUNT_ID`).
    pub account_id: String,
    /// The region requests are signed for and ARNs name (`--region`, `LOCKGATE_REGION`).
    pub region: String,
    /// Minutes a custom action's job may run before it times out (`--job-timeout-minutes`,
    /// `LOCKGATE_JOB_TIMEOUT_MINUTES`).
    pub job_timeout_minutes: u64,
    /// The base URL people reach Lockgate at; every link in a notification starts with it
    /// (`--public-url`, `LOCKGATE_PUBLIC_URL`). Default: `http://<listen address>`.
    pub public_url: Option<String>,
    /// `[smtp]`: the SMTP server email subscriptions are sent through.
    pub smtp: Option<SmtpConfig>,
    /// `[sns]`: defaults for `sns` subscriptions: endpoint, region, credentials.
    pub sns: SnsConfig,
    /// `[notifications]`: the notification retry policy.
    pub notifications: DeliveryPolicy,
    /// `[[topics]]`: SNS topic ARNs that approvals may name in `NotificationArn`, with their
    /// subscriptions.
    pub topics: Vec<TopicConfig>,
    /// `[console]`: the web console's sign-in settings.
    pub console: ConsoleSettings,
    /// `[http]`: connection limits and timeouts, and the `/metrics` token (which the
    /// environment gives as `LOCKGATE_METRICS_TOKEN`, never as a flag, so it stays out of `ps`).
    pub http: HttpConfig,
    /// How many pipelines the server keeps in memory (`LOCKGATE_PIPELINE_CACHE`); the least
    /// recently used ones are read from the store again when next used.
    pub pipeline_cache: usize,
    /// `[store]`: how the database is run.
    pub store: StoreSettings,
    /// `[worker]`: the built-in executors' worker (`--no-local-worker` sets `local = false`).
    pub worker: WorkerConfig,
    /// `[artifacts]`: where pipeline artifacts are kept, and for how long.
    pub artifacts: ArtifactSettings,
    /// `[codebuild]`: CodeBuild projects' settings.
    pub codebuild: CodeBuildConfig,
    /// `[[repositories]]`: CodeCommit repository names and where git fetches them.
    pub repositories: Vec<Repository>,
    /// `[[connections]]`: CodeStar connection ARNs and the git servers behind them.
    pub connections: Vec<Connection>,
    /// `[triggers]`: how often watched repositories are fetched.
    pub triggers: TriggersConfig,
}

/// `[codebuild]`: settings of CodeBuild projects; any `ProjectName` runs without one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeBuildConfig {
    /// `[codebuild.projects.<name>]`: a project's buildspec, environment variables, timeout.
    pub projects: std::collections::BTreeMap<String, lockgate_worker::executors::Project>,
}

/// What `[store]` may set; every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// The size, in MiB, past which the write-ahead log is checkpointed in full and rewritten
    /// from its start, and back to which its file is cut (`LOCKGATE_STORE__WAL_LIMIT_MB`;
    /// default [`DEFAULT_WAL_LIMIT_MB`]). Writers pause briefly each time it is reached.
    pub wal_limit_mb: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            wal_limit_mb: DEFAULT_WAL_LIMIT_MB,
        }
    }
}

impl StoreSettings {
    /// The store options these settings describe; refuses a limit of zero or one too large to
    /// count in bytes.
    fn options(&self) -> anyhow::Result<StoreOptions> {
        if self.wal_limit_mb == 0 {
            anyhow::bail!("[store] wal_limit_mb must be at least 1");
        }
        let wal_limit_bytes = self
            .wal_limit_mb
            .checked_mul(1024 * 1024)
            .filter(|bytes| i64::try_from(*bytes).is_ok())
            .with_context(|| format!("[store] wal_limit_mb is too large: {}", self.wal_limit_mb))?;
        Ok(StoreOptions { wal_limit_bytes })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            job_timeout_minutes: DEFAULT_JOB_TIMEOUT_MINUTES,
            public_url: None,
            smtp: None,
            sns: SnsConfig::default(),
            notifications: DeliveryPolicy::default(),
            topics: Vec::new(),
            console: ConsoleSettings::default(),
            http: HttpConfig::default(),
            pipeline_cache: lockgate_engine::DEFAULT_PIPELINE_CACHE,
            store: StoreSettings::default(),
            worker: WorkerConfig::default(),
            artifacts: ArtifactSettings::default(),
            codebuild: CodeBuildConfig::default(),
            repositories: Vec::new(),
            connections: Vec::new(),
            triggers: TriggersConfig::default(),
        }
    }
}

impl Settings {
    /// Layers the sources in rising precedence: the defaults, the TOML file (when given; a
    /// missing or malformed file is an error worth stopping for), the environment, the flags.
    pub fn load(file: Option<&Path>, env: EnvVars, flags: impl Serialize) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            // Read here first: figment would quietly skip a file that is not there.
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment.merge(env).merge(Serialized::defaults(flags));
        // Lossy: the environment's values are strings, which become numbers where one is wanted.
        figment
            .extract_lossy()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// The top-level keys, as serde knows them: asking for an unknown one makes
    /// `deny_unknown_fields` name them all, which keeps this struct the only list.
    fn keys() -> &'static [&'static str] {
        match Figment::from(Serialized::default("-", 0)).extract::<Settings>() {
            Err(e) => match e.kind {
                Kind::UnknownField(_, expected) => expected,
                _ => &[],
            },
            Ok(_) => &[],
        }
    }
}

/// The `LOCKGATE_*` environment variables that name a setting, as a figment layer.
/// `LOCKGATE_LISTEN` sets `listen`; `LOCKGATE_HTTP__IDLE_TIMEOUT_SECONDS` sets `[http]`'s
/// `idle_timeout_seconds`; `LOCKGATE_METRICS_TOKEN` sets `[http]`'s `metrics_token`. Variables
/// whose first key is not a setting (`LOCKGATE_LOG`, `LOCKGATE_CONFIG`, ...) are not settings and
/// are left alone; empty ones count as unset, as they did for clap.
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    vars: Vec<(Vec<String>, String)>,
}

/// The prefix every setting's environment variable starts with.
pub const ENV_PREFIX: &str = "LOCKGATE_";

impl EnvVars {
    /// The settings among the process's environment variables.
    pub fn from_process() -> Self {
        Self::from_vars(
            std::env::vars_os().filter_map(|(k, v)| Some((os_string(k)?, os_string(v)?))),
        )
    }

    /// The settings among `vars` (name, value): how tests give an environment without
    /// changing the process's.
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let keys = Settings::keys();
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.as_ref().strip_prefix(ENV_PREFIX)?;
                let value: String = value.into();
                let mut path: Vec<String> = rest
                    .to_ascii_lowercase()
                    .split("__")
                    .map(str::to_owned)
                    .collect();
                if path == ["metrics_token"] {
                    path = vec!["http".to_owned(), "metrics_token".to_owned()];
                }
                let known = keys.contains(&path[0].as_str());
                (known && !value.is_empty() && path.iter().all(|k| !k.is_empty()))
                    .then_some((path, value))
            })
            .collect();
        EnvVars { vars }
    }
}

fn os_string(s: OsString) -> Option<String> {
    s.into_string().ok()
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        // Errors then name the variable (`LOCKGATE_HTTP__IDLE`) rather than the key's path.
        Metadata::named("the environment").interpolater(|_profile, keys| match keys {
            ["http", "metrics_token"] => format!("{ENV_PREFIX}METRICS_TOKEN"),
            _ => format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase()),
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (path, value) in &self.vars {
            insert(&mut dict, path, Value::from(value.clone()));
        }
        Ok(Map::from([(Profile::Default, dict)]))
    }
}

/// Puts `value` at `path` in `dict`, making the sections on the way.
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [key] => {
            dict.insert(key.clone(), value);
        }
        [section, rest @ ..] => {
            let entry = dict
                .entry(section.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

impl Config {
    /// Checks the settings and gives them the types the server uses.
    pub fn from_settings(s: Settings) -> anyhow::Result<Config> {
        let account_id = s.account_id;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            anyhow::bail!("account id must be 12 digits, got {account_id:?}");
        }
        let region = s.region;
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            anyhow::bail!("region must look like us-east-1, got {region:?}");
        }
        if s.job_timeout_minutes == 0 {
            anyhow::bail!("job timeout must be at least one minute");
        }
        let notify = NotifyConfig {
            public_url: s
                .public_url
                .unwrap_or_else(|| format!("http://{}", s.listen))
                .trim_end_matches('/')
                .to_string(),
            smtp: s.smtp,
            sns: s.sns,
            topics: s.topics,
            delivery: s.notifications,
        };
        notify
            .validate()
            .context("invalid notification configuration")?;
        s.http.validate()?;
        if s.pipeline_cache == 0 {
            anyhow::bail!("pipeline_cache must be at least 1");
        }
        let store = s.store.options()?;
        s.worker.validate()?;
        for (i, r) in s.repositories.iter().enumerate() {
            if s.repositories[..i].iter().any(|o| o.name == r.name) {
                anyhow::bail!("[[repositories]] names {} twice", r.name);
            }
        }
        for (i, c) in s.connections.iter().enumerate() {
            if s.connections[..i].iter().any(|o| o.arn == c.arn) {
                anyhow::bail!("[[connections]] names {} twice", c.arn);
            }
        }
        let artifacts = s.artifacts.resolve(&s.data_dir);
        Ok(Config {
            listen: s.listen,
            data_dir: s.data_dir,
            account_id,
            region,
            job_timeout: Duration::from_secs(s.job_timeout_minutes * 60),
            notify,
            console: s.console,
            http: s.http,
            pipeline_cache: s.pipeline_cache,
            store,
            worker: s.worker,
            artifacts,
            codebuild: s.codebuild,
            repositories: s.repositories,
            connections: s.connections,
            triggers: s.triggers,
        })
    }

    /// Loads the settings from every source ([`Settings::load`]) and checks them.
    pub fn load(
        file: Option<&Path>,
        env: EnvVars,
        flags: impl Serialize,
    ) -> anyhow::Result<Config> {
        Self::from_settings(Settings::load(file, env, flags)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use secrecy::ExposeSecret;

    use super::*;

    /// Settings from a TOML text alone.
    fn from_toml(text: &str) -> anyhow::Result<Config> {
        let (_file, path) = toml_file(text);
        Config::load(Some(&path), EnvVars::default(), NoFlags {})
    }

    fn toml_file(text: &str) -> (tempfile::NamedTempFile, PathBuf) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        let path = file.path().to_path_buf();
        (file, path)
    }

    #[derive(Serialize)]
    struct NoFlags {}

    fn env(vars: &[(&str, &str)]) -> EnvVars {
        EnvVars::from_vars(vars.iter().copied())
    }

    #[test]
    fn each_layer_beats_the_one_below() {
        let (_file, path) = toml_file(
            "listen = \"127.0.0.1:9000\"\nregion = \"eu-west-1\"\naccount_id = \"111111111111\"\n\
             job_timeout_minutes = 30",
        );
        let env = env(&[
            ("LOCKGATE_REGION", "eu-central-1"),
            ("LOCKGATE_ACCOUNT_ID", "012345678901"),
            ("LOCKGATE_DATA_DIR", "/srv/from-env"),
        ]);
        let flags = BTreeMap::from([("region", "us-west-2")]);
        let cfg = Config::load(Some(&path), env, flags).unwrap();
        // Flag over environment over file.
        assert_eq!(cfg.region, "us-west-2");
        // Environment over file; a numeric-looking value stays a string, leading zero and all.
        assert_eq!(cfg.account_id, "012345678901");
        // Environment over default.
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/from-env"));
        // File over default.
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.job_timeout, Duration::from_secs(30 * 60));
        // Default where nobody says anything.
        assert_eq!(cfg.http.idle_timeout_seconds, 60);
    }

    #[test]
    fn numbers_from_the_environment_and_nested_keys_with_a_double_underscore() {
        let (_file, path) = toml_file(
            "[http]\nidle_timeout_seconds = 5\nbody_timeout_seconds = 7\n\
             [smtp]\nhost = \"127.0.0.1\"\nusername = \"lockgate\"\nfrom = \"lockgate@example.com\"",
        );
        let env = env(&[
            ("LOCKGATE_SMTP__PASSWORD", "0123"),
            ("LOCKGATE_JOB_TIMEOUT_MINUTES", "15"),
            ("LOCKGATE_HTTP__IDLE_TIMEOUT_SECONDS", "90"),
            ("LOCKGATE_NOTIFICATIONS__MAX_ATTEMPTS", "3"),
        ]);
        let cfg = Config::load(Some(&path), env, NoFlags {}).unwrap();
        assert_eq!(cfg.job_timeout, Duration::from_secs(15 * 60));
        assert_eq!(cfg.http.idle_timeout_seconds, 90);
        // The rest of the file's section stays.
        assert_eq!(cfg.http.body_timeout_seconds, 7);
        assert_eq!(cfg.notify.delivery.max_attempts, 3);
        let smtp = cfg.notify.smtp.as_ref().expect("[smtp]");
        assert_eq!(smtp.host, "127.0.0.1");
        assert_eq!(
            smtp.password.as_ref().map(|p| p.expose_secret()),
            Some("0123")
        );
    }

    #[test]
    fn lockgate_variables_that_are_not_settings_are_ignored() {
        let env = env(&[
            ("LOCKGATE_LOG", "debug"),
            ("LOCKGATE_CONFIG", "/nowhere/lockgate.toml"),
            ("LOCKGATE_BIN", "/usr/bin/lockgate"),
            ("LOCKGATE_CHROMEDRIVER", "/usr/bin/chromedriver"),
            ("LOCKGATE_LIBFAKETIME", "/usr/lib/faketime.so"),
            ("LOCKGATE_SCREENSHOTS", "1"),
            ("LOCKGATE_CHROMIUM", "/usr/bin/chromium"),
            ("LOCKGATE_ENDPOINT", "http://127.0.0.1:1"),
            ("LOCKGATE_TEST_CRASH_CHILD_DIR", "/tmp/x"),
            ("LOCKGATE_PUBLIC_URL", ""),
            ("OTHER_REGION", "nowhere"),
        ]);
        let cfg = Config::load(None, env, NoFlags {}).unwrap();
        assert_eq!(cfg.listen, DEFAULT_LISTEN);
        assert_eq!(cfg.notify.public_url, "http://127.0.0.1:4680");
    }

    #[test]
    fn a_bad_value_in_the_environment_names_its_key() {
        let err = Config::load(
            None,
            env(&[("LOCKGATE_HTTP__IDLE_TIMEOUT", "5")]),
            NoFlags {},
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("LOCKGATE_HTTP__IDLE_TIMEOUT"),
            "{err:#}"
        );
        let err = Config::load(
            None,
            env(&[("LOCKGATE_JOB_TIMEOUT_MINUTES", "soon")]),
            NoFlags {},
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("LOCKGATE_JOB_TIMEOUT_MINUTES"),
            "{err:#}"
        );
    }

    #[test]
    fn defaults_bind_to_loopback() {
        let cfg = Config::load(None, EnvVars::default(), NoFlags {}).unwrap();
        assert!(cfg.listen.ip().is_loopback());
        assert_eq!(cfg.listen.port(), 4680);
        assert_eq!(cfg.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(cfg.account_id, DEFAULT_ACCOUNT_ID);
        assert_eq!(cfg.region, DEFAULT_REGION);
        assert_eq!(
            cfg.job_timeout,
            Duration::from_secs(DEFAULT_JOB_TIMEOUT_MINUTES * 60)
        );
    }

    #[test]
    fn a_missing_configuration_file_stops_the_start() {
        let err = Config::load(
            Some(Path::new("/nonexistent/lockgate.toml")),
            EnvVars::default(),
            NoFlags {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot read configuration file"));
    }

    #[test]
    fn malformed_values_are_refused() {
        let flags = BTreeMap::from([("account_id", "12345")]);
        let err = Config::load(None, EnvVars::default(), flags).unwrap_err();
        assert!(err.to_string().contains("12 digits"), "{err:#}");
        let err = from_toml("region = \"US East\"").unwrap_err();
        assert!(err.to_string().contains("us-east-1"), "{err:#}");
        let err = from_toml("job_timeout_minutes = 0").unwrap_err();
        assert!(err.to_string().contains("at least one minute"), "{err:#}");
        for seconds in [2, 43_201] {
            let err = from_toml(&format!("[worker]\njob_timeout_seconds = {seconds}")).unwrap_err();
            assert!(
                format!("{err:#}").contains("job_timeout_seconds must be between 3 and 43200"),
                "{err:#}"
            );
        }
        let cfg = from_toml("[worker]\njob_timeout_seconds = 90").expect("a valid job timeout");
        assert_eq!(cfg.worker.job_timeout(), Duration::from_secs(90));
    }

    #[test]
    fn notification_topics_come_from_the_file_and_links_default_to_the_listen_address() {
        let cfg = from_toml(
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
        assert_eq!(cfg.notify.public_url, "http://127.0.0.1:9000");
        assert_eq!(cfg.notify.topics[0].subscriptions.len(), 2);
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn an_email_subscription_without_an_smtp_server_stops_the_start() {
        let err = from_toml(
            r#"
            [[topics]]
            arn = "arn:aws:sns:us-east-1:123456789012:t"
            subscriptions = [{ protocol = "email", endpoint = "a@example.com" }]
            "#,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("[smtp]"), "{err:#}");
    }

    #[test]
    fn the_console_section_names_trusted_proxies_and_the_sign_in_concurrency() {
        let cfg = from_toml(
            "[console]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nsignin_concurrency = 3",
        )
        .unwrap();
        assert_eq!(cfg.console.trusted_proxies.len(), 2);
        assert_eq!(cfg.console.signin_concurrency.get(), 3);
        let cfg = from_toml("").unwrap();
        assert!(cfg.console.trusted_proxies.is_empty());
    }

    #[test]
    fn the_http_section_is_read_and_the_metrics_token_from_the_environment_wins() {
        let (_file, path) =
            toml_file("[http]\nidle_timeout_seconds = 5\nmetrics_token = \"from-the-file\"");
        let env = env(&[("LOCKGATE_METRICS_TOKEN", "from-the-environment")]);
        let cfg = Config::load(Some(&path), env, NoFlags {}).unwrap();
        assert_eq!(cfg.http.idle_timeout_seconds, 5);
        assert_eq!(cfg.http.header_timeout_seconds, 10);
        assert_eq!(
            cfg.http.metrics_token.as_ref().map(|t| t.expose_secret()),
            Some("from-the-environment")
        );
        assert!(!format!("{cfg:?}").contains("from-the-environment"));
        let err = from_toml("[http]\nidle = 5").unwrap_err();
        assert!(format!("{err:#}").contains("idle"), "{err:#}");
        let err = from_toml("[http]\nmetrics_token = \" \"").unwrap_err();
        assert!(format!("{err:#}").contains("metrics_token"), "{err:#}");
    }

    #[test]
    fn the_wal_limit_comes_from_the_store_section_or_the_environment() {
        let cfg = Config::load(None, EnvVars::default(), NoFlags {}).unwrap();
        assert_eq!(cfg.store.wal_limit_bytes, 64 * 1024 * 1024);
        assert_eq!(cfg.store, StoreOptions::default());
        let cfg = from_toml("[store]\nwal_limit_mb = 16").unwrap();
        assert_eq!(cfg.store.wal_limit_bytes, 16 * 1024 * 1024);
        let (_file, path) = toml_file("[store]\nwal_limit_mb = 16");
        let env = env(&[("LOCKGATE_STORE__WAL_LIMIT_MB", "256")]);
        let cfg = Config::load(Some(&path), env, NoFlags {}).unwrap();
        assert_eq!(cfg.store.wal_limit_bytes, 256 * 1024 * 1024);
        let err = from_toml("[store]\nwal_limit_mb = 0").unwrap_err();
        assert!(format!("{err:#}").contains("wal_limit_mb"), "{err:#}");
        let err = from_toml("[store]\nwal_limit_mb = 9007199254740993").unwrap_err();
        assert!(format!("{err:#}").contains("too large"), "{err:#}");
        let err = from_toml("[store]\nwal_limit = 5").unwrap_err();
        assert!(format!("{err:#}").contains("wal_limit"), "{err:#}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_by_name() {
        let err = from_toml("lisen = \"x\"").unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
        let err = from_toml("[console]\ntrusted_proxy = []").unwrap_err();
        assert!(format!("{err:#}").contains("trusted_proxy"), "{err:#}");
    }

    #[test]
    fn every_setting_can_come_from_the_environment() {
        let keys = Settings::keys();
        assert!(
            keys.contains(&"listen") && keys.contains(&"http"),
            "{keys:?}"
        );
        assert_eq!(keys.len(), 20, "{keys:?}");
    }

    #[test]
    fn the_worker_artifacts_repositories_triggers_and_projects_are_read_and_checked() {
        let cfg = Config::load(None, EnvVars::default(), NoFlags {}).unwrap();
        assert!(cfg.worker.local);
        assert_eq!(
            cfg.artifacts.dir,
            PathBuf::from("./lockgate-data/artifacts")
        );
        assert_eq!(
            cfg.artifacts.retention,
            Some(Duration::from_secs(30 * 24 * 3600))
        );
        assert!(cfg.artifacts.s3.is_none());
        assert_eq!(cfg.triggers.poll_seconds, 60);
        let env = env(&[("LOCKGATE_WORKER__LOCAL", "false")]);
        assert!(!Config::load(None, env, NoFlags {}).unwrap().worker.local);

        let cfg = from_toml(
            "[worker]\nconcurrency = 8\n[artifacts]\nretention_days = 0\n\
             [artifacts.s3]\nendpoint = \"http://127.0.0.1:9000\"\naccess_key_id = \"k\"\n\
             secret_access_key = \"s\"\n\
             [[repositories]]\nname = \"app\"\nurl = \"/srv/git/app.git\"\nhook_secret = \"h\"\n\
             [triggers]\npoll_seconds = 0\n\
             [codebuild.projects.build]\nbuildspec = \"ci.yml\"\ntimeout_minutes = 5\n",
        )
        .unwrap();
        assert_eq!(cfg.worker.concurrency, 8);
        assert_eq!(cfg.artifacts.retention, None);
        let credentials = cfg
            .artifacts
            .worker_credentials()
            .expect("handed to workers");
        assert_eq!(credentials.access_key_id, "k");
        assert_eq!(cfg.repositories[0].name, "app");
        assert_eq!(cfg.triggers.poll_seconds, 0);
        assert_eq!(
            cfg.codebuild.projects["build"].buildspec.as_deref(),
            Some("ci.yml")
        );

        let err = from_toml(
            "[[repositories]]\nname = \"a\"\nurl = \"x\"\n[[repositories]]\nname = \"a\"\nurl = \"y\"\n",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("names a twice"), "{err:#}");
        let err = from_toml("[worker]\nconcurrency = 0").unwrap_err();
        assert!(format!("{err:#}").contains("concurrency"), "{err:#}");
        let err = from_toml("[[repositories]]\nname = \"a\"\nuri = \"x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("uri"), "{err:#}");
    }

    #[test]
    fn the_pipeline_cache_comes_from_the_file_or_the_environment_and_is_at_least_one() {
        let cfg = Config::load(None, EnvVars::default(), NoFlags {}).unwrap();
        assert_eq!(cfg.pipeline_cache, lockgate_engine::DEFAULT_PIPELINE_CACHE);
        assert_eq!(
            from_toml("pipeline_cache = 500").unwrap().pipeline_cache,
            500
        );
        let env = env(&[("LOCKGATE_PIPELINE_CACHE", "2000")]);
        let cfg = Config::load(None, env, NoFlags {}).unwrap();
        assert_eq!(cfg.pipeline_cache, 2000);
        let err = from_toml("pipeline_cache = 0").unwrap_err();
        assert!(format!("{err:#}").contains("pipeline_cache"), "{err:#}");
    }
}
