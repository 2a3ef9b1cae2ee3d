//! Kafka clients for the runtime: producer, consumer and admin settings from the worker config, and
//! topic creation for sources (what Kafka Connect's `topic.creation.*` does).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::HashSet;
use std::time::Duration;

pub mod health;
pub mod security;

use crate::config::WorkerConfig;
use connect_core::{Config, ConnectError};

/// Client settings: `bootstrap.servers`, then the worker's `<prefix>.*` keys, then the connector's
/// `<prefix>.override.*` keys. Security keys (`security.protocol`, `sasl.*`, `ssl.*`) start from the worker's
/// top level, as in Kafka Connect, are overridden the same way, and reach librdkafka translated from the
/// Java client's names ([`security::translate`]).
pub fn client_config(
    worker: &WorkerConfig,
    prefix: &str,
    connector: Option<&Config>,
    defaults: &[(&str, &str)],
) -> Result<ClientConfig, ConnectError> {
    let (mut cfg, security) = split_client_keys(worker, prefix, connector, defaults);
    let translated = security::translate(&security).map_err(|e| {
        let whose = if connector.is_some() { "the worker's or the connector's" } else { "the worker's" };
        ConnectError::fatal(format!("Kafka {prefix} security settings ({whose}): {e}"))
    })?;
    for (k, v) in translated.set {
        cfg.set(k, v);
    }
    Ok(cfg)
}

/// The client's plain librdkafka settings, and its security keys as Kafka's Java client names them.
fn split_client_keys(worker: &WorkerConfig, prefix: &str, connector: Option<&Config>, defaults: &[(&str, &str)]) -> (ClientConfig, Config) {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &worker.bootstrap_servers);
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    let mut security: Config =
        worker.raw.iter().filter(|(k, _)| security::is_security_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut put = |k: String, v: String| {
        if security::is_security_key(&k) {
            security.insert(k, v);
        } else {
            cfg.set(k, v);
        }
    };
    for (k, v) in worker.client_overrides(prefix) {
        if !k.starts_with("override.") {
            put(k, v);
        }
    }
    if let Some(conn) = connector {
        for (k, v) in connect_core::config::with_prefix(conn, &format!("{prefix}.override.")) {
            put(k, v);
        }
    }
    (cfg, security)
}

/// Check the worker's Kafka security settings for each kind of client at start, so a bad store or JAAS line
/// stops the worker with the key named instead of failing every task later, and say once which Java-only
/// keys are ignored.
pub fn check_worker_security(worker: &WorkerConfig) -> Result<(), String> {
    let mut reported = std::collections::BTreeSet::new();
    for prefix in ["producer", "consumer", "admin"] {
        let (_, security) = split_client_keys(worker, prefix, None, &[]);
        let translated = security::translate(&security).map_err(|e| format!("Kafka {prefix} security settings: {e}"))?;
        for ignored in translated.ignored {
            if reported.insert(ignored.key.clone()) {
                tracing::warn!(key = %ignored.key, reason = ignored.reason, "Kafka client setting ignored");
            }
        }
    }
    Ok(())
}

/// Producer defaults of a Kafka Connect source task: no loss and no reordering on retry.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    ("queue.buffering.max.messages", "200000"),
    ("batch.num.messages", "10000"),
];

/// Consumer defaults of a Kafka Connect sink task: manual commits, start from the beginning.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "false"),
    // librdkafka looks again for subscribed topics that do not exist yet only at this interval
    // (default 5 min): a sink started before its source created the topic would sit idle that long.
    ("topic.metadata.refresh.interval.ms", "10000"),
    // Prefetch at most 16 MiB per consumer instead of librdkafka's 64 MiB: memory is a feature here.
    ("queued.max.messages.kbytes", "16384"),
    // When the prefetch queue is full, librdkafka postpones the next fetch by this much (default 1000 ms). A
    // sink drains 16 MiB far faster than that and then sat idle: 1M records took 3.9 s instead of 0.85 s.
    ("fetch.queue.backoff.ms", "20"),
];

/// Map a Kafka client error to the runtime's error kinds.
pub fn kafka_error(context: &str, err: KafkaError) -> ConnectError {
    let retriable = match &err {
        KafkaError::MessageProduction(code)
        | KafkaError::MessageConsumption(code)
        | KafkaError::OffsetFetch(code)
        | KafkaError::ConsumerCommit(code) => {
            matches!(
                code,
                RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::QueueFull
                    | RDKafkaErrorCode::NotCoordinator
                    | RDKafkaErrorCode::CoordinatorNotAvailable
                    | RDKafkaErrorCode::NotLeaderForPartition
                    | RDKafkaErrorCode::LeaderNotAvailable
                    | RDKafkaErrorCode::RebalanceInProgress
                    | RDKafkaErrorCode::NetworkException
                    // A subscribed topic that does not exist yet (its source has not created it).
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
            )
        }
        _ => false,
    };
    let e = if retriable { ConnectError::retriable(context.to_string()) } else { ConnectError::fatal(context.to_string()) };
    e.with_source(err)
}

/// Topics a connector used (KIP-558 topic tracking), shared by its tasks and served by REST.
pub type TrackedTopics = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

/// Creates topics a source writes to when they do not exist yet.
pub struct TopicCreator {
    admin: AdminClient<DefaultClientContext>,
    known: HashSet<String>,
    /// The connector's used topics (KIP-558 topic tracking).
    tracked: TrackedTopics,
    partitions: i32,
    replication: i32,
}

impl TopicCreator {
    pub fn new(worker: &WorkerConfig, connector: &Config, tracked: TrackedTopics) -> Result<Self, ConnectError> {
        let admin: AdminClient<DefaultClientContext> = client_config(worker, "admin", Some(connector), &[])?
            .create()
            .map_err(|e| kafka_error("cannot create the Kafka admin client", e))?;
        let int = |key: &str, default: i32| connector.get(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default);
        Ok(TopicCreator {
            admin,
            known: HashSet::new(),
            tracked,
            partitions: int("topic.creation.default.partitions", 1),
            replication: int("topic.creation.default.replication.factor", 1),
        })
    }

    /// Make sure `topic` exists (cached after the first success), and track it as used.
    pub async fn ensure(&mut self, topic: &str) -> Result<(), ConnectError> {
        if self.known.contains(topic) {
            return Ok(());
        }
        self.ensure_with(topic, self.partitions, self.replication).await?;
        self.tracked.lock().unwrap_or_else(|p| p.into_inner()).insert(topic.to_string());
        Ok(())
    }

    /// Make sure `topic` exists, creating it with these settings if not.
    pub async fn ensure_with(&mut self, topic: &str, partitions: i32, replication: i32) -> Result<(), ConnectError> {
        if self.known.contains(topic) {
            return Ok(());
        }
        // Create first instead of asking for metadata: a metadata request may auto-create the topic with
        // the broker's defaults, which is not what topic.creation.* asked for.
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        let results = self
            .admin
            .create_topics([&new], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
            .await
            .map_err(|e| kafka_error("cannot create topic", e))?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic, partitions, replication, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => return Err(ConnectError::retriable(format!("cannot create topic {t}: {code}"))),
            }
        }
        self.known.insert(topic.to_string());
        Ok(())
    }
}
