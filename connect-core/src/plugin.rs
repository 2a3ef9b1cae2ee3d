//! Plugin descriptions: what `GET /connector-plugins` lists and what the registry looks classes up by.

use crate::connector::{AnyConnector, ConnectorType};
use crate::transform::{Predicate, Transformation};
use serde::Serialize;

/// Kafka Connect's `PluginType`, serialised lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginType {
    Source,
    Sink,
    Converter,
    HeaderConverter,
    Transformation,
    Predicate,
    Configprovider,
}

impl From<ConnectorType> for PluginType {
    fn from(t: ConnectorType) -> Self {
        match t {
            ConnectorType::Source => PluginType::Source,
            ConnectorType::Sink => PluginType::Sink,
        }
    }
}

/// `{"class","type","version"}` as in `GET /connector-plugins`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PluginInfo {
    pub class: String,
    #[serde(rename = "type")]
    pub kind: PluginType,
    pub version: String,
}

/// A connector plugin: its class name, the other names it answers to, and a constructor.
pub struct ConnectorPlugin {
    pub class: &'static str,
    /// Short aliases (`FileStreamSource`) and our own names.
    pub aliases: &'static [&'static str],
    pub kind: ConnectorType,
    pub version: &'static str,
    pub create: fn() -> AnyConnector,
}

/// A transformation plugin.
pub struct TransformationPlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub create: fn() -> Box<dyn Transformation>,
}

/// A predicate plugin.
pub struct PredicatePlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub create: fn() -> Box<dyn Predicate>,
}

/// Does `name` refer to the plugin `class` with `aliases`? Kafka Connect accepts the full class name,
/// the simple name, and the simple name without its `Connector` suffix.
pub fn plugin_name_matches(name: &str, class: &str, aliases: &[&str]) -> bool {
    if name == class || aliases.contains(&name) {
        return true;
    }
    let simple = class.rsplit('.').next().unwrap_or(class);
    name == simple || simple.strip_suffix("Connector") == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_like_kafka_connect() {
        let class = "org.apache.kafka.connect.file.FileStreamSinkConnector";
        for n in [class, "FileStreamSinkConnector", "FileStreamSink", "file-sink"] {
            assert!(plugin_name_matches(n, class, &["file-sink"]), "{n}");
        }
        assert!(!plugin_name_matches("FileStreamSource", class, &[]));
    }
}
