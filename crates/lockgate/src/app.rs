//! The composition root: builds the store, engine, user directory and HTTP router from a
//! [`Config`], and runs them until shutdown. Tests and `lockgate serve` share this code path.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use lockgate_api::{ApiConfig, Credential, CredentialsProvider};
use lockgate_engine::users::UserDirectory;
use lockgate_engine::{Clock, EngineConfig, PipelineService, SystemClock};
use lockgate_notify::Relay;
use lockgate_store::Store;
use lockgate_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::worker::local::LocalChannel;
use lockgate_worker::Worker;

/// How often the server re-reads its users, so `lockgate user add|remove` take effect while it
/// runs (an unknown access key also triggers a re-read, at most once a second).
const USER_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Picks rustls's crypto provider (aws-lc-rs) for outgoing TLS (SMTP, webhooks, SNS). When more
/// than one provider is compiled in, rustls cannot pick one by itself and would panic on the
/// first TLS connection. Calling it again is harmless.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// How often expired console sessions are deleted from the store.
const SESSION_SWEEP: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A built, not yet running, Lockgate server.
pub struct App {
    listener: TcpListener,
    service: Arc<PipelineService>,
    users: Arc<UserDirectory>,
    config: Config,
    store: SqliteStore,
    relay: Arc<Relay>,
    artifacts: Arc<dyn lockgate_artifacts::ArtifactStore>,
}

/// Looks users up for SigV4 verification.
struct DirectoryCredentials(Arc<UserDirectory>);

#[async_trait::async_trait]
impl CredentialsProvider for DirectoryCredentials {
    async fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        let user = self.0.by_access_key(access_key_id).await?;
        Some(Credential::new(
            user.secret_access_key.clone(),
            user.caller(),
        ))
    }
}

impl App {
    /// Opens the store, loads every pipeline (firing nothing yet) and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`App::build`], with the engine reading time from `clock` (tests move it by hand).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        install_crypto_provider();
        let store = SqliteStore::open_with(&config.data_dir, config.store.clone())
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        let engine = EngineConfig {
            account_id: config.account_id.clone(),
            region: config.region.clone(),
            job_timeout_millis: i64::try_from(config.job_timeout.as_millis()).unwrap_or(i64::MAX),
            builtin_job_timeout_millis: i64::try_from(config.worker.job_timeout().as_millis())
                .unwrap_or(i64::MAX),
            notification_topics: config.notify.topic_arns(),
            pipeline_cache: config.pipeline_cache,
            console_url: config.notify.public_url.clone(),
        };
        let service = PipelineService::load(shared.clone(), clock.clone(), engine)
            .await
            .context("cannot load pipelines from the store")?;
        let relay = Arc::new(
            Relay::new(
                shared.clone(),
                config.notify.clone(),
                service.outbox_written(),
            )
            .context("cannot set up notifications")?
            .with_clock(clock.clone()),
        );
        let users = Arc::new(
            UserDirectory::load(shared)
                .await
                .context("cannot load users from the store")?,
        );
        let artifacts = config.artifacts.open()?;
        if let Some(credentials) = config.artifacts.worker_credentials() {
            service.hand_out_artifact_credentials(credentials);
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(App {
            listener,
            service,
            users,
            config,
            store,
            relay,
            artifacts,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The engine facade, for in-process callers.
    pub fn service(&self) -> Arc<PipelineService> {
        self.service.clone()
    }

    /// The notification relay, for in-process callers (tests drain it with `run_once`).
    pub fn relay(&self) -> Arc<Relay> {
        self.relay.clone()
    }

    /// Serves requests and fires deadlines until `shutdown` resolves, then drains in-flight
    /// requests and closes the store.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let scheduler = {
            let service = self.service.clone();
            let rx = stop_rx.clone();
            // Supervised: should the scheduler task itself ever panic, that is logged and it is
            // started again, so deadlines never silently stop firing.
            tokio::spawn(async move {
                loop {
                    let mut rx = rx.clone();
                    let run = tokio::spawn(service.clone().run_scheduler(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    }));
                    match run.await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "the deadline scheduler failed; restarting it");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
            })
        };
        let relay = {
            let mut rx = stop_rx.clone();
            tokio::spawn(self.relay.clone().run(async move {
                let _ = rx.wait_for(|s| *s).await;
            }))
        };
        let worker = self.config.worker.local.then(|| {
            let worker = Worker::new(
                Arc::new(LocalChannel::new(self.service.clone())),
                crate::worker::executors(&self.config),
                self.artifacts.clone(),
                self.config.worker.settings(&self.config.data_dir),
            );
            tokio::spawn(worker.run(stop_rx.clone()))
        });
        let watcher = Arc::new(crate::triggers::SourceWatcher::new(
            self.service.clone(),
            &self.config,
        ));
        let watching = tokio::spawn(watcher.clone().run(stop_rx.clone()));
        let retention = self.config.artifacts.retention.map(|keep| {
            let watcher = watcher.clone();
            let store = self.artifacts.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(crate::artifacts::SWEEP_INTERVAL);
                loop {
                    tokio::select! {
                        _ = rx.changed() => break,
                        _ = tick.tick() => {
                            let now = lockgate_model::Clock::now_system(&lockgate_model::SystemClock);
                            let cutoff = now.checked_sub(keep).unwrap_or(std::time::UNIX_EPOCH);
                            let buckets = watcher.artifact_buckets().await;
                            let deleted = crate::artifacts::sweep(store.as_ref(), &buckets, cutoff).await;
                            if deleted > 0 {
                                tracing::info!(deleted, "artifact retention deleted old artifacts");
                            }
                        }
                    }
                }
            })
        });
        let refresher = {
            let users = self.users.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(USER_REFRESH);
                loop {
                    tokio::select! {
                        _ = rx.changed() => break,
                        _ = tick.tick() => {
                            if let Err(e) = users.reload().await {
                                tracing::error!(error = %e, "could not reload users");
                            }
                        }
                    }
                }
            })
        };
        let api = lockgate_api::router(
            self.service.clone(),
            Arc::new(DirectoryCredentials(self.users.clone())),
            ApiConfig::new(self.config.region.clone()),
        );
        let console = lockgate_console::Console::new(
            self.service.clone(),
            self.users.clone(),
            Arc::new(self.store.clone()),
            stop_rx.clone(),
            Some(self.relay.clone()),
            self.config.console.clone(),
        )
        .with_artifacts(self.artifacts.clone());
        let sweeper = {
            let console = console.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SESSION_SWEEP);
                loop {
                    tokio::select! {
                        _ = rx.changed() => break,
                        _ = tick.tick() => {
                            if let Err(e) = console.purge_expired_sessions().await {
                                tracing::error!(error = %e, "could not purge expired console sessions");
                            }
                        }
                    }
                }
            })
        };
        let metrics = Arc::new(Metrics {
            relay: self.relay.clone(),
            store: self.store.clone(),
            token: self.config.http.metrics_token.clone(),
        });
        let app = axum::Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(crate::metrics::metrics).with_state(metrics))
            .merge(api)
            .merge(crate::triggers::hook::router(watcher))
            .merge(lockgate_console::router(console))
            // Anything else gets an AWS-style error an SDK can report.
            .fallback(lockgate_api::unknown_route)
            .method_not_allowed_fallback(lockgate_api::method_not_allowed);
        let limits = self.config.http.limits();
        tracing::info!(
            listen = %self.listener.local_addr()?,
            data_dir = %self.config.data_dir.display(),
            region = %self.config.region,
            account_id = %self.config.account_id,
            console = %format!("http://{}/console/pipelines", self.listener.local_addr()?),
            max_connections = limits.max_connections,
            "lockgate is ready"
        );
        if self.users.is_empty() {
            tracing::warn!(
                "no users yet: every request will be refused until one is added with `lockgate user add NAME`"
            );
        }
        crate::server::serve(self.listener, app, limits, async move {
            shutdown.await;
            // Ends the console's event streams, so that draining does not wait for them.
            let _ = stop_tx.send(true);
        })
        .await;
        if let Err(e) = scheduler.await {
            tracing::error!(error = %e, "the deadline scheduler's supervisor failed");
        }
        let _ = refresher.await;
        let _ = sweeper.await;
        let _ = relay.await;
        let _ = watching.await;
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        if let Some(worker) = worker {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "the job worker failed");
            }
        }
        self.store.close().context("closing the store")?;
        tracing::info!("lockgate stopped");
        Ok(())
    }
}
