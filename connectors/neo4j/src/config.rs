//! The keys of both Neo4j sink connectors, parsed once at start into one [`Neo4jSinkConfig`]:
//!
//! - the legacy `streams.kafka.connect.sink.Neo4jSinkConnector` (neo4j-streams: `neo4j.server.uri`,
//!   `neo4j.topic.cypher.<topic>`, `neo4j.batch.size`, `neo4j.retry.max.attemps` with its typo, ...), where the
//!   query sees each record's value as `event`;
//! - the current `org.neo4j.connectors.kafka.sink.Neo4jConnector` (`neo4j.uri`, `neo4j.cypher.topic.<topic>`,
//!   `neo4j.batch-size`, `neo4j.eos-offset-label`, ...), where the query sees `__value`, `__key`, `__header`,
//!   `__timestamp` and, by default, `event`.
//!
//! Each class documents its own keys; a config of one family given to the other class still parses (people
//! move between them), the class only decides the defaults of the bindings. The other ingestion strategies
//! (pattern, CDC, CUD) are refused with a message naming the key, rather than ignored.

use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, Result, Validator};
use connect_kit::{BackoffPolicy, Jitter};
use std::collections::BTreeMap;
use std::time::Duration;

// The legacy connector (neo4j-streams' kafka-connect-neo4j).
pub const SERVER_URI: &str = "neo4j.server.uri";
pub const BATCH_SIZE_LEGACY: &str = "neo4j.batch.size";
pub const BATCH_TIMEOUT_LEGACY: &str = "neo4j.batch.timeout.msecs";
pub const BATCH_PARALLELIZE: &str = "neo4j.batch.parallelize";
pub const RETRY_BACKOFF_LEGACY: &str = "neo4j.retry.backoff.msecs";
/// Sic: the real key has the typo.
pub const RETRY_MAX_ATTEMPTS_LEGACY: &str = "neo4j.retry.max.attemps";
pub const ENCRYPTION_ENABLED: &str = "neo4j.encryption.enabled";
pub const ENCRYPTION_TRUST: &str = "neo4j.encryption.trust.strategy";
pub const ENCRYPTION_CA: &str = "neo4j.encryption.ca.certificate.path";
pub const POOL_SIZE_LEGACY: &str = "neo4j.connection.max.pool.size";
pub const TOPIC_CYPHER_LEGACY: &str = "neo4j.topic.cypher.";

// The current connector (neo4j/neo4j-kafka-connector 5.x).
pub const URI: &str = "neo4j.uri";
pub const BATCH_SIZE: &str = "neo4j.batch-size";
pub const BATCH_TIMEOUT: &str = "neo4j.batch-timeout";
pub const MAX_RETRY_TIME: &str = "neo4j.max-retry-time";
pub const MAX_RETRY_ATTEMPTS: &str = "neo4j.max-retry-attempts";
pub const SECURITY_ENCRYPTED: &str = "neo4j.security.encrypted";
pub const POOL_SIZE: &str = "neo4j.pool.max-connection-pool-size";
pub const TOPIC_CYPHER: &str = "neo4j.cypher.topic.";
pub const BIND_HEADER_AS: &str = "neo4j.cypher.bind-header-as";
pub const BIND_KEY_AS: &str = "neo4j.cypher.bind-key-as";
pub const BIND_VALUE_AS: &str = "neo4j.cypher.bind-value-as";
pub const BIND_TIMESTAMP_AS: &str = "neo4j.cypher.bind-timestamp-as";
pub const BIND_VALUE_AS_EVENT: &str = "neo4j.cypher.bind-value-as-event";
pub const EOS_OFFSET_LABEL: &str = "neo4j.eos-offset-label";

// Both.
pub const DATABASE: &str = "neo4j.database";
pub const AUTH_TYPE: &str = "neo4j.authentication.type";
pub const USERNAME: &str = "neo4j.authentication.basic.username";
pub const PASSWORD: &str = "neo4j.authentication.basic.password";
pub const REALM: &str = "neo4j.authentication.basic.realm";

/// Keys that give topics to ingestion strategies this sink does not have: a config that gives one a topic is
/// refused naming the key (the strategies' other settings, and these keys left empty, are harmless).
const UNSUPPORTED_STRATEGY_PREFIXES: &[&str] = &["neo4j.topic.pattern.node.", "neo4j.topic.pattern.relationship.", "neo4j.pattern.topic."];
const UNSUPPORTED_STRATEGY_KEYS: &[&str] = &[
    "neo4j.topic.cdc.sourceId",
    "neo4j.topic.cdc.schema",
    "neo4j.topic.cud",
    "neo4j.cdc.source-id.topics",
    "neo4j.cdc.schema.topics",
    "neo4j.cud.topics",
];

/// The first wait of both retry schedules; they double from here.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Which connector class the config was written for: it decides how a record is bound in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `UNWIND $events AS event <cypher>`: `event` is the record's value.
    Legacy,
    /// `UNWIND $events AS message WITH message.value AS event, message.key AS __key, ... <cypher>`.
    Current,
}

/// The names a record's parts get in the query (the current connector's `neo4j.cypher.bind-*-as`); an empty
/// name leaves that part out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bindings {
    pub value_as_event: bool,
    pub value: String,
    pub key: String,
    pub header: String,
    pub timestamp: String,
}

#[derive(Debug, Clone)]
pub struct Neo4jSinkConfig {
    pub flavour: Flavour,
    /// `bolt://`, `bolt+s://`, `neo4j://` ... (the first of `neo4j.uri`'s list; routing is not followed).
    pub uri: String,
    /// Empty: `neo4j` (what neo4rs asks for without one).
    pub database: String,
    /// `None`: no authentication.
    pub credentials: Option<(String, String)>,
    /// A PEM file of CA certificates trusted besides the system's (`neo4j.encryption.ca.certificate.path`).
    pub ca_file: Option<String>,
    pub pool_size: usize,
    /// Records per `UNWIND` (and per transaction).
    pub batch_size: usize,
    /// The longest a transaction may take before it is abandoned and retried; zero: the sink's own deadline.
    pub batch_timeout: Duration,
    /// Waits while the server cannot be reached or serve (no limit on attempts).
    pub outage_backoff: BackoffPolicy,
    /// Waits after a transient error; when it gives up, the task fails.
    pub transient_backoff: BackoffPolicy,
    /// Retries of a batch the server answers with a transient error (for messages).
    pub retry_max_attempts: u32,
    /// The Cypher of each topic, as the user wrote it.
    pub topics: BTreeMap<String, String>,
    pub bindings: Bindings,
    /// `neo4j.eos-offset-label`: store the next offset per partition in the graph, in each batch's transaction.
    pub eos_label: Option<String>,
}

pub fn def(flavour: Flavour) -> ConfigDef {
    let key = |name: &str, kind, default: Option<&str>, doc: &str| ConfigKey::new(name, kind, default, Importance::Medium, doc);
    let both = ConfigDef::new()
        .define(key(DATABASE, ConfigType::String, Some(""), "Database to write to (empty: `neo4j`)."))
        .define(
            key(AUTH_TYPE, ConfigType::String, Some("BASIC"), "BASIC or NONE (KERBEROS, BEARER and CUSTOM are not supported).")
                .validator(Validator::OneOf(vec!["basic", "none", "kerberos", "bearer", "custom"])),
        )
        .define(key(USERNAME, ConfigType::String, Some("neo4j"), "User for basic authentication."))
        .define(key(PASSWORD, ConfigType::Password, Some(""), "Password for basic authentication."))
        .define(key(REALM, ConfigType::String, Some(""), "Accepted; Bolt's basic authentication here does not send a realm."));
    match flavour {
        Flavour::Legacy => both
            .define(
                ConfigKey::new(SERVER_URI, ConfigType::String, Some("bolt://localhost:7687"), Importance::High, "Bolt URI of the server.")
                    .validator(Validator::NonEmptyString),
            )
            .define(key(
                "neo4j.topic.cypher.<topic>",
                ConfigType::String,
                None,
                "The Cypher template of a topic, one key per topic: it runs as `UNWIND $events AS event <template>`, `event` being the record's value.",
            ))
            .define(key(BATCH_SIZE_LEGACY, ConfigType::Int, Some("1000"), "Records per UNWIND batch (one transaction).").validator(Validator::at_least(1.0)))
            .define(key(
                BATCH_TIMEOUT_LEGACY,
                ConfigType::Long,
                Some("0"),
                "Longest time a batch's transaction may take, in ms, before it is abandoned and retried (0: no limit).",
            ))
            .define(key(BATCH_PARALLELIZE, ConfigType::Boolean, Some("true"), "Accepted; batches run in order, so a partition's events apply in offset order."))
            .define(
                key(
                    RETRY_BACKOFF_LEGACY,
                    ConfigType::Long,
                    Some("30000"),
                    "Wait between retries of a batch answered with a transient error, in ms; also the longest wait while the server is unreachable (from 100 ms, doubling), which is waited out however long.",
                )
                    .validator(Validator::at_least(0.0)),
            )
            .define(
                key(
                    RETRY_MAX_ATTEMPTS_LEGACY,
                    ConfigType::Int,
                    Some("5"),
                    "Retries of a batch the server answers with a transient error before the task fails (an unreachable server is waited out).",
                )
                .validator(Validator::at_least(0.0)),
            )
            .define(key(ENCRYPTION_ENABLED, ConfigType::Boolean, Some("false"), "TLS to the server (as a bolt+s:// URI)."))
            .define(key(
                ENCRYPTION_TRUST,
                ConfigType::String,
                Some("TRUST_ALL_CERTIFICATES"),
                "TRUST_SYSTEM_CA_SIGNED_CERTIFICATES or TRUST_CUSTOM_CA_SIGNED_CERTIFICATES (with the CA path); TRUST_ALL_CERTIFICATES is taken as the system CAs.",
            ))
            .define(key(ENCRYPTION_CA, ConfigType::String, Some(""), "PEM file of the CA that signed the server's certificate."))
            .define(key(POOL_SIZE_LEGACY, ConfigType::Int, Some("100"), "Connections at most.").validator(Validator::at_least(1.0))),
        Flavour::Current => both
            .define(
                ConfigKey::required(URI, ConfigType::List, Importance::High, "Bolt URIs of the server (the first is used).")
                    .validator(Validator::NonEmptyList),
            )
            .define(key(
                "neo4j.cypher.topic.<topic>",
                ConfigType::String,
                None,
                "The Cypher template of a topic, one key per topic: the record's parts are bound under the bind-*-as names (and `event`) before it runs.",
            ))
            .define(key(BATCH_SIZE, ConfigType::Int, Some("1000"), "Records per UNWIND batch (one transaction).").validator(Validator::at_least(1.0)))
            .define(key(BATCH_TIMEOUT, ConfigType::String, Some("0s"), "Longest time a batch's transaction may take (0s: no limit)."))
            .define(key(
                MAX_RETRY_TIME,
                ConfigType::String,
                Some("30s"),
                "How long a batch answered with transient errors is retried (from 100 ms, doubling) before the task fails; also the longest wait while the server is unreachable, which is waited out however long.",
            ))
            .define(
                key(MAX_RETRY_ATTEMPTS, ConfigType::Int, Some("5"), "Retries of a batch answered with transient errors, at most, before the task fails.")
                    .validator(Validator::at_least(0.0)),
            )
            .define(key(SECURITY_ENCRYPTED, ConfigType::Boolean, Some("false"), "TLS to the server (as a bolt+s:// URI)."))
            .define(key(POOL_SIZE, ConfigType::Int, Some("100"), "Connections at most.").validator(Validator::at_least(1.0)))
            .define(key(BIND_VALUE_AS_EVENT, ConfigType::Boolean, Some("true"), "Also bind the record's value as `event`, as the legacy connector did."))
            .define(key(BIND_VALUE_AS, ConfigType::String, Some("__value"), "Name of the record's value in the query (empty: not bound)."))
            .define(key(BIND_KEY_AS, ConfigType::String, Some("__key"), "Name of the record's key in the query (empty: not bound)."))
            .define(key(BIND_HEADER_AS, ConfigType::String, Some("__header"), "Name of the record's headers (a map) in the query (empty: not bound)."))
            .define(key(
                BIND_TIMESTAMP_AS,
                ConfigType::String,
                Some("__timestamp"),
                "Name of the record's timestamp (a datetime) in the query (empty: not bound).",
            ))
            .define(key(
                EOS_OFFSET_LABEL,
                ConfigType::String,
                Some(""),
                "Exactly once: a node with this label per (topic, partition) holds the last offset written, updated in each batch's transaction.",
            )),
    }
}

fn config_error(key: &str, message: impl std::fmt::Display) -> ConnectError {
    ConnectError::fatal(format!("{key}: {message}"))
}

/// `30s`, `500ms`, `1m`, or a bare number of milliseconds.
fn duration(key: &str, text: &str) -> Result<Duration> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(text).map_err(|e| config_error(key, format!("{text:?} is not a duration: {e}")))
}

/// A label as Cypher takes it unquoted, so it can be written into a query.
fn label(key: &str, text: &str) -> Result<String> {
    let ok = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(text.to_string())
    } else {
        Err(config_error(key, format!("{text:?} is not a plain label (letters, digits and _)")))
    }
}

impl Neo4jSinkConfig {
    pub fn parse(config: &Config, flavour: Flavour) -> Result<Self> {
        for (key, value) in config.iter() {
            let strategy_key =
                UNSUPPORTED_STRATEGY_PREFIXES.iter().any(|p| key.starts_with(p)) || UNSUPPORTED_STRATEGY_KEYS.contains(&key.as_str());
            if strategy_key && !value.trim().is_empty() {
                return Err(config_error(
                    key,
                    "this ingestion strategy (pattern, CDC or CUD) is not supported; use a Cypher template (neo4j.topic.cypher.<topic> or neo4j.cypher.topic.<topic>)",
                ));
            }
        }
        let parsed = def(flavour).parse(config).map_err(|e| ConnectError::fatal(e.to_string()))?;
        let text = |key: &str| parsed.optional_string(key).unwrap_or_default().trim().to_string();

        let credentials = match text(AUTH_TYPE).to_ascii_uppercase().as_str() {
            "NONE" => None,
            "BASIC" => Some((text(USERNAME), parsed.password(PASSWORD).map(|p| p.0).unwrap_or_default())),
            other => return Err(config_error(AUTH_TYPE, format!("{other} authentication is not supported (BASIC or NONE)"))),
        };

        let mut topics = BTreeMap::new();
        for (key, cypher) in config.iter() {
            let topic = key.strip_prefix(TOPIC_CYPHER_LEGACY).or_else(|| key.strip_prefix(TOPIC_CYPHER));
            if let Some(topic) = topic {
                if cypher.trim().is_empty() {
                    return Err(config_error(key, "the Cypher template is empty"));
                }
                topics.insert(topic.to_string(), cypher.trim().to_string());
            }
        }
        if topics.is_empty() {
            let prefix = if flavour == Flavour::Legacy { TOPIC_CYPHER_LEGACY } else { TOPIC_CYPHER };
            return Err(config_error(&format!("{prefix}<topic>"), "no Cypher template: give one per topic"));
        }
        if let Some(subscribed) = config.get("topics") {
            for topic in connect_core::config::parse_list(subscribed) {
                if !topics.contains_key(&topic) {
                    let prefix = if flavour == Flavour::Legacy { TOPIC_CYPHER_LEGACY } else { TOPIC_CYPHER };
                    return Err(config_error("topics", format!("topic {topic:?} has no Cypher template ({prefix}{topic})")));
                }
            }
        }

        let (uri, encrypted, ca, pool, batch_size, batch_timeout, outage_backoff, transient_backoff, attempts) = match flavour {
            Flavour::Legacy => {
                let trust = text(ENCRYPTION_TRUST).to_ascii_uppercase();
                let ca = text(ENCRYPTION_CA);
                if trust == "TRUST_CUSTOM_CA_SIGNED_CERTIFICATES" && ca.is_empty() {
                    return Err(config_error(ENCRYPTION_CA, "is required with TRUST_CUSTOM_CA_SIGNED_CERTIFICATES"));
                }
                // As neo4j-streams: a fixed wait between a batch's attempts.
                let wait = Duration::from_millis(parsed.int(RETRY_BACKOFF_LEGACY).max(0) as u64);
                let attempts = parsed.int(RETRY_MAX_ATTEMPTS_LEGACY).max(0) as u32;
                (
                    text(SERVER_URI),
                    parsed.boolean(ENCRYPTION_ENABLED),
                    ca,
                    parsed.int(POOL_SIZE_LEGACY),
                    parsed.int(BATCH_SIZE_LEGACY),
                    Duration::from_millis(parsed.int(BATCH_TIMEOUT_LEGACY).max(0) as u64),
                    BackoffPolicy::exponential(FIRST_RETRY, wait.max(FIRST_RETRY)).with_jitter(Jitter::Symmetric(0.2)),
                    BackoffPolicy::constant(wait).with_max_attempts(attempts),
                    attempts,
                )
            }
            Flavour::Current => {
                // As the Neo4j driver's retries: doubling from 100 ms for at most neo4j.max-retry-time in all.
                let budget = duration(MAX_RETRY_TIME, &text(MAX_RETRY_TIME))?.max(FIRST_RETRY);
                let attempts = parsed.int(MAX_RETRY_ATTEMPTS).max(0) as u32;
                let doubling = BackoffPolicy::exponential(FIRST_RETRY, budget).with_jitter(Jitter::Symmetric(0.2));
                (
                    parsed.list(URI).first().cloned().unwrap_or_default(),
                    parsed.boolean(SECURITY_ENCRYPTED),
                    String::new(),
                    parsed.int(POOL_SIZE),
                    parsed.int(BATCH_SIZE),
                    duration(BATCH_TIMEOUT, &text(BATCH_TIMEOUT))?,
                    doubling.clone(),
                    doubling.with_max_attempts(attempts).with_max_elapsed(budget),
                    attempts,
                )
            }
        };
        let uri_key = if flavour == Flavour::Legacy { SERVER_URI } else { URI };
        let uri = bolt_uri(uri_key, &uri, encrypted)?;

        let bindings = match flavour {
            Flavour::Legacy => {
                Bindings { value_as_event: true, value: String::new(), key: String::new(), header: String::new(), timestamp: String::new() }
            }
            Flavour::Current => Bindings {
                value_as_event: parsed.boolean(BIND_VALUE_AS_EVENT),
                value: text(BIND_VALUE_AS),
                key: text(BIND_KEY_AS),
                header: text(BIND_HEADER_AS),
                timestamp: text(BIND_TIMESTAMP_AS),
            },
        };
        for (key, name) in [
            (BIND_VALUE_AS, &bindings.value),
            (BIND_KEY_AS, &bindings.key),
            (BIND_HEADER_AS, &bindings.header),
            (BIND_TIMESTAMP_AS, &bindings.timestamp),
        ] {
            if !name.is_empty() {
                label(key, name)?;
            }
        }
        if flavour == Flavour::Current
            && !bindings.value_as_event
            && [&bindings.value, &bindings.key, &bindings.header, &bindings.timestamp].iter().all(|n| n.is_empty())
        {
            return Err(config_error(BIND_VALUE_AS_EVENT, "nothing of the record is bound into the query"));
        }
        // The legacy class takes the current connector's exactly-once key too.
        let eos_label =
            config.get(EOS_OFFSET_LABEL).map(|l| l.trim()).filter(|l| !l.is_empty()).map(|l| label(EOS_OFFSET_LABEL, l)).transpose()?;

        Ok(Neo4jSinkConfig {
            flavour,
            uri,
            database: text(DATABASE),
            credentials,
            ca_file: Some(ca).filter(|c| !c.is_empty()),
            pool_size: pool.max(1) as usize,
            batch_size: batch_size.max(1) as usize,
            batch_timeout,
            outage_backoff,
            transient_backoff,
            retry_max_attempts: attempts,
            topics,
            bindings,
            eos_label,
        })
    }
}

/// The URI neo4rs connects to: `neo4j://` becomes `bolt://` (one server; routing tables are not followed), and
/// encryption adds `+s`.
fn bolt_uri(key: &str, uri: &str, encrypted: bool) -> Result<String> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| config_error(key, format!("{uri:?} is not a URI (bolt://host:7687)")))?;
    let secure = match scheme {
        "bolt" | "neo4j" => encrypted,
        "bolt+s" | "neo4j+s" => true,
        "bolt+ssc" | "neo4j+ssc" => {
            return Err(config_error(
                key,
                format!("{scheme}:// (trust any certificate) is not supported: the driver verifies certificates; use {}+s:// with neo4j.encryption.ca.certificate.path for a self-signed one", &scheme[..scheme.len() - 4]),
            ))
        }
        other => return Err(config_error(key, format!("scheme {other:?}: use bolt://, bolt+s://, neo4j:// or neo4j+s://"))),
    };
    if rest.is_empty() {
        return Err(config_error(key, format!("{uri:?} has no host")));
    }
    let scheme = if secure { "bolt+s" } else { "bolt" };
    Ok(format!("{scheme}://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_rail_data_config_parses() {
        let c = Neo4jSinkConfig::parse(
            &config(&[
                ("topics", "TRAIN_CANCELLATIONS_02"),
                ("neo4j.server.uri", "bolt://neo4j:7687"),
                ("neo4j.authentication.basic.username", "neo4j"),
                ("neo4j.authentication.basic.password", "connect"),
                ("neo4j.topic.cypher.TRAIN_CANCELLATIONS_02", "MERGE (train:train{id: event.TRAIN_ID})"),
            ]),
            Flavour::Legacy,
        )
        .unwrap();
        assert_eq!(c.uri, "bolt://neo4j:7687");
        assert_eq!(c.credentials, Some(("neo4j".into(), "connect".into())));
        assert_eq!(c.topics["TRAIN_CANCELLATIONS_02"], "MERGE (train:train{id: event.TRAIN_ID})");
        assert_eq!((c.batch_size, c.retry_max_attempts), (1000, 5));
        assert_eq!(c.transient_backoff.delay(3), Duration::from_secs(30), "a fixed wait between attempts, as neo4j-streams");
        assert!(c.bindings.value_as_event && c.bindings.key.is_empty());
    }

    #[test]
    fn the_current_connector_binds_its_names_and_takes_an_offset_label() {
        let c = Neo4jSinkConfig::parse(
            &config(&[
                ("neo4j.uri", "neo4j://a:7687,neo4j://b:7687"),
                ("neo4j.security.encrypted", "true"),
                ("neo4j.cypher.topic.t", "CREATE (:X {v: __value.v})"),
                ("neo4j.batch-timeout", "30s"),
                ("neo4j.cypher.bind-key-as", "k"),
                ("neo4j.eos-offset-label", "__KafkaOffset"),
            ]),
            Flavour::Current,
        )
        .unwrap();
        assert_eq!(c.uri, "bolt+s://a:7687");
        assert_eq!(c.batch_timeout, Duration::from_secs(30));
        assert_eq!((c.bindings.key.as_str(), c.bindings.value.as_str(), c.bindings.timestamp.as_str()), ("k", "__value", "__timestamp"));
        assert_eq!(c.eos_label.as_deref(), Some("__KafkaOffset"));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |pairs: &[(&str, &str)], flavour| Neo4jSinkConfig::parse(&config(pairs), flavour).unwrap_err().to_string();
        assert!(err(&[("neo4j.server.uri", "bolt://h")], Flavour::Legacy).contains("neo4j.topic.cypher.<topic>"));
        assert!(err(&[("topics", "a,b"), ("neo4j.topic.cypher.a", "RETURN 1")], Flavour::Legacy).contains("neo4j.topic.cypher.b"));
        assert!(
            err(&[("neo4j.server.uri", "http://h"), ("neo4j.topic.cypher.a", "RETURN 1")], Flavour::Legacy).contains("neo4j.server.uri")
        );
        assert!(err(&[("neo4j.topic.cypher.a", "RETURN 1"), ("neo4j.topic.pattern.node.a", "(:X{!id})")], Flavour::Legacy)
            .contains("neo4j.topic.pattern.node.a"));
        assert!(err(
            &[("neo4j.uri", "bolt://h"), ("neo4j.cypher.topic.a", "RETURN 1"), ("neo4j.eos-offset-label", "a b")],
            Flavour::Current
        )
        .contains("neo4j.eos-offset-label"));
        assert!(err(&[("neo4j.topic.cypher.a", "RETURN 1"), ("neo4j.authentication.type", "KERBEROS")], Flavour::Legacy)
            .contains("neo4j.authentication.type"));
        assert!(err(&[("neo4j.uri", "bolt+ssc://h"), ("neo4j.cypher.topic.a", "RETURN 1")], Flavour::Current).contains("bolt+s://"));
        // A strategy's settings, or its topic list left empty, are no reason to refuse a config.
        let ok = &[
            ("neo4j.uri", "bolt://h"),
            ("neo4j.cypher.topic.a", "RETURN 1"),
            ("neo4j.cud.topics", ""),
            ("neo4j.pattern.node.merge-properties", "true"),
        ];
        assert!(Neo4jSinkConfig::parse(&config(ok), Flavour::Current).is_ok());
    }
}
