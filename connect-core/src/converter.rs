//! Converters between Kafka bytes and the data model: StringConverter, ByteArrayConverter and
//! JsonConverter with Kafka Connect's class names, keys and wire format; plus header conversion.

use crate::config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, Validator};
use crate::data::{logical, schemas, Field, Schema, SchemaRef, SchemaType, Struct, Value};
use crate::error::{ConnectError, Result};
use base64::Engine;
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::Arc;

pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";

/// Serialises record keys or values to bytes and back.
// `from_connect`/`to_connect` keep the names of Kafka Connect's `fromConnectData`/`toConnectData`.
#[allow(clippy::wrong_self_convention)]
pub trait Converter: Send + Sync {
    fn config_def(&self) -> ConfigDef;
    /// `config` holds the converter's own keys (prefix stripped). `is_key`: converting keys, not values.
    fn configure(&mut self, config: &Config, is_key: bool) -> Result<()>;
    /// To bytes. `None` is a Kafka null (a tombstone for values). May borrow from `value`, so bytes and
    /// strings pass through without a copy.
    fn from_connect<'a>(&self, topic: &str, schema: Option<&SchemaRef>, value: &'a Value) -> Result<Option<Cow<'a, [u8]>>>;
    /// From bytes (`None`: a Kafka null).
    fn to_connect(&self, topic: &str, data: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)>;
}

/// A converter plugin: class name, aliases and constructor.
pub struct ConverterPlugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub create: fn() -> Box<dyn Converter>,
}

/// The converters connect-core ships.
pub fn builtin_converters() -> Vec<ConverterPlugin> {
    vec![
        ConverterPlugin { class: STRING_CONVERTER, aliases: &["StringConverter"], create: || Box::new(StringConverter) },
        ConverterPlugin { class: BYTE_ARRAY_CONVERTER, aliases: &["ByteArrayConverter"], create: || Box::new(ByteArrayConverter) },
        ConverterPlugin { class: JSON_CONVERTER, aliases: &["JsonConverter"], create: || Box::new(JsonConverter::default()) },
    ]
}

/// `org.apache.kafka.connect.storage.StringConverter`: UTF-8 strings; other values by their string form.
#[derive(Debug, Default, Clone)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(
            ConfigKey::new(
                "converter.encoding",
                ConfigType::String,
                Some("UTF8"),
                Importance::High,
                "The name of the Java character set to use for encoding strings",
            )
            .validator(Validator::OneOf(vec!["UTF8", "UTF-8"])),
        )
    }
    fn configure(&mut self, config: &Config, _is_key: bool) -> Result<()> {
        self.config_def().parse(config)?;
        Ok(())
    }
    fn from_connect<'a>(&self, _topic: &str, _schema: Option<&SchemaRef>, value: &'a Value) -> Result<Option<Cow<'a, [u8]>>> {
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
            Value::Bytes(b) => Some(Cow::Borrowed(&b[..])),
            other => Some(Cow::Owned(other.to_string().into_bytes())),
        })
    }
    fn to_connect(&self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)> {
        match data {
            None => Ok((Some(schemas::optional_string()), Value::Null)),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => Ok((Some(schemas::optional_string()), Value::String(s.to_string()))),
                Err(e) => Err(ConnectError::data("StringConverter: the data is not valid UTF-8").with_source(e)),
            },
        }
    }
}

/// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes in, bytes out, untouched.
#[derive(Debug, Default, Clone)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }
    fn configure(&mut self, _config: &Config, _is_key: bool) -> Result<()> {
        Ok(())
    }
    fn from_connect<'a>(&self, _topic: &str, _schema: Option<&SchemaRef>, value: &'a Value) -> Result<Option<Cow<'a, [u8]>>> {
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(Cow::Borrowed(&b[..]))),
            // Kafka Connect accepts ByteBuffer too; a string is the nearest thing we have to raw text.
            Value::String(s) => Ok(Some(Cow::Borrowed(s.as_bytes()))),
            other => Err(ConnectError::data(format!("ByteArrayConverter is not compatible with objects of type {}", other.type_name()))),
        }
    }
    fn to_connect(&self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)> {
        Ok(match data {
            None => (Some(schemas::optional_bytes()), Value::Null),
            Some(b) => (Some(schemas::optional_bytes()), Value::Bytes(Bytes::copy_from_slice(b))),
        })
    }
}

/// How JsonConverter writes Decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalFormat {
    #[default]
    Base64,
    Numeric,
}

/// `org.apache.kafka.connect.json.JsonConverter`, with and without the `{"schema","payload"}` envelope.
#[derive(Debug, Clone)]
pub struct JsonConverter {
    pub schemas_enable: bool,
    pub decimal_format: DecimalFormat,
}

impl Default for JsonConverter {
    fn default() -> Self {
        JsonConverter { schemas_enable: true, decimal_format: DecimalFormat::Base64 }
    }
}

const ENVELOPE_ERROR: &str = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";

impl Converter for JsonConverter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new(
                "schemas.enable",
                ConfigType::Boolean,
                Some("true"),
                Importance::High,
                "Include schemas within each of the serialized values and keys.",
            ))
            .define(ConfigKey::new(
                "schemas.cache.size",
                ConfigType::Int,
                Some("1000"),
                Importance::High,
                "The maximum number of schemas that can be cached in this converter instance.",
            ))
            .define(
                ConfigKey::new(
                    "decimal.format",
                    ConfigType::String,
                    Some("BASE64"),
                    Importance::Low,
                    "Controls which format this converter will serialize decimals in: BASE64 or NUMERIC.",
                )
                .validator(Validator::OneOf(vec!["BASE64", "NUMERIC"])),
            )
            .define(ConfigKey::new(
                "replace.null.with.default",
                ConfigType::Boolean,
                Some("true"),
                Importance::Low,
                "Whether to replace fields that have a default value and that are null to the default value.",
            ))
            .define(
                ConfigKey::new("converter.type", ConfigType::String, Some("value"), Importance::Low, "How this converter will be used.")
                    .validator(Validator::OneOf(vec!["key", "value", "header"])),
            )
    }
    fn configure(&mut self, config: &Config, _is_key: bool) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.schemas_enable = parsed.boolean("schemas.enable");
        self.decimal_format =
            if parsed.string("decimal.format").eq_ignore_ascii_case("NUMERIC") { DecimalFormat::Numeric } else { DecimalFormat::Base64 };
        Ok(())
    }
    fn from_connect<'a>(&self, _topic: &str, schema: Option<&SchemaRef>, value: &'a Value) -> Result<Option<Cow<'a, [u8]>>> {
        if value.is_null() && (schema.is_none() || !self.schemas_enable) {
            return Ok(None);
        }
        let payload = match schema {
            Some(s) => self.value_to_json(s, value)?,
            None => value.to_json(),
        };
        let json = if self.schemas_enable {
            serde_json::json!({"schema": schema.map(|s| schema_to_json(s)).unwrap_or(serde_json::Value::Null), "payload": payload})
        } else {
            payload
        };
        Ok(Some(Cow::Owned(serde_json::to_vec(&json).map_err(|e| ConnectError::data("JSON serialisation failed").with_source(e))?)))
    }
    fn to_connect(&self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value)> {
        let Some(bytes) = data else { return Ok((None, Value::Null)) };
        if bytes.is_empty() {
            return Ok((None, Value::Null));
        }
        let failed = |e: serde_json::Error| {
            ConnectError::data("Converting byte[] to Kafka Connect data failed due to serialization error").with_source(e)
        };
        if !self.schemas_enable {
            // Straight into the data model: no serde_json::Value in between (half the cost of a sink's decode).
            let value = serde::de::DeserializeSeed::deserialize(SchemalessValue, &mut serde_json::Deserializer::from_slice(bytes))
                .map_err(failed)?;
            return Ok((None, value));
        }
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(failed)?;
        let obj = match &json {
            serde_json::Value::Object(o) if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload") => o,
            _ => return Err(ConnectError::data(ENVELOPE_ERROR)),
        };
        let schema_json = &obj["schema"];
        if schema_json.is_null() {
            return Ok((None, Value::from_json(&obj["payload"])));
        }
        let schema = schema_from_json(schema_json)?;
        let value = json_to_value(&schema, &obj["payload"], "payload")?;
        Ok((Some(schema), value))
    }
}

impl JsonConverter {
    fn value_to_json(&self, schema: &Schema, value: &Value) -> Result<serde_json::Value> {
        use serde_json::Value as J;
        if value.is_null() {
            return match &schema.default {
                Some(d) => self.value_to_json(schema, d),
                None if schema.optional => Ok(J::Null),
                None => Err(ConnectError::data("Conversion error: null value for field that is required and has no default value")),
            };
        }
        if schema.name.as_deref() == Some(logical::DECIMAL) && self.decimal_format == DecimalFormat::Numeric {
            if let Value::Bytes(b) = value {
                let scale = logical::decimal_scale(schema).unwrap_or(0);
                let unscaled = logical::decimal_unscaled(b).ok_or_else(|| ConnectError::data("Decimal value too large"))?;
                let text = logical::decimal_to_string(unscaled, scale);
                return serde_json::from_str(&text).map_err(|e| ConnectError::data("invalid decimal").with_source(e));
            }
        }
        match (schema.kind, value) {
            (SchemaType::Struct, Value::Struct(s)) => {
                let mut obj = serde_json::Map::with_capacity(schema.fields.len());
                for field in &schema.fields {
                    let v = s.get(&field.name).unwrap_or(&Value::Null);
                    obj.insert(
                        field.name.clone(),
                        self.value_to_json(&field.schema, v).map_err(|e| e.context(format!("field {}", field.name)))?,
                    );
                }
                Ok(J::Object(obj))
            }
            (SchemaType::Array, Value::Array(items)) => match schema.items() {
                Some(item_schema) => Ok(J::Array(items.iter().map(|v| self.value_to_json(item_schema, v)).collect::<Result<_>>()?)),
                None => Ok(value.to_json()),
            },
            (SchemaType::Map, Value::Map(entries)) => {
                let (Some(ks), Some(vs)) = (&schema.key_schema, &schema.value_schema) else { return Ok(value.to_json()) };
                if ks.kind == SchemaType::String {
                    let mut obj = serde_json::Map::new();
                    for (k, v) in entries {
                        obj.insert(k.to_string(), self.value_to_json(vs, v)?);
                    }
                    Ok(J::Object(obj))
                } else {
                    Ok(J::Array(
                        entries
                            .iter()
                            .map(|(k, v)| Ok(J::Array(vec![self.value_to_json(ks, k)?, self.value_to_json(vs, v)?])))
                            .collect::<Result<_>>()?,
                    ))
                }
            }
            _ => {
                schema.validate_value(value).map_err(ConnectError::data)?;
                Ok(value.to_json())
            }
        }
    }
}

/// A schema as JsonConverter writes it in the envelope.
pub fn schema_to_json(schema: &Schema) -> serde_json::Value {
    schema_to_json_field(schema, None)
}

fn schema_to_json_field(schema: &Schema, field: Option<&str>) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("type".into(), schema.kind.json_name().into());
    match schema.kind {
        SchemaType::Struct => {
            obj.insert(
                "fields".into(),
                schema.fields.iter().map(|f| schema_to_json_field(&f.schema, Some(&f.name))).collect::<Vec<_>>().into(),
            );
        }
        SchemaType::Array => {
            if let Some(items) = schema.items() {
                obj.insert("items".into(), schema_to_json(items));
            }
        }
        SchemaType::Map => {
            if let Some(k) = &schema.key_schema {
                obj.insert("keys".into(), schema_to_json(k));
            }
            if let Some(v) = &schema.value_schema {
                obj.insert("values".into(), schema_to_json(v));
            }
        }
        _ => {}
    }
    obj.insert("optional".into(), schema.optional.into());
    if let Some(name) = &schema.name {
        obj.insert("name".into(), name.clone().into());
    }
    if let Some(v) = schema.version {
        obj.insert("version".into(), v.into());
    }
    if let Some(doc) = &schema.doc {
        obj.insert("doc".into(), doc.clone().into());
    }
    if !schema.parameters.is_empty() {
        obj.insert("parameters".into(), serde_json::to_value(&schema.parameters).unwrap_or_default());
    }
    if let Some(d) = &schema.default {
        obj.insert("default".into(), d.to_json());
    }
    if let Some(f) = field {
        obj.insert("field".into(), f.into());
    }
    serde_json::Value::Object(obj)
}

/// Parse a JsonConverter schema.
pub fn schema_from_json(json: &serde_json::Value) -> Result<SchemaRef> {
    let bad = |m: &str| ConnectError::data(format!("invalid schema: {m}"));
    let obj = json.as_object().ok_or_else(|| bad("not an object"))?;
    let type_name = obj.get("type").and_then(|t| t.as_str()).ok_or_else(|| bad("schema must contain 'type' field"))?;
    let kind = SchemaType::from_json_name(type_name).ok_or_else(|| bad(&format!("unknown schema type: {type_name}")))?;
    let mut schema = Schema::new(kind);
    schema.optional = obj.get("optional").and_then(|v| v.as_bool()).unwrap_or(false);
    schema.name = obj.get("name").and_then(|v| v.as_str()).map(str::to_string);
    schema.version = obj.get("version").and_then(|v| v.as_i64()).map(|v| v as i32);
    schema.doc = obj.get("doc").and_then(|v| v.as_str()).map(str::to_string);
    if let Some(params) = obj.get("parameters").and_then(|v| v.as_object()) {
        for (k, v) in params {
            schema.parameters.insert(k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        }
    }
    match kind {
        SchemaType::Struct => {
            let fields =
                obj.get("fields").and_then(|v| v.as_array()).ok_or_else(|| bad("struct schema's \"fields\" argument is not an array"))?;
            for (index, f) in fields.iter().enumerate() {
                let name =
                    f.get("field").and_then(|v| v.as_str()).ok_or_else(|| bad("struct schema's field name not specified properly"))?;
                schema.fields.push(Field { name: name.to_string(), index, schema: schema_from_json(f)? });
            }
        }
        SchemaType::Array => {
            let items = obj.get("items").ok_or_else(|| bad("array schema did not specify the items type"))?;
            schema.key_schema = Some(schema_from_json(items)?);
        }
        SchemaType::Map => {
            schema.key_schema = Some(schema_from_json(obj.get("keys").ok_or_else(|| bad("map schema did not specify the key type"))?)?);
            schema.value_schema =
                Some(schema_from_json(obj.get("values").ok_or_else(|| bad("map schema did not specify the value type"))?)?);
        }
        _ => {}
    }
    if let Some(d) = obj.get("default") {
        if !d.is_null() {
            schema.default = Some(json_to_value(&schema, d, "default")?);
        }
    }
    Ok(Arc::new(schema))
}

/// Convert a payload under a schema (JsonConverter's `convertToConnect`).
pub fn json_to_value(schema: &Schema, json: &serde_json::Value, path: &str) -> Result<Value> {
    use serde_json::Value as J;
    let mismatch = || ConnectError::data(format!("{path}: expected {} but found JSON {}", schema.kind.json_name(), json_kind(json)));
    if json.is_null() {
        return match &schema.default {
            Some(d) => Ok(d.clone()),
            None if schema.optional => Ok(Value::Null),
            None => Err(ConnectError::data(format!("{path}: invalid null value for required {} field", schema.kind.json_name()))),
        };
    }
    let int = |min: i64, max: i64| -> Result<i64> {
        let v = json.as_i64().ok_or_else(mismatch)?;
        if v < min || v > max {
            return Err(ConnectError::data(format!("{path}: {v} is out of range for {}", schema.kind.json_name())));
        }
        Ok(v)
    };
    Ok(match schema.kind {
        SchemaType::Int8 => Value::Int8(int(i8::MIN as i64, i8::MAX as i64)? as i8),
        SchemaType::Int16 => Value::Int16(int(i16::MIN as i64, i16::MAX as i64)? as i16),
        SchemaType::Int32 => Value::Int32(int(i32::MIN as i64, i32::MAX as i64)? as i32),
        SchemaType::Int64 => Value::Int64(json.as_i64().ok_or_else(mismatch)?),
        SchemaType::Float32 => Value::Float32(json.as_f64().ok_or_else(mismatch)? as f32),
        SchemaType::Float64 => Value::Float64(json.as_f64().ok_or_else(mismatch)?),
        SchemaType::Boolean => Value::Boolean(json.as_bool().ok_or_else(mismatch)?),
        SchemaType::String => Value::String(json.as_str().ok_or_else(mismatch)?.to_string()),
        SchemaType::Bytes => {
            if schema.name.as_deref() == Some(logical::DECIMAL) {
                if let J::Number(n) = json {
                    return decimal_from_number(schema, &n.to_string(), path);
                }
            }
            let text = json.as_str().ok_or_else(mismatch)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| ConnectError::data(format!("{path}: invalid base64 bytes")).with_source(e))?;
            Value::Bytes(Bytes::from(decoded))
        }
        SchemaType::Array => {
            let items = json.as_array().ok_or_else(mismatch)?;
            let item_schema = schema.items().ok_or_else(|| ConnectError::data("array schema without items"))?;
            Value::Array(
                items.iter().enumerate().map(|(i, v)| json_to_value(item_schema, v, &format!("{path}[{i}]"))).collect::<Result<_>>()?,
            )
        }
        SchemaType::Map => {
            let (ks, vs) = match (&schema.key_schema, &schema.value_schema) {
                (Some(k), Some(v)) => (k, v),
                _ => return Err(ConnectError::data("map schema without keys/values")),
            };
            match json {
                J::Object(obj) if ks.kind == SchemaType::String => Value::Map(
                    obj.iter()
                        .map(|(k, v)| Ok((Value::String(k.clone()), json_to_value(vs, v, &format!("{path}.{k}"))?)))
                        .collect::<Result<_>>()?,
                ),
                J::Array(pairs) => Value::Map(
                    pairs
                        .iter()
                        .map(|p| match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((json_to_value(ks, k, path)?, json_to_value(vs, v, path)?)),
                            _ => Err(ConnectError::data(format!("{path}: map entries must be [key, value] arrays"))),
                        })
                        .collect::<Result<_>>()?,
                ),
                _ => return Err(mismatch()),
            }
        }
        SchemaType::Struct => {
            let obj = json.as_object().ok_or_else(mismatch)?;
            let mut s = Struct::with_capacity(schema.fields.len());
            for field in &schema.fields {
                let child = obj.get(&field.name).unwrap_or(&J::Null);
                s.put(field.name.clone(), json_to_value(&field.schema, child, &format!("{path}.{}", field.name))?);
            }
            Value::Struct(s)
        }
    })
}

fn decimal_from_number(schema: &Schema, text: &str, path: &str) -> Result<Value> {
    let scale = logical::decimal_scale(schema).unwrap_or(0).max(0) as usize;
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    if text.contains(['e', 'E']) || frac_part.len() > scale {
        return Err(ConnectError::data(format!("{path}: decimal {text} does not fit scale {scale}")));
    }
    let digits = format!("{int_part}{frac_part}{}", "0".repeat(scale - frac_part.len()));
    let unscaled: i128 = digits.parse().map_err(|_| ConnectError::data(format!("{path}: invalid decimal {text}")))?;
    Ok(Value::Bytes(logical::decimal_bytes(unscaled)))
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Header values to bytes, as Kafka Connect's default SimpleHeaderConverter writes them: strings and bytes
/// as they are, other values as their JSON text.
pub fn header_to_bytes(value: &Value) -> Option<Cow<'_, [u8]>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
        Value::Bytes(b) => Some(Cow::Borrowed(&b[..])),
        other => Some(Cow::Owned(other.to_json().to_string().into_bytes())),
    }
}

/// Header bytes to a value: a string when it is UTF-8, raw bytes otherwise.
pub fn header_from_bytes(data: Option<&[u8]>) -> Value {
    match data {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::Bytes(Bytes::copy_from_slice(b)),
        },
    }
}

/// Schemaless JSON straight into a [`Value`], as [`Value::from_json`] maps it: objects become maps with string
/// keys in document order, integers that fit i64 become Int64, other numbers Float64.
struct SchemalessValue;

impl<'de> serde::de::DeserializeSeed<'de> for SchemalessValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(SchemalessVisitor)
    }
}

struct SchemalessVisitor;

impl<'de> serde::de::Visitor<'de> for SchemalessVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Boolean(b))
    }
    fn visit_i64<E>(self, i: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int64(i))
    }
    fn visit_u64<E>(self, u: u64) -> std::result::Result<Value, E> {
        Ok(i64::try_from(u).map(Value::Int64).unwrap_or(Value::Float64(u as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float64(f))
    }
    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(SchemalessValue)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut entries: Vec<(Value, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        // Positions by key, built only for large objects (a scan is cheaper for the usual few keys).
        let mut index: Option<std::collections::HashMap<String, usize>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(SchemalessValue)?;
            // A repeated key keeps its first place and its last value, as serde_json's map does.
            if entries.len() >= 32 && index.is_none() {
                index = Some(entries.iter().enumerate().filter_map(|(i, (k, _))| k.as_str().map(|k| (k.to_string(), i))).collect());
            }
            let found = match &index {
                Some(ix) => ix.get(&key).copied(),
                None => entries.iter().position(|(k, _)| k.as_str() == Some(key.as_str())),
            };
            match found {
                Some(i) => entries[i].1 = value,
                None => {
                    if let Some(ix) = index.as_mut() {
                        ix.insert(key.clone(), entries.len());
                    }
                    entries.push((Value::String(key), value));
                }
            }
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn schemaless_json_decodes_like_from_json() {
        let mut c = JsonConverter::default();
        c.configure(&[("schemas.enable".to_string(), "false".to_string())].into_iter().collect(), false).unwrap();
        for text in [
            r#"{"id":1,"big":18446744073709551615,"f":1.5,"s":"a\tb","ok":true,"n":null,"arr":[1,"x",{"k":[]}],"dup":1,"dup":2}"#,
            r#"[1,2,3]"#,
            r#""just text""#,
            r#"-42"#,
        ] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let (schema, value) = c.to_connect("t", Some(text.as_bytes())).unwrap();
            assert!(schema.is_none());
            assert_eq!(value, Value::from_json(&json), "{text}");
        }
        let many: String = format!("{{{}}}", (0..100).map(|i| format!("\"k{}\":{i}", i % 60)).collect::<Vec<_>>().join(","));
        let (_, value) = c.to_connect("t", Some(many.as_bytes())).unwrap();
        assert_eq!(value, Value::from_json(&serde_json::from_str(&many).unwrap()));
        assert!(c.to_connect("t", Some(b"{nope")).is_err());
    }
    use super::*;

    fn json(schemas: bool) -> JsonConverter {
        let mut c = JsonConverter::default();
        let mut cfg = Config::new();
        cfg.insert("schemas.enable".into(), schemas.to_string());
        c.configure(&cfg, false).unwrap();
        c
    }

    #[test]
    fn bytes_pass_through_without_copy() {
        let v = Value::Bytes(Bytes::from_static(b"\x00\xffraw"));
        let out = ByteArrayConverter.from_connect("t", None, &v).unwrap().unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(&out[..], b"\x00\xffraw");
        let s = Value::String("line".into());
        assert!(matches!(StringConverter.from_connect("t", None, &s).unwrap().unwrap(), Cow::Borrowed(b"line")));
    }

    #[test]
    fn string_converter_rejects_invalid_utf8_as_data_error() {
        let err = StringConverter.to_connect("t", Some(b"\xff\xfe")).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Data);
    }

    #[test]
    fn json_envelope_round_trip_with_logical_types() {
        let c = json(true);
        let input = br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"},{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","field":"ts"},{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"price"}],"optional":false},"payload":{"id":7,"name":null,"ts":1601992860000,"price":"BNI="}}"#;
        let (schema, value) = c.to_connect("t", Some(input)).unwrap();
        let schema = schema.unwrap();
        assert_eq!(value.get_field("id"), Some(&Value::Int32(7)));
        let price = value.get_field("price").unwrap();
        let Value::Bytes(b) = price else { panic!("decimal is bytes") };
        assert_eq!(logical::decimal_unscaled(b), Some(1234));
        let out = c.from_connect("t", Some(&schema), &value).unwrap().unwrap();
        let a: serde_json::Value = serde_json::from_slice(input).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(a["payload"], b["payload"]);
        assert_eq!(a["schema"]["fields"][3]["parameters"], b["schema"]["fields"][3]["parameters"]);
    }

    #[test]
    fn plain_json_with_schemas_enabled_gives_kafka_connects_error() {
        let err = json(true).to_connect("t", Some(br#"{"image":"Google","probability":97.3}"#)).unwrap_err();
        assert_eq!(err.message(), ENVELOPE_ERROR);
    }

    #[test]
    fn schemaless_json_and_malformed_json() {
        let c = json(false);
        let (schema, value) = c.to_connect("t", Some(br#"{"cat":2}"#)).unwrap();
        assert!(schema.is_none());
        assert_eq!(value.get_field("cat"), Some(&Value::Int64(2)));
        assert_eq!(&c.from_connect("t", None, &value).unwrap().unwrap()[..], br#"{"cat":2}"#);
        assert_eq!(c.to_connect("t", Some(b"{not json")).unwrap_err().kind(), crate::error::ErrorKind::Data);
        assert_eq!(c.to_connect("t", None).unwrap(), (None, Value::Null));
    }

    #[test]
    fn out_of_range_ints_are_data_errors() {
        let c = json(true);
        let err = c.to_connect("t", Some(br#"{"schema":{"type":"int8","optional":false},"payload":300}"#)).unwrap_err();
        assert!(err.message().contains("out of range"), "{err}");
    }

    #[test]
    fn numeric_decimals() {
        let c = JsonConverter { decimal_format: DecimalFormat::Numeric, ..Default::default() };
        let schema = logical::decimal(2).into_ref();
        let v = Value::Bytes(logical::decimal_bytes(-1050));
        let out = c.from_connect("t", Some(&schema), &v).unwrap().unwrap();
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["payload"].to_string(), "-10.5");
        let (_, back) = c.to_connect("t", Some(&out)).unwrap();
        assert_eq!(back, v);
    }
}
