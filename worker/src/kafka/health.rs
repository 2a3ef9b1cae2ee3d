//! What `GET /health` reports: starting until the configured connectors are created, then healthy or
//! unhealthy by whether the Kafka cluster answers.

use rdkafka::producer::{BaseProducer, Producer};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::kafka::client_config;
use connect_core::ConnectError;

#[derive(Debug, Clone, PartialEq)]
pub enum WorkerHealth {
    Starting,
    Healthy,
    Unhealthy(String),
}

/// The worker's health, and the Kafka cluster's id once the cluster answered (`GET /` shows it, as UIs
/// such as Redpanda Console and kafbat kafka-ui display it). Distributed mode adds its group connection's
/// state: a worker that cannot join its group (its login refused) is unhealthy though its clients get in.
#[derive(Debug, Clone)]
pub struct HealthCell(Arc<Mutex<(bool, Option<String>)>>, Arc<OnceLock<String>>, Arc<Mutex<Option<String>>>);

impl Default for HealthCell {
    fn default() -> Self {
        HealthCell(Arc::new(Mutex::new((false, None))), Arc::new(OnceLock::new()), Arc::new(Mutex::new(None)))
    }
}

impl HealthCell {
    pub fn get(&self) -> WorkerHealth {
        let group = self.2.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match (&g.0, &g.1, group) {
            (false, _, _) => WorkerHealth::Starting,
            (true, Some(problem), _) => WorkerHealth::Unhealthy(problem.clone()),
            (true, None, Some(problem)) => WorkerHealth::Unhealthy(problem),
            (true, None, None) => WorkerHealth::Healthy,
        }
    }
    /// Distributed mode: why the worker cannot join its group (`None`: it can, or may yet).
    pub fn set_group_problem(&self, problem: Option<String>) {
        *self.2.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    }
    /// The Kafka cluster's id, once the cluster answered.
    pub fn cluster_id(&self) -> Option<&str> {
        self.1.get().map(String::as_str)
    }
    pub fn started(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 = true;
    }
    fn set_problem(&self, problem: Option<String>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1 = problem;
    }

    /// Ask the cluster for metadata every `interval` (from a blocking thread: librdkafka's call blocks)
    /// and record whether it answered.
    pub fn watch_broker(&self, worker: &WorkerConfig, interval: Duration, cancel: CancellationToken) {
        let context = LoginErrors::default();
        let client: BaseProducer<LoginErrors> = match client_config(worker, "admin", None, &[]).and_then(|c| {
            c.create_with_context(context.clone()).map_err(|e| ConnectError::fatal(format!("cannot create a Kafka client: {e}")))
        }) {
            Ok(c) => c,
            Err(e) => {
                self.set_problem(Some(e.to_string()));
                return;
            }
        };
        let cell = self.clone();
        let servers = worker.bootstrap_servers.clone();
        tokio::spawn(async move {
            let client = Arc::new(client);
            loop {
                let c = client.clone();
                let known = cell.1.get().is_some();
                let answer = tokio::task::spawn_blocking(move || {
                    let metadata = c.client().fetch_metadata(None, Duration::from_secs(5));
                    // Serves librdkafka's error callbacks (a refused login, a failed handshake) into `context`.
                    c.poll(Duration::ZERO);
                    metadata?;
                    Ok::<_, rdkafka::error::KafkaError>(if known { None } else { c.client().fetch_cluster_id(Duration::from_secs(5)) })
                })
                .await;
                if let Ok(Ok(Some(id))) = &answer {
                    let _ = cell.1.set(id.clone());
                }
                let answer = answer.map(|r| r.map(|_| ()));
                let problem = match answer {
                    Ok(Ok(())) => {
                        context.take(); // a failure since recovered is no reason now
                        None
                    }
                    // librdkafka only logs why a login or handshake failed; the metadata call just times out. The
                    // reason stays until the cluster answers: librdkafka reports some failures only once (an
                    // OAUTHBEARER token it could not get, until the reason changes).
                    Ok(Err(e)) => Some(match context.last() {
                        Some(why) => format!("Kafka cluster at {servers} refused this worker: {why}"),
                        None => format!("Kafka cluster at {servers} is not reachable: {e}"),
                    }),
                    Err(e) => Some(format!("health check failed: {e}")),
                };
                cell.set_problem(problem);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }
}

/// The last authentication or TLS failure librdkafka reported to the health client, so `/health` says
/// "authentication failed" or "certificate verify failed" instead of a timeout.
#[derive(Clone, Default)]
struct LoginErrors(Arc<Mutex<Option<String>>>);

impl LoginErrors {
    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn last(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl rdkafka::ClientContext for LoginErrors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode::{Authentication, SaslAuthenticationFailed, SSL};
        let code = error.rdkafka_error_code();
        let lower = reason.to_ascii_lowercase();
        if matches!(code, Some(Authentication | SaslAuthenticationFailed | SSL)) || lower.contains("sasl") || lower.contains("ssl") {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        }
        tracing::error!(target: "librdkafka", error = %error, reason, "Kafka client error");
    }

    /// As rdkafka's default, and a failed OAUTHBEARER token request kept as the reason: librdkafka only logs it
    /// (facility `OIDC`, with the endpoint and its answer, never the secret), no error callback follows.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel::{Alert, Critical, Debug, Emerg, Error, Info, Notice, Warning};
        match level {
            Emerg | Alert | Critical | Error => {
                if fac == "OIDC" {
                    *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("OAUTHBEARER token: {log_message}"));
                }
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {log_message}")
            }
            Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
            Notice | Info => tracing::info!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
            Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
        }
    }
}

impl rdkafka::producer::ProducerContext for LoginErrors {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}
