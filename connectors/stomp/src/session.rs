//! The STOMP session: connect (TCP or TLS), CONNECT with heart-beats, SUBSCRIBE with client acks, hand
//! MESSAGE frames to `poll`, send the ACKs `commit_record` asks for, and reconnect with backoff across the
//! configured brokers when the connection is lost or the broker goes silent.
//!
//! Flow control: at most `max.pending.messages` messages are received and not yet acknowledged. The broker is
//! told so as its prefetch (ActiveMQ `activemq.prefetchSize`, RabbitMQ `prefetch-count`); a broker that
//! ignores it is held off by not reading the socket until acks free room, while heart-beats still go out.
//! The push channel holds at least that many messages, so handing a message on never blocks the session.
//!
//! Acks carry the connection's generation: after a reconnect the broker redelivers what was not
//! acknowledged, and an ack meant for the old connection is dropped instead of confusing the new one.

use crate::config::BrokerUrl;
use crate::frame::{Frame, FrameError, Item, StompCodec, Version};
use connect_core::ConnectError;
use connect_kit::push_source::PushSender;
use connect_kit::{Backoff, BackoffPolicy};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// How long a clean stop waits for the broker to confirm it read every ack.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that lasted this long counts as working, even if no message came.
const HEALTHY_CONNECTION: Duration = Duration::from_secs(10);
/// How long connecting and the CONNECT/CONNECTED exchange may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The usual STOMP ports, named when a port answers with something else.
const STOMP_PORTS_HINT: &str = "use the broker's STOMP port: ActiveMQ and Artemis 61613 (stomp://; 61612 or 61614 for stomp+ssl:// when enabled), RabbitMQ 61613 with the rabbitmq_stomp plugin, Network Rail's feeds 61618";

/// What the session needs, fixed for the task's life.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub urls: Vec<BrokerUrl>,
    pub login: Option<String>,
    pub passcode: Option<String>,
    pub vhost: String,
    pub client_id: String,
    pub destination: String,
    pub subscription_id: String,
    /// `Some(name)`: a durable topic subscription of that name.
    pub durable: Option<String>,
    pub selector: Option<String>,
    pub max_pending: usize,
    pub heartbeat: Duration,
    pub max_frame_bytes: usize,
    pub max_retry: Duration,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A message handed to `poll`, with what acknowledging it takes.
#[derive(Debug)]
pub struct Message {
    pub frame: Frame,
    pub ack: AckHandle,
    /// The broker is ActiveMQ or Artemis, which send `content-length` on bytes messages only.
    pub typed_by_content_length: bool,
}

/// What `commit_record` sends back to acknowledge one message, on the connection it came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckHandle {
    generation: u64,
    frame: Option<Frame>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{url} does not speak STOMP: it answered with {what}; {STOMP_PORTS_HINT}")]
    NotStomp { url: BrokerUrl, what: String },
    #[error("{url} refused the STOMP connection: {message}")]
    Refused { url: BrokerUrl, message: String },
    #[error("{url} refused the subscription to {destination}: {message}")]
    SubscriptionRefused { url: BrokerUrl, destination: String, message: String },
    #[error("{url}: {message}")]
    Lost { url: BrokerUrl, message: String },
}

impl SessionError {
    fn lost(url: &BrokerUrl, message: impl Into<String>) -> Self {
        SessionError::Lost { url: url.clone(), message: message.into() }
    }
    fn from_frame_error(url: &BrokerUrl, e: FrameError) -> Self {
        match e {
            FrameError::NotStomp(what) => SessionError::NotStomp { url: url.clone(), what },
            other => SessionError::lost(url, other.to_string()),
        }
    }
    /// A refused CONNECT whose reason is the login: retrying with the same credentials cannot help.
    pub fn is_login_refused(&self) -> bool {
        let SessionError::Refused { message, .. } = self else { return false };
        let m = message.to_ascii_lowercase();
        ["password", "credential", "authenticat", "login", "not authorized", "unauthori", "access refused", "access denied"]
            .iter()
            .any(|w| m.contains(w))
    }
    /// Errors that reconnecting cannot fix.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SessionError::NotStomp { .. } | SessionError::SubscriptionRefused { .. })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open, subscribed connection.
pub struct Connection {
    url: BrokerUrl,
    framed: Framed<Box<dyn Io>, StompCodec>,
    version: Version,
    /// Negotiated heart-beats: how often we must send, how often the broker promised to.
    send_every: Option<Duration>,
    expect_every: Option<Duration>,
    receipt: String,
    typed_by_content_length: bool,
}

fn error_text(frame: &Frame) -> String {
    let body = String::from_utf8_lossy(&frame.body);
    let body = body.trim();
    match (frame.get("message"), body.is_empty()) {
        (Some(m), true) => m.to_string(),
        (Some(m), false) => format!("{m}: {}", body.chars().take(500).collect::<String>()),
        (None, _) => body.chars().take(500).collect(),
    }
}

/// `heart-beat: cx,cy` of CONNECTED against ours: (how often we send, how often the broker sends).
fn negotiate_heartbeats(ours: Duration, theirs: Option<&str>) -> (Option<Duration>, Option<Duration>) {
    let (sx, sy) = theirs
        .and_then(|h| h.split_once(','))
        .map(|(a, b)| (a.trim().parse::<u64>().unwrap_or(0), b.trim().parse::<u64>().unwrap_or(0)))
        .unwrap_or((0, 0));
    let ours = ours.as_millis() as u64;
    let pick = |a: u64, b: u64| (a > 0 && b > 0).then(|| Duration::from_millis(a.max(b)));
    (pick(ours, sy), pick(ours, sx))
}

async fn connect_stream(url: &BrokerUrl, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Box<dyn Io>, SessionError> {
    let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect((url.host.as_str(), url.port)))
        .await
        .map_err(|_| SessionError::lost(url, "TCP connect timed out"))?
        .map_err(|e| SessionError::lost(url, e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    if !url.tls {
        return Ok(Box::new(tcp));
    }
    let config = tls.cloned().ok_or_else(|| SessionError::lost(url, "TLS is not set up"))?;
    let name =
        rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|e| SessionError::lost(url, format!("server name: {e}")))?;
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| SessionError::lost(url, "TLS handshake timed out"))?
        .map_err(|e| SessionError::lost(url, format!("TLS handshake: {e}")))?;
    Ok(Box::new(stream))
}

/// Connect to one broker, CONNECT and SUBSCRIBE. The subscription's receipt is awaited in [`serve`].
pub async fn open(config: &SessionConfig, url: &BrokerUrl) -> Result<Connection, SessionError> {
    let stream = connect_stream(url, config.tls.as_ref()).await?;
    let mut framed = Framed::new(stream, StompCodec::new(config.max_frame_bytes));
    let hb = config.heartbeat.as_millis();
    let mut connect = Frame::new("CONNECT")
        .header("accept-version", "1.0,1.1,1.2")
        .header("host", config.vhost.clone())
        .header("heart-beat", format!("{hb},{hb}"))
        .header("client-id", config.client_id.clone());
    if let Some(login) = &config.login {
        connect = connect.header("login", login.clone());
    }
    if let Some(passcode) = &config.passcode {
        connect = connect.header("passcode", passcode.clone());
    }
    framed.send(Item::Frame(connect)).await.map_err(|e| SessionError::from_frame_error(url, e))?;
    let connected = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            match framed.next().await {
                None => {
                    return Err(SessionError::lost(url, format!("the connection closed without an answer to CONNECT; {STOMP_PORTS_HINT}")))
                }
                Some(Err(e)) => return Err(SessionError::from_frame_error(url, e)),
                Some(Ok(Item::Heartbeat)) => continue,
                Some(Ok(Item::Frame(f))) if f.command == "CONNECTED" => return Ok(f),
                Some(Ok(Item::Frame(f))) if f.command == "ERROR" => {
                    return Err(SessionError::Refused { url: url.clone(), message: error_text(&f) })
                }
                Some(Ok(Item::Frame(f))) => {
                    return Err(SessionError::lost(url, format!("answered CONNECT with {} instead of CONNECTED", f.command)))
                }
            }
        }
    })
    .await
    .map_err(|_| SessionError::lost(url, format!("no answer to CONNECT within {} s; {STOMP_PORTS_HINT}", HANDSHAKE_TIMEOUT.as_secs())))??;
    let version = Version::from_header(connected.get("version"));
    framed.codec_mut().set_version(version);
    let (send_every, expect_every) = negotiate_heartbeats(config.heartbeat, connected.get("heart-beat"));
    let receipt = format!("subscribe-{}", config.subscription_id);
    let prefetch = config.max_pending.to_string();
    let mut subscribe = Frame::new("SUBSCRIBE")
        .header("id", config.subscription_id.clone())
        .header("destination", config.destination.clone())
        // client-individual in 1.0 too (ActiveMQ and RabbitMQ take it there): 1.0's `client` acknowledges
        // everything before a message, which an out-of-order ack (behavior.on.error=IGNORE) must not do.
        .header("ack", "client-individual")
        .header("receipt", receipt.clone())
        .header("activemq.prefetchSize", prefetch.clone())
        .header("prefetch-count", prefetch);
    if let Some(selector) = &config.selector {
        subscribe = subscribe.header("selector", selector.clone());
    }
    if let Some(name) = &config.durable {
        // ActiveMQ: a durable subscriber is (client-id, subscriptionName); RabbitMQ: durable, not auto-deleted.
        subscribe = subscribe
            .header("activemq.subscriptionName", name.clone())
            .header("durable", "true")
            .header("auto-delete", "false")
            .header("persistent", "true");
    }
    framed.send(Item::Frame(subscribe)).await.map_err(|e| SessionError::from_frame_error(url, e))?;
    tracing::info!(
        broker = %url,
        version = %version,
        server = connected.get("server").unwrap_or("?"),
        heartbeat_send_ms = send_every.map(|d| d.as_millis() as u64),
        heartbeat_expect_ms = expect_every.map(|d| d.as_millis() as u64),
        destination = %config.destination,
        "connected to the STOMP broker"
    );
    let typed_by_content_length = connected.get("server").is_some_and(|s| s.starts_with("ActiveMQ"));
    Ok(Connection { url: url.clone(), framed, version, send_every, expect_every, receipt, typed_by_content_length })
}

/// The ACK frame for a MESSAGE, as the negotiated version wants it.
fn ack_frame(version: Version, message: &Frame) -> Option<Frame> {
    match version {
        Version::V1_2 => message.get("ack").map(|id| Frame::new("ACK").header("id", id)),
        Version::V1_1 => match (message.get("message-id"), message.get("subscription")) {
            (Some(id), Some(sub)) => Some(Frame::new("ACK").header("message-id", id).header("subscription", sub)),
            _ => None,
        },
        Version::V1_0 => message.get("message-id").map(|id| Frame::new("ACK").header("message-id", id)),
    }
}

/// How a connection ended.
enum Ended {
    /// The task stopped.
    Stopped,
    Lost(SessionError),
}

/// Run one subscribed connection until it is lost or the task stops; also says whether it delivered a
/// message.
async fn serve(
    conn: Connection,
    generation: u64,
    config: &SessionConfig,
    tx: &PushSender<Message>,
    acks: &mut mpsc::UnboundedReceiver<AckHandle>,
) -> (Ended, bool) {
    let mut delivered = false;
    let ended = serve_until_lost(conn, generation, config, tx, acks, &mut delivered).await;
    (ended, delivered)
}

async fn serve_until_lost(
    mut conn: Connection,
    generation: u64,
    config: &SessionConfig,
    tx: &PushSender<Message>,
    acks: &mut mpsc::UnboundedReceiver<AckHandle>,
    delivered: &mut bool,
) -> Ended {
    let url = conn.url.clone();
    let mut pending = 0usize;
    let mut subscribed = false;
    let mut last_read = Instant::now();
    let mut last_write = Instant::now();
    let tick_every = [conn.send_every, conn.expect_every]
        .into_iter()
        .flatten()
        .min()
        .map_or(Duration::from_secs(1), |d| (d / 4).max(Duration::from_millis(25)));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reading = pending < config.max_pending;
        tokio::select! {
            // Acks first: on stop, the acks the runtime queued while draining must go out before DISCONNECT.
            biased;
            ack = acks.recv() => {
                let Some(first) = ack else {
                    disconnect(&mut conn, acks, generation).await;
                    return Ended::Stopped;
                };
                // Send every ack that is waiting in one write.
                let mut next = Some(first);
                while let Some(ack) = next.take() {
                    if ack.generation == generation {
                        pending = pending.saturating_sub(1);
                        if let Some(frame) = ack.frame {
                            if let Err(e) = conn.framed.feed(Item::Frame(frame)).await {
                                return Ended::Lost(SessionError::lost(&url, format!("sending ACK: {e}")));
                            }
                        }
                    }
                    next = acks.try_recv().ok();
                }
                if let Err(e) = conn.framed.flush().await {
                    return Ended::Lost(SessionError::lost(&url, format!("sending ACK: {e}")));
                }
                last_write = Instant::now();
            }
            _ = tx.closed() => {
                disconnect(&mut conn, acks, generation).await;
                return Ended::Stopped;
            }
            item = conn.framed.next(), if reading => {
                last_read = Instant::now();
                let frame = match item {
                    None => return Ended::Lost(SessionError::lost(&url, "the broker closed the connection")),
                    Some(Err(e)) => return Ended::Lost(SessionError::from_frame_error(&url, e)),
                    Some(Ok(Item::Heartbeat)) => continue,
                    Some(Ok(Item::Frame(frame))) => frame,
                };
                match frame.command.as_str() {
                    "MESSAGE" => {
                        pending += 1;
                        *delivered = true;
                        let ack = AckHandle { generation, frame: ack_frame(conn.version, &frame) };
                        if tx.send(Message { frame, ack, typed_by_content_length: conn.typed_by_content_length }).await.is_err() {
                            disconnect(&mut conn, acks, generation).await;
                            return Ended::Stopped;
                        }
                    }
                    "RECEIPT" if frame.get("receipt-id") == Some(conn.receipt.as_str()) => {
                        subscribed = true;
                        tracing::info!(broker = %url, destination = %config.destination, durable = config.durable.is_some(), "STOMP subscription confirmed");
                    }
                    "ERROR" if !subscribed && generation == 1 => {
                        return Ended::Lost(SessionError::SubscriptionRefused {
                            url: url.clone(),
                            destination: config.destination.clone(),
                            message: error_text(&frame),
                        })
                    }
                    "ERROR" => return Ended::Lost(SessionError::lost(&url, format!("ERROR frame: {}", error_text(&frame)))),
                    other => tracing::debug!(command = other, "ignoring an unexpected STOMP frame"),
                }
            }
            _ = tick.tick() => {
                if let Some(every) = conn.send_every {
                    // Half the agreed interval, so timer granularity never makes one late.
                    if last_write.elapsed() >= every / 2 {
                        if let Err(e) = conn.framed.send(Item::Heartbeat).await {
                            return Ended::Lost(SessionError::lost(&url, format!("sending a heart-beat: {e}")));
                        }
                        last_write = Instant::now();
                    }
                }
                if !reading {
                    // Not reading while acks are due: silence is ours, not the broker's.
                    last_read = Instant::now();
                } else if let Some(every) = conn.expect_every {
                    if last_read.elapsed() > every * 2 + Duration::from_secs(1) {
                        return Ended::Lost(SessionError::lost(&url, format!("the broker sent nothing for {} ms (heart-beat {} ms)", last_read.elapsed().as_millis(), every.as_millis())));
                    }
                }
            }
        }
    }
}

/// Send the acks still queued for this connection, then DISCONNECT with a receipt, and read on until the
/// receipt comes: it proves the broker processed every ack before it. Closing earlier, with messages still
/// unread in our socket, would make the kernel reset the connection and the broker drop acks it had not
/// yet read (seen as duplicates after a clean stop). At most [`DISCONNECT_TIMEOUT`].
async fn disconnect(conn: &mut Connection, acks: &mut mpsc::UnboundedReceiver<AckHandle>, generation: u64) {
    let confirmed = tokio::time::timeout(DISCONNECT_TIMEOUT, async {
        while let Ok(ack) = acks.try_recv() {
            if let (true, Some(frame)) = (ack.generation == generation, ack.frame) {
                if conn.framed.feed(Item::Frame(frame)).await.is_err() {
                    return;
                }
            }
        }
        let bye = Frame::new("DISCONNECT").header("receipt", "disconnect");
        if conn.framed.send(Item::Frame(bye)).await.is_err() {
            return;
        }
        while let Some(Ok(item)) = conn.framed.next().await {
            if let Item::Frame(f) = item {
                if f.command == "RECEIPT" && f.get("receipt-id") == Some("disconnect") {
                    return;
                }
            }
        }
    })
    .await;
    if confirmed.is_err() {
        tracing::warn!(
            broker = %conn.url,
            "no receipt for DISCONNECT within {} s: the broker may deliver again messages whose acks it had not read",
            DISCONNECT_TIMEOUT.as_secs()
        );
    }
}

fn reconnect_policy(max_retry: Duration) -> BackoffPolicy {
    BackoffPolicy::exponential(Duration::from_millis(200), Duration::from_secs(10)).with_max_elapsed(max_retry)
}

/// Connect to the first broker that answers, in order.
pub async fn open_any(config: &SessionConfig, start_at: usize) -> Result<(Connection, usize), SessionError> {
    let mut last = None;
    for i in 0..config.urls.len() {
        let index = (start_at + i) % config.urls.len();
        match open(config, &config.urls[index]).await {
            Ok(conn) => return Ok((conn, index)),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to a STOMP broker");
                last = Some(e);
            }
        }
    }
    Err(last.expect("at least one URL"))
}

/// The session's life: serve the connection, reconnect when it is lost, give up after `max.retry.time`
/// without one (failing the task through the push channel). Ends when the task stops.
pub async fn run(
    config: SessionConfig,
    first: Option<(Connection, usize)>,
    tx: PushSender<Message>,
    mut acks: mpsc::UnboundedReceiver<AckHandle>,
) {
    let mut backoff = Backoff::new(reconnect_policy(config.max_retry));
    let mut generation = 0u64;
    let mut next = first;
    let mut url_index = 0usize;
    loop {
        let conn = match next.take() {
            Some((conn, index)) => {
                url_index = index;
                conn
            }
            None => match open_any(&config, url_index).await {
                Ok((conn, index)) => {
                    url_index = index;
                    conn
                }
                Err(e) if e.is_permanent() => {
                    tx.fail(ConnectError::fatal(e.to_string())).await;
                    return;
                }
                Err(e) => {
                    let Some(delay) = backoff.next_delay() else {
                        tx.fail(ConnectError::fatal(format!(
                            "no connection to a STOMP broker for {} ms (max.retry.time); last error: {e}",
                            config.max_retry.as_millis()
                        )))
                        .await;
                        return;
                    };
                    tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "no STOMP broker reachable; retrying");
                    tokio::select! {
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    url_index = (url_index + 1) % config.urls.len();
                    continue;
                }
            },
        };
        generation += 1;
        let connected_at = Instant::now();
        let (ended, delivered) = serve(conn, generation, &config, &tx, &mut acks).await;
        // Only a connection that worked clears the failures: one that a message kills at once (a frame over
        // stomp.max.frame.bytes, redelivered each time) must run into max.retry.time, not loop for ever.
        if delivered || connected_at.elapsed() >= HEALTHY_CONNECTION {
            backoff.reset();
        }
        match ended {
            Ended::Stopped => return,
            Ended::Lost(e) if e.is_permanent() => {
                tx.fail(ConnectError::fatal(e.to_string())).await;
                return;
            }
            Ended::Lost(e) => {
                tracing::warn!(error = %e, "STOMP connection lost; reconnecting (unacknowledged messages are redelivered by the broker)");
                url_index = (url_index + 1) % config.urls.len();
                let Some(delay) = backoff.next_delay() else {
                    tx.fail(ConnectError::fatal(format!(
                        "STOMP connections kept failing for {} ms (max.retry.time); last error: {e}",
                        config.max_retry.as_millis()
                    )))
                    .await;
                    return;
                };
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_negotiated_as_the_spec_says() {
        let ten = Duration::from_secs(10);
        assert_eq!(negotiate_heartbeats(ten, Some("0,0")), (None, None));
        assert_eq!(negotiate_heartbeats(ten, Some("5000,20000")), (Some(Duration::from_secs(20)), Some(ten)));
        assert_eq!(negotiate_heartbeats(Duration::ZERO, Some("5000,5000")), (None, None));
        assert_eq!(negotiate_heartbeats(ten, None), (None, None));
    }

    fn test_config(port: u16) -> SessionConfig {
        SessionConfig {
            urls: vec![BrokerUrl { tls: false, host: "127.0.0.1".into(), port }],
            login: None,
            passcode: None,
            vhost: "/".into(),
            client_id: "t".into(),
            destination: "/queue/q".into(),
            subscription_id: "s".into(),
            durable: None,
            selector: None,
            max_pending: 10,
            heartbeat: Duration::from_millis(100),
            max_frame_bytes: 1 << 20,
            max_retry: Duration::from_secs(30),
            tls: None,
        }
    }

    /// A broker that promises heart-beats, confirms the subscription, then goes silent (a half-open TCP
    /// connection looks like this): the session gives it up within two intervals and connects again.
    #[tokio::test]
    async fn a_silent_broker_is_detected_and_reconnected() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await; // CONNECT
                socket.write_all(b"CONNECTED\nversion:1.2\nheart-beat:100,100\n\n\0").await.unwrap();
                let _ = socket.read(&mut buf).await; // SUBSCRIBE
                socket.write_all(b"RECEIPT\nreceipt-id:subscribe-s\n\n\0").await.unwrap();
                accepted_tx.send(std::time::Instant::now()).unwrap();
                held.push(socket); // open, and silent from now on
            }
        });
        let (tx, _rx) = connect_kit::push_source::channel(16, 16, Duration::from_millis(100));
        let (_ack_tx, ack_rx) = mpsc::unbounded_channel();
        let session = tokio::spawn(run(test_config(port), None, tx, ack_rx));
        let first = tokio::time::timeout(Duration::from_secs(5), accepted.recv()).await.unwrap().unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), accepted.recv()).await.expect("reconnected").unwrap();
        let gap = second - first;
        assert!(gap >= Duration::from_millis(200), "not before two heart-beat intervals of silence: {gap:?}");
        session.abort();
    }

    /// The first answer decides: a port that speaks another protocol is a permanent error naming it.
    #[tokio::test]
    async fn a_foreign_protocol_is_a_permanent_error() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(b"AMQP\0\0\x09\x01").await.unwrap();
        });
        let err = open(&test_config(port), &test_config(port).urls[0]).await.err().expect("an error");
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("AMQP") && err.to_string().contains("61613"), "{err}");
    }

    #[test]
    fn acks_follow_the_version() {
        let m = Frame::new("MESSAGE").header("message-id", "m1").header("subscription", "s").header("ack", "a1");
        assert_eq!(ack_frame(Version::V1_2, &m).unwrap().get("id"), Some("a1"));
        let v11 = ack_frame(Version::V1_1, &m).unwrap();
        assert_eq!((v11.get("message-id"), v11.get("subscription")), (Some("m1"), Some("s")));
        assert_eq!(ack_frame(Version::V1_0, &m).unwrap().get("message-id"), Some("m1"));
    }
}
