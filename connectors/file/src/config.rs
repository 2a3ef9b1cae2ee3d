//! Config keys of the FileStream connectors (names, defaults and docs as in Kafka).

use connect_core::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};

pub const FILE: &str = "file";
pub const TOPIC: &str = "topic";
pub const BATCH_SIZE: &str = "batch.size";

pub fn source_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new(
            FILE,
            ConfigType::String,
            None,
            Importance::High,
            "Source filename. If not specified, the standard input will be used",
        ))
        .define(
            ConfigKey::required(TOPIC, ConfigType::String, Importance::High, "The topic to publish data to")
                .validator(Validator::NonEmptyString),
        )
        .define(
            ConfigKey::new(
                BATCH_SIZE,
                ConfigType::Int,
                Some("2000"),
                Importance::Low,
                "The maximum number of records the source task can read from the file each time it is polled",
            )
            .validator(Validator::at_least(1.0)),
        )
}

pub fn sink_def() -> ConfigDef {
    ConfigDef::new().define(ConfigKey::new(
        FILE,
        ConfigType::String,
        None,
        Importance::High,
        "Destination filename. If not specified, the standard output will be used",
    ))
}
