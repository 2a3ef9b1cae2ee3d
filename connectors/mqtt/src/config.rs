//! Config keys of the MQTT source, named and defaulted as Confluent's connector does; TLS uses PEM files
//! instead of Java trust and key stores.

use connect_core::config::ConfigValue;
use connect_core::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};

pub const SERVER_URI: &str = "mqtt.server.uri";
pub const TOPICS: &str = "mqtt.topics";
pub const KAFKA_TOPIC: &str = "kafka.topic";
pub const QOS: &str = "mqtt.qos";
pub const CLEAN_SESSION: &str = "mqtt.clean.session.enabled";
pub const USERNAME: &str = "mqtt.username";
pub const PASSWORD: &str = "mqtt.password";
pub const KEEPALIVE: &str = "mqtt.keepalive.interval.seconds";
pub const CONNECT_TIMEOUT: &str = "mqtt.connect.timeout.seconds";
pub const MAX_RETRY_TIME: &str = "max.retry.time.ms";
pub const SSL_CA: &str = "mqtt.ssl.ca.file";
pub const SSL_CERT: &str = "mqtt.ssl.cert.file";
pub const SSL_KEY: &str = "mqtt.ssl.key.file";
pub const BUFFER_SIZE: &str = "records.buffer.queue.size";
pub const MAX_BATCH: &str = "records.buffer.queue.max.batch.size";
pub const EMPTY_TIMEOUT: &str = "records.buffer.queue.empty.timeout";
/// Set by the connector in each task's config: which client id suffix the task uses.
pub const TASK_INDEX: &str = "mqtt.task.index";
/// The placeholder in `kafka.topic` that routes per MQTT topic.
pub const TOPIC_PLACEHOLDER: &str = "${mqtt.topic}";

/// A parsed server URI: scheme, host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUri {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `ws://` / `wss://`: the whole URL (with its path, e.g. `/mqtt`), which the WebSocket handshake needs.
    pub websocket: Option<String>,
}

/// `tcp://host:port` or `ssl://host:port` (also `mqtt://`, `mqtts://`), or a WebSocket URL `ws://host:port/path`
/// / `wss://host:port/path`.
pub fn parse_uri(uri: &str) -> Result<ServerUri, String> {
    let uri = uri.trim();
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| format!("'{uri}' has no scheme: use tcp://host:port or ssl://host:port"))?;
    let (tls, websocket) = match scheme.to_ascii_lowercase().as_str() {
        "tcp" | "mqtt" => (false, false),
        "ssl" | "tls" | "mqtts" => (true, false),
        "ws" => (false, true),
        "wss" => (true, true),
        other => return Err(format!("'{uri}': unknown scheme {other}; use tcp://, ssl://, ws:// or wss://")),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("'{uri}': invalid port {p}"))?),
        None => (
            authority,
            match (tls, websocket) {
                (false, false) => 1883,
                (true, false) => 8883,
                (false, true) => 80,
                (true, true) => 443,
            },
        ),
    };
    if host.is_empty() {
        return Err(format!("'{uri}' has no host"));
    }
    // rumqttc takes a WebSocket URL whole and reads the port from it: make the port explicit.
    let websocket = websocket.then(|| {
        let path = &rest[authority.len()..];
        format!("{}://{}:{port}{}", scheme.to_ascii_lowercase(), host, if path.is_empty() { "/" } else { path })
    });
    Ok(ServerUri { tls, host: host.trim_matches(['[', ']']).to_string(), port, websocket })
}

/// Does an MQTT topic filter look right (`+` a whole level, `#` last)?
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == levels.len() - 1,
        "+" => true,
        other => !other.contains('#') && !other.contains('+'),
    })
}

pub fn def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::required(
                SERVER_URI,
                ConfigType::List,
                Importance::High,
                "MQTT brokers to connect to, tried in order: tcp://host:port, ssl://host:port, ws://host:port/path or wss://host:port/path.",
            )
            .validator(Validator::custom(|v| match v {
                ConfigValue::List(l) if l.is_empty() => Err("at least one server URI is required".into()),
                ConfigValue::List(l) => l.iter().try_for_each(|u| parse_uri(u).map(|_| ())),
                _ => Ok(()),
            })
            .described("non-empty list of tcp://, ssl://, ws:// or wss:// URIs"))
            .group("Connection", 1),
        )
        .define(
            ConfigKey::required(
                TOPICS,
                ConfigType::List,
                Importance::High,
                "MQTT topics (filters; + and # wildcards allowed) to subscribe to.",
            )
            .validator(Validator::custom(|v| match v {
                ConfigValue::List(l) if l.is_empty() => Err("at least one MQTT topic is required".into()),
                ConfigValue::List(l) => match l.iter().find(|t| !valid_filter(t)) {
                    Some(bad) => Err(format!("'{bad}' is not a valid MQTT topic filter")),
                    None => Ok(()),
                },
                _ => Ok(()),
            })
            .described("non-empty list of MQTT topic filters"))
            .group("Source", 1),
        )
        .define(
            ConfigKey::new(
                KAFKA_TOPIC,
                ConfigType::String,
                Some("mqtt"),
                Importance::High,
                "Kafka topic to write to; ${mqtt.topic} is replaced by the MQTT topic a message came on ('/' becomes '.').",
            )
            .validator(Validator::NonEmptyString)
            .group("Source", 2),
        )
        .define(
            ConfigKey::new(
                QOS,
                ConfigType::Int,
                Some("0"),
                Importance::Medium,
                "Subscription QoS: 0, 1 or 2. With 1 and 2 a message is acknowledged only after Kafka has its record.",
            )
            .validator(Validator::between(0.0, 2.0))
            .group("Source", 3),
        )
        .define(
            ConfigKey::new(
                CLEAN_SESSION,
                ConfigType::Boolean,
                Some("true"),
                Importance::Medium,
                "false: persistent sessions with a stable client id per task, so messages sent while the worker is down arrive later.",
            )
            .group("Connection", 2),
        )
        .define(ConfigKey::new(USERNAME, ConfigType::String, None, Importance::Medium, "User name.").group("Connection", 3))
        .define(ConfigKey::new(PASSWORD, ConfigType::Password, None, Importance::Medium, "Password.").group("Connection", 4))
        .define(
            ConfigKey::new(KEEPALIVE, ConfigType::Int, Some("60"), Importance::Low, "Keep-alive interval in seconds.")
                .validator(Validator::between(1.0, 65535.0))
                .group("Connection", 5),
        )
        .define(
            ConfigKey::new(CONNECT_TIMEOUT, ConfigType::Int, Some("30"), Importance::Low, "Connection timeout in seconds.")
                .validator(Validator::at_least(1.0))
                .group("Connection", 6),
        )
        .define(
            ConfigKey::new(
                MAX_RETRY_TIME,
                ConfigType::Long,
                Some("30000"),
                Importance::Medium,
                "How long to keep reconnecting before the task fails (ms).",
            )
            .validator(Validator::at_least(0.0))
            .group("Connection", 7),
        )
        .define(
            ConfigKey::new(SSL_CA, ConfigType::String, None, Importance::Medium, "PEM file of CA certificates to trust (ssl:// URIs).")
                .group("TLS", 1),
        )
        .define(
            ConfigKey::new(SSL_CERT, ConfigType::String, None, Importance::Medium, "PEM client certificate (mutual TLS).").group("TLS", 2),
        )
        .define(
            ConfigKey::new(SSL_KEY, ConfigType::String, None, Importance::Medium, "PEM client private key (mutual TLS).").group("TLS", 3),
        )
        .define(
            ConfigKey::new(
                BUFFER_SIZE,
                ConfigType::Int,
                Some("50000"),
                Importance::Low,
                "Messages buffered between the MQTT client and Kafka; when full, the connector stops reading from the broker.",
            )
            .validator(Validator::at_least(1.0))
            .group("Source", 4),
        )
        .define(
            ConfigKey::new(MAX_BATCH, ConfigType::Int, Some("4096"), Importance::Low, "Most records returned by one poll.")
                .validator(Validator::at_least(1.0))
                .group("Source", 5),
        )
        .define(
            ConfigKey::new(
                EMPTY_TIMEOUT,
                ConfigType::Long,
                Some("100"),
                Importance::Low,
                "How long a poll waits for a first message (ms).",
            )
            .validator(Validator::at_least(0.0))
            .group("Source", 6),
        )
        .define(ConfigKey::new(
            TASK_INDEX,
            ConfigType::Int,
            Some("0"),
            Importance::Low,
            "Set by the connector: the task's index, part of its client id.",
        ))
}

/// The Kafka topic for a message that came on `mqtt_topic`.
pub fn kafka_topic_for(pattern: &str, mqtt_topic: &str) -> String {
    if !pattern.contains(TOPIC_PLACEHOLDER) {
        return pattern.to_string();
    }
    let safe: String = mqtt_topic
        .chars()
        .map(|c| {
            if c == '/' {
                '.'
            } else if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    pattern.replace(TOPIC_PLACEHOLDER, &safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::Config;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri("tcp://127.0.0.1:1883").unwrap(),
            ServerUri { tls: false, host: "127.0.0.1".into(), port: 1883, websocket: None }
        );
        assert_eq!(parse_uri("ssl://broker").unwrap().port, 8883);
        assert!(parse_uri("127.0.0.1:1883").is_err());
        assert_eq!(parse_uri("ws://h/mqtt").unwrap().websocket.as_deref(), Some("ws://h:80/mqtt"));
        let wss = parse_uri("wss://broker.example:8884/mqtt").unwrap();
        assert_eq!((wss.tls, wss.port, wss.websocket.as_deref()), (true, 8884, Some("wss://broker.example:8884/mqtt")));
        assert!(parse_uri("tcp://h:99999").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let infos = def().validate("mqtt", &cfg(&[(SERVER_URI, "tcp://h:1883"), (TOPICS, "a/#/b"), (QOS, "3")]));
        let errors = infos.errors();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|(k, m)| k == TOPICS && m.contains("not a valid MQTT topic filter")));
        assert!(errors.iter().any(|(k, m)| k == QOS && m.contains("no more than 2")));
        let infos = def().validate("mqtt", &cfg(&[(SERVER_URI, "nonsense"), (TOPICS, "")]));
        assert_eq!(infos.error_count, 2, "{:?}", infos.errors());
        assert!(def().parse(&cfg(&[(SERVER_URI, "tcp://127.0.0.1:1883"), (TOPICS, "sockfound,garden/+/count")])).is_ok());
    }

    #[test]
    fn topic_routing() {
        assert_eq!(kafka_topic_for("data_mqtt", "sockfound"), "data_mqtt");
        assert_eq!(kafka_topic_for("mqtt.${mqtt.topic}", "garden/cam 1/count"), "mqtt.garden.cam_1.count");
    }
}
