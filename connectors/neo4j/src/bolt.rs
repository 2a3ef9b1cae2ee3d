//! A record as the query sees it: Connect values become Bolt values, as the Neo4j connectors convert them.
//!
//! Structs and maps become Bolt maps (map keys as strings), arrays lists, and the logical types what Neo4j has
//! for them: `Timestamp` a datetime in UTC, `Date` a date, `Time` a local time, `Decimal` its decimal string.
//! A record's value, key or header that is a string or bytes holding JSON text becomes the JSON's value, as both
//! Neo4j connectors do (a `StringConverter` value holding JSON is then a map in the query); other text stays a
//! string. Strings inside structs, maps and arrays stay strings: `"12345"` in a field is not made a number.

use crate::config::{Bindings, Flavour};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use connect_core::data::logical;
use connect_core::{Schema, SinkRecord, Value};
use neo4rs::{BoltList, BoltMap, BoltNull, BoltString, BoltType};

/// One element of `$events`: for the legacy flavour the record's value; for the current one a map of the
/// record's parts under the names the rendered query reads (`value`, `key`, `header`, `timestamp`).
pub fn event(record: &SinkRecord, flavour: Flavour, bindings: &Bindings) -> BoltType {
    let value = || convert_part(record.data.value_schema.as_deref(), &record.data.value);
    match flavour {
        Flavour::Legacy => value(),
        Flavour::Current => {
            let mut message = BoltMap::with_capacity(4);
            if bindings.value_as_event || !bindings.value.is_empty() {
                message.put("value".into(), value());
            }
            if !bindings.key.is_empty() {
                message.put("key".into(), convert_part(record.data.key_schema.as_deref(), &record.data.key));
            }
            if !bindings.header.is_empty() {
                let mut headers = BoltMap::with_capacity(record.data.headers.len());
                for header in record.data.headers.iter() {
                    headers.put(header.key.as_str().into(), convert_part(header.schema.as_deref(), &header.value));
                }
                message.put("header".into(), BoltType::Map(headers));
            }
            if !bindings.timestamp.is_empty() {
                let timestamp = record.data.timestamp.and_then(DateTime::<Utc>::from_timestamp_millis);
                message.put("timestamp".into(), timestamp.map(|t| BoltType::from(t.fixed_offset())).unwrap_or(null()));
            }
            BoltType::Map(message)
        }
    }
}

fn null() -> BoltType {
    BoltType::Null(BoltNull)
}

/// A record's value, key or header: JSON text is read as JSON (see the module docs), anything else converted.
pub fn convert_part(schema: Option<&Schema>, value: &Value) -> BoltType {
    let is_decimal = schema.and_then(|s| s.name.as_deref()) == Some(logical::DECIMAL);
    let text = match value {
        Value::String(s) => Some(s.as_bytes()),
        Value::Bytes(b) if !is_decimal => Some(&b[..]),
        _ => None,
    };
    text.and_then(json_text).unwrap_or_else(|| convert(schema, value))
}

/// A Connect value, with its schema where it has one, as a Bolt value.
pub fn convert(schema: Option<&Schema>, value: &Value) -> BoltType {
    let name = schema.and_then(|s| s.name.as_deref());
    match value {
        Value::Null => null(),
        Value::Boolean(b) => BoltType::from(*b),
        Value::Int8(v) => BoltType::from(*v as i64),
        Value::Int16(v) => BoltType::from(*v as i64),
        Value::Int32(v) => match name {
            // Days since 1970-01-01; chrono counts from 0001-01-01 (day 719,163 is 1970-01-01).
            Some(logical::DATE) => v
                .checked_add(719_163)
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .map(BoltType::from)
                .unwrap_or_else(|| BoltType::from(*v as i64)),
            Some(logical::TIME) => NaiveTime::from_num_seconds_from_midnight_opt((*v / 1000) as u32, ((*v % 1000) * 1_000_000) as u32)
                .map(BoltType::from)
                .unwrap_or_else(|| BoltType::from(*v as i64)),
            _ => BoltType::from(*v as i64),
        },
        Value::Int64(v) => match name {
            Some(logical::TIMESTAMP) => {
                DateTime::<Utc>::from_timestamp_millis(*v).map(|t| BoltType::from(t.fixed_offset())).unwrap_or_else(|| BoltType::from(*v))
            }
            _ => BoltType::from(*v),
        },
        Value::Float32(v) => BoltType::from(*v as f64),
        Value::Float64(v) => BoltType::from(*v),
        Value::String(s) => BoltType::from(s.as_str()),
        Value::Bytes(b) => {
            if name == Some(logical::DECIMAL) {
                let scale = schema.and_then(logical::decimal_scale).unwrap_or(0);
                if let Some(unscaled) = logical::decimal_unscaled(b) {
                    return BoltType::from(logical::decimal_to_string(unscaled, scale));
                }
            }
            BoltType::from(b.to_vec())
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.key_schema.as_deref());
            let mut list = BoltList::with_capacity(items.len());
            for item in items {
                list.push(convert(item_schema, item));
            }
            BoltType::List(list)
        }
        Value::Map(entries) => {
            let value_schema = schema.and_then(|s| s.value_schema.as_deref());
            let mut map = BoltMap::with_capacity(entries.len());
            for (k, v) in entries {
                map.put(map_key(k), convert(value_schema, v));
            }
            BoltType::Map(map)
        }
        Value::Struct(s) => {
            let mut map = BoltMap::with_capacity(s.len());
            for (field, v) in s.iter() {
                let field_schema = schema.and_then(|sc| sc.field(field)).map(|f| &*f.schema);
                map.put(field.as_str().into(), convert(field_schema, v));
            }
            BoltType::Map(map)
        }
    }
}

/// Bolt maps have string keys: other keys are written as their JSON text (a string key as itself).
fn map_key(key: &Value) -> BoltString {
    match key {
        Value::String(s) => s.as_str().into(),
        other => other.to_json().to_string().into(),
    }
}

/// The value of JSON text (an object, array, number, boolean, null or string literal); `None` if it is not JSON.
fn json_text(bytes: &[u8]) -> Option<BoltType> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    // Cheap refusal of the common case, plain text, before a parse.
    if !matches!(first, b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(bytes).ok().map(|v| from_json(&v))
}

/// A JSON value as a Bolt value (integers that fit i64 as integers, other numbers as floats).
pub fn from_json(value: &serde_json::Value) -> BoltType {
    match value {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(b) => BoltType::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => BoltType::from(i),
            None => BoltType::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => BoltType::from(s.as_str()),
        serde_json::Value::Array(items) => {
            let mut list = BoltList::with_capacity(items.len());
            for item in items {
                list.push(from_json(item));
            }
            BoltType::List(list)
        }
        serde_json::Value::Object(fields) => {
            let mut map = BoltMap::with_capacity(fields.len());
            for (k, v) in fields {
                map.put(k.as_str().into(), from_json(v));
            }
            BoltType::Map(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, SchemaType, Struct, TimestampType};
    use std::sync::Arc;

    fn get<'a>(map: &'a BoltType, key: &str) -> &'a BoltType {
        let BoltType::Map(m) = map else { panic!("not a map: {map:?}") };
        m.value.get(key).unwrap_or_else(|| panic!("no {key} in {map:?}"))
    }

    #[test]
    fn json_text_becomes_a_map_and_plain_text_stays_a_string() {
        let v = convert_part(None, &Value::String(r#"{"TRAIN_ID":"t1","N":3,"X":1.5,"L":[1,null]}"#.into()));
        assert_eq!(get(&v, "TRAIN_ID"), &BoltType::from("t1"));
        assert_eq!(get(&v, "N"), &BoltType::from(3i64));
        assert_eq!(get(&v, "X"), &BoltType::from(1.5f64));
        assert_eq!(convert_part(None, &Value::String("London Euston".into())), BoltType::from("London Euston"));
        assert_eq!(convert_part(None, &Value::String("{broken".into())), BoltType::from("{broken"));
        // Inside a struct or map, text stays text, even when it reads as a number.
        let mut s = Struct::new();
        s.put("LOC_STANOX", Value::String("12345".into()));
        assert_eq!(get(&convert_part(None, &Value::Struct(s)), "LOC_STANOX"), &BoltType::from("12345"));
    }

    #[test]
    fn logical_types_become_neo4j_temporal_values_and_decimal_strings() {
        let ts = Arc::new(logical::timestamp());
        let BoltType::DateTime(_) = convert(Some(&ts), &Value::Int64(1_700_000_000_000)) else { panic!("a datetime") };
        let BoltType::Date(_) = convert(Some(&logical::date()), &Value::Int32(19_000)) else { panic!("a date") };
        let BoltType::LocalTime(_) = convert(Some(&logical::time()), &Value::Int32(3_600_000)) else { panic!("a local time") };
        let decimal = convert(Some(&logical::decimal(2)), &Value::Bytes(logical::decimal_bytes(-1234)));
        assert_eq!(decimal, BoltType::from("-12.34"));
        assert_eq!(convert(None, &Value::Int64(1_700_000_000_000)), BoltType::from(1_700_000_000_000i64));
    }

    #[test]
    fn a_struct_is_a_map_and_the_current_flavour_binds_every_part() {
        let schema = Arc::new(Schema::structure([
            ("id".to_string(), Arc::new(Schema::new(SchemaType::String))),
            ("at".to_string(), Arc::new(logical::timestamp())),
        ]));
        let mut s = Struct::new();
        s.put("id", Value::String("t1".into()));
        s.put("at", Value::Int64(0));
        let mut data = RecordData::new("t", Some(schema), Value::Struct(s)).with_key(None, Value::String("k1".into()));
        data.timestamp = Some(5);
        data.headers.add("source", Value::String("feed".into()));
        let record = SinkRecord::new(data, 0, 7, TimestampType::CreateTime);
        let legacy = event(
            &record,
            Flavour::Legacy,
            &Bindings { value_as_event: true, value: "".into(), key: "".into(), header: "".into(), timestamp: "".into() },
        );
        assert_eq!(get(&legacy, "id"), &BoltType::from("t1"));
        let BoltType::DateTime(_) = get(&legacy, "at") else { panic!("at is a datetime") };
        let bindings = Bindings {
            value_as_event: true,
            value: "__value".into(),
            key: "__key".into(),
            header: "__header".into(),
            timestamp: "__timestamp".into(),
        };
        let current = event(&record, Flavour::Current, &bindings);
        assert_eq!(get(get(&current, "value"), "id"), &BoltType::from("t1"));
        assert_eq!(get(&current, "key"), &BoltType::from("k1"));
        assert_eq!(get(get(&current, "header"), "source"), &BoltType::from("feed"));
        let BoltType::DateTime(_) = get(&current, "timestamp") else { panic!("timestamp is a datetime") };
    }
}
