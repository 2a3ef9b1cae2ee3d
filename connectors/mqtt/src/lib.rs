//! MQTT source connector: moves messages from MQTT topics into Kafka, at least once.
//!
//! Compatible with `io.confluent.connect.mqtt.MqttSourceConnector` configs (keys in [`config`]). For QoS 1
//! and 2 a message is acknowledged to the MQTT broker only after Kafka acknowledged its record
//! (`commit_record`), so a crash redelivers instead of losing; with `mqtt.clean.session.enabled=false` each
//! task keeps a stable client id, so messages published while the worker was down arrive when it returns.
//!
//! Depends on connect-core, connect-kit (push-source channel, backoff) and rumqttc; must not depend on a Kafka
//! client or the worker.

pub mod config;
mod source;

pub use source::{MqttSourceConnector, MqttSourceTask};

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const CLASS: &str = "io.confluent.connect.mqtt.MqttSourceConnector";

pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![ConnectorPlugin {
        class: CLASS,
        aliases: &["MqttSource", "mqtt-source", "io.connectrs.mqtt.MqttSourceConnector"],
        kind: ConnectorType::Source,
        version: env!("CARGO_PKG_VERSION"),
        create: || AnyConnector::Source(Box::<MqttSourceConnector>::default()),
    }]
}
