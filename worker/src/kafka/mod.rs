//! Kafka clients for the runtime: producer, consumer and admin settings from the worker config, and
//! topic creation for sources (what Kafka Connect's `topic.creation.*` does).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::HashSet;
use std::time::Duration;

pub mod deliveries;
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
    let (cfg, _) = translated_client_config(worker, prefix, connector, defaults).map_err(|e| {
        let whose = if connector.is_some() { "the worker's or the connector's" } else { "the worker's" };
        ConnectError::fatal(format!("Kafka {prefix} security settings ({whose}): {e}"))
    })?;
    Ok(cfg)
}

/// [`client_config`], and the Java-only keys the translation left out.
fn translated_client_config(
    worker: &WorkerConfig,
    prefix: &str,
    connector: Option<&Config>,
    defaults: &[(&str, &str)],
) -> Result<(ClientConfig, Vec<security::Ignored>), security::SecurityConfigError> {
    let (mut cfg, security) = split_client_keys(worker, prefix, connector, defaults);
    let translated = security::translate(&security)?;
    for (k, v) in translated.set {
        cfg.set(k, v);
    }
    Ok((cfg, translated.ignored))
}

/// A Java consumer key the runtime takes itself (a sink's most records per `put`), never librdkafka's.
pub const MAX_POLL_RECORDS: &str = "max.poll.records";

/// The client's plain librdkafka settings, and its security keys as Kafka's Java client names them.
fn split_client_keys(worker: &WorkerConfig, prefix: &str, connector: Option<&Config>, defaults: &[(&str, &str)]) -> (ClientConfig, Config) {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &worker.bootstrap_servers);
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    let mut security = Config::new();
    overlay(&mut security, worker.raw.iter().filter(|(k, _)| security::is_security_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect());
    let mut layers = vec![worker.client_overrides(prefix).into_iter().filter(|(k, _)| !k.starts_with("override.")).collect::<Vec<_>>()];
    if let Some(conn) = connector {
        layers.push(connect_core::config::with_prefix(conn, &format!("{prefix}.override.")).into_iter().collect());
    }
    for layer in layers {
        let (secure, plain): (Vec<_>, Vec<_>) = layer.into_iter().partition(|(k, _)| security::is_security_key(k));
        for (k, v) in plain {
            cfg.set(k, v);
        }
        overlay(&mut security, secure.into_iter().collect());
    }
    (cfg, security)
}

/// Keys that set one thing under Kafka's and librdkafka's names (the first list), and the keys that go with
/// them (the second): a layer that sets any of the first replaces the whole group of the layers below, so an
/// override (`sasl.username` over a top-level `sasl.jaas.config`, `ssl.ca.location` over a top-level
/// truststore) wins instead of conflicting with what it overrides.
const EQUIVALENT: &[(&[&str], &[&str])] = &[
    (&["sasl.mechanism", "sasl.mechanisms"], &[]),
    (&["sasl.jaas.config", "sasl.username", "sasl.password"], &[]),
    (
        &["ssl.truststore.location", "ssl.truststore.certificates", "ssl.ca.location", "ssl.ca.pem"],
        &["ssl.truststore.type", "ssl.truststore.password"],
    ),
    (
        &[
            "ssl.keystore.location",
            "ssl.keystore.key",
            "ssl.keystore.certificate.chain",
            "ssl.certificate.location",
            "ssl.key.location",
            "ssl.certificate.pem",
            "ssl.key.pem",
        ],
        &["ssl.keystore.type", "ssl.keystore.password", "ssl.key.password"],
    ),
];

/// Lay one layer of security keys over the ones below it.
fn overlay(security: &mut Config, layer: Config) {
    for (keys, companions) in EQUIVALENT {
        if layer.keys().any(|k| keys.contains(&k.as_str())) {
            for k in keys.iter().chain(companions.iter()) {
                if !layer.contains_key(*k) {
                    security.remove(*k);
                }
            }
        }
    }
    security.extend(layer);
}

/// Check the worker's Kafka security settings for each kind of client at start, so a bad store or JAAS line
/// stops the worker with the key named instead of failing every task later, and say once which Java-only
/// keys are ignored.
pub fn check_worker_security(worker: &WorkerConfig) -> Result<(), String> {
    let mut reported = std::collections::BTreeSet::new();
    for prefix in ["producer", "consumer", "admin"] {
        let (mut config, ignored) =
            translated_client_config(worker, prefix, None, &[]).map_err(|e| format!("Kafka {prefix} security settings: {e}"))?;
        for ignored in ignored {
            if reported.insert(ignored.key.clone()) {
                tracing::warn!(key = %ignored.key, reason = ignored.reason, "Kafka client setting ignored");
            }
        }
        // librdkafka checks the rest when a client is made (e.g. GSSAPI, which this build lacks): make
        // one now, so such a setting stops the worker here rather than failing every task.
        config.remove(MAX_POLL_RECORDS);
        let made = if prefix == "consumer" {
            config.create::<rdkafka::consumer::BaseConsumer>().map(drop)
        } else {
            config.create::<rdkafka::producer::BaseProducer>().map(drop)
        };
        made.map_err(|e| format!("Kafka {prefix} client settings: {e}"))?;
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

/// A task's producer for its dead-letter queue (a sink's only producer; beside a source's record producer,
/// which reports deliveries by ticket and so cannot hand out the delivery futures the DLQ path waits on).
pub fn dlq_producer(
    worker: &WorkerConfig,
    connector: &Config,
    name: &str,
    task: u32,
) -> Result<rdkafka::producer::FutureProducer, ConnectError> {
    client_config(worker, "producer", Some(connector), PRODUCER_DEFAULTS)?
        .set("client.id", format!("connector-dlq-producer-{name}-{task}"))
        .create()
        .map_err(|e| kafka_error("cannot create the dead-letter queue producer", e))
}

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

    /// Take `topic` as existing without asking the broker.
    #[cfg(test)]
    pub fn assume_exists(&mut self, topic: &str) {
        self.known.insert(topic.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn settings(worker: &[(&str, &str)], prefix: &str, connector: &[(&str, &str)]) -> Config {
        let worker = WorkerConfig::from_config(config(worker)).unwrap();
        split_client_keys(&worker, prefix, Some(&config(connector)), &[]).1
    }

    /// The top level applies to every client; `<prefix>.` overrides it; the connector's `.override.` overrides
    /// both, also when it names the same setting in librdkafka's terms.
    #[test]
    fn security_keys_layer_top_level_then_prefix_then_connector_override() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="top" password="p";"#;
        let worker = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", jaas),
            ("ssl.truststore.location", "/top/ca.p12"),
            ("ssl.truststore.password", "top-pass"),
            ("consumer.ssl.ca.location", "/consumer/ca.pem"),
            ("producer.sasl.mechanism", "SCRAM-SHA-512"),
        ];
        let consumer = settings(&worker, "consumer", &[]);
        assert_eq!(consumer.get("ssl.ca.location").map(String::as_str), Some("/consumer/ca.pem"));
        assert!(!consumer.contains_key("ssl.truststore.location") && !consumer.contains_key("ssl.truststore.password"), "{consumer:?}");
        assert_eq!(consumer.get("sasl.jaas.config").map(String::as_str), Some(jaas), "the top level applies");
        let producer =
            settings(&worker, "producer", &[("producer.override.sasl.username", "conn"), ("producer.override.sasl.password", "c")]);
        assert_eq!(producer.get("sasl.mechanism").map(String::as_str), Some("SCRAM-SHA-512"));
        assert_eq!(producer.get("sasl.username").map(String::as_str), Some("conn"));
        assert!(!producer.contains_key("sasl.jaas.config"), "the override replaces the top-level login: {producer:?}");
        assert_eq!(producer.get("ssl.truststore.location").map(String::as_str), Some("/top/ca.p12"));
        // Translated, the layers do not conflict (before, a top-level JAAS line and an override's sasl.username
        // both set librdkafka's sasl.username: an error).
        let plain = [("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", jaas)];
        let overridden =
            settings(&plain, "producer", &[("producer.override.sasl.username", "conn"), ("producer.override.sasl.password", "c")]);
        let translated = security::translate(&overridden).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((translated.get("sasl.username"), translated.get("sasl.password")), (Some("conn"), Some("c")));
        let admin = settings(&worker, "admin", &[("admin.override.sasl.mechanisms", "SCRAM-SHA-256")]);
        assert_eq!(admin.get("sasl.mechanisms").map(String::as_str), Some("SCRAM-SHA-256"));
        assert!(!admin.contains_key("sasl.mechanism"), "{admin:?}");
    }
}
