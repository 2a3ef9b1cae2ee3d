//! Connector and plugin configuration: raw string maps, typed definitions, and validation that produces
//! exactly Kafka Connect's `ConfigInfos` (the body of `PUT /connector-plugins/{plugin}/config/validate`).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A raw configuration: every value a string, as in Kafka Connect's `Map<String, String>`.
pub type Config = BTreeMap<String, String>;

/// Turn a JSON object into a raw config. Numbers and booleans become their string form, so
/// `"tasks.max": 1` and `"auto.create": true` work; arrays become comma-separated lists.
pub fn config_from_json(map: &serde_json::Map<String, serde_json::Value>) -> Result<Config, String> {
    let mut out = Config::new();
    for (key, value) in map {
        out.insert(key.clone(), json_scalar_to_string(key, value)?);
    }
    Ok(out)
}

fn json_scalar_to_string(key: &str, value: &serde_json::Value) -> Result<String, String> {
    use serde_json::Value as J;
    Ok(match value {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        J::Bool(b) => b.to_string(),
        J::Array(items) => items.iter().map(|v| json_scalar_to_string(key, v)).collect::<Result<Vec<_>, _>>()?.join(","),
        J::Null => return Err(format!("config key '{key}' has a null value")),
        J::Object(_) => {
            return Err(format!("config key '{key}' has an object value; only strings, numbers, booleans and lists are allowed"))
        }
    })
}

/// Keys under `prefix`, with the prefix stripped (e.g. `producer.` overrides, `transforms.x.` settings).
pub fn with_prefix(config: &Config, prefix: &str) -> Config {
    config.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v.clone()))).collect()
}

/// Split a Kafka-style list value: comma-separated, items trimmed, empty items dropped.
pub fn parse_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The type of a config key, named as in Kafka's `ConfigDef.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Importance {
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Width {
    None,
    Short,
    Medium,
    Long,
}

/// A parsed config value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Boolean(bool),
    String(String),
    Int(i64),
    Double(f64),
    List(Vec<String>),
    Password(Password),
    /// No value and a `None` default (allowed for optional keys).
    Null,
}

/// A secret: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq)]
pub struct Password(pub String);

impl Password {
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}
impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

type CustomCheck = Arc<dyn Fn(&ConfigValue) -> Result<(), String> + Send + Sync>;

/// A check on a parsed value. Messages follow Kafka's wording where it has one.
#[derive(Clone)]
pub enum Validator {
    /// Numeric bounds, inclusive.
    Range { min: Option<f64>, max: Option<f64> },
    /// One of these strings, compared case-insensitively.
    OneOf(Vec<&'static str>),
    /// A non-empty string (after trimming).
    NonEmptyString,
    /// A list with at least one item.
    NonEmptyList,
    /// Anything else, with what it accepts in words for the docs (see [`Validator::described`]).
    Custom { check: CustomCheck, description: Option<String> },
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::Range { min, max } => write!(f, "Range({min:?}, {max:?})"),
            Validator::OneOf(v) => write!(f, "OneOf({v:?})"),
            Validator::NonEmptyString => f.write_str("NonEmptyString"),
            Validator::NonEmptyList => f.write_str("NonEmptyList"),
            Validator::Custom { description, .. } => write!(f, "Custom({description:?})"),
        }
    }
}

impl Validator {
    pub fn at_least(min: f64) -> Self {
        Validator::Range { min: Some(min), max: None }
    }
    pub fn between(min: f64, max: f64) -> Self {
        Validator::Range { min: Some(min), max: Some(max) }
    }
    pub fn custom(f: impl Fn(&ConfigValue) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Validator::Custom { check: Arc::new(f), description: None }
    }
    /// Say in words what a custom check accepts, for [`Validator::valid_values`] and so for the generated
    /// reference docs. The built-in validators describe themselves; this does nothing for them.
    pub fn described(self, text: &str) -> Self {
        match self {
            Validator::Custom { check, .. } => Validator::Custom { check, description: Some(text.to_string()) },
            other => other,
        }
    }

    /// The valid values, as Kafka's config docs show them (its `Validator.toString()`): `[1,...]`,
    /// `[0,...,100]`, `[insert, upsert]`, `non-empty string`; `None` for a custom check nobody described.
    pub fn valid_values(&self) -> Option<String> {
        match self {
            Validator::Range { min: Some(min), max: Some(max) } => Some(format!("[{},...,{}]", fmt_num(*min), fmt_num(*max))),
            Validator::Range { min: Some(min), max: None } => Some(format!("[{},...]", fmt_num(*min))),
            Validator::Range { min: None, max: Some(max) } => Some(format!("[...,{}]", fmt_num(*max))),
            Validator::Range { min: None, max: None } => None,
            Validator::OneOf(allowed) => Some(format!("[{}]", allowed.join(", "))),
            Validator::NonEmptyString => Some("non-empty string".to_string()),
            Validator::NonEmptyList => Some("non-empty list".to_string()),
            Validator::Custom { description, .. } => description.clone(),
        }
    }

    fn check(&self, name: &str, value: &ConfigValue, raw: &str) -> Result<(), String> {
        if matches!(value, ConfigValue::Null) {
            return Ok(());
        }
        match self {
            Validator::Range { min, max } => {
                let n = match value {
                    ConfigValue::Int(i) => *i as f64,
                    ConfigValue::Double(d) => *d,
                    _ => return Ok(()),
                };
                if let Some(min) = min {
                    if n < *min {
                        return Err(format!("Invalid value {raw} for configuration {name}: Value must be at least {}", fmt_num(*min)));
                    }
                }
                if let Some(max) = max {
                    if n > *max {
                        return Err(format!("Invalid value {raw} for configuration {name}: Value must be no more than {}", fmt_num(*max)));
                    }
                }
                Ok(())
            }
            Validator::OneOf(allowed) => {
                let items: Vec<&str> = match value {
                    ConfigValue::String(s) => vec![s.as_str()],
                    ConfigValue::List(l) => l.iter().map(String::as_str).collect(),
                    _ => return Ok(()),
                };
                for item in items {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(item)) {
                        return Err(format!(
                            "Invalid value {item} for configuration {name}: String must be one of: {}",
                            allowed.join(", ")
                        ));
                    }
                }
                Ok(())
            }
            Validator::NonEmptyString => match value {
                ConfigValue::String(s) if s.trim().is_empty() => {
                    Err(format!("Invalid value {raw} for configuration {name}: String may not be empty"))
                }
                _ => Ok(()),
            },
            Validator::NonEmptyList => match value {
                ConfigValue::List(l) if l.is_empty() => Err(format!("Invalid value {raw} for configuration {name}: List may not be empty")),
                _ => Ok(()),
            },
            Validator::Custom { check, .. } => check(value).map_err(|e| format!("Invalid value {raw} for configuration {name}: {e}")),
        }
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// One key of a [`ConfigDef`].
#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: String,
    pub kind: ConfigType,
    /// `None`: the key is required.
    pub default: Option<DefaultValue>,
    pub importance: Importance,
    pub documentation: String,
    pub group: Option<String>,
    pub order_in_group: i32,
    pub width: Width,
    pub display_name: String,
    pub dependents: Vec<String>,
    pub validator: Option<Validator>,
    pub recommended: Vec<String>,
}

/// A default: a string to parse, or explicitly none (an optional key without a value).
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    Value(String),
    Null,
}

impl ConfigKey {
    /// A key with a default value (`Some`) or an optional key without one (`None` → null).
    pub fn new(name: &str, kind: ConfigType, default: Option<&str>, importance: Importance, documentation: &str) -> Self {
        ConfigKey {
            name: name.to_string(),
            kind,
            default: Some(match default {
                Some(d) => DefaultValue::Value(d.to_string()),
                None => DefaultValue::Null,
            }),
            importance,
            documentation: documentation.to_string(),
            group: None,
            order_in_group: -1,
            width: Width::None,
            display_name: name.to_string(),
            dependents: Vec::new(),
            validator: None,
            recommended: Vec::new(),
        }
    }
    /// A key that must be given.
    pub fn required(name: &str, kind: ConfigType, importance: Importance, documentation: &str) -> Self {
        let mut key = Self::new(name, kind, None, importance, documentation);
        key.default = None;
        key
    }
    pub fn validator(mut self, v: Validator) -> Self {
        self.validator = Some(v);
        self
    }
    pub fn group(mut self, group: &str, order: i32) -> Self {
        self.group = Some(group.to_string());
        self.order_in_group = order;
        self
    }
    pub fn width(mut self, width: Width) -> Self {
        self.width = width;
        self
    }
    pub fn display_name(mut self, name: &str) -> Self {
        self.display_name = name.to_string();
        self
    }
    pub fn recommended(mut self, values: &[&str]) -> Self {
        self.recommended = values.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn dependents(mut self, deps: &[&str]) -> Self {
        self.dependents = deps.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    fn parse(&self, raw: &str) -> Result<ConfigValue, String> {
        let bad = |expected: &str| format!("Invalid value {raw} for configuration {}: {expected}", self.name);
        let trimmed = raw.trim();
        Ok(match self.kind {
            ConfigType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" => ConfigValue::Boolean(true),
                "false" => ConfigValue::Boolean(false),
                _ => return Err(bad("Expected value to be either true or false")),
            },
            ConfigType::String | ConfigType::Class => ConfigValue::String(trimmed.to_string()),
            ConfigType::Password => ConfigValue::Password(Password(raw.to_string())),
            ConfigType::Int => {
                let v: i64 = trimmed.parse().map_err(|_| bad("Not a number of type INT"))?;
                if v < i32::MIN as i64 || v > i32::MAX as i64 {
                    return Err(bad("Not a number of type INT"));
                }
                ConfigValue::Int(v)
            }
            ConfigType::Short => {
                let v: i16 = trimmed.parse().map_err(|_| bad("Not a number of type SHORT"))?;
                ConfigValue::Int(v as i64)
            }
            ConfigType::Long => ConfigValue::Int(trimmed.parse().map_err(|_| bad("Not a number of type LONG"))?),
            ConfigType::Double => ConfigValue::Double(trimmed.parse().map_err(|_| bad("Not a number of type DOUBLE"))?),
            ConfigType::List => ConfigValue::List(parse_list(raw)),
        })
    }
}

/// A set of typed keys (Kafka's `ConfigDef`).
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

impl ConfigDef {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a key; a later definition of the same name replaces the earlier one.
    pub fn define(mut self, key: ConfigKey) -> Self {
        self.keys.retain(|k| k.name != key.name);
        self.keys.push(key);
        self
    }
    /// Add every key of `other` (its definitions win).
    pub fn merge(mut self, other: &ConfigDef) -> Self {
        for key in &other.keys {
            self = self.define(key.clone());
        }
        self
    }
    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }
    pub fn key(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Parse and validate; on success every defined key has a value.
    pub fn parse(&self, config: &Config) -> Result<ParsedConfig, ConfigErrors> {
        let (parsed, results) = self.evaluate(config);
        let errors: Vec<(String, String)> =
            results.into_iter().flat_map(|(name, errs)| errs.into_iter().map(move |e| (name.clone(), e))).collect();
        if errors.is_empty() {
            Ok(parsed)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Validate into Kafka Connect's response shape. `name` is the plugin class.
    pub fn validate(&self, name: &str, config: &Config) -> ConfigInfos {
        let (_, results) = self.evaluate(config);
        self.infos(name, config, results)
    }

    /// Build a validate response from per-key errors (which may include errors found by a plugin's own checks).
    pub fn infos(&self, name: &str, config: &Config, mut errors: BTreeMap<String, Vec<String>>) -> ConfigInfos {
        let mut groups: Vec<String> = Vec::new();
        for key in &self.keys {
            if let Some(g) = &key.group {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
        let configs: Vec<ConfigInfo> = self
            .keys
            .iter()
            .map(|key| {
                let value = config.get(&key.name).cloned().or_else(|| match &key.default {
                    Some(DefaultValue::Value(d)) => Some(d.clone()),
                    _ => None,
                });
                let value = if key.kind == ConfigType::Password && value.is_some() { Some("[hidden]".to_string()) } else { value };
                ConfigInfo {
                    definition: ConfigKeyInfo {
                        name: key.name.clone(),
                        kind: key.kind,
                        required: key.is_required(),
                        default_value: match &key.default {
                            Some(DefaultValue::Value(d)) => Some(d.clone()),
                            _ => None,
                        },
                        importance: key.importance,
                        documentation: key.documentation.clone(),
                        group: key.group.clone(),
                        order: key.order_in_group,
                        width: key.width,
                        display_name: key.display_name.clone(),
                        dependents: key.dependents.clone(),
                    },
                    value: ConfigValueInfo {
                        name: key.name.clone(),
                        value,
                        recommended_values: key.recommended.clone(),
                        errors: errors.remove(&key.name).unwrap_or_default(),
                        visible: true,
                    },
                }
            })
            .collect();
        // Errors for keys this definition does not know (e.g. from a plugin's extra checks) still count.
        let mut extra: Vec<ConfigInfo> = errors
            .into_iter()
            .filter(|(_, errs)| !errs.is_empty())
            .map(|(name, errs)| ConfigInfo {
                definition: ConfigKeyInfo {
                    name: name.clone(),
                    kind: ConfigType::String,
                    required: false,
                    default_value: None,
                    importance: Importance::Low,
                    documentation: String::new(),
                    group: None,
                    order: -1,
                    width: Width::None,
                    display_name: name.clone(),
                    dependents: vec![],
                },
                value: ConfigValueInfo {
                    name: name.clone(),
                    value: config.get(&name).cloned(),
                    recommended_values: vec![],
                    errors: errs,
                    visible: true,
                },
            })
            .collect();
        let mut configs = configs;
        configs.append(&mut extra);
        let error_count = configs.iter().map(|c| c.value.errors.len()).sum();
        ConfigInfos { name: name.to_string(), error_count, groups, configs }
    }

    fn evaluate(&self, config: &Config) -> (ParsedConfig, BTreeMap<String, Vec<String>>) {
        let mut values = BTreeMap::new();
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in &self.keys {
            let mut errs = Vec::new();
            let raw = config.get(&key.name);
            let parsed = match (raw, &key.default) {
                (Some(raw), _) => key.parse(raw),
                (None, Some(DefaultValue::Value(d))) => key.parse(d),
                (None, Some(DefaultValue::Null)) => Ok(ConfigValue::Null),
                (None, None) => Err(format!("Missing required configuration \"{}\" which has no default value.", key.name)),
            };
            match parsed {
                Ok(v) => {
                    if let Some(validator) = &key.validator {
                        let raw_text = raw.map(String::as_str).unwrap_or("");
                        if let Err(e) = validator.check(&key.name, &v, raw_text) {
                            errs.push(e);
                        }
                    }
                    values.insert(key.name.clone(), v);
                }
                Err(e) => errs.push(e),
            }
            if !errs.is_empty() {
                errors.insert(key.name.clone(), errs);
            }
        }
        (ParsedConfig { values, raw: config.clone() }, errors)
    }
}

/// Errors from [`ConfigDef::parse`]: `(key, message)` pairs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<(String, String)>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msgs: Vec<&str> = self.0.iter().map(|(_, m)| m.as_str()).collect();
        f.write_str(&msgs.join("; "))
    }
}

impl From<ConfigErrors> for crate::error::ConnectError {
    fn from(e: ConfigErrors) -> Self {
        crate::error::ConnectError::fatal(format!("invalid configuration: {e}"))
    }
}

/// A config parsed against its definition. Getters panic only on programming errors (asking for a key
/// that was never defined, or with the wrong type); user mistakes were caught by [`ConfigDef::parse`].
#[derive(Debug, Clone)]
pub struct ParsedConfig {
    values: BTreeMap<String, ConfigValue>,
    raw: Config,
}

impl ParsedConfig {
    pub fn raw(&self) -> &Config {
        &self.raw
    }
    pub fn value(&self, name: &str) -> &ConfigValue {
        self.values.get(name).unwrap_or_else(|| panic!("config key {name} is not defined"))
    }
    pub fn string(&self, name: &str) -> String {
        match self.value(name) {
            ConfigValue::String(s) => s.clone(),
            ConfigValue::Password(p) => p.0.clone(),
            ConfigValue::Null => String::new(),
            other => panic!("config key {name} is not a string: {other:?}"),
        }
    }
    pub fn optional_string(&self, name: &str) -> Option<String> {
        match self.value(name) {
            ConfigValue::Null => None,
            _ => Some(self.string(name)),
        }
    }
    pub fn int(&self, name: &str) -> i64 {
        match self.value(name) {
            ConfigValue::Int(i) => *i,
            other => panic!("config key {name} is not an integer: {other:?}"),
        }
    }
    pub fn double(&self, name: &str) -> f64 {
        match self.value(name) {
            ConfigValue::Double(d) => *d,
            ConfigValue::Int(i) => *i as f64,
            other => panic!("config key {name} is not a double: {other:?}"),
        }
    }
    pub fn boolean(&self, name: &str) -> bool {
        match self.value(name) {
            ConfigValue::Boolean(b) => *b,
            other => panic!("config key {name} is not a boolean: {other:?}"),
        }
    }
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            ConfigValue::List(l) => l.clone(),
            ConfigValue::Null => Vec::new(),
            other => panic!("config key {name} is not a list: {other:?}"),
        }
    }
    pub fn password(&self, name: &str) -> Option<Password> {
        match self.value(name) {
            ConfigValue::Password(p) => Some(p.clone()),
            _ => None,
        }
    }
}

/// Kafka Connect's `ConfigInfos`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigInfos {
    pub name: String,
    pub error_count: usize,
    pub groups: Vec<String>,
    pub configs: Vec<ConfigInfo>,
}

impl ConfigInfos {
    /// `(key, message)` for every error, in key order.
    pub fn errors(&self) -> Vec<(String, String)> {
        self.configs.iter().flat_map(|c| c.value.errors.iter().map(move |e| (c.value.name.clone(), e.clone()))).collect()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigInfo {
    pub definition: ConfigKeyInfo,
    pub value: ConfigValueInfo,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigKeyInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ConfigType,
    pub required: bool,
    pub default_value: Option<String>,
    pub importance: Importance,
    pub documentation: String,
    pub group: Option<String>,
    pub order: i32,
    pub width: Width,
    pub display_name: String,
    pub dependents: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigValueInfo {
    pub name: String,
    pub value: Option<String>,
    pub recommended_values: Vec<String>,
    pub errors: Vec<String>,
    pub visible: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("topic", ConfigType::String, Importance::High, "Target topic")
                    .validator(Validator::NonEmptyString)
                    .group("Common", 1),
            )
            .define(
                ConfigKey::new("batch.size", ConfigType::Int, Some("2000"), Importance::Low, "Lines per poll")
                    .validator(Validator::at_least(1.0)),
            )
            .define(ConfigKey::new("auto.create", ConfigType::Boolean, Some("false"), Importance::Low, ""))
            .define(
                ConfigKey::new("mode", ConfigType::String, Some("insert"), Importance::Low, "")
                    .validator(Validator::OneOf(vec!["insert", "upsert"])),
            )
            .define(ConfigKey::new("secret", ConfigType::Password, None, Importance::Low, ""))
    }

    #[test]
    fn json_numbers_and_booleans_become_strings() {
        let json: serde_json::Value = serde_json::json!({"tasks.max": 1, "auto.create": true, "topics": ["a", "b"], "x": 1.5});
        let cfg = config_from_json(json.as_object().unwrap()).unwrap();
        assert_eq!(cfg["tasks.max"], "1");
        assert_eq!(cfg["auto.create"], "true");
        assert_eq!(cfg["topics"], "a,b");
        assert_eq!(cfg["x"], "1.5");
        assert!(config_from_json(serde_json::json!({"a": {"b": 1}}).as_object().unwrap()).is_err());
    }

    #[test]
    fn parse_applies_defaults_and_types() {
        let mut cfg = Config::new();
        cfg.insert("topic".into(), "t".into());
        cfg.insert("auto.create".into(), "TRUE".into());
        let parsed = def().parse(&cfg).unwrap();
        assert_eq!(parsed.int("batch.size"), 2000);
        assert!(parsed.boolean("auto.create"));
        assert_eq!(parsed.string("mode"), "insert");
        assert!(parsed.password("secret").is_none());
    }

    #[test]
    fn validate_matches_kafka_connect_shape_and_messages() {
        let mut cfg = Config::new();
        cfg.insert("batch.size".into(), "0".into());
        cfg.insert("mode".into(), "merge".into());
        cfg.insert("secret".into(), "hunter2".into());
        let infos = def().validate("FileStreamSource", &cfg);
        assert_eq!(infos.error_count, 3);
        let json = serde_json::to_value(&infos).unwrap();
        assert_eq!(json["groups"], serde_json::json!(["Common"]));
        let topic = &json["configs"][0];
        assert_eq!(topic["definition"]["type"], "STRING");
        assert_eq!(topic["definition"]["required"], true);
        assert_eq!(topic["definition"]["importance"], "HIGH");
        assert_eq!(topic["definition"]["width"], "NONE");
        assert_eq!(topic["definition"]["order"], 1);
        assert_eq!(topic["value"]["errors"][0], "Missing required configuration \"topic\" which has no default value.");
        assert_eq!(json["configs"][1]["value"]["errors"][0], "Invalid value 0 for configuration batch.size: Value must be at least 1");
        assert_eq!(
            json["configs"][3]["value"]["errors"][0],
            "Invalid value merge for configuration mode: String must be one of: insert, upsert"
        );
        assert_eq!(json["configs"][4]["value"]["value"], "[hidden]");
    }

    #[test]
    fn bad_numbers_and_booleans_are_errors_not_panics() {
        let mut cfg = Config::new();
        cfg.insert("topic".into(), "t".into());
        cfg.insert("batch.size".into(), "lots".into());
        cfg.insert("auto.create".into(), "yes".into());
        let err = def().parse(&cfg).unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert!(err.to_string().contains("Not a number of type INT"));
    }
}
