//! Flatten, TimestampRouter, SetSchemaMetadata and HeaderFrom.

use crate::extract_field::Side;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef, SchemaType, Struct,
    Validator, Value,
};

/// `Flatten$Key` / `$Value`: nested structs and maps become top-level fields joined by `delimiter`.
pub struct Flatten {
    side: Side,
    delimiter: String,
}

impl Flatten {
    pub fn new(side: Side) -> Self {
        Flatten { side, delimiter: ".".into() }
    }

    fn flatten_schemaless(&self, prefix: &str, value: Value, out: &mut Vec<(Value, Value)>) {
        match value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let name = if prefix.is_empty() { k.to_string() } else { format!("{prefix}{}{k}", self.delimiter) };
                    self.flatten_schemaless(&name, v, out);
                }
            }
            other => out.push((Value::String(prefix.to_string()), other)),
        }
    }

    fn flatten_struct(
        &self,
        prefix: &str,
        schema: &Schema,
        value: Option<Struct>,
        optional: bool,
        fields: &mut Vec<(String, SchemaRef)>,
        values: &mut Struct,
    ) {
        let mut value = value;
        for field in &schema.fields {
            let name = if prefix.is_empty() { field.name.clone() } else { format!("{prefix}{}{}", self.delimiter, field.name) };
            let v = value.as_mut().and_then(|s| s.remove(&field.name));
            if field.schema.kind == SchemaType::Struct {
                let inner = match v {
                    Some(Value::Struct(s)) => Some(s),
                    _ => None,
                };
                self.flatten_struct(&name, &field.schema, inner, optional || field.schema.optional, fields, values);
            } else {
                let mut s = (*field.schema).clone();
                s.optional = s.optional || optional;
                fields.push((name.clone(), s.into_ref()));
                values.put(name, v.unwrap_or(Value::Null));
            }
        }
    }
}

impl Transformation for Flatten {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::new(
            "delimiter",
            ConfigType::String,
            Some("."),
            Importance::Medium,
            "Delimiter to insert between field names from the input record when generating field names for the output record",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.delimiter = self.config_def().parse(config)?.string("delimiter");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        match (schema_slot.clone(), std::mem::take(value_slot)) {
            (_, Value::Null) => {}
            (None, map @ Value::Map(_)) => {
                let mut out = Vec::new();
                self.flatten_schemaless("", map, &mut out);
                *value_slot = Value::Map(out);
            }
            (Some(s), Value::Struct(st)) if s.kind == SchemaType::Struct => {
                let (mut fields, mut values) = (Vec::new(), Struct::new());
                self.flatten_struct("", &s, Some(st), false, &mut fields, &mut values);
                let mut schema = Schema::structure(fields);
                schema.optional = s.optional;
                schema.name = s.name.clone();
                *schema_slot = Some(schema.into_ref());
                *value_slot = Value::Struct(values);
            }
            (_, other) => {
                let kind = other.type_name();
                *value_slot = other;
                return Err(ConnectError::data(format!("Only Map or Struct objects can be flattened, found: {kind}")));
            }
        }
        Ok(Transformed::Keep)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Format epoch milliseconds (UTC) with the SimpleDateFormat letters people use in topic names:
/// yyyy, yy, MM, dd, HH, mm, ss, SSS; text in single quotes is literal.
pub fn format_timestamp(ms: i64, pattern: &str) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s, milli) = (sod / 3600, (sod / 60) % 60, sod % 60, ms.rem_euclid(1000));
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match c {
            'y' if n == 2 => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            'y' => out.push_str(&format!("{y:04}")),
            'M' => out.push_str(&format!("{mo:0n$}")),
            'd' => out.push_str(&format!("{d:0n$}")),
            'H' => out.push_str(&format!("{h:0n$}")),
            'm' => out.push_str(&format!("{mi:0n$}")),
            's' => out.push_str(&format!("{s:0n$}")),
            'S' => out.push_str(&format!("{milli:03}")),
            other => (0..n).for_each(|_| out.push(other)),
        }
        i += n;
    }
    out
}

/// `TimestampRouter`: the topic becomes `topic.format` with `${topic}` and `${timestamp}` (the record
/// timestamp in `timestamp.format`, UTC).
pub struct TimestampRouter {
    topic_format: String,
    timestamp_format: String,
}

impl Default for TimestampRouter {
    fn default() -> Self {
        TimestampRouter { topic_format: "${topic}-${timestamp}".into(), timestamp_format: "yyyyMMdd".into() }
    }
}

impl Transformation for TimestampRouter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new(
                "topic.format",
                ConfigType::String,
                Some("${topic}-${timestamp}"),
                Importance::High,
                "Format string which can contain ${topic} and ${timestamp} as placeholders for the topic and timestamp, respectively.",
            ))
            .define(ConfigKey::new(
                "timestamp.format",
                ConfigType::String,
                Some("yyyyMMdd"),
                Importance::High,
                "Format string for the timestamp that is compatible with java.text.SimpleDateFormat.",
            ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.topic_format = parsed.string("topic.format");
        self.timestamp_format = parsed.string("timestamp.format");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let ts = record.timestamp.ok_or_else(|| ConnectError::data(format!("Timestamp missing on record: topic {}", record.topic)))?;
        record.topic =
            self.topic_format.replace("${topic}", &record.topic).replace("${timestamp}", &format_timestamp(ts, &self.timestamp_format));
        Ok(Transformed::Keep)
    }
}

/// `SetSchemaMetadata$Key` / `$Value`: set the schema's name and/or version.
pub struct SetSchemaMetadata {
    side: Side,
    name: Option<String>,
    version: Option<i32>,
}

impl SetSchemaMetadata {
    pub fn new(side: Side) -> Self {
        SetSchemaMetadata { side, name: None, version: None }
    }
}

impl Transformation for SetSchemaMetadata {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new("schema.name", ConfigType::String, None, Importance::High, "Schema name to set."))
            .define(ConfigKey::new("schema.version", ConfigType::Int, None, Importance::High, "Schema version to set."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.name = parsed.optional_string("schema.name");
        self.version = match parsed.value("schema.version") {
            connect_core::config::ConfigValue::Int(v) => Some(*v as i32),
            _ => None,
        };
        if self.name.is_none() && self.version.is_none() {
            return Err(ConnectError::fatal("Neither schema name nor version configured"));
        }
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, _) = self.side.parts(record);
        let schema = schema_slot.as_ref().ok_or_else(|| ConnectError::data("Schema required for [updating schema metadata]"))?;
        let mut s = (**schema).clone();
        if let Some(n) = &self.name {
            s.name = Some(n.clone());
        }
        if let Some(v) = self.version {
            s.version = Some(v);
        }
        *schema_slot = Some(s.into_ref());
        Ok(Transformed::Keep)
    }
}

/// `HeaderFrom$Key` / `$Value`: copy or move fields into headers.
pub struct HeaderFrom {
    side: Side,
    fields: Vec<String>,
    headers: Vec<String>,
    remove: bool,
}

impl HeaderFrom {
    pub fn new(side: Side) -> Self {
        HeaderFrom { side, fields: vec![], headers: vec![], remove: false }
    }
}

impl Transformation for HeaderFrom {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::required("fields", ConfigType::List, Importance::High, "Field names in the record whose values are to be copied or moved to headers."))
            .define(ConfigKey::required("headers", ConfigType::List, Importance::High, "Header names, in the same order as the field names listed in the fields configuration property."))
            .define(ConfigKey::required("operation", ConfigType::String, Importance::High, "Either move if the fields are to be moved to the headers (removed from the key/value), or copy if the fields are to be copied to the headers (retained in the key/value).").validator(Validator::OneOf(vec!["move", "copy"])))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.fields = parsed.list("fields");
        self.headers = parsed.list("headers");
        if self.fields.len() != self.headers.len() {
            return Err(ConnectError::fatal("'fields' config must have the same number of elements as 'headers' config."));
        }
        self.remove = parsed.string("operation").eq_ignore_ascii_case("move");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        let schema = schema_slot.clone();
        let mut found = Vec::with_capacity(self.fields.len());
        for (field, header) in self.fields.iter().zip(&self.headers) {
            let v =
                value_slot.get_field(field).cloned().ok_or_else(|| ConnectError::data(format!("Field {field} not found in the record")))?;
            let field_schema = schema.as_ref().and_then(|s| s.field(field)).map(|f| f.schema.clone());
            found.push((header.clone(), field_schema, v));
        }
        if self.remove {
            match value_slot {
                Value::Struct(st) => {
                    for f in &self.fields {
                        st.remove(f);
                    }
                    if let Some(s) = schema {
                        let kept: Vec<(String, SchemaRef)> = s
                            .fields
                            .iter()
                            .filter(|f| !self.fields.contains(&f.name))
                            .map(|f| (f.name.clone(), f.schema.clone()))
                            .collect();
                        let mut new = Schema::structure(kept);
                        new.optional = s.optional;
                        new.name = s.name.clone();
                        *schema_slot = Some(new.into_ref());
                    }
                }
                Value::Map(entries) => entries.retain(|(k, _)| !k.as_str().is_some_and(|k| self.fields.iter().any(|f| f == k))),
                _ => {}
            }
        }
        for (header, schema, value) in found {
            record.headers.0.push(connect_core::Header { key: header, schema, value });
        }
        Ok(Transformed::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::schemas;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn dates_format_like_simpledateformat() {
        assert_eq!(format_timestamp(1_601_992_860_000, "yyyyMMdd"), "20201006");
        assert_eq!(format_timestamp(1_601_992_860_000, "yyyy-MM-dd'T'HH:mm:ss.SSS"), "2020-10-06T14:01:00.000");
        assert_eq!(format_timestamp(0, "yy/M/d"), "70/1/1");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn timestamp_router() {
        let mut t = TimestampRouter::default();
        t.configure(&cfg(&[("topic.format", "${topic}-${timestamp}"), ("timestamp.format", "yyyy.MM")])).unwrap();
        let mut r = RecordData::new("trains", None, Value::Null).with_timestamp(Some(1_601_992_860_000));
        t.apply(&mut r).unwrap();
        assert_eq!(r.topic, "trains-2020.10");
        let mut no_ts = RecordData::new("trains", None, Value::Null);
        assert_eq!(t.apply(&mut no_ts).unwrap_err().kind(), connect_core::ErrorKind::Data);
    }

    #[test]
    fn flatten_schemaless_and_schemad() {
        let mut f = Flatten::new(Side::Value);
        f.configure(&cfg(&[("delimiter", "_")])).unwrap();
        let json: serde_json::Value = serde_json::from_str(r#"{"a":1,"loc":{"lat":53.7,"lon":-1.7}}"#).unwrap();
        let mut r = RecordData::new("t", None, Value::from_json(&json));
        f.apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"a":1,"loc_lat":53.7,"loc_lon":-1.7}));
        let inner = Schema::structure([("lat".to_string(), schemas::float64())]).into_ref();
        let schema = Schema::structure([("id".to_string(), schemas::int64()), ("loc".to_string(), inner)]).into_ref();
        let mut loc = Struct::new();
        loc.put("lat", Value::Float64(53.7));
        let mut st = Struct::new();
        st.put("id", Value::Int64(1)).put("loc", Value::Struct(loc));
        let mut r = RecordData::new("t", Some(schema), Value::Struct(st));
        f.apply(&mut r).unwrap();
        let names: Vec<String> = r.value_schema.as_ref().unwrap().fields.iter().map(|f| f.name.clone()).collect();
        assert_eq!(names, ["id", "loc_lat"]);
        assert_eq!(r.value.get_field("loc_lat"), Some(&Value::Float64(53.7)));
        assert!(f.apply(&mut RecordData::new("t", None, Value::Int64(1))).is_err());
    }

    #[test]
    fn schema_metadata_and_header_from() {
        let mut t = SetSchemaMetadata::new(Side::Value);
        t.configure(&cfg(&[("schema.name", "com.example.Reading"), ("schema.version", "3")])).unwrap();
        let mut r = RecordData::new("t", Some(schemas::int64()), Value::Int64(1));
        t.apply(&mut r).unwrap();
        assert_eq!(r.value_schema.as_ref().unwrap().name.as_deref(), Some("com.example.Reading"));
        assert_eq!(r.value_schema.as_ref().unwrap().version, Some(3));
        let mut h = HeaderFrom::new(Side::Value);
        h.configure(&cfg(&[("fields", "camera"), ("headers", "source.camera"), ("operation", "move")])).unwrap();
        let json: serde_json::Value = serde_json::from_str(r#"{"cat":2,"camera":"garden"}"#).unwrap();
        let mut r = RecordData::new("t", None, Value::from_json(&json));
        h.apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"cat":2}));
        assert_eq!(r.headers.last("source.camera").unwrap().value, Value::from("garden"));
        assert!(HeaderFrom::new(Side::Value).configure(&cfg(&[("fields", "a,b"), ("headers", "x"), ("operation", "copy")])).is_err());
    }
}
