//! The connector (task configs) and the source task: the session runs on a task of its own and hands
//! messages through the kit's push channel; `poll` turns them into JMS-shaped records; `commit_record`
//! acknowledges each message once Kafka has its record (or the DLQ took it, or a transform dropped it).

use crate::config::{self, *};
use crate::record::{self, RecordError};
use crate::session::{self, AckHandle, Message, SessionConfig};
use connect_core::{
    async_trait, Config, ConfigDef, ConnectError, Connector, ConnectorContext, RecordData, RecordMetadata, Result, SourceConnector,
    SourceMap, SourceRecord, SourceTask, SourceTaskContext,
};
use connect_kit::push_source::{self, PushReceiver};
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct StompSourceConnector {
    config: Config,
}

#[async_trait]
impl Connector for StompSourceConnector {
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
    /// A queue is shared by up to `tasks.max` competing consumers; a topic has one task, since every
    /// subscriber of a topic gets every message.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        let topic = self.config.get(DESTINATION_TYPE).is_some_and(|t| t.eq_ignore_ascii_case("topic"));
        let n = if topic { 1 } else { max_tasks.max(1) };
        if topic && max_tasks > 1 {
            tracing::info!(max_tasks, "a topic is read by one task (each subscriber gets every message)");
        }
        Ok((0..n)
            .map(|i| {
                let mut c = self.config.clone();
                c.insert(TASK_INDEX.into(), i.to_string());
                c
            })
            .collect())
    }
}

impl SourceConnector for StompSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::<StompSourceTask>::default()
    }
}

#[derive(Default)]
pub struct StompSourceTask {
    messages: Option<PushReceiver<Message>>,
    acks: Option<mpsc::UnboundedSender<AckHandle>>,
    session: Option<JoinHandle<()>>,
    kafka_topic: String,
    encoding: Option<&'static encoding_rs::Encoding>,
    permissive: bool,
    ignore_errors: bool,
    partition: Arc<SourceMap>,
}

fn tls_config(ca_file: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file.filter(|p| !p.is_empty()) {
        Some(path) => {
            let certs =
                rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| ConnectError::fatal(format!("{SSL_CA} {path}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| ConnectError::fatal(format!("{SSL_CA} {path}: {e}")))?;
                roots.add(cert).map_err(|e| ConnectError::fatal(format!("{SSL_CA} {path}: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::fatal(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

impl StompSourceTask {
    fn record(&self, message: Message) -> std::result::Result<SourceRecord, (RecordError, AckHandle)> {
        let encoding = self.encoding.unwrap_or(encoding_rs::UTF_8);
        let (key, value) = match record::jms_record(&message.frame, encoding, self.permissive, message.typed_by_content_length) {
            Ok(kv) => kv,
            Err(e) => return Err((e, message.ack)),
        };
        let timestamp = message.frame.get("timestamp").and_then(|t| t.trim().parse::<i64>().ok()).filter(|t| *t > 0).unwrap_or_else(now_ms);
        let data = RecordData::new(self.kafka_topic.clone(), Some(record::value_schema()), value)
            .with_key(Some(record::key_schema()), key)
            .with_timestamp(Some(timestamp));
        Ok(push_source::with_ack(SourceRecord::new(self.partition.clone(), SourceMap::new(), data), message.ack))
    }
}

#[async_trait]
impl SourceTask for StompSourceTask {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()> {
        let parsed = config::def().parse(&config)?;
        let urls = parse_urls(&parsed.string(URL)).map_err(ConnectError::fatal)?;
        let kind = parsed.string(DESTINATION_TYPE);
        let task_index = parsed.int(TASK_INDEX);
        let durable = kind.eq_ignore_ascii_case("topic") && parsed.boolean(DURABLE);
        // Stable across restarts: a durable subscription belongs to (client id, subscription name). A queue's
        // competing tasks need distinct client ids (ActiveMQ refuses a second connection with the same one).
        let base_client_id =
            parsed.optional_string(CLIENT_ID).filter(|c| !c.is_empty()).unwrap_or_else(|| format!("connect-rs-{}", context.connector_name));
        let client_id = if task_index == 0 { base_client_id } else { format!("{base_client_id}-{task_index}") };
        let subscription_name =
            parsed.optional_string(SUBSCRIPTION_NAME).filter(|s| !s.is_empty()).unwrap_or_else(|| context.connector_name.clone());
        let max_pending = parsed.int(MAX_PENDING) as usize;
        let needs_tls = urls.iter().any(|u| u.tls);
        let session_config = SessionConfig {
            tls: if needs_tls { Some(tls_config(parsed.optional_string(SSL_CA).as_deref())?) } else { None },
            urls,
            login: parsed.optional_string(USERNAME).filter(|u| !u.is_empty()),
            passcode: parsed.password(PASSWORD).map(|p| p.expose().to_string()),
            vhost: parsed.string(VHOST),
            client_id: client_id.clone(),
            destination: stomp_destination(&parsed.string(DESTINATION_NAME), &kind),
            // RabbitMQ names a durable subscription's queue after its id: the id must be stable too.
            subscription_id: if durable { subscription_name.clone() } else { format!("connect-rs-{task_index}") },
            durable: durable.then_some(subscription_name),
            selector: parsed.optional_string(SELECTOR).filter(|s| !s.is_empty()),
            max_pending,
            heartbeat: Duration::from_millis(parsed.int(HEARTBEAT_MS) as u64),
            max_frame_bytes: parsed.int(MAX_FRAME_BYTES) as usize,
            max_retry: Duration::from_millis(parsed.int(MAX_RETRY_TIME) as u64),
        };
        self.kafka_topic = parsed.string(KAFKA_TOPIC);
        self.encoding = encoding_rs::Encoding::for_label(parsed.string(CHARACTER_ENCODING).trim().as_bytes());
        self.permissive = parsed.boolean(PERMISSIVE_SCHEMA);
        self.ignore_errors = parsed.string(BEHAVIOR_ON_ERROR).eq_ignore_ascii_case("IGNORE");
        self.partition = push_source::no_offsets_partition();

        // The first connection is made here, so a wrong port or a refused login fails the start with its
        // reason; a broker that is down, or refuses for another reason (ActiveMQ's "client id already
        // connected" while it still holds a crashed worker's connection), is retried by the session.
        let first = match session::open_any(&session_config, 0).await {
            Ok(conn) => Some(conn),
            Err(e) if matches!(e, session::SessionError::NotStomp { .. }) || e.is_login_refused() => {
                return Err(ConnectError::fatal(e.to_string()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no STOMP broker reachable at start; the task keeps trying (max.retry.time)");
                None
            }
        };
        // Room for every unacknowledged message of this connection and of the one before a reconnect, so
        // the session never waits on the channel (and its heart-beats never stall).
        let (tx, rx) = push_source::channel(2 * max_pending + 16, parsed.int(BATCH_SIZE) as usize, Duration::from_millis(200));
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        tracing::info!(client_id, destination = %session_config.destination, "STOMP source task started");
        self.session = Some(tokio::spawn(session::run(session_config, first, tx, ack_rx)));
        self.messages = Some(rx);
        self.acks = Some(ack_tx);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let rx = self.messages.as_mut().ok_or_else(|| ConnectError::fatal("STOMP source task not started"))?;
        let messages = rx.recv_batch().await?;
        let mut records = Vec::with_capacity(messages.len());
        for message in messages {
            match self.record(message) {
                Ok(record) => records.push(record),
                Err((e, ack)) if self.ignore_errors => {
                    tracing::warn!(error = %e, "behavior.on.error=IGNORE: a message was skipped and acknowledged");
                    if let Some(acks) = &self.acks {
                        let _ = acks.send(ack);
                    }
                }
                // Unacknowledged, so the broker keeps it for a fixed connector.
                Err((e, _)) => return Err(ConnectError::fatal(e.to_string())),
            }
        }
        Ok(records)
    }

    /// `poll` only waits on the push channel: dropping it loses nothing, and acks flow while it waits.
    fn poll_is_cancel_safe(&self) -> bool {
        true
    }

    async fn commit_record(&mut self, record: &SourceRecord, _metadata: Option<&RecordMetadata>) -> Result<()> {
        if let (Some(ack), Some(acks)) = (push_source::ack_of::<AckHandle>(record), &self.acks) {
            // The session ended (stopping): the broker redelivers what was not acknowledged.
            let _ = acks.send(ack.clone());
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        // Closing the channel ends the session, which sends the acks already queued, then DISCONNECT.
        self.messages = None;
        self.acks = None;
        if let Some(mut handle) = self.session.take() {
            if tokio::time::timeout(session::DISCONNECT_TIMEOUT + Duration::from_secs(1), &mut handle).await.is_err() {
                handle.abort();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(pairs: &[(&str, &str)]) -> StompSourceConnector {
        StompSourceConnector { config: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn a_topic_gets_one_task_a_queue_many() {
        let topic = connector(&[(URL, "stomp://h"), (DESTINATION_NAME, "T"), (DESTINATION_TYPE, "topic"), (KAFKA_TOPIC, "k")]);
        assert_eq!(topic.task_configs(4).unwrap().len(), 1);
        let queue = connector(&[(URL, "stomp://h"), (DESTINATION_NAME, "Q"), (KAFKA_TOPIC, "k")]);
        let tasks = queue.task_configs(3).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[2][TASK_INDEX], "2");
    }
}
