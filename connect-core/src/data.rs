//! The data model: Kafka Connect's schemas and values.
//!
//! Schema'd data (JsonConverter with `schemas.enable=true`, Avro-like structs) and schemaless JSON share one
//! [`Value`] type. Logical types (Timestamp, Date, Time, Decimal) are, as in Kafka Connect, a schema name on a
//! physical type; [`logical`] has their constructors and conversions. Raw bytes travel as [`bytes::Bytes`], so
//! a byte-array pipeline never parses or re-copies a payload.

use bytes::Bytes;
use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The physical type of a schema, named as in Kafka Connect's `Schema.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    /// The name JsonConverter writes in a schema envelope (`"int32"`, `"float"`, `"double"`, ...).
    pub fn json_name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    pub fn from_json_name(name: &str) -> Option<Self> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" | "float32" => SchemaType::Float32,
            "double" | "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

/// Shared, immutable schema handle: records of one stream share their schema.
pub type SchemaRef = Arc<Schema>;

/// A Kafka Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub kind: SchemaType,
    pub optional: bool,
    /// Logical type or record name, e.g. `org.apache.kafka.connect.data.Timestamp`.
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub default: Option<Value>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Array items, or map keys.
    pub key_schema: Option<SchemaRef>,
    /// Map values.
    pub value_schema: Option<SchemaRef>,
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub index: usize,
    pub schema: SchemaRef,
}

impl Schema {
    pub fn new(kind: SchemaType) -> Self {
        Schema {
            kind,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            default: None,
            fields: Vec::new(),
            key_schema: None,
            value_schema: None,
        }
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn array(items: SchemaRef) -> Self {
        let mut s = Schema::new(SchemaType::Array);
        s.key_schema = Some(items);
        s
    }
    pub fn map(keys: SchemaRef, values: SchemaRef) -> Self {
        let mut s = Schema::new(SchemaType::Map);
        s.key_schema = Some(keys);
        s.value_schema = Some(values);
        s
    }
    /// A struct schema from `(name, schema)` pairs in order.
    pub fn structure(fields: impl IntoIterator<Item = (String, SchemaRef)>) -> Self {
        let mut s = Schema::new(SchemaType::Struct);
        s.fields = fields.into_iter().enumerate().map(|(index, (name, schema))| Field { name, index, schema }).collect();
        s
    }
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    /// Array item schema.
    pub fn items(&self) -> Option<&SchemaRef> {
        self.key_schema.as_ref()
    }
    pub fn into_ref(self) -> SchemaRef {
        Arc::new(self)
    }

    /// Check that `value` fits this schema; the error names the path to the first mismatch.
    pub fn validate_value(&self, value: &Value) -> Result<(), String> {
        self.validate_at(value, "")
    }

    fn validate_at(&self, value: &Value, path: &str) -> Result<(), String> {
        let here = || if path.is_empty() { "value".to_string() } else { path.to_string() };
        let ok = match (self.kind, value) {
            (_, Value::Null) => {
                return if self.optional || self.default.is_some() {
                    Ok(())
                } else {
                    Err(format!("{} is null but its schema is not optional", here()))
                }
            }
            (SchemaType::Int8, Value::Int8(_))
            | (SchemaType::Int16, Value::Int16(_))
            | (SchemaType::Int32, Value::Int32(_))
            | (SchemaType::Int64, Value::Int64(_))
            | (SchemaType::Float32, Value::Float32(_))
            | (SchemaType::Float64, Value::Float64(_))
            | (SchemaType::Boolean, Value::Boolean(_))
            | (SchemaType::String, Value::String(_))
            | (SchemaType::Bytes, Value::Bytes(_)) => true,
            (SchemaType::Array, Value::Array(items)) => {
                if let Some(item_schema) = self.items() {
                    for (i, item) in items.iter().enumerate() {
                        item_schema.validate_at(item, &format!("{}[{i}]", here()))?;
                    }
                }
                true
            }
            (SchemaType::Map, Value::Map(entries)) => {
                for (k, v) in entries {
                    if let Some(ks) = &self.key_schema {
                        ks.validate_at(k, &format!("{}.<key>", here()))?;
                    }
                    if let Some(vs) = &self.value_schema {
                        vs.validate_at(v, &format!("{}[{k}]", here()))?;
                    }
                }
                true
            }
            (SchemaType::Struct, Value::Struct(s)) => {
                for field in &self.fields {
                    let child = if path.is_empty() { field.name.clone() } else { format!("{path}.{}", field.name) };
                    let v = s.get(&field.name).unwrap_or(&Value::Null);
                    field.schema.validate_at(v, &child)?;
                }
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{} is {} but its schema is {}", here(), value.type_name(), self.kind.json_name()))
        }
    }
}

/// Schemas of the primitive types, shared so records don't allocate one each.
pub mod schemas {
    use super::*;
    use std::sync::OnceLock;

    macro_rules! shared {
        ($name:ident, $kind:expr, $optional:expr) => {
            pub fn $name() -> SchemaRef {
                static CELL: OnceLock<SchemaRef> = OnceLock::new();
                CELL.get_or_init(|| {
                    let mut s = Schema::new($kind);
                    s.optional = $optional;
                    Arc::new(s)
                })
                .clone()
            }
        };
    }
    shared!(string, SchemaType::String, false);
    shared!(optional_string, SchemaType::String, true);
    shared!(bytes, SchemaType::Bytes, false);
    shared!(optional_bytes, SchemaType::Bytes, true);
    shared!(int32, SchemaType::Int32, false);
    shared!(int64, SchemaType::Int64, false);
    shared!(optional_int64, SchemaType::Int64, true);
    shared!(float64, SchemaType::Float64, false);
    shared!(boolean, SchemaType::Boolean, false);
}

/// Logical types: a schema name on a physical type, exactly as Kafka Connect defines them.
pub mod logical {
    use super::*;

    pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
    pub const DATE: &str = "org.apache.kafka.connect.data.Date";
    pub const TIME: &str = "org.apache.kafka.connect.data.Time";
    pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
    /// The parameter of a Decimal schema that holds its scale.
    pub const DECIMAL_SCALE: &str = "scale";

    /// Milliseconds since the epoch, carried as int64.
    pub fn timestamp() -> Schema {
        Schema::new(SchemaType::Int64).named(TIMESTAMP)
    }
    /// Days since the epoch, carried as int32.
    pub fn date() -> Schema {
        Schema::new(SchemaType::Int32).named(DATE)
    }
    /// Milliseconds since midnight, carried as int32.
    pub fn time() -> Schema {
        Schema::new(SchemaType::Int32).named(TIME)
    }
    /// An arbitrary-precision decimal: the unscaled value as big-endian two's-complement bytes.
    pub fn decimal(scale: i32) -> Schema {
        let mut s = Schema::new(SchemaType::Bytes).named(DECIMAL);
        s.parameters.insert(DECIMAL_SCALE.into(), scale.to_string());
        s
    }
    pub fn decimal_scale(schema: &Schema) -> Option<i32> {
        schema.parameters.get(DECIMAL_SCALE)?.parse().ok()
    }

    /// Encode an unscaled integer as Kafka Connect's Decimal bytes (minimal big-endian two's complement).
    pub fn decimal_bytes(unscaled: i128) -> Bytes {
        let full = unscaled.to_be_bytes();
        let sign_byte = if unscaled < 0 { 0xff } else { 0x00 };
        let mut start = 0;
        while start < full.len() - 1 && full[start] == sign_byte && (full[start + 1] & 0x80) == (sign_byte & 0x80) {
            start += 1;
        }
        Bytes::copy_from_slice(&full[start..])
    }
    /// Decode Decimal bytes into an unscaled integer; `None` if it does not fit 128 bits.
    pub fn decimal_unscaled(bytes: &[u8]) -> Option<i128> {
        if bytes.is_empty() || bytes.len() > 16 {
            return None;
        }
        let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
        let mut full = [fill; 16];
        full[16 - bytes.len()..].copy_from_slice(bytes);
        Some(i128::from_be_bytes(full))
    }
    /// Render an unscaled value with its scale as a plain decimal string ("12.34").
    pub fn decimal_to_string(unscaled: i128, scale: i32) -> String {
        if scale <= 0 {
            let mut s = unscaled.to_string();
            s.extend(std::iter::repeat_n('0', (-scale) as usize));
            return s;
        }
        let negative = unscaled < 0;
        let digits = unscaled.unsigned_abs().to_string();
        let scale = scale as usize;
        let padded = if digits.len() <= scale { format!("{}{}", "0".repeat(scale - digits.len() + 1), digits) } else { digits };
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{}{int}.{frac}", if negative { "-" } else { "" })
    }
}

/// A struct value: named fields in schema order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct {
    fields: IndexMap<String, Value>,
}

impl Struct {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(n: usize) -> Self {
        Struct { fields: IndexMap::with_capacity(n) }
    }
    pub fn put(&mut self, name: impl Into<String>, value: Value) -> &mut Self {
        self.fields.insert(name.into(), value);
        self
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.fields.get_mut(name)
    }
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.fields.shift_remove(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.fields.iter()
    }
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl FromIterator<(String, Value)> for Struct {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        Struct { fields: iter.into_iter().collect() }
    }
}

/// A value, schema'd or not. Schemaless JSON objects are `Map`s with string keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Bytes),
    Array(Vec<Value>),
    /// Entries in insertion order; keys may be any value, as in Kafka Connect maps.
    Map(Vec<(Value, Value)>),
    Struct(Struct),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int8(_) => "int8",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Float32(_) => "float",
            Value::Float64(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// Any integer type widened to i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int8(v) => Some(v as i64),
            Value::Int16(v) => Some(v as i64),
            Value::Int32(v) => Some(v as i64),
            Value::Int64(v) => Some(v),
            _ => None,
        }
    }
    /// Any number widened to f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float32(v) => Some(v as f64),
            Value::Float64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }
    /// Look up a field of a struct, or a string key of a map (schemaless JSON objects).
    pub fn get_field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(s) => s.get(name),
            Value::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Convert to plain JSON, the way JsonConverter writes a payload without schema.
    ///
    /// Bytes become base64 strings, as JsonConverter writes them.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Boolean(b) => J::Bool(*b),
            Value::Int8(v) => J::from(*v),
            Value::Int16(v) => J::from(*v),
            Value::Int32(v) => J::from(*v),
            Value::Int64(v) => J::from(*v),
            Value::Float32(v) => serde_json::Number::from_f64(*v as f64).map(J::Number).unwrap_or(J::Null),
            Value::Float64(v) => serde_json::Number::from_f64(*v).map(J::Number).unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::Bytes(b) => {
                use base64::Engine;
                J::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(entries) => {
                if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                    J::Object(entries.iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json())).collect())
                } else {
                    // JsonConverter writes maps with non-string keys as an array of [key, value] pairs.
                    J::Array(entries.iter().map(|(k, v)| J::Array(vec![k.to_json(), v.to_json()])).collect())
                }
            }
            Value::Struct(s) => J::Object(s.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Convert plain JSON into a schemaless value: integers become int64, other numbers float64,
    /// objects string-keyed maps (what JsonConverter with `schemas.enable=false` yields).
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Boolean(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int64(i),
                None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::Array(items.iter().map(Value::from_json).collect()),
            J::Object(map) => Value::Map(map.iter().map(|(k, v)| (Value::String(k.clone()), Value::from_json(v))).collect()),
        }
    }
}

/// A value serialized as [`Value::to_json`] would write it, without building the JSON tree first.
pub struct JsonView<'a>(&'a Value);

impl serde::Serialize for JsonView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::Int8(v) => serializer.serialize_i64(*v as i64),
            Value::Int16(v) => serializer.serialize_i64(*v as i64),
            Value::Int32(v) => serializer.serialize_i64(*v as i64),
            Value::Int64(v) => serializer.serialize_i64(*v),
            Value::Float32(v) if v.is_finite() => serializer.serialize_f64(*v as f64),
            Value::Float64(v) if v.is_finite() => serializer.serialize_f64(*v),
            Value::Float32(_) | Value::Float64(_) => serializer.serialize_unit(),
            Value::String(s) => serializer.serialize_str(s),
            Value::Bytes(b) => {
                use base64::Engine;
                serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&JsonView(item))?;
                }
                seq.end()
            }
            Value::Map(entries) if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.as_str().unwrap_or_default(), &JsonView(v))?;
                }
                map.end()
            }
            Value::Map(entries) => {
                let mut seq = serializer.serialize_seq(Some(entries.len()))?;
                for (k, v) in entries {
                    seq.serialize_element(&(JsonView(k), JsonView(v)))?;
                }
                seq.end()
            }
            Value::Struct(st) => {
                let mut map = serializer.serialize_map(None)?;
                for (k, v) in st.iter() {
                    map.serialize_entry(k, &JsonView(v))?;
                }
                map.end()
            }
        }
    }
}

impl Value {
    /// Serializable as the JSON [`Value::to_json`] gives, written straight out (no intermediate tree).
    pub fn json_view(&self) -> JsonView<'_> {
        JsonView(self)
    }

    /// Whether [`Value::to_json`] would give `json`, without building it where it can: objects whose keys come
    /// in the same order (as a JSON answer that echoes a record keeps them) are compared field by field, any
    /// other case by building the JSON (so repeated map keys, which `to_json` collapses, compare exactly).
    pub fn equals_json(&self, json: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        fn same_order<'a>(
            count: usize,
            fields: impl Iterator<Item = (&'a str, &'a Value)>,
            object: &serde_json::Map<String, J>,
        ) -> Option<bool> {
            if count != object.len() {
                return None;
            }
            let mut equal = true;
            for ((k, v), (jk, jv)) in fields.zip(object) {
                if k != jk {
                    return None;
                }
                equal = equal && v.equals_json(jv);
            }
            Some(equal)
        }
        let in_order = match (self, json) {
            (Value::Null, J::Null) => return true,
            (Value::Boolean(a), J::Bool(b)) => return a == b,
            (Value::String(a), J::String(b)) => return a == b,
            (Value::Array(items), J::Array(other)) => {
                return items.len() == other.len() && items.iter().zip(other).all(|(v, j)| v.equals_json(j))
            }
            (Value::Map(entries), J::Object(object)) if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) => {
                same_order(entries.len(), entries.iter().map(|(k, v)| (k.as_str().unwrap_or_default(), v)), object)
            }
            (Value::Struct(st), J::Object(object)) => same_order(st.len(), st.iter().map(|(k, v)| (k.as_str(), v)), object),
            _ => None,
        };
        in_order.unwrap_or_else(|| self.to_json() == *json)
    }

    /// [`Value::from_json`], taking the JSON apart instead of copying its strings.
    pub fn from_json_owned(json: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::String(s) => Value::String(s),
            J::Array(items) => Value::Array(items.into_iter().map(Value::from_json_owned).collect()),
            J::Object(map) => Value::Map(map.into_iter().map(|(k, v)| (Value::String(k), Value::from_json_owned(v))).collect()),
            other => Value::from_json(&other),
        }
    }
}

impl fmt::Display for Value {
    /// Strings and bytes print as they are; everything else as JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int64(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int32(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}
impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Bytes(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_view_and_equals_json_agree_with_to_json() {
        let mut st = Struct::new();
        st.put("b", Value::Bytes(vec![0, 255].into()));
        let values = [
            Value::Null,
            Value::Boolean(true),
            Value::Int8(-3),
            Value::Int64(i64::MAX),
            Value::Float32(1.5),
            Value::Float64(f64::NAN),
            Value::Float64(2.0),
            Value::String("é \" \\".into()),
            Value::Bytes(vec![1, 2, 3].into()),
            Value::Array(vec![Value::Int32(1), Value::Null]),
            Value::Map(vec![(Value::String("a".into()), Value::Int16(1)), (Value::String("z".into()), Value::String("y".into()))]),
            Value::Map(vec![(Value::Int32(1), Value::String("one".into()))]),
            Value::Struct(st),
            // Repeated keys: to_json keeps the first position and the last value.
            Value::Map(vec![(Value::String("a".into()), Value::Int64(1)), (Value::String("a".into()), Value::Int64(1))]),
            Value::Map(vec![(Value::String("a".into()), Value::Int64(1)), (Value::String("a".into()), Value::Int64(2))]),
        ];
        let dup_equal = Value::Map(vec![(Value::String("a".into()), Value::Int64(1)), (Value::String("a".into()), Value::Int64(1))]);
        assert!(!dup_equal.equals_json(&serde_json::json!({"a": 1, "b": 2})), "an added key is a change");
        let dup_last = Value::Map(vec![(Value::String("a".into()), Value::Int64(1)), (Value::String("a".into()), Value::Int64(2))]);
        assert!(dup_last.equals_json(&serde_json::json!({"a": 2})), "as to_json collapses it");
        for v in &values {
            let tree = v.to_json();
            if !matches!(v, Value::Map(entries) if entries.len() == 2 && entries[0].0 == entries[1].0) {
                assert_eq!(serde_json::to_value(v.json_view()).unwrap(), tree, "{v:?}");
            }
            assert!(v.equals_json(&tree), "{v:?} equals its own JSON");
            assert_eq!(Value::from_json_owned(tree.clone()), Value::from_json(&tree));
            // The same keys in another order: equal as JSON objects are.
            if let serde_json::Value::Object(object) = &tree {
                let reversed: serde_json::Map<String, serde_json::Value> =
                    object.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert!(v.equals_json(&serde_json::Value::Object(reversed)), "{v:?} in another key order");
            }
            for other in &values {
                if other.to_json() != tree {
                    assert!(!v.equals_json(&other.to_json()), "{v:?} is not {other:?}");
                }
            }
        }
    }

    use super::*;

    #[test]
    fn decimal_bytes_round_trip() {
        for v in [0i128, 1, -1, 127, 128, -128, -129, 1234, -987654321, i64::MAX as i128] {
            let b = logical::decimal_bytes(v);
            assert_eq!(logical::decimal_unscaled(&b), Some(v), "{v}");
        }
        assert_eq!(&logical::decimal_bytes(128)[..], &[0x00, 0x80]);
        assert_eq!(&logical::decimal_bytes(-1)[..], &[0xff]);
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(logical::decimal_to_string(1234, 2), "12.34");
        assert_eq!(logical::decimal_to_string(-5, 3), "-0.005");
        assert_eq!(logical::decimal_to_string(12, -2), "1200");
    }

    #[test]
    fn schema_validation_names_the_path() {
        let schema = Schema::structure([("id".to_string(), schemas::int64()), ("name".to_string(), schemas::optional_string())]);
        let mut ok = Struct::new();
        ok.put("id", Value::Int64(1)).put("name", Value::Null);
        assert!(schema.validate_value(&Value::Struct(ok)).is_ok());
        let mut bad = Struct::new();
        bad.put("id", Value::String("x".into()));
        assert_eq!(schema.validate_value(&Value::Struct(bad)).unwrap_err(), "id is string but its schema is int64");
    }

    #[test]
    fn json_round_trip_schemaless() {
        let json: serde_json::Value = serde_json::from_str(r#"{"image":"Google","probability":97.3,"n":2,"tags":[true,null]}"#).unwrap();
        let value = Value::from_json(&json);
        assert_eq!(value.get_field("n"), Some(&Value::Int64(2)));
        assert_eq!(value.to_json(), json);
    }
}
