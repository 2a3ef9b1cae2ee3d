//! Connect data as Avro, the way Confluent's `AvroData` makes it for the storage connectors: the Avro schema
//! from the Connect schema (records named from the struct's name, else `io.confluent.connect.avro.ConnectDefault`,
//! optional fields as `["null", T]` with a null default, logical types, `connect.*` properties), and values to
//! match. Beyond Confluent: a schemaless value (a JSON object from JsonConverter without schemas) gets a schema
//! inferred from itself, every field optional, so such topics can be archived as Avro too.

use connect_core::{logical, Schema, SchemaRef, SchemaType, Struct, Value};
use serde_json::{json, Map};
use std::sync::Arc;

/// A value that cannot be written as Avro: a data error of its record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AvroError(pub String);

/// The Avro schema (as JSON) of a Connect schema.
pub fn avro_schema(schema: &Schema) -> serde_json::Value {
    to_avro(schema, &mut Names::default(), true)
}

/// Record names given so far: a named struct that comes again (Debezium's `before` and `after`) is referred
/// to by name, since Avro readers refuse a name defined twice; unnamed ones are numbered.
#[derive(Default)]
struct Names {
    unnamed: usize,
    map_entries: usize,
    defined: std::collections::HashSet<String>,
}

/// Whether a map schema is an Avro map (string keys); AvroData writes other maps as arrays of
/// `{key, value}` records.
fn string_keyed(map: &Schema) -> bool {
    map.key_schema.as_deref().is_some_and(|k| k.kind == SchemaType::String && !k.optional)
}

/// An Avro record field of `schema`: an optional one as `["null", T]` with a null default.
fn avro_field(name: &str, schema: &Schema, names: &mut Names) -> serde_json::Value {
    let t = to_avro(schema, names, false);
    if schema.optional {
        json!({"name": name, "type": ["null", t], "default": null})
    } else {
        json!({"name": name, "type": t})
    }
}

fn props(schema: &Schema, base: serde_json::Value) -> serde_json::Value {
    let mut out = match base {
        serde_json::Value::String(t) => {
            let mut m = Map::new();
            m.insert("type".into(), json!(t));
            m
        }
        serde_json::Value::Object(m) => m,
        other => return other,
    };
    if let Some(doc) = &schema.doc {
        out.insert("connect.doc".into(), json!(doc));
    }
    if let Some(v) = schema.version {
        out.insert("connect.version".into(), json!(v));
    }
    if !schema.parameters.is_empty() {
        out.insert("connect.parameters".into(), json!(schema.parameters));
    }
    if let Some(name) = &schema.name {
        out.insert("connect.name".into(), json!(name));
    }
    match schema.kind {
        SchemaType::Int8 => {
            out.insert("connect.type".into(), json!("int8"));
        }
        SchemaType::Int16 => {
            out.insert("connect.type".into(), json!("int16"));
        }
        _ => {}
    }
    if out.len() == 1 {
        return out.remove("type").expect("type");
    }
    serde_json::Value::Object(out)
}

/// `union_if_optional`: whether an optional schema becomes `["null", T]` here (a field makes its own union, with
/// a default).
fn to_avro(schema: &Schema, names: &mut Names, union_if_optional: bool) -> serde_json::Value {
    let plain = match schema.kind {
        SchemaType::Boolean => props(schema, json!("boolean")),
        SchemaType::Int8 | SchemaType::Int16 => props(schema, json!("int")),
        SchemaType::Int32 => match schema.name.as_deref() {
            Some(logical::DATE) => props(schema, json!({"type": "int", "logicalType": "date"})),
            Some(logical::TIME) => props(schema, json!({"type": "int", "logicalType": "time-millis"})),
            _ => props(schema, json!("int")),
        },
        SchemaType::Int64 => match schema.name.as_deref() {
            Some(logical::TIMESTAMP) => props(schema, json!({"type": "long", "logicalType": "timestamp-millis"})),
            _ => props(schema, json!("long")),
        },
        SchemaType::Float32 => props(schema, json!("float")),
        SchemaType::Float64 => props(schema, json!("double")),
        SchemaType::String => props(schema, json!("string")),
        SchemaType::Bytes => match schema.name.as_deref() {
            Some(logical::DECIMAL) => {
                let scale = logical::decimal_scale(schema).unwrap_or(0);
                let precision: i64 = schema.parameters.get("connect.decimal.precision").and_then(|p| p.parse().ok()).unwrap_or(64);
                props(schema, json!({"type": "bytes", "scale": scale, "precision": precision, "logicalType": "decimal"}))
            }
            _ => props(schema, json!("bytes")),
        },
        SchemaType::Array => {
            let items = schema.key_schema.as_deref().map(|s| to_avro(s, names, true)).unwrap_or(json!("null"));
            props(schema, json!({"type": "array", "items": items}))
        }
        SchemaType::Map if string_keyed(schema) => {
            let values = schema.value_schema.as_deref().map(|s| to_avro(s, names, true)).unwrap_or(json!("null"));
            props(schema, json!({"type": "map", "values": values}))
        }
        SchemaType::Map => {
            // AvroData: an array of `io.confluent.connect.avro.MapEntry` records (numbered here when there are
            // several, since Avro refuses a name defined twice).
            names.map_entries += 1;
            let name = if names.map_entries == 1 { "MapEntry".to_string() } else { format!("MapEntry{}", names.map_entries) };
            let none = Schema::new(SchemaType::String);
            let key = avro_field("key", schema.key_schema.as_deref().unwrap_or(&none), names);
            let value = avro_field("value", schema.value_schema.as_deref().unwrap_or(&none), names);
            let entry = json!({"type": "record", "name": name, "namespace": "io.confluent.connect.avro", "fields": [key, value]});
            props(schema, json!({"type": "array", "items": entry}))
        }
        SchemaType::Struct => {
            if let Some(full) = schema.name.as_deref() {
                if !names.defined.insert(full.to_string()) {
                    return if schema.optional && union_if_optional { json!(["null", full]) } else { json!(full) };
                }
            }
            let (namespace, name) = match schema.name.as_deref() {
                Some(full) => match full.rsplit_once('.') {
                    Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
                    None => (None, full.to_string()),
                },
                None => {
                    names.unnamed += 1;
                    let n = if names.unnamed == 1 { "ConnectDefault".to_string() } else { format!("ConnectDefault{}", names.unnamed) };
                    (Some("io.confluent.connect.avro".to_string()), n)
                }
            };
            let fields: Vec<serde_json::Value> = schema.fields.iter().map(|f| avro_field(&f.name, &f.schema, names)).collect();
            let mut record = json!({"type": "record", "name": name, "fields": fields});
            if let Some(ns) = namespace {
                record["namespace"] = json!(ns);
            }
            props(schema, record)
        }
    };
    if schema.optional && union_if_optional {
        return json!(["null", plain]);
    }
    plain
}

/// The Avro value of a Connect value of `schema` (the outermost value: an optional top level is a union).
pub fn avro_value(schema: &Schema, value: &Value) -> Result<apache_avro::types::Value, AvroError> {
    convert(schema, value, true)
}

fn convert(schema: &Schema, value: &Value, union_if_optional: bool) -> Result<apache_avro::types::Value, AvroError> {
    use apache_avro::types::Value as A;
    if schema.optional && union_if_optional {
        return Ok(match value {
            Value::Null => A::Union(0, Box::new(A::Null)),
            v => A::Union(1, Box::new(convert(schema, v, false)?)),
        });
    }
    let mismatch = || AvroError(format!("a {} value where the schema says {:?}", value.type_name(), schema.kind));
    Ok(match (schema.kind, value) {
        (_, Value::Null) => return Err(AvroError("a null value where the schema does not allow one".into())),
        (SchemaType::Boolean, Value::Boolean(b)) => A::Boolean(*b),
        (SchemaType::Int8, Value::Int8(v)) => A::Int(*v as i32),
        (SchemaType::Int16, Value::Int16(v)) => A::Int(*v as i32),
        (SchemaType::Int32, Value::Int32(v)) => match schema.name.as_deref() {
            Some(logical::DATE) => A::Date(*v),
            Some(logical::TIME) => A::TimeMillis(*v),
            _ => A::Int(*v),
        },
        (SchemaType::Int64, Value::Int64(v)) => match schema.name.as_deref() {
            Some(logical::TIMESTAMP) => A::TimestampMillis(*v),
            _ => A::Long(*v),
        },
        (SchemaType::Float32, Value::Float32(v)) => A::Float(*v),
        (SchemaType::Float64, Value::Float64(v)) => A::Double(*v),
        (SchemaType::String, Value::String(s)) => A::String(s.clone()),
        (SchemaType::Bytes, Value::Bytes(b)) => match schema.name.as_deref() {
            Some(logical::DECIMAL) => A::Decimal(apache_avro::Decimal::from(b.to_vec())),
            _ => A::Bytes(b.to_vec()),
        },
        (SchemaType::Array, Value::Array(items)) => {
            let item = schema.key_schema.as_deref().ok_or_else(mismatch)?;
            A::Array(items.iter().map(|v| convert(item, v, true)).collect::<Result<_, _>>()?)
        }
        (SchemaType::Map, Value::Map(entries)) if !string_keyed(schema) => {
            let keys = schema.key_schema.as_deref().ok_or_else(mismatch)?;
            let values = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let key = convert(keys, k, true).map_err(|e| AvroError(format!("map key: {e}")))?;
                let value = convert(values, v, true).map_err(|e| AvroError(format!("map value: {e}")))?;
                out.push(A::Record(vec![("key".to_string(), key), ("value".to_string(), value)]));
            }
            A::Array(out)
        }
        (SchemaType::Map, Value::Map(entries)) => {
            let values = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            let mut out = std::collections::HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                let Value::String(k) = k else { return Err(AvroError("a map with keys that are not strings".into())) };
                out.insert(k.clone(), convert(values, v, true)?);
            }
            A::Map(out)
        }
        (SchemaType::Struct, Value::Struct(s)) => {
            let mut fields = Vec::with_capacity(schema.fields.len());
            for f in &schema.fields {
                let v = s.get(&f.name).unwrap_or(&Value::Null);
                fields.push((f.name.clone(), convert(&f.schema, v, true).map_err(|e| AvroError(format!("field {}: {e}", f.name)))?));
            }
            A::Record(fields)
        }
        _ => return Err(mismatch()),
    })
}

/// A schema for a schemaless value, and the value made to fit it (maps with string keys become structs).
/// Every field is optional; a list takes the type of its first non-null item.
pub fn infer(value: &Value) -> Result<(SchemaRef, Value), AvroError> {
    let (mut schema, value) = infer_inner(value)?;
    // The file's records themselves are never null (null values are handled before): no top-level union.
    schema.optional = false;
    Ok((Arc::new(schema), value))
}

fn infer_inner(value: &Value) -> Result<(Schema, Value), AvroError> {
    let optional = |kind| {
        let mut s = Schema::new(kind);
        s.optional = true;
        s
    };
    Ok(match value {
        Value::Null => (optional(SchemaType::String), Value::Null),
        Value::Boolean(_) => (optional(SchemaType::Boolean), value.clone()),
        Value::Int8(v) => (optional(SchemaType::Int64), Value::Int64(*v as i64)),
        Value::Int16(v) => (optional(SchemaType::Int64), Value::Int64(*v as i64)),
        Value::Int32(v) => (optional(SchemaType::Int64), Value::Int64(*v as i64)),
        Value::Int64(_) => (optional(SchemaType::Int64), value.clone()),
        Value::Float32(v) => (optional(SchemaType::Float64), Value::Float64(*v as f64)),
        Value::Float64(_) => (optional(SchemaType::Float64), value.clone()),
        Value::String(_) => (optional(SchemaType::String), value.clone()),
        Value::Bytes(_) => (optional(SchemaType::Bytes), value.clone()),
        Value::Array(items) => {
            let mut item_schema: Option<Schema> = None;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let (s, v) = infer_inner(item)?;
                if !item.is_null() {
                    match &item_schema {
                        None => item_schema = Some(s),
                        Some(first) if *first == s => {}
                        Some(_) => return Err(AvroError("a list whose items differ in type cannot be Avro without a schema".into())),
                    }
                }
                out.push(v);
            }
            let mut s = optional(SchemaType::Array);
            s.key_schema = Some(Arc::new(item_schema.unwrap_or_else(|| optional(SchemaType::String))));
            (s, Value::Array(out))
        }
        Value::Map(entries) => {
            let mut fields = Vec::with_capacity(entries.len());
            let mut st = Struct::with_capacity(entries.len());
            for (k, v) in entries {
                let Value::String(name) = k else {
                    return Err(AvroError("a map with keys that are not strings cannot be Avro without a schema".into()));
                };
                if !valid_name(name) {
                    return Err(AvroError(format!("{name:?} is not an Avro field name")));
                }
                let (s, v) = infer_inner(v)?;
                fields.push((name.clone(), Arc::new(s)));
                st.put(name.clone(), v);
            }
            let mut s = Schema::structure(fields);
            s.optional = true;
            (s, Value::Struct(st))
        }
        Value::Struct(_) => return Err(AvroError("a struct without a schema".into())),
    })
}

fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_schema_is_a_record_as_avro_data_makes_it() {
        let mut ts = logical::timestamp();
        ts.optional = true;
        let schema = Schema::structure([
            ("TRAIN_ID".to_string(), Arc::new(Schema::new(SchemaType::String))),
            ("TS".to_string(), Arc::new(ts)),
            ("N".to_string(), Arc::new(Schema::new(SchemaType::Int8))),
        ])
        .named("io.rail.Movement");
        let avro = avro_schema(&schema);
        assert_eq!(avro["name"], "Movement");
        assert_eq!(avro["namespace"], "io.rail");
        assert_eq!(avro["connect.name"], "io.rail.Movement");
        assert_eq!(avro["fields"][1]["type"][0], "null");
        assert_eq!(avro["fields"][1]["type"][1]["logicalType"], "timestamp-millis");
        assert_eq!(avro["fields"][1]["default"], serde_json::Value::Null);
        assert_eq!(avro["fields"][2]["type"], json!({"type": "int", "connect.type": "int8"}));
        apache_avro::Schema::parse(&avro).expect("a valid Avro schema");
    }

    #[test]
    fn a_named_struct_used_twice_is_defined_once() {
        let row = Arc::new(Schema::structure([("id".to_string(), Arc::new(Schema::new(SchemaType::Int64)))]).named("db.Value"));
        let mut optional_row = (*row).clone();
        optional_row.optional = true;
        let optional_row = Arc::new(optional_row);
        let envelope =
            Schema::structure([("before".to_string(), optional_row.clone()), ("after".to_string(), optional_row)]).named("db.Envelope");
        let avro = avro_schema(&envelope);
        assert_eq!(avro["fields"][0]["type"][1]["type"], "record");
        assert_eq!(avro["fields"][1]["type"], json!(["null", "db.Value"]), "{avro}");
        let parsed = apache_avro::Schema::parse(&avro).expect("valid");
        let mut before = Struct::new();
        before.put("id", Value::Int64(1));
        let mut value = Struct::new();
        value.put("before", Value::Struct(before.clone()));
        value.put("after", Value::Struct(before));
        assert!(avro_value(&envelope, &Value::Struct(value)).unwrap().validate(&parsed));
    }

    #[test]
    fn a_map_whose_keys_are_not_strings_is_an_array_of_entries_as_avro_data_writes_it() {
        let mut by_code = Schema::new(SchemaType::Map);
        by_code.key_schema = Some(Arc::new(Schema::new(SchemaType::Int32)));
        let mut text = Schema::new(SchemaType::String);
        text.optional = true;
        by_code.value_schema = Some(Arc::new(text));
        let mut by_flag = by_code.clone();
        by_flag.key_schema = Some(Arc::new(Schema::new(SchemaType::Boolean)));
        let schema = Schema::structure([("by_code".to_string(), Arc::new(by_code)), ("by_flag".to_string(), Arc::new(by_flag))]);
        let avro = avro_schema(&schema);
        assert_eq!(avro["fields"][0]["type"]["type"], "array", "{avro}");
        assert_eq!(avro["fields"][0]["type"]["items"]["name"], "MapEntry");
        assert_eq!(avro["fields"][0]["type"]["items"]["namespace"], "io.confluent.connect.avro");
        assert_eq!(avro["fields"][0]["type"]["items"]["fields"][1], json!({"name": "value", "type": ["null", "string"], "default": null}));
        assert_eq!(avro["fields"][1]["type"]["items"]["name"], "MapEntry2", "a second entry record gets its own name");
        let parsed = apache_avro::Schema::parse(&avro).expect("a valid Avro schema");

        let mut value = Struct::new();
        value.put("by_code", Value::Map(vec![(Value::Int32(7), Value::String("seven".into())), (Value::Int32(8), Value::Null)]));
        value.put("by_flag", Value::Map(vec![]));
        let datum = avro_value(&schema, &Value::Struct(value)).unwrap();
        assert!(datum.validate(&parsed), "{datum:?}");
        let mut written = Vec::new();
        let mut writer = apache_avro::Writer::new(&parsed, &mut written);
        writer.append(datum).unwrap();
        writer.flush().unwrap();
        drop(writer);
        let read = apache_avro::Reader::new(&written[..]).unwrap().next().unwrap().unwrap();
        let apache_avro::types::Value::Record(fields) = read else { panic!("a record") };
        let apache_avro::types::Value::Array(entries) = &fields[0].1 else { panic!("an array: {fields:?}") };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn schemaless_json_objects_get_an_inferred_record() {
        let value = Value::Map(vec![
            (Value::String("image".into()), Value::String("Google".into())),
            (Value::String("probability".into()), Value::Float64(97.3)),
            (Value::String("tags".into()), Value::Array(vec![Value::Int64(1), Value::Null])),
        ]);
        let (schema, value) = infer(&value).unwrap();
        let avro = avro_schema(&schema);
        assert_eq!(avro["name"], "ConnectDefault", "{avro}");
        let parsed = apache_avro::Schema::parse(&avro).unwrap();
        let datum = avro_value(&schema, &value).unwrap();
        assert!(datum.validate(&parsed), "the value fits its schema: {datum:?}");
    }
}
