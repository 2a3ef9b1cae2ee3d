//! `connect standalone`: load configs, start the REST server and the connectors, run until a signal.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{read_config_file, WorkerConfig};
use crate::control::Herder;
use crate::kafka::health::HealthCell;
use crate::registry::Registry;
use crate::rest::tls::{HttpsConfig, ListenerConfigError, ListenerUrl};
use crate::runtime::WorkerContext;
use crate::store::offsets::OffsetStore;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    ConfigFile(#[from] crate::config::ConfigFileError),
    #[error("invalid worker config: {0}")]
    WorkerConfig(String),
    #[error(transparent)]
    Offsets(#[from] crate::store::offsets::OffsetStoreError),
    #[error(transparent)]
    Listener(#[from] ListenerConfigError),
    #[error("cannot install the stop-signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("connector state: {0}")]
    State(String),
    #[error("connector from {0}: {1}")]
    Connector(PathBuf, crate::control::HerderError),
}

/// The worker key of the separate Prometheus listener.
pub const METRICS_LISTENER: &str = "metrics.listener";

/// Run a standalone worker until SIGINT or SIGTERM; then stop every task, commit, and return.
pub async fn run(worker_file: PathBuf, connector_files: Vec<PathBuf>) -> Result<(), StartupError> {
    let worker = WorkerConfig::from_config(read_config_file(&worker_file)?).map_err(StartupError::WorkerConfig)?;
    crate::kafka::check_worker_security(&worker).map_err(StartupError::WorkerConfig)?;
    let stop_requested = crate::shutdown::install(worker.shutdown_timeout).map_err(StartupError::Signals)?;
    let offsets = OffsetStore::open(&worker.offsets_file)?;
    let listeners = Listeners::bind(&worker).await?;
    let worker_id = listeners.worker_id.clone();
    let health = HealthCell::default();
    let stop_health = CancellationToken::new();
    health.watch_broker(&worker, Duration::from_secs(5), stop_health.clone());
    let ctx = Arc::new(WorkerContext {
        worker,
        registry: Registry::default(),
        offsets,
        worker_id,
        health: health.clone(),
        startup: Default::default(),
    });
    let herder = Herder::new(ctx);

    let auth = crate::rest::auth::RestAuth::from_worker(&herder.context().worker.raw).map_err(StartupError::WorkerConfig)?;
    let router = crate::rest::router(herder.clone(), auth);
    let servers = listeners.serve(router, &herder);

    let restored = herder.restore().await.map_err(|e| StartupError::State(e.to_string()))?;
    if restored > 0 {
        tracing::info!(restored, "restored connectors from the state directory");
    }
    // Config files on the command line are applied at start: they create or replace.
    for file in connector_files {
        let config = read_config_file(&file)?;
        let name = config.get("name").cloned().unwrap_or_default();
        let (_, info) = herder.put_config(&name, config).await.map_err(|e| StartupError::Connector(file.clone(), e))?;
        tracing::info!(connector = %info.name, "created connector from {}", file.display());
    }

    health.started();
    let _ = stop_requested.await;
    stop_health.cancel();
    tracing::info!("shutting down: stopping tasks and committing offsets");
    herder.shutdown().await;
    for server in servers {
        server.abort();
    }
    Ok(())
}

/// The REST listeners, bound before any Kafka connection so /health answers `starting` from the first
/// moment; the first listener's bound address is the worker id.
pub(crate) struct Listeners {
    bound: Vec<(ListenerUrl, String, tokio::net::TcpListener)>,
    https: Option<HttpsConfig>,
    /// `metrics.listener`: GET /metrics alone on an address of its own, for Prometheus to scrape.
    metrics: Option<tokio::net::TcpListener>,
    pub worker_id: String,
}

impl Listeners {
    pub async fn bind(worker: &WorkerConfig) -> Result<Self, StartupError> {
        let listeners = worker.listeners.iter().map(|url| ListenerUrl::parse(url)).collect::<Result<Vec<_>, _>>()?;
        let https = if listeners.iter().any(|l| l.https) { Some(HttpsConfig::from_worker(&worker.raw)?) } else { None };
        let mut bound = Vec::with_capacity(listeners.len());
        for url in &listeners {
            let listener = tokio::net::TcpListener::bind(&url.address).await.map_err(|e| StartupError::Listen(url.address.clone(), e))?;
            let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| url.address.clone());
            bound.push((url.clone(), local, listener));
        }
        let worker_id =
            bound.first().map(|(_, local, _)| local.clone()).ok_or_else(|| StartupError::WorkerConfig("listeners: no listener".into()))?;
        let metrics = match worker.raw.get(METRICS_LISTENER).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => None,
            Some(value) => {
                let url = ListenerUrl::parse(value)?;
                if url.https {
                    return Err(StartupError::WorkerConfig(format!("{METRICS_LISTENER}: {value}: only http:// is served there")));
                }
                Some(tokio::net::TcpListener::bind(&url.address).await.map_err(|e| StartupError::Listen(url.address.clone(), e))?)
            }
        };
        Ok(Listeners { bound, https, metrics, worker_id })
    }

    /// Whether the first listener is https.
    pub fn first_is_https(&self) -> bool {
        self.bound.first().is_some_and(|(url, _, _)| url.https)
    }

    /// Serve `router` on every listener (and /metrics on the metrics listener) until the tasks are aborted.
    pub fn serve(self, router: axum::Router, herder: &Arc<Herder>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut servers = Vec::with_capacity(self.bound.len() + 1);
        for (url, local, listener) in self.bound {
            let tls = if url.https { self.https.as_ref().map(|h| h.server.clone()) } else { None };
            let client_auth = self.https.as_ref().filter(|_| url.https).map(|h| format!("{:?}", h.client_auth));
            let listener_url = format!("{}://{local}", url.scheme());
            tracing::info!(listener = %listener_url, client_auth, "REST server listening");
            let router = router.clone();
            servers.push(tokio::spawn(async move {
                if let Err(e) = crate::rest::tls::serve(listener, router, tls).await {
                    tracing::error!(error = %e, listener = %listener_url, "REST server stopped");
                }
            }));
        }
        if let Some(listener) = self.metrics {
            let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(listener = %format!("http://{local}/metrics"), "metrics server listening");
            let app = axum::Router::new().route("/metrics", axum::routing::get(crate::rest::prometheus::get)).with_state(herder.clone());
            servers.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "metrics server stopped");
                }
            }));
        }
        servers
    }
}
