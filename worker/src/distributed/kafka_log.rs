//! A compacted Kafka topic read from its beginning and followed, with writes keyed like Java's producer
//! would key them (murmur2): the shape of Kafka Connect's `KafkaBasedLog`, on which the config, status and
//! offsets topics stand.
//!
//! Every record read is handed to the owner's `apply` in order per partition; `read_to_end` waits until
//! everything written before the call has been applied, which is how a worker reads its own writes.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic {topic}: {message}")]
    Kafka { topic: String, message: String },
    #[error("topic {topic}: not read to its end within {timeout:?}")]
    Timeout { topic: String, timeout: Duration },
}

/// How the topic is created when it does not exist.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

/// Called for each record: key, value (`None`: a tombstone), partition, offset.
pub type Apply = Box<dyn FnMut(&[u8], Option<&[u8]>, i32, i64) + Send>;

pub struct KafkaLog {
    topic: String,
    producer: FutureProducer,
    consumer: Arc<StreamConsumer>,
    partitions: i32,
    /// The next offset to read, per partition.
    positions: watch::Receiver<BTreeMap<i32, i64>>,
    stop: CancellationToken,
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn kafka(topic: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Kafka { topic: topic.to_string(), message: e.to_string() }
}

impl KafkaLog {
    /// Create the topic if it is missing (compacted), start following it from the beginning, and return
    /// once what was there at start has been applied.
    pub async fn start(worker: &WorkerConfig, spec: &TopicSpec, client_id: &str, mut apply: Apply) -> Result<Arc<Self>, LogError> {
        let topic = spec.name.clone();
        create_topic(worker, spec).await?;
        let producer: FutureProducer = crate::kafka::client_config(
            worker,
            "producer",
            None,
            &[
                ("client.id", &format!("{client_id}-{topic}-producer")),
                // Keys land in the partitions Java's producer picks, so a JVM cluster's topics stay consistent.
                ("partitioner", "murmur2_random"),
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "0"),
            ],
        )
        .map_err(|e| kafka(&topic, e))?
        .create()
        .map_err(|e| kafka(&topic, e))?;
        let consumer: StreamConsumer = crate::kafka::client_config(
            worker,
            "consumer",
            None,
            &[
                ("client.id", &format!("{client_id}-{topic}-reader")),
                ("group.id", &format!("{client_id}-{topic}-reader")),
                ("enable.auto.commit", "false"),
                ("enable.partition.eof", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        )
        .map_err(|e| kafka(&topic, e))?
        .create()
        .map_err(|e| kafka(&topic, e))?;
        let partitions = partition_count(&consumer, &topic).await?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(&topic, p, Offset::Beginning).map_err(|e| kafka(&topic, e))?;
        }
        consumer.assign(&assignment).map_err(|e| kafka(&topic, e))?;
        let consumer = Arc::new(consumer);
        let (positions_tx, positions) = watch::channel(BTreeMap::new());
        let stop = CancellationToken::new();
        let (reader, stopped) = (consumer.clone(), stop.clone());
        let name = topic.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = stopped.cancelled() => return,
                    m = reader.recv() => m,
                };
                match message {
                    Ok(m) => {
                        apply(m.key().unwrap_or_default(), m.payload(), m.partition(), m.offset());
                        positions_tx.send_modify(|p| {
                            p.insert(m.partition(), m.offset() + 1);
                        });
                    }
                    Err(e) => {
                        tracing::warn!(topic = %name, error = %e, "reading an internal topic failed; retrying");
                        tokio::select! {
                            _ = stopped.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        });
        let log = Arc::new(KafkaLog { topic, producer, consumer, partitions, positions, stop });
        log.read_to_end(Duration::from_secs(60)).await?;
        Ok(log)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Write one record and wait for the broker's acknowledgement; returns its partition and offset.
    pub async fn send(&self, key: &str, value: Option<&[u8]>) -> Result<(i32, i64), LogError> {
        self.send_bytes(key.as_bytes(), value).await
    }

    /// [`KafkaLog::send`] with a key that is not text.
    pub async fn send_bytes(&self, key: &[u8], value: Option<&[u8]>) -> Result<(i32, i64), LogError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(e, _)| kafka(&self.topic, e))
    }

    /// Wait until the reader has applied `offset` of `partition`.
    pub async fn wait_for(&self, partition: i32, offset: i64, timeout: Duration) -> Result<(), LogError> {
        let mut positions = self.positions.clone();
        let reached = tokio::time::timeout(timeout, positions.wait_for(|p| p.get(&partition).is_some_and(|&next| next > offset))).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(kafka(&self.topic, "the reader stopped")),
            Err(_) => Err(LogError::Timeout { topic: self.topic.clone(), timeout }),
        }
    }

    /// Wait until everything in the topic now has been applied.
    pub async fn read_to_end(&self, timeout: Duration) -> Result<(), LogError> {
        let (consumer, topic, partitions) = (self.consumer.clone(), self.topic.clone(), self.partitions);
        let ends = tokio::task::spawn_blocking(move || {
            (0..partitions)
                .map(|p| consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)).map(|(low, high)| (p, low, high)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| kafka(&self.topic, e))?
        .map_err(|e| kafka(&self.topic, e))?;
        let mut positions = self.positions.clone();
        let reached = tokio::time::timeout(
            timeout,
            positions.wait_for(|p| ends.iter().all(|(partition, low, high)| low >= high || p.get(partition).is_some_and(|n| n >= high))),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(kafka(&self.topic, "the reader stopped")),
            Err(_) => Err(LogError::Timeout { topic: self.topic.clone(), timeout }),
        }
    }
}

async fn create_topic(worker: &WorkerConfig, spec: &TopicSpec) -> Result<(), LogError> {
    let admin: AdminClient<DefaultClientContext> = crate::kafka::client_config(worker, "admin", None, &[])
        .map_err(|e| kafka(&spec.name, e))?
        .create()
        .map_err(|e| kafka(&spec.name, e))?;
    let topic =
        NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(spec.replication_factor)).set("cleanup.policy", "compact");
    let results = admin
        .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .map_err(|e| kafka(&spec.name, e))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic = %spec.name, partitions = spec.partitions, "created internal topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(kafka(&spec.name, format!("cannot create it: {code}"))),
        }
    }
    Ok(())
}

async fn partition_count(consumer: &StreamConsumer, topic: &str) -> Result<i32, LogError> {
    // A topic created a moment ago may not be in the metadata yet.
    for _ in 0..30 {
        match consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(metadata) => {
                if let Some(t) = metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()) {
                    return Ok(t.partitions().len() as i32);
                }
            }
            Err(e) => tracing::debug!(topic, error = %e, "metadata not there yet"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(kafka(topic, "no partitions in the metadata"))
}
