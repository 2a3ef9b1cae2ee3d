//! The built-in predicates: TopicNameMatches, HasHeaderKey, RecordIsTombstone.

use connect_core::transform::Predicate;
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result};
use regex::Regex;

#[derive(Default)]
pub struct TopicNameMatches {
    pattern: Option<Regex>,
}

impl Predicate for TopicNameMatches {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required(
            "pattern",
            ConfigType::String,
            Importance::Medium,
            "A Java regular expression for matching against the name of a record's topic.",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let pattern = self.config_def().parse(config)?.string("pattern");
        self.pattern = Some(
            Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| ConnectError::fatal(format!("Invalid value {pattern} for configuration pattern")).with_source(e))?,
        );
        Ok(())
    }
    fn test(&self, record: &RecordData) -> bool {
        self.pattern.as_ref().is_some_and(|p| p.is_match(&record.topic))
    }
}

#[derive(Default)]
pub struct HasHeaderKey {
    name: String,
}

impl Predicate for HasHeaderKey {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required("name", ConfigType::String, Importance::Medium, "The header name."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.name = self.config_def().parse(config)?.string("name");
        Ok(())
    }
    fn test(&self, record: &RecordData) -> bool {
        record.headers.iter().any(|h| h.key == self.name)
    }
}

#[derive(Default)]
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }
    fn configure(&mut self, _config: &Config) -> Result<()> {
        Ok(())
    }
    fn test(&self, record: &RecordData) -> bool {
        record.value.is_null()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::Value;

    #[test]
    fn predicates() {
        let mut t = TopicNameMatches::default();
        t.configure(&[("pattern".to_string(), "rail-.*".to_string())].into_iter().collect()).unwrap();
        let mut r = RecordData::new("rail-moves", None, Value::Null);
        assert!(t.test(&r));
        assert!(RecordIsTombstone.test(&r));
        let mut h = HasHeaderKey::default();
        h.configure(&[("name".to_string(), "trace".to_string())].into_iter().collect()).unwrap();
        assert!(!h.test(&r));
        r.headers.add("trace", Value::from("1"));
        assert!(h.test(&r));
        assert!(!t.test(&RecordData::new("xrail-moves", None, Value::Null)));
    }
}
