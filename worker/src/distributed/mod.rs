//! `connect distributed`: workers that form a group on Kafka's group coordinator (protocol type
//! `connect`) and keep connector configs, statuses and source offsets in three compacted topics with
//! Kafka Connect's record formats, so one cluster's REST API answers from every worker.
//!
//! Shape: [`membership`] speaks the group requests ([`wire`] frames them), [`protocol`] encodes Kafka
//! Connect's metadata and assignments, the leader's [`assignor`] decides who runs what, [`cluster`] runs the
//! member loop and applies assignments to this worker's herder, [`config_log`], [`status_log`] and the
//! offsets topic (through `store::offsets`) follow the topics ([`kafka_log`]), [`report`] writes this
//! worker's statuses and task configs, and [`forward`] sends REST requests to the worker that must answer.
//!
//! Depends on `control` (the herder runs the local connectors), `rest`, `store`, `kafka`; nothing depends
//! on it but the CLI.

pub mod assignor;
pub mod cluster;
pub mod config_log;
pub mod forward;
pub mod kafka_log;
pub mod membership;
pub mod oauth;
pub mod protocol;
pub mod report;
pub mod sasl;
pub mod status_log;
pub mod wire;

use connect_core::Config;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::config::{read_config_file, WorkerConfig};
use crate::control::Herder;
use crate::kafka::health::HealthCell;
use crate::registry::Registry;
use crate::runtime::WorkerContext;
use crate::standalone::{Listeners, StartupError};
use crate::store::offsets::{OffsetRecord, OffsetSink, OffsetStore};
use kafka_log::{KafkaLog, TopicSpec};

/// Kafka Connect's distributed worker keys.
#[derive(Debug, Clone)]
pub struct DistributedConfig {
    pub group_id: String,
    pub config_topic: TopicSpec,
    pub offsets_topic: TopicSpec,
    pub status_topic: TopicSpec,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    /// `scheduled.rebalance.max.delay.ms`: how long a departed worker's connectors wait for it to come
    /// back. connect-rs defaults to 0 (Kafka Connect: 5 minutes): they move as soon as the group notices.
    pub max_delay: Duration,
    pub worker_sync_timeout: Duration,
    pub advertised_host: Option<String>,
    pub advertised_port: Option<u16>,
}

/// connect-rs's default for `scheduled.rebalance.max.delay.ms`.
pub const DEFAULT_MAX_DELAY_MS: u64 = 0;

impl DistributedConfig {
    pub fn from_worker(raw: &Config) -> Result<Self, String> {
        let required = |key: &str| -> Result<String, String> {
            raw.get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("Missing required configuration \"{key}\" which has no default value."))
        };
        let number = |key: &str, default: i64| -> Result<i64, String> {
            match raw.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(default),
                Some(v) => v.parse::<i64>().map_err(|_| format!("Invalid value {v} for configuration {key}: Not a number")),
            }
        };
        let ms = |key: &str, default: i64| -> Result<Duration, String> {
            let v = number(key, default)?;
            u64::try_from(v)
                .map(Duration::from_millis)
                .map_err(|_| format!("Invalid value {v} for configuration {key}: must be at least 0"))
        };
        // `offset.storage.topic`, `offset.storage.partitions`, `offset.storage.replication.factor`, ...
        let topic = |prefix: &str, partitions: i64| -> Result<TopicSpec, String> {
            let replication = number(&format!("{prefix}.replication.factor"), 3)?;
            let partitions = number(&format!("{prefix}.partitions"), partitions)?;
            Ok(TopicSpec {
                name: required(&format!("{prefix}.topic"))?,
                partitions: partitions as i32,
                replication_factor: replication as i32,
            })
        };
        let config_topic = topic("config.storage", 1)?;
        if config_topic.partitions != 1 {
            return Err("config.storage.topic must have exactly one partition".into());
        }
        let advertised_port = match raw.get("rest.advertised.port").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(v.parse::<u16>().map_err(|_| format!("Invalid value {v} for configuration rest.advertised.port"))?),
        };
        let settings = DistributedConfig {
            group_id: required("group.id")?,
            config_topic,
            offsets_topic: topic("offset.storage", 25)?,
            status_topic: topic("status.storage", 5)?,
            session_timeout: ms("session.timeout.ms", 10_000)?,
            heartbeat_interval: ms("heartbeat.interval.ms", 3_000)?,
            rebalance_timeout: ms("rebalance.timeout.ms", 60_000)?,
            max_delay: ms("scheduled.rebalance.max.delay.ms", DEFAULT_MAX_DELAY_MS as i64)?,
            worker_sync_timeout: ms("worker.sync.timeout.ms", 3_000)?,
            advertised_host: raw.get("rest.advertised.host.name").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()),
            advertised_port,
        };
        if settings.heartbeat_interval >= settings.session_timeout {
            return Err("heartbeat.interval.ms must be lower than session.timeout.ms".into());
        }
        if raw.get("rest.advertised.listener").is_some_and(|l| l.trim().eq_ignore_ascii_case("https")) {
            return Err("rest.advertised.listener=https: forwarding between workers is over http only so far".into());
        }
        Ok(settings)
    }
}

/// Offsets go to the offsets topic; the flush blocks (on a blocking thread) until Kafka acknowledged them.
struct TopicOffsets {
    log: OnceLock<Arc<KafkaLog>>,
    runtime: tokio::runtime::Handle,
}

impl OffsetSink for TopicOffsets {
    fn write(&self, records: Vec<OffsetRecord>) -> Result<Vec<(i32, i64)>, String> {
        let log = self.log.get().ok_or("the offsets topic is not open yet")?.clone();
        self.runtime.block_on(async move {
            let sends = records.iter().map(|(key, value)| log.send_bytes(key, value.as_deref()));
            futures::future::join_all(sends).await.into_iter().map(|result| result.map_err(|e| e.to_string())).collect()
        })
    }
}

/// Run a distributed worker until SIGINT or SIGTERM; then stop every task, leave the group, and return.
pub async fn run(worker_file: PathBuf) -> Result<(), StartupError> {
    let worker = WorkerConfig::from_config(read_config_file(&worker_file)?).map_err(StartupError::WorkerConfig)?;
    let settings = DistributedConfig::from_worker(&worker.raw).map_err(StartupError::WorkerConfig)?;
    crate::kafka::check_worker_security(&worker).map_err(StartupError::WorkerConfig)?;
    // The group connection's TLS and SASL, checked now so a setting it cannot use stops the worker here.
    let group_security = wire::Security::from_worker(&worker).map_err(StartupError::WorkerConfig)?;
    let stop_requested = crate::shutdown::install(worker.shutdown_timeout).map_err(StartupError::Signals)?;
    let listeners = Listeners::bind(&worker).await?;
    if listeners.first_is_https() {
        return Err(StartupError::WorkerConfig(
            "distributed mode forwards between workers over http only so far: list an http listener first".into(),
        ));
    }
    let (bound_host, bound_port) = listeners.worker_id.rsplit_once(':').map(|(h, p)| (h.to_string(), p.to_string())).unwrap_or_default();
    if settings.advertised_host.is_none() && matches!(bound_host.as_str(), "0.0.0.0" | "[::]" | "::") {
        // Every worker would call itself 0.0.0.0: forwarding and "who runs what" need an address others reach.
        return Err(StartupError::WorkerConfig(format!(
            "listeners binds {bound_host}: set rest.advertised.host.name to the address other workers reach this one at"
        )));
    }
    let worker_id = format!(
        "{}:{}",
        settings.advertised_host.clone().unwrap_or(bound_host),
        settings.advertised_port.map(|p| p.to_string()).unwrap_or(bound_port)
    );
    let url = format!("http://{worker_id}");
    let client_id = format!("connect-rs-{}", worker_id.replace([':', '.'], "-"));

    let health = HealthCell::default();
    let stop_health = CancellationToken::new();
    health.watch_broker(&worker, Duration::from_secs(5), stop_health.clone());

    let topic_offsets = Arc::new(TopicOffsets { log: OnceLock::new(), runtime: tokio::runtime::Handle::current() });
    let offsets = OffsetStore::on_topic(topic_offsets.clone());
    let startup = |e: kafka_log::LogError| StartupError::State(e.to_string());
    let reader = offsets.clone();
    let offsets_log = KafkaLog::start(
        &worker,
        &settings.offsets_topic,
        &client_id,
        Box::new(move |key, value, partition, offset| reader.apply_record(key, value, (partition, offset))),
    )
    .await
    .map_err(startup)?;
    let _ = topic_offsets.log.set(offsets_log.clone());
    let config = config_log::ConfigLog::start(&worker, &settings.config_topic, &client_id).await.map_err(startup)?;
    let status = status_log::StatusLog::start(&worker, &settings.status_topic, &client_id).await.map_err(startup)?;

    let ctx = Arc::new(WorkerContext {
        worker,
        registry: Registry::default(),
        offsets,
        worker_id: worker_id.clone(),
        health: health.clone(),
        startup: Default::default(),
    });
    let herder = Herder::new_distributed(ctx);
    let cluster = Arc::new(cluster::ClusterState { config, status, offsets: offsets_log, role: Default::default(), worker_id, url });
    herder.join(cluster.clone());

    let auth = crate::rest::auth::RestAuth::from_worker(&herder.context().worker.raw).map_err(StartupError::WorkerConfig)?;
    let forwarder = forward::Forwarder::new(cluster.clone());
    let router = crate::rest::router_with(herder.clone(), auth, |routes| {
        routes.layer(axum::middleware::from_fn_with_state(forwarder, forward::forward))
    });
    let servers = listeners.serve(router, &herder);

    let member = membership::Member::new(membership::GroupSettings {
        bootstrap: connect_core::config::parse_list(&herder.context().worker.bootstrap_servers),
        group_id: settings.group_id.clone(),
        client_id: client_id.clone(),
        session_timeout: settings.session_timeout,
        rebalance_timeout: settings.rebalance_timeout,
        heartbeat_interval: settings.heartbeat_interval,
        request_timeout: Duration::from_secs(30),
        security: group_security,
    });
    let stop = CancellationToken::new();
    let loop_settings = cluster::LoopSettings {
        session_timeout: settings.session_timeout,
        heartbeat_interval: settings.heartbeat_interval,
        max_delay: settings.max_delay,
        sync_timeout: settings.worker_sync_timeout,
    };
    let member_loop = tokio::spawn(cluster::run_member(cluster.clone(), herder.clone(), member, loop_settings, stop.clone()));
    let reporter = tokio::spawn(report::report(cluster.clone(), herder.clone(), stop.clone()));
    tracing::info!(group = %settings.group_id, worker = %cluster.worker_id, "distributed worker started");

    health.started();
    let _ = stop_requested.await;
    stop_health.cancel();
    tracing::info!("shutting down: stopping tasks, committing offsets, leaving the group");
    stop.cancel();
    let _ = member_loop.await;
    let _ = reporter.await;
    for server in servers {
        server.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const BASE: &[(&str, &str)] =
        &[("group.id", "g"), ("config.storage.topic", "c"), ("offset.storage.topic", "o"), ("status.storage.topic", "s")];

    #[test]
    fn kafka_connects_keys_and_defaults() {
        let c = DistributedConfig::from_worker(&raw(BASE)).unwrap();
        assert_eq!((c.offsets_topic.partitions, c.status_topic.partitions, c.config_topic.partitions), (25, 5, 1));
        assert_eq!(c.offsets_topic.replication_factor, 3);
        assert_eq!(c.session_timeout, Duration::from_secs(10));
        assert_eq!(c.max_delay, Duration::ZERO);
        let mut keys = BASE.to_vec();
        keys.extend([
            ("offset.storage.partitions", "3"),
            ("status.storage.replication.factor", "1"),
            ("scheduled.rebalance.max.delay.ms", "5000"),
        ]);
        let c = DistributedConfig::from_worker(&raw(&keys)).unwrap();
        assert_eq!(c.offsets_topic.partitions, 3);
        assert_eq!(c.status_topic.replication_factor, 1);
        assert_eq!(c.max_delay, Duration::from_secs(5));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let err = DistributedConfig::from_worker(&raw(&BASE[..3])).unwrap_err();
        assert!(err.contains("status.storage.topic"), "{err}");
        let mut keys = BASE.to_vec();
        keys.push(("config.storage.partitions", "3"));
        assert!(DistributedConfig::from_worker(&raw(&keys)).is_err());
    }
}
