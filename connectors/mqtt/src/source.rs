//! The MQTT source connector and task.
//!
//! A background task drives rumqttc's event loop and hands messages to `poll` through the kit's push-source
//! channel: when Kafka is slow the channel fills, the event loop stops reading, and TCP pushes back on the
//! broker. QoS 1/2 messages carry their packet id as a typed ack token and are acknowledged in
//! `commit_record`, after Kafka took the record. Reconnects follow the kit's backoff.

use crate::config::{self, *};
use bytes::Bytes;
use connect_core::config::parse_list;
use connect_core::{
    async_trait, schemas, Config, ConfigDef, ConnectError, Connector, ConnectorContext, RecordData, RecordMetadata, Result,
    SourceConnector, SourceMap, SourceRecord, SourceTask, SourceTaskContext, Value,
};
use connect_kit::push_source::{self, PushReceiver, PushSender};
use connect_kit::{Backoff, BackoffPolicy};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;

/// What `commit_record` needs to acknowledge a QoS 1/2 message: carried on the record, not in its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MqttAck {
    pkid: u16,
    qos: QoS,
}

#[derive(Default)]
pub struct MqttSourceConnector {
    config: Config,
}

#[async_trait]
impl Connector for MqttSourceConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        config::def().parse(&config)?;
        connect_kit::validate::note_confluent_license_keys(&config);
        self.config = config;
        Ok(())
    }
    /// Spread the MQTT topics over at most `max_tasks` tasks, each topic in exactly one task.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        let topics = parse_list(self.config.get(TOPICS).map(String::as_str).unwrap_or(""));
        let n = max_tasks.min(topics.len()).max(1);
        Ok((0..n)
            .map(|i| {
                let mine: Vec<&str> = topics.iter().skip(i).step_by(n).map(String::as_str).collect();
                let mut c = self.config.clone();
                c.insert(TOPICS.into(), mine.join(","));
                c.insert(TASK_INDEX.into(), i.to_string());
                c
            })
            .collect())
    }
}

impl SourceConnector for MqttSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::<MqttSourceTask>::default()
    }
}

#[derive(Default)]
pub struct MqttSourceTask {
    client: Option<AsyncClient>,
    messages: Option<PushReceiver<Publish>>,
    event_loop: Option<JoinHandle<()>>,
    kafka_topic: String,
    qos: u8,
    /// MQTT has no replayable offsets: one empty partition, which the runtime does not store.
    partition: Arc<SourceMap>,
}

fn qos_of(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn options_for(uri: &ServerUri, client_id: &str, parsed: &connect_core::ParsedConfig) -> Result<MqttOptions> {
    let mut options = MqttOptions::new(client_id, uri.websocket.clone().unwrap_or_else(|| uri.host.clone()), uri.port);
    options
        .set_keep_alive(Duration::from_secs(parsed.int(KEEPALIVE) as u64))
        .set_clean_session(parsed.boolean(CLEAN_SESSION))
        .set_manual_acks(parsed.int(QOS) > 0)
        .set_inflight(parsed.int(BUFFER_SIZE).clamp(1, u16::MAX as i64) as u16)
        // rumqttc's default limit (10 KiB) is far below what devices send (camera frames): allow MQTT's max.
        .set_max_packet_size(256 * 1024 * 1024, 256 * 1024 * 1024);
    if let Some(user) = parsed.optional_string(USERNAME) {
        options.set_credentials(user, parsed.password(PASSWORD).map(|p| p.expose().to_string()).unwrap_or_default());
    }
    if uri.tls {
        let read = |key: &str| -> Result<Option<Vec<u8>>> {
            match parsed.optional_string(key).filter(|p| !p.is_empty()) {
                None => Ok(None),
                Some(path) => {
                    std::fs::read(&path).map(Some).map_err(|e| ConnectError::fatal(format!("{key}: cannot read {path}")).with_source(e))
                }
            }
        };
        let transport = match read(SSL_CA)? {
            Some(ca) => {
                let client_auth = match (read(SSL_CERT)?, read(SSL_KEY)?) {
                    (Some(cert), Some(key)) => Some((cert, key)),
                    (None, None) => None,
                    _ => return Err(ConnectError::fatal(format!("{SSL_CERT} and {SSL_KEY} go together"))),
                };
                let tls = TlsConfiguration::Simple { ca, alpn: None, client_auth };
                if uri.websocket.is_some() {
                    Transport::wss_with_config(tls)
                } else {
                    Transport::tls_with_config(tls)
                }
            }
            None if uri.websocket.is_some() => Transport::wss_with_default_config(),
            None => Transport::tls_with_default_config(),
        };
        options.set_transport(transport);
    } else if uri.websocket.is_some() {
        options.set_transport(Transport::ws());
    }
    Ok(options)
}

/// Reconnects: 100 ms doubling up to 5 s, given up `max.retry.time.ms` after the connection was lost.
fn reconnect_policy(max_retry: Duration) -> BackoffPolicy {
    BackoffPolicy::exponential(Duration::from_millis(100), Duration::from_secs(5)).with_max_elapsed(max_retry)
}

/// Drive the MQTT connection: (re)subscribe on every connect, pass messages on, reconnect with backoff
/// across the configured brokers, and give up (failing the task) after `max.retry.time.ms` without one.
/// Ends when the task stops receiving.
async fn run_event_loop(
    mut event_loop: rumqttc::EventLoop,
    client: AsyncClient,
    all_options: Vec<MqttOptions>,
    filters: Vec<SubscribeFilter>,
    max_retry: Duration,
    tx: PushSender<Publish>,
) {
    let mut reconnect = Backoff::new(reconnect_policy(max_retry));
    let mut broker = 0usize;
    loop {
        let event = tokio::select! {
            _ = tx.closed() => return, // the task stopped
            event = event_loop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                reconnect.reset();
                tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                // A broker that kept our session keeps our subscriptions too; subscribing again is harmless.
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    tx.fail(ConnectError::fatal("cannot subscribe to the MQTT topics").with_source(e)).await;
                    return;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                    let topics: Vec<&str> = filters.iter().map(|f| f.path.as_str()).collect();
                    tx.fail(ConnectError::fatal(format!("the MQTT broker refused a subscription to {topics:?}"))).await;
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if tx.send(publish).await.is_err() {
                    return; // the task stopped
                }
            }
            Ok(_) => {}
            Err(e) => {
                let Some(delay) = reconnect.next_delay() else {
                    tx.fail(
                        ConnectError::retriable(format!(
                            "no connection to an MQTT broker for {} ms (max.retry.time.ms)",
                            max_retry.as_millis()
                        ))
                        .with_source(e),
                    )
                    .await;
                    return;
                };
                tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "MQTT connection lost; reconnecting");
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                if all_options.len() > 1 {
                    broker = (broker + 1) % all_options.len();
                    event_loop.mqtt_options = all_options[broker].clone();
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

impl MqttSourceTask {
    fn record(&self, publish: Publish) -> SourceRecord {
        let ack = (publish.qos != QoS::AtMostOnce).then_some(MqttAck { pkid: publish.pkid, qos: publish.qos });
        let mut data = RecordData::new(
            kafka_topic_for(&self.kafka_topic, &publish.topic),
            Some(schemas::optional_bytes()),
            Value::Bytes(publish.payload),
        )
        .with_key(Some(schemas::optional_string()), Value::String(publish.topic))
        .with_timestamp(Some(now_ms()));
        data.headers
            .add("mqtt.message.id", Value::Int32(publish.pkid as i32))
            .add("mqtt.qos", Value::Int32(publish.qos as i32))
            .add("mqtt.retained", Value::Boolean(publish.retain))
            .add("mqtt.duplicate", Value::Boolean(publish.dup));
        let record = SourceRecord::new(self.partition.clone(), SourceMap::new(), data);
        match ack {
            Some(ack) => push_source::with_ack(record, ack),
            None => record,
        }
    }
}

#[async_trait]
impl SourceTask for MqttSourceTask {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()> {
        let parsed = config::def().parse(&config)?;
        let uris: Vec<ServerUri> =
            parsed.list(SERVER_URI).iter().map(|u| parse_uri(u)).collect::<std::result::Result<_, _>>().map_err(ConnectError::fatal)?;
        // Stable per connector and task, so a persistent session survives restarts (changing tasks.max or
        // the topic list changes the ids, as with Confluent's connector).
        let client_id = format!("connect-rs-{}-{}", context.connector_name, parsed.int(TASK_INDEX));
        let all_options: Vec<MqttOptions> = uris.iter().map(|u| options_for(u, &client_id, &parsed)).collect::<Result<_>>()?;
        self.qos = parsed.int(QOS) as u8;
        self.kafka_topic = parsed.string(KAFKA_TOPIC);
        let filters: Vec<SubscribeFilter> = parsed.list(TOPICS).into_iter().map(|t| SubscribeFilter::new(t, qos_of(self.qos))).collect();
        let (client, event_loop) = AsyncClient::new(all_options[0].clone(), 1024);
        let (tx, rx) = push_source::channel(
            parsed.int(BUFFER_SIZE) as usize,
            parsed.int(MAX_BATCH) as usize,
            Duration::from_millis(parsed.int(EMPTY_TIMEOUT) as u64),
        );
        let max_retry = Duration::from_millis(parsed.int(MAX_RETRY_TIME) as u64);
        self.event_loop = Some(tokio::spawn(run_event_loop(event_loop, client.clone(), all_options, filters, max_retry, tx)));
        self.client = Some(client);
        self.messages = Some(rx);
        tracing::info!(client_id, qos = self.qos, "MQTT source task started");
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let rx = self.messages.as_mut().ok_or_else(|| ConnectError::fatal("MQTT source task not started"))?;
        let publishes = rx.recv_batch().await?;
        Ok(publishes.into_iter().map(|p| self.record(p)).collect())
    }

    /// `poll` only waits on the push-source channel: dropping it loses nothing. The runtime then acknowledges while
    /// `poll` waits, which matters: the broker holds back further messages until we acknowledge.
    fn poll_is_cancel_safe(&self) -> bool {
        true
    }

    /// Kafka has the record (or it was filtered or dead-lettered): acknowledge the message to the broker.
    async fn commit_record(&mut self, record: &SourceRecord, _metadata: Option<&RecordMetadata>) -> Result<()> {
        let Some(ack) = push_source::ack_of::<MqttAck>(record) else {
            return Ok(()); // QoS 0: nothing to acknowledge
        };
        let Some(client) = &self.client else { return Ok(()) };
        // The broker matches an acknowledgement by packet id and QoS only.
        let mut publish = Publish::new("", ack.qos, Bytes::new());
        publish.pkid = ack.pkid;
        client.ack(&publish).await.map_err(|e| ConnectError::retriable("cannot acknowledge an MQTT message").with_source(e))
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(client) = self.client.take() {
            let _ = client.try_disconnect();
        }
        // Give the event loop a moment to send the acknowledgements and the disconnect.
        if let Some(mut handle) = self.event_loop.take() {
            if tokio::time::timeout(Duration::from_millis(500), &mut handle).await.is_err() {
                handle.abort();
            }
        }
        self.messages = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_spread_without_overlap() {
        let config = [(SERVER_URI, "tcp://h:1883"), (TOPICS, "a,b,c,d,e"), (KAFKA_TOPIC, "k")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = MqttSourceConnector { config };
        let tasks = c.task_configs(2).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0][TOPICS], "a,c,e");
        assert_eq!(tasks[1][TOPICS], "b,d");
        assert_eq!(tasks[1][TASK_INDEX], "1");
        assert_eq!(c.task_configs(10).unwrap().len(), 5, "never more tasks than topics");
    }

    #[test]
    fn records_carry_topic_payload_and_flags() {
        let t = MqttSourceTask { kafka_topic: "data_mqtt".into(), ..Default::default() };
        let mut p = Publish::new("sockfound", QoS::AtLeastOnce, br#"{"image":"Google","probability":97.3}"#.to_vec());
        p.pkid = 7;
        let r = t.record(p);
        assert_eq!(r.data.topic, "data_mqtt");
        assert_eq!(r.data.key, Value::String("sockfound".into()));
        assert_eq!(r.data.value, Value::Bytes(Bytes::from_static(br#"{"image":"Google","probability":97.3}"#)));
        assert_eq!(push_source::ack_of::<MqttAck>(&r), Some(&MqttAck { pkid: 7, qos: QoS::AtLeastOnce }));
        assert!(r.source_offset.is_empty(), "the ack id is not an offset");
        assert_eq!(r.data.headers.last("mqtt.qos").unwrap().value, Value::Int32(1));
        assert!(r.source_partition.is_empty(), "no offsets to store for MQTT");
    }
}
