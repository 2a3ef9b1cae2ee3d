//! STOMP source connector: moves messages from ActiveMQ, Artemis, RabbitMQ or any STOMP 1.0–1.2 broker
//! (Network Rail's feeds among them) into Kafka, at least once.
//!
//! Compatible with `io.confluent.connect.activemq.ActiveMQSourceConnector` configs (keys in [`config`]): the
//! same JSON with the broker's STOMP port works, and records have the JMS source's shape ([`record`]), so
//! `.text` holds a text message's body. A message is acknowledged to the broker only after Kafka
//! acknowledged its record; at most `max.pending.messages` are unacknowledged, which bounds the duplicates
//! a crash can cause. Durable topic subscriptions keep what is published while the worker is down.
//!
//! Layout: [`frame`] is the protocol (codec), [`session`] the connection's life (heart-beats, acks,
//! reconnects), [`record`] the JMS shape, `task` the connector and task on the kit's push source.
//!
//! Depends on connect-core, connect-kit (push-source channel, backoff), tokio-util and rustls; must not
//! depend on a Kafka client or the worker.

pub mod config;
pub mod frame;
pub mod record;
pub mod session;
mod task;

pub use task::{StompSourceConnector, StompSourceTask};

use connect_core::plugin::ConnectorPlugin;
use connect_core::{AnyConnector, ConnectorType};

pub const CLASS: &str = "io.confluent.connect.activemq.ActiveMQSourceConnector";

pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![ConnectorPlugin {
        class: CLASS,
        aliases: &["ActiveMQSource", "StompSource", "stomp-source", "io.connectrs.stomp.StompSourceConnector"],
        kind: ConnectorType::Source,
        version: env!("CARGO_PKG_VERSION"),
        create: || AnyConnector::Source(Box::<StompSourceConnector>::default()),
    }]
}
