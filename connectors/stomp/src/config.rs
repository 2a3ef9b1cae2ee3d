//! Config keys of the STOMP source: Confluent's ActiveMQ source keys (`activemq.*`, `jms.*`, `kafka.topic`,
//! `batch.size`, `max.pending.messages`, ...), plus a few `stomp.*` keys of our own for what STOMP has and JMS
//! hides (heart-beats, the virtual host, the largest frame, a CA file for TLS).

use connect_core::config::ConfigValue;
use connect_core::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};

pub const URL: &str = "activemq.url";
pub const USERNAME: &str = "activemq.username";
pub const PASSWORD: &str = "activemq.password";
pub const DESTINATION_NAME: &str = "jms.destination.name";
pub const DESTINATION_TYPE: &str = "jms.destination.type";
pub const KAFKA_TOPIC: &str = "kafka.topic";
pub const BATCH_SIZE: &str = "batch.size";
pub const MAX_PENDING: &str = "max.pending.messages";
pub const DURABLE: &str = "jms.subscription.durable";
pub const SUBSCRIPTION_NAME: &str = "jms.subscription.name";
pub const CLIENT_ID: &str = "jms.client.id";
pub const SELECTOR: &str = "jms.message.selector";
pub const CHARACTER_ENCODING: &str = "character.encoding";
pub const MAX_RETRY_TIME: &str = "max.retry.time";
pub const BEHAVIOR_ON_ERROR: &str = "behavior.on.error";
pub const PERMISSIVE_SCHEMA: &str = "use.permissive.schema";
pub const HEARTBEAT_MS: &str = "stomp.heartbeat.ms";
pub const VHOST: &str = "stomp.vhost";
pub const MAX_FRAME_BYTES: &str = "stomp.max.frame.bytes";
pub const SSL_CA: &str = "stomp.ssl.ca.file";
/// Set by the connector in each task's config: the task's index, part of its client id.
pub const TASK_INDEX: &str = "stomp.task.index";

/// Keys of Confluent's connector that tune its JMS client loop; the STOMP session has no use for them.
pub const ACCEPTED_AND_IGNORED: &[(&str, &str)] = &[
    ("max.poll.duration", "60000"),
    ("jms.receive.block.duration", "5000"),
    ("initial.poll.wait.time.ms", "5000"),
    ("max.record.commit.timeout", "600000"),
];

/// The port a STOMP URL means when it names none.
pub const DEFAULT_PORT: u16 = 61613;

/// One broker address of `activemq.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", if self.tls { "stomp+ssl" } else { "stomp" }, self.host, self.port)
    }
}

/// `activemq.url`: one URL, a comma-separated list, or ActiveMQ's `failover:(url1,url2)?options`; tried in
/// order. `tcp://`, `stomp://` and `stomp+nio://` are STOMP; `ssl://` and `stomp+ssl://` STOMP over TLS.
pub fn parse_urls(value: &str) -> Result<Vec<BrokerUrl>, String> {
    let mut inner = value.trim();
    if let Some(rest) = inner.strip_prefix("failover:") {
        let rest = rest.trim();
        inner = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map(|(list, _options)| list).ok_or_else(|| format!("'{value}': failover:( without )"))?,
            None => rest.split('?').next().unwrap_or(""),
        };
    }
    let urls: Vec<BrokerUrl> = inner.split(',').map(str::trim).filter(|u| !u.is_empty()).map(parse_url).collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err("activemq.url names no broker".into());
    }
    Ok(urls)
}

fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| format!("'{url}' has no scheme: use tcp://host:61613 or stomp://host:61613"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "tcp" | "stomp" | "stomp+nio" => false,
        "ssl" | "stomp+ssl" | "stomp+nio+ssl" | "stomps" => true,
        other => return Err(format!("'{url}': scheme {other} is not STOMP; use tcp://, stomp://, ssl:// or stomp+ssl://")),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("'{url}': invalid port {p}"))?),
        None => (authority, DEFAULT_PORT),
    };
    if host.is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    Ok(BrokerUrl { tls, host: host.trim_matches(['[', ']']).to_string(), port })
}

/// The STOMP destination for a JMS destination name and type: `/queue/NAME` or `/topic/NAME`; a name that
/// already starts with `/` (RabbitMQ's `/exchange/...`, `/amq/queue/...`) is taken as it is.
pub fn stomp_destination(name: &str, kind: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{}/{name}", kind.to_ascii_lowercase())
    }
}

pub fn def() -> ConfigDef {
    let mut def = ConfigDef::new()
        .define(
            ConfigKey::required(
                URL,
                ConfigType::String,
                Importance::High,
                "The broker's STOMP address: stomp://host:61613 or tcp://host:61613 (ssl:// or stomp+ssl:// for TLS); several, comma-separated or as failover:(url1,url2), are tried in order.",
            )
            .validator(Validator::custom(|v| match v {
                ConfigValue::String(s) => parse_urls(s).map(|_| ()),
                _ => Ok(()),
            })
            .described("STOMP URLs: tcp://, stomp://, ssl:// or stomp+ssl://, or failover:(...)"))
            .group("Connection", 1),
        )
        .define(ConfigKey::new(USERNAME, ConfigType::String, None, Importance::High, "The STOMP login.").group("Connection", 2))
        .define(ConfigKey::new(PASSWORD, ConfigType::Password, None, Importance::High, "The STOMP passcode.").group("Connection", 3))
        .define(
            ConfigKey::required(DESTINATION_NAME, ConfigType::String, Importance::High, "The queue or topic to read.")
                .validator(Validator::NonEmptyString)
                .group("Source", 1),
        )
        .define(
            ConfigKey::new(DESTINATION_TYPE, ConfigType::String, Some("queue"), Importance::High, "queue or topic.")
                .validator(Validator::OneOf(vec!["queue", "topic"]))
                .group("Source", 2),
        )
        .define(
            ConfigKey::required(KAFKA_TOPIC, ConfigType::String, Importance::High, "The Kafka topic to write to.")
                .validator(Validator::NonEmptyString)
                .group("Source", 3),
        )
        .define(
            ConfigKey::new(BATCH_SIZE, ConfigType::Int, Some("1024"), Importance::Low, "Most records one poll returns.")
                .validator(Validator::at_least(1.0))
                .group("Source", 4),
        )
        .define(
            ConfigKey::new(
                MAX_PENDING,
                ConfigType::Int,
                Some("4096"),
                Importance::Low,
                "Most messages received but not yet acknowledged (acknowledged once Kafka has their records); also the most duplicates a crash can cause. Sent to the broker as its prefetch (activemq.prefetchSize, prefetch-count).",
            )
            .validator(Validator::between(1.0, 65535.0))
            .group("Source", 5),
        )
        .define(
            ConfigKey::new(
                DURABLE,
                ConfigType::Boolean,
                Some("false"),
                Importance::Medium,
                "Durable topic subscription: messages published while the worker is down wait in the broker.",
            )
            .group("Source", 6),
        )
        .define(
            ConfigKey::new(
                SUBSCRIPTION_NAME,
                ConfigType::String,
                None,
                Importance::Medium,
                "The durable subscription's name (default: the connector's name).",
            )
            .group("Source", 7),
        )
        .define(
            ConfigKey::new(
                CLIENT_ID,
                ConfigType::String,
                None,
                Importance::Medium,
                "The client id sent on CONNECT (a durable subscription is tied to it; default: connect-rs-<connector>).",
            )
            .group("Source", 8),
        )
        .define(
            ConfigKey::new(
                SELECTOR,
                ConfigType::String,
                None,
                Importance::Medium,
                "A JMS message selector (ActiveMQ and Artemis apply it; RabbitMQ has none and refuses nothing).",
            )
            .group("Source", 9),
        )
        .define(
            ConfigKey::new(
                CHARACTER_ENCODING,
                ConfigType::String,
                Some("UTF-8"),
                Importance::Low,
                "The character set of text messages (a Java or WHATWG name: UTF-8, ISO-8859-1, windows-1252, ...).",
            )
            .validator(Validator::custom(|v| match v {
                ConfigValue::String(s) if encoding_rs::Encoding::for_label(s.trim().as_bytes()).is_none() => {
                    Err(format!("unknown character set {s}"))
                }
                _ => Ok(()),
            })
            .described("a character set name"))
            .group("Source", 10),
        )
        .define(
            ConfigKey::new(
                MAX_RETRY_TIME,
                ConfigType::Long,
                Some("3600000"),
                Importance::Low,
                "How long to keep reconnecting to a lost broker before the task fails (ms).",
            )
            .validator(Validator::at_least(0.0))
            .group("Connection", 4),
        )
        .define(
            ConfigKey::new(
                BEHAVIOR_ON_ERROR,
                ConfigType::String,
                Some("FAIL"),
                Importance::Low,
                "A message that cannot become a record (no message-id without use.permissive.schema): FAIL the task, or IGNORE it (logged and acknowledged).",
            )
            .validator(Validator::OneOf(vec!["FAIL", "IGNORE"]))
            .group("Source", 11),
        )
        .define(
            ConfigKey::new(PERMISSIVE_SCHEMA, ConfigType::Boolean, Some("false"), Importance::Low, "Allow messages without a message-id.")
                .group("Source", 12),
        )
        .define(
            ConfigKey::new(
                HEARTBEAT_MS,
                ConfigType::Int,
                Some("10000"),
                Importance::Low,
                "STOMP heart-beat interval offered both ways (ms; 0: none). A broker silent for two intervals is taken as lost and reconnected.",
            )
            .validator(Validator::at_least(0.0))
            .group("Connection", 5),
        )
        .define(
            ConfigKey::new(VHOST, ConfigType::String, Some("/"), Importance::Low, "The host header of CONNECT (RabbitMQ's virtual host).")
                .group("Connection", 6),
        )
        .define(
            ConfigKey::new(MAX_FRAME_BYTES, ConfigType::Int, Some("67108864"), Importance::Low, "The largest frame accepted (bytes).")
                .validator(Validator::at_least(1024.0))
                .group("Connection", 7),
        )
        .define(
            ConfigKey::new(SSL_CA, ConfigType::String, None, Importance::Low, "PEM file of CA certificates to trust for TLS URLs (default: the Mozilla roots).")
                .group("Connection", 8),
        )
        .define(ConfigKey::new(TASK_INDEX, ConfigType::Int, Some("0"), Importance::Low, "Set by the connector: the task's index."));
    for (key, default) in ACCEPTED_AND_IGNORED {
        def = def.define(ConfigKey::new(
            key,
            ConfigType::Long,
            Some(default),
            Importance::Low,
            "Accepted for compatibility with Confluent's connector; the STOMP session does not need it.",
        ));
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::Config;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_urls("tcp://datafeeds.networkrail.co.uk:61619").unwrap(),
            vec![BrokerUrl { tls: false, host: "datafeeds.networkrail.co.uk".into(), port: 61619 }]
        );
        let failover = parse_urls("failover:(stomp://a:61613,stomp+ssl://b)?randomize=false").unwrap();
        assert_eq!(failover.len(), 2);
        assert_eq!((failover[1].tls, failover[1].port), (true, DEFAULT_PORT));
        assert_eq!(parse_urls("stomp://a, stomp://b:1").unwrap().len(), 2);
        assert!(parse_urls("amqp://a:5672").unwrap_err().contains("not STOMP"));
        assert!(parse_urls("a:61613").is_err());
        assert!(parse_urls("").is_err());
    }

    #[test]
    fn destinations() {
        assert_eq!(stomp_destination("TRAIN_MVT_EA_TOC", "topic"), "/topic/TRAIN_MVT_EA_TOC");
        assert_eq!(stomp_destination("orders", "QUEUE"), "/queue/orders");
        assert_eq!(stomp_destination("/exchange/amq.fanout", "topic"), "/exchange/amq.fanout");
    }

    #[test]
    fn the_network_rail_config_validates() {
        let c = cfg(&[
            (URL, "tcp://datafeeds.networkrail.co.uk:61619"),
            (USERNAME, "u"),
            (PASSWORD, "p"),
            (DESTINATION_TYPE, "topic"),
            (DESTINATION_NAME, "TRAIN_MVT_EA_TOC"),
            (KAFKA_TOPIC, "networkrail_TRAIN_MVT"),
        ]);
        let infos = def().validate("activemq", &c);
        assert_eq!(infos.error_count, 0, "{:?}", infos.errors());
        let bad = cfg(&[(URL, "amqp://x"), (DESTINATION_NAME, "q"), (KAFKA_TOPIC, "t"), (CHARACTER_ENCODING, "klingon")]);
        let errors = def().validate("activemq", &bad).errors();
        assert!(errors.iter().any(|(k, _)| k == URL), "{errors:?}");
        assert!(errors.iter().any(|(k, _)| k == CHARACTER_ENCODING), "{errors:?}");
    }
}
