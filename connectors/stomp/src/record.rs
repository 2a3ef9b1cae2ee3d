//! STOMP MESSAGE frames as records in the shape Confluent's JMS/ActiveMQ source writes, so what reads its
//! topics today (`jq '.text|fromjson[]'`, ksqlDB streams over `text`) reads ours unchanged.
//!
//! Key `io.confluent.connect.jms.Key {messageID}`; value `io.confluent.connect.jms.Value` with the JMS
//! header fields, `properties` (every other STOMP header, as string properties), and the body in `text`
//! (a text message) or `bytes`. STOMP says nothing of JMS message types. ActiveMQ and Artemis mark a
//! BytesMessage by a `content-length` header and send a TextMessage without one; other brokers (RabbitMQ)
//! send `content-length` on everything. So: a `content-type` of text, JSON or XML means text; from ActiveMQ
//! a `content-length` without one means bytes; anything else is text if it decodes. A body that is not
//! valid in `character.encoding` is kept as bytes rather than mangled.

use bytes::Bytes;
use connect_core::{Schema, SchemaRef, SchemaType, Struct, Value};
use std::sync::OnceLock;

use crate::frame::Frame;

pub const KEY_SCHEMA_NAME: &str = "io.confluent.connect.jms.Key";
pub const VALUE_SCHEMA_NAME: &str = "io.confluent.connect.jms.Value";
pub const DESTINATION_SCHEMA_NAME: &str = "io.confluent.connect.jms.Destination";
pub const PROPERTY_SCHEMA_NAME: &str = "io.confluent.connect.jms.PropertyValue";

/// STOMP headers that are JMS header fields (or STOMP plumbing), not message properties.
const NOT_PROPERTIES: &[&str] = &[
    "message-id",
    "destination",
    "subscription",
    "ack",
    "content-length",
    "timestamp",
    "expires",
    "priority",
    "persistent",
    "correlation-id",
    "reply-to",
    "redelivered",
    "type",
];

fn opt(kind: SchemaType) -> SchemaRef {
    Schema::new(kind).optional().into_ref()
}
fn req(kind: SchemaType) -> SchemaRef {
    Schema::new(kind).into_ref()
}
fn named(name: &str, fields: Vec<(&str, SchemaRef)>, optional: bool) -> SchemaRef {
    let mut s = Schema::structure(fields.into_iter().map(|(n, s)| (n.to_string(), s))).named(name);
    s.optional = optional;
    s.into_ref()
}

pub fn key_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| named(KEY_SCHEMA_NAME, vec![("messageID", req(SchemaType::String))], false)).clone()
}

fn destination_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        named(DESTINATION_SCHEMA_NAME, vec![("destinationType", req(SchemaType::String)), ("name", req(SchemaType::String))], true)
    })
    .clone()
}

fn property_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        named(
            PROPERTY_SCHEMA_NAME,
            vec![
                ("propertyType", req(SchemaType::String)),
                ("boolean", opt(SchemaType::Boolean)),
                ("byte", opt(SchemaType::Int8)),
                ("short", opt(SchemaType::Int16)),
                ("integer", opt(SchemaType::Int32)),
                ("long", opt(SchemaType::Int64)),
                ("float", opt(SchemaType::Float32)),
                ("double", opt(SchemaType::Float64)),
                ("string", opt(SchemaType::String)),
            ],
            false,
        )
    })
    .clone()
}

pub fn value_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let properties = Schema::map(req(SchemaType::String), property_schema()).into_ref();
        let map = Schema::map(req(SchemaType::String), property_schema()).optional().into_ref();
        named(
            VALUE_SCHEMA_NAME,
            vec![
                ("messageID", req(SchemaType::String)),
                ("messageType", req(SchemaType::String)),
                ("timestamp", req(SchemaType::Int64)),
                ("deliveryMode", req(SchemaType::Int32)),
                ("correlationID", opt(SchemaType::String)),
                ("replyTo", destination_schema()),
                ("destination", destination_schema()),
                ("redelivered", req(SchemaType::Boolean)),
                ("type", opt(SchemaType::String)),
                ("expiration", req(SchemaType::Int64)),
                ("priority", req(SchemaType::Int32)),
                ("properties", properties),
                ("bytes", opt(SchemaType::Bytes)),
                ("map", map),
                ("text", opt(SchemaType::String)),
            ],
            false,
        )
    })
    .clone()
}

/// `/topic/X` → `{destinationType: "topic", name: "X"}`; other STOMP destinations (RabbitMQ's
/// `/exchange/...`) keep their whole name with the type of their first segment.
fn destination(value: &str) -> Value {
    let (kind, name) = match value.strip_prefix('/').and_then(|v| v.split_once('/')) {
        Some(("queue" | "temp-queue" | "amq", rest)) if !value.starts_with("/amq/") => ("queue", rest.to_string()),
        Some(("topic" | "temp-topic", rest)) => ("topic", rest.to_string()),
        Some((kind, _)) => (kind, value.to_string()),
        None => ("queue", value.to_string()),
    };
    let mut s = Struct::with_capacity(2);
    s.put("destinationType", Value::String(kind.to_string())).put("name", Value::String(name));
    Value::Struct(s)
}

fn string_property(value: &str) -> Value {
    let mut s = Struct::with_capacity(9);
    s.put("propertyType", Value::String("string".into()));
    for f in ["boolean", "byte", "short", "integer", "long", "float", "double"] {
        s.put(f, Value::Null);
    }
    s.put("string", Value::String(value.to_string()));
    Value::Struct(s)
}

/// Why a message could not become a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("a MESSAGE frame without a message-id header (set use.permissive.schema=true to accept it)")]
    NoMessageId,
}

/// The message's text, if it is a text message whose body decodes cleanly.
fn text_of(frame: &Frame, encoding: &'static encoding_rs::Encoding, typed_by_content_length: bool) -> Option<String> {
    let content_type = frame.get("content-type").map(str::to_ascii_lowercase);
    let texty = match &content_type {
        Some(t) => t.starts_with("text/") || t.contains("json") || t.contains("xml"),
        None => !typed_by_content_length || frame.get("content-length").is_none(),
    };
    if !texty {
        return None;
    }
    // A charset in the content-type wins over the configured one, as the broker said what it sent.
    let encoding = content_type
        .as_deref()
        .and_then(|t| t.split(';').find_map(|p| p.trim().strip_prefix("charset=")))
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim_matches('"').as_bytes()))
        .unwrap_or(encoding);
    let (text, had_errors) = encoding.decode_without_bom_handling(&frame.body);
    if had_errors {
        if !texty_by_header(frame) {
            return None; // binary data, as expected of a body without a text content-type
        }
        tracing::warn!(
            message_id = frame.get("message-id").unwrap_or(""),
            encoding = encoding.name(),
            "a text message's body is not valid {}: kept as bytes",
            encoding.name()
        );
        return None;
    }
    Some(text.into_owned())
}

fn texty_by_header(frame: &Frame) -> bool {
    frame.get("content-type").is_some_and(|t| t.to_ascii_lowercase().starts_with("text/"))
}

/// Key and value of the record for a MESSAGE frame; `typed_by_content_length`: the broker is ActiveMQ or
/// Artemis (see the module doc).
pub fn jms_record(
    frame: &Frame,
    encoding: &'static encoding_rs::Encoding,
    permissive: bool,
    typed_by_content_length: bool,
) -> Result<(Value, Value), RecordError> {
    let message_id = match frame.get("message-id") {
        Some(id) => id.to_string(),
        None if permissive => String::new(),
        None => return Err(RecordError::NoMessageId),
    };
    let int = |name: &str, default: i64| frame.get(name).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(default);
    let text = text_of(frame, encoding, typed_by_content_length);
    let mut key = Struct::with_capacity(1);
    key.put("messageID", Value::String(message_id.clone()));
    let properties: Vec<(Value, Value)> = frame
        .distinct_headers()
        .filter(|(k, _)| !NOT_PROPERTIES.contains(&k.as_str()))
        .map(|(k, v)| (Value::String(k.clone()), string_property(v)))
        .collect();
    let mut value = Struct::with_capacity(15);
    value
        .put("messageID", Value::String(message_id))
        .put("messageType", Value::String(if text.is_some() { "text" } else { "bytes" }.into()))
        .put("timestamp", Value::Int64(int("timestamp", 0)))
        .put("deliveryMode", Value::Int32(if frame.get("persistent") == Some("true") { 2 } else { 1 }))
        .put("correlationID", frame.get("correlation-id").map_or(Value::Null, |v| Value::String(v.to_string())))
        .put("replyTo", frame.get("reply-to").map_or(Value::Null, destination))
        .put("destination", frame.get("destination").map_or(Value::Null, destination))
        .put("redelivered", Value::Boolean(frame.get("redelivered") == Some("true")))
        .put("type", frame.get("type").map_or(Value::Null, |v| Value::String(v.to_string())))
        .put("expiration", Value::Int64(int("expires", 0)))
        .put("priority", Value::Int32(int("priority", 4) as i32))
        .put("properties", Value::Map(properties))
        .put("bytes", if text.is_none() { Value::Bytes(Bytes::clone(&frame.body)) } else { Value::Null })
        .put("map", Value::Null)
        .put("text", text.map_or(Value::Null, Value::String));
    Ok((Value::Struct(key), Value::Struct(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8() -> &'static encoding_rs::Encoding {
        encoding_rs::UTF_8
    }

    #[test]
    fn an_activemq_text_message() {
        let body = r#"[{"header":{"msg_type":"0003"},"body":{"train_id":"1"}}]"#;
        let frame = Frame::new("MESSAGE")
            .header("message-id", "ID:host-1:1:1:1:7")
            .header("destination", "/topic/TRAIN_MVT_EA_TOC")
            .header("timestamp", "1733443200123")
            .header("expires", "0")
            .header("priority", "4")
            .header("persistent", "true")
            .header("subscription", "sub-0")
            .header("ack", "ID:ack-7")
            .header("JMSXUserID", "feed")
            .with_body(body.as_bytes().to_vec());
        let (key, value) = jms_record(&frame, utf8(), false, true).unwrap();
        key_schema().validate_value(&key).unwrap();
        value_schema().validate_value(&value).unwrap();
        let Value::Struct(v) = &value else { panic!() };
        assert_eq!(v.get("text"), Some(&Value::String(body.into())));
        assert_eq!(v.get("messageType"), Some(&Value::String("text".into())));
        assert_eq!(v.get("bytes"), Some(&Value::Null));
        assert_eq!(v.get("timestamp"), Some(&Value::Int64(1733443200123)));
        assert_eq!(v.get("deliveryMode"), Some(&Value::Int32(2)));
        let Some(Value::Struct(d)) = v.get("destination") else { panic!() };
        assert_eq!(d.get("destinationType"), Some(&Value::String("topic".into())));
        assert_eq!(d.get("name"), Some(&Value::String("TRAIN_MVT_EA_TOC".into())));
        let Some(Value::Map(props)) = v.get("properties") else { panic!() };
        assert_eq!(props.len(), 1, "only JMSXUserID is a property: {props:?}");
        assert_eq!(props[0].0, Value::String("JMSXUserID".into()));
    }

    #[test]
    fn bytes_messages_and_undecodable_text() {
        let bytes = Frame::new("MESSAGE").header("message-id", "1").header("content-length", "3").with_body(vec![0u8, 159, 146]);
        let (_, value) = jms_record(&bytes, utf8(), false, true).unwrap();
        value_schema().validate_value(&value).unwrap();
        let Value::Struct(v) = value else { panic!() };
        assert_eq!(v.get("messageType"), Some(&Value::String("bytes".into())));
        assert_eq!(v.get("bytes"), Some(&Value::Bytes(Bytes::from_static(&[0, 159, 146]))));
        let bad_text = Frame::new("MESSAGE").header("message-id", "2").header("content-type", "text/plain").with_body(vec![0xff, 0xfe]);
        let Value::Struct(v) = jms_record(&bad_text, utf8(), false, true).unwrap().1 else { panic!() };
        assert_eq!(v.get("messageType"), Some(&Value::String("bytes".into())), "kept, as bytes");
        let latin1 = Frame::new("MESSAGE").header("message-id", "3").with_body(vec![b'c', 0xe9]);
        let Value::Struct(v) = jms_record(&latin1, encoding_rs::Encoding::for_label(b"ISO-8859-1").unwrap(), false, true).unwrap().1 else {
            panic!()
        };
        assert_eq!(v.get("text"), Some(&Value::String("cé".into())));
    }

    #[test]
    fn rabbitmq_sends_content_length_on_text_too() {
        let frame = Frame::new("MESSAGE").header("message-id", "T_s@@1").header("content-length", "2").with_body(&b"{}"[..]);
        let Value::Struct(v) = jms_record(&frame, utf8(), false, false).unwrap().1 else { panic!() };
        assert_eq!(v.get("text"), Some(&Value::String("{}".into())));
        let binary = Frame::new("MESSAGE").header("message-id", "T_s@@2").header("content-length", "2").with_body(vec![0xff, 0]);
        let Value::Struct(v) = jms_record(&binary, utf8(), false, false).unwrap().1 else { panic!() };
        assert_eq!(v.get("messageType"), Some(&Value::String("bytes".into())));
    }

    #[test]
    fn message_id_is_required_unless_permissive() {
        let frame = Frame::new("MESSAGE").with_body(&b"x"[..]);
        assert_eq!(jms_record(&frame, utf8(), false, true).unwrap_err(), RecordError::NoMessageId);
        assert!(jms_record(&frame, utf8(), true, true).is_ok());
    }
}
