//! `GET|PATCH|DELETE /connectors/{name}/offsets` (KIP-875): source offsets from the offset store, sink
//! offsets from the connector's consumer group, in Kafka Connect's shapes. Changes only while STOPPED.

use connect_core::{ConnectorType, SourceMap};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value as Json};
use std::time::Duration;

use crate::control::{Herder, HerderError};
use crate::kafka::client_config;

/// The message Kafka Connect gives when offsets are changed on a connector that is not STOPPED.
pub const NOT_STOPPED: &str = "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{connector}/stop' endpoint";

fn group(name: &str) -> String {
    format!("connect-{name}")
}

fn sink_consumer(h: &Herder, name: &str) -> Result<BaseConsumer, HerderError> {
    client_config(&h.context().worker, "consumer", None, &[("enable.auto.commit", "false")])
        .map_err(|e| HerderError::Internal(e.to_string()))?
        .set("group.id", group(name))
        .create()
        .map_err(|e| HerderError::Internal(format!("cannot create a Kafka consumer: {e}")))
}

/// `{"offsets":[{"partition":{...},"offset":{...}}]}`.
pub async fn get(h: &Herder, name: &str) -> Result<Json, HerderError> {
    let (_, kind) = h.stopped(name)?;
    if kind == ConnectorType::Source {
        return Ok(json!({"offsets": h.context().offsets.list(name)}));
    }
    // The topics its tasks used here, and those its config names: in distributed mode the tasks may have
    // run on other workers.
    let mut topics = h.topics(name)?;
    let configured = h.info(name)?.config.get(crate::config::connector::TOPICS).map(|t| connect_core::config::parse_list(t));
    topics.extend(configured.unwrap_or_default());
    topics.sort();
    topics.dedup();
    let consumer = sink_consumer(h, name)?;
    let list = tokio::task::spawn_blocking(move || -> Result<Vec<Json>, String> {
        let mut tpl = TopicPartitionList::new();
        for topic in &topics {
            let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| e.to_string())?;
            for t in md.topics() {
                for p in t.partitions() {
                    tpl.add_partition(topic, p.id());
                }
            }
        }
        if tpl.count() == 0 {
            return Ok(Vec::new());
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => {
                    Some(json!({"partition": {"kafka_topic": e.topic(), "kafka_partition": e.partition()}, "offset": {"kafka_offset": o}}))
                }
                _ => None,
            })
            .collect())
    })
    .await
    .map_err(|e| HerderError::Internal(e.to_string()))?
    .map_err(HerderError::Internal)?;
    Ok(json!({"offsets": list}))
}

/// `PATCH`: set (or with `"offset": null`, reset) the listed partitions.
pub async fn alter(h: &Herder, name: &str, body: &Json) -> Result<Json, HerderError> {
    let (stopped, kind) = h.stopped(name)?;
    if !stopped {
        return Err(HerderError::BadRequest(NOT_STOPPED.replace("{connector}", name)));
    }
    let entries = body.get("offsets").and_then(Json::as_array).filter(|a| !a.is_empty()).ok_or_else(|| {
        HerderError::BadRequest(
            "The request body must contain a non-empty 'offsets' list of {\"partition\": ..., \"offset\": ...} entries".into(),
        )
    })?;
    let mut parsed: Vec<(SourceMap, Option<SourceMap>)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let partition = entry
            .get("partition")
            .and_then(Json::as_object)
            .cloned()
            .ok_or_else(|| HerderError::BadRequest("Each offset entry needs a 'partition' object".into()))?;
        let offset = match entry.get("offset") {
            None | Some(Json::Null) => None,
            Some(Json::Object(o)) => Some(o.clone()),
            Some(_) => return Err(HerderError::BadRequest("An entry's 'offset' must be an object or null".into())),
        };
        parsed.push((partition, offset));
    }
    match kind {
        ConnectorType::Source => {
            let store = &h.context().offsets;
            for (partition, offset) in parsed {
                match offset {
                    Some(o) => store.put(name, [(partition, o)]),
                    None => store.remove_partition(name, &partition),
                }
            }
            flush(store).await?;
        }
        ConnectorType::Sink => {
            let mut tpl = TopicPartitionList::new();
            let mut resets = Vec::new();
            for (partition, offset) in parsed {
                let topic = partition
                    .get("kafka_topic")
                    .and_then(Json::as_str)
                    .ok_or_else(|| HerderError::BadRequest("Sink offsets need 'kafka_topic'".into()))?;
                let p = partition
                    .get("kafka_partition")
                    .and_then(Json::as_i64)
                    .ok_or_else(|| HerderError::BadRequest("Sink offsets need 'kafka_partition'".into()))? as i32;
                match offset {
                    Some(o) => {
                        let off = o
                            .get("kafka_offset")
                            .and_then(Json::as_i64)
                            .filter(|v| *v >= 0)
                            .ok_or_else(|| HerderError::BadRequest("Sink offsets need a non-negative 'kafka_offset'".into()))?;
                        tpl.add_partition_offset(topic, p, Offset::Offset(off)).map_err(|e| HerderError::BadRequest(e.to_string()))?;
                    }
                    None => resets.push((topic.to_string(), p)),
                }
            }
            // A reset partition starts where a consumer without a committed offset would: rdkafka has no
            // DeleteConsumerGroupOffsets, so the offset that `auto.offset.reset` picks now is committed instead.
            let latest = {
                let info = h.info(name)?;
                let worker_reset = h.context().worker.client_overrides("consumer").get("auto.offset.reset").cloned();
                let reset =
                    info.config.get("consumer.override.auto.offset.reset").cloned().or(worker_reset).unwrap_or_else(|| "earliest".into());
                matches!(reset.trim().to_ascii_lowercase().as_str(), "latest" | "largest" | "end")
            };
            let consumer = sink_consumer(h, name)?;
            tokio::task::spawn_blocking(move || -> Result<(), String> {
                for (topic, p) in resets {
                    let (low, high) = consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))
                        .map_err(|e| format!("cannot read the offsets of {topic}-{p}: {e}"))?;
                    tpl.add_partition_offset(&topic, p, Offset::Offset(if latest { high } else { low })).map_err(|e| e.to_string())?;
                }
                consumer.commit(&tpl, CommitMode::Sync).map_err(|e| format!("cannot commit the offsets: {e}"))
            })
            .await
            .map_err(|e| HerderError::Internal(e.to_string()))?
            .map_err(HerderError::Internal)?;
        }
    }
    Ok(json!({"message": "The offsets for this connector have been altered successfully"}))
}

/// `DELETE`: forget every offset of the connector.
pub async fn reset(h: &Herder, name: &str) -> Result<Json, HerderError> {
    let (stopped, kind) = h.stopped(name)?;
    if !stopped {
        return Err(HerderError::BadRequest(NOT_STOPPED.replace("{connector}", name)));
    }
    match kind {
        ConnectorType::Source => {
            let store = &h.context().offsets;
            store.remove_connector(name);
            flush(store).await?;
        }
        ConnectorType::Sink => {
            let admin: AdminClient<DefaultClientContext> = client_config(&h.context().worker, "admin", None, &[])
                .map_err(|e| HerderError::Internal(e.to_string()))?
                .create()
                .map_err(|e| HerderError::Internal(format!("cannot create a Kafka admin client: {e}")))?;
            let results = admin
                .delete_groups(&[&group(name)], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
                .await
                .map_err(|e| HerderError::Internal(format!("cannot delete the consumer group: {e}")))?;
            for r in results {
                if let Err((g, code)) = r {
                    if code != rdkafka::types::RDKafkaErrorCode::GroupIdNotFound {
                        return Err(HerderError::Internal(format!("cannot delete consumer group {g}: {code}")));
                    }
                }
            }
        }
    }
    Ok(json!({"message": "The offsets for this connector have been reset successfully"}))
}

/// Make source offsets durable off the async threads (a file write, or Kafka acknowledgements in
/// distributed mode).
async fn flush(store: &std::sync::Arc<crate::store::offsets::OffsetStore>) -> Result<(), HerderError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| HerderError::Internal(e.to_string()))?
        .map_err(|e| HerderError::Internal(e.to_string()))
}
