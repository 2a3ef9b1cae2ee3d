//! `org.apache.kafka.connect.transforms.RegexRouter`: rewrites the topic when the whole name matches.

use connect_core::java_regex::Replacement;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result};
use regex::Regex;

#[derive(Default)]
pub struct RegexRouter {
    regex: Option<Regex>,
    /// In Java's syntax (`$1_$2` is group 1, `_`, group 2).
    replacement: Option<Replacement>,
}

impl Transformation for RegexRouter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::required("regex", ConfigType::String, Importance::High, "Regular expression to use for matching."))
            .define(ConfigKey::required("replacement", ConfigType::String, Importance::High, "Replacement string."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        let pattern = parsed.string("regex");
        // Java's Matcher.matches() needs the whole topic to match.
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| ConnectError::fatal(format!("Invalid value {pattern} for configuration regex")).with_source(e))?;
        let text = parsed.string("replacement");
        let replacement = Replacement::parse(&text, &regex, &[])
            .map_err(|e| ConnectError::fatal(format!("Invalid value {text} for configuration replacement: {e}")))?;
        self.regex = Some(regex);
        self.replacement = Some(replacement);
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (Some(regex), Some(replacement)) = (&self.regex, &self.replacement) else {
            return Err(ConnectError::fatal("RegexRouter is not configured"));
        };
        if let Some(caps) = regex.captures(&record.topic) {
            let mut topic = String::new();
            replacement.expand(&caps, &|_| String::new(), &mut topic);
            record.topic = topic;
        }
        Ok(Transformed::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::Value;

    #[test]
    fn routes_whole_matches_only() {
        let mut t = RegexRouter::default();
        let cfg: Config = [("regex", "sock(.*)"), ("replacement", "data_$1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        t.configure(&cfg).unwrap();
        let mut r = RecordData::new("sockfound", None, Value::Null);
        t.apply(&mut r).unwrap();
        assert_eq!(r.topic, "data_found");
        let mut r = RecordData::new("xsock", None, Value::Null);
        t.apply(&mut r).unwrap();
        assert_eq!(r.topic, "xsock");
    }

    #[test]
    fn replacements_read_groups_as_java_does() {
        // A group followed by an underscore: the regex crate's syntax would read a group named `1_` (empty).
        let mut t = RegexRouter::default();
        let cfg: Config = [("regex", "(.*)-(.*)"), ("replacement", "$1_$2")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        t.configure(&cfg).unwrap();
        let mut r = RecordData::new("trains-raw", None, Value::Null);
        t.apply(&mut r).unwrap();
        assert_eq!(r.topic, "trains_raw");
        let bad: Config = [("regex", "(a)"), ("replacement", "$2")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(RegexRouter::default().configure(&bad).is_err(), "a group the pattern does not have is a config error");
    }

    #[test]
    fn bad_regex_is_a_config_error() {
        let mut t = RegexRouter::default();
        let cfg: Config = [("regex", "("), ("replacement", "x")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(t.configure(&cfg).is_err());
    }
}
