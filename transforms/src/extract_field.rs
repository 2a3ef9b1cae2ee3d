//! `org.apache.kafka.connect.transforms.ExtractField$Key` / `$Value`: replace the key or value with one of
//! its fields. With `field.syntax.version=V2`, a dotted path reaches into nested structs and maps.

use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, SchemaRef, SchemaType, Validator, Value,
};

/// Which part of the record a `$Key`/`$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    Key,
    #[default]
    Value,
}

impl Side {
    /// The schema and value of this side.
    pub fn parts(self, record: &mut RecordData) -> (&mut Option<SchemaRef>, &mut Value) {
        match self {
            Side::Key => (&mut record.key_schema, &mut record.key),
            Side::Value => (&mut record.value_schema, &mut record.value),
        }
    }
}

#[derive(Default)]
pub struct ExtractField {
    side: Side,
    path: Vec<String>,
}

impl ExtractField {
    pub fn new(side: Side) -> Self {
        ExtractField { side, path: Vec::new() }
    }
}

impl Transformation for ExtractField {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("field", ConfigType::String, Importance::Medium, "Field name to extract.")
                    .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::new(
                    "field.syntax.version",
                    ConfigType::String,
                    Some("V1"),
                    Importance::High,
                    "V1: field names as they are; V2: dots reach into nested fields.",
                )
                .validator(Validator::OneOf(vec!["V1", "V2"])),
            )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        let field = parsed.string("field");
        self.path = if parsed.string("field.syntax.version").eq_ignore_ascii_case("V2") {
            field.split('.').map(str::to_string).collect()
        } else {
            vec![field]
        };
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        if value_slot.is_null() {
            return Ok(Transformed::Keep);
        }
        let mut schema = schema_slot.clone();
        let mut value = std::mem::take(value_slot);
        for name in &self.path {
            value = match (schema.as_deref(), value) {
                (Some(s), Value::Struct(mut st)) if s.kind == SchemaType::Struct => {
                    let field = s.field(name).ok_or_else(|| ConnectError::data(format!("{name} is not a valid field name")))?;
                    let next_schema = field.schema.clone();
                    let v = st.remove(name).unwrap_or(Value::Null);
                    schema = Some(next_schema);
                    v
                }
                (None, Value::Map(entries)) => {
                    schema = None;
                    entries.into_iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v).unwrap_or(Value::Null)
                }
                (None, Value::Struct(mut st)) => st.remove(name).unwrap_or(Value::Null),
                (Some(_), other) => {
                    return Err(ConnectError::data(format!(
                        "Only Struct objects supported for [field extraction], found: {}",
                        other.type_name()
                    )));
                }
                (None, other) => {
                    return Err(ConnectError::data(format!(
                        "Only Map objects supported in absence of schema for [field extraction], found: {}",
                        other.type_name()
                    )));
                }
            };
            if value.is_null() {
                break;
            }
        }
        let (schema_slot, value_slot) = self.side.parts(record);
        *schema_slot = schema;
        *value_slot = value;
        Ok(Transformed::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{schemas, Schema, Struct};

    fn configured(side: Side, pairs: &[(&str, &str)]) -> ExtractField {
        let mut t = ExtractField::new(side);
        t.configure(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
        t
    }

    #[test]
    fn schemaless_and_nested() {
        let json: serde_json::Value = serde_json::from_str(r#"{"image":"Google","meta":{"camera":"garden"}}"#).unwrap();
        let mut r = RecordData::new("t", None, Value::from_json(&json));
        configured(Side::Value, &[("field", "image")]).apply(&mut r).unwrap();
        assert_eq!(r.value, Value::from("Google"));
        let mut r = RecordData::new("t", None, Value::from_json(&json));
        configured(Side::Value, &[("field", "meta.camera"), ("field.syntax.version", "V2")]).apply(&mut r).unwrap();
        assert_eq!(r.value, Value::from("garden"));
    }

    #[test]
    fn schemad_key() {
        let schema = Schema::structure([("id".to_string(), schemas::int64())]).into_ref();
        let mut st = Struct::new();
        st.put("id", Value::Int64(7));
        let mut r = RecordData::new("t", None, Value::Null).with_key(Some(schema), Value::Struct(st));
        configured(Side::Key, &[("field", "id")]).apply(&mut r).unwrap();
        assert_eq!(r.key, Value::Int64(7));
        assert_eq!(r.key_schema.unwrap().kind, SchemaType::Int64);
    }

    #[test]
    fn wrong_shape_is_a_data_error() {
        let mut r = RecordData::new("t", None, Value::Int64(42));
        let err = configured(Side::Value, &[("field", "image")]).apply(&mut r).unwrap_err();
        assert_eq!(err.kind(), connect_core::ErrorKind::Data);
        assert!(err.message().contains("Only Map objects supported"), "{err}");
        let mut missing = ExtractField::new(Side::Value);
        assert!(missing.configure(&Config::new()).is_err());
    }
}
