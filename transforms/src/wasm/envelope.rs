//! ABI v1's record JSON: what the host writes for the module and how the module's answer changes the record.

use connect_core::converter::json_to_value;
use connect_core::{ConnectError, Header, Headers, RecordData, Result, SchemaRef, Value};
use serde_json::{Map, Value as Json};

/// Write the record as the module sees it: `{"topic","partition","offset","timestamp","key","value",
/// "headers":[{"key","value"}]}`, key and value as schemaless JSON (structs as objects, bytes as base64),
/// serialized straight from the record (no JSON tree in between).
pub(crate) fn encode(record: &RecordData, out: &mut Vec<u8>) {
    use serde::ser::{SerializeMap, Serializer};
    struct HeadersView<'a>(&'a Headers);
    impl serde::Serialize for HeadersView<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().map(HeaderView))
        }
    }
    struct HeaderView<'a>(&'a Header);
    impl serde::Serialize for HeaderView<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("key", &self.0.key)?;
            map.serialize_entry("value", &self.0.value.json_view())?;
            map.end()
        }
    }
    out.clear();
    let mut serializer = serde_json::Serializer::new(&mut *out);
    let written = (|| {
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("topic", &record.topic)?;
        map.serialize_entry("partition", &record.partition)?;
        map.serialize_entry("offset", &record.kafka_offset)?;
        map.serialize_entry("timestamp", &record.timestamp)?;
        map.serialize_entry("key", &record.key.json_view())?;
        map.serialize_entry("value", &record.value.json_view())?;
        map.serialize_entry("headers", &HeadersView(&record.headers))?;
        map.end()
    })();
    written.expect("plain values serialize into a Vec");
}

/// Apply one record object of the module's answer to `record`. Fields it leaves out, or hands back as they
/// were, keep their typed values and schemas; `offset` cannot be changed and is ignored.
pub(crate) fn apply(answer: Map<String, Json>, record: &mut RecordData) -> Result<()> {
    for (name, json) in answer {
        match name.as_str() {
            "topic" => match json {
                Json::String(topic) if !topic.is_empty() => record.topic = topic,
                other => return Err(bad("topic", "a non-empty string", &other)),
            },
            "partition" => {
                record.partition = match &json {
                    Json::Null => None,
                    other => Some(
                        other
                            .as_i64()
                            .and_then(|p| i32::try_from(p).ok())
                            .filter(|p| *p >= 0)
                            .ok_or_else(|| bad("partition", "null or a partition number", other))?,
                    ),
                }
            }
            "timestamp" => {
                record.timestamp = match &json {
                    Json::Null => None,
                    other => Some(other.as_i64().ok_or_else(|| bad("timestamp", "null or milliseconds since the epoch", other))?),
                }
            }
            "offset" => {}
            "key" if record.key.equals_json(&json) => {}
            "key" => (record.key_schema, record.key) = refit(record.key_schema.take(), json),
            "value" if record.value.equals_json(&json) => {}
            "value" => (record.value_schema, record.value) = refit(record.value_schema.take(), json),
            "headers" => record.headers = headers(json, &record.headers)?,
            other => {
                return Err(ConnectError::data(format!(
                    "the module's answer has a field `{other}`; a record has topic, partition, offset, timestamp, key, value, headers"
                )))
            }
        }
    }
    Ok(())
}

/// The answer's key or value under the record's schema if it still fits, else schemaless.
fn refit(schema: Option<SchemaRef>, json: Json) -> (Option<SchemaRef>, Value) {
    if let Some(schema) = schema {
        if let Ok(value) = json_to_value(&schema, &json, "value") {
            return (Some(schema), value);
        }
    }
    (None, Value::from_json_owned(json))
}

/// The answer's headers; each one equal to the record's header at the same place keeps that header (and its
/// schema), the others go on schemaless.
fn headers(json: Json, before: &Headers) -> Result<Headers> {
    let Json::Array(items) = json else { return Err(bad("headers", "an array of {\"key\", \"value\"}", &json)) };
    let mut headers = Headers::new();
    for (i, item) in items.into_iter().enumerate() {
        let Json::Object(mut header) = item else { return Err(bad("headers", "an array of {\"key\": string, \"value\"}", &item)) };
        match (header.remove("key"), header.remove("value")) {
            (Some(Json::String(key)), value) => {
                let value = value.unwrap_or(Json::Null);
                match before.0.get(i) {
                    Some(old) if old.key == key && old.value.equals_json(&value) => headers.0.push(old.clone()),
                    _ => headers.0.push(Header { key, schema: None, value: Value::from_json_owned(value) }),
                }
            }
            (key, value) => {
                let shown = serde_json::json!({"key": key, "value": value});
                return Err(bad("headers", "an array of {\"key\": string, \"value\"}", &shown));
            }
        }
    }
    Ok(headers)
}

fn bad(field: &str, expected: &str, got: &Json) -> ConnectError {
    let mut shown = got.to_string();
    if shown.len() > 200 {
        shown.truncate(shown.char_indices().take_while(|(i, _)| *i < 200).last().map_or(0, |(i, c)| i + c.len_utf8()));
        shown.push('…');
    }
    ConnectError::data(format!("the module's answer has `{field}` = {shown}; expected {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{Schema, SchemaType};
    use std::sync::Arc;

    fn record() -> RecordData {
        let mut r = RecordData::new("trains", Some(Arc::new(Schema::new(SchemaType::String))), Value::String("hello".into()));
        r.key = Value::Bytes(vec![0, 1, 2].into());
        r.timestamp = Some(5);
        r.kafka_offset = Some(7);
        r.headers.add("h", Value::String("v".into()));
        r
    }

    fn answer(json: &str) -> Map<String, Json> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_envelope_carries_every_field_with_bytes_in_base64() {
        let mut out = Vec::new();
        encode(&record(), &mut out);
        let json: Json = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"topic": "trains", "partition": null, "offset": 7, "timestamp": 5, "key": "AAEC",
                "value": "hello", "headers": [{"key": "h", "value": "v"}]})
        );
    }

    #[test]
    fn unchanged_fields_keep_their_types_and_changed_ones_keep_a_schema_that_fits() {
        let mut r = record();
        apply(answer(r#"{"key": "AAEC", "value": "HELLO", "topic": "alerts", "offset": 99}"#), &mut r).unwrap();
        assert_eq!(r.key, Value::Bytes(vec![0, 1, 2].into()), "an unchanged key stays bytes");
        assert_eq!(r.value, Value::String("HELLO".into()));
        assert!(r.value_schema.is_some(), "a string still fits the string schema");
        assert_eq!(r.topic, "alerts");
        assert_eq!(r.kafka_offset, Some(7), "offset cannot be changed");
        apply(answer(r#"{"value": {"n": 1}}"#), &mut r).unwrap();
        assert!(r.value_schema.is_none(), "an object does not fit a string schema: schemaless");
        assert_eq!(r.value, Value::Map(vec![(Value::String("n".into()), Value::Int64(1))]));
    }

    #[test]
    fn headers_partition_and_timestamp_can_be_replaced() {
        let mut r = record();
        apply(answer(r#"{"headers": [{"key": "a", "value": 1}], "partition": 2, "timestamp": null}"#), &mut r).unwrap();
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers.last("a").unwrap().value, Value::Int64(1));
        assert_eq!(r.partition, Some(2));
        assert_eq!(r.timestamp, None);

        let mut r = record();
        r.headers.0[0].schema = Some(Arc::new(Schema::new(SchemaType::String)));
        apply(answer(r#"{"headers": [{"key": "h", "value": "v"}, {"key": "n", "value": 1}]}"#), &mut r).unwrap();
        assert!(r.headers.0[0].schema.is_some(), "a header handed back as it was keeps its schema");
        assert_eq!((r.headers.0[1].key.as_str(), &r.headers.0[1].value, &r.headers.0[1].schema), ("n", &Value::Int64(1), &None));
    }

    #[test]
    fn wrong_shapes_are_data_errors_naming_the_field() {
        let r = record();
        for (json, field) in [
            (r#"{"topic": 3}"#, "`topic`"),
            (r#"{"partition": -1}"#, "`partition`"),
            (r#"{"timestamp": "now"}"#, "`timestamp`"),
            (r#"{"headers": [{"value": 1}]}"#, "`headers`"),
            (r#"{"colour": "red"}"#, "`colour`"),
        ] {
            let err = apply(answer(json), &mut r.clone()).unwrap_err();
            assert_eq!(err.kind(), connect_core::ErrorKind::Data);
            assert!(err.message().contains(field), "{json}: {err}");
        }
    }
}
