//! One registry for every plugin the binary carries: connectors, converters, transforms, predicates.
//! Lookup accepts full Apache/Confluent class names, short aliases and our own names.

use connect_core::converter::{builtin_converters, Converter, ConverterPlugin};
use connect_core::plugin::{plugin_name_matches, ConnectorPlugin, PluginInfo, PluginType, PredicatePlugin, TransformationPlugin};
use connect_core::transform::{Predicate, Transformation};

pub struct Registry {
    pub connectors: Vec<ConnectorPlugin>,
    pub converters: Vec<ConverterPlugin>,
    pub transformations: Vec<TransformationPlugin>,
    pub predicates: Vec<PredicatePlugin>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            connectors: connect_file::plugins()
                .into_iter()
                .chain(connect_mqtt::plugins())
                .chain(connect_postgres::plugins())
                .chain(connect_http::plugins())
                .chain(connect_elasticsearch::plugins())
                .chain(connect_stomp::plugins())
                .chain(connect_neo4j::plugins())
                .chain(connect_s3::plugins())
                .chain(connect_camera::plugins())
                .chain(connect_testing::plugins())
                .collect(),
            converters: builtin_converters(),
            transformations: connect_transforms::transformation_plugins(),
            predicates: connect_transforms::predicate_plugins(),
        }
    }
}

impl Registry {
    pub fn connector(&self, name: &str) -> Option<&ConnectorPlugin> {
        let name = name.trim();
        self.connectors.iter().find(|p| plugin_name_matches(name, p.class, p.aliases))
    }
    pub fn converter(&self, name: &str) -> Option<Box<dyn Converter>> {
        let name = name.trim();
        self.converters.iter().find(|p| plugin_name_matches(name, p.class, p.aliases)).map(|p| (p.create)())
    }
    /// The full class name of a converter given by any of its names.
    pub fn converter_class(&self, name: &str) -> Option<&'static str> {
        let name = name.trim();
        self.converters.iter().find(|p| plugin_name_matches(name, p.class, p.aliases)).map(|p| p.class)
    }
    pub fn transformation(&self, name: &str) -> Option<(&'static str, Box<dyn Transformation>)> {
        let name = name.trim();
        self.transformations.iter().find(|p| plugin_name_matches(name, p.class, p.aliases)).map(|p| (p.class, (p.create)()))
    }
    pub fn predicate(&self, name: &str) -> Option<Box<dyn Predicate>> {
        let name = name.trim();
        self.predicates.iter().find(|p| plugin_name_matches(name, p.class, p.aliases)).map(|p| (p.create)())
    }

    /// What `GET /connector-plugins` lists; with `connectors_only=false`, every plugin.
    pub fn plugin_infos(&self, connectors_only: bool) -> Vec<PluginInfo> {
        let version = env!("CARGO_PKG_VERSION").to_string();
        let mut out: Vec<PluginInfo> =
            self.connectors.iter().map(|p| PluginInfo { class: p.class.into(), kind: p.kind.into(), version: p.version.into() }).collect();
        if !connectors_only {
            out.extend(self.converters.iter().map(|p| PluginInfo {
                class: p.class.into(),
                kind: PluginType::Converter,
                version: version.clone(),
            }));
            out.extend(self.transformations.iter().map(|p| PluginInfo {
                class: p.class.into(),
                kind: PluginType::Transformation,
                version: version.clone(),
            }));
            out.extend(self.predicates.iter().map(|p| PluginInfo {
                class: p.class.into(),
                kind: PluginType::Predicate,
                version: version.clone(),
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_connectors_by_every_name() {
        let r = Registry::default();
        for n in ["org.apache.kafka.connect.file.FileStreamSourceConnector", "FileStreamSourceConnector", "FileStreamSource", "file-source"]
        {
            assert_eq!(r.connector(n).map(|p| p.class), Some("org.apache.kafka.connect.file.FileStreamSourceConnector"), "{n}");
        }
        assert!(r.connector("com.example.Nope").is_none());
        assert!(r.converter("org.apache.kafka.connect.storage.StringConverter").is_some());
        assert!(r.converter("JsonConverter").is_some());
    }
}
