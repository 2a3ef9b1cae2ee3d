//! SMTs that reshape the fields of a key or value: ReplaceField, InsertField, MaskField, HoistField,
//! ValueToKey; and the header SMTs DropHeaders and InsertHeader. Each works on schemaless maps and on
//! structs with schemas (whose schema it rebuilds).

use crate::extract_field::Side;
use connect_core::config::parse_list;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    logical, schemas, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef,
    SchemaType, Struct, Value,
};

/// A value's fields as ordered (name, schema, value) triples; `None` schema for schemaless maps.
pub(crate) type FieldList = Vec<(String, Option<SchemaRef>, Value)>;

/// The fields of a value; see [`FieldList`].
pub(crate) fn fields_of(schema: &Option<SchemaRef>, value: Value, smt: &str) -> Result<FieldList> {
    fields_or_value(schema, value, smt).map_err(|(e, _)| e)
}

/// As [`fields_of`], but a value of the wrong shape comes back with the error, untouched: a transform can then
/// leave the record as it was without copying the value beforehand.
pub(crate) fn fields_or_value(
    schema: &Option<SchemaRef>,
    value: Value,
    smt: &str,
) -> std::result::Result<FieldList, (ConnectError, Value)> {
    match (schema, value) {
        (Some(s), Value::Struct(mut st)) if s.kind == SchemaType::Struct => {
            Ok(s.fields.iter().map(|f| (f.name.clone(), Some(f.schema.clone()), st.remove(&f.name).unwrap_or(Value::Null))).collect())
        }
        (None, Value::Map(entries)) => match entries.iter().find(|(k, _)| !matches!(k, Value::String(_))) {
            Some((other, _)) => {
                let e = ConnectError::data(format!("{smt}: map keys must be strings, found {}", other.type_name()));
                Err((e, Value::Map(entries)))
            }
            None => Ok(entries
                .into_iter()
                .map(|(k, v)| match k {
                    Value::String(k) => (k, None, v),
                    _ => unreachable!("checked above"),
                })
                .collect()),
        },
        (None, Value::Struct(st)) => Ok(st.iter().map(|(k, v)| (k.clone(), None, v.clone())).collect()),
        (Some(_), other) => {
            Err((ConnectError::data(format!("Only Struct objects supported for [{smt}], found: {}", other.type_name())), other))
        }
        (None, other) => Err((
            ConnectError::data(format!("Only Map objects supported in absence of schema for [{smt}], found: {}", other.type_name())),
            other,
        )),
    }
}

/// Rebuild a value (and its schema, when it had one) from fields.
pub(crate) fn rebuild(had_schema: Option<&SchemaRef>, fields: Vec<(String, Option<SchemaRef>, Value)>) -> (Option<SchemaRef>, Value) {
    match had_schema {
        Some(old) => {
            let mut schema =
                Schema::structure(fields.iter().map(|(n, s, _)| (n.clone(), s.clone().unwrap_or_else(schemas::optional_string))));
            schema.optional = old.optional;
            schema.name = old.name.clone();
            schema.version = old.version;
            schema.doc = old.doc.clone();
            let value: Struct = fields.into_iter().map(|(n, _, v)| (n, v)).collect();
            (Some(schema.into_ref()), Value::Struct(value))
        }
        None => (None, Value::Map(fields.into_iter().map(|(n, _, v)| (Value::String(n), v)).collect())),
    }
}

fn cfg_list(config: &Config, keys: &[&str]) -> Vec<String> {
    keys.iter().find_map(|k| config.get(*k)).map(|v| parse_list(v)).unwrap_or_default()
}

/// `ReplaceField$Key` / `$Value`: keep (`include`, old name `whitelist`), drop (`exclude`, old name
/// `blacklist`) and rename (`renames=from:to,...`) fields.
pub struct ReplaceField {
    side: Side,
    include: Vec<String>,
    exclude: Vec<String>,
    renames: Vec<(String, String)>,
}

impl ReplaceField {
    pub fn new(side: Side) -> Self {
        ReplaceField { side, include: vec![], exclude: vec![], renames: vec![] }
    }
}

impl Transformation for ReplaceField {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new(
                "exclude",
                ConfigType::List,
                Some(""),
                Importance::Medium,
                "Fields to exclude. This takes precedence over the fields to include.",
            ))
            .define(ConfigKey::new(
                "include",
                ConfigType::List,
                Some(""),
                Importance::Medium,
                "Fields to include. If specified, only these fields will be used.",
            ))
            .define(ConfigKey::new("renames", ConfigType::List, Some(""), Importance::Medium, "Field rename mappings, as from:to pairs."))
            .define(ConfigKey::new("blacklist", ConfigType::List, None, Importance::Low, "Deprecated name of exclude."))
            .define(ConfigKey::new("whitelist", ConfigType::List, None, Importance::Low, "Deprecated name of include."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.config_def().parse(config)?;
        self.exclude = cfg_list(config, &["exclude", "blacklist"]);
        self.include = cfg_list(config, &["include", "whitelist"]);
        self.renames = cfg_list(config, &["renames"])
            .into_iter()
            .map(|pair| match pair.split_once(':') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.trim().to_string(), b.trim().to_string())),
                _ => Err(ConnectError::fatal(format!("Invalid value {pair} for configuration renames: Invalid rename mapping: {pair}"))),
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        if value_slot.is_null() {
            return Ok(Transformed::Keep);
        }
        let old_schema = schema_slot.clone();
        let fields = fields_of(&old_schema, std::mem::take(value_slot), "field replacement")?;
        let kept = fields
            .into_iter()
            .filter(|(n, _, _)| !self.exclude.contains(n) && (self.include.is_empty() || self.include.contains(n)))
            .map(|(n, s, v)| (self.renames.iter().find(|(from, _)| *from == n).map(|(_, to)| to.clone()).unwrap_or(n), s, v))
            .collect();
        let (schema, value) = rebuild(old_schema.as_ref(), kept);
        let (schema_slot, value_slot) = self.side.parts(record);
        *schema_slot = schema;
        *value_slot = value;
        Ok(Transformed::Keep)
    }
}

/// `InsertField$Key` / `$Value`: add the topic, partition, offset (sinks), timestamp, or a static value.
/// A name may end in `!` (required) or `?` (optional, the default).
pub struct InsertField {
    side: Side,
    topic: Option<String>,
    partition: Option<String>,
    offset: Option<String>,
    timestamp: Option<String>,
    static_field: Option<(String, String)>,
}

impl InsertField {
    pub fn new(side: Side) -> Self {
        InsertField { side, topic: None, partition: None, offset: None, timestamp: None, static_field: None }
    }
}

fn field_name(config: &Config, key: &str) -> Option<String> {
    config.get(key).map(|v| v.trim().trim_end_matches(['!', '?']).to_string()).filter(|v| !v.is_empty())
}

impl Transformation for InsertField {
    fn config_def(&self) -> ConfigDef {
        let key = |name: &str, doc: &str| ConfigKey::new(name, ConfigType::String, None, Importance::Medium, doc);
        ConfigDef::new()
            .define(key("topic.field", "Field name for Kafka topic."))
            .define(key("partition.field", "Field name for Kafka partition."))
            .define(key("offset.field", "Field name for Kafka offset - only applicable to sink connectors."))
            .define(key("timestamp.field", "Field name for record timestamp."))
            .define(key("static.field", "Field name for static data field."))
            .define(key("static.value", "Static field value, if field name configured."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.config_def().parse(config)?;
        self.topic = field_name(config, "topic.field");
        self.partition = field_name(config, "partition.field");
        self.offset = field_name(config, "offset.field");
        self.timestamp = field_name(config, "timestamp.field");
        self.static_field = match (field_name(config, "static.field"), config.get("static.value")) {
            (Some(f), Some(v)) => Some((f, v.clone())),
            (Some(_), None) => {
                return Err(ConnectError::fatal("Invalid value for configuration static.value: a value is needed with static.field"))
            }
            _ => None,
        };
        if self.topic.is_none()
            && self.partition.is_none()
            && self.offset.is_none()
            && self.timestamp.is_none()
            && self.static_field.is_none()
        {
            return Err(ConnectError::fatal(
                "InsertField needs at least one of topic.field, partition.field, offset.field, timestamp.field, static.field",
            ));
        }
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let topic = record.topic.clone();
        let partition = record.partition;
        let timestamp = record.timestamp;
        let kafka_offset = record.kafka_offset;
        let (schema_slot, value_slot) = self.side.parts(record);
        if value_slot.is_null() && schema_slot.is_none() {
            return Ok(Transformed::Keep); // a tombstone stays a tombstone
        }
        if self.offset.is_some() && kafka_offset.is_none() {
            // As Kafka's InsertField: the offset exists only for records consumed from Kafka.
            return Err(ConnectError::data(
                "InsertField: offset.field is only applicable to sink connectors (this record has no Kafka offset)",
            ));
        }
        let old_schema = schema_slot.clone();
        let mut fields = fields_of(&old_schema, std::mem::take(value_slot), "field insertion")?;
        let mut add = |name: &Option<String>, schema: SchemaRef, value: Value| {
            if let Some(n) = name {
                fields.retain(|(f, _, _)| f != n);
                fields.push((n.clone(), Some(schema), value));
            }
        };
        add(&self.topic, schemas::optional_string(), Value::String(topic));
        add(&self.partition, Schema::new(SchemaType::Int32).optional().into_ref(), partition.map(Value::Int32).unwrap_or(Value::Null));
        add(&self.timestamp, logical::timestamp().optional().into_ref(), timestamp.map(Value::Int64).unwrap_or(Value::Null));
        add(&self.offset, schemas::optional_int64(), kafka_offset.map(Value::Int64).unwrap_or(Value::Null));
        if let Some((n, v)) = &self.static_field {
            add(&Some(n.clone()), schemas::optional_string(), Value::String(v.clone()));
        }
        let (schema, value) = rebuild(old_schema.as_ref(), fields);
        let (schema_slot, value_slot) = self.side.parts(record);
        *schema_slot = schema;
        *value_slot = value;
        Ok(Transformed::Keep)
    }
}

/// `MaskField$Key` / `$Value`: replace the listed fields with a type's empty value, or `replacement`.
pub struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    pub fn new(side: Side) -> Self {
        MaskField { side, fields: vec![], replacement: None }
    }
}

fn masked(value: &Value, replacement: &Option<String>) -> Value {
    match (value, replacement) {
        (Value::Null, _) => Value::Null,
        (Value::String(_), Some(r)) => Value::String(r.clone()),
        (Value::String(_), None) => Value::String(String::new()),
        (Value::Int8(_), r) => Value::Int8(r.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Int16(_), r) => Value::Int16(r.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Int32(_), r) => Value::Int32(r.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Int64(_), r) => Value::Int64(r.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Float32(_), r) => Value::Float32(r.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0.0)),
        (Value::Float64(_), r) => Value::Float64(r.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0.0)),
        (Value::Boolean(_), _) => Value::Boolean(false),
        (Value::Array(_), _) => Value::Array(vec![]),
        (Value::Map(_), _) => Value::Map(vec![]),
        (Value::Bytes(_), _) => Value::Bytes(Default::default()),
        (Value::Struct(_), _) => Value::Null,
    }
}

impl Transformation for MaskField {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required("fields", ConfigType::List, Importance::High, "Names of fields to mask.")).define(
            ConfigKey::new(
                "replacement",
                ConfigType::String,
                None,
                Importance::Low,
                "Custom value replacement, that will be applied to all 'fields' values (numeric or non-empty string values only).",
            ),
        )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.fields = parsed.list("fields");
        if self.fields.is_empty() {
            return Err(ConnectError::fatal("Invalid value for configuration fields: at least one field is needed"));
        }
        self.replacement = parsed.optional_string("replacement");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        if value_slot.is_null() {
            return Ok(Transformed::Keep);
        }
        let old_schema = schema_slot.clone();
        let fields = fields_of(&old_schema, std::mem::take(value_slot), "masking")?
            .into_iter()
            .map(|(n, s, v)| {
                if self.fields.contains(&n) {
                    let m = masked(&v, &self.replacement);
                    (n, s, m)
                } else {
                    (n, s, v)
                }
            })
            .collect();
        let (schema, value) = rebuild(old_schema.as_ref(), fields);
        let (schema_slot, value_slot) = self.side.parts(record);
        *schema_slot = if old_schema.is_some() { old_schema } else { schema };
        *value_slot = value;
        Ok(Transformed::Keep)
    }
}

/// `HoistField$Key` / `$Value`: wrap the key or value in a struct (or map) with one field.
pub struct HoistField {
    side: Side,
    field: String,
}

impl HoistField {
    pub fn new(side: Side) -> Self {
        HoistField { side, field: String::new() }
    }
}

impl Transformation for HoistField {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required(
            "field",
            ConfigType::String,
            Importance::Medium,
            "Field name for the single field that will be created in the resulting Struct or Map.",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.field = self.config_def().parse(config)?.string("field");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        let value = std::mem::take(value_slot);
        match schema_slot.take() {
            Some(inner) => {
                *schema_slot = Some(Schema::structure([(self.field.clone(), inner)]).into_ref());
                let mut st = Struct::new();
                st.put(self.field.clone(), value);
                *value_slot = Value::Struct(st);
            }
            None => *value_slot = Value::Map(vec![(Value::String(self.field.clone()), value)]),
        }
        Ok(Transformed::Keep)
    }
}

/// `ValueToKey`: the key becomes a struct (or map) of the listed value fields.
#[derive(Default)]
pub struct ValueToKey {
    fields: Vec<String>,
}

impl Transformation for ValueToKey {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required(
            "fields",
            ConfigType::List,
            Importance::High,
            "Field names on the record value to extract as the record key.",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.fields = self.config_def().parse(config)?.list("fields");
        if self.fields.is_empty() {
            return Err(ConnectError::fatal("Invalid value for configuration fields: at least one field is needed"));
        }
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let all = fields_of(&record.value_schema, record.value.clone(), "copying fields from value to key")?;
        let mut picked = Vec::with_capacity(self.fields.len());
        for name in &self.fields {
            let (n, s, v) = all
                .iter()
                .find(|(n, _, _)| n == name)
                .cloned()
                .ok_or_else(|| ConnectError::data(format!("Field does not exist: {name}")))?;
            picked.push((n, s, v));
        }
        let (schema, value) = rebuild(record.value_schema.as_ref(), picked);
        record.key_schema = schema;
        record.key = value;
        Ok(Transformed::Keep)
    }
}

/// `DropHeaders`: remove headers by name.
#[derive(Default)]
pub struct DropHeaders {
    headers: Vec<String>,
}

impl Transformation for DropHeaders {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required(
            "headers",
            ConfigType::List,
            Importance::High,
            "The name of the headers to be removed.",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.headers = self.config_def().parse(config)?.list("headers");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        for h in &self.headers {
            record.headers.remove_all(h);
        }
        Ok(Transformed::Keep)
    }
}

/// `InsertHeader`: add a header with a literal value.
#[derive(Default)]
pub struct InsertHeader {
    header: String,
    value: String,
}

impl Transformation for InsertHeader {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required("header", ConfigType::String, Importance::High, "The name of the header.")).define(
            ConfigKey::required(
                "value.literal",
                ConfigType::String,
                Importance::High,
                "The literal value that is to be set as the header value on all records.",
            ),
        )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.header = parsed.string("header");
        self.value = parsed.string("value.literal");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        record.headers.add(self.header.clone(), Value::String(self.value.clone()));
        Ok(Transformed::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    fn json_record(json: &str) -> RecordData {
        RecordData::new("rail", None, Value::from_json(&serde_json::from_str(json).unwrap()))
    }
    fn with<T: Transformation>(mut t: T, pairs: &[(&str, &str)]) -> T {
        t.configure(&cfg(pairs)).unwrap();
        t
    }

    #[test]
    fn insert_field_offset_for_sink_records_only() {
        let t = with(InsertField::new(Side::Value), &[("offset.field", "kafka_offset"), ("topic.field", "kafka_topic")]);
        let mut sink = json_record(r#"{"a":1}"#);
        sink.kafka_offset = Some(42);
        t.apply(&mut sink).unwrap();
        assert_eq!(sink.value.to_json(), serde_json::json!({"a": 1, "kafka_topic": "rail", "kafka_offset": 42}));
        let mut source = json_record(r#"{"a":1}"#);
        let e = t.apply(&mut source).unwrap_err();
        assert_eq!(e.kind(), connect_core::ErrorKind::Data);
        assert!(e.to_string().contains("only applicable to sink connectors"), "{e}");
    }

    #[test]
    fn replace_field_with_old_blacklist_key_and_renames() {
        let t = with(ReplaceField::new(Side::Value), &[("blacklist", "SCHEDULE_SEGMENT_LOCATION, HEADER"), ("renames", "TRAIN_ID:train")]);
        let mut r = json_record(r#"{"TRAIN_ID":"1A23","HEADER":{"x":1},"SCHEDULE_SEGMENT_LOCATION":[1,2],"TOC":"GW"}"#);
        t.apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"train":"1A23","TOC":"GW"}));
        let keep = with(ReplaceField::new(Side::Value), &[("include", "TOC")]);
        let mut r = json_record(r#"{"TRAIN_ID":"1A23","TOC":"GW"}"#);
        keep.apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"TOC":"GW"}));
        assert!(ReplaceField::new(Side::Value).configure(&cfg(&[("renames", "nocolon")])).is_err());
    }

    #[test]
    fn replace_field_rebuilds_the_schema() {
        let schema = Schema::structure([("a".to_string(), schemas::int64()), ("b".to_string(), schemas::string())]).into_ref();
        let mut st = Struct::new();
        st.put("a", Value::Int64(1)).put("b", Value::from("x"));
        let mut r = RecordData::new("t", Some(schema), Value::Struct(st));
        with(ReplaceField::new(Side::Value), &[("exclude", "a")]).apply(&mut r).unwrap();
        let s = r.value_schema.unwrap();
        assert_eq!(s.fields.len(), 1);
        assert_eq!(s.fields[0].name, "b");
    }

    #[test]
    fn insert_field_static_topic_and_timestamp() {
        let t = with(
            InsertField::new(Side::Value),
            &[("static.field", "SOURCE"), ("static.value", "leeds-carparks"), ("topic.field", "topic!"), ("timestamp.field", "ts")],
        );
        let mut r = json_record(r#"{"name":"Westgate"}"#).with_timestamp(Some(1601992860000));
        t.apply(&mut r).unwrap();
        assert_eq!(
            r.value.to_json(),
            serde_json::json!({"name":"Westgate","topic":"rail","ts":1601992860000i64,"SOURCE":"leeds-carparks"})
        );
        let mut bad = RecordData::new("t", None, Value::Int64(1));
        assert_eq!(t.apply(&mut bad).unwrap_err().kind(), connect_core::ErrorKind::Data);
        assert!(InsertField::new(Side::Value).configure(&Config::new()).is_err());
    }

    #[test]
    fn mask_hoist_value_to_key_and_headers() {
        let mut r = json_record(r#"{"id":7,"card":"1234-5678","ok":true}"#);
        with(MaskField::new(Side::Value), &[("fields", "card,ok")]).apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"id":7,"card":"","ok":false}));
        with(ValueToKey::default(), &[("fields", "id")]).apply(&mut r).unwrap();
        assert_eq!(r.key.to_json(), serde_json::json!({"id":7}));
        assert_eq!(with(ValueToKey::default(), &[("fields", "nope")]).apply(&mut r).unwrap_err().kind(), connect_core::ErrorKind::Data);
        let mut h = RecordData::new("t", Some(schemas::int64()), Value::Int64(3));
        with(HoistField::new(Side::Value), &[("field", "count")]).apply(&mut h).unwrap();
        assert_eq!(h.value.to_json(), serde_json::json!({"count":3}));
        assert_eq!(h.value_schema.as_ref().unwrap().fields[0].name, "count");
        with(InsertHeader::default(), &[("header", "origin"), ("value.literal", "garden")]).apply(&mut h).unwrap();
        assert_eq!(h.headers.last("origin").unwrap().value, Value::from("garden"));
        with(DropHeaders::default(), &[("headers", "origin")]).apply(&mut h).unwrap();
        assert!(h.headers.is_empty());
    }
}
