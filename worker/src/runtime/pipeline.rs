//! A connector's conversion and transform stages, built from its config and the worker's.

use connect_core::config::{parse_list, with_prefix};
use connect_core::converter::{header_from_bytes, header_to_bytes, Converter};
use connect_core::transform::{TransformChain, TransformStep};
use connect_core::{Config, ConnectError, Header, Result};
use std::borrow::Cow;

use crate::config::WorkerConfig;
use crate::registry::Registry;

/// Key, value and header converters plus the transform chain of one connector.
pub struct Pipeline {
    pub key_converter: Box<dyn Converter>,
    pub value_converter: Box<dyn Converter>,
    /// Class names, for error reports and DLQ headers.
    pub key_converter_class: String,
    pub value_converter_class: String,
    /// `header.converter`; `None` is SimpleHeaderConverter (strings and bytes as they are, other values as JSON).
    pub header_converter: Option<Box<dyn Converter>>,
    pub header_converter_class: String,
    pub transforms: TransformChain,
}

impl Pipeline {
    pub fn build(registry: &Registry, worker: &WorkerConfig, connector: &Config) -> Result<Self> {
        let (key_converter, key_converter_class) = converter(registry, worker, connector, "key")?;
        let (value_converter, value_converter_class) = converter(registry, worker, connector, "value")?;
        let header_class = connector.get("header.converter").or_else(|| worker.raw.get("header.converter")).map(|c| c.trim().to_string());
        let (header_converter, header_converter_class) = match header_class {
            None => (None, SIMPLE_HEADER_CONVERTER.to_string()),
            Some(c) if c == SIMPLE_HEADER_CONVERTER || c == "SimpleHeaderConverter" => (None, SIMPLE_HEADER_CONVERTER.to_string()),
            Some(_) => {
                let (conv, class) = converter(registry, worker, connector, "header")?;
                (Some(conv), class)
            }
        };
        Ok(Pipeline {
            key_converter,
            value_converter,
            key_converter_class,
            value_converter_class,
            header_converter,
            header_converter_class,
            transforms: transform_chain(registry, connector)?,
        })
    }
}

impl Pipeline {
    /// A header's bytes for Kafka, by the header converter.
    pub fn header_to_bytes<'a>(&self, topic: &str, header: &'a Header) -> Result<Option<Cow<'a, [u8]>>> {
        match &self.header_converter {
            None => Ok(header_to_bytes(&header.value)),
            Some(c) => c.from_connect(topic, header.schema.as_ref(), &header.value),
        }
    }

    /// A header read from Kafka, by the header converter.
    pub fn header_from_bytes(&self, topic: &str, key: &str, bytes: Option<&[u8]>) -> Result<Header> {
        match &self.header_converter {
            None => Ok(Header { key: key.to_string(), schema: None, value: header_from_bytes(bytes) }),
            Some(c) => c.to_connect(topic, bytes).map(|(schema, value)| Header { key: key.to_string(), schema, value }),
        }
    }
}

pub const SIMPLE_HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";

/// The connector's converter if it names one, else the worker's; its settings are the worker's
/// `<side>.converter.*` keys overridden by the connector's (so `value.converter.schemas.enable` in a
/// connector config works with the worker's converter class too).
fn converter(registry: &Registry, worker: &WorkerConfig, connector: &Config, side: &str) -> Result<(Box<dyn Converter>, String)> {
    let key = format!("{side}.converter");
    let (worker_class, mut settings) = worker.converter(side);
    let class = connector.get(&key).cloned().unwrap_or(worker_class);
    settings.extend(with_prefix(connector, &format!("{key}.")));
    settings.insert("converter.type".into(), side.into());
    let mut conv = registry
        .converter(&class)
        .ok_or_else(|| ConnectError::fatal(format!("Invalid value {class} for configuration {key}: Class {class} could not be found.")))?;
    // Keys a converter does not define are ignored, as in Kafka.
    let known: Config = settings.into_iter().filter(|(k, _)| conv.config_def().key(k).is_some()).collect();
    conv.configure(&known, side == "key").map_err(|e| e.context(format!("configuring {key} {class}")))?;
    let class = registry.converter_class(&class).unwrap_or(&class).to_string();
    Ok((conv, class))
}

fn transform_chain(registry: &Registry, connector: &Config) -> Result<TransformChain> {
    let aliases = parse_list(connector.get("transforms").map(String::as_str).unwrap_or(""));
    let mut steps = Vec::with_capacity(aliases.len());
    for alias in aliases {
        let prefix = format!("transforms.{alias}.");
        let settings = with_prefix(connector, &prefix);
        let class = settings
            .get("type")
            .ok_or_else(|| ConnectError::fatal(format!("Missing required configuration \"{prefix}type\" which has no default value.")))?;
        let (class_name, mut transform) = registry.transformation(class).ok_or_else(|| {
            ConnectError::fatal(format!("Invalid value {class} for configuration {prefix}type: Class {class} could not be found."))
        })?;
        transform.configure(&settings).map_err(|e| e.context(format!("configuring transform {alias}")))?;
        let predicate = match settings.get("predicate").filter(|p| !p.trim().is_empty()) {
            None => None,
            Some(name) => {
                let pprefix = format!("predicates.{name}.");
                let psettings = with_prefix(connector, &pprefix);
                let pclass = psettings.get("type").ok_or_else(|| {
                    ConnectError::fatal(format!("Missing required configuration \"{pprefix}type\" which has no default value."))
                })?;
                let mut p = registry.predicate(pclass).ok_or_else(|| {
                    ConnectError::fatal(format!(
                        "Invalid value {pclass} for configuration {pprefix}type: Class {pclass} could not be found."
                    ))
                })?;
                p.configure(&psettings).map_err(|e| e.context(format!("configuring predicate {name}")))?;
                let negate = settings.get("negate").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                Some((p, negate))
            }
        };
        steps.push(TransformStep { alias, class: class_name.to_string(), transform, predicate });
    }
    Ok(TransformChain::new(steps))
}
