//! The keys every connector config has (Kafka's `ConnectorConfig`, `SinkConnectorConfig`,
//! `SourceConnectorConfig`), merged with the connector's own keys for validation.

use connect_core::config::ConfigInfos;
use connect_core::config_provider::ConfigTransformer;
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectorType, Importance, Validator};
use std::collections::BTreeMap;

use crate::registry::Registry;

pub const NAME: &str = "name";
pub const CONNECTOR_CLASS: &str = "connector.class";
pub const TASKS_MAX: &str = "tasks.max";
pub const TOPICS: &str = "topics";
pub const TOPICS_REGEX: &str = "topics.regex";

/// Common keys, grouped as Kafka Connect groups them in the validate response.
pub fn common_def(kind: ConnectorType) -> ConfigDef {
    let common = "Common";
    let mut def = ConfigDef::new()
        .define(
            ConfigKey::required(NAME, ConfigType::String, Importance::High, "Globally unique name to use for this connector.")
                .validator(Validator::NonEmptyString)
                .group(common, 1)
                .display_name("Connector name"),
        )
        .define(
            ConfigKey::required(CONNECTOR_CLASS, ConfigType::String, Importance::High, "Name or alias of the class for this connector.")
                .group(common, 2)
                .display_name("Connector class"),
        )
        .define(
            ConfigKey::new(TASKS_MAX, ConfigType::Int, Some("1"), Importance::High, "Maximum number of tasks to use for this connector.")
                .validator(Validator::at_least(1.0))
                .group(common, 3)
                .display_name("Tasks max"),
        )
        .define(
            ConfigKey::new(
                "key.converter",
                ConfigType::Class,
                None,
                Importance::Low,
                "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.",
            )
            .group(common, 5),
        )
        .define(
            ConfigKey::new(
                "value.converter",
                ConfigType::Class,
                None,
                Importance::Low,
                "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.",
            )
            .group(common, 6),
        )
        .define(
            ConfigKey::new(
                "header.converter",
                ConfigType::Class,
                None,
                Importance::Low,
                "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.",
            )
            .group(common, 7),
        )
        .define(
            ConfigKey::new(
                "transforms",
                ConfigType::List,
                Some(""),
                Importance::Low,
                "Aliases for the transformations to be applied to records.",
            )
            .group("Transforms", 1),
        )
        .define(
            ConfigKey::new(
                "predicates",
                ConfigType::List,
                Some(""),
                Importance::Low,
                "Aliases for the predicates used by transformations.",
            )
            .group("Predicates", 1),
        )
        .define(
            ConfigKey::new(
                "errors.retry.timeout",
                ConfigType::Long,
                Some("0"),
                Importance::Medium,
                "The maximum duration in milliseconds that a failed operation will be reattempted.",
            )
            .group("Error Handling", 1),
        )
        .define(
            ConfigKey::new(
                "errors.retry.delay.max.ms",
                ConfigType::Long,
                Some("60000"),
                Importance::Medium,
                "The maximum duration in milliseconds between consecutive retry attempts.",
            )
            .group("Error Handling", 2),
        )
        .define(
            ConfigKey::new(
                "errors.tolerance",
                ConfigType::String,
                Some("none"),
                Importance::Medium,
                "Behavior for tolerating errors during connector operation.",
            )
            .validator(Validator::OneOf(vec!["none", "all"]))
            .group("Error Handling", 3),
        )
        .define(
            ConfigKey::new(
                "errors.log.enable",
                ConfigType::Boolean,
                Some("false"),
                Importance::Medium,
                "If true, write each error and the details of the failed operation and problematic record to the Connect application log.",
            )
            .group("Error Handling", 4),
        )
        .define(
            ConfigKey::new(
                "errors.log.include.messages",
                ConfigType::Boolean,
                Some("false"),
                Importance::Medium,
                "Whether to include in the log the Connect record that resulted in a failure.",
            )
            .group("Error Handling", 5),
        )
        // Dead-letter queues: sink-only in Kafka Connect; connect-rs has them for sources too.
        .define(ConfigKey::new("errors.deadletterqueue.topic.name", ConfigType::String, Some(""), Importance::Medium, "The name of the topic to be used as the dead letter queue (DLQ) for records that result in an error when processed by this connector, or its transformations or converters.").group("Error Handling", 6))
        .define(ConfigKey::new("errors.deadletterqueue.topic.replication.factor", ConfigType::Short, Some("3"), Importance::Medium, "Replication factor used to create the dead letter queue topic when it doesn't already exist.").group("Error Handling", 7))
        .define(ConfigKey::new("errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, Some("false"), Importance::Medium, "If true, add headers containing error context to the messages written to the dead letter queue.").group("Error Handling", 8));
    if kind == ConnectorType::Sink {
        def = def
            .define(
                ConfigKey::new(TOPICS, ConfigType::List, Some(""), Importance::High, "List of topics to consume, separated by commas")
                    .group(common, 4)
                    .display_name("Topics"),
            )
            .define(
                ConfigKey::new(
                    TOPICS_REGEX,
                    ConfigType::String,
                    Some(""),
                    Importance::High,
                    "Regular expression giving topics to consume.",
                )
                .group(common, 4)
                .display_name("Topics regex"),
            );
    }
    def
}

/// Validate a full connector config: placeholders (`${file:...}`) resolve, then common keys, the connector's
/// own keys, and the cross-key rules on the resolved values. The answer shows the values as given, so a
/// resolved secret never appears in it. `None` when the connector class is unknown.
pub fn validate(registry: &Registry, providers: &ConfigTransformer, raw: &Config) -> Option<(ConnectorType, ConfigInfos)> {
    let class = raw.get(CONNECTOR_CLASS)?;
    let (resolved, provider_errors) = match providers.transform(raw) {
        Ok(r) => (r.config, BTreeMap::new()),
        // Keys whose placeholder failed are checked as given; only the provider's error is reported for them.
        Err(errors) => (raw.clone(), errors),
    };
    let config = &resolved;
    let plugin = registry.connector(class)?;
    let instance = (plugin.create)();
    let connector = instance.as_connector();
    let def = common_def(plugin.kind).merge(&connector.config_def());
    let mut errors = connector.validate(config);
    if plugin.kind == ConnectorType::Sink {
        let topics = config.get(TOPICS).map(|t| !t.trim().is_empty()).unwrap_or(false);
        let regex = config.get(TOPICS_REGEX).map(|t| !t.trim().is_empty()).unwrap_or(false);
        let message = match (topics, regex) {
            (true, true) => Some("topics and topics.regex are mutually exclusive options, but both are set."),
            (false, false) => Some("Must configure one of topics or topics.regex"),
            _ => None,
        };
        if let Some(m) = message {
            errors.entry(TOPICS.to_string()).or_default().push(m.to_string());
        }
    }
    // Per-key checks of the definition, then the connector's own and the cross-key ones.
    let base = def.validate(plugin.class, config);
    let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, msg) in base.errors() {
        merged.entry(key).or_default().push(msg);
    }
    for (key, msgs) in errors {
        merged.entry(key).or_default().extend(msgs);
    }
    for (key, msg) in provider_errors {
        merged.insert(key, vec![msg]);
    }
    Some((plugin.kind, def.infos(plugin.class, raw, merged)))
}

/// Kafka Connect's message for an invalid config.
pub fn invalid_config_message(infos: &ConfigInfos) -> String {
    let errors = infos.errors();
    let mut msg = format!("Connector configuration is invalid and contains the following {} error(s):", errors.len());
    for (_, e) in &errors {
        msg.push('\n');
        msg.push_str(e);
    }
    msg.push_str("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`");
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sink_needs_topics_and_source_needs_topic() {
        let r = Registry::default();
        let (kind, infos) =
            validate(&r, &ConfigTransformer::default(), &cfg(&[("name", "s"), ("connector.class", "FileStreamSink"), ("file", "/tmp/x")]))
                .unwrap();
        assert_eq!(kind, ConnectorType::Sink);
        assert_eq!(infos.error_count, 1);
        assert_eq!(infos.errors()[0].1, "Must configure one of topics or topics.regex");
        let (_, infos) = validate(
            &r,
            &ConfigTransformer::default(),
            &cfg(&[("name", "s"), ("connector.class", "FileStreamSource"), ("tasks.max", "0")]),
        )
        .unwrap();
        let msg = invalid_config_message(&infos);
        assert!(msg.starts_with("Connector configuration is invalid and contains the following 2 error(s):"), "{msg}");
        assert!(msg.contains("Missing required configuration \"topic\""), "{msg}");
        assert!(msg.contains("Invalid value 0 for configuration tasks.max: Value must be at least 1"), "{msg}");
        assert!(validate(&r, &ConfigTransformer::default(), &cfg(&[("connector.class", "Nope")])).is_none());
    }
}
