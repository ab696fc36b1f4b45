//! Lockgate's web console: server-rendered pages where people sign in, watch their pipelines
//! move, and approve or reject manual approvals.
//!
//! Every page reads through [`PipelineService`]'s CodePipeline operations and every change (an
//! approval, a release, a stop, a transition) calls the same operation the API calls, after the
//! same input checks, as the signed-in user; so the console can do nothing the API could not, and
//! `GetPipelineState` shows the console's approvals with the approver's ARN.
//!
//! Modules: `session` (cookies → stored sessions), `csrf`, `brake` (password guessing),
//! `client` (the client address the brake counts), `settings` (`[console]`),
//! `auth` (the signed-in extractor), `signin`, `markup` (layout and shared HTML), `pages/*`
//! (one module per page or form), `live` (server-sent events), `assets` (embedded CSS/JS).

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use lockgate_engine::users::UserDirectory;
use lockgate_engine::PipelineService;
use lockgate_store::{Store, StoreError};
use tokio::sync::watch;

mod assets;
mod auth;
pub mod brake;
mod call;
pub mod client;
pub mod csrf;
mod live;
mod markup;
mod pages;
pub mod session;
pub mod settings;
mod signin;

use brake::SignInBrake;
use client::TrustedProxy;
use session::Sessions;
pub use settings::ConsoleSettings;

/// What the console's handlers share.
pub struct Console {
    service: Arc<PipelineService>,
    users: Arc<UserDirectory>,
    sessions: Sessions,
    brake: SignInBrake,
    /// Proxies whose `X-Forwarded-For` names the client the brake counts against.
    trusted_proxies: Vec<TrustedProxy>,
    /// Permits for password checks: argon2 costs a core and about 19 MiB each, so at most this
    /// many run at once and a sign-in that finds none free is refused at once.
    signin_permits: Arc<tokio::sync::Semaphore>,
    shutdown: watch::Receiver<bool>,
    relay: Option<Arc<lockgate_notify::Relay>>,
    /// Where the logs of locally run actions are kept (the artifact store), when there is one.
    artifacts: Option<Arc<dyn lockgate_artifacts::ArtifactStore>>,
}

impl Console {
    /// A console over the engine, the users and the store (for sessions). Live-update streams end
    /// when `shutdown` turns true, so a graceful shutdown does not wait for open browser tabs.
    /// With a notification `relay`, the console lists pending and failed notifications.
    pub fn new(
        service: Arc<PipelineService>,
        users: Arc<UserDirectory>,
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
        relay: Option<Arc<lockgate_notify::Relay>>,
        settings: ConsoleSettings,
    ) -> Arc<Self> {
        Arc::new(Console {
            service,
            users,
            sessions: Sessions::new(store),
            brake: SignInBrake::default(),
            trusted_proxies: settings.trusted_proxies,
            signin_permits: Arc::new(tokio::sync::Semaphore::new(
                settings.signin_concurrency.get(),
            )),
            shutdown,
            relay,
            artifacts: None,
        })
    }

    /// The user a session belongs to, if it still exists. Users come from memory; a user added
    /// since the last refresh is read from the store, and a session whose user was removed ends.
    async fn current_user(
        &self,
        cookie: &str,
        name: &str,
    ) -> Option<lockgate_engine::users::UserRecord> {
        if let Some(u) = self.users.named(name) {
            return Some(u);
        }
        match self.users.by_name(name).await {
            Ok(Some(u)) => Some(u),
            Ok(None) => {
                tracing::info!(user = %name, "console session ended: the user was removed");
                if let Err(e) = self.sessions.end(cookie).await {
                    tracing::error!(error = %e, "could not end a console session");
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read a console session's user");
                None
            }
        }
    }

    /// Deletes expired sessions from the store; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<usize, StoreError> {
        self.sessions.purge_expired(session::now_millis()).await
    }
}

impl Console {
    /// Reads the logs of locally run actions from `artifacts` (the server's artifact store).
    pub fn with_artifacts(
        self: Arc<Self>,
        artifacts: Arc<dyn lockgate_artifacts::ArtifactStore>,
    ) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut console) => {
                console.artifacts = Some(artifacts);
                Arc::new(console)
            }
            Err(shared) => shared,
        }
    }
}

/// The console's routes, under `/console` (and `/`, which leads to the pipelines).
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/pipelines") }))
        .route(
            "/console",
            get(|| async { Redirect::to("/console/pipelines") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/pipelines") }),
        )
        .route("/console/signin", get(signin::form).post(signin::submit))
        .route("/console/signout", post(signin::sign_out))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/console/events", get(live::events))
        .route("/console/pipelines", get(pages::pipelines::list))
        .route("/console/notifications", get(pages::notifications::list))
        .route("/console/pipelines/{pipeline}", get(pages::pipeline::show))
        .route(
            "/console/pipelines/{pipeline}/release",
            post(pages::changes::release),
        )
        .route(
            "/console/pipelines/{pipeline}/stop",
            post(pages::changes::stop),
        )
        .route(
            "/console/pipelines/{pipeline}/stages/{stage}/transition",
            post(pages::changes::transition),
        )
        .route(
            "/console/pipelines/{pipeline}/stages/{stage}/actions/{action}/review",
            get(pages::pipeline::review).post(pages::review::decide),
        )
        .route(
            "/console/pipelines/{pipeline}/executions",
            get(pages::history::executions),
        )
        .route(
            "/console/pipelines/{pipeline}/executions/{execution}",
            get(pages::history::execution),
        )
        .route(
            "/console/pipelines/{pipeline}/executions/{execution}/actions/{action}/log",
            get(pages::logs::show),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Headers every console response carries: no inline script may run (a second line of defence
/// behind escaping), no framing (clickjacking), no MIME sniffing, no referrer to other sites.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
